//! Live reload against a running server: add, edit, break, fix, move, delete,
//! editors' save patterns, bursts, site.toml edits, and a stress run. Every
//! wait polls with a bounded timeout; no test sleeps for a fixed time to let
//! a change land.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Server, client, root};
use sha2::{Digest as _, Sha256};

/// A fresh copy of the minimal fixture in a temporary directory.
fn data_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = root().join("tests/data/good-min");
    std::fs::copy(src.join("site.toml"), dir.path().join("site.toml")).unwrap();
    std::fs::create_dir_all(dir.path().join("entries/2024")).unwrap();
    std::fs::copy(
        src.join("entries/one.md"),
        dir.path().join("entries/2024/one.md"),
    )
    .unwrap();
    dir
}

fn entry(title: &str, date: &str, section: &str, body: &str) -> String {
    format!(
        "+++\ntitle = \"{title}\"\ndate = \"{date}\"\nsections = [\"{section}\"]\n+++\n\n{body}\n"
    )
}

fn fetch(server: &Server, path: &str) -> String {
    let r = client().get(server.url(path)).send().unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.text().unwrap()
}

/// Polls `path` until `pred` holds; panics with the last body after 10 s.
fn wait_until(server: &Server, path: &str, what: &str, pred: impl Fn(&str) -> bool) -> Duration {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(10);
    loop {
        let body = fetch(server, path);
        if pred(&body) {
            return started.elapsed();
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what} in {path}:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn health(server: &Server) -> serde_json::Value {
    serde_json::from_str(&fetch(server, "/healthz")).unwrap()
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[test]
fn edits_show_up_and_bad_saves_lose_nothing() {
    let dir = data_dir();
    let d = dir.path();
    let server = Server::start(d, &[]);
    let e = |name: &str| d.join("entries").join(name);

    // Add: an echo into a new file appears in its feeds.
    write(
        &e("2024/news.md"),
        &entry("Первая версия", "05.02.2024 10:00", "sport", "Текст."),
    );
    let took = wait_until(&server, "/feeds/sport.rss", "new entry", |b| {
        b.contains("Первая версия")
    });
    assert!(took < Duration::from_secs(1), "edit took {took:?}");
    assert!(fetch(&server, "/feeds/all.atom").contains("Первая версия"));
    let guid = "tag:example.org,2024-02-05:news";
    assert!(fetch(&server, "/feeds/sport.rss").contains(guid));

    // Edit in place.
    write(
        &e("2024/news.md"),
        &entry(
            "Вторая версия",
            "05.02.2024 10:00",
            "sport",
            "Текст второй версии.",
        ),
    );
    wait_until(&server, "/feeds/sport.rss", "edited title", |b| {
        b.contains("Вторая версия") && !b.contains("Первая версия")
    });

    // Break it: the last good version stays, and the problem is reported.
    write(
        &e("2024/news.md"),
        "+++\ntitle = \"Третья версия\ndate = \n",
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while health(&server)["problems"] == 0 {
        assert!(Instant::now() < deadline, "broken save never reported");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(fetch(&server, "/feeds/sport.rss").contains("Вторая версия"));
    // The entry page is rendered again for the new snapshot, from the body
    // the server kept (spooled out of memory), not from the broken file.
    assert!(fetch(&server, "/news/news").contains("Текст второй версии."));
    let (code, stdout, _) = common::run(&["check", d.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        stdout.contains("news.md:1:1: front matter opened with `+++` on line 1 is never closed"),
        "{stdout}"
    );

    // Truncate, then write: the fix is picked up.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(e("2024/news.md"))
        .unwrap();
    drop(f);
    write(
        &e("2024/news.md"),
        &entry("Исправлено", "05.02.2024 10:00", "sport", "Текст."),
    );
    wait_until(&server, "/feeds/sport.rss", "fixed entry", |b| {
        b.contains("Исправлено")
    });
    assert_eq!(health(&server)["problems"], 0);

    // Write to a temporary file, then rename over the entry (how many editors save).
    write(
        &e("2024/.news.md.tmp"),
        &entry(
            "Через переименование",
            "05.02.2024 10:00",
            "sport",
            "Текст.",
        ),
    );
    std::fs::rename(e("2024/.news.md.tmp"), e("2024/news.md")).unwrap();
    wait_until(&server, "/feeds/sport.rss", "renamed-over entry", |b| {
        b.contains("Через переименование")
    });

    // Editor droppings are ignored: vim swap and backup files, dot files.
    write(&e("2024/.news.md.swp"), "binary swap \0 data");
    write(&e("2024/news.md~"), "backup");
    write(&e("2024/4913"), "vim probe file");
    // Move to another folder: same id, so the same guid, exactly once.
    std::fs::create_dir_all(e("2025")).unwrap();
    std::fs::rename(e("2024/news.md"), e("2025/news.md")).unwrap();
    // A marker entry written after the move tells us the move was processed.
    write(
        &e("2025/marker.md"),
        &entry("Маркер", "01.01.2024", "transport", "М."),
    );
    wait_until(&server, "/feeds/all.rss", "marker", |b| {
        b.contains("Маркер")
    });
    let sport = fetch(&server, "/feeds/sport.rss");
    assert_eq!(sport.matches(guid).count(), 1, "{sport}");
    assert_eq!(
        health(&server)["problems"],
        0,
        "editor files were not ignored"
    );

    // Delete: it disappears.
    std::fs::remove_file(e("2025/news.md")).unwrap();
    wait_until(&server, "/feeds/sport.rss", "deletion", |b| {
        !b.contains(guid)
    });

    // A folder removed with everything in it.
    std::fs::remove_dir_all(e("2025")).unwrap();
    wait_until(&server, "/feeds/all.rss", "folder removal", |b| {
        !b.contains("Маркер")
    });
}

#[test]
fn site_toml_edits_apply_and_a_broken_one_keeps_the_previous() {
    let dir = data_dir();
    let d = dir.path();
    let server = Server::start(d, &[]);
    let site = std::fs::read_to_string(d.join("site.toml")).unwrap();

    write(
        &d.join("site.toml"),
        &site.replace("Test fixture", "Новое имя"),
    );
    wait_until(&server, "/feeds/all.rss", "new title", |b| {
        b.contains("<title>Новое имя</title>")
    });

    write(&d.join("site.toml"), &format!("{site}\nbroken = [\n"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while health(&server)["problems"] == 0 {
        assert!(Instant::now() < deadline, "broken site.toml never reported");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(fetch(&server, "/feeds/all.rss").contains("<title>Новое имя</title>"));
    assert_eq!(
        fetch(&server, "/feeds/transport.rss")
            .matches("<item>")
            .count(),
        1
    );

    write(&d.join("site.toml"), &site);
    wait_until(&server, "/feeds/all.rss", "restored title", |b| {
        b.contains("<title>Test fixture</title>")
    });
    assert_eq!(health(&server)["problems"], 0);
}

#[test]
fn a_burst_of_files_is_a_few_reloads_not_hundreds() {
    let dir = data_dir();
    let d = dir.path();
    let server = Server::start(d, &[]);
    let reloads = |s: &Server| {
        s.stderr
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("reloaded"))
            .count()
    };
    let before = reloads(&server);
    std::fs::create_dir_all(d.join("entries/pull")).unwrap();
    for i in 0..300 {
        write(
            &d.join(format!("entries/pull/e{i:03}.md")),
            &entry(&format!("Пакет {i}"), "03.03.2024 12:00", "transport", "Т."),
        );
    }
    wait_until(&server, "/healthz", "300 new entries", |b| {
        b.contains("\"entries\":301")
    });
    let after = reloads(&server);
    assert!(
        after - before <= 10,
        "{} reloads for one burst",
        after - before
    );
}

#[test]
fn no_watch_reloads_only_on_sighup() {
    let dir = data_dir();
    let d = dir.path();
    let server = Server::start(d, &["--no-watch"]);
    write(
        &d.join("entries/late.md"),
        &entry("Поздняя", "06.02.2024", "transport", "Т."),
    );
    // Without a watcher nothing changes by itself; prove it with a reload we trigger.
    assert!(!fetch(&server, "/feeds/all.rss").contains("Поздняя"));
    #[cfg(unix)]
    {
        let ok = std::process::Command::new("kill")
            .args(["-HUP", &server.pid().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        wait_until(&server, "/feeds/all.rss", "SIGHUP reload", |b| {
            b.contains("Поздняя")
        });
    }
}

/// Entry count of a well-formed RSS document, or a description of what is wrong.
fn items(body: &str) -> Result<usize, String> {
    let doc = roxmltree::Document::parse(body).map_err(|e| e.to_string())?;
    Ok(doc.descendants().filter(|n| n.has_tag_name("item")).count())
}

#[test]
fn stress_rewrites_while_clients_fetch() {
    let dir = data_dir();
    let d: PathBuf = dir.path().to_path_buf();
    let server = Arc::new(Server::start(&d, &[]));
    let done = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(std::collections::BTreeSet::new()));

    let clients: Vec<_> = (0..4)
        .map(|k| {
            let (server, done, seen) = (server.clone(), done.clone(), seen.clone());
            std::thread::spawn(move || {
                let http = client();
                let mut etag = String::new();
                let mut fetched = 0;
                while !done.load(Ordering::Relaxed) {
                    let mut req = http.get(server.url("/feeds/all.rss"));
                    if k % 2 == 1 && !etag.is_empty() {
                        req = req.header("if-none-match", etag.clone());
                    }
                    let r = req.send().expect("request failed");
                    let status = r.status().as_u16();
                    assert!(status == 200 || status == 304, "status {status}");
                    if status == 200 {
                        etag = r.headers()["etag"].to_str().unwrap().to_owned();
                        let len: usize = r.headers()["content-length"]
                            .to_str()
                            .unwrap()
                            .parse()
                            .unwrap();
                        let body = r.text().unwrap();
                        assert_eq!(body.len(), len, "incomplete body");
                        let n =
                            items(&body).unwrap_or_else(|e| panic!("malformed XML: {e}\n{body}"));
                        seen.lock().unwrap().insert(n);
                    }
                    fetched += 1;
                }
                fetched
            })
        })
        .collect();

    // 200 rewrites: the extra entry is alternately present (published) and a draft.
    for i in 0..200 {
        let draft = if i % 2 == 0 { "" } else { "draft = true\n" };
        write(
            &d.join("entries/flip.md"),
            &format!(
                "+++\ntitle = \"Флип {i}\"\ndate = \"07.02.2024\"\nsections = [\"sport\"]\n{draft}+++\nТ.\n"
            ),
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    done.store(true, Ordering::Relaxed);
    let total: usize = clients.into_iter().map(|c| c.join().unwrap()).sum();
    assert!(total > 50, "only {total} fetches");
    let counts = seen.lock().unwrap().clone();
    // Every response matches a snapshot: one entry, or one plus the flipping entry.
    assert!(counts.iter().all(|n| *n == 1 || *n == 2), "{counts:?}");
}

/// Every resource a server holds, in every encoding: status, ETag and
/// bytes, for comparing two servers.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn every_resource(server: &Server, site: &vestnik::model::Site) -> Vec<(String, String)> {
    let mut paths = vec![
        "/".to_owned(),
        "/feeds.opml".to_owned(),
        "/feeds.opml?format=atom".to_owned(),
        "/feeds.opml?format=json".to_owned(),
        // Rendered on demand from the snapshot: a later page and a bundle.
        "/feeds/all.rss?limit=3&page=2".to_owned(),
        format!(
            "/feeds/all.atom?sections={},{}",
            site.config.sections[0].slug, site.config.sections[1].slug
        ),
    ];
    let slugs = std::iter::once("all").chain(site.config.sections.iter().map(|s| s.slug.as_str()));
    for slug in slugs {
        for ext in ["rss", "atom", "json", "yandex.rss"] {
            paths.push(format!("/feeds/{slug}.{ext}"));
        }
        if slug != "all" {
            paths.push(format!("/sections/{slug}"));
        }
    }
    for entry in site.entries.iter().take(3) {
        paths.push(format!("/news/{}", entry.id));
    }
    let mut got = Vec::new();
    for path in paths {
        for encoding in ["identity", "gzip", "br"] {
            let r = client()
                .get(server.url(&path))
                .header("accept-encoding", encoding)
                .send()
                .unwrap();
            let head = format!(
                "{} {} {:?} {:?}",
                r.status(),
                encoding,
                r.headers().get("content-encoding"),
                r.headers().get("etag")
            );
            let body = r.bytes().unwrap();
            let digest: String = Sha256::digest(&body)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            got.push((format!("{path} [{encoding}]"), format!("{head} {digest}")));
        }
    }
    got
}

/// The reload path reuses bytes of unchanged feeds, patches section counts
/// and compresses in the background. Once a server has settled after a run
/// of edits, every resource in every encoding must be what a fresh server on
/// the same files serves: the same ETags and the same bytes.
#[test]
fn edits_settle_to_the_bytes_of_a_fresh_start() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    common::copy_dir(&root().join("data"), d);
    let server = Server::start(d, &[]);
    let mut files: Vec<PathBuf> = walk(&d.join("entries"));
    files.sort();
    let stem = |p: &Path| p.file_stem().unwrap().to_string_lossy().into_owned();
    let sections: Vec<String> = vestnik::load_site(d)
        .unwrap()
        .config
        .sections
        .iter()
        .map(|s| s.slug.clone())
        .collect();

    // Delete one.
    let before = health(&server)["entries"].as_u64().unwrap();
    std::fs::remove_file(&files[7]).unwrap();
    wait_until(&server, "/healthz", "deleted entry", |b| {
        b.contains(&format!("\"entries\":{}", before - 1))
    });

    // Add a new newest entry.
    write(
        &d.join("entries/2026/2026-12-01-novaia.md"),
        &entry(
            "Новая запись",
            "01.12.2026 09:30",
            &sections[0],
            "Текст новой записи.",
        ),
    );
    wait_until(&server, "/feeds/all.atom", "added entry", |b| {
        b.contains("Новая запись")
    });

    // Retitle an entry in place.
    let text = std::fs::read_to_string(&files[2]).unwrap();
    let title_line = text.lines().find(|l| l.starts_with("title = ")).unwrap();
    write(
        &files[2],
        &text.replacen(title_line, "title = \"Заголовок после правки\"", 1),
    );
    wait_until(&server, "/feeds/all.rss", "retitled entry", |b| {
        b.contains("Заголовок после правки")
    });

    // In-place edits last: they take the loader's patch path (no full
    // recount), and a later add or delete would hide its mistakes.
    // Move an entry to a section it was not in.
    let text = std::fs::read_to_string(&files[5]).unwrap();
    let sections_line = text.lines().find(|l| l.starts_with("sections = ")).unwrap();
    let to = sections
        .iter()
        .find(|s| !sections_line.contains(&format!("\"{s}\"")))
        .unwrap();
    write(
        &files[5],
        &text.replacen(sections_line, &format!("sections = [\"{to}\"]"), 1),
    );
    let link = format!("/news/{}<", stem(&files[5]));
    wait_until(&server, &format!("/feeds/{to}.rss"), "moved entry", |b| {
        b.contains(&link)
    });

    server.wait_settled();
    let fresh = Server::start(d, &[]);
    let now = vestnik::load_site(d).unwrap();
    let edited = every_resource(&server, &now);
    let started = every_resource(&fresh, &now);
    assert_eq!(edited.len(), started.len());
    let differ: Vec<_> = edited
        .iter()
        .zip(&started)
        .filter(|(a, b)| a != b)
        .map(|(a, b)| format!("{}\n  edited: {}\n  fresh:  {}", a.0, a.1, b.1))
        .collect();
    assert!(
        differ.is_empty(),
        "{} of {} differ:\n{}",
        differ.len(),
        edited.len(),
        differ.join("\n")
    );
    assert_eq!(
        health(&server)["content_hash"],
        health(&fresh)["content_hash"]
    );
}

#[test]
fn data_deleted_while_serving_keeps_the_last_snapshot() {
    let dir = data_dir();
    let server = Server::start(dir.path(), &[]);
    let before = fetch(&server, "/feeds/all.rss");
    assert!(before.contains("<item>"));
    // The whole data directory goes away, as with `rm -rf`.
    std::fs::remove_dir_all(dir.path()).unwrap();
    // For a second, while the watcher reports the removal: every byte stays.
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until {
        assert_eq!(
            fetch(&server, "/feeds/all.rss"),
            before,
            "the feed changed after DATA was removed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        server
            .stderr
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("is gone (deleted or unmounted)")),
        "DATA's loss was not reported"
    );
    assert_eq!(health(&server)["entries"], 1);
    // Nothing panicked meanwhile.
    assert!(
        !server
            .stderr
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("panicked"))
    );
}
