//! Property tests over the free text of generated entry files (title,
//! summary, body, source name) and over every date form at its boundaries.
//!
//! Each case writes an entry file (TOML strings escaped by the `toml` crate),
//! parses it, renders every feed in every format, checks the output strictly
//! (`fuzz/src/checks.rs`: well-formed XML or JSON, no unsafe markup) and reads
//! it back with feed-rs. Properties: characters XML forbids are gone from
//! every output; `]]>`, `&`, `<`, entities and CDATA-looking text stay text;
//! right-to-left text and emoji round-trip; 1 MB fields work; dates at leap
//! days, DST gaps and overlaps and years 1 and 9999 render and parse.

#[path = "../fuzz/src/checks.rs"]
mod checks;

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone};
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use vestnik::config::Config;
use vestnik::entry::html::Sanitizer;
use vestnik::entry::{Context, Entry, Parsed};
use vestnik::model::{Scope, Site};
use vestnik::render::{self, Format};
use vestnik::text::{is_xml_char, squash_whitespace, xml_safe};

/// Zones with DST on both sides of UTC.
const ZONES: [&str; 2] = ["Europe/Berlin", "America/New_York"];

fn config(zone: &str) -> Config {
    let text = format!(
        "title = \"Props\"\nbase_url = \"http://example.org/\"\nlanguage = \"en\"\ntimezone = \"{zone}\"\n[[sections]]\nslug = \"news\"\ntitle = \"News\"\n"
    );
    Config::parse(Path::new("site.toml"), &text).expect("test config")
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// The free-text fields of one entry.
#[derive(Debug, Clone)]
struct Fields {
    title: String,
    summary: String,
    source_name: String,
    body: String,
}

/// An entry file with these fields; `date` is a TOML value as written.
fn entry_file(f: &Fields, date: &str) -> String {
    format!(
        "+++\ntitle = {}\ndate = {date}\nsections = [\"news\"]\nsummary = {}\n\n[source]\nname = {}\nurl = \"https://source.example/a\"\nfeed = \"https://source.example/feed.xml\"\n+++\n\n{}\n",
        toml_str(&f.title),
        toml_str(&f.summary),
        toml_str(&f.source_name),
        f.body
    )
}

fn parse(config: &Config, file: &str) -> Parsed {
    let sanitizer = Sanitizer::new(&config.base_url);
    let ctx = Context {
        config,
        sanitizer: &sanitizer,
        spool: None,
    };
    vestnik::entry::parse(&ctx, Path::new("entries/p.md"), "p.md", file.as_bytes())
}

fn publish(zone: &str, file: &str) -> Site {
    let config = config(zone);
    let parsed = parse(&config, file);
    let entry = parsed.entry.unwrap_or_else(|| {
        panic!(
            "entry rejected: {:?}\n--- file ---\n{file}",
            parsed.diagnostics
        )
    });
    Site::new(config, vec![Arc::new(entry)], Vec::new())
}

/// Every feed in every format, checked strictly; the combined feed's
/// documents come back parsed by feed-rs, one per format.
fn render_checked(site: &Site) -> Vec<(Format, Vec<u8>, feed_rs::model::Feed)> {
    for feed in site.feeds() {
        for format in Format::ALL {
            let what = format!("/feeds/{}.{}", feed.scope.slug(), format.extension());
            let bytes = render::render(&feed, format, render::Retain::Keep);
            checks::check_feed(&what, format, &bytes);
            let text = std::str::from_utf8(&bytes).expect("UTF-8");
            if let Some(c) = text.chars().find(|&c| !is_xml_char(c)) {
                panic!("{what} carries U+{:04X}", u32::from(c));
            }
        }
    }
    Format::ALL
        .into_iter()
        .map(|format| {
            let bytes = render::render(&site.feed(Scope::All), format, render::Retain::Keep);
            let parsed = feed_rs::parser::parse(&bytes[..]).unwrap_or_else(|e| {
                panic!(
                    "feed-rs rejects {format:?}: {e}\n{}",
                    String::from_utf8_lossy(&bytes)
                )
            });
            (format, bytes, parsed)
        })
        .collect()
}

/// Every string in a JSON document.
fn json_strings(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(a) => a.iter().for_each(|x| json_strings(x, out)),
        serde_json::Value::Object(o) => o.values().for_each(|x| json_strings(x, out)),
        _ => {}
    }
}

