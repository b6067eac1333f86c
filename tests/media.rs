//! Enclosures and images in every format, and `/media/` serving, over the
//! fixture `tests/data/media` (a 73-byte PNG and a 125-byte PDF).

mod common;

use std::io::{Read as _, Write as _};

use common::{Server, client, data_with_own_port, feedparser, root};

fn fixture() -> (tempfile::TempDir, Server) {
    let (dir, addr) = data_with_own_port(&root().join("tests/data/media"));
    let server = Server::start(dir.path(), &["--addr", &addr]);
    (dir, server)
}

fn get(server: &Server, path: &str) -> Vec<u8> {
    let r = client().get(server.url(path)).send().unwrap();
    assert_eq!(r.status(), 200, "GET {path}");
    r.bytes().unwrap().to_vec()
}

/// Sends a raw request line, so paths reach the server exactly as written
/// (an HTTP client would resolve `..` and `%2e%2e` first); returns the status.
fn raw_status(server: &Server, target: &str) -> u16 {
    let addr = server.base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status for {target}: {out:?}"))
}

const PHOTO: &str = "tests/data/media/media/2024/photo.png";
const REPORT: &str = "tests/data/media/media/docs/report.pdf";

fn size(rel: &str) -> u64 {
    std::fs::metadata(root().join(rel)).unwrap().len()
}

#[test]
fn enclosures_have_absolute_urls_and_real_lengths_in_every_format() {
    let (_dir, server) = fixture();
    let report = server.url("/media/docs/report.pdf");
    let photo = server.url("/media/2024/photo.png");

    // RSS: one <enclosure> (the first), every enclosure as media:content,
    // the image as media:thumbnail.
    let rss = get(&server, "/feeds/gorod.rss");
    let text = String::from_utf8(rss.clone()).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap();
    let item = doc
        .descendants()
        .find(|n| n.has_tag_name("item"))
        .expect("an item");
    let enclosures: Vec<_> = item
        .children()
        .filter(|n| n.has_tag_name("enclosure"))
        .collect();
    assert_eq!(enclosures.len(), 1, "{text}");
    assert_eq!(enclosures[0].attribute("url"), Some(report.as_str()));
    assert_eq!(
        enclosures[0].attribute("length"),
        Some(size(REPORT).to_string().as_str())
    );
    assert_eq!(enclosures[0].attribute("type"), Some("application/pdf"));
    let mrss = "http://search.yahoo.com/mrss/";
    let contents: Vec<_> = item
        .children()
        .filter(|n| n.has_tag_name((mrss, "content")))
        .collect();
    assert_eq!(contents.len(), 2, "{text}");
    assert_eq!(
        contents[1].attribute("url"),
        Some("https://cdn.example.org/audio/interview.mp3")
    );
    let thumb = item
        .children()
        .find(|n| n.has_tag_name((mrss, "thumbnail")))
        .expect("media:thumbnail");
    assert_eq!(thumb.attribute("url"), Some(photo.as_str()));
    assert_eq!(thumb.attribute("width"), Some("4"));

    // feed-rs reads the enclosure and media.
    let parsed = feed_rs::parser::parse(&rss[..]).unwrap();
    let media = &parsed.entries[0].media;
    assert!(
        media
            .iter()
            .flat_map(|m| &m.content)
            .any(
                |c| c.url.as_ref().map(|u| u.as_str()) == Some(report.as_str())
                    && c.size == Some(size(REPORT))
            ),
        "{media:#?}"
    );

    // Atom: every enclosure as link rel="enclosure" with its length.
    let atom = get(&server, "/feeds/gorod.atom");
    let parsed = feed_rs::parser::parse(&atom[..]).unwrap();
    let links: Vec<(&str, Option<u64>)> = parsed.entries[0]
        .links
        .iter()
        .filter(|l| l.rel.as_deref() == Some("enclosure"))
        .map(|l| (l.href.as_str(), l.length))
        .collect();
    assert_eq!(
        links,
        [
            (report.as_str(), Some(size(REPORT))),
            (
                "https://cdn.example.org/audio/interview.mp3",
                Some(1_048_576)
            ),
        ]
    );

    // JSON Feed: attachments and image.
    let json: serde_json::Value =
        serde_json::from_slice(&get(&server, "/feeds/gorod.json")).unwrap();
    let item = &json["items"][0];
    assert_eq!(item["image"], photo.as_str());
    assert_eq!(item["attachments"][0]["url"], report.as_str());
    assert_eq!(item["attachments"][0]["mime_type"], "application/pdf");
    assert_eq!(item["attachments"][0]["size_in_bytes"], size(REPORT));
    feed_rs::parser::parse(&serde_json::to_vec(&json).unwrap()[..]).unwrap();

    // The entry's page shows the picture and lists the enclosures.
    let page = String::from_utf8(get(&server, "/news/photo")).unwrap();
    assert!(
        page.contains(&format!(
            "<figure><img src=\"{photo}\" alt=\"\" width=\"4\" height=\"3\"></figure>"
        )),
        "{page}"
    );
    assert!(
        page.contains(&format!(
            "<a href=\"{report}\" type=\"application/pdf\">report.pdf</a>"
        )),
        "{page}"
    );

    // Python's feedparser reads them all without complaint.
    let docs: Vec<(String, Vec<u8>)> = ["/feeds/gorod.rss", "/feeds/gorod.atom", "/feeds/all.rss"]
        .iter()
        .map(|p| (p.to_string(), get(&server, p)))
        .collect();
    for p in feedparser(&docs) {
        assert_eq!(p.bozo, 0, "{}: {}", p.file, p.bozo_exception);
        assert_eq!(
            p.entries.len(),
            if p.file.ends_with("2.xml") { 3 } else { 2 }
        );
    }
}

