//! The admin listener of a real `vestnik serve --admin-addr` process:
//! subscriber counts from aggregators' User-Agents and from plain readers,
//! Prometheus metrics (checked by `promtool check metrics`), the problems
//! page, the state directory across a restart, and what is refused.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Server, client, copy_dir, root};

const FEEDLY: &str = "Feedly/1.0 (+http://www.feedly.com/fetcher.html; {} subscribers; )";
const INOREADER: &str = "Mozilla/5.0 (compatible; Inoreader/1.0; +http://www.inoreader.com/feed-fetcher; 12 subscribers; )";
const MINIFLUX: &str = "Mozilla/5.0 (compatible; Miniflux/2.2.3; +https://miniflux.app)";
const NETNEWSWIRE: &str = "NetNewsWire (RSS Reader; https://netnewswire.com/)";

/// A copy of tests/data/good-min with one broken entry added.
fn data() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &root().join("tests/data/good-min"),
        &dir.path().join("data"),
    );
    std::fs::write(
        dir.path().join("data/entries/broken.md"),
        "+++\ntitle = \"Сломано\"\ndate = \"31.02.2022\"\nsections = [\"transport\"]\n+++\nТекст\n",
    )
    .unwrap();
    dir
}

fn get(url: &str, user_agent: &str) -> reqwest::blocking::Response {
    client()
        .get(url)
        .header("User-Agent", user_agent)
        .send()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

fn text(url: &str) -> String {
    let r = get(url, "vestnik-test");
    assert_eq!(r.status(), 200, "GET {url}");
    r.text().unwrap()
}

fn json(url: &str) -> serde_json::Value {
    let body = text(url);
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {url}: {e}\n{body}"))
}

/// The samples of a Prometheus text exposition, by series (`name{labels}`).
/// Panics on a line that is neither a comment nor `series value`.
fn samples(metrics: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in metrics
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("not a sample: {line:?}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|e| panic!("bad value in {line:?}: {e}"));
        out.insert(series.to_owned(), value);
    }
    out
}

/// `promtool check metrics` over the exposition. Fails loudly when promtool
/// is missing: scripts/test installs it (Debian package `prometheus`).
fn promtool_check(metrics: &str) {
    use std::io::Write as _;
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run promtool ({e}); scripts/test installs it (Debian package prometheus)"
            )
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\nstdout:\n{}\nstderr:\n{}\nmetrics:\n{metrics}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn feed<'a>(stats: &'a serde_json::Value, path: &str) -> &'a serde_json::Value {
    stats["feeds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["feed"] == path)
        .unwrap_or_else(|| panic!("{path} not in {stats:#}"))
}

