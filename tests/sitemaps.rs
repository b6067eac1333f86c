//! Sitemaps and robots.txt: the sitemaps.org schema (validated by xmllint
//! against the XSD that scripts/test installs), the split into an index past
//! 50,000 URLs, and the Google News sitemap's two-day window.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{TimeZone as _, Utc};
use common::root;
use vestnik::snapshot::Snapshot;

/// The sitemaps.org 0.9 schema, as the npm package `sitemap` ships it.
fn schema() -> PathBuf {
    let xsd = root().join("target/test-npm/node_modules/sitemap/schema/sitemap.xsd");
    assert!(
        xsd.is_file(),
        "{} is missing; scripts/test installs it (npm package sitemap)",
        xsd.display()
    );
    xsd
}

/// Validates `xml` with xmllint against the sitemaps.org schema.
fn validate(xml: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sitemap.xml");
    std::fs::write(&file, xml).unwrap();
    let out = std::process::Command::new("xmllint")
        .args(["--noout", "--schema"])
        .arg(schema())
        .arg(&file)
        .output()
        .expect("xmllint (Debian libxml2-utils; scripts/test installs it)");
    assert!(
        out.status.success(),
        "not valid against sitemap.xsd:\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&xml[..xml.len().min(2000)])
    );
}

fn body(snapshot: &Snapshot, path: &str) -> Vec<u8> {
    snapshot
        .at(path)
        .unwrap_or_else(|| panic!("no {path}"))
        .identity
        .body
        .to_vec()
}

fn locs(xml: &[u8]) -> Vec<String> {
    let text = std::str::from_utf8(xml).unwrap();
    let doc = roxmltree::Document::parse(text).unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name("loc"))
        .map(|n| n.text().unwrap().to_owned())
        .collect()
}

#[test]
fn the_shipped_site_has_one_valid_sitemap_and_robots_names_both() {
    let site = vestnik::load_site(&root().join("data")).unwrap();
    let (entries, sections) = (site.entries.len(), site.config.sections.len());
    let snapshot = Snapshot::build(Arc::new(site));
    let xml = body(&snapshot, "/sitemap.xml");
    validate(&xml);
    let locs = locs(&xml);
    assert_eq!(locs.len(), 1 + sections + entries);
    assert_eq!(locs[0], "http://localhost:8080/");
    assert!(locs.contains(
        &"http://localhost:8080/news/2022-08-22-ano-dialog-u-vsekh-gorodov-i-raionov-rossii-poiavilis"
            .to_owned()
    ));
    assert!(
        snapshot.at("/sitemap-1.xml").is_none(),
        "no index for a small site"
    );
    let robots =
        String::from_utf8(snapshot.at("/robots.txt").unwrap().identity.body.to_vec()).unwrap();
    assert!(robots.contains("Sitemap: http://localhost:8080/sitemap.xml\n"));
    assert!(robots.contains("Sitemap: http://localhost:8080/sitemap-news.xml\n"));
}

/// A site of `n` entries in memory: one parsed entry cloned under new ids,
/// one minute apart, the newest at `newest`.
fn big_site(n: usize, newest: chrono::DateTime<Utc>) -> vestnik::model::Site {
    let config = vestnik::config::Config::parse(
        Path::new("site.toml"),
        "title = \"Большой\"\nbase_url = \"https://news.example.org/\"\nlanguage = \"ru\"\ntimezone = \"Asia/Novosibirsk\"\n[[sections]]\nslug = \"news\"\ntitle = \"News\"\n",
    )
    .unwrap();
    let sanitizer = vestnik::entry::html::Sanitizer::new(&config.base_url);
    let ctx = vestnik::entry::Context {
        config: &config,
        sanitizer: &sanitizer,
        spool: None,
    };
    let text = "+++\ntitle = \"Новость <и> «кавычки» & амперсанд\"\ndate = 2024-01-01\nsections = [\"news\"]\n+++\n\nТекст.\n";
    let template = vestnik::entry::parse(&ctx, Path::new("x.md"), "x.md", text.as_bytes())
        .entry
        .unwrap();
    let entries = (0..n)
        .map(|i| {
            let mut e = template.clone();
            e.id = format!("n{i:06}");
            e.published = (newest - chrono::Duration::minutes(i as i64)).fixed_offset();
            Arc::new(e)
        })
        .collect();
    vestnik::model::Site::new(config, entries, Vec::new())
}

