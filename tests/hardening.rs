//! Findings of the security probe (issue 19), each against a real server:
//! FIFOs in DATA, media read whole into memory, no send timeout, no ranges.

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Server, client};

const SITE: &str = "title = \"Hardening\"\nbase_url = \"http://example.org/\"\ntimezone = \"UTC\"\n[[sections]]\nslug = \"news\"\ntitle = \"News\"\n";

fn entry(title: &str, extra: &str) -> String {
    format!(
        "+++\ntitle = \"{title}\"\ndate = 2024-05-01\nsections = [\"news\"]\n{extra}+++\n\nBody of {title}.\n"
    )
}

fn data_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("site.toml"), SITE).unwrap();
    std::fs::create_dir_all(dir.path().join("entries")).unwrap();
    std::fs::create_dir_all(dir.path().join("media")).unwrap();
    std::fs::write(dir.path().join("entries/one.md"), entry("One", "")).unwrap();
    dir
}

/// The tests here time the server under load; run them one at a time so
/// they do not load each other's servers.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

/// Sends a GET and returns the open connection without reading the answer.
fn send_get(base: &str, path: &str) -> TcpStream {
    let addr = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    s
}

fn healthz_ms(server: &Server) -> f64 {
    let started = Instant::now();
    let r = client().get(server.url("/healthz")).send().unwrap();
    assert_eq!(r.status(), 200);
    r.bytes().unwrap();
    started.elapsed().as_secs_f64() * 1000.0
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn fifos_in_media_and_entries_never_block_the_server() {
    let _serial = serial();
    let dir = data_dir();
    let data = dir.path();
    mkfifo(&data.join("media/fifo.txt"));
    mkfifo(&data.join("entries/fifo.md"));
    // An enclosure naming a FIFO: reported at load, never opened for reading.
    std::fs::write(
        data.join("entries/two.md"),
        entry("Two", "[[enclosures]]\nurl = \"fifo.txt\"\n"),
    )
    .unwrap();
    let (code, stdout, _) = common::run(&["check", data.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        stdout.contains("fifo.md:1:1: cannot read: a FIFO (named pipe)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("media/fifo.txt is not a regular file"),
        "{stdout}"
    );

    let server = Server::start(data, &[]);
    // 600 requests for the FIFO, all left open.
    let held: Vec<TcpStream> = (0..600)
        .map(|_| send_get(&server.base, "/media/fifo.txt"))
        .collect();
    let mut worst: f64 = 0.0;
    for _ in 0..20 {
        worst = worst.max(healthz_ms(&server));
    }
    assert!(
        worst < 100.0,
        "/healthz took {worst:.1} ms with 600 FIFO requests open"
    );
    // Each got its 404 (read one to be sure they were answered, not stuck).
    let mut first = held.into_iter().next().unwrap();
    first
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0; 12];
    first.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"HTTP/1.1 404");

    // A FIFO appearing under entries/ while serving does not freeze reloads.
    mkfifo(&data.join("entries/later.md"));
    std::fs::write(data.join("entries/three.md"), entry("Three", "")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let feed = client()
            .get(server.url("/feeds/all.rss"))
            .send()
            .unwrap()
            .text()
            .unwrap();
        if feed.contains("<title>Three</title>") {
            break;
        }
        assert!(Instant::now() < deadline, "reload stuck behind a FIFO");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn media_is_streamed_and_slow_readers_are_dropped() {
    let _serial = serial();
    let dir = data_dir();
    let data = dir.path();
    let big: Vec<u8> = (0..32 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(data.join("media/big.bin"), &big).unwrap();
    let server = Server::start(data, &["--send-timeout", "2"]);
    // Warm up: the first request hashes the file for its ETag.
    let r = client().head(server.url("/media/big.bin")).send().unwrap();
    assert_eq!(r.status(), 200);
    let before = rss_kib(server.pid());
    let started = Instant::now();
    let held: Vec<TcpStream> = (0..20)
        .map(|_| {
            let s = send_get(&server.base, "/media/big.bin");
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let during = rss_kib(server.pid());
    let added_mib = (during.saturating_sub(before)) as f64 / 1024.0;
    eprintln!("RSS {before} KiB -> {during} KiB with 20 non-reading clients (+{added_mib:.1} MiB)");
    assert!(
        added_mib < 20.0,
        "20 non-reading clients added {added_mib:.1} MiB"
    );
    // HEAD and 304 answer from the cached hash, without reading 32 MiB.
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    let t = Instant::now();
    for _ in 0..20 {
        let r = client()
            .get(server.url("/media/big.bin"))
            .header("if-none-match", &etag)
            .send()
            .unwrap();
        assert_eq!(r.status(), 304);
    }
    let per = t.elapsed().as_secs_f64() * 1000.0 / 20.0;
    assert!(per < 20.0, "a 304 of a 32 MiB file took {per:.1} ms");

    // The non-readers are dropped after the send timeout: reading after it
    // gets what the kernel buffered, then the end of the connection.
    std::thread::sleep(Duration::from_secs(3).saturating_sub(started.elapsed()));
    for mut s in held {
        let mut got = 0usize;
        let mut buf = vec![0; 1 << 16];
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
        assert!(
            got < big.len(),
            "a non-reading client still got the whole file"
        );
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(2),
        "dropped before the timeout"
    );
    assert!(waited < Duration::from_secs(25), "not dropped: {waited:?}");
    // The server is fine afterwards and serves the whole file to a reader.
    let whole = client()
        .get(server.url("/media/big.bin"))
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    assert!(whole[..] == big[..]);
}

#[test]
fn byte_ranges_agree_with_curl() {
    let dir = data_dir();
    let data = dir.path();
    let bytes: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
    std::fs::write(data.join("media/podcast.mp3"), &bytes).unwrap();
    let server = Server::start(data, &[]);
    let url = server.url("/media/podcast.mp3");
    let out = tempfile::tempdir().unwrap();
    for (range, want) in [
        ("0-99", &bytes[..100]),
        ("1000-", &bytes[1000..]),
        ("-500", &bytes[bytes.len() - 500..]),
        ("299990-400000", &bytes[299_990..]),
        ("65530-65545", &bytes[65530..=65545]),
    ] {
        let file = out.path().join("part");
        let status = std::process::Command::new("curl")
            .args(["--silent", "--fail", "--range", range, "--output"])
            .arg(&file)
            .args(["--write-out", "%{http_code}", &url])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&status.stdout), "206", "{range}");
        assert!(
            std::fs::read(&file).unwrap() == want,
            "curl --range {range}"
        );
    }
    let r = client()
        .get(&url)
        .header("range", "bytes=400000-")
        .send()
        .unwrap();
    assert_eq!(r.status(), 416);
    assert_eq!(r.headers()["content-range"], "bytes */300000");
    // curl resumes a download (-C -) through a Range request.
    let partial = out.path().join("resume.mp3");
    std::fs::write(&partial, &bytes[..123_456]).unwrap();
    let status = std::process::Command::new("curl")
        .args(["--silent", "--fail", "-C", "-", "--output"])
        .arg(&partial)
        .arg(&url)
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        std::fs::read(&partial).unwrap() == bytes,
        "resumed download differs"
    );
}

#[test]
fn http_1_1_without_host_is_a_bad_request() {
    let dir = data_dir();
    let server = Server::start(dir.path(), &[]);
    let status = |request: &str| {
        let addr = server.base.trim_start_matches("http://");
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut head = [0; 12];
        s.read_exact(&mut head).unwrap();
        String::from_utf8_lossy(&head[9..]).into_owned()
    };
    assert_eq!(status("GET /feeds/all.rss HTTP/1.1\r\n\r\n"), "400");
    assert_eq!(
        status("GET /feeds/all.rss HTTP/1.1\r\nHost: x\r\n\r\n"),
        "200"
    );
    // HTTP/1.0 has no Host requirement.
    assert_eq!(status("GET /feeds/all.rss HTTP/1.0\r\n\r\n"), "200");
}

#[test]
fn large_on_demand_pages_are_capped_cached_and_never_stall_the_server() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    // Few entries in the standard feeds, so startup does not render 40 MB.
    let site = SITE.replacen("[[sections]]", "feed_limit = 3\n[[sections]]", 1);
    std::fs::write(data.join("site.toml"), site).unwrap();
    std::fs::create_dir_all(data.join("entries")).unwrap();
    let paragraph = "Длинный абзац текста новости, повторённый много раз. ".repeat(40);
    let body = format!("{paragraph}\n\n").repeat(200); // ~760 KB
    for i in 0..80 {
        std::fs::write(
            data.join(format!("entries/e{i:02}.md")),
            format!(
                "+++\ntitle = \"E{i}\"\ndate = \"2024-05-01T10:{i:02}:00Z\"\nsections = [\"news\"]\n+++\n\n{body}"
            ),
        )
        .unwrap();
    }
    let server = Server::start(data, &[]);
    let url = server.url("/feeds/all.rss?limit=80");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let stop = stop.clone();
        let base = server.base.clone();
        std::thread::spawn(move || {
            let mut t = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || t.len() < 100 {
                let started = Instant::now();
                let r = client().get(format!("{base}/healthz")).send().unwrap();
                assert_eq!(r.status(), 200);
                t.push(started.elapsed().as_secs_f64() * 1000.0);
                std::thread::sleep(Duration::from_millis(2));
            }
            t
        })
    };
    // Four different pages at once, each rendered on the request path.
    let renders: Vec<_> = (1..=4)
        .map(|page| {
            let url = format!("{url}&page={page}");
            std::thread::spawn(move || {
                let r = client().get(&url).send().unwrap();
                assert_eq!(r.status(), 200, "{url}");
                r.bytes().unwrap().len()
            })
        })
        .collect();
    let mut timings = Vec::new();
    let sizes: Vec<usize> = renders.into_iter().map(|h| h.join().unwrap()).collect();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    timings.extend(watcher.join().unwrap());
    timings.sort_by(f64::total_cmp);
    let p99 = timings[(timings.len() * 99 / 100).min(timings.len() - 1)];
    eprintln!(
        "bodies {sizes:?}; /healthz p99 {p99:.1} ms over {} requests",
        timings.len()
    );
    assert!(
        p99 < 50.0,
        "/healthz p99 {p99:.1} ms during four large renders"
    );
    // Capped near ON_DEMAND_BYTES (8 MiB), with the rest one `next` away.
    for size in &sizes {
        assert!(*size < 12 << 20, "a ?limit= page of {size} bytes");
    }
    let feed = client().get(&url).send().unwrap().text().unwrap();
    let items = feed.matches("<item>").count();
    assert!((1..80).contains(&items), "{items} items");
    assert!(
        feed.contains(&format!("limit={items}")),
        "the self link names the capped limit"
    );
    assert!(feed.contains("rel=\"next\""), "no next link to the rest");
    // Cached: the same bytes, quickly, with the same ETag.
    let started = Instant::now();
    let again = client().get(&url).send().unwrap();
    assert!(started.elapsed() < Duration::from_millis(500));
    assert_eq!(again.text().unwrap(), feed);
}
