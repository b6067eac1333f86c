//! JSON Feed, OPML and the HTML pages over HTTP: every feed link resolves,
//! pages revalidate like feeds, OPML parses in Python's listparser.

mod common;

use std::process::Command;

use common::{Server, client, data_with_own_port, root};

const SEED: &str = "2022-08-22-ano-dialog-u-vsekh-gorodov-i-raionov-rossii-poiavilis";

#[test]
fn every_link_in_every_feed_resolves() {
    let (dir, addr) = data_with_own_port(&root().join("data"));
    let server = Server::start(dir.path(), &["--addr", &addr]);
    let http = client();
    let site = vestnik::load_site(dir.path()).unwrap();
    let mut checked = 0;
    for feed in site.feeds() {
        let body = http
            .get(feed.url("rss").as_str())
            .send()
            .unwrap()
            .text()
            .unwrap();
        let parsed = feed_rs::parser::parse(body.as_bytes()).unwrap();
        for entry in parsed.entries {
            for link in entry
                .links
                .iter()
                .filter(|l| l.href.starts_with(&server.base))
            {
                let r = http.get(&link.href).send().unwrap();
                assert_eq!(r.status(), 200, "{}", link.href);
                checked += 1;
            }
        }
        // The channel link is the section's page.
        let page = http.get(feed.html_url().as_str()).send().unwrap();
        assert_eq!(page.status(), 200, "{}", feed.html_url());
    }
    assert!(checked >= site.entries.len(), "checked {checked} links");
}

#[test]
fn pages_have_etags_and_answer_conditional_get() {
    let server = Server::start(&root().join("data"), &[]);
    let http = client();
    for path in [
        "/".to_owned(),
        "/sections/gradoustroistvo".to_owned(),
        format!("/news/{SEED}"),
        "/feeds.opml".to_owned(),
        "/feeds/all.json".to_owned(),
    ] {
        let r = http
            .get(server.url(&path))
            .header("accept-encoding", "gzip")
            .send()
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let etag = r.headers()["etag"].to_str().unwrap().to_owned();
        assert!(etag.starts_with('"'), "{path}: strong ETag {etag}");
        assert_eq!(r.headers()["vary"], "Accept-Encoding");
        let again = http
            .get(server.url(&path))
            .header("accept-encoding", "gzip")
            .header("if-none-match", &etag)
            .send()
            .unwrap();
        assert_eq!(again.status(), 304, "{path}");
    }
    let r = http.get(server.url("/news/no-such-entry")).send().unwrap();
    assert_eq!(r.status(), 404);
    let r = http
        .get(server.url("/sections/no-such-section"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = http.get(server.url("/feeds/all.json")).send().unwrap();
    assert_eq!(
        r.headers()["content-type"],
        "application/feed+json; charset=utf-8"
    );
}

#[test]
fn news_page_shows_date_sections_source_and_body() {
    let server = Server::start(&root().join("data"), &[]);
    let page = client()
        .get(server.url(&format!("/news/{SEED}")))
        .send()
        .unwrap();
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let html = page.text().unwrap();
    assert!(html.contains("<html lang=\"ru\">"));
    assert!(html.contains("22 августа 2022"), "Russian date");
    assert!(html.contains(">Информатизация органов местного самоуправления</a>"));
    assert!(html.contains("Источник: <a href=\"https://ura.news/\" rel=\"noopener noreferrer\">Информационное агентство URA.RU</a>"));
    assert!(html.contains("Так, руководитель ЦУР Ульяновской области"));
    assert!(!html.contains("<script"), "no JavaScript needed or allowed");
}

#[test]
fn opml_lists_every_feed_and_parses_in_listparser() {
    let server = Server::start(&root().join("data"), &[]);
    let http = client();
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (query, ext) in [
        ("", "rss"),
        ("?format=atom", "atom"),
        ("?format=json", "json"),
        ("?format=nope&x=1", "rss"),
    ] {
        let r = http
            .get(server.url(&format!("/feeds.opml{query}")))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "text/x-opml; charset=utf-8");
        let body = r.text().unwrap();
        assert_eq!(body.matches("<outline ").count(), 19, "{query}");
        assert_eq!(
            body.matches(&format!(".{ext}\"")).count(),
            19,
            "{query}: {ext} URLs"
        );
        assert!(body.contains("type=\"rss\""));
        let f = dir.path().join(format!("{ext}{}.opml", files.len()));
        std::fs::write(&f, body).unwrap();
        files.push((f, ext));
    }
    for (f, ext) in files {
        let script = "import json, sys, listparser\n\
            r = listparser.parse(open(sys.argv[1], 'rb').read())\n\
            print(json.dumps({'bozo': int(r.bozo), 'feeds': [f.url for f in r.feeds], 'err': str(r.get('bozo_exception', ''))}))";
        let out = Command::new("python3")
            .args(["-c", script])
            .arg(&f)
            .output()
            .expect("python3");
        assert!(
            out.status.success(),
            "listparser missing? scripts/test installs it: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["bozo"], 0, "{}: {}", f.display(), v["err"]);
        let feeds = v["feeds"].as_array().unwrap();
        assert_eq!(feeds.len(), 19, "18 sections plus the combined feed");
        assert!(
            feeds
                .iter()
                .all(|u| u.as_str().unwrap().ends_with(&format!(".{ext}")))
        );
    }
}