#[test]
fn past_50000_urls_the_sitemap_is_an_index_over_valid_children() {
    let n = 100_000;
    let site = big_site(n, Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap());
    let snapshot = Snapshot::build(Arc::new(site));
    let index = body(&snapshot, "/sitemap.xml");
    let text = String::from_utf8(index.clone()).unwrap();
    assert!(text.contains("<sitemapindex xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">"));
    let children = locs(&index);
    assert_eq!(
        children,
        [
            "https://news.example.org/sitemap-1.xml",
            "https://news.example.org/sitemap-2.xml",
            "https://news.example.org/sitemap-3.xml"
        ]
    );
    let mut all = Vec::new();
    for (i, _) in children.iter().enumerate() {
        let xml = body(&snapshot, &format!("/sitemap-{}.xml", i + 1));
        assert!(xml.len() < vestnik::render::sitemap::MAX_BYTES);
        validate(&xml);
        let urls = locs(&xml);
        assert!(urls.len() <= vestnik::render::sitemap::MAX_URLS);
        all.extend(urls);
    }
    // Every page exactly once: home, the section, and every entry.
    assert_eq!(all.len(), 1 + 1 + n);
    let unique: std::collections::HashSet<&String> = all.iter().collect();
    assert_eq!(unique.len(), all.len());
    assert!(snapshot.at("/sitemap-4.xml").is_none());
    assert!(snapshot.at("/sitemap-0.xml").is_none());
    assert!(snapshot.at("/sitemap-01.xml").is_none());
    // Export writes the index and every child.
    let keys: Vec<String> = snapshot
        .keys()
        .iter()
        .filter(|k| k.path().starts_with("/sitemap"))
        .map(|k| k.path())
        .collect();
    assert!(keys.contains(&"/sitemap-3.xml".to_owned()) && keys.len() == 5);
}

#[test]
fn the_news_sitemap_lists_the_last_two_days_as_of_the_cutoff() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("site.toml"),
        "title = \"Вестник & Co\"\nbase_url = \"https://news.example.org/\"\nlanguage = \"ru\"\ntimezone = \"Asia/Novosibirsk\"\n[[sections]]\nslug = \"news\"\ntitle = \"News\"\n",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("entries")).unwrap();
    for (id, date) in [
        ("fresh", "2027-01-10T09:00:00+07:00"),
        ("yesterday", "2027-01-09T12:00:00+07:00"),
        ("old", "2027-01-07T09:00:00+07:00"),
        ("future", "2027-01-11T09:00:00+07:00"),
    ] {
        std::fs::write(
            dir.path().join(format!("entries/{id}.md")),
            format!("+++\ntitle = \"Статья {id}\"\ndate = \"{date}\"\nsections = [\"news\"]\n+++\n\nТекст.\n"),
        )
        .unwrap();
    }
    let news_at = |t| {
        let site = vestnik::load_site_at(dir.path(), None, Some(t)).unwrap();
        let next = site.schedule.next_change;
        let snapshot = Snapshot::build(Arc::new(site));
        (
            String::from_utf8(body(&snapshot, "/sitemap-news.xml")).unwrap(),
            next,
        )
    };
    // 2027-01-10 10:00 in Novosibirsk.
    let (xml, next) = news_at(Utc.with_ymd_and_hms(2027, 1, 10, 3, 0, 0).unwrap());
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let titles: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name(("http://www.google.com/schemas/sitemap-news/0.9", "title")))
        .map(|n| n.text().unwrap())
        .collect();
    assert_eq!(titles, ["Статья fresh", "Статья yesterday"], "{xml}");
    assert!(
        xml.contains("<news:name>Вестник &amp; Co</news:name>"),
        "{xml}"
    );
    assert!(xml.contains("<news:language>ru</news:language>"));
    assert!(
        xml.contains("<news:publication_date>2027-01-10T09:00:00+07:00</news:publication_date>")
    );
    // The window moves with the cutoff: the server wakes when `yesterday`
    // leaves it (unless `future` is due first, which it is).
    assert_eq!(
        next,
        Some(Utc.with_ymd_and_hms(2027, 1, 11, 2, 0, 0).unwrap())
    );
    let (later, _) = news_at(Utc.with_ymd_and_hms(2027, 1, 11, 5, 0, 1).unwrap());
    assert!(!later.contains("Статья yesterday"), "{later}");
    assert!(later.contains("Статья fresh") && later.contains("Статья future"));
    let (empty, _) = news_at(Utc.with_ymd_and_hms(2027, 2, 1, 0, 0, 0).unwrap());
    assert!(!empty.contains("<url>"));
}
