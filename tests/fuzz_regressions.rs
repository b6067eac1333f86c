//! Replays the inputs fuzzing kept (`tests/data/fuzz/<target>/`: past crashes
//! and a coverage-chosen sample of each corpus) through the fuzz targets' own
//! property checks, on stable Rust, so what was fixed stays fixed. The checks
//! live in `fuzz/src/checks.rs`, compiled here and in the fuzz crate alike;
//! `fuzz/README.md` says how fixtures are chosen and added.

#[path = "../fuzz/src/checks.rs"]
mod checks;
mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

use common::root;

/// Every fixture of a target, sorted by name, with its bytes.
fn fixtures(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = root().join("tests/data/fuzz").join(target);
    let mut found: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, bytes)
        })
        .collect();
    found.sort();
    assert!(!found.is_empty(), "no fixtures in {}", dir.display());
    found
}

/// Runs `check` on every fixture of `target` and fails once, listing every
/// fixture that panicked and why.
fn replay(target: &str, check: impl Fn(&[u8])) {
    let mut failures = Vec::new();
    let fixtures = fixtures(target);
    for (path, bytes) in &fixtures {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| check(bytes))) {
            let why = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(non-string panic)");
            failures.push(format!("{}: {why}", path.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} {target} fixtures fail:\n{}",
        failures.len(),
        fixtures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn front_matter_dates_fixtures_hold() {
    let fixture = checks::Fixture::new();
    replay("front_matter_dates", |bytes| {
        checks::front_matter_dates(&fixture, bytes)
    });
}

#[test]
fn entry_to_feeds_fixtures_hold() {
    let fixture = checks::Fixture::new();
    replay("entry_to_feeds", |bytes| {
        checks::entry_to_feeds(&fixture, bytes)
    });
}

#[test]
fn http_request_fixtures_hold() {
    let snapshot = checks::good_min_snapshot(&root());
    replay("http_request", |bytes| {
        checks::http_request(&snapshot, bytes)
    });
}

#[test]
fn the_checks_catch_what_they_were_written_for() {
    // The replays above pass vacuously if a check never fires; these inputs
    // must each trip one.
    let fixture = checks::Fixture::new();
    let unsafe_html = [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "<a href=\"jav&#x09;ascript:alert(1)\">x</a>",
        "<iframe src=\"http://evil.example/\"></iframe>",
        "<img srcset=\"data:image/svg+xml,x 1x\">",
    ];
    for html in unsafe_html {
        assert!(
            !checks::markup_problems(html).is_empty(),
            "not flagged: {html}"
        );
    }
    assert!(checks::markup_problems("<p><a href=\"http://x.example/\">ok</a></p>").is_empty());

    let rss = b"<rss><channel><item><description>&lt;script&gt;x&lt;/script&gt;</description></item></channel></rss>";
    let caught = catch_unwind(|| checks::check_feed("rss", vestnik::render::Format::Rss, rss));
    assert!(caught.is_err(), "a script in an RSS description passed");
    let malformed = b"<rss><channel></rss>";
    let caught =
        catch_unwind(|| checks::check_feed("rss", vestnik::render::Format::Rss, malformed));
    assert!(caught.is_err(), "malformed XML passed");

    // A date entry that resolves fine must not trip the date checks.
    checks::front_matter_dates(&fixture, b"22.08.2022 14:05");
}
