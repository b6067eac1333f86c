//! An aggregator's view of RFC 5005 paging and bundles, against a running
//! server: walk every feed's history through its `next` links, subscribe to
//! a bundle of sections, and check every page with feedparser.

mod common;

use std::collections::{BTreeSet, HashMap};

use common::{Server, client, data_with_own_port, feedparser, root};

const ATOM_NS: &str = "http://www.w3.org/2005/Atom";

/// One fetched feed page: its item ids in order and its paging links.
#[derive(Debug)]
struct Page {
    ids: Vec<String>,
    links: HashMap<String, String>,
    body: Vec<u8>,
}

fn parse(format: &str, body: Vec<u8>) -> Page {
    // Every page is a feed that feed-rs reads, JSON Feed included, with the
    // same entries the raw parse below finds.
    let parsed = feed_rs::parser::parse(&body[..]).expect("feed-rs parses the page");
    let mut ids = Vec::new();
    let mut links = HashMap::new();
    if format == "json" {
        let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
        for item in doc["items"].as_array().unwrap() {
            ids.push(item["id"].as_str().unwrap().to_owned());
        }
        for (rel, url) in doc["_paging"].as_object().unwrap() {
            links.insert(rel.clone(), url.as_str().unwrap().to_owned());
        }
        links.insert("self".into(), doc["feed_url"].as_str().unwrap().to_owned());
        // JSON Feed's own field agrees with the extension.
        assert_eq!(
            doc.get("next_url").and_then(|v| v.as_str()),
            links.get("next").map(String::as_str)
        );
    } else {
        let text = std::str::from_utf8(&body).unwrap();
        let xml = roxmltree::Document::parse(text).unwrap();
        let top = if format == "rss" {
            xml.root_element()
                .children()
                .find(|n| n.has_tag_name("channel"))
                .unwrap()
        } else {
            xml.root_element()
        };
        for node in top.children().filter(|n| n.is_element()) {
            if node.has_tag_name((ATOM_NS, "link")) {
                let rel = node.attribute("rel").unwrap_or("alternate");
                links.insert(rel.to_owned(), node.attribute("href").unwrap().to_owned());
            }
            let id = match format {
                "rss" if node.has_tag_name("item") => {
                    node.children().find(|c| c.has_tag_name("guid"))
                }
                "atom" if node.has_tag_name((ATOM_NS, "entry")) => {
                    node.children().find(|c| c.has_tag_name((ATOM_NS, "id")))
                }
                _ => None,
            };
            if let Some(id) = id {
                ids.push(id.text().unwrap().to_owned());
            }
        }
    }
    assert_eq!(parsed.entries.len(), ids.len());
    Page { ids, links, body }
}

fn get(server: &Server, url: &str) -> (u16, Vec<u8>) {
    let path = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest.find('/').map_or("/", |i| &rest[i..]));
    let r = client().get(server.url(path)).send().unwrap();
    (r.status().as_u16(), r.bytes().unwrap().to_vec())
}

/// Walks a feed from its first page through `next`, checking `previous`,
/// `first` and `last` on the way. Returns every page.
fn walk(server: &Server, first_url: &str, format: &str) -> Vec<Page> {
    let mut pages: Vec<Page> = Vec::new();
    let mut url = first_url.to_owned();
    for _ in 0..100 {
        let (status, body) = get(server, &url);
        assert_eq!(status, 200, "{url}");
        let page = parse(format, body);
        assert_eq!(page.links["first"], first_url, "first of {url}");
        match pages.last() {
            None => assert!(!page.links.contains_key("previous"), "{url}"),
            Some(prev) => {
                let prev_self = prev.links.get("self_page").unwrap();
                assert_eq!(&page.links["previous"], prev_self, "previous of {url}");
            }
        }
        let next = page.links.get("next").cloned();
        let mut page = page;
        page.links.insert("self_page".into(), url.clone());
        pages.push(page);
        match next {
            Some(n) => url = n,
            None => {
                assert_eq!(pages.last().unwrap().links["last"], url, "last");
                return pages;
            }
        }
    }
    panic!("more than 100 pages from {first_url}");
}