fn terminate(server: &mut Server) {
    let ok = Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -TERM");
    let status = server
        .wait_exit(Duration::from_secs(20))
        .expect("server exits on SIGTERM");
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn stats_metrics_and_problems_on_the_admin_address() {
    let dir = data();
    let data = dir.path().join("data");
    let state = dir.path().join("state");
    let args = [
        "--admin-addr",
        "127.0.0.1:0",
        "--state-dir",
        state.to_str().unwrap(),
    ];
    let mut server = Server::start(&data, &args);
    let admin = server.admin_base();
    assert_ne!(admin, server.base);

    // Feedly polls twice (its count grew), Inoreader once, two plain
    // readers a few times, curl once.
    let all = server.url("/feeds/all.rss");
    let r = get(&all, &FEEDLY.replace("{}", "120"));
    assert_eq!(r.status(), 200);
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    let r = client()
        .get(&all)
        .header("User-Agent", FEEDLY.replace("{}", "123"))
        .header("If-None-Match", &etag)
        .send()
        .unwrap();
    assert_eq!(r.status(), 304);
    assert_eq!(get(&all, INOREADER).status(), 200);
    for _ in 0..3 {
        assert_eq!(get(&all, MINIFLUX).status(), 200);
    }
    assert_eq!(get(&all, NETNEWSWIRE).status(), 200);
    assert_eq!(get(&all, "curl/8.5.0").status(), 200);
    // A section feed in another format, and a history page that is not a subscription.
    assert_eq!(
        get(&server.url("/feeds/transport.atom"), MINIFLUX).status(),
        200
    );
    assert_eq!(
        get(&server.url("/feeds/all.rss?page=2"), NETNEWSWIRE).status(),
        404
    );

    let stats = json(&format!("{admin}/stats.json"));
    let f = feed(&stats, "/feeds/all.rss");
    assert_eq!(f["aggregator_subscribers"], 123 + 12, "{stats:#}");
    assert_eq!(f["other_readers"], 2, "{stats:#}");
    assert_eq!(f["subscribers"], 137, "{stats:#}");
    let names: Vec<&str> = f["aggregators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Feedly", "Inoreader"]);
    assert_eq!(f["crawlers"][0]["name"], "curl");
    assert_eq!(feed(&stats, "/feeds/transport.atom")["other_readers"], 1);
    assert_eq!(json(&format!("{admin}/stats?format=json")), stats);
    let page = text(&format!("{admin}/stats"));
    assert!(
        page.contains("estimate") && page.contains("Feedly"),
        "{page}"
    );

    // Metrics: parseable, promtool-clean, and counting what happened.
    let metrics = text(&format!("{admin}/metrics"));
    promtool_check(&metrics);
    let m = samples(&metrics);
    let at = |series: &str| {
        *m.get(series)
            .unwrap_or_else(|| panic!("{series} missing in\n{metrics}"))
    };
    assert!(
        at(r#"vestnik_http_requests_total{route="feed",status="200",encoding="identity"}"#) >= 7.0
    );
    assert_eq!(
        at(r#"vestnik_http_requests_total{route="feed",status="304",encoding="identity"}"#),
        1.0
    );
    assert_eq!(at(r#"vestnik_http_not_modified_total{route="feed"}"#), 1.0);
    assert!(at(r#"vestnik_http_response_body_bytes_total{route="feed"}"#) > 0.0);
    assert!(at(r#"vestnik_http_request_duration_seconds_count{route="feed"}"#) >= 9.0);
    assert_eq!(at("vestnik_problems"), 1.0);
    assert_eq!(at("vestnik_entries"), 1.0);
    assert_eq!(at("vestnik_compression_queue"), 0.0);
    assert!(at("vestnik_snapshot_age_seconds") >= 0.0);
    assert!(at("vestnik_reload_last_success_timestamp_seconds") > 1.7e9);
    let open = client()
        .get(format!("{admin}/metrics"))
        .header("Accept", "application/openmetrics-text; version=1.0.0")
        .send()
        .unwrap();
    assert!(
        open.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    assert!(open.text().unwrap().ends_with("# EOF\n"));

    // Problems: the broken entry's path:line:col, in HTML and JSON.
    let broken = data.join("entries/broken.md");
    let place = format!("{}:3:", broken.display());
    let page = text(&format!("{admin}/problems"));
    assert!(page.contains(&place), "{place} not in\n{page}");
    let problems = json(&format!("{admin}/problems.json"));
    assert_eq!(problems["problems"], 1);
    assert_eq!(
        problems["diagnostics"][0]["path"],
        broken.display().to_string()
    );
    assert_eq!(problems["diagnostics"][0]["line"], 3);

    // The public address serves none of it.
    for path in [
        "/metrics",
        "/stats",
        "/stats.json",
        "/problems",
        "/problems.json",
    ] {
        assert_eq!(
            get(&server.url(path), "t").status(),
            404,
            "{path} on the public address"
        );
    }

    // A fix shows up as an applied reload and no problems.
    std::fs::write(
        &broken,
        "+++\ntitle = \"Починено\"\ndate = \"28.02.2022\"\nsections = [\"transport\"]\n+++\nТекст\n",
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let m = samples(&text(&format!("{admin}/metrics")));
        let applied = m
            .get(r#"vestnik_reloads_total{outcome="applied"}"#)
            .copied()
            .unwrap_or(0.0);
        if applied >= 1.0 && m.get("vestnik_problems") == Some(&0.0) {
            assert_eq!(m.get("vestnik_entries"), Some(&2.0));
            assert!(m[r#"vestnik_reload_duration_seconds_count"#] >= 1.0);
            break;
        }
        assert!(Instant::now() < deadline, "no applied reload in metrics");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(json(&format!("{admin}/problems.json"))["problems"], 0);

    // SIGTERM saves the aggregators' counts, and nothing about readers.
    terminate(&mut server);
    let saved = std::fs::read_to_string(state.join("subscribers.json")).unwrap();
    assert!(saved.contains("Feedly") && saved.contains("123"), "{saved}");
    for secret in ["127.0.0.1", "Miniflux", "NetNewsWire", "curl"] {
        assert!(!saved.contains(secret), "{secret} saved in\n{saved}");
    }

    // A new process starts from the saved counts.
    let server = Server::start(&data, &args);
    let stats = json(&format!("{}/stats.json", server.admin_base()));
    let f = feed(&stats, "/feeds/all.rss");
    assert_eq!(f["aggregator_subscribers"], 135, "{stats:#}");
    assert_eq!(f["other_readers"], 0, "{stats:#}");
}

fn serve_fails(data: &Path, args: &[&str]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vestnik"));
    cmd.arg("serve").arg(data);
    if !args.contains(&"--addr") {
        cmd.args(["--addr", "127.0.0.1:0"]);
    }
    let out = cmd.args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    stderr
}

#[test]
fn a_state_dir_inside_data_and_a_shared_address_are_refused() {
    let dir = data();
    let data = dir.path().join("data");
    let inside = data.join("state");
    let err = serve_fails(
        &data,
        &[
            "--admin-addr",
            "127.0.0.1:0",
            "--state-dir",
            inside.to_str().unwrap(),
        ],
    );
    assert!(err.contains("inside the data directory"), "{err}");
    let err = serve_fails(
        &data,
        &["--addr", "127.0.0.1:9", "--admin-addr", "127.0.0.1:9"],
    );
    assert!(err.contains("is the public address"), "{err}");
}

#[test]
fn without_admin_addr_nothing_listens_for_it() {
    let dir = data();
    let server = Server::start(&dir.path().join("data"), &[]);
    std::thread::sleep(Duration::from_millis(100));
    let out = server.stdout.lock().unwrap().join("\n");
    assert!(!out.contains("admin listening"), "{out}");
    assert_eq!(get(&server.url("/metrics"), "t").status(), 404);
}

/// Under systemd (`Type=notify`), READY=1 comes once both listeners are
/// bound and the first snapshot is in place, and STOPPING=1 at SIGTERM.
#[test]
fn readiness_and_stopping_are_sent_to_systemd() {
    use std::io::{BufRead as _, BufReader};
    use std::os::unix::net::UnixDatagram;
    let dir = data();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vestnik"))
        .arg("serve")
        .arg(dir.path().join("data"))
        .args(["--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"])
        .env("NOTIFY_SOCKET", &socket_path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 512];
    let n = socket.recv(&mut buf).expect("a notification within 30 s");
    let ready = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
    // Both addresses were printed before readiness, and answer now.
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let public = lines.next().unwrap().unwrap();
    let admin = lines.next().unwrap().unwrap();
    let base = public
        .strip_prefix("listening on ")
        .unwrap()
        .trim_end_matches('/');
    let admin = admin
        .strip_prefix("admin listening on ")
        .unwrap()
        .trim_end_matches('/');
    assert_eq!(get(&format!("{base}/healthz"), "t").status(), 200);
    assert_eq!(get(&format!("{admin}/metrics"), "t").status(), 200);

    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let n = socket.recv(&mut buf).expect("STOPPING=1 at SIGTERM");
    let stopping = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(stopping.lines().any(|l| l == "STOPPING=1"), "{stopping:?}");
    assert!(child.wait().unwrap().success());
}
