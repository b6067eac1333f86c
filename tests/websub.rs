//! WebSub against a running server: a test hub on loopback records every
//! `hub.mode=publish` POST, and the tests check that a reload pings exactly
//! the feeds whose bytes changed, that failed pings are retried, and that feed
//! responses and bodies announce the hub. Every wait is bounded.

mod common;

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Server, client, data_with_own_port, feedparser};

/// One POST the test hub received.
#[derive(Debug, Clone)]
struct Ping {
    /// When it arrived.
    at: Instant,
    content_type: String,
    /// The decoded form fields, in order.
    form: Vec<(String, String)>,
    /// What the hub answered.
    status: u16,
}

impl Ping {
    fn field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A WebSub hub on 127.0.0.1 that records POSTs and answers each with the
/// next scripted status, then 204 once the script runs out.
struct TestHub {
    url: String,
    pings: Arc<Mutex<Vec<Ping>>>,
}

impl TestHub {
    fn start(script: &[u16]) -> TestHub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hub", listener.local_addr().unwrap());
        let pings = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(script.iter().copied().collect::<VecDeque<_>>()));
        let sink = pings.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let (sink, script) = (sink.clone(), script.clone());
                std::thread::spawn(move || serve_hub(stream, &sink, &script));
            }
        });
        TestHub { url, pings }
    }

    fn pings(&self) -> Vec<Ping> {
        self.pings.lock().unwrap().clone()
    }

    /// Waits (at most 10 s) until `n` pings have arrived.
    fn wait_for(&self, n: usize) -> Vec<Ping> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let pings = self.pings();
            if pings.len() >= n {
                return pings;
            }
            assert!(
                Instant::now() < deadline,
                "hub got {} of {n} pings:\n{}",
                pings.len(),
                show(&pings)
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Reads requests off one connection (keep-alive) and records each.
fn serve_hub(stream: TcpStream, sink: &Mutex<Vec<Ping>>, script: &Mutex<VecDeque<u16>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) if line == "\r\n" => break,
                Ok(_) => head.push(line.trim_end().to_owned()),
            }
        }
        let header = |name: &str| {
            head.iter()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_owned())
                .unwrap_or_default()
        };
        let mut body = vec![0; header("content-length").parse().unwrap_or(0)];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let status = script.lock().unwrap().pop_front().unwrap_or(204);
        sink.lock().unwrap().push(Ping {
            at: Instant::now(),
            content_type: header("content-type"),
            form: url::form_urlencoded::parse(&body).into_owned().collect(),
            status,
        });
        let reason = if status == 204 { "No Content" } else { "Oops" };
        let answer = format!("HTTP/1.1 {status} {reason}\r\ncontent-length: 0\r\n\r\n");
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