/// What a plain-text field becomes: forbidden characters out, white space squashed.
fn cleaned(s: &str) -> String {
    squash_whitespace(&xml_safe(s))
}

/// The summary as a reader gets it: RSS `<description>` is HTML, the others text.
fn summary_text(entry: &feed_rs::model::Entry) -> Option<String> {
    entry.summary.as_ref().map(|t| {
        if t.content_type.essence().to_string() == "text/html" {
            checks::html_text(&t.content)
        } else {
            t.content.clone()
        }
    })
}

/// Checks that title, summary, source name and body text come back as written
/// (after cleaning) from every format; `body_text` is the body's expected text.
fn check_round_trip(fields: &Fields, body_text: &str) -> Result<(), TestCaseError> {
    let title = cleaned(&fields.title);
    let summary = cleaned(&fields.summary);
    let name = cleaned(&fields.source_name);
    prop_assume!(!title.is_empty() && !summary.is_empty() && !name.is_empty());
    let site = publish("Europe/Berlin", &entry_file(fields, "2024-05-01T10:00:00Z"));
    let entry: &Entry = &site.entries[0];
    prop_assert_eq!(&entry.title, &title);
    let content = squash_whitespace(&checks::html_text(&vestnik::render::content_html(
        &site,
        entry,
        vestnik::render::Retain::Keep,
    )));
    prop_assert!(
        content.contains(&format!("Source: {name}")),
        "source name {:?} not in {:?}",
        name,
        content
    );
    prop_assert!(
        content.contains(body_text),
        "body {:?} not in {:?}",
        body_text,
        content
    );
    for (format, bytes, feed) in render_checked(&site) {
        let e = &feed.entries[0];
        let got_title = e.title.as_ref().map(|t| t.content.clone());
        prop_assert_eq!(
            got_title.as_deref(),
            Some(title.as_str()),
            "title in {:?}",
            format
        );
        let got_summary = summary_text(e);
        prop_assert_eq!(
            got_summary.as_deref(),
            Some(summary.as_str()),
            "summary in {:?}",
            format
        );
        if format.media_type().contains("json") {
            let value: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON");
            let mut strings = Vec::new();
            json_strings(&value, &mut strings);
            for s in strings {
                prop_assert!(s.chars().all(is_xml_char), "JSON string {:?}", s);
            }
        }
    }
    Ok(())
}

/// Backslash-escapes every ASCII punctuation character, which CommonMark
/// then shows literally, so the body's text is exactly `s`.
fn markdown_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let escape = c.is_ascii_punctuation().then_some('\\');
            escape.into_iter().chain(std::iter::once(c))
        })
        .collect()
}

/// Letters, digits and spaces with characters XML forbids mixed in.
fn text_with_forbidden() -> impl Strategy<Value = String> {
    let forbidden = prop_oneof![
        proptest::char::range('\u{0}', '\u{8}'),
        proptest::char::range('\u{B}', '\u{C}'),
        proptest::char::range('\u{E}', '\u{1F}'),
        Just('\u{FFFE}'),
        Just('\u{FFFF}'),
    ];
    let ordinary = prop_oneof![
        proptest::char::range('a', 'z'),
        proptest::char::range('а', 'я'),
        proptest::char::range('0', '9'),
        Just(' '),
    ];
    proptest::collection::vec(prop_oneof![3 => ordinary, 1 => forbidden], 1..60)
        .prop_map(|v| v.into_iter().collect())
}

/// Text full of XML and HTML syntax: CDATA ends, ampersands, angle brackets,
/// named and numeric entities, tags and quotes.
fn markup_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("]]>".to_owned()),
        Just("<![CDATA[".to_owned()),
        Just("&".to_owned()),
        Just("<".to_owned()),
        Just(">".to_owned()),
        Just("&amp;".to_owned()),
        Just("&nbsp;".to_owned()),
        Just("&lt;".to_owned()),
        Just("&laquo;".to_owned()),
        Just("&#x26;".to_owned()),
        Just("&#0;".to_owned()),
        Just("<b>".to_owned()),
        Just("</p>".to_owned()),
        Just("<script>".to_owned()),
        Just("\"".to_owned()),
        Just("'".to_owned()),
        Just(" ".to_owned()),
        "[a-zа-я]{1,6}",
    ];
    proptest::collection::vec(piece, 1..24).prop_map(|v| v.concat())
}

