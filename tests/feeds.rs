//! Every feed of the shipped `data/`, fetched from a running server with a real
//! HTTP client and parsed by feed-rs and Python's feedparser.

mod common;

use common::{Server, client, feedparser, root};
use vestnik::model::Scope;
use vestnik::render::Format;

const SEED_ID: &str = "2022-08-22-ano-dialog-u-vsekh-gorodov-i-raionov-rossii-poiavilis";
const SEED_SECTION: &str = "informatizatsiia-organov-mestnogo-samoupravleniia";

#[test]
fn every_feed_of_the_shipped_data_is_served_and_parses() {
    let data = root().join("data");
    let site = vestnik::load_site(&data).expect("shipped data loads");
    assert!(
        site.diagnostics.is_empty(),
        "shipped data has problems: {:#?}",
        site.diagnostics
    );
    assert_eq!(site.config.sections.len(), 18);
    let server = Server::start(&data, &[]);
    let http = client();

    let mut docs = Vec::new();
    let mut expected = Vec::new();
    for feed in site.feeds() {
        for format in Format::ALL {
            let path = format!("/feeds/{}.{}", feed.scope.slug(), format.extension());
            let res = http.get(server.url(&path)).send().expect("GET");
            assert_eq!(res.status(), 200, "{path}");
            assert_eq!(
                res.headers()["content-type"],
                format.content_type(),
                "{path}"
            );
            let body = res.bytes().expect("body").to_vec();

            let parsed = feed_rs::parser::parse(&body[..])
                .unwrap_or_else(|e| panic!("feed-rs rejects {path}: {e}"));
            assert_eq!(
                parsed.entries.len(),
                feed.entries.len(),
                "feed-rs entries in {path}"
            );
            let ids: Vec<String> = feed
                .entries
                .iter()
                .map(|e| e.tag_uri(&site.config))
                .collect();
            let got: Vec<&str> = parsed.entries.iter().map(|e| e.id.as_str()).collect();
            assert_eq!(got, ids, "ids and order in {path}");
            if format == Format::Json {
                // feedparser 6.0 reads no JSON Feed; check the 1.1 field rules instead.
                check_json_feed(&path, &body, &ids);
            } else {
                expected.push((path.clone(), ids));
                docs.push((path, body));
            }
        }
    }
    // Every section with entries has a non-empty feed, and the combined feed has them all.
    let all = site.feed(Scope::All);
    assert_eq!(
        all.entries.len(),
        site.entries.len().min(site.config.feed_limit)
    );

    for (p, (path, ids)) in feedparser(&docs).iter().zip(&expected) {
        assert_eq!(p.bozo, 0, "feedparser bozo on {path}: {}", p.bozo_exception);
        let got: Vec<&str> = p.entries.iter().filter_map(|e| e.id.as_deref()).collect();
        assert_eq!(&got, ids, "feedparser ids in {path}");
        let want = if path.ends_with(".rss") {
            "rss20"
        } else {
            "atom10"
        };
        assert_eq!(p.version, want, "{path}");
    }
}

