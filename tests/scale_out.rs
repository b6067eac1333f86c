//! The scale-out recipe of README.md, "Several replicas behind nginx": two
//! `vestnik serve` replicas of one data directory behind a real nginx with
//! `deploy/nginx-upstream.conf`. Conditional GETs through nginx get 304
//! whichever replica answers, and after an edit and a SIGHUP every replica
//! agrees on the new ETags.
//!
//! The shipped file is checked as it is with `nginx -t`, and run with only
//! its ports, and its log path, replaced.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Server, client, root};

/// The shipped file's replica and log lines, replaced by the test's own.
const REPLICA_1: &str = "server 127.0.0.1:8081 ";
const REPLICA_2: &str = "server 127.0.0.1:8082 ";
const LISTEN: &str = "listen 80;";
const LISTEN_V6: &str = "listen [::]:80;";
const ACCESS_LOG: &str = "/var/log/nginx/vestnik.access.log";

/// The resources an edit of one entry changes, compared across replicas.
const CHANGED: &[&str] = &[
    "/feeds/all.rss",
    "/feeds/all.atom",
    "/feeds/all.json",
    "/feeds/news.rss",
    "/",
    "/sections/news",
];

/// The nginx binary: on PATH, or Debian's /usr/sbin (not on a user's PATH).
/// Fails (never skips) when there is none: scripts/test installs it.
fn nginx_binary() -> PathBuf {
    let candidates = [PathBuf::from("nginx"), PathBuf::from("/usr/sbin/nginx")];
    for nginx in candidates {
        if Command::new(&nginx)
            .arg("-v")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return nginx;
        }
    }
    panic!(
        "this test needs nginx (not on PATH nor at /usr/sbin/nginx); scripts/test installs it (Debian package nginx-light)"
    );
}

/// The main configuration around a server file, as Debian's nginx.conf
/// includes sites-enabled/ inside its http block; temporary files go under
/// `prefix`, so nothing needs /var/lib/nginx.
fn main_conf(prefix: &Path, include: &Path, extra_main: &str) -> String {
    let p = prefix.display();
    format!(
        "{extra_main}\nworker_processes 1;\nevents {{ worker_connections 512; }}\nhttp {{\n    \
         client_body_temp_path {p}/temp/body;\n    proxy_temp_path {p}/temp/proxy;\n    \
         fastcgi_temp_path {p}/temp/fastcgi;\n    uwsgi_temp_path {p}/temp/uwsgi;\n    \
         scgi_temp_path {p}/temp/scgi;\n    include {};\n}}\n",
        include.display()
    )
}

/// `text` with each `(from, to)` replaced, where `from` occurs exactly once
/// (so a change to the shipped file cannot silently leave a default in).
fn render(text: &str, replacements: &[(&str, String)]) -> String {
    let mut text = text.to_owned();
    for (from, to) in replacements {
        assert_eq!(
            text.matches(from).count(),
            1,
            "deploy/nginx-upstream.conf should hold `{from}` exactly once"
        );
        text = text.replace(from, to);
    }
    text
}

/// A running nginx, stopped (SIGTERM to its master, which stops the
/// workers) on drop.
struct Nginx {
    child: Child,
    base: String,
    prefix: tempfile::TempDir,
}

