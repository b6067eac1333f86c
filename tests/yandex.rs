//! The Yandex News feeds (`/feeds/{all|slug}.yandex.rss`): well-formed for
//! feedparser and feed-rs, the same guids as the other feeds, the Yandex
//! elements on every item, and the 10 MB cap.

mod common;

use std::sync::Arc;

use common::{Server, client, feedparser, root};
use vestnik::model::Scope;

fn get(server: &Server, path: &str) -> (String, Vec<u8>) {
    let r = client().get(server.url(path)).send().unwrap();
    assert_eq!(r.status(), 200, "GET {path}");
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    (ct, r.bytes().unwrap().to_vec())
}

fn guids(xml: &[u8]) -> Vec<String> {
    let text = std::str::from_utf8(xml).unwrap();
    let doc = roxmltree::Document::parse(text).unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name("guid"))
        .map(|n| n.text().unwrap_or_default().to_owned())
        .collect()
}

/// Every Yandex feed of the shipped data and of the media fixture.
#[test]
fn every_yandex_feed_parses_and_matches_the_other_feeds() {
    for data in [root().join("data"), root().join("tests/data/media")] {
        let site = vestnik::load_site(&data).unwrap();
        let server = Server::start(&data, &[]);
        let mut docs = Vec::new();
        for feed in site.feeds() {
            let slug = feed.scope.slug();
            let (ct, yandex) = get(&server, &format!("/feeds/{slug}.yandex.rss"));
            assert_eq!(ct, "application/rss+xml; charset=utf-8");
            assert!(yandex.len() <= vestnik::render::yandex::MAX_BYTES);
            let (_, rss) = get(&server, &format!("/feeds/{slug}.rss"));
            assert_eq!(guids(&yandex), guids(&rss), "{slug}: same guids as RSS");

            let text = String::from_utf8(yandex.clone()).unwrap();
            let doc = roxmltree::Document::parse(&text).unwrap();
            let root_el = doc.root_element();
            assert_eq!(
                root_el.lookup_namespace_uri(Some("yandex")),
                Some("http://news.yandex.ru")
            );
            assert_eq!(
                root_el.lookup_namespace_uri(Some("media")),
                Some("http://search.yahoo.com/mrss/")
            );
            let ns = "http://news.yandex.ru";
            for item in doc.descendants().filter(|n| n.has_tag_name("item")) {
                let child = |ns: Option<&str>, name: &str| {
                    item.children()
                        .find(|c| c.tag_name().namespace() == ns && c.tag_name().name() == name)
                        .and_then(|c| c.text())
                        .map(str::to_owned)
                };
                for name in ["title", "link", "pubDate", "guid"] {
                    assert!(child(None, name).is_some(), "{slug}: item without {name}");
                }
                let date = child(None, "pubDate").unwrap();
                let offset = date.rsplit(' ').next().unwrap();
                assert!(
                    offset.len() == 5
                        && offset.starts_with(['+', '-'])
                        && offset[1..].bytes().all(|b| b.is_ascii_digit()),
                    "{slug}: pubDate {date} has no numeric offset"
                );
                let full = child(Some(ns), "full-text").expect("yandex:full-text");
                // Plain text: no markup left (a literal "< 10" in the prose is fine).
                assert!(
                    !full.trim().is_empty() && !full.contains("<p") && !full.contains("</"),
                    "{full}"
                );
                let genre = child(Some(ns), "genre").expect("yandex:genre");
                assert!(
                    ["lenta", "message", "article", "interview"].contains(&genre.as_str()),
                    "{genre}"
                );
            }
            feed_rs::parser::parse(&yandex[..]).unwrap_or_else(|e| panic!("{slug}: {e}"));
            docs.push((slug.to_owned(), yandex));
        }
        for p in feedparser(&docs) {
            assert_eq!(p.bozo, 0, "{}: {}", p.file, p.bozo_exception);
            assert_eq!(p.version, "rss20", "{}", p.file);
        }
    }
}

