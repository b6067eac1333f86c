//! Shared helpers for integration tests: a real server process, an HTTP
//! client, and Python's feedparser.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Collects the lines of a child's output in the background.
pub fn collect_lines(
    from: impl std::io::Read + Send + 'static,
) -> std::sync::Arc<std::sync::Mutex<Vec<String>>> {
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

/// A `vestnik serve` process on an ephemeral loopback port, killed on drop.
pub struct Server {
    child: Child,
    /// e.g. `http://127.0.0.1:43121`
    pub base: String,
    /// Lines the server wrote to stderr, collected in the background.
    pub stderr: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// Lines the server wrote to stdout, collected in the background.
    pub stdout: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Server {
    /// Starts the server on `data` with extra flags and waits until it listens.
    pub fn start(data: &Path, extra: &[&str]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vestnik"));
        cmd.arg("serve").arg(data);
        if !extra.contains(&"--addr") {
            cmd.args(["--addr", "127.0.0.1:0"]);
        }
        cmd.args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let lines = collect_lines(stderr);
        let out_lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = out_lines.clone();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("listening on ") {
                    let _ = tx.send(rest.trim_end_matches('/').to_owned());
                }
                sink.lock().unwrap().push(line);
            }
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(base) => {
                let server = Server {
                    child,
                    base,
                    stderr: lines,
                    stdout: out_lines,
                };
                server.wait_settled();
                server
            }
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "server did not start: {cmd:?}\nstderr:\n{}",
                    lines.lock().unwrap().join("\n")
                );
            }
        }
    }

    /// Waits (bounded) until the server has computed every brotli variant,
    /// so responses no longer change encoding under a test.
    pub fn wait_settled(&self) {
        let http = client();
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        loop {
            let health: serde_json::Value = http
                .get(self.url("/healthz"))
                .send()
                .and_then(|r| r.bytes())
                .map(|b| serde_json::from_slice(&b).unwrap_or_default())
                .unwrap_or_default();
            if health["compressing"] == 0 {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "server never finished compressing: {health}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The base URL of the admin listener (`--admin-addr`), from its
    /// `admin listening on` line, e.g. `http://127.0.0.1:43122`.
    pub fn admin_base(&self) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let found = self.stdout.lock().unwrap().iter().find_map(|l| {
                l.strip_prefix("admin listening on ")
                    .map(|rest| rest.trim_end_matches('/').to_owned())
            });
            if let Some(base) = found {
                return base;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no 'admin listening on' line; stdout:\n{}\nstderr:\n{}",
                self.stdout.lock().unwrap().join("\n"),
                self.stderr.lock().unwrap().join("\n")
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The absolute URL of a path on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The process id, for sending signals.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the process to exit, up to `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A copy of `src` in a temporary directory whose `base_url` names the port
/// the server will get, so absolute links in feeds and pages lead back to it.
/// Returns the directory and the `--addr` value to start the server with.
pub fn data_with_own_port(src: &Path) -> (tempfile::TempDir, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(src, dir.path());
    let site = std::fs::read_to_string(dir.path().join("site.toml")).expect("site.toml");
    let site = site
        .lines()
        .map(|l| {
            if l.starts_with("base_url") {
                format!("base_url = \"http://127.0.0.1:{port}/\"")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(dir.path().join("site.toml"), site).expect("write site.toml");
    (dir, format!("127.0.0.1:{port}"))
}

/// Copies a directory tree.
pub fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).expect("mkdir");
    for entry in std::fs::read_dir(src).expect("read_dir") {
        let entry = entry.expect("entry");
        let to = dst.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), &to).expect("copy");
        }
    }
}

/// A blocking HTTP client that does not decompress or follow redirects.
pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// What feedparser reported for one file.
#[derive(Debug, serde::Deserialize)]
pub struct Parsed {
    pub file: String,
    pub bozo: i64,
    pub bozo_exception: String,
    pub version: String,
    pub title: Option<String>,
    pub entries: Vec<ParsedEntry>,
}

/// One entry as feedparser saw it.
#[derive(Debug, serde::Deserialize)]
pub struct ParsedEntry {
    pub id: Option<String>,
    pub link: Option<String>,
    pub title: Option<String>,
    pub published: Option<String>,
}

/// Runs Python's feedparser over named documents. Fails loudly (never skips)
/// when python3 or feedparser is missing: `scripts/test` installs them.
pub fn feedparser(docs: &[(String, Vec<u8>)]) -> Vec<Parsed> {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut paths = Vec::new();
    for (i, (_, bytes)) in docs.iter().enumerate() {
        let p = dir.path().join(format!("{i}.xml"));
        std::fs::write(&p, bytes).expect("write");
        paths.push(p);
    }
    let script = root().join("tests/feedparser_check.py");
    let out = Command::new("python3")
        .arg(&script)
        .args(&paths)
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 {}: {e}; run scripts/test, which installs the test dependencies", script.display()));
    assert!(
        out.status.success(),
        "feedparser failed (is it installed? scripts/test installs it)\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed: Vec<Parsed> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON {l:?}: {e}")))
        .collect();
    assert_eq!(parsed.len(), docs.len(), "feedparser output count");
    parsed
}

/// Runs `vestnik` with arguments and returns (exit code, stdout, stderr).
pub fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vestnik"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("run vestnik");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