/// Right-to-left scripts, direction marks and overrides, emoji with
/// modifiers, ZWJ sequences and flags, combining marks, and spaces.
fn rtl_and_emoji() -> impl Strategy<Value = String> {
    let c = prop_oneof![
        proptest::char::range('\u{5D0}', '\u{5EA}'),
        proptest::char::range('\u{621}', '\u{64A}'),
        proptest::char::range('\u{660}', '\u{669}'),
        proptest::char::range('\u{300}', '\u{36F}'),
        proptest::char::ranges(vec!['\u{200D}'..='\u{200F}', '\u{202A}'..='\u{202E}'].into()),
        proptest::char::range('\u{2066}', '\u{2069}'),
        proptest::char::range('\u{1F300}', '\u{1F64F}'),
        proptest::char::range('\u{1F3FB}', '\u{1F3FF}'),
        proptest::char::range('\u{1F1E6}', '\u{1F1FF}'),
        Just('\u{FE0F}'),
        Just(' '),
        proptest::char::range('a', 'z'),
    ];
    proptest::collection::vec(c, 1..40).prop_map(|v| v.into_iter().collect())
}

fn proptest_config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // Failures are reported with their minimal input; no files are
        // written into the source tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(proptest_config(128))]

    #[test]
    fn forbidden_characters_are_removed_from_every_output(
        title in text_with_forbidden(),
        summary in text_with_forbidden(),
        source_name in text_with_forbidden(),
        body in text_with_forbidden(),
    ) {
        let body_text = cleaned(&body);
        let fields = Fields { title, summary, source_name, body };
        check_round_trip(&fields, &body_text)?;
    }

    #[test]
    fn markup_like_text_stays_text_and_feeds_stay_well_formed(
        title in markup_like(),
        summary in markup_like(),
        source_name in markup_like(),
        body in markup_like(),
    ) {
        let body_text = cleaned(&body);
        let fields = Fields { title, summary, source_name, body: markdown_escape(&body) };
        check_round_trip(&fields, &body_text)?;
    }

    #[test]
    fn right_to_left_text_and_emoji_round_trip(
        title in rtl_and_emoji(),
        summary in rtl_and_emoji(),
        source_name in rtl_and_emoji(),
        body in rtl_and_emoji(),
    ) {
        let body_text = cleaned(&body);
        let fields = Fields { title, summary, source_name, body };
        check_round_trip(&fields, &body_text)?;
    }
}

#[test]
fn megabyte_fields_render_and_parse() {
    let unit = "Заголовок & <b>жирный</b> ]]> &amp; שלום עולם 😀👩‍👩‍👧 ";
    let mb = |s: &str| s.repeat(1_000_000 / s.len() + 1);
    let big = mb(unit);
    let paragraphs = mb(&format!("{}\n\n", markdown_escape(unit)));
    let small = Fields {
        title: "Title".into(),
        summary: "Summary.".into(),
        source_name: "Source".into(),
        body: "Body.".into(),
    };
    let cases = [
        (
            "title",
            Fields {
                title: big.clone(),
                ..small.clone()
            },
        ),
        (
            "summary",
            Fields {
                summary: big.clone(),
                ..small.clone()
            },
        ),
        (
            "source name",
            Fields {
                source_name: big.clone(),
                ..small.clone()
            },
        ),
        (
            "body",
            Fields {
                body: paragraphs,
                ..small.clone()
            },
        ),
    ];
    for (what, fields) in cases {
        let body_text = if what == "body" {
            cleaned(unit)
        } else {
            "Body.".to_owned()
        };
        check_round_trip(&fields, &body_text).unwrap_or_else(|e| panic!("1 MB {what}: {e}"));
    }
}

// ---------------------------------------------------------------------------
// Dates

/// How a date is written in front matter.
#[derive(Debug, Clone, Copy)]
enum Form {
    /// `"22.08.2022"`
    Dots,
    /// `"22.08.2022 14:05"`
    DotsTime,
    /// `"2022-08-22"`
    Iso,
    /// `"2022-08-22T14:05:00+03:00"`
    Rfc3339,
    /// `2022-08-22`
    TomlDate,
    /// `2022-08-22T14:05:00`
    TomlLocal,
    /// `2022-08-22T14:05:00+03:00`
    TomlOffset,
}

