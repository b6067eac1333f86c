//! `vestnik build` writes exactly what `serve` answers: every exported file,
//! and its `.gz` and `.br` siblings, compared byte for byte with the response
//! for the same URL and encoding.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use common::{Server, client, root, run};

/// The URL path each file of the export answers for, through the one map
/// of the site: every key the snapshot lists, at its `Key::file`, and every
/// media file at its URL.
fn urls_by_file(data: &Path) -> HashMap<String, String> {
    let site = vestnik::load_site(data).unwrap();
    let snapshot = vestnik::snapshot::Snapshot::build_from(Arc::new(site), None);
    let mut urls: HashMap<String, String> = snapshot
        .keys()
        .into_iter()
        .filter_map(|key| Some((key.file()?, key.path())))
        .collect();
    for (rel, _) in vestnik::media::list(data) {
        let file = format!("{}/{rel}", vestnik::urls::MEDIA_DIR);
        urls.insert(file, format!("/{}", vestnik::urls::media(&rel)));
    }
    urls
}

fn files(dir: &Path, base: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, base, out);
        } else if path
            .file_name()
            .is_some_and(|n| n == vestnik::out_dir::MANIFEST)
        {
            // The build's own record, not a resource.
        } else {
            out.push(
                path.strip_prefix(base)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
}

#[test]
fn export_is_byte_identical_to_serve() {
    check_export(&root().join("data"));
}

/// Media files are copied into `OUT/media/` as `serve` sends them.
#[test]
fn export_of_media_is_byte_identical_to_serve() {
    check_export(&root().join("tests/data/media"));
}

/// With 3 entries per feed, the shipped feeds have later pages (RFC 5005),
/// which export writes as `feeds/pages/{slug}/{n}.{ext}`, and so do the
/// larger sections' pages (`sections/{slug}/page/{n}/index.html`).
#[test]
fn export_of_feed_pages_is_byte_identical_to_serve() {
    let tmp = tempfile::tempdir().unwrap();
    common::copy_dir(&root().join("data"), tmp.path());
    let site = std::fs::read_to_string(tmp.path().join("site.toml")).unwrap();
    let site = site.replace("feed_limit = 50", "feed_limit = 3");
    std::fs::write(tmp.path().join("site.toml"), site).unwrap();
    let (pages, listings) = check_export(tmp.path());
    // 32 entries: all.* has 11 pages; sections have 1 or 2.
    assert!(pages >= 3 * 10, "only {pages} later pages exported");
    // The home page's second page, and those of the two sections of 4.
    assert!(
        listings >= 3,
        "only {listings} later listing pages exported"
    );
}

/// Exports `data`, compares every file with `serve`, and returns how many
/// later feed pages and later home and section pages were exported.
fn check_export(data: &Path) -> (usize, usize) {
    let data = data.to_path_buf();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("site");
    // A build into an earlier build replaces it, and leaves nothing beside it.
    for _ in 0..2 {
        let (code, _, stderr) = run(&["build", data.to_str().unwrap(), out.to_str().unwrap()]);
        assert_eq!(code, 0, "{stderr}");
    }
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        1,
        "temporary directories left: {leftovers:?}"
    );

    let server = Server::start(&data, &[]);
    let http = client();
    let mut all = Vec::new();
    files(&out, &out, &mut all);
    all.sort();
    let site = vestnik::load_site(&data).unwrap();
    // Each feed in 3 formats and the Yandex profile, a page per section,
    // the home page, the subscribe page, 3 OPML lists, one page per entry,
    // each feed's later pages in 3 formats, the later pages of the home page
    // (20 entries each) and of each section's page (`feed_limit` each, like
    // its feed), and the media files.
    let later_pages: usize = site.feeds().iter().map(|f| 3 * (f.pages - 1)).sum();
    let later_listings: usize = site.entries.len().div_ceil(20).max(1) - 1
        + site
            .feeds()
            .iter()
            .filter(|f| matches!(f.scope, vestnik::model::Scope::Section(_)))
            .map(|f| f.pages - 1)
            .sum::<usize>();
    let expected = site.feeds().len() * 4
        + site.config.sections.len()
        + 1
        + 1
        + 3
        + site.entries.len()
        + later_pages
        + later_listings
        + vestnik::media::list(&data).len()
        // robots.txt, sitemap.xml and sitemap-news.xml.
        + 3;
    let plain: Vec<&String> = all
        .iter()
        .filter(|f| !f.ends_with(".gz") && !f.ends_with(".br"))
        .collect();
    assert_eq!(plain.len(), expected, "{plain:#?}");

    let urls = urls_by_file(&data);
    let mut compared = 0;
    for rel in &all {
        let (base, encoding) = match (rel.strip_suffix(".gz"), rel.strip_suffix(".br")) {
            (Some(b), _) => (b, "gzip"),
            (_, Some(b)) => (b, "br"),
            _ => (rel.as_str(), "identity"),
        };
        let url = urls
            .get(base)
            .unwrap_or_else(|| panic!("{rel}: exported, but no key names this file"));
        let r = http
            .get(server.url(url))
            .header("accept-encoding", encoding)
            .send()
            .unwrap();
        assert_eq!(r.status(), 200, "{url}");
        let got_encoding = r
            .headers()
            .get("content-encoding")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(
            got_encoding.as_deref().unwrap_or("identity"),
            encoding,
            "{url}"
        );
        let served = r.bytes().unwrap();
        let exported = std::fs::read(out.join(rel)).unwrap();
        assert!(
            served[..] == exported[..],
            "{rel} differs from GET {url} ({encoding})"
        );
        compared += 1;
    }
    assert_eq!(compared, all.len());
    // Feeds and listed pages carry both siblings.
    for rel in [
        "feeds/all.rss",
        "index.html",
        "feeds.opml",
        "subscribe/index.html",
    ] {
        assert!(
            all.contains(&format!("{rel}.gz")) && all.contains(&format!("{rel}.br")),
            "{rel}"
        );
    }
    // Entry pages and later pages of feeds and listings are written
    // without siblings: the web server compresses them on the fly.
    let rarely_fetched =
        |f: &str| f.starts_with("news/") || f.starts_with("feeds/pages/") || f.contains("page/");
    let siblings: Vec<&String> = all
        .iter()
        .filter(|f| rarely_fetched(f) && (f.ends_with(".gz") || f.ends_with(".br")))
        .collect();
    assert!(siblings.is_empty(), "{siblings:#?}");
    (later_pages, later_listings)
}