#[test]
fn media_files_are_served_with_validators() {
    let (_dir, server) = fixture();
    let http = client();
    let url = server.url("/media/2024/photo.png");
    let r = http.get(&url).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    let lm = r.headers()["last-modified"].to_str().unwrap().to_owned();
    assert_eq!(
        r.bytes().unwrap().to_vec(),
        std::fs::read(root().join(PHOTO)).unwrap()
    );
    let r = http
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .unwrap();
    assert_eq!(r.status(), 304);
    let r = http
        .get(&url)
        .header("if-modified-since", &lm)
        .send()
        .unwrap();
    assert_eq!(r.status(), 304);
    let r = http.head(&url).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-length"],
        size(PHOTO).to_string().as_str()
    );
    assert!(r.bytes().unwrap().is_empty());
    assert_eq!(http.post(&url).send().unwrap().status(), 405);

    for target in [
        "/media/../site.toml",
        "/media/%2e%2e/site.toml",
        "/media/2024/..%2f..%2fsite.toml",
        "/media/..%5csite.toml",
        "/media//etc/passwd",
        "/media/2024",
        "/media/nope.png",
        "/media/",
    ] {
        assert_eq!(raw_status(&server, target), 404, "{target}");
    }
    assert_eq!(raw_status(&server, "/media/a%00b"), 400);
}

#[test]
fn a_missing_media_file_is_reported_with_its_line_and_left_out() {
    let (dir, addr) = data_with_own_port(&root().join("tests/data/media"));
    std::fs::remove_file(dir.path().join("media/docs/report.pdf")).unwrap();
    let (code, stdout, _) = common::run(&["check", dir.path().to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        stdout.contains("photo.md:14:7: no file media/docs/report.pdf"),
        "{stdout}"
    );
    let server = Server::start(dir.path(), &["--addr", &addr]);
    let json: serde_json::Value =
        serde_json::from_slice(&get(&server, "/feeds/gorod.json")).unwrap();
    let attachments = json["items"][0]["attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 1, "only the remote file remains");
}
