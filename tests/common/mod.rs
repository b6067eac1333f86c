//! Shared helpers for integration tests: a real server process, an HTTP
//! client, and Python's feedparser.
#![allow(dead_code)]

use std::collections::BTreeMap;
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
        Server::start_via(&[], data, extra)
    }

    /// Like [`Server::start`], through a wrapper that ends by running the
    /// binary with the arguments it is given, in the same process (so
    /// [`Server::pid`] is the server's): `prlimit --nofile=64:64 --`, or
    /// [`in_mount_namespace`].
    pub fn start_via(wrapper: &[&str], data: &Path, extra: &[&str]) -> Server {
        let mut cmd = command_via(wrapper);
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

/// The binary under test as a command, through `wrapper` when it is not
/// empty (its last word is followed by the binary's path).
pub fn command_via(wrapper: &[&str]) -> Command {
    let bin = env!("CARGO_BIN_EXE_vestnik");
    match wrapper.split_first() {
        None => Command::new(bin),
        Some((program, args)) => {
            let mut cmd = Command::new(program);
            cmd.args(args).arg(bin);
            cmd
        }
    }
}

/// Runs `vestnik` with arguments through `wrapper` (see [`command_via`]),
/// from the project root, and returns (exit code, stdout, stderr).
pub fn run_via(wrapper: &[&str], args: &[&str]) -> (i32, String, String) {
    let mut cmd = command_via(wrapper);
    cmd.args(args).current_dir(root());
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A wrapper for [`Server::start_via`] and [`run_via`]: runs the shell
/// commands `setup` as root of a new user and mount namespace
/// (`unshare --user --map-root-user --mount`), then the binary. Mounts made
/// there are seen by that process alone and vanish with it, so nothing is
/// left to unmount, and it works as root and as a user alike.
pub fn in_mount_namespace(setup: &str) -> Vec<String> {
    vec![
        "unshare".into(),
        "--user".into(),
        "--map-root-user".into(),
        "--mount".into(),
        "sh".into(),
        "-c".into(),
        format!("{setup} && exec \"$0\" \"$@\""),
    ]
}

/// The words of a wrapper as `&str`s.
pub fn words(wrapper: &[String]) -> Vec<&str> {
    wrapper.iter().map(String::as_str).collect()
}

/// `s` quoted for `sh`.
pub fn sh_quote(s: impl AsRef<std::ffi::OsStr>) -> String {
    format!("'{}'", s.as_ref().to_string_lossy().replace('\'', "'\\''"))
}

/// Fails the test with a clear message unless a mount namespace can be made
/// and a tmpfs mounted in it: the fault tests need both. Never skips.
pub fn require_mount_namespace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "sh", "-c"])
        .arg(format!(
            "mount -t tmpfs -o size=64k tmpfs {}",
            sh_quote(dir.path())
        ))
        .output();
    match out {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "this test needs `unshare --user --map-root-user --mount` and a tmpfs mount in it (util-linux; user namespaces enabled: sysctl kernel.unprivileged_userns_clone=1, user.max_user_namespaces > 0); it failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!("this test needs `unshare` (Debian package util-linux): {e}"),
    }
}

/// Every file and folder under `dir`, by `/`-separated relative path: a
/// file as its size and SHA-256, a folder as `dir`, a symlink as its target.
pub fn tree(dir: &Path) -> BTreeMap<String, String> {
    use sha2::Digest as _;
    let mut found = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).expect("read_dir") {
            let entry = entry.expect("entry");
            let path = entry.path();
            let rel = path
                .strip_prefix(dir)
                .expect("under dir")
                .to_string_lossy()
                .into_owned();
            let kind = entry.file_type().expect("type");
            let what = if kind.is_dir() {
                stack.push(path);
                "dir".to_owned()
            } else if kind.is_symlink() {
                format!(
                    "-> {}",
                    std::fs::read_link(&path).expect("readlink").display()
                )
            } else {
                let bytes = std::fs::read(&path).expect("read");
                let hash = sha2::Sha256::digest(&bytes);
                let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
                format!("{} {hex}", bytes.len())
            };
            found.insert(rel, what);
        }
    }
    found
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Writes a site into `data`: `site.toml` (sections `news` and `city`,
/// base_url `http://127.0.0.1/`) and entries `e0000.md`… numbered `from..to`,
/// each with about `body_bytes` of varied text.
pub fn write_site(data: &Path, from: usize, to: usize, body_bytes: usize) {
    std::fs::create_dir_all(data.join("entries")).expect("mkdir entries");
    std::fs::create_dir_all(data.join("media")).expect("mkdir media");
    std::fs::write(
        data.join("site.toml"),
        "title = \"Faults\"\nbase_url = \"http://127.0.0.1/\"\ntimezone = \"UTC\"\n\
         [[sections]]\nslug = \"news\"\ntitle = \"News\"\n\
         [[sections]]\nslug = \"city\"\ntitle = \"City\"\n",
    )
    .expect("write site.toml");
    const WORDS: &[&str] = &[
        "город",
        "совет",
        "бюджет",
        "дорога",
        "школа",
        "трамвай",
        "парк",
        "мост",
        "council",
        "budget",
        "river",
        "bridge",
        "library",
        "market",
        "winter",
        "port",
    ];
    for i in from..to {
        // A small linear congruential generator: varied, repeatable text.
        let mut x = (i as u64 + 1).wrapping_mul(6364136223846793005);
        let mut body = String::with_capacity(body_bytes + 16);
        while body.len() < body_bytes {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            body.push_str(WORDS[(x >> 33) as usize % WORDS.len()]);
            body.push_str(if (x >> 20) % 12 == 0 { ".\n\n" } else { " " });
        }
        let section = if i % 2 == 0 { "news" } else { "city" };
        std::fs::write(
            data.join(format!("entries/e{i:04}.md")),
            format!(
                "+++\ntitle = \"Entry {i}\"\ndate = \"2024-01-{:02}T{:02}:{:02}:00Z\"\nsections = [\"{section}\"]\n+++\n\n{body}\n",
                1 + i / 1440 % 28,
                i / 60 % 24,
                i % 60
            ),
        )
        .expect("write entry");
    }
}