#[test]
fn aggregator_backfills_every_feed_and_subscribes_to_a_bundle() {
    let (dir, addr) = data_with_own_port(&root().join("data"));
    let site_toml = std::fs::read_to_string(dir.path().join("site.toml")).unwrap();
    std::fs::write(
        dir.path().join("site.toml"),
        site_toml.replace("feed_limit = 50", "feed_limit = 3\nmax_limit = 10"),
    )
    .unwrap();
    let server = Server::start(dir.path(), &["--addr", &addr]);
    let site = vestnik::load_site(dir.path()).unwrap();
    let config = &site.config;

    let mut scopes: Vec<(String, Vec<String>)> = vec![(
        "all".into(),
        site.entries.iter().map(|e| e.tag_uri(config)).collect(),
    )];
    for s in &config.sections {
        let ids = site
            .entries
            .iter()
            .filter(|e| e.sections.contains(&s.slug))
            .map(|e| e.tag_uri(config))
            .collect();
        scopes.push((s.slug.clone(), ids));
    }

    let mut docs = Vec::new();
    let mut walked = 0;
    for (slug, expected) in &scopes {
        for format in ["rss", "atom", "json"] {
            let first = format!("{}/feeds/{slug}.{format}", server.base);
            let pages = walk(&server, &first, format);
            let ids: Vec<String> = pages.iter().flat_map(|p| p.ids.clone()).collect();
            // The union of the pages is the whole history, newest first, each
            // entry exactly once.
            assert_eq!(&ids, expected, "{slug}.{format}");
            assert_eq!(pages.len(), expected.len().div_ceil(3).max(1), "{slug}");
            assert!(pages.iter().all(|p| p.ids.len() <= 3));
            walked += pages.len();
            // A page past the end is a 404.
            let past = format!("/feeds/{slug}.{format}?page={}", pages.len() + 1);
            assert_eq!(get(&server, &past).0, 404, "{past}");
            if format != "json" {
                for (i, p) in pages.into_iter().enumerate() {
                    docs.push((format!("{slug}.{format} page {}", i + 1), p.body));
                }
            }
        }
    }
    eprintln!("walked {walked} pages");
    assert!(walked > 3 * scopes.len(), "no feed had a second page");

    // A bundle: entries of either section, once each, newest first; the
    // self link names the canonical query, so the order of slugs and
    // duplicates do not matter.
    let (a, b) = (&config.sections[0].slug, &config.sections[2].slug);
    let expected: Vec<String> = site
        .entries
        .iter()
        .filter(|e| e.sections.contains(a) || e.sections.contains(b))
        .map(|e| e.tag_uri(config))
        .collect();
    let both: BTreeSet<&String> = scopes[1].1.iter().chain(&scopes[3].1).collect();
    assert_eq!(
        both.len(),
        expected.len(),
        "a bundle is the union of its sections"
    );
    let canonical = {
        let mut s = [a.as_str(), b.as_str()];
        s.sort();
        format!(
            "{}/feeds/all.rss?sections={}&limit=10",
            server.base,
            s.join(",")
        )
    };
    for query in [
        format!("sections={a},{b}&limit=10"),
        format!("limit=10&sections={b},{a},{b}"),
        format!("sections={b}%2C{a}&limit=10&utm_source=x"),
    ] {
        let r = client()
            .get(server.url(&format!("/feeds/all.rss?{query}")))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200, "{query}");
        let page = parse("rss", r.bytes().unwrap().to_vec());
        assert_eq!(page.links["self"], canonical, "{query}");
    }
    let pages = walk(&server, &canonical, "rss");
    let ids: Vec<String> = pages.iter().flat_map(|p| p.ids.clone()).collect();
    assert_eq!(ids, expected);
    for (i, p) in pages.into_iter().enumerate() {
        docs.push((format!("bundle page {}", i + 1), p.body));
    }
    for format in ["atom", "json"] {
        let url = format!("/feeds/all.{format}?sections={a},{b}&limit=10");
        let (status, body) = get(&server, &url);
        assert_eq!(status, 200);
        let page = parse(format, body);
        assert_eq!(page.ids, expected[..expected.len().min(10)]);
        if format == "atom" {
            docs.push((url, page.body));
        }
    }

    // `limit` is capped at max_limit (10 here); the self link says so.
    let (status, body) = get(&server, "/feeds/all.rss?limit=1000");
    assert_eq!(status, 200);
    let page = parse("rss", body);
    assert_eq!(page.ids.len(), 10);
    assert!(page.links["self"].ends_with("/feeds/all.rss?limit=10"));

    // Every page and bundle is a clean feed for feedparser.
    for (doc, parsed) in docs.iter().zip(feedparser(&docs)) {
        assert_eq!(parsed.bozo, 0, "{}: {}", doc.0, parsed.bozo_exception);
    }
}

