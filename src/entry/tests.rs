//! Data-driven tests of [`parse`]: one helper, many short cases.

use std::path::Path;

use super::*;

const SITE: &str = r#"
title = "Тест"
base_url = "http://example.org/"
language = "ru"
timezone = "Asia/Novosibirsk"
author = "Редакция"
[[sections]]
slug = "transport"
title = "Транспорт"
[[sections]]
slug = "sport"
title = "Спорт"
"#;

fn config() -> Config {
    Config::parse(Path::new("site.toml"), SITE).unwrap()
}

fn parse_text(text: &str) -> Parsed {
    parse_bytes(text.as_bytes())
}

fn parse_bytes(bytes: &[u8]) -> Parsed {
    let config = config();
    let sanitizer = html::Sanitizer::new(&config.base_url);
    let ctx = Context {
        config: &config,
        sanitizer: &sanitizer,
        spool: None,
    };
    parse(&ctx, Path::new("e/x.md"), "2024/x.md", bytes)
}

/// Asserts the file is rejected with exactly one problem that renders as `expected`.
fn check_error(text: &str, expected: &str) {
    check_error_bytes(text.as_bytes(), expected);
}

fn check_error_bytes(bytes: &[u8], expected: &str) {
    let p = parse_bytes(bytes);
    let shown: Vec<String> = p.diagnostics.iter().map(ToString::to_string).collect();
    assert!(p.entry.is_none(), "expected no entry for {bytes:?}");
    assert_eq!(shown.len(), 1, "{shown:#?}");
    assert!(
        shown[0].starts_with(expected),
        "got {:?}\nexpected prefix {expected:?}",
        shown[0]
    );
}

fn entry(text: &str) -> Entry {
    let p = parse_text(text);
    assert!(p.diagnostics.is_empty(), "{:#?}", p.diagnostics);
    p.entry.expect("an entry")
}

const GOOD: &str = "+++\ntitle = \"Новые автобусы\"\ndate = \"22.08.2022\"\nsections = [\"transport\"]\n+++\n\nПервый абзац.\n\nВторой.\n";

#[test]
fn minimal_entry_gets_defaults() {
    let e = entry(GOOD);
    assert_eq!(e.id, "x");
    assert_eq!(e.path, "2024/x.md");
    assert_eq!(e.title, "Новые автобусы");
    assert_eq!(e.published.to_rfc3339(), "2022-08-22T00:00:00+07:00");
    assert_eq!(e.updated, None);
    assert_eq!(e.sections, ["transport"]);
    assert_eq!(e.summary(html::Retain::Keep), "Первый абзац.");
    assert_eq!(e.link(&config()).as_str(), "http://example.org/news/x");
    assert_eq!(
        e.body.get(html::Retain::Keep),
        "<p>Первый абзац.</p>\n<p>Второй.</p>\n"
    );
    assert_eq!(e.tag_uri(&config()), "tag:example.org,2022-08-22:x");
}

#[test]
fn every_key() {
    let e = entry(
        r#"+++
title = "  Title   with  spaces "
date = 2024-03-15T10:00:00
updated = "2024-03-16T08:00:00+03:00"
timezone = "Asia/Vladivostok"
sections = ["sport", "transport", "sport"]
id = "custom-id"
summary = "Своя аннотация"
link = "https://example.com/a?b=1"
authors = ["Иванова", " "]
draft = false
[source]
name = "ТАСС"
url = "https://tass.ru/"
feed = "https://tass.ru/rss/v2.xml"
[extra]
anything = { goes = true }
+++
Body
"#,
    );
    assert_eq!(e.title, "Title with spaces");
    assert_eq!(e.published.to_rfc3339(), "2024-03-15T10:00:00+10:00");
    assert_eq!(e.updated.unwrap().to_rfc3339(), "2024-03-16T08:00:00+03:00");
    assert_eq!(e.modified(), e.updated.unwrap());
    assert_eq!(e.sections, ["sport", "transport"]);
    assert_eq!(e.id, "custom-id");
    assert_eq!(e.summary(html::Retain::Keep), "Своя аннотация");
    assert_eq!(e.link(&config()).as_str(), "https://example.com/a?b=1");
    assert_eq!(e.authors, ["Иванова"]);
    let s = e.source.unwrap();
    assert_eq!(s.feed.unwrap().as_str(), "https://tass.ru/rss/v2.xml");
}