const FORMS: [Form; 7] = [
    Form::Dots,
    Form::DotsTime,
    Form::Iso,
    Form::Rfc3339,
    Form::TomlDate,
    Form::TomlLocal,
    Form::TomlOffset,
];

/// A local date and time, and an offset used only by the forms that carry one.
#[derive(Debug, Clone, Copy)]
struct When {
    date: NaiveDate,
    hour: u32,
    minute: u32,
    offset_minutes: i32,
}

impl Form {
    fn has_time(self) -> bool {
        !matches!(self, Form::Dots | Form::Iso | Form::TomlDate)
    }

    fn has_offset(self) -> bool {
        matches!(self, Form::Rfc3339 | Form::TomlOffset)
    }

    /// The TOML value of `date = ...` for this instant.
    fn write(self, w: &When) -> String {
        let d = w.date;
        let (h, m) = (w.hour, w.minute);
        let sign = if w.offset_minutes < 0 { '-' } else { '+' };
        let off = w.offset_minutes.abs();
        let offset = format!("{sign}{:02}:{:02}", off / 60, off % 60);
        let iso = d.format("%Y-%m-%d");
        let dots = d.format("%d.%m.%Y");
        match self {
            Form::Dots => format!("\"{dots}\""),
            Form::DotsTime => format!("\"{dots} {h:02}:{m:02}\""),
            Form::Iso => format!("\"{iso}\""),
            Form::Rfc3339 => format!("\"{iso}T{h:02}:{m:02}:00{offset}\""),
            Form::TomlDate => format!("{iso}"),
            Form::TomlLocal => format!("{iso}T{h:02}:{m:02}:00"),
            Form::TomlOffset => format!("{iso}T{h:02}:{m:02}:00{offset}"),
        }
    }
}

/// Parses a date value in an entry in `zone`, renders every format, checks
/// every document strictly, and compares what feed-rs reads back with the
/// model. Returns the resolved date.
fn check_date(zone: &str, value: &str) -> DateTime<FixedOffset> {
    let fields = Fields {
        title: "Dated".into(),
        summary: "Summary.".into(),
        source_name: "Source".into(),
        body: "Body.".into(),
    };
    let site = publish(zone, &entry_file(&fields, value));
    let published = site.entries[0].published;
    for (format, _, feed) in render_checked(&site) {
        let got = feed.entries[0].published;
        // feed-rs reads RFC 3339 (Atom, JSON Feed) fully; its RFC 2822 reader
        // gives up on some years, so RSS dates are compared when it has one.
        if got.is_some() || format != Format::Rss {
            assert_eq!(
                got,
                Some(published.to_utc()),
                "date {value} in {zone}: published in {format:?}"
            );
        }
    }
    published
}

/// True when a wall-clock time does not exist in `zone` (a DST gap), so the
/// published time is moved forward.
fn in_gap(zone: &str, local: chrono::NaiveDateTime) -> bool {
    let tz: chrono_tz::Tz = zone.parse().expect("zone");
    matches!(tz.from_local_datetime(&local), chrono::LocalResult::None)
}

fn any_when() -> impl Strategy<Value = When> {
    (
        1i32..=9999,
        1u32..=12,
        1u32..=31,
        0u32..24,
        0u32..60,
        -12 * 60..=14 * 60,
    )
        .prop_filter_map("no such day", |(y, mo, d, hour, minute, off)| {
            NaiveDate::from_ymd_opt(y, mo, d).map(|date| When {
                date,
                hour,
                minute,
                offset_minutes: off,
            })
        })
}

proptest! {
    #![proptest_config(proptest_config(256))]

    #[test]
    fn every_date_form_resolves_to_the_written_time(
        when in any_when(),
        form in proptest::sample::select(FORMS.to_vec()),
        zone in proptest::sample::select(ZONES.to_vec()),
    ) {
        let value = form.write(&when);
        let published = check_date(zone, &value);
        let (h, m) = if form.has_time() { (when.hour, when.minute) } else { (0, 0) };
        let local = when.date.and_hms_opt(h, m, 0).expect("valid time");
        if form.has_offset() {
            prop_assert_eq!(published.naive_local(), local, "{}", value);
            prop_assert_eq!(published.offset().local_minus_utc(), when.offset_minutes * 60);
        } else if !in_gap(zone, local) {
            prop_assert_eq!(published.naive_local(), local, "{} in {}", value, zone);
        } else {
            // Read with the offset before the gap: later on the wall clock.
            prop_assert!(published.naive_local() > local, "{} in {}", value, zone);
        }
    }
}

