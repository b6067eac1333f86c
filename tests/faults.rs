//! Operating faults (issue 18), each against the real binary: a disk that
//! fills during `vestnik build`, a server out of file descriptors under
//! load, and DATA on a read-only filesystem.
//!
//! Filesystems are made in a private user and mount namespace
//! (`unshare --user --map-root-user --mount`, see
//! [`common::in_mount_namespace`]): its mounts vanish with the process, so
//! a failing test leaves nothing mounted, and it works as root or not.

mod common;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Server, client, sh_quote};

/// Builds are made as of this time, so two builds of the same data agree.
const AT: &str = "2025-01-01T00:00:00Z";

/// Runs `script` with `sh` in a new user and mount namespace, after a tmpfs
/// of `size_kib` KiB is mounted at `mnt`; `vars` are exported to it, with
/// `BIN` (the binary under test) and `AT`. Returns its output.
fn in_tmpfs(
    mnt: &Path,
    size_kib: u64,
    vars: &[(&str, &Path)],
    script: &str,
) -> std::process::Output {
    let setup = format!(
        "set -u\nmount -t tmpfs -o size={size_kib}k tmpfs {} || exit 90\n",
        sh_quote(mnt)
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["--user", "--map-root-user", "--mount", "sh", "-c"])
        .arg(format!("{setup}{script}"))
        .env("MNT", mnt)
        .env("BIN", env!("CARGO_BIN_EXE_vestnik"))
        .env("AT", AT)
        .current_dir(common::root());
    for (name, value) in vars {
        cmd.env(name, value);
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "the script failed ({:?}):\n{script}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Bytes a tree takes on a tmpfs: whole pages per file.
fn pages_used(tree: &std::collections::BTreeMap<String, String>) -> u64 {
    tree.values()
        .filter_map(|v| v.split(' ').next()?.parse::<u64>().ok())
        .map(|size| size.div_ceil(4096) * 4096)
        .sum()
}

/// Lists OUT (every path with its type, size, link count, inode and mtime,
/// then every file's SHA-256) into the file `$1`: the same list before and
/// after means nothing in OUT was written, replaced, touched or linked.
const SNAPSHOT: &str = r#"
snap() {
    (cd "$MNT/site" && find . -printf '%y %p %s %n %i %T@\n' | LC_ALL=C sort &&
        find . -type f -exec sha256sum {} + | LC_ALL=C sort -k2) > "$1"
}
"#;

#[test]
fn a_full_disk_fails_the_build_and_leaves_the_previous_one_as_it_was() {
    common::require_mount_namespace();
    let dir = tempfile::tempdir().unwrap();
    let (small, big) = (dir.path().join("small"), dir.path().join("big"));
    common::write_site(&small, 0, 6, 800);
    common::write_site(&big, 0, 6, 800);
    common::write_site(&big, 6, 160, 4000);
    // Room for the small site's build and a little more, not for the big one.
    let probe = dir.path().join("probe");
    let (code, _, err) = common::run(&[
        "build",
        "--at",
        AT,
        small.to_str().unwrap(),
        probe.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let size_kib = pages_used(&common::tree(&probe)) / 1024 * 5 / 4 + 256;
    let (logs, mnt) = (dir.path().join("logs"), dir.path().join("mnt"));
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::create_dir_all(&mnt).unwrap();
    let script = format!(
        "{SNAPSHOT}
build() {{ \"$BIN\" build --at \"$AT\" \"$1\" \"$MNT/site\" > \"$LOGS/$2.log\" 2>&1; echo $? > \"$LOGS/$2.code\"; }}
build \"$SMALL\" first
snap \"$LOGS/before.txt\"
df -k \"$MNT\" > \"$LOGS/df.txt\"
build \"$BIG\" second
snap \"$LOGS/after.txt\"
ls -A \"$MNT\" > \"$LOGS/beside.txt\"
build \"$SMALL\" third
"
    );
    in_tmpfs(
        &mnt,
        size_kib,
        &[("SMALL", &small), ("BIG", &big), ("LOGS", &logs)],
        &script,
    );
    let first = read(&logs.join("first.log"));
    assert_eq!(read(&logs.join("first.code")).trim(), "0", "{first}");
    let second = read(&logs.join("second.log"));
    eprintln!(
        "tmpfs of {size_kib} KiB:\n{}\nthe second build said:\n{second}",
        read(&logs.join("df.txt"))
    );
    assert_eq!(read(&logs.join("second.code")).trim(), "2", "{second}");
    let before = read(&logs.join("before.txt"));
    assert!(before.contains("feeds/all.rss"), "{before}");
    assert_eq!(read(&logs.join("after.txt")), before, "OUT changed");
    assert_eq!(read(&logs.join("beside.txt")), "site\n", "left beside OUT");
    // The message names the filesystem, where it is mounted, and what to do.
    let mount = format!("tmpfs mounted at {}", mnt.display());
    for needle in [
        "no space left on the filesystem holding",
        &mount,
        "free of",
        "it was left as it was",
        "free some space there",
    ] {
        assert!(second.contains(needle), "no `{needle}` in:\n{second}");
    }
    // And nothing is in the way of the next build that fits.
    let third = read(&logs.join("third.log"));
    assert_eq!(read(&logs.join("third.code")).trim(), "0", "{third}");
}

#[test]
fn a_full_disk_on_a_first_build_leaves_nothing_behind() {
    common::require_mount_namespace();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    common::write_site(&data, 0, 120, 4000);
    let (logs, mnt) = (dir.path().join("logs"), dir.path().join("mnt"));
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::create_dir_all(&mnt).unwrap();
    in_tmpfs(
        &mnt,
        256,
        &[("DATA", &data), ("LOGS", &logs)],
        "\"$BIN\" build --at \"$AT\" \"$DATA\" \"$MNT/site\" > \"$LOGS/build.log\" 2>&1; echo $? > \"$LOGS/build.code\"
ls -A \"$MNT\" > \"$LOGS/left.txt\"
",
    );
    let said = read(&logs.join("build.log"));
    assert_eq!(read(&logs.join("build.code")).trim(), "2", "{said}");
    assert!(
        said.contains("no space left on the filesystem holding"),
        "{said}"
    );
    assert!(
        said.contains(&format!("tmpfs mounted at {}", mnt.display())),
        "{said}"
    );
    assert_eq!(
        read(&logs.join("left.txt")),
        "",
        "a failed first build left files"
    );
}

/// One keep-alive HTTP/1.1 connection, read by hand (no pool, no reconnect:
/// the point is that this very connection keeps being answered).
struct Connection(BufReader<TcpStream>);

impl Connection {
    fn open(base: &str) -> Connection {
        let stream = TcpStream::connect(base.trim_start_matches("http://")).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        Connection(BufReader::new(stream))
    }

    /// GET `path`: (status, body).
    fn get(&mut self, path: &str) -> (u16, Vec<u8>) {
        write!(self.0.get_mut(), "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut status_line = String::new();
        self.0.read_line(&mut status_line).unwrap();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut length = 0;
        loop {
            let mut line = String::new();
            self.0.read_line(&mut line).unwrap();
            if line.trim().is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap();
                }
            }
        }
        let mut body = vec![0; length];
        self.0.read_exact(&mut body).unwrap();
        (status, body)
    }
}

/// CPU seconds a process has used (user + system).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces), from field 3.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0 // USER_HZ
}

fn accept_reports(server: &Server) -> Vec<String> {
    server
        .stderr
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("accept failed"))
        .cloned()
        .collect()
}

#[test]
fn out_of_file_descriptors_the_server_keeps_serving_logs_once_a_second_and_recovers() {
    assert!(
        Command::new("prlimit").arg("--version").output().is_ok(),
        "this test needs prlimit (Debian package util-linux)"
    );
    let dir = tempfile::tempdir().unwrap();
    common::write_site(dir.path(), 0, 8, 1000);
    // 64 descriptors in all; idle connections are kept for the whole test.
    let server = Server::start_via(
        &["prlimit", "--nofile=64:64", "--"],
        dir.path(),
        &["--header-timeout", "60"],
    );
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.pid())).unwrap();
    assert!(
        limits
            .lines()
            .any(|l| l.starts_with("Max open files") && l.contains(" 64 ")),
        "the limit did not apply:\n{limits}"
    );
    let feed = client()
        .get(server.url("/feeds/all.rss"))
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    let mut kept = Connection::open(&server.base);
    assert_eq!(kept.get("/feeds/all.rss"), (200, feed.to_vec()));

    // 150 connections, each with a request: more than twice the descriptors,
    // and fewer than the descriptors and the listen backlog (128) hold, so
    // every connect completes.
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut flood: Vec<TcpStream> = (0..150)
        .map(|i| {
            let s = TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2))
                .unwrap_or_else(|e| panic!("connection {i}: {e}"));
            let _ = write!(&s, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
            s
        })
        .collect();

    // Measured: reports of failed accepts, CPU, and the kept connection.
    std::thread::sleep(Duration::from_millis(300));
    let (started, cpu_before) = (Instant::now(), cpu_seconds(server.pid()));
    let reports_before = accept_reports(&server).len();
    let mut answered_kept = 0;
    while started.elapsed() < Duration::from_secs(4) {
        assert_eq!(
            kept.get("/feeds/all.rss"),
            (200, feed.to_vec()),
            "the kept connection"
        );
        assert_eq!(kept.get("/healthz").0, 200);
        answered_kept += 2;
        std::thread::sleep(Duration::from_millis(100));
    }
    let seconds = started.elapsed().as_secs_f64();
    let reports = accept_reports(&server);
    let during = reports.len() - reports_before;
    let cpu = (cpu_seconds(server.pid()) - cpu_before) / seconds;
    // How many of the flood got their answer (the others wait in the backlog).
    let answered_flood = flood
        .iter_mut()
        .filter(|s| {
            s.set_nonblocking(true).unwrap();
            let mut buf = [0; 12];
            matches!(s.peek(&mut buf), Ok(12)) && &buf == b"HTTP/1.1 200"
        })
        .count();
    eprintln!(
        "out of descriptors: {during} report(s) in {seconds:.1} s, CPU {:.0} %, {answered_flood} of 150 flood connections answered, {answered_kept} requests on the kept one; reports:\n{}",
        cpu * 100.0,
        reports.join("\n")
    );
    // Copied out first: a panic while the lock is held would poison it.
    let log = server.stderr.lock().unwrap().join("\n");
    assert!(
        reports
            .iter()
            .any(|l| l.contains("Too many open files") && l.contains("LimitNOFILE")),
        "no report of running out of descriptors:\n{log}"
    );
    assert!(
        (1..=seconds.ceil() as usize + 1).contains(&during),
        "{during} reports in {seconds:.1} s (want about one a second)"
    );
    assert!(answered_flood > 0, "no flood connection was served");
    assert!(
        cpu < 0.5,
        "the server used {:.0} % CPU waiting for descriptors",
        cpu * 100.0
    );

    // The connections close: the server accepts again and answers as before.
    drop(flood);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let fresh = client().get(server.url("/feeds/all.rss")).send();
        if let Ok(r) = fresh {
            assert_eq!(r.status(), 200);
            assert_eq!(r.bytes().unwrap(), feed);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no answer 15 s after the connections closed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while !server
        .stderr
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("accepting connections again"))
    {
        assert!(
            Instant::now() < deadline,
            "no report that accepting works again"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(kept.get("/healthz").0, 200);
}

#[test]
fn data_on_a_read_only_filesystem_is_checked_served_and_built() {
    common::require_mount_namespace();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    common::write_site(&data, 0, 12, 1500);
    // A media file and an enclosure naming it: measured at load, copied by build.
    std::fs::write(data.join("media/clip.mp3"), vec![7u8; 5000]).unwrap();
    let entry = data.join("entries/e0011.md");
    let text = std::fs::read_to_string(&entry).unwrap();
    std::fs::write(
        &entry,
        text.replacen("+++\n\n", "[[enclosures]]\nurl = \"clip.mp3\"\n+++\n\n", 1),
    )
    .unwrap();
    let ro = dir.path().join("ro");
    std::fs::create_dir_all(&ro).unwrap();
    // DATA bind-mounted read-only at `ro`, refused if a write gets through.
    let wrapper = common::in_mount_namespace(&format!(
        "mount --bind {data} {ro} && mount -o remount,bind,ro {ro} && if touch {ro}/probe 2>/dev/null; then echo 'the mount is writable' >&2; exit 97; fi",
        data = sh_quote(&data),
        ro = sh_quote(&ro)
    ));
    let wrapper = common::words(&wrapper);
    let (data_s, ro_s) = (data.to_str().unwrap(), ro.to_str().unwrap());

    // check: exit 0, the same output.
    let (code, out, err) = common::run(&["check", data_s]);
    assert_eq!(code, 0, "{out}{err}");
    let (ro_code, ro_out, ro_err) = common::run_via(&wrapper, &["check", ro_s]);
    assert_eq!(ro_code, 0, "{ro_out}{ro_err}");
    assert_eq!(
        (ro_out.replace(ro_s, data_s), ro_err.replace(ro_s, data_s)),
        (out, err)
    );

    // serve: the same bytes, and no warning or error.
    let writable = Server::start(&data, &[]);
    let read_only = Server::start_via(&wrapper, &ro, &[]);
    for path in [
        "/feeds/all.rss",
        "/feeds/all.json",
        "/",
        "/news/e0011",
        "/media/clip.mp3",
    ] {
        let a = client().get(writable.url(path)).send().unwrap();
        let b = client().get(read_only.url(path)).send().unwrap();
        assert_eq!(
            (a.status().as_u16(), b.status().as_u16()),
            (200, 200),
            "{path}"
        );
        assert!(a.bytes().unwrap() == b.bytes().unwrap(), "{path} differs");
    }
    let logs = read_only.stderr.lock().unwrap().join("\n");
    for bad in [" WARN ", " ERROR ", "Read-only", "os error 30"] {
        assert!(
            !logs.contains(bad),
            "`{bad}` in the read-only server's log:\n{logs}"
        );
    }

    // build with OUT elsewhere: the same files as from the writable copy.
    let (out_rw, out_ro) = (dir.path().join("out-rw"), dir.path().join("out-ro"));
    let (code, _, err) = common::run(&["build", "--at", AT, data_s, out_rw.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = common::run_via(
        &wrapper,
        &["build", "--at", AT, ro_s, out_ro.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");
    // The manifest records each file's inode and mtime, which differ
    // between two folders; every file of the site must be the same.
    let site = |out: &Path| {
        let mut tree = common::tree(out);
        tree.remove(vestnik::out_dir::MANIFEST);
        tree
    };
    let built = site(&out_ro);
    assert!(built.contains_key("media/clip.mp3"), "{built:?}");
    assert_eq!(built, site(&out_rw));
    // Nothing was written into DATA by any of it.
    assert!(!data.join("probe").exists());
}
