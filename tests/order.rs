//! Feed order: newest first by date, ties broken by id, limited to feed_limit;
//! feed dates come from the entries, never the clock.

mod common;

use vestnik::model::Scope;

#[test]
fn newest_first_with_ties_broken_by_id() {
    let site = vestnik::load_site(&common::root().join("tests/data/ties")).unwrap();
    assert!(site.diagnostics.is_empty(), "{:#?}", site.diagnostics);
    let ids: Vec<&str> = site
        .feed(Scope::All)
        .entries
        .iter()
        .map(|e| e.id.as_str())
        .collect();
    // a, b and c are the same instant written three ways.
    assert_eq!(ids, ["z-newer", "a", "b", "c", "older"]);

    // The feed's date is the newest updated-or-date: "older" was updated last.
    let all = site.feed(Scope::All);
    assert_eq!(all.updated().to_rfc3339(), "2025-01-24T00:00:00+07:00");
    let sport = site.config.section("sport").unwrap();
    assert_eq!(
        site.feed(Scope::Section(sport)).updated().to_rfc3339(),
        "2025-01-23T10:01:00+07:00"
    );
}

#[test]
fn feed_limit_caps_every_feed() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = common::root().join("tests/data/ties");
    let site_toml = std::fs::read_to_string(fixture.join("site.toml")).unwrap();
    std::fs::write(
        dir.path().join("site.toml"),
        format!("feed_limit = 2\n{site_toml}"),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("entries")).unwrap();
    for f in std::fs::read_dir(fixture.join("entries")).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), dir.path().join("entries").join(f.file_name())).unwrap();
    }
    let site = vestnik::load_site(dir.path()).unwrap();
    let ids: Vec<&str> = site
        .feed(Scope::All)
        .entries
        .iter()
        .map(|e| e.id.as_str())
        .collect();
    assert_eq!(ids, ["z-newer", "a"]);
    let transport = site.config.section("transport").unwrap();
    let ids: Vec<&str> = site
        .feed(Scope::Section(transport))
        .entries
        .iter()
        .map(|e| e.id.as_str())
        .collect();
    assert_eq!(ids, ["a", "b"]);
}