#[test]
fn draft_is_excluded_without_a_problem() {
    let p = parse_text(&GOOD.replace("+++\n\n", "draft = true\n+++\n\n"));
    assert!(p.entry.is_none());
    assert!(p.diagnostics.is_empty());
}

#[test]
fn attribution_variants() {
    let with = |source: &str| entry(&GOOD.replace("+++\n\n", &format!("{source}\n+++\n\n")));
    let linked = with("[source]\nname = \"URA.RU\"\nurl = \"https://ura.news/\"");
    let source = linked.source.unwrap();
    assert_eq!(source.name, "URA.RU");
    assert_eq!(source.url.unwrap().as_str(), "https://ura.news/");
    let named = with("[source]\nname = \"  Пресс-служба   мэрии \"");
    assert_eq!(named.source.unwrap().name, "Пресс-служба мэрии");
    assert!(entry(GOOD).source.is_none());
}

#[test]
fn crlf_and_bom_are_accepted() {
    let crlf = GOOD.replace('\n', "\r\n");
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend_from_slice(crlf.as_bytes());
    let p = parse_bytes(&bytes);
    assert!(p.diagnostics.is_empty(), "{:#?}", p.diagnostics);
    assert_eq!(p.entry.unwrap().title, "Новые автобусы");
}

#[test]
fn forbidden_xml_characters_are_removed_everywhere() {
    let e = entry(
        &GOOD
            .replace("Новые", "Но\u{8}вые")
            .replace("Второй", "Вт\u{1}орой\u{FFFF}"),
    );
    assert_eq!(e.title, "Новые автобусы");
    assert!(e.body.get(html::Retain::Keep).contains("<p>Второй.</p>"));
}

#[test]
fn unknown_section_is_reported_but_published() {
    let p = parse_text(&GOOD.replace("[\"transport\"]", "[\"transprot\", \"sport\"]"));
    assert_eq!(p.entry.unwrap().sections, ["sport"]);
    assert_eq!(p.diagnostics.len(), 1);
    assert!(
        p.diagnostics[0]
            .to_string()
            .starts_with("e/x.md:4:13: unknown section \"transprot\" (known: transport, sport)"),
        "{}",
        p.diagnostics[0]
    );
}

#[test]
fn unknown_key_is_reported_but_published() {
    let p = parse_text(&GOOD.replace("+++\n\n", "sumary = \"typo\"\n+++\n\n"));
    assert!(p.entry.is_some());
    assert_eq!(p.diagnostics.len(), 1);
    assert!(
        p.diagnostics[0]
            .to_string()
            .starts_with("e/x.md:5:1: unknown front matter key `sumary`")
    );
}