#[test]
fn the_media_fixture_has_pictures_and_genres() {
    let data = root().join("tests/data/media");
    let server = Server::start(&data, &[]);
    let (_, xml) = get(&server, "/feeds/all.yandex.rss");
    let text = String::from_utf8(xml).unwrap();
    for want in [
        "<yandex:genre>article</yandex:genre>",
        "<yandex:genre>lenta</yandex:genre>",
        "<enclosure url=\"http://localhost:8080/media/2024/photo.png\" length=\"73\" type=\"image/png\"/>",
        "<enclosure url=\"https://cdn.example.org/img/match.jpg\" length=\"0\" type=\"image/jpeg\"/>",
        // The PDF and MP3 are not pictures: no enclosure for them here.
        "<yandex:full-text>Первый трамвай новой серии вышел на маршрут № 5.\nПассажиры отметили тишину и низкий пол; подробности — в отчёте.</yandex:full-text>",
        "<author>Анна Петрова</author>",
    ] {
        assert!(text.contains(want), "missing {want}\n{text}");
    }
    assert!(!text.contains("report.pdf\" length"), "{text}");
    // Listed in the 404 body with the other feeds.
    let r = client().get(server.url("/nope")).send().unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().unwrap().contains("/feeds/sport.yandex.rss"));
    // No paging: the query does not select another feed.
    let r = client()
        .get(server.url("/feeds/all.yandex.rss?page=2"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().unwrap(), text);
}

/// Twelve entries of about 1 MB of text each: the feed keeps the newest
/// ones that fit in 10 MB and drops the oldest.
#[test]
fn the_feed_stays_under_10_mb_by_dropping_the_oldest() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("site.toml"),
        "title = \"Big\"\nbase_url = \"http://localhost:8080/\"\ntimezone = \"UTC\"\nmax_entry_bytes = 2097152\n[[sections]]\nslug = \"s\"\ntitle = \"S\"\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("entries")).unwrap();
    let paragraph = "Длинный текст новости для проверки предела. ".repeat(20);
    let body = format!("{paragraph}\n\n").repeat(560); // ~0.9 MB of UTF-8
    for i in 1..=12 {
        std::fs::write(
            dir.path().join(format!("entries/e{i:02}.md")),
            format!(
                "+++\ntitle = \"e{i:02}\"\ndate = 2024-01-{i:02}\nsections = [\"s\"]\nsummary = \"s\"\n+++\n{body}"
            ),
        )
        .unwrap();
    }
    let site = Arc::new(vestnik::load_site(dir.path()).unwrap());
    assert!(site.diagnostics.is_empty(), "{:#?}", site.diagnostics);
    let feed = site.feed(Scope::All);
    let uncapped =
        vestnik::render::yandex::render_capped(&feed, usize::MAX, vestnik::render::Retain::Keep);
    assert!(uncapped.len() > vestnik::render::yandex::MAX_BYTES);
    let xml = vestnik::render::yandex::render(&feed, vestnik::render::Retain::Keep);
    assert!(
        xml.len() <= vestnik::render::yandex::MAX_BYTES,
        "{}",
        xml.len()
    );
    let text = String::from_utf8(xml).unwrap();
    let kept: Vec<String> = text
        .match_indices("<title>e")
        .map(|(i, _)| text[i + 7..i + 10].to_owned())
        .collect();
    assert!(kept.len() >= 8 && kept.len() < 12, "{kept:?}");
    let newest: Vec<String> = (0..kept.len()).map(|k| format!("e{:02}", 12 - k)).collect();
    assert_eq!(kept, newest, "the newest entries are kept, in order");
    // What the server sends is the capped feed, and it still parses.
    let snapshot = vestnik::snapshot::Snapshot::build(site);
    let served = &snapshot.at("/feeds/all.yandex.rss").unwrap().identity.body;
    assert_eq!(served[..], *text.as_bytes());
    let p = feedparser(&[("big".to_owned(), text.into_bytes())]);
    assert_eq!(p[0].bozo, 0, "{}", p[0].bozo_exception);
    assert_eq!(p[0].entries.len(), kept.len());
}

/// A reprint keeps its attribution in the Yandex feed: the full text ends
/// with the same «Источник: …» line readers see on the page.
#[test]
fn the_seed_reprint_keeps_its_source_line() {
    let server = Server::start(&root().join("data"), &[]);
    let (_, xml) = get(&server, "/feeds/all.yandex.rss");
    let text = String::from_utf8(xml).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap();
    let item = doc
        .descendants()
        .find(|n| {
            n.has_tag_name("item")
                && n.children().any(|c| {
                    c.has_tag_name("link")
                        && c.text()
                            .is_some_and(|t| t.contains("2022-08-22-ano-dialog"))
                })
        })
        .expect("the seed entry is in all.yandex.rss");
    let full = item
        .children()
        .find(|c| c.has_tag_name(("http://news.yandex.ru", "full-text")))
        .and_then(|c| c.text())
        .unwrap();
    assert!(
        full.trim_end()
            .ends_with("Источник: Информационное агентство URA.RU"),
        "{full}"
    );
}