impl Nginx {
    /// Starts nginx on `conf` (a server file) listening on `port`, and waits
    /// (bounded) until it accepts connections.
    fn start(nginx: &Path, prefix: tempfile::TempDir, conf: &str, port: u16) -> Nginx {
        let p = prefix.path();
        // Workers run as an unprivileged user when nginx starts as root.
        std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        std::fs::create_dir_all(p.join("temp")).unwrap();
        std::fs::write(p.join("vestnik.conf"), conf).unwrap();
        std::fs::write(
            p.join("nginx.conf"),
            main_conf(p, &p.join("vestnik.conf"), ""),
        )
        .unwrap();
        let mut cmd = Command::new(nginx);
        cmd.arg("-p")
            .arg(p)
            .args(["-e", "stderr", "-c"])
            .arg(p.join("nginx.conf"))
            .arg("-g")
            .arg(format!(
                "daemon off; pid {}; error_log {} info;",
                p.join("nginx.pid").display(),
                p.join("error.log").display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let stderr = common::collect_lines(child.stderr.take().unwrap());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            let exited = child.try_wait().unwrap();
            if exited.is_some() || Instant::now() > deadline {
                let _ = child.kill();
                let said = stderr.lock().unwrap().join("\n");
                panic!(
                    "nginx did not start ({exited:?}): {cmd:?}\nstderr:\n{said}\nerror.log:\n{}\nconf:\n{conf}",
                    std::fs::read_to_string(p.join("error.log")).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Nginx {
            child,
            base: format!("http://127.0.0.1:{port}"),
            prefix,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn access_log(&self) -> String {
        std::fs::read_to_string(self.prefix.path().join("access.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a GET got.
#[derive(Debug, PartialEq)]
struct Answer {
    status: u16,
    etag: String,
    encoding: Option<String>,
    body: Vec<u8>,
}

/// GET `url` with extra headers.
fn get(url: &str, headers: &[(&str, &str)]) -> Answer {
    let mut request = client().get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let r = request.send().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let header = |name| {
        r.headers()
            .get(name)
            .map(|v: &reqwest::header::HeaderValue| v.to_str().unwrap().to_owned())
    };
    Answer {
        status: r.status().as_u16(),
        etag: header("etag").unwrap_or_default(),
        encoding: header("content-encoding"),
        body: r.bytes().unwrap().to_vec(),
    }
}

/// How many of a replica's access log lines answered `path` with `status`.
fn answered(server: &Server, path: &str, status: u16) -> usize {
    let needle = format!("path={path} status={status} ");
    server
        .stderr
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("vestnik::access") && l.contains(&needle))
        .count()
}

#[test]
fn the_shipped_upstream_conf_passes_nginx_t_as_it_is() {
    let nginx = nginx_binary();
    common::require_mount_namespace();
    let prefix = tempfile::tempdir().unwrap();
    let p = prefix.path();
    std::fs::create_dir_all(p.join("temp")).unwrap();
    let shipped = root().join("deploy/nginx-upstream.conf");
    // `user root`: in the namespace below only root exists, and nginx -t
    // gives its temporary folders to the worker user.
    std::fs::write(p.join("nginx.conf"), main_conf(p, &shipped, "user root;")).unwrap();
    // nginx -t opens the log files and binds the ports it names: in a mount
    // namespace with a tmpfs over /var/log and a network namespace of its
    // own, the file is tested as written, and nothing on this machine is
    // touched or taken.
    let script = format!(
        "mount -t tmpfs -o size=1m tmpfs /var/log && mkdir /var/log/nginx && exec {} -t -p {p} -e stderr -c {p}/nginx.conf -g 'pid {p}/nginx.pid; error_log stderr;'",
        common::sh_quote(&nginx),
        p = p.display()
    );
    let out = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "--net", "sh", "-c"])
        .arg(&script)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.contains("test is successful"),
        "nginx -t refused {}:\n$ {script}\n{stderr}",
        shipped.display()
    );
}

#[test]
fn replicas_behind_nginx_answer_304_and_agree_after_a_reload() {
    let nginx = nginx_binary();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    common::write_site(&data, 0, 12, 1500);
    // The first replica also follows edits by watching files; the second
    // reloads on SIGHUP only, so that path is proven on its own.
    let replicas = [
        Server::start(&data, &["--trusted-proxy", "127.0.0.1"]),
        Server::start(&data, &["--trusted-proxy", "127.0.0.1", "--no-watch"]),
    ];
    let addrs: Vec<String> = replicas
        .iter()
        .map(|s| s.base.trim_start_matches("http://").to_owned())
        .collect();
    let port = common::free_port();
    let prefix = tempfile::tempdir().unwrap();
    let shipped = std::fs::read_to_string(root().join("deploy/nginx-upstream.conf")).unwrap();
    let conf = render(
        &shipped,
        &[
            (REPLICA_1, format!("server {} ", addrs[0])),
            (REPLICA_2, format!("server {} ", addrs[1])),
            (LISTEN, format!("listen 127.0.0.1:{port};")),
            (LISTEN_V6, String::new()),
            (
                ACCESS_LOG,
                prefix.path().join("access.log").display().to_string(),
            ),
        ],
    );
    let proxy = Nginx::start(&nginx, prefix, &conf, port);

    // The same bytes through nginx as from a replica, for each coding.
    for coding in [None, Some("gzip"), Some("br")] {
        let headers: Vec<(&str, &str)> =
            coding.map(|c| ("accept-encoding", c)).into_iter().collect();
        let first = get(&proxy.url("/feeds/all.rss"), &headers);
        assert_eq!(first.status, 200);
        assert_eq!(
            first.encoding.as_deref(),
            coding,
            "Accept-Encoding passed on"
        );
        assert_eq!(first, get(&replicas[0].url("/feeds/all.rss"), &headers));
        // Conditional GETs: 304 whichever replica nginx picks.
        for i in 0..20 {
            let mut conditional = headers.clone();
            conditional.push(("if-none-match", &first.etag));
            let again = get(&proxy.url("/feeds/all.rss"), &conditional);
            assert_eq!(
                again.status, 304,
                "conditional GET {i} ({coding:?}) through nginx"
            );
            assert_eq!(again.etag, first.etag);
            assert!(again.body.is_empty());
        }
    }
    // Every one reached a replica, and both replicas answered 304s (their
    // own access logs, read by a background thread: waited for, bounded).
    let deadline = Instant::now() + Duration::from_secs(5);
    let per_replica = loop {
        let counts: Vec<usize> = replicas
            .iter()
            .map(|r| answered(r, "/feeds/all.rss", 304))
            .collect();
        if counts.iter().sum::<usize>() >= 60 || Instant::now() > deadline {
            break counts;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    eprintln!("304s per replica: {per_replica:?}");
    assert_eq!(per_replica.iter().sum::<usize>(), 60);
    assert!(
        per_replica.iter().all(|&n| n > 0),
        "one replica answered every request: {per_replica:?}"
    );
    // nginx's access log names each replica ($upstream_addr).
    let log = proxy.access_log();
    for addr in &addrs {
        assert!(
            log.contains(&format!("upstream={addr} upstream_status=304")),
            "nginx's access log never names {addr}:\n{log}"
        );
    }

    // X-Forwarded-For: the replica logs the address nginx saw (and appended),
    // having trusted nginx; here the client is on loopback too, so a header
    // the client sent stands in for a remote address.
    let opml = get(
        &proxy.url("/feeds.opml"),
        &[("x-forwarded-for", "203.0.113.7")],
    );
    assert_eq!(opml.status, 200);
    // Log lines are written by each replica's own writer thread, after the
    // answer: waited for, bounded.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let logged = replicas.iter().any(|r| {
            r.stderr.lock().unwrap().iter().any(|l| {
                l.contains("client=203.0.113.7 peer=127.0.0.1 method=GET path=/feeds.opml")
            })
        });
        if logged {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no replica logged the forwarded client"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // Before the edit, every replica has the same ETags.
    let etags = |server: &Server| -> Vec<String> {
        CHANGED
            .iter()
            .map(|p| get(&server.url(p), &[]).etag)
            .collect()
    };
    let old = etags(&replicas[0]);
    assert_eq!(etags(&replicas[1]), old);

    // Edit an entry, then SIGHUP every replica (the first one's file
    // watcher may reload it first; either is fine).
    let entry = data.join("entries/e0010.md");
    let text = std::fs::read_to_string(&entry).unwrap();
    std::fs::write(
        &entry,
        text.replace("title = \"Entry 10\"", "title = \"Entry 10, updated\""),
    )
    .unwrap();
    let edited = Instant::now();
    for r in &replicas {
        let ok = Command::new("kill")
            .args(["-HUP", &r.pid().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }
    let deadline = edited + Duration::from_secs(10);
    let new = loop {
        let seen: Vec<Vec<String>> = replicas.iter().map(etags).collect();
        let agreed = seen.windows(2).all(|w| w[0] == w[1]);
        let changed = seen[0].iter().zip(&old).all(|(new, old)| new != old);
        if agreed && changed {
            break seen[0].clone();
        }
        assert!(
            Instant::now() < deadline,
            "replicas did not agree on new ETags within 10 s: before {old:?}, now {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(25));
    };
    eprintln!(
        "every replica served the new ETags {:.0} ms after the edit",
        edited.elapsed().as_secs_f64() * 1000.0
    );
    let feed = get(&replicas[1].url("/feeds/all.rss"), &[]).body;
    assert!(String::from_utf8_lossy(&feed).contains("Entry 10, updated"));

    // Through nginx, the old ETag is now stale: 200 with the new one, from
    // either replica.
    for _ in 0..6 {
        for (path, (old, new)) in CHANGED.iter().zip(old.iter().zip(&new)) {
            let answer = get(&proxy.url(path), &[("if-none-match", old)]);
            assert_eq!(
                (answer.status, &answer.etag),
                (200, new),
                "{path} with the old ETag"
            );
        }
    }
    // No upstream error on the way (a replica closing a kept-alive
    // connection under nginx would be one), nor anything worse.
    let errors = std::fs::read_to_string(proxy.prefix.path().join("error.log")).unwrap();
    for level in ["[error]", "[crit]", "[alert]", "[emerg]"] {
        assert!(!errors.contains(level), "nginx's error.log:\n{errors}");
    }
}

#[test]
fn the_readme_shows_the_upstream_recipe() {
    // README's section points at the shipped file and names what a replica
    // needs; keep them in step when either changes.
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let section = readme
        .split("### Several replicas behind nginx")
        .nth(1)
        .expect("README.md has a section \"Several replicas behind nginx\"");
    let section = section.split("\n## ").next().unwrap();
    for needle in [
        "deploy/nginx-upstream.conf",
        "--trusted-proxy",
        "keepalive",
        "proxy_cache",
        "SIGHUP",
    ] {
        assert!(
            section.contains(needle),
            "the section does not mention {needle}"
        );
    }
}