#[test]
fn bad_queries_get_plain_answers() {
    let server = Server::start(&root().join("data"), &[]);
    let cases = [
        (
            "/feeds/all.rss?sections=no-such-section",
            404,
            "no section \"no-such-section\"",
        ),
        ("/feeds/all.rss?sections=", 400, "at least one section"),
        ("/feeds/all.rss?page=0", 400, "page must be a whole number"),
        ("/feeds/all.rss?page=-1", 400, "page must be a whole number"),
        (
            "/feeds/all.rss?limit=0",
            400,
            "limit must be a whole number",
        ),
        (
            "/feeds/all.rss?limit=ten",
            400,
            "limit must be a whole number",
        ),
        (
            "/feeds/all.rss?page=2",
            404,
            "past the end; this feed has 1 page(s)",
        ),
        (
            "/feeds/all.rss?page=99999999999999999999999",
            404,
            "past the end",
        ),
        (
            "/feeds/transport.rss?sections=transport",
            400,
            "sections= bundles sections of the combined feed",
        ),
        ("/feeds/nope.rss?page=2", 404, "the feeds are"),
        ("/feeds/all.xml?page=2", 404, "the feeds are"),
    ];
    for (path, status, text) in cases {
        let r = client().get(server.url(path)).send().unwrap();
        assert_eq!(r.status().as_u16(), status, "{path}");
        let body = r.text().unwrap();
        assert!(body.contains(text), "{path}: {body}");
    }
    // The unknown-section answer lists every valid slug.
    let body = client()
        .get(server.url("/feeds/all.rss?sections=x"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let site = vestnik::load_site(&root().join("data")).unwrap();
    for s in &site.config.sections {
        assert!(body.lines().any(|l| l == s.slug), "{} not listed", s.slug);
    }
    // Page 1 and unknown parameters give the standard feed's very bytes.
    let plain = client().get(server.url("/feeds/all.rss")).send().unwrap();
    let etag = plain.headers()["etag"].clone();
    for path in ["/feeds/all.rss?page=1", "/feeds/all.rss?limit=50&ref=x"] {
        let r = client().get(server.url(path)).send().unwrap();
        assert_eq!(r.headers()["etag"], etag, "{path}");
    }
}

#[test]
fn pages_and_bundles_answer_conditional_gets_in_every_encoding() {
    let server = Server::start(&root().join("data"), &[]);
    let site = vestnik::load_site(&root().join("data")).unwrap();
    let slugs: Vec<&str> = site.config.sections[..3]
        .iter()
        .map(|s| s.slug.as_str())
        .collect();
    // Later pages carry gzip only (history is fetched rarely; see
    // `Resource::on_demand_feed`), so `br` alone gets identity there.
    let all = [("identity", "identity"), ("gzip", "gzip"), ("br", "br")];
    let history = [
        ("identity", "identity"),
        ("gzip", "gzip"),
        ("br", "identity"),
    ];
    for (path, cases) in [
        ("/feeds/all.atom?limit=5&page=3".to_owned(), &history),
        (
            format!("/feeds/all.json?sections={}", slugs.join(",")),
            &all,
        ),
    ] {
        let mut etags = BTreeSet::new();
        for (encoding, want) in cases {
            let r = client()
                .get(server.url(&path))
                .header("accept-encoding", *encoding)
                .send()
                .unwrap();
            assert_eq!(r.status(), 200, "{path}");
            let got = r
                .headers()
                .get("content-encoding")
                .map_or("identity", |v| v.to_str().unwrap());
            assert_eq!(got, *want, "{path} {encoding}");
            assert_eq!(r.headers()["vary"], "Accept-Encoding");
            assert!(r.headers().contains_key("last-modified"));
            let etag = r.headers()["etag"].to_str().unwrap().to_owned();
            let again = client()
                .get(server.url(&path))
                .header("accept-encoding", *encoding)
                .header("if-none-match", &etag)
                .send()
                .unwrap();
            assert_eq!(again.status(), 304, "{path} {encoding}");
            assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);
            etags.insert(etag);
        }
        let sent: BTreeSet<_> = cases.iter().map(|(_, want)| want).collect();
        assert_eq!(etags.len(), sent.len(), "one ETag per encoding: {etags:?}");
    }
}
