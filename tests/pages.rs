//! JSON Feed, OPML and the HTML pages over HTTP: every feed link resolves,
//! pages revalidate like feeds, OPML parses in Python's listparser; dates in
//! the entry's own zone, paging through the archive, redirects of trailing
//! slashes, the subscribe page and the feeds each page names.

mod common;

use std::process::Command;

use common::{Server, client, data_with_own_port, root};

const SEED: &str = "2022-08-22-ano-dialog-u-vsekh-gorodov-i-raionov-rossii-poiavilis";

/// A site in Novosibirsk with an entry dated in Vladivostok, in two sections.
const ZONES: &str = "tests/data/zones";

/// GET `url`: status and body.
fn get(http: &reqwest::blocking::Client, url: &str) -> (u16, String) {
    let r = http
        .get(url)
        .send()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    (r.status().as_u16(), r.text().unwrap())
}

/// GET `url`, which must answer 200 with HTML.
fn page(http: &reqwest::blocking::Client, url: &str) -> String {
    let (status, body) = get(http, url);
    assert_eq!(status, 200, "GET {url}: {body}");
    body
}

/// The value of the first `attr="…"` after each occurrence of `marker`.
fn after<'a>(doc: &'a str, marker: &str, attr: &str) -> Vec<&'a str> {
    let key = format!("{attr}=\"");
    doc.match_indices(marker)
        .filter_map(|(i, _)| {
            let rest = &doc[i..];
            let start = rest.find(&key)? + key.len();
            Some(&rest[start..start + rest[start..].find('"')?])
        })
        .collect()
}

/// Every element with `class="subscribe"`, from its start tag to its end tag.
fn subscribe_groups(doc: &str) -> Vec<&str> {
    doc.match_indices("class=\"subscribe\"")
        .map(|(i, _)| {
            let start = doc[..i].rfind('<').unwrap();
            let tag = doc[start + 1..i].trim();
            let end = doc[i..].find(&format!("</{tag}>")).unwrap() + i;
            &doc[start..end]
        })
        .collect()
}

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

/// An entry dated «28.11.2024» in Asia/Vladivostok on a site in
/// Asia/Novosibirsk: midnight in Vladivostok is still 27 November in
/// Novosibirsk, and every page shows the date the editor wrote, with the
/// later update beside it.
#[test]
fn pages_show_dates_in_the_entrys_own_zone_and_the_update() {
    let server = Server::start(&root().join(ZONES), &[]);
    let http = client();
    let published = "<time datetime=\"2024-11-28T00:00:00+10:00\">28 ноября 2024</time>";
    let updated = "обновлено <time datetime=\"2024-12-02T00:00:00+10:00\">2 декабря 2024</time>";
    for path in ["/news/vladivostok", "/sections/dv", "/sections/sibir", "/"] {
        let html = page(&http, &server.url(path));
        assert!(html.contains(published), "{path}:\n{html}");
        assert!(html.contains(updated), "{path}:\n{html}");
        assert!(!html.contains("27 ноября"), "{path}:\n{html}");
    }
    // An update on the day of publication shows its time.
    let html = page(&http, &server.url("/news/same-day"));
    assert!(
        html.contains("обновлено <time datetime=\"2025-01-10T15:30:00+07:00\">в 15:30</time>"),
        "{html}"
    );
    // Nothing updated, nothing said.
    let html = page(&http, &server.url("/news/plain"));
    assert!(
        html.contains("5 января 2025") && !html.contains("обновлено"),
        "{html}"
    );
    // The feeds carry the same offset.
    let (_, atom) = get(&http, &server.url("/feeds/dv.atom"));
    assert!(
        atom.contains("<published>2024-11-28T00:00:00+10:00</published>"),
        "{atom}"
    );
}

/// The URLs of the news a listing page lists, and its `rel` links: the
/// ones in `<head>` and the visible ones must agree.
fn listing(
    http: &reqwest::blocking::Client,
    url: &str,
) -> (Vec<String>, Option<String>, Option<String>) {
    let html = page(http, url);
    let news = after(&html, "<li class=\"entry\">", "href")
        .into_iter()
        .map(str::to_owned)
        .collect();
    let rel = |rel: &str| {
        let head = after(&html, &format!("<link rel=\"{rel}\""), "href");
        let visible = after(&html, &format!("<a rel=\"{rel}\""), "href");
        assert_eq!(head, visible, "{url}: rel={rel}");
        assert!(head.len() <= 1, "{url}: rel={rel} {head:?}");
        head.first().map(|s| (*s).to_owned())
    };
    (news, rel("prev"), rel("next"))
}