fn show(pings: &[Ping]) -> String {
    pings
        .iter()
        .map(|p| {
            let form: Vec<String> = p.form.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("  {} -> {}", form.join("&"), p.status)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn entry(title: &str, section: &str, body: &str) -> String {
    format!(
        "+++\ntitle = \"{title}\"\ndate = \"05.02.2024 10:00\"\nsections = [\"{section}\"]\n+++\n\n{body}\n"
    )
}

/// A data directory with three sections and one entry in each, whose
/// `base_url` is the server's own port and which names `hub` (if any).
/// Returns the directory and the server's `--addr`.
fn data(hub: Option<&str>) -> (tempfile::TempDir, String) {
    let src = tempfile::tempdir().unwrap();
    let hub = hub
        .map(|h| format!("websub_hub = \"{h}\"\n"))
        .unwrap_or_default();
    std::fs::write(
        src.path().join("site.toml"),
        format!(
            "title = \"WebSub\"\nbase_url = \"http://example.org/\"\ntimezone = \"Asia/Novosibirsk\"\n{hub}\
             [[sections]]\nslug = \"transport\"\ntitle = \"Транспорт\"\n\
             [[sections]]\nslug = \"sport\"\ntitle = \"Спорт\"\n\
             [[sections]]\nslug = \"culture\"\ntitle = \"Культура\"\n"
        ),
    )
    .unwrap();
    std::fs::create_dir(src.path().join("entries")).unwrap();
    for section in ["transport", "sport", "culture"] {
        std::fs::write(
            src.path().join(format!("entries/{section}.md")),
            entry(section, section, "Первая версия."),
        )
        .unwrap();
    }
    data_with_own_port(src.path())
}

/// The feed URLs of `scopes` in every format, sorted.
fn feed_urls(server: &Server, scopes: &[&str]) -> Vec<String> {
    let mut urls: Vec<String> = scopes
        .iter()
        .flat_map(|s| ["rss", "atom", "json"].map(|ext| server.url(&format!("/feeds/{s}.{ext}"))))
        .collect();
    urls.sort();
    urls
}

/// How many pings each topic got, among those the hub accepted.
fn accepted(pings: &[Ping]) -> BTreeMap<String, usize> {
    let mut by_topic = BTreeMap::new();
    for p in pings.iter().filter(|p| p.status == 204) {
        *by_topic
            .entry(p.field("hub.url").unwrap_or("").to_owned())
            .or_insert(0) += 1;
    }
    by_topic
}

fn edit(dir: &Path, section: &str, body: &str) -> Instant {
    std::fs::write(
        dir.join(format!("entries/{section}.md")),
        entry(section, section, body),
    )
    .unwrap();
    Instant::now()
}

/// Lets stray pings (there should be none) arrive before a test counts.
fn quiet() {
    std::thread::sleep(Duration::from_millis(700));
}

#[test]
fn a_reload_pings_exactly_the_changed_feeds_within_a_second() {
    let hub = TestHub::start(&[]);
    let (dir, addr) = data(Some(&hub.url));
    let server = Server::start(dir.path(), &["--addr", &addr]);
    quiet();
    assert!(
        hub.pings().is_empty(),
        "startup must not ping:\n{}",
        show(&hub.pings())
    );

    let edited = edit(dir.path(), "sport", "Вторая версия.");
    let pings = hub.wait_for(6);
    let took = pings.iter().map(|p| p.at - edited).max().unwrap();
    quiet();
    let pings = hub.pings();
    eprintln!(
        "pings recorded by the test hub ({took:?} after the edit):\n{}",
        show(&pings)
    );
    assert!(took < Duration::from_secs(1), "pings took {took:?}");

    let expected: BTreeMap<String, usize> = feed_urls(&server, &["all", "sport"])
        .into_iter()
        .map(|u| (u, 1))
        .collect();
    assert_eq!(accepted(&pings), expected, "{}", show(&pings));
    assert_eq!(pings.len(), 6, "{}", show(&pings));
    for p in &pings {
        assert_eq!(p.content_type, "application/x-www-form-urlencoded");
        assert_eq!(p.field("hub.mode"), Some("publish"));
        assert_eq!(p.form.len(), 2, "one hub.url per request: {:?}", p.form);
    }

    // The change is served: the pinged topics really changed.
    let body = client()
        .get(server.url("/feeds/sport.rss"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(body.contains("Вторая версия."));
}

#[test]
fn a_failed_ping_is_retried_until_the_hub_accepts_it() {
    let hub = TestHub::start(&[500, 503]);
    let (dir, addr) = data(Some(&hub.url));
    let server = Server::start(dir.path(), &["--addr", &addr]);

    edit(dir.path(), "culture", "Вторая версия.");
    // Six pings, two of them refused once each and retried after ~1 s.
    hub.wait_for(8);
    quiet();
    let pings = hub.pings();
    eprintln!("pings recorded by the test hub:\n{}", show(&pings));
    assert_eq!(pings.len(), 8, "{}", show(&pings));
    let expected: BTreeMap<String, usize> = feed_urls(&server, &["all", "culture"])
        .into_iter()
        .map(|u| (u, 1))
        .collect();
    assert_eq!(accepted(&pings), expected, "{}", show(&pings));
    for failed in pings.iter().filter(|p| p.status != 204) {
        let topic = failed.field("hub.url");
        let retry = pings
            .iter()
            .find(|p| p.status == 204 && p.field("hub.url") == topic)
            .unwrap();
        let waited = retry.at - failed.at;
        assert!(
            waited >= Duration::from_millis(900),
            "retried after {waited:?}, not after the backoff"
        );
    }
    let log = server.stderr.lock().unwrap().join("\n");
    assert!(log.contains("retrying in 1s"), "{log}");
}

#[test]
fn naming_a_hub_in_site_toml_takes_effect_on_reload() {
    let hub = TestHub::start(&[]);
    let (dir, addr) = data(None);
    let server = Server::start(dir.path(), &["--addr", &addr]);
    let r = client().get(server.url("/feeds/all.atom")).send().unwrap();
    assert!(r.headers().get("link").is_none());

    let site = dir.path().join("site.toml");
    let text = std::fs::read_to_string(&site).unwrap();
    let text = text.replacen(
        "[[sections]]",
        &format!("websub_hub = \"{}\"\n[[sections]]", hub.url),
        1,
    );
    std::fs::write(&site, text).unwrap();
    // Every feed now names the hub, so every feed's bytes changed.
    hub.wait_for(12);
    quiet();
    let all = feed_urls(&server, &["all", "transport", "sport", "culture"]);
    let expected: BTreeMap<String, usize> = all.into_iter().map(|u| (u, 1)).collect();
    assert_eq!(accepted(&hub.pings()), expected, "{}", show(&hub.pings()));
}

#[test]
fn feeds_announce_the_hub_in_headers_and_bodies() {
    let hub = TestHub::start(&[]);
    let (dir, addr) = data(Some(&hub.url));
    let server = Server::start(dir.path(), &["--addr", &addr]);
    let http = client();
    let mut docs = Vec::new();
    for ext in ["rss", "atom", "json"] {
        let path = format!("/feeds/sport.{ext}");
        let self_url = server.url(&path);
        let link = format!("<{}>; rel=\"hub\", <{self_url}>; rel=\"self\"", hub.url);

        let r = http.get(&self_url).send().unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["link"], link.as_str(), "{path}");
        let etag = r.headers()["etag"].clone();
        let body = r.bytes().unwrap();

        let head = http.head(&self_url).send().unwrap();
        assert_eq!(head.headers()["link"], link.as_str(), "HEAD {path}");
        let not_modified = http
            .get(&self_url)
            .header("if-none-match", etag)
            .send()
            .unwrap();
        assert_eq!(not_modified.status(), 304);
        assert_eq!(not_modified.headers()["link"], link.as_str(), "304 {path}");

        let text = String::from_utf8(body.to_vec()).unwrap();
        match ext {
            "rss" => assert!(
                text.contains(&format!("<atom:link href=\"{}\" rel=\"hub\"/>", hub.url))
                    && text.contains(&format!("<atom:link href=\"{self_url}\" rel=\"self\"")),
                "{text}"
            ),
            "atom" => assert!(
                text.contains(&format!("<link href=\"{}\" rel=\"hub\"/>", hub.url))
                    && text.contains(&format!("<link href=\"{self_url}\" rel=\"self\"")),
                "{text}"
            ),
            _ => {
                let json: serde_json::Value = serde_json::from_str(&text).unwrap();
                assert_eq!(json["feed_url"], self_url.as_str());
                assert_eq!(
                    json["hubs"],
                    serde_json::json!([{"type": "WebSub", "url": hub.url}])
                );
            }
        }
        let parsed = feed_rs::parser::parse(&body[..]).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(parsed.entries.len(), 1, "{path}");
        if ext != "json" {
            assert!(
                parsed
                    .links
                    .iter()
                    .any(|l| l.rel.as_deref() == Some("hub") && l.href == hub.url),
                "feed-rs sees no hub link in {path}: {:?}",
                parsed.links
            );
            docs.push((path, body.to_vec()));
        }
    }
    for (p, (path, _)) in feedparser(&docs).iter().zip(&docs) {
        assert_eq!(p.bozo, 0, "feedparser bozo on {path}: {}", p.bozo_exception);
    }
    // Pages and lists are not topics.
    for path in ["/", "/sections/sport", "/feeds.opml"] {
        let r = http.get(server.url(path)).send().unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(r.headers().get("link").is_none(), "{path}");
    }
}

#[test]
fn a_scheduled_entry_going_live_pings_its_feeds_without_any_edit() {
    let hub = TestHub::start(&[]);
    let (dir, addr) = data(Some(&hub.url));
    // Due 3 s from now, in the culture section.
    let due = chrono::Utc::now() + chrono::Duration::seconds(3);
    let due = chrono::DateTime::<chrono::Utc>::from_timestamp(due.timestamp(), 0).unwrap();
    std::fs::write(
        dir.path().join("entries/later.md"),
        format!(
            "+++\ntitle = \"Позже\"\ndate = \"{}\"\nsections = [\"culture\"]\n+++\n\nТекст.\n",
            due.to_rfc3339()
        ),
    )
    .unwrap();
    let server = Server::start(dir.path(), &["--addr", &addr]);
    assert!(
        chrono::Utc::now() < due,
        "the server took too long to start"
    );
    assert!(hub.pings().is_empty());
    let pings = hub.wait_for(6);
    let late = chrono::Utc::now() - due;
    quiet();
    let pings_now = hub.pings();
    eprintln!("pings {late} after the due time:\n{}", show(&pings_now));
    assert!(pings.iter().all(|p| p.at >= pings[0].at));
    let expected: BTreeMap<String, usize> = feed_urls(&server, &["all", "culture"])
        .into_iter()
        .map(|u| (u, 1))
        .collect();
    assert_eq!(accepted(&pings_now), expected, "{}", show(&pings_now));
    let body = client()
        .get(server.url("/feeds/culture.rss"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(body.contains("Позже"));
}