#[test]
fn the_seed_article_is_in_the_combined_and_its_section_feeds() {
    let data = root().join("data");
    let server = Server::start(&data, &[]);
    let http = client();
    let page = std::fs::read_to_string(root().join("../shared/seeds/000_2ab95b1a058de1a6.txt"))
        .ok()
        // The seed page lives outside the repository; its paragraphs are
        // checked against the shipped entry file, which must hold them all.
        .unwrap_or_default();
    let entry_file = std::fs::read_to_string(data.join(format!("entries/2022/{SEED_ID}.md")))
        .expect("seed entry");
    let paragraphs: Vec<&str> = entry_file
        .split("+++")
        .nth(2)
        .expect("body")
        .split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    assert_eq!(paragraphs.len(), 6);
    for p in &paragraphs {
        if !page.is_empty() {
            assert!(page.contains(p), "paragraph not on the seed page: {p}");
        }
    }

    for slug in ["all", SEED_SECTION] {
        let rss = http
            .get(server.url(&format!("/feeds/{slug}.rss")))
            .send()
            .unwrap()
            .text()
            .unwrap();
        let item = item_of(&rss, "<item>", "</item>", SEED_ID);
        assert!(
            item.contains("<pubDate>Mon, 22 Aug 2022 00:00:00 +0700</pubDate>"),
            "{item}"
        );
        assert!(item.contains(&format!(
            "<guid isPermaLink=\"false\">tag:localhost,2022-08-22:{SEED_ID}</guid>"
        )));
        assert!(
            item.contains("<dc:source>https://ura.news/</dc:source>"),
            "{item}"
        );
        assert!(item.contains(
            "Источник: <a href=\"https://ura.news/\" rel=\"noopener noreferrer\">Информационное агентство URA.RU</a>"
        ));
        for p in &paragraphs {
            assert!(item.contains(p), "paragraph missing from RSS: {p}");
        }

        let atom = http
            .get(server.url(&format!("/feeds/{slug}.atom")))
            .send()
            .unwrap()
            .text()
            .unwrap();
        let entry = item_of(&atom, "<entry>", "</entry>", SEED_ID);
        assert!(
            entry.contains("<published>2022-08-22T00:00:00+07:00</published>"),
            "{entry}"
        );
        assert!(entry.contains(
            "<link href=\"https://ura.news/\" rel=\"via\" title=\"Информационное агентство URA.RU\"/>"
        ), "{entry}");
        for p in &paragraphs {
            // Atom carries the HTML as escaped text; the paragraphs have no markup.
            let escaped = p
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;");
            assert!(entry.contains(&escaped), "paragraph missing from Atom: {p}");
        }
    }
}

/// JSON Feed 1.1's rules: required top-level fields, item ids unique strings,
/// content present, dates RFC 3339, URLs absolute.
fn check_json_feed(path: &str, body: &[u8], ids: &[String]) {
    let v: serde_json::Value =
        serde_json::from_slice(body).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(v["version"], "https://jsonfeed.org/version/1.1", "{path}");
    assert!(
        v["title"].as_str().is_some_and(|t| !t.is_empty()),
        "{path}: title"
    );
    for key in ["home_page_url", "feed_url"] {
        let url = v[key].as_str().unwrap_or_else(|| panic!("{path}: {key}"));
        assert!(
            url.starts_with("http://") || url.starts_with("https://"),
            "{path}: {key}"
        );
    }
    assert!(v["feed_url"].as_str().unwrap().ends_with(".json"));
    let items = v["items"]
        .as_array()
        .unwrap_or_else(|| panic!("{path}: items"));
    let got: Vec<&str> = items
        .iter()
        .map(|i| i["id"].as_str().expect("string id"))
        .collect();
    assert_eq!(got, ids, "{path}: ids");
    let unique: std::collections::HashSet<&&str> = got.iter().collect();
    assert_eq!(unique.len(), got.len(), "{path}: ids must be unique");
    for item in items {
        assert!(
            item["content_html"].as_str().is_some_and(|c| !c.is_empty()),
            "{path}: content"
        );
        for key in ["date_published", "date_modified"] {
            let d = item[key]
                .as_str()
                .unwrap_or_else(|| panic!("{path}: {key}"));
            chrono::DateTime::parse_from_rfc3339(d)
                .unwrap_or_else(|e| panic!("{path}: {key} {d}: {e}"));
        }
        assert!(
            item["url"].as_str().is_some_and(|u| u.starts_with("http")),
            "{path}: url"
        );
        if let Some(authors) = item.get("authors") {
            assert!(
                authors
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|a| a["name"].is_string())
            );
        }
        assert!(
            item["tags"].as_array().is_some_and(|t| !t.is_empty()),
            "{path}: tags"
        );
    }
}

/// The `<item>`/`<entry>` element of a document that mentions `id`.
fn item_of<'a>(doc: &'a str, open: &str, close: &str, id: &str) -> &'a str {
    doc.split(open)
        .skip(1)
        .map(|s| s.split(close).next().unwrap_or(s))
        .find(|s| s.contains(id))
        .unwrap_or_else(|| panic!("no {open} with {id} in:\n{doc}"))
}