/// Follows `rel="next"` from `start` to the last page, checking that each
/// page's `rel="prev"` leads back; returns every news URL listed, in order,
/// and the pages visited.
fn walk(http: &reqwest::blocking::Client, start: &str) -> (Vec<String>, Vec<String>) {
    let (mut news, mut pages) = (Vec::new(), Vec::new());
    let mut url = Some(start.to_owned());
    let mut came_from: Option<String> = None;
    while let Some(u) = url {
        let (listed, prev, next) = listing(http, &u);
        assert_eq!(prev, came_from, "{u}: rel=prev");
        assert!(!listed.is_empty(), "{u}: an empty page");
        news.extend(listed);
        pages.push(u.clone());
        came_from = Some(u);
        url = next;
        assert!(pages.len() <= 100, "rel=next never ends: {pages:?}");
    }
    (news, pages)
}

/// From `/`, `rel="next"` reaches every entry once, newest first; from a
/// section's page, every entry of the section. `?page=1` is the plain page,
/// a page past the end is 404, and `page=0` or junk is 400.
#[test]
fn rel_next_from_the_home_and_section_pages_reaches_every_entry() {
    let (dir, addr) = data_with_own_port(&root().join("data"));
    // Two entries per section page, so sections have later pages too.
    let toml = std::fs::read_to_string(dir.path().join("site.toml")).unwrap();
    std::fs::write(
        dir.path().join("site.toml"),
        toml.replace("feed_limit = 50", "feed_limit = 2"),
    )
    .unwrap();
    let server = Server::start(dir.path(), &["--addr", &addr]);
    let http = client();
    let site = vestnik::load_site(dir.path()).unwrap();
    let config = &site.config;
    let news_url = |e: &vestnik::entry::Entry| config.url(&vestnik::urls::news(&e.id)).to_string();

    let (news, pages) = walk(&http, &server.url("/"));
    let all: Vec<String> = site.entries.iter().map(|e| news_url(e)).collect();
    assert_eq!(news, all, "home pages {pages:?}");
    assert_eq!(pages.len(), all.len().div_ceil(20));
    assert_eq!(pages[1], server.url("/?page=2"));

    let mut later_section_pages = 0;
    for section in &config.sections {
        let start = config.url(&vestnik::urls::section(&section.slug));
        let (news, pages) = walk(&http, start.as_str());
        let own: Vec<String> = site
            .entries
            .iter()
            .filter(|e| e.sections.contains(&section.slug))
            .map(|e| news_url(e))
            .collect();
        assert_eq!(news, own, "{}: pages {pages:?}", section.slug);
        later_section_pages += pages.len() - 1;
    }
    assert!(
        later_section_pages >= 5,
        "only {later_section_pages} later section pages"
    );

    let slug = &config.sections[0].slug;
    let plain = page(&http, &server.url(&format!("/sections/{slug}")));
    for (path, status, says) in [
        ("/?page=1".to_owned(), 200, ""),
        ("/?page=&utm_source=x".to_owned(), 200, ""),
        (
            "/?page=3".to_owned(),
            404,
            "page 3 is past the end; this page has 2 page(s)",
        ),
        ("/?page=0".to_owned(), 400, "page must be a whole number"),
        ("/?page=x".to_owned(), 400, "page must be a whole number"),
        (format!("/sections/{slug}?page=1"), 200, ""),
        (format!("/sections/{slug}?page=99"), 404, "past the end"),
        (
            format!("/sections/{slug}?page=-1"),
            400,
            "page must be a whole number",
        ),
        (
            "/sections/no-such-section?page=2".to_owned(),
            404,
            "the feeds are",
        ),
    ] {
        let (got, body) = get(&http, &server.url(&path));
        assert_eq!(got, status, "{path}: {body}");
        assert!(body.contains(says), "{path}: {body}");
    }
    // Page 1 under any spelling is the same pre-rendered bytes.
    assert_eq!(
        page(&http, &server.url("/?page=1")),
        page(&http, &server.url("/"))
    );
    assert_eq!(
        page(&http, &server.url(&format!("/sections/{slug}?page=1"))),
        plain
    );
    // Later pages revalidate like every other page.
    let r = http.get(server.url("/?page=2")).send().unwrap();
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    let again = http
        .get(server.url("/?page=2"))
        .header("if-none-match", &etag)
        .send()
        .unwrap();
    assert_eq!(again.status(), 304);
}