#[test]
fn date_boundaries_in_dst_zones() {
    let cases: &[(&str, &str, &str)] = &[
        // Leap days, including the century rules.
        (
            "Europe/Berlin",
            "\"29.02.2024\"",
            "2024-02-29T00:00:00+01:00",
        ),
        (
            "Europe/Berlin",
            "\"29.02.2000 23:59\"",
            "2000-02-29T23:59:00+01:00",
        ),
        (
            "America/New_York",
            "2024-02-29",
            "2024-02-29T00:00:00-05:00",
        ),
        (
            "America/New_York",
            "\"2024-02-29T12:00:00-05:00\"",
            "2024-02-29T12:00:00-05:00",
        ),
        // DST gaps: the missing half hour is read in the offset before it.
        (
            "Europe/Berlin",
            "\"31.03.2024 02:30\"",
            "2024-03-31T03:30:00+02:00",
        ),
        (
            "Europe/Berlin",
            "2024-03-31T02:00:00",
            "2024-03-31T03:00:00+02:00",
        ),
        (
            "America/New_York",
            "\"10.03.2024 02:30\"",
            "2024-03-10T03:30:00-04:00",
        ),
        (
            "America/New_York",
            "2024-03-10T02:59:00",
            "2024-03-10T03:59:00-04:00",
        ),
        // DST overlaps: the earlier of the two instants.
        (
            "Europe/Berlin",
            "\"27.10.2024 02:30\"",
            "2024-10-27T02:30:00+02:00",
        ),
        (
            "Europe/Berlin",
            "2024-10-27T02:59:00",
            "2024-10-27T02:59:00+02:00",
        ),
        (
            "America/New_York",
            "\"03.11.2024 01:30\"",
            "2024-11-03T01:30:00-04:00",
        ),
        (
            "America/New_York",
            "2024-11-03T01:00:00",
            "2024-11-03T01:00:00-04:00",
        ),
        // Years 1 and 9999, in local mean time where tzdata has nothing else.
        (
            "Europe/Berlin",
            "\"01.01.0001 00:00\"",
            "0001-01-01T00:00:00+00:53",
        ),
        (
            "America/New_York",
            "\"0001-01-01\"",
            "0001-01-01T00:00:00-04:56",
        ),
        (
            "America/New_York",
            "0001-01-01T00:00:00+14:00",
            "0001-01-01T00:00:00+14:00",
        ),
        (
            "Europe/Berlin",
            "\"31.12.9999 23:59\"",
            "9999-12-31T23:59:00+01:00",
        ),
        (
            "America/New_York",
            "9999-12-31T23:59:59",
            "9999-12-31T23:59:59-05:00",
        ),
        (
            "America/New_York",
            "\"9999-12-31T23:59:59-12:00\"",
            "9999-12-31T23:59:59-12:00",
        ),
    ];
    for (zone, value, want) in cases {
        let got = check_date(zone, value);
        assert_eq!(got.to_rfc3339(), *want, "date = {value} in {zone}");
    }
}

#[test]
fn impossible_and_out_of_range_dates_are_rejected_with_a_reason() {
    let config = config("Europe/Berlin");
    let fields = Fields {
        title: "Dated".into(),
        summary: "Summary.".into(),
        source_name: "Source".into(),
        body: "Body.".into(),
    };
    let cases = [
        ("\"29.02.2023\"", "no such date"),
        ("\"29.02.1900\"", "no such date"),
        ("2100-02-29", "day between 01 and 28"),
        ("\"00.01.0000\"", "out of range"),
        ("\"0000-06-01T00:00:00Z\"", "out of range"),
        ("\"10000-01-01\"", "unrecognized date"),
        ("\"31.04.2024\"", "has only 30 days"),
    ];
    for (value, reason) in cases {
        let parsed = parse(&config, &entry_file(&fields, value));
        let messages: Vec<String> = parsed.diagnostics.iter().map(|d| d.to_string()).collect();
        assert!(
            parsed.entry.is_none() && messages.iter().any(|m| m.contains(reason)),
            "date = {value}: expected {reason:?}, got {messages:?}"
        );
    }
}