#[test]
fn bad_input_is_named_with_line_column_and_reason() {
    let cases: &[(&str, &str)] = &[
        ("", "e/x.md:1:1: empty file"),
        ("  \n\n", "e/x.md:1:1: empty file"),
        ("title = \"x\"\n", "e/x.md:1:1: no front matter"),
        (
            "+++\ntitle = \"x\"\n",
            "e/x.md:1:1: front matter opened with `+++` on line 1 is never closed",
        ),
        ("+++\ntitle = \"x\n+++\n", "e/x.md:2:"),
        ("+++\ntitle = \"x\"\ndate = \n+++\n", "e/x.md:3:"),
        (
            "+++\ndate = \"22.08.2022\"\n+++\n",
            "e/x.md:2:1: missing title, sections in front matter",
        ),
        (
            "+++\ntitle = \"x\"\nsections = [\"sport\"]\n+++\n",
            "e/x.md:2:1: missing date in front matter",
        ),
        (
            "+++\ntitle = \"x\"\ndate = \"31.02.2022\"\nsections = [\"sport\"]\n+++\n",
            "e/x.md:3:8: date: no such date: month 02 of 2022 has only 28 days (31.02.2022)",
        ),
        (
            "+++\ntitle = \"x\"\ndate = \"01.01.2022\"\nupdated = \"вчера\"\nsections = [\"sport\"]\n+++\n",
            "e/x.md:4:11: updated: unrecognized date",
        ),
        (
            "+++\ntitle = \"x\"\ndate = \"01.01.2022\"\ntimezone = \"Asia/Nowhere\"\nsections = [\"sport\"]\n+++\n",
            "e/x.md:4:12: unknown time zone \"Asia/Nowhere\"",
        ),
        (
            "+++\ntitle = \"x\"\ndate = \"01.01.2022\"\nsections = []\n+++\n",
            "e/x.md:4:12: sections is empty",
        ),
        (
            "+++\ntitle = \"  \"\ndate = \"01.01.2022\"\nsections = [\"sport\"]\n+++\n",
            "e/x.md:2:9: title is empty",
        ),
        (
            "+++\ntitle = \"x\"\ndate = \"01.01.2022\"\nsections = [\"sport\"]\n[source]\nurl = \"https://a.b/\"\n+++\n",
            "e/x.md:5:1: [source] needs a non-empty name",
        ),
        (
            "+++\ntitle = \"x\"\ndate = \"01.01.2022\"\nsections = [\"sport\"]\n[source]\nname = \"a\"\nurl = \"ura.news\"\n+++\n",
            "e/x.md:7:7: source url \"ura.news\" must be an absolute http(s) URL",
        ),
        (
            "+++\ntitle = \"x\"\ndate = \"01.01.2022\"\nsections = [\"sport\"]\nlink = \"javascript:alert(1)\"\n+++\n",
            "e/x.md:5:8: link \"javascript:alert(1)\" is not an http(s) URL",
        ),
        (
            "+++\ntitle = 5\ndate = \"01.01.2022\"\nsections = [\"sport\"]\n+++\n",
            "e/x.md:2:9: front matter: invalid type",
        ),
    ];
    for (text, expected) in cases {
        check_error(text, expected);
    }
}

#[test]
fn invalid_utf8_and_utf16_are_named() {
    check_error_bytes(
        b"+++\ntitle = \"a\xFFb\"\n",
        "e/x.md:2:11: invalid UTF-8 (byte 0xFF)",
    );
    check_error_bytes(b"\xFF\xFE+\x00+\x00", "e/x.md:1:1: file is UTF-16");
}

#[test]
fn ids_become_url_segments() {
    assert_eq!(default_id("2024/a.md"), "a");
    assert_eq!(default_id("b.md"), "b");
    assert_eq!(
        crate::urls::segment("новости 1"),
        "%D0%BD%D0%BE%D0%B2%D0%BE%D1%81%D1%82%D0%B8%201"
    );
    let e = entry(&GOOD.replace("+++\n\n", "id = \"a b\"\n+++\n\n"));
    assert_eq!(e.link(&config()).as_str(), "http://example.org/news/a%20b");
    assert_eq!(e.tag_uri(&config()), "tag:example.org,2022-08-22:a%20b");
}

/// A minimal entry with extra front matter lines after `sections`.
fn with_front(extra: &str) -> String {
    format!("+++\ntitle = \"T\"\ndate = 2024-01-01\nsections = [\"sport\"]\n{extra}\n+++\nBody.\n")
}