/// `/sections/{slug}/`, `/news/{id}/` and `/subscribe/` redirect (308) to
/// the URL without the slash, query kept; unknown ones stay 404.
#[test]
fn a_trailing_slash_redirects_to_the_canonical_page() {
    let server = Server::start(&root().join(ZONES), &[]);
    let http = client();
    let base = "http://example.org";
    for (path, location) in [
        ("/sections/dv/", Some(format!("{base}/sections/dv"))),
        (
            "/sections/dv/?page=2&utm_source=x",
            Some(format!("{base}/sections/dv?page=2&utm_source=x")),
        ),
        (
            "/news/vladivostok/",
            Some(format!("{base}/news/vladivostok")),
        ),
        ("/subscribe/", Some(format!("{base}/subscribe"))),
        ("/sections/no-such-section/", None),
        ("/sections/dv//", None),
        ("/news/no-such-entry/", None),
    ] {
        for head in [false, true] {
            let req = if head {
                http.head(server.url(path))
            } else {
                http.get(server.url(path))
            };
            let r = req.send().unwrap();
            let got = r
                .headers()
                .get("location")
                .map(|v| v.to_str().unwrap().to_owned());
            let status = r.status().as_u16();
            assert_eq!(
                (status, got),
                (if location.is_some() { 308 } else { 404 }, location.clone()),
                "{} {path}",
                if head { "HEAD" } else { "GET" }
            );
        }
    }
}

/// Every group of subscribe links (home, its later pages, section pages,
/// news pages) links the page that explains how to subscribe; section
/// pages link the OPML list; the subscribe page itself is served.
#[test]
fn every_group_of_subscribe_links_links_the_subscribe_page() {
    let server = Server::start(&root().join("data"), &[]);
    let http = client();
    let base = "http://localhost:8080";
    let how_to = format!("href=\"{base}/subscribe\"");
    let paths = [
        "/".to_owned(),
        "/?page=2".to_owned(),
        "/sections/gradoustroistvo".to_owned(),
        format!("/news/{SEED}"),
    ];
    for path in &paths {
        let html = page(&http, &server.url(path));
        let groups = subscribe_groups(&html);
        assert!(!groups.is_empty(), "{path}: no subscribe links");
        for group in groups {
            assert!(group.contains(".rss\""), "{path}: {group}");
            assert!(group.contains(&how_to), "{path}: {group}");
        }
    }
    let section = page(&http, &server.url("/sections/gradoustroistvo"));
    let groups = subscribe_groups(&section);
    assert!(
        groups[0].contains(&format!("href=\"{base}/feeds.opml\"")),
        "{section}"
    );

    let r = http.get(server.url("/subscribe")).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    let guide = r.text().unwrap();
    assert!(guide.contains("<h1>Как подписаться</h1>"), "{guide}");
    for text in [
        "Miniflux",
        "FreshRSS",
        "Feedly",
        "Inoreader",
        "Thunderbird",
        "NetNewsWire",
        "OPML",
        "JSON Feed",
        "Atom",
    ] {
        assert!(guide.contains(text), "{text}");
    }
}

/// A news page names the feeds of its own sections, in every format, for
/// autodiscovery and as visible links, beside the combined feed; each one
/// is a feed.
#[test]
fn news_pages_discover_and_link_their_sections_feeds() {
    let (dir, addr) = data_with_own_port(&root().join(ZONES));
    let server = Server::start(dir.path(), &["--addr", &addr]);
    let http = client();
    let html = page(&http, &server.url("/news/vladivostok"));
    let alternates = after(&html, "<link rel=\"alternate\"", "href");
    let feeds: Vec<String> = ["all", "dv", "sibir"]
        .iter()
        .flat_map(|slug| {
            ["rss", "atom", "json"].map(|ext| server.url(&format!("/feeds/{slug}.{ext}")))
        })
        .collect();
    assert_eq!(alternates, feeds);
    let groups = subscribe_groups(&html);
    assert_eq!(groups.len(), 1, "{html}");
    for feed in &feeds[3..] {
        assert!(
            groups[0].contains(&format!("href=\"{feed}\"")),
            "{feed}: {}",
            groups[0]
        );
    }
    assert!(groups[0].contains("Дальний Восток:") && groups[0].contains("Сибирь:"));
    for href in alternates {
        let body = http.get(href).send().unwrap().bytes().unwrap();
        let feed = feed_rs::parser::parse(&body[..]).unwrap_or_else(|e| panic!("{href}: {e}"));
        assert!(
            feed.entries.iter().any(|e| e
                .title
                .as_ref()
                .is_some_and(|t| t.content == "Новость из Владивостока")),
            "{href}"
        );
    }
}
