//! End-to-end in headless Chromium (Debian's `chromium`, installed by
//! scripts/test): the home page renders every section, its autodiscovery
//! links lead to valid feeds, a section leads to news, a news page shows its
//! source, and a screenshot of the home page is kept as a test artifact at
//! `target/test-artifacts/index.png`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Server, client, data_with_own_port, root};

/// The flags Chromium needs here (as root, without a GPU or network),
/// for the command line and for tests/csp_check.py alike.
const CHROMIUM_FLAGS: [&str; 7] = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
];

/// Runs headless Chromium with [`CHROMIUM_FLAGS`], plus `args`.
fn chromium(profile: &Path, args: &[&str]) -> String {
    let mut cmd = Command::new("chromium");
    cmd.arg("--headless")
        .args(CHROMIUM_FLAGS)
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args);
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run chromium ({e}); scripts/test installs Debian's chromium package")
    });
    assert!(
        out.status.success(),
        "{cmd:?} failed\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Values of `attr` on tags of `doc` that contain `marker`.
fn attrs<'a>(doc: &'a str, marker: &str, attr: &str) -> Vec<&'a str> {
    doc.split('<')
        .filter(|tag| tag.contains(marker))
        .filter_map(|tag| {
            let start = tag.find(&format!("{attr}=\""))? + attr.len() + 2;
            Some(&tag[start..start + tag[start..].find('"')?])
        })
        .collect()
}

#[test]
fn a_reader_finds_sections_news_and_feeds_in_a_real_browser() {
    let (dir, addr) = data_with_own_port(&root().join("data"));
    let server = Server::start(dir.path(), &["--addr", &addr]);
    let profile = tempfile::tempdir().unwrap();
    let http = client();

    // The home page as the browser built it.
    let dom = chromium(profile.path(), &["--dump-dom", &server.url("/")]);
    assert_eq!(dom.matches("<li class=\"section\">").count(), 18, "{dom}");
    assert!(dom.contains("Информатизация органов местного самоуправления"));
    assert!(dom.contains("Муниципальный спорт и физическая культура"));

    // Every autodiscovery link resolves to a feed feed-rs accepts.
    let alternates = attrs(&dom, "rel=\"alternate\"", "href");
    assert_eq!(
        alternates.len(),
        3,
        "RSS, Atom and JSON Feed: {alternates:?}"
    );
    for href in alternates {
        let body = http.get(href).send().unwrap().bytes().unwrap();
        let feed = feed_rs::parser::parse(&body[..]).unwrap_or_else(|e| panic!("{href}: {e}"));
        assert!(!feed.entries.is_empty(), "{href}");
    }

    // Click through: a section, then one of its news items.
    let section = attrs(&dom, "/sections/informatizatsiia", "href")[0].to_owned();
    let section_dom = chromium(profile.path(), &["--dump-dom", &section]);
    assert_eq!(attrs(&section_dom, "rel=\"alternate\"", "href").len(), 3);
    assert!(section_dom.contains("/feeds/informatizatsiia-organov-mestnogo-samoupravleniia.rss"));
    let news = attrs(&section_dom, "/news/2022-08-22-ano-dialog", "href")[0].to_owned();
    let news_dom = chromium(profile.path(), &["--dump-dom", &news]);
    assert!(news_dom.contains("22 августа 2022"), "{news_dom}");
    assert!(news_dom.contains("Источник: "), "{news_dom}");
    assert!(news_dom.contains("Информационное агентство URA.RU"));

    // A phone-width screenshot of the home page, kept for people to look at.
    let artifacts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join("index.png");
    let _ = std::fs::remove_file(&shot);
    chromium(
        profile.path(),
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=412,1600",
            "--hide-scrollbars",
            &server.url("/"),
        ],
    );
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    eprintln!("screenshot: {}", shot.display());
}

/// The Content-Security-Policy violations each URL causes in headless
/// Chromium, by URL: `securitypolicyviolation` events and console errors
/// (tests/csp_check.py, Playwright driving Debian's chromium).
fn csp_violations(urls: &[String]) -> serde_json::Map<String, serde_json::Value> {
    let script = root().join("tests/csp_check.py");
    let out = Command::new("python3")
        .arg(&script)
        .args(urls)
        .env("CHROMIUM_FLAGS", CHROMIUM_FLAGS.join(" "))
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run python3 {}: {e}; run scripts/test",
                script.display()
            )
        });
    assert!(
        out.status.success(),
        "{} failed (scripts/test installs playwright):\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn every_page_keeps_its_content_security_policy() {
    // The check itself: a page whose inline style its policy refuses is seen.
    let control = tempfile::tempdir().unwrap();
    let bad = control.path().join("bad.html");
    std::fs::write(
        &bad,
        "<meta http-equiv=\"Content-Security-Policy\" content=\"style-src 'none'\"><style>body{color:red}</style>x",
    )
    .unwrap();
    let bad_url = format!("file://{}", bad.display());
    let seen = csp_violations(std::slice::from_ref(&bad_url));
    assert!(
        seen[&bad_url].as_array().is_some_and(|v| !v.is_empty()),
        "the check does not see CSP violations: {seen:?}"
    );

    let (dir, addr) = data_with_own_port(&root().join("data"));
    let server = Server::start(dir.path(), &["--addr", &addr]);
    let http = client();
    let news = "/news/2022-08-22-ano-dialog-u-vsekh-gorodov-i-raionov-rossii-poiavilis";
    let pages = [
        "/",
        "/?page=2",
        "/sections/informatizatsiia-organov-mestnogo-samoupravleniia",
        news,
        "/subscribe",
    ];
    for path in pages {
        let r = http.get(server.url(path)).send().unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let csp = r.headers()["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
        assert_eq!(
            r.headers()["referrer-policy"],
            "strict-origin-when-cross-origin"
        );
    }
    let urls: Vec<String> = pages.iter().map(|p| server.url(p)).collect();
    let violations = csp_violations(&urls);
    assert_eq!(violations.len(), urls.len());
    for (url, found) in &violations {
        assert_eq!(found.as_array().map(Vec::len), Some(0), "{url}: {found}");
    }
    // Feeds, OPML and error bodies are not sniffed either.
    for path in [
        "/feeds/all.rss",
        "/feeds.opml",
        "/nope",
        "/feeds/all.rss?sections=<script>",
    ] {
        let r = http.get(server.url(path)).send().unwrap();
        assert_eq!(r.headers()["x-content-type-options"], "nosniff", "{path}");
        if !r.status().is_success() {
            assert_eq!(
                r.headers()["content-type"],
                "text/plain; charset=utf-8",
                "{path}"
            );
        }
    }
}
