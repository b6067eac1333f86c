//! `vestnik check` over fixture directories: every problem named, exit codes right.

mod common;

use common::run;

#[test]
fn check_reports_every_broken_file_and_exits_1() {
    let (code, stdout, stderr) = run(&["check", "tests/data/broken"]);
    let expected = [
        "tests/data/broken/entries/broken-toml.md:2:24: front matter: invalid basic string",
        "tests/data/broken/entries/empty.md:1:1: empty file",
        "tests/data/broken/entries/impossible-date.md:3:8: date: no such date: month 02 of 2022 has only 28 days (31.02.2022)",
        "tests/data/broken/entries/latin1.md:2:17: invalid UTF-8 (byte 0xE9); save the file as UTF-8",
        "tests/data/broken/entries/no-date.md:2:1: missing date in front matter",
        "tests/data/broken/entries/no-front-matter.md:1:1: no front matter",
        "tests/data/broken/entries/no-sections.md:2:1: missing sections in front matter",
        "tests/data/broken/entries/no-title.md:2:1: missing title in front matter",
        "tests/data/broken/entries/sub/duplicate.md:1:1: duplicate id \"a-good\": tests/data/broken/entries/a-good.md has it too and is published",
        "tests/data/broken/entries/unknown-section.md:4:13: unknown section \"transprot\" (known: transport, sport)",
        "tests/data/broken/entries/unterminated.md:1:1: front matter opened with `+++` on line 1 is never closed",
    ];
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.len(),
        expected.len(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for (line, want) in lines.iter().zip(expected) {
        assert!(line.starts_with(want), "got  {line:?}\nwant {want:?}");
    }
    // Ignored names (backups, swap files, `_` files) are not problems.
    assert!(!stdout.contains(".swp") && !stdout.contains("~") && !stdout.contains("_notes"));
    assert_eq!(code, 1, "stderr: {stderr}");
    assert!(
        stderr.contains("2 entries in 2 sections, 11 problem(s)"),
        "{stderr}"
    );
}

#[test]
fn check_of_clean_data_exits_0() {
    for dir in ["data", "tests/data/good-min"] {
        let (code, stdout, stderr) = run(&["check", dir]);
        assert_eq!((code, stdout.as_str()), (0, ""), "{dir}: {stderr}");
    }
}

#[test]
fn broken_or_missing_site_toml_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, _) = run(&["check", dir.path().to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        stdout.contains("site.toml:1:1: cannot read site configuration"),
        "{stdout}"
    );

    std::fs::write(
        dir.path().join("site.toml"),
        "title = \"x\"\nbase_url = \"http://a/\"\ntimezone = \"Mars/Olympus\"\n",
    )
    .unwrap();
    let (code, stdout, _) = run(&["check", dir.path().to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        stdout.contains("site.toml:3:12: unknown time zone \"Mars/Olympus\""),
        "{stdout}"
    );

    // serve refuses to start, names the file, and exits non-zero.
    let (code, _, stderr) = run(&[
        "serve",
        dir.path().to_str().unwrap(),
        "--addr",
        "127.0.0.1:0",
    ]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("unknown time zone \"Mars/Olympus\""),
        "{stderr}"
    );
}

#[test]
fn bad_files_do_not_stop_the_rest_from_being_served() {
    let site = vestnik::load_site(&common::root().join("tests/data/broken")).unwrap();
    let ids: Vec<&str> = site.entries.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["unknown-section", "a-good"]);
    let sport = site.config.section("sport").unwrap();
    let feed = site.feed(vestnik::model::Scope::Section(sport));
    assert_eq!(
        feed.entries.len(),
        1,
        "the entry with one unknown section stays in its known one"
    );
}

#[test]
fn check_reports_every_problem_in_a_file() {
    let (code, stdout, stderr) = run(&["check", "tests/data/many-problems"]);
    let media = "tests/data/many-problems/entries/media.md";
    let several = "tests/data/many-problems/entries/several.md";
    let missing = "No such file or directory (os error 2); the entry is published without it (put the file in DATA/media/ or fix the path)";
    let expected = [
        format!(
            "{media}:5:9: unknown genre \"news\" (known: lenta, message, article, interview); using message"
        ),
        // Both missing media files, not only the first.
        format!("{media}:6:9: no file media/2024/photo.jpg: {missing}"),
        format!("{media}:8:7: no file media/2024/interview.mp3: {missing}"),
        format!(
            "{media}:10:7: enclosure path \"../site.toml\": empty, `.` and `..` path segments are not allowed; the entry is published without this enclosure"
        ),
        // The impossible date skips the entry, and every other problem of
        // the file is still named.
        format!(
            "{several}:3:8: date: no such date: month 02 of 2022 has only 28 days (31.02.2022)"
        ),
        format!(
            "{several}:4:12: unknown time zone \"Asia/Nowhere\"; use an IANA name such as \"Asia/Vladivostok\""
        ),
        format!(
            "{several}:5:13: unknown section \"transprot\" (known: transport, sport); the entry is still published in its other sections and the combined feed"
        ),
        format!("{several}:6:8: link \"javascript:alert(1)\" is not an http(s) URL"),
        format!(
            "{several}:7:1: unknown front matter key `sumary` is ignored (known: title, date, updated, publish_at, expires, timezone, sections, id, summary, link, authors, source, draft, enclosures, image, genre, extra); put custom data under [extra]"
        ),
    ];
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines, expected, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(code, 1, "stderr: {stderr}");
    assert!(
        stderr.contains("1 entries in 2 sections, 9 problem(s)"),
        "{stderr}"
    );
}