#[test]
fn enclosures_image_and_genre() {
    let p = parse_text(&with_front(
        r#"genre = "article"
image = { url = "2024/photo.jpg", width = 800, height = 600 }
[[enclosures]]
url = "docs/report.pdf"
[[enclosures]]
url = "https://cdn.example.com/a.mp3"
length = 12345
[[enclosures]]
url = "https://cdn.example.com/stream"
type = "video/mp4""#,
    ));
    assert!(p.diagnostics.is_empty(), "{:#?}", p.diagnostics);
    let e = p.entry.unwrap();
    assert_eq!(e.genre, Genre::Article);
    let image = e.image.unwrap();
    assert_eq!(
        image.media.url.as_str(),
        "http://example.org/media/2024/photo.jpg"
    );
    assert_eq!(image.media.mime_type, "image/jpeg");
    assert_eq!(image.media.local.as_deref(), Some("2024/photo.jpg"));
    assert_eq!((image.width, image.height), (Some(800), Some(600)));
    let shown: Vec<(&str, &str, u64)> = e
        .enclosures
        .iter()
        .map(|m| (m.url.as_str(), m.mime_type.as_str(), m.length))
        .collect();
    assert_eq!(
        shown,
        [
            (
                "http://example.org/media/docs/report.pdf",
                "application/pdf",
                0
            ),
            ("https://cdn.example.com/a.mp3", "audio/mpeg", 12345),
            ("https://cdn.example.com/stream", "video/mp4", 0),
        ]
    );
    // The loader measures the local files, and reports missing ones here.
    let rels: Vec<(&str, usize, usize)> = p
        .local_media
        .iter()
        .map(|m| (m.rel.as_str(), m.line, m.column))
        .collect();
    assert_eq!(rels, [("docs/report.pdf", 8, 7), ("2024/photo.jpg", 6, 17)]);

    let plain = entry(&with_front("image = \"https://cdn.example.com/p.png\""));
    assert_eq!(plain.image.unwrap().media.mime_type, "image/png");
    assert_eq!(entry(&with_front("")).genre, Genre::Message);
}

/// Problems with one enclosure or the image: reported at their position, and
/// the entry is published without that file.
#[test]
fn bad_media_is_reported_and_left_out() {
    let cases: &[(&str, &str)] = &[
        (
            "[[enclosures]]\nurl = \"../site.toml\"",
            "e/x.md:6:7: enclosure path \"../site.toml\": empty, `.` and `..` path segments are not allowed",
        ),
        (
            "[[enclosures]]\nurl = \"/etc/passwd\"",
            "e/x.md:6:7: enclosure path \"/etc/passwd\": absolute paths are not allowed",
        ),
        (
            "[[enclosures]]\nurl = \"ftp://x.org/a.mp3\"",
            "e/x.md:6:7: enclosure url \"ftp://x.org/a.mp3\" must be an http(s) URL or a path relative to DATA/media/",
        ),
        (
            "[[enclosures]]\nurl = \"https://x.org/stream\"",
            "e/x.md:6:7: cannot tell the type of enclosure \"https://x.org/stream\" from its name; add type",
        ),
        (
            "[[enclosures]]\nurl = \"a.mp3\"\ntype = \"audio\"",
            "e/x.md:7:8: enclosure type \"audio\" is not a media type",
        ),
        (
            "image = \"report.pdf\"",
            "e/x.md:5:9: image \"report.pdf\" has type application/pdf, not an image type",
        ),
        (
            "genre = \"news\"",
            "e/x.md:5:9: unknown genre \"news\" (known: lenta, message, article, interview); using message",
        ),
    ];
    for (extra, expected) in cases {
        let p = parse_text(&with_front(extra));
        let shown: Vec<String> = p.diagnostics.iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 1, "{extra}: {shown:#?}");
        assert!(
            shown[0].starts_with(expected),
            "{extra}:\n got {}\nwant {expected}",
            shown[0]
        );
        let e = p.entry.expect("still published");
        assert!(e.enclosures.is_empty() && e.image.is_none(), "{extra}");
        assert!(p.local_media.is_empty(), "{extra}");
    }
    // A length on a local file is ignored (the loader measures it).
    let p = parse_text(&with_front("[[enclosures]]\nurl = \"a.mp3\"\nlength = 5"));
    assert_eq!(p.diagnostics.len(), 1, "{:#?}", p.diagnostics);
    assert_eq!(p.entry.unwrap().enclosures.len(), 1);
    // Unknown keys inside an enclosure or image table are errors, as in [source].
    check_error(
        &with_front("[[enclosures]]\nurl = \"a.mp3\"\nlenght = 5"),
        "e/x.md:7:1: front matter: unknown field `lenght`, expected one of `url`, `type`, `length`",
    );
    check_error(
        &with_front("[image]\nurl = \"a.png\"\nalt = \"x\""),
        "e/x.md:7:1: front matter: unknown field `alt`",
    );
}

