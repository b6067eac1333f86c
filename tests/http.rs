//! Aggregator-grade HTTP, checked with real clients against a running server:
//! validators and 304s, HEAD, content coding, errors, hostile paths, limits,
//! timeouts and graceful shutdown.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Server, client, root};
use reqwest::blocking::Response;

const FEED: &str = "/feeds/all.rss";

fn get(server: &Server, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut req = client().get(server.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().expect("GET")
}

fn header(r: &Response, name: &str) -> String {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// Sends raw bytes on a fresh connection and returns everything read until close.
fn raw(server: &Server, request: &[u8]) -> String {
    let addr = server.base.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn status_of(raw_response: &str) -> &str {
    raw_response.split(' ').nth(1).unwrap_or("")
}

#[test]
fn validators_and_conditional_get() {
    let server = Server::start(&root().join("data"), &[]);
    let first = get(&server, FEED, &[]);
    assert_eq!(first.status(), 200);
    let etag = header(&first, "etag");
    let last_modified = header(&first, "last-modified");
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "strong ETag: {etag}"
    );
    assert_eq!(header(&first, "cache-control"), "public, max-age=300");
    assert_eq!(header(&first, "vary"), "Accept-Encoding");
    assert!(last_modified.ends_with(" GMT"), "{last_modified}");
    let body = first.text().unwrap();
    assert!(
        body.contains("<ttl>5</ttl>"),
        "ttl agrees with max-age in minutes"
    );

    let cases: Vec<(Vec<(&str, String)>, u16)> = vec![
        (vec![("if-none-match", etag.clone())], 304),
        (vec![("if-none-match", format!("\"nope\", {etag}"))], 304),
        (vec![("if-none-match", format!("W/{etag}"))], 304),
        (vec![("if-none-match", "*".into())], 304),
        (vec![("if-none-match", "\"nope\"".into())], 200),
        (vec![("if-modified-since", last_modified.clone())], 304),
        (
            vec![("if-modified-since", "Mon, 01 Jan 2001 00:00:00 GMT".into())],
            200,
        ),
        (vec![("if-modified-since", "not a date".into())], 200),
        (
            vec![
                ("if-modified-since", last_modified.clone()),
                ("if-modified-since", last_modified.clone()),
            ],
            200,
        ),
        // An entity-tag with a space is invalid (RFC 9110 etagc): the field is
        // ignored as if absent, so If-Modified-Since decides. Debug builds of
        // headers 0.4.2 used to panic on it, dropping the connection.
        (vec![("if-none-match", "\"a b\"".into())], 200),
        (vec![("if-none-match", format!("{etag}, \"a b\""))], 200),
        (
            vec![
                ("if-none-match", "\"a b\"".into()),
                ("if-modified-since", last_modified.clone()),
            ],
            304,
        ),
        // If-None-Match takes precedence over If-Modified-Since (RFC 9110 §13.2.2).
        (
            vec![
                ("if-none-match", "\"nope\"".into()),
                ("if-modified-since", last_modified.clone()),
            ],
            200,
        ),
        (
            vec![
                ("if-none-match", etag.clone()),
                ("if-modified-since", "Mon, 01 Jan 2001 00:00:00 GMT".into()),
            ],
            304,
        ),
    ];
    for (headers, status) in cases {
        let hs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = get(&server, FEED, &hs);
        assert_eq!(r.status().as_u16(), status, "{headers:?}");
        if status == 304 {
            assert_eq!(header(&r, "etag"), etag);
            assert_eq!(header(&r, "vary"), "Accept-Encoding");
            assert_eq!(header(&r, "cache-control"), "public, max-age=300");
            assert!(r.bytes().unwrap().is_empty(), "304 has no body");
        }
    }
    // Unknown query parameters, and an empty page, are ignored: same representation.
    let q = get(&server, "/feeds/all.rss?utm_source=x&page=", &[]);
    assert_eq!((q.status().as_u16(), header(&q, "etag")), (200, etag));
}

#[test]
fn head_has_the_same_headers_and_no_body() {
    let server = Server::start(&root().join("data"), &[]);
    for enc in ["identity", "gzip", "br"] {
        let g = get(&server, FEED, &[("accept-encoding", enc)]);
        let h = client()
            .head(server.url(FEED))
            .header("accept-encoding", enc)
            .send()
            .unwrap();
        assert_eq!(h.status(), 200);
        for name in [
            "etag",
            "content-type",
            "content-length",
            "content-encoding",
            "last-modified",
            "cache-control",
            "vary",
        ] {
            assert_eq!(header(&h, name), header(&g, name), "{enc} {name}");
        }
        assert!(!header(&h, "content-length").is_empty());
        assert!(h.bytes().unwrap().is_empty());
    }
}

#[test]
fn content_coding_negotiation() {
    let server = Server::start(&root().join("data"), &[]);
    let plain = get(&server, FEED, &[]);
    let plain_etag = header(&plain, "etag");
    let plain_body = plain.bytes().unwrap();
    let cases = [
        ("gzip", "gzip"),
        ("br", "br"),
        ("gzip, deflate, br", "br"),
        ("br;q=0, gzip", "gzip"),
        ("br;q=0.5, gzip;q=0.8", "gzip"),
        ("*", "br"),
        ("identity", ""),
        ("identity;q=0, gzip", "gzip"),
        ("deflate", ""),
    ];
    let mut etags = std::collections::HashSet::new();
    for (accept, expected) in cases {
        let r = get(&server, FEED, &[("accept-encoding", accept)]);
        assert_eq!(r.status(), 200, "{accept}");
        assert_eq!(header(&r, "content-encoding"), expected, "{accept}");
        assert_eq!(header(&r, "vary"), "Accept-Encoding");
        let etag = header(&r, "etag");
        let body = r.bytes().unwrap().to_vec();
        let decoded = match expected {
            "gzip" => {
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(&body[..])
                    .read_to_end(&mut out)
                    .unwrap();
                out
            }
            "br" => {
                let mut out = Vec::new();
                brotli::Decompressor::new(&body[..], 4096)
                    .read_to_end(&mut out)
                    .unwrap();
                out
            }
            _ => body,
        };
        assert_eq!(
            decoded,
            plain_body.to_vec(),
            "{accept} decodes to the same feed"
        );
        if expected.is_empty() {
            assert_eq!(etag, plain_etag);
        }
        etags.insert((expected, etag.clone()));
        // Each encoding's own ETag revalidates with the same Accept-Encoding.
        let again = get(
            &server,
            FEED,
            &[("accept-encoding", accept), ("if-none-match", &etag)],
        );
        assert_eq!(again.status(), 304, "{accept}");
    }
    let distinct: std::collections::HashSet<_> = etags.iter().map(|(_, e)| e).collect();
    assert_eq!(distinct.len(), 3, "one ETag per encoding: {etags:?}");

    // Nothing acceptable at all: codings not listed are refused (RFC 9110 §12.5.3).
    for accept in ["*;q=0", "identity;q=0", "br;q=0, gzip;q=0, identity;q=0"] {
        let r = get(&server, FEED, &[("accept-encoding", accept)]);
        assert_eq!(r.status(), 406, "{accept}");
        assert_eq!(header(&r, "vary"), "Accept-Encoding");
    }
}

#[test]
fn errors_404_405_and_hostile_paths() {
    let server = Server::start(&root().join("data"), &[]);
    let r = get(&server, "/feeds/nope.rss", &[]);
    assert_eq!(r.status(), 404);
    assert_eq!(header(&r, "content-type"), "text/plain; charset=utf-8");
    let body = r.text().unwrap();
    assert!(
        body.contains("http://localhost:8080/feeds/all.rss"),
        "{body}"
    );
    assert!(
        body.contains("http://localhost:8080/feeds/gradoustroistvo.atom"),
        "{body}"
    );

    let r = client().post(server.url(FEED)).body("x").send().unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(header(&r, "allow"), "GET, HEAD");
    for method in ["PUT", "DELETE", "OPTIONS", "PATCH"] {
        let r = client()
            .request(method.parse().unwrap(), server.url(FEED))
            .send()
            .unwrap();
        assert_eq!(r.status(), 405, "{method}");
    }

    for path in [
        "/feeds/../site.toml",
        "/feeds/%2e%2e/site.toml",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/feeds/..%2fsite.toml",
        "//feeds/all.rss",
        "/feeds//all.rss",
        "/feeds/all.rss/",
        "/feeds/./all.rss",
        "/entries/2022/",
        "/site.toml",
    ] {
        let resp = raw(
            &server,
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        assert_eq!(status_of(&resp), "404", "{path}: {resp}");
        assert!(!resp.contains("base_url"), "{path} leaked site.toml");
    }
    for path in ["/feeds/all.rss%00", "/%00", "/feeds/%ff.rss"] {
        let resp = raw(
            &server,
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        assert_eq!(status_of(&resp), "400", "{path}: {resp}");
    }
    // A body on GET is ignored, not buffered.
    let resp = raw(
        &server,
        b"GET /feeds/all.rss HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
    );
    assert_eq!(status_of(&resp), "200");
    // An oversized request head is refused.
    let huge = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let resp = raw(&server, huge.as_bytes());
    assert!(status_of(&resp) == "431" || resp.is_empty(), "{resp}");
}

#[test]
fn healthz_and_access_log() {
    let server = Server::start(&root().join("data"), &[]);
    let r = get(
        &server,
        "/healthz",
        &[(
            "user-agent",
            "Feedly/1.0 (+http://www.feedly.com/fetcher.html; 42 subscribers)",
        )],
    );
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), "application/json");
    let v: serde_json::Value = serde_json::from_slice(&r.bytes().unwrap()).unwrap();
    let site = vestnik::load_site(&root().join("data")).unwrap();
    assert_eq!(v["entries"], site.entries.len());
    assert_eq!(v["sections"], 18);
    assert_eq!(v["problems"], 0);
    assert_eq!(v["content_hash"].as_str().unwrap().len(), 32);

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let logs = server.stderr.lock().unwrap().join("\n");
        if logs.contains("42 subscribers")
            && logs.contains("/healthz")
            && logs.contains("status=200")
        {
            break;
        }
        assert!(Instant::now() < deadline, "no access log line:\n{logs}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn rate_limit_answers_429_with_retry_after() {
    let server = Server::start(
        &root().join("data"),
        &["--rate-limit", "1", "--rate-burst", "2"],
    );
    let statuses: Vec<u16> = (0..4)
        .map(|_| get(&server, FEED, &[]).status().as_u16())
        .collect();
    assert_eq!(&statuses[..2], &[200, 200]);
    assert_eq!(statuses[3], 429, "{statuses:?}");
    let r = get(&server, FEED, &[]);
    assert_eq!(r.status(), 429);
    let retry: u64 = header(&r, "retry-after").parse().unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
}

/// Statuses of `GET FEED` sent with each of these `X-Forwarded-For` values.
fn statuses_forwarded_for(server: &Server, xff: &[&str]) -> Vec<u16> {
    xff.iter()
        .map(|v| {
            get(server, FEED, &[("x-forwarded-for", v)])
                .status()
                .as_u16()
        })
        .collect()
}

#[test]
fn forwarded_for_is_not_trusted_by_default() {
    let server = Server::start(
        &root().join("data"),
        &["--rate-limit", "1", "--rate-burst", "2"],
    );
    // Each request claims another client; all come from 127.0.0.1.
    let statuses = statuses_forwarded_for(
        &server,
        &[
            "198.51.100.1",
            "198.51.100.2",
            "198.51.100.3",
            "198.51.100.4",
        ],
    );
    assert_eq!(
        statuses[3], 429,
        "spoofed X-Forwarded-For evaded the limit: {statuses:?}"
    );
}

#[test]
fn forwarded_for_names_the_client_behind_a_trusted_proxy() {
    let server = Server::start(
        &root().join("data"),
        &[
            "--rate-limit",
            "1",
            "--rate-burst",
            "2",
            "--trusted-proxy",
            "127.0.0.1",
            "--trusted-proxy",
            "10.0.0.0/8",
        ],
    );
    // Distinct clients behind the proxy get distinct buckets.
    let distinct: Vec<String> = (1..=6).map(|i| format!("198.51.100.{i}")).collect();
    let distinct: Vec<&str> = distinct.iter().map(String::as_str).collect();
    assert_eq!(statuses_forwarded_for(&server, &distinct), [200; 6]);
    // One client is still limited, whatever it prepends itself: the rightmost
    // untrusted address (10.x is a trusted hop) is the key.
    let same = [
        "203.0.113.5",
        "1.1.1.1, 203.0.113.5",
        "2.2.2.2, 203.0.113.5, 10.0.0.7",
        "3.3.3.3, 203.0.113.5",
    ];
    let statuses = statuses_forwarded_for(&server, &same);
    assert_eq!(&statuses[..2], &[200, 200], "{statuses:?}");
    assert_eq!(statuses[3], 429, "{statuses:?}");
    // The access log names the client, not the proxy.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let logs = server.stderr.lock().unwrap().join("\n");
        if logs.contains("client=203.0.113.5 peer=127.0.0.1") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no access log line for the client:\n{logs}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn slow_headers_are_cut_off_after_the_timeout() {
    let server = Server::start(&root().join("data"), &["--header-timeout", "1"]);
    let addr = server.base.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let started = Instant::now();
    s.write_all(b"GET /feeds/all.rss HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    // Never finish the headers; the server must hang up on its own.
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "closed too early: {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "not cut off: {waited:?}");

    // An idle keep-alive connection is closed after the same timeout.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"HEAD /feeds/all.rss HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    assert!(String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 200"));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "idle connection kept open"
    );
}

#[test]
fn connection_limit_queues_extra_connections() {
    let server = Server::start(&root().join("data"), &["--max-connections", "1"]);
    let addr = server.base.trim_start_matches("http://").to_owned();
    let hog = TcpStream::connect(&addr).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let mut waiting = TcpStream::connect(&addr).unwrap();
    waiting
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    waiting
        .write_all(b"HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 64];
    assert!(
        waiting.read(&mut buf).is_err(),
        "served beyond the connection limit"
    );
    drop(hog);
    waiting
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut out = Vec::new();
    let _ = waiting.read_to_end(&mut out);
    assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 200"));
}

#[cfg(unix)]
#[test]
fn graceful_shutdown_finishes_the_request_in_flight() {
    // A feed of several megabytes, read slowly through a small receive window,
    // keeps the response in flight while SIGTERM arrives.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        root().join("tests/data/good-min/site.toml"),
        dir.path().join("site.toml"),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("entries")).unwrap();
    let para = "Абзац длинного текста для проверки остановки сервера. ".repeat(150);
    for i in 0..40 {
        let body = (0..8)
            .map(|k| format!("{para} {i}-{k}"))
            .collect::<Vec<_>>()
            .join("\n\n");
        std::fs::write(
            dir.path().join(format!("entries/e{i:02}.md")),
            format!("+++\ntitle = \"Запись {i}\"\ndate = \"01.02.2024\"\nsections = [\"transport\"]\n+++\n{body}\n"),
        )
        .unwrap();
    }
    let mut server = Server::start(dir.path(), &["--shutdown-grace", "20"]);
    let expected_len: usize = get(&server, FEED, &[]).bytes().unwrap().len();
    // Larger than the kernel's largest send buffer (4 MiB), so the server's
    // write must wait for the client.
    assert!(expected_len > 5_000_000, "feed is {expected_len} bytes");

    let addr: std::net::SocketAddr = server.base.trim_start_matches("http://").parse().unwrap();
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&addr.into()).unwrap();
    let mut s: TcpStream = socket.into();
    s.write_all(b"GET /feeds/all.rss HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut head = [0u8; 1024];
    let n = s.read(&mut head).unwrap();
    assert!(n > 0);

    let kill = std::process::Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    std::thread::sleep(Duration::from_millis(300));
    // New connections are refused once shutdown began.
    assert!(
        TcpStream::connect(addr).is_err(),
        "still accepting after SIGTERM"
    );

    let mut rest = Vec::new();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut chunk = [0u8; 65536];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(k) => rest.extend_from_slice(&chunk[..k]),
            Err(e) => panic!("read failed after {} bytes: {e}", rest.len()),
        }
        if n + rest.len() >= expected_len {
            break;
        }
    }
    let mut all = head[..n].to_vec();
    all.extend_from_slice(&rest);
    let text = String::from_utf8_lossy(&all);
    assert!(text.starts_with("HTTP/1.1 200"));
    assert!(
        text.trim_end().ends_with("</rss>"),
        "response cut short: {} bytes",
        all.len()
    );
    let status = server
        .wait_exit(Duration::from_secs(20))
        .expect("server exited");
    assert!(status.success(), "{status:?}");
}