/// Asserts that `text` gives exactly the problems `expected`, in order of
/// position, and an entry exactly when `published`.
fn check_all(text: &str, published: bool, expected: &[&str]) {
    let p = parse_text(text);
    let shown: Vec<String> = p.diagnostics.iter().map(ToString::to_string).collect();
    assert_eq!(shown, expected, "for\n{text}");
    assert_eq!(p.entry.is_some(), published, "published? for\n{text}");
}

/// A file with several problems reports every one of them, each at its own
/// position and in order of position, not only the first. A bad field the
/// entry needs still skips the entry, but only after every field was checked.
#[test]
fn every_problem_in_a_file_is_reported() {
    let cases: &[(&str, bool, &[&str])] = &[
        // Impossible date + unknown section.
        (
            "+++\ntitle = \"x\"\ndate = \"31.02.2022\"\nsections = [\"transprot\", \"sport\"]\n+++\n",
            false,
            &[
                "e/x.md:3:8: date: no such date: month 02 of 2022 has only 28 days (31.02.2022)",
                "e/x.md:4:13: unknown section \"transprot\" (known: transport, sport); the entry is still published in its other sections and the combined feed",
            ],
        ),
        // Bad timezone + bad link + unknown key.
        (
            "+++\ntitle = \"x\"\ndate = \"01.01.2022\"\ntimezone = \"Asia/Nowhere\"\nsections = [\"sport\"]\nlink = \"javascript:alert(1)\"\nsumary = \"typo\"\n+++\n",
            false,
            &[
                "e/x.md:4:12: unknown time zone \"Asia/Nowhere\"; use an IANA name such as \"Asia/Vladivostok\"",
                "e/x.md:6:8: link \"javascript:alert(1)\" is not an http(s) URL",
                "e/x.md:7:1: unknown front matter key `sumary` is ignored (known: title, date, updated, publish_at, expires, timezone, sections, id, summary, link, authors, source, draft, enclosures, image, genre, extra); put custom data under [extra]",
            ],
        ),
        // Bad genre + two bad enclosures: all reported, the entry published.
        (
            "+++\ntitle = \"x\"\ndate = \"01.01.2022\"\nsections = [\"sport\"]\ngenre = \"news\"\n[[enclosures]]\nurl = \"../site.toml\"\n[[enclosures]]\nurl = \"a.mp3\"\ntype = \"audio\"\n+++\n",
            true,
            &[
                "e/x.md:5:9: unknown genre \"news\" (known: lenta, message, article, interview); using message",
                "e/x.md:7:7: enclosure path \"../site.toml\": empty, `.` and `..` path segments are not allowed; the entry is published without this enclosure",
                "e/x.md:10:8: enclosure type \"audio\" is not a media type such as \"image/jpeg\"; the entry is published without this enclosure",
            ],
        ),
        // Missing title and sections (one message) + bad updated + bad id.
        (
            "+++\ndate = \"01.01.2022\"\nupdated = \"вчера\"\nid = \"a/b\"\n+++\n",
            false,
            &[
                "e/x.md:2:1: missing title, sections in front matter; every entry needs title, date and sections",
                "e/x.md:3:11: updated: unrecognized date \"вчера\"; use YYYY-MM-DD, DD.MM.YYYY, DD.MM.YYYY HH:MM, RFC 3339 or a TOML date",
                "e/x.md:4:6: id must be non-empty, not . or .., without slashes or control characters",
            ],
        ),
        // Values of the wrong shape: each one reported (two enclosures
        // included), with the unknown key among them; a misshapen title is
        // not also "missing".
        (
            "+++\ntitle = 5\ndate = \"01.01.2022\"\nsections = [\"sport\"]\nautors = [\"Иванова\"]\n[[enclosures]]\nurl = \"a.mp3\"\nlenght = 5\n[[enclosures]]\nurl = 7\n+++\n",
            false,
            &[
                "e/x.md:2:9: front matter: invalid type: integer `5`, expected a string",
                "e/x.md:5:1: unknown front matter key `autors` is ignored (known: title, date, updated, publish_at, expires, timezone, sections, id, summary, link, authors, source, draft, enclosures, image, genre, extra); put custom data under [extra]",
                "e/x.md:8:1: front matter: unknown field `lenght`, expected one of `url`, `type`, `length`",
                "e/x.md:10:7: front matter: invalid type: integer `7`, expected a string",
            ],
        ),
        // Empty title + empty sections + every problem of [source].
        (
            "+++\ntitle = \"  \"\ndate = \"01.01.2022\"\nsections = []\n[source]\nurl = \"ura.news\"\nfeed = \"ftp://ura.news/rss\"\n+++\n",
            false,
            &[
                "e/x.md:2:9: title is empty",
                "e/x.md:4:12: sections is empty; name at least one section slug from site.toml",
                "e/x.md:5:1: [source] needs a non-empty name",
                "e/x.md:6:7: source url \"ura.news\" must be an absolute http(s) URL",
                "e/x.md:7:8: source feed \"ftp://ura.news/rss\" must be an absolute http(s) URL",
            ],
        ),
        // Problems that lose nothing essential: the entry is published.
        (
            "+++\ntitle = \"x\"\ndate = \"01.01.2022\"\nsections = [\"sport\", \"football\"]\nimage = { url = \"https://x.org/p.png\", width = 0, height = -1 }\n[[enclosures]]\nurl = \"https://x.org/a.mp3\"\nlength = -5\n+++\n",
            true,
            &[
                "e/x.md:4:22: unknown section \"football\" (known: transport, sport); the entry is still published in its other sections and the combined feed",
                "e/x.md:5:48: image width must be a whole number of pixels from 1; ignored",
                "e/x.md:5:60: image height must be a whole number of pixels from 1; ignored",
                "e/x.md:8:10: enclosure length must be 0 or more bytes; using 0 (unknown)",
            ],
        ),
        // With a bad time zone the dates are still checked.
        (
            "+++\ntitle = \"x\"\ndate = \"1.1.2022\"\nupdated = 10:00:00\ntimezone = \"Mars/Olympus\"\nsections = [\"sport\"]\n+++\n",
            false,
            &[
                "e/x.md:3:8: date: unrecognized date \"1.1.2022\"; use YYYY-MM-DD, DD.MM.YYYY, DD.MM.YYYY HH:MM, RFC 3339 or a TOML date",
                "e/x.md:4:11: updated: 10:00:00 is a time without a date; write a date such as 2022-08-22",
                "e/x.md:5:12: unknown time zone \"Mars/Olympus\"; use an IANA name such as \"Asia/Vladivostok\"",
            ],
        ),
    ];
    for (text, published, expected) in cases {
        check_all(text, *published, expected);
    }
}

/// A misshapen value in a draft is still reported (the loader would
/// otherwise take the file for a clean draft), but its fields are not
/// validated: a draft is work in progress.
#[test]
fn drafts_report_only_misshapen_values() {
    check_all(
        "+++\ntitle = \"x\"\ndate = \"31.02.2022\"\nsections = [\"nope\"]\ndraft = true\n+++\n",
        false,
        &[],
    );
    check_all(
        "+++\ntitle = 5\ndate = \"31.02.2022\"\ndraft = true\n+++\n",
        false,
        &["e/x.md:2:9: front matter: invalid type: integer `5`, expected a string"],
    );
}
