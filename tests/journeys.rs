//! Journey tests: the commands README.md gives a user, run exactly as
//! written, in a temporary copy of the project root, with relative paths.
//!
//! Other tests start the binary on absolute temporary paths, which is how a
//! relative `serve data` once served feeds that never followed an edit. Here
//! the working directory is the copy's root, DATA is `data` (or `data/`,
//! `./data`, `../copy/data`, a symlink, `.`), and what is checked is what a
//! user would see: the served feed, the exit code, the files left behind.
//!
//! `every_readme_command_has_a_journey` reads the shell blocks of README.md,
//! so a command added there without a journey here fails the suite.
//! `cargo run --release -- ARGS` runs the binary under test with ARGS: cargo
//! only builds it. `target/release/vestnik` in a command is that binary,
//! placed at that path in the copy.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{client, root};
use sha2::{Digest as _, Sha256};

/// The README commands and the journey that runs each, by test name.
const JOURNEYS: &[(&str, &str)] = &[
    (
        "cargo run --release -- serve data",
        "serve_data_follows_every_kind_of_edit",
    ),
    ("scripts/test", "ci_runs_the_readme_test_command"),
    (
        "target/release/vestnik check data",
        "check_data_reports_relative_paths",
    ),
    (
        "target/release/vestnik build data site",
        "build_data_site_then_again_writes_only_changes",
    ),
    (
        "target/release/vestnik import --dry-run tests/data/import/two-sections.txt",
        "import_dry_run_names_the_file_it_would_write",
    ),
    (
        "target/release/vestnik serve data --base-url https://news.example.org/",
        "serve_with_base_url_links_to_the_public_address",
    ),
    (
        "target/release/vestnik new --section gorodskoi-passazhirskii-transport --source \"Информационное агентство URA.RU\" \"Новые трамваи в Омске\"",
        "new_writes_an_entry_that_is_published",
    ),
];

/// Splits a command line as a POSIX shell would for the commands README.md
/// shows: words separated by spaces, double quotes grouping.
fn words(command: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let (mut quoted, mut any) = (false, false);
    for c in command.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any {
                    words.push(std::mem::take(&mut word));
                    any = false;
                }
            }
            c => {
                word.push(c);
                any = true;
            }
        }
    }
    assert!(!quoted, "unbalanced quotes in `{command}`");
    if any {
        words.push(word);
    }
    words
}

/// The commands in README.md's `sh` blocks, comments removed.
fn readme_commands() -> Vec<String> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let mut commands = Vec::new();
    let mut in_sh = false;
    for line in readme.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") {
            in_sh = !in_sh && trimmed == "```sh";
            continue;
        }
        if in_sh {
            let command = trimmed.split(" #").next().unwrap_or("").trim();
            if !command.is_empty() && !command.starts_with('#') {
                commands.push(command.to_owned());
            }
        }
    }
    commands
}

#[test]
fn every_readme_command_has_a_journey() {
    let commands = readme_commands();
    assert!(
        commands.len() >= 2,
        "README.md shows no commands: {commands:?}"
    );
    let known: BTreeMap<&str, &str> = JOURNEYS.iter().copied().collect();
    for command in &commands {
        assert!(
            known.contains_key(command.as_str()),
            "README.md shows `{command}`, which no journey test runs; add it to JOURNEYS in {}",
            file!()
        );
    }
    for (command, _) in JOURNEYS {
        assert!(
            commands.iter().any(|c| c == command),
            "JOURNEYS runs `{command}`, which README.md no longer shows"
        );
    }
    // The first two are the quick start: run the service, run every test.
    assert_eq!(commands[0], "cargo run --release -- serve data");
    assert_eq!(commands[1], "scripts/test");
}

#[test]
fn ci_runs_the_readme_test_command() {
    // `scripts/test` is what runs this very test, so it is not run again
    // here; what is checked is that CI runs exactly it.
    let ci = std::fs::read_to_string(root().join(".ci/run")).unwrap();
    let runs: Vec<&str> = ci
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(
        runs.contains(&"exec scripts/test"),
        ".ci/run does not run scripts/test:\n{ci}"
    );
    let script = std::fs::read_to_string(root().join("scripts/test")).unwrap();
    assert!(
        script.contains("cargo test --locked --all-targets"),
        "scripts/test does not run every test target"
    );
    // Python packages go into a virtual environment, not the system Python.
    assert!(script.contains("-m venv"), "scripts/test makes no venv");
    assert!(!script.contains("python3 -m pip install"));
}

/// A temporary copy of the project root (without `target/` and `.git/`),
/// with the binary under test at `target/release/vestnik`.
struct Project {
    /// Holds the copy, at `parent/vestnik`.
    parent: tempfile::TempDir,
}

impl Project {
    fn new() -> Project {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("vestnik");
        copy_tree(&root(), &dir);
        let bin = dir.join("target/release/vestnik");
        std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
        std::fs::copy(env!("CARGO_BIN_EXE_vestnik"), &bin).unwrap();
        Project { parent }
    }

    fn dir(&self) -> PathBuf {
        self.parent.path().join("vestnik")
    }

    fn data(&self) -> PathBuf {
        self.dir().join("data")
    }

    /// Runs a README command as written, in `cwd` (relative to the copy's
    /// root), and waits for it.
    fn run_in(&self, cwd: &str, command: &str) -> Output {
        let out = self
            .command(cwd, command)
            .output()
            .unwrap_or_else(|e| panic!("cannot run `{command}`: {e}"));
        eprintln!(
            "$ (cd {cwd} && {command})  # exit {:?}\n{}{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn run(&self, command: &str) -> Output {
        self.run_in(".", command)
    }

    fn command(&self, cwd: &str, command: &str) -> Command {
        let words = words(command);
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        let (program, args): (PathBuf, &[&str]) = match words.as_slice() {
            ["cargo", "run", "--release", "--", args @ ..] => {
                (self.dir().join("target/release/vestnik"), args)
            }
            [program, args @ ..] if program.contains('/') => {
                (self.dir().join(cwd).join(program), args)
            }
            _ => panic!("no way to run `{command}` as written"),
        };
        let mut cmd = Command::new(program);
        cmd.args(args)
            .current_dir(self.dir().join(cwd))
            .env("RUST_LOG", "info")
            // The default address, 127.0.0.1:8080, may be taken: the port
            // comes from the environment, the command stays as written.
            .env("VESTNIK_ADDR", "127.0.0.1:0")
            .env_remove("VESTNIK_BASE_URL");
        cmd
    }

    /// Starts a README `serve` command as written, in `cwd`.
    fn serve_in(&self, cwd: &str, command: &str) -> Served {
        let mut cmd = self.command(cwd, command);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let described = format!("(cd {cwd} && {command})");
        Served::spawn(cmd, described)
    }
}

fn copy_tree(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "target" || name == ".git" {
            continue;
        }
        let (from, to) = (entry.path(), dst.join(&name));
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            copy_tree(&from, &to);
        } else if kind.is_file() {
            std::fs::copy(&from, &to).unwrap();
        }
    }
}

/// A running `serve`, killed on drop.
struct Served {
    child: std::process::Child,
    base: String,
    described: String,
    stderr: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Served {
    fn spawn(mut cmd: Command, described: String) -> Served {
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {described}: {e}"));
        let stderr = common::collect_lines(child.stderr.take().unwrap());
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead as _;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(rest) = line.strip_prefix("listening on ") {
                    let _ = tx.send(rest.trim_end_matches('/').to_owned());
                }
            }
        });
        let Ok(base) = rx.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            panic!(
                "{described} did not start:\n{}",
                stderr.lock().unwrap().join("\n")
            );
        };
        Served {
            child,
            base,
            described,
            stderr,
        }
    }

    fn get(&self, path: &str) -> (u16, String) {
        let r = client()
            .get(format!("{}{path}", self.base))
            .send()
            .unwrap_or_else(|e| panic!("GET {path} from {}: {e}", self.described));
        (r.status().as_u16(), r.text().unwrap())
    }

    /// Polls `path` until `pred` holds, for at most 1 s after the change:
    /// the promise README.md makes about live editing.
    fn within_a_second(&self, what: &str, path: &str, pred: impl Fn(&str) -> bool) {
        let started = Instant::now();
        loop {
            let (status, body) = self.get(path);
            if status == 200 && pred(&body) {
                eprintln!("{what}: visible after {:?}", started.elapsed());
                return;
            }
            if started.elapsed() > Duration::from_secs(1) {
                panic!(
                    "{what}: not visible in {path} within 1 s of the change, serving {}\n\
                     status {status}, body:\n{}\n--- server log:\n{}",
                    self.described,
                    &body[..body.len().min(2000)],
                    self.stderr.lock().unwrap().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn health(&self) -> serde_json::Value {
        serde_json::from_str(&self.get("/healthz").1).unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const SEED: &str =
    "entries/2022/2022-08-22-ano-dialog-u-vsekh-gorodov-i-raionov-rossii-poiavilis.md";

/// Replaces the first `title = "…"` line of an entry file.
fn retitle(text: &str, title: &str) -> String {
    let mut out = String::new();
    let mut done = false;
    for line in text.lines() {
        if !done && line.starts_with("title = ") {
            out.push_str(&format!("title = \"{title}\"\n"));
            done = true;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    assert!(done, "no title line in:\n{text}");
    out
}

fn new_entry(title: &str, extra: &str) -> String {
    format!(
        "+++\ntitle = \"{title}\"\ndate = \"01.12.2026 10:00\"\n\
         sections = [\"gorodskoi-passazhirskii-transport\"]\n{extra}\
         [source]\nname = \"Информационное агентство URA.RU\"\n+++\n\nТекст новости.\n"
    )
}

#[test]
fn serve_data_follows_every_kind_of_edit() {
    let project = Project::new();
    let data = project.data();
    let served = project.serve_in(".", "cargo run --release -- serve data");
    let feed = "/feeds/all.rss";
    let seed = data.join(SEED);
    let original = std::fs::read_to_string(&seed).unwrap();

    // In place, as most editors save.
    std::fs::write(&seed, retitle(&original, "Правка на месте")).unwrap();
    served.within_a_second("an edit in place", feed, |b| {
        b.contains("<title>Правка на месте</title>")
    });

    // A temporary file renamed over the entry, as vim and VS Code save.
    let tmp = data.join("entries/2022/.seed.md.tmp");
    std::fs::write(&tmp, retitle(&original, "Правка через rename")).unwrap();
    std::fs::rename(&tmp, &seed).unwrap();
    served.within_a_second("a temp file renamed over the entry", feed, |b| {
        b.contains("<title>Правка через rename</title>") && !b.contains("Правка на месте")
    });

    // A new entry, in a new folder.
    let added = data.join("entries/2026/12/novaia.md");
    std::fs::create_dir_all(added.parent().unwrap()).unwrap();
    std::fs::write(&added, new_entry("Новая запись", "")).unwrap();
    served.within_a_second("an added entry", feed, |b| {
        b.contains("<title>Новая запись</title>")
    });

    // Broken: the last good version stays, and the problem is counted.
    let problems = served.health()["problems"].as_u64().unwrap();
    std::fs::write(&added, "+++\ntitle = \"Новая запись\"\n").unwrap();
    served.within_a_second("a broken entry reported", "/healthz", |b| {
        serde_json::from_str::<serde_json::Value>(b).unwrap()["problems"]
            .as_u64()
            .unwrap()
            > problems
    });
    assert!(served.get(feed).1.contains("<title>Новая запись</title>"));
    // Fixed.
    std::fs::write(&added, new_entry("Исправленная запись", "")).unwrap();
    served.within_a_second("a fixed entry", feed, |b| {
        b.contains("<title>Исправленная запись</title>") && !b.contains("Новая запись")
    });
    served.within_a_second("the problem gone", "/healthz", |b| {
        serde_json::from_str::<serde_json::Value>(b).unwrap()["problems"]
            .as_u64()
            .unwrap()
            == problems
    });

    // Deleted.
    std::fs::remove_file(&added).unwrap();
    served.within_a_second("a deleted entry", feed, |b| {
        !b.contains("Исправленная запись")
    });

    // site.toml.
    let site = data.join("site.toml");
    let config = std::fs::read_to_string(&site).unwrap();
    std::fs::write(
        &site,
        config.replacen(
            "title = \"Ассоциация сибирских и дальневосточных городов\"",
            "title = \"Вестник АСДГ\"",
            1,
        ),
    )
    .unwrap();
    served.within_a_second("a site.toml edit", feed, |b| {
        b.contains("<title>Вестник АСДГ</title>")
    });

    // A media file: created with its folder, named by an entry, then changed.
    std::fs::create_dir_all(data.join("media/docs")).unwrap();
    std::fs::write(data.join("media/docs/plan.pdf"), vec![b'%'; 1000]).unwrap();
    std::fs::write(
        data.join("entries/2026/plan.md"),
        new_entry("План", "[[enclosures]]\nurl = \"docs/plan.pdf\"\n"),
    )
    .unwrap();
    served.within_a_second("an entry with a media file", feed, |b| {
        b.contains("media/docs/plan.pdf\" length=\"1000\"")
    });
    std::fs::write(data.join("media/docs/plan.pdf"), vec![b'%'; 2345]).unwrap();
    served.within_a_second("a changed media file", feed, |b| {
        b.contains("media/docs/plan.pdf\" length=\"2345\"")
    });
    assert_eq!(served.get("/media/docs/plan.pdf").1.len(), 2345);
}

#[test]
fn serve_follows_edits_with_data_given_any_way() {
    let project = Project::new();
    std::os::unix::fs::symlink("data", project.dir().join("linked")).unwrap();
    let dir = project.dir();
    let absolute = dir.join("data").display().to_string();
    let forms = [
        (".", "target/release/vestnik serve data/".to_owned()),
        (".", "target/release/vestnik serve ./data".to_owned()),
        (".", "target/release/vestnik serve linked".to_owned()),
        (
            ".",
            "target/release/vestnik serve ../vestnik/data".to_owned(),
        ),
        (".", format!("target/release/vestnik serve {absolute}")),
        ("data", "../target/release/vestnik serve .".to_owned()),
        (
            "data/entries",
            "../../target/release/vestnik serve ..".to_owned(),
        ),
    ];
    let seed = project.data().join(SEED);
    let original = std::fs::read_to_string(&seed).unwrap();
    for (i, (cwd, command)) in forms.iter().enumerate() {
        let served = project.serve_in(cwd, command);
        let title = format!("Правка {i}");
        std::fs::write(&seed, retitle(&original, &title)).unwrap();
        served.within_a_second(command, "/feeds/all.rss", |b| {
            b.contains(&format!("<title>{title}</title>"))
        });
        let site = project.data().join("site.toml");
        let config = std::fs::read_to_string(&site).unwrap();
        let old = config
            .lines()
            .find(|l| l.starts_with("title = "))
            .unwrap()
            .to_owned();
        let site_title = format!("Вестник {i}");
        std::fs::write(
            &site,
            config.replacen(&old, &format!("title = \"{site_title}\""), 1),
        )
        .unwrap();
        served.within_a_second(&format!("{command}: site.toml"), "/feeds/all.rss", |b| {
            b.contains(&format!("<title>{site_title}</title>"))
        });
        // A media file named by an entry, then changed.
        let media = project.data().join("media");
        std::fs::create_dir_all(&media).unwrap();
        std::fs::write(media.join("f.pdf"), vec![b'%'; 100 + i]).unwrap();
        if i == 0 {
            std::fs::write(
                project.data().join("entries/f.md"),
                new_entry("Файл", "[[enclosures]]\nurl = \"f.pdf\"\n"),
            )
            .unwrap();
        }
        served.within_a_second(&format!("{command}: media"), "/feeds/all.rss", |b| {
            b.contains(&format!("media/f.pdf\" length=\"{}\"", 100 + i))
        });
    }
}

#[test]
fn serve_data_shows_dates_as_the_editor_wrote_them() {
    // The site's zone is Asia/Novosibirsk (UTC+7); this entry was written in
    // Vladivostok (UTC+10), where its midnight is the previous day in
    // Novosibirsk. Every page shows the editor's date, as the feeds do.
    let project = Project::new();
    std::fs::write(
        project.data().join("entries/2024/vladivostok.md"),
        "+++\ntitle = \"Новость из Владивостока\"\ndate = \"28.11.2024\"\nupdated = \"02.12.2024\"\n\
         timezone = \"Asia/Vladivostok\"\nsections = [\"gorodskoi-passazhirskii-transport\"]\n+++\n\nТекст.\n",
    )
    .unwrap();
    let served = project.serve_in(".", "cargo run --release -- serve data");
    for path in [
        "/news/vladivostok",
        "/sections/gorodskoi-passazhirskii-transport",
        "/",
    ] {
        let (status, page) = served.get(path);
        assert_eq!(status, 200, "{path}");
        assert!(page.contains("28 ноября 2024"), "{path}: {page}");
        assert!(!page.contains("27 ноября 2024"), "{path}");
    }
    let (_, news) = served.get("/news/vladivostok");
    assert!(
        news.contains(
            "обновлено <time datetime=\"2024-12-02T00:00:00+10:00\">2 декабря 2024</time>"
        ),
        "{news}"
    );
    let (_, atom) = served.get("/feeds/all.atom");
    assert!(
        atom.contains("<published>2024-11-28T00:00:00+10:00</published>"),
        "{atom}"
    );
}

#[test]
fn serve_with_base_url_links_to_the_public_address() {
    let project = Project::new();
    let served = project.serve_in(
        ".",
        "target/release/vestnik serve data --base-url https://news.example.org/",
    );
    let (status, feed) = served.get("/feeds/all.rss");
    assert_eq!(status, 200);
    assert!(
        feed.contains("<link>https://news.example.org/</link>"),
        "{feed}"
    );
    assert!(
        !feed.contains("localhost:8080"),
        "site.toml's base_url leaked"
    );
    // site.toml was not edited for it.
    let config = std::fs::read_to_string(project.data().join("site.toml")).unwrap();
    assert!(config.contains("base_url = \"http://localhost:8080/\""));
}

/// A hash of every path and byte under `dir`, to show a refused build
/// touched nothing.
fn tree_hash(dir: &Path) -> String {
    let mut hasher = Sha256::new();
    let mut paths: Vec<PathBuf> = walk(dir);
    paths.sort();
    for path in paths {
        hasher.update(path.strip_prefix(dir).unwrap().to_string_lossy().as_bytes());
        hasher.update([0]);
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.is_file() {
            hasher.update(std::fs::read(&path).unwrap());
        } else if meta.file_type().is_symlink() {
            hasher.update(
                std::fs::read_link(&path)
                    .unwrap()
                    .to_string_lossy()
                    .as_bytes(),
            );
        }
        hasher.update([1]);
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}

/// Names under `dir` (not below) that look like a build's temporary folder.
fn stages(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-") || n.contains(".old"))
        .collect()
}

/// The mtime of every file of a build but its manifest (rewritten each time).
fn mtimes(dir: &Path) -> BTreeMap<PathBuf, std::time::SystemTime> {
    walk(dir)
        .into_iter()
        .filter(|p| p.is_file() && !p.ends_with(".vestnik-build.json"))
        .map(|p| {
            let t = std::fs::metadata(&p).unwrap().modified().unwrap();
            (p, t)
        })
        .collect()
}

#[test]
fn build_data_site_then_again_writes_only_changes() {
    let project = Project::new();
    let site = project.dir().join("site");
    let out = project.run("target/release/vestnik build data site");
    assert_eq!(out.status.code(), Some(0));
    for file in [
        "index.html",
        "feeds/all.rss",
        "feeds/all.rss.gz",
        "feeds.opml",
        ".vestnik-build.json",
    ] {
        assert!(site.join(file).is_file(), "site/{file} missing");
    }
    assert!(stages(&project.dir()).is_empty());
    let before = mtimes(&site);
    std::thread::sleep(Duration::from_millis(20));

    // Again, unchanged: nothing loaded or written, every mtime kept.
    let out = project.run("target/release/vestnik build data site");
    assert_eq!(out.status.code(), Some(0));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("site is up to date: nothing under data changed since it was built"),
        "{said}"
    );
    assert!(said.contains(": 0 written,"), "{said}");
    assert!(said.contains(" 0 removed"), "{said}");
    let touched: Vec<PathBuf> = mtimes(&site)
        .into_iter()
        .filter(|(p, t)| before.get(p) != Some(t))
        .map(|(p, _)| p)
        .collect();
    assert!(
        touched.is_empty(),
        "an unchanged rebuild touched {touched:#?}"
    );

    // One edited entry: only the files it changes are written.
    let seed = project.data().join(SEED);
    let text = std::fs::read_to_string(&seed).unwrap();
    std::fs::write(&seed, retitle(&text, "Новый заголовок")).unwrap();
    let out = project.run("target/release/vestnik build data site");
    assert_eq!(out.status.code(), Some(0));
    let after = mtimes(&site);
    let changed: Vec<&PathBuf> = after
        .iter()
        .filter(|(p, t)| before.get(*p) != Some(t))
        .map(|(p, _)| p)
        .collect();
    let news = site
        .join("news/2022-08-22-ano-dialog-u-vsekh-gorodov-i-raionov-rossii-poiavilis/index.html");
    assert!(changed.contains(&&news), "{changed:#?}");
    assert!(changed.contains(&&site.join("feeds/all.rss")));
    assert!(
        !changed.contains(&&site.join("feeds/gorodskoi-passazhirskii-transport.rss")),
        "a feed without the entry was rewritten"
    );
    assert!(
        changed.len() < before.len() / 4,
        "{} of {} files rewritten",
        changed.len(),
        before.len()
    );
    assert!(
        std::fs::read_to_string(&news)
            .unwrap()
            .contains("Новый заголовок")
    );

    // And it equals a fresh build byte for byte.
    let out = project.run("target/release/vestnik build data fresh");
    assert_eq!(out.status.code(), Some(0));
    let fresh = project.dir().join("fresh");
    let files = |dir: &Path| -> BTreeMap<PathBuf, Vec<u8>> {
        walk(dir)
            .into_iter()
            .filter(|p| p.is_file())
            .map(|p| {
                (
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                )
            })
            .collect()
    };
    // The manifest records each file's inode and mtime, facts about the
    // folder rather than the site, and when each build ran (its clock):
    // compared without them.
    let without_stat = |dir: &Path| {
        let mut m = vestnik::out_dir::Manifest::read(dir).unwrap();
        for r in m.files.values_mut() {
            (r.mtime_ns, r.ino) = (None, None);
        }
        assert!(m.fresh.take().is_some(), "no inputs recorded in {dir:?}");
        m
    };
    assert_eq!(without_stat(&site), without_stat(&fresh));
    let site_files = |dir: &Path| {
        let mut all = files(dir);
        all.remove(Path::new(".vestnik-build.json"));
        all
    };
    assert!(
        site_files(&site) == site_files(&fresh),
        "incremental and fresh builds differ"
    );
}

#[test]
fn build_refuses_what_it_did_not_write() {
    let project = Project::new();
    let dir = project.dir();
    std::fs::create_dir(dir.join("notes")).unwrap();
    std::fs::write(dir.join("notes/NOTES.txt"), "мои заметки").unwrap();
    std::fs::write(dir.join("file.txt"), "не папка").unwrap();
    std::os::unix::fs::symlink("data", dir.join("data-link")).unwrap();
    // (cwd, command, what the refusal says)
    let cases = [
        (
            ".",
            "target/release/vestnik build data",
            "is the data directory",
        ),
        (
            ".",
            "target/release/vestnik build data data",
            "is the data directory",
        ),
        (
            ".",
            "target/release/vestnik build data/ ./data",
            "is the data directory",
        ),
        (
            ".",
            "target/release/vestnik build data data-link",
            "is the data directory",
        ),
        (
            ".",
            "target/release/vestnik build data data/site",
            "lies inside the data directory",
        ),
        (
            ".",
            "target/release/vestnik build data data/entries",
            "lies inside the data directory",
        ),
        (
            "..",
            "vestnik/target/release/vestnik build vestnik/data vestnik",
            "contains the data directory",
        ),
        (
            ".",
            "target/release/vestnik build data .",
            "contains the data directory",
        ),
        (
            "notes",
            "../target/release/vestnik build ../data .",
            "contains the current directory",
        ),
        (
            "notes",
            "../target/release/vestnik build ../data ../notes",
            "contains the current directory",
        ),
        (
            ".",
            "target/release/vestnik build data notes",
            "not an earlier Vestnik build",
        ),
        (
            ".",
            "target/release/vestnik build data notes/",
            "not an earlier Vestnik build",
        ),
        (
            ".",
            "target/release/vestnik build data file.txt",
            "not a folder",
        ),
        (
            ".",
            "target/release/vestnik build data src",
            "not an earlier Vestnik build",
        ),
    ];
    let whole = tree_hash(&dir);
    for (cwd, command, reason) in cases {
        let out = project.run_in(cwd, command);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}: {stderr}");
        assert!(stderr.contains(reason), "{command}: {stderr}");
        let named = command.split_whitespace().last().unwrap();
        let named = if command.split_whitespace().count() == 3 {
            "data"
        } else {
            named
        };
        assert!(
            stderr.contains(named),
            "{command} does not name {named}: {stderr}"
        );
        assert_eq!(tree_hash(&dir), whole, "{command} changed the project");
        assert!(stages(&dir).is_empty() && stages(project.parent.path()).is_empty());
    }

    // An earlier build with a file added since: refused, and the file kept.
    assert_eq!(
        project
            .run("target/release/vestnik build data site")
            .status
            .code(),
        Some(0)
    );
    std::fs::write(dir.join("site/feeds/README.txt"), "мой файл").unwrap();
    let out = project.run("target/release/vestnik build data site");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("site/feeds/README.txt"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(dir.join("site/feeds/README.txt")).unwrap(),
        "мой файл"
    );
}

/// A data directory with enough entries that a build takes a while.
fn big_data(project: &Project, n: usize) {
    let dir = project.data().join("entries/big");
    std::fs::create_dir_all(&dir).unwrap();
    let body = "Абзац текста новости. ".repeat(200);
    for i in 0..n {
        let text = format!(
            "+++\ntitle = \"Новость {i}\"\ndate = \"2025-01-01T{:02}:{:02}:00+07:00\"\n\
             sections = [\"gorodskoi-passazhirskii-transport\"]\n+++\n\n{body}\n",
            i / 60 % 24,
            i % 60
        );
        std::fs::write(dir.join(format!("n{i}.md")), text).unwrap();
    }
}

#[test]
fn build_stopped_by_a_signal_leaves_nothing_behind() {
    let project = Project::new();
    big_data(&project, 800);
    let dir = project.dir();
    let data_before = tree_hash(&project.data());
    for (signal, code) in [("INT", Some(130)), ("KILL", None)] {
        let child = project
            .command(".", "target/release/vestnik build data site")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Wait until the stage exists, then stop the build.
        let deadline = Instant::now() + Duration::from_secs(30);
        while stages(&dir).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(!stages(&dir).is_empty(), "the build never staged");
        let status = Command::new("kill")
            .args([format!("-{signal}"), child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            code,
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !dir.join("site").exists(),
            "a half build is in place after SIG{signal}"
        );
        if signal == "INT" {
            assert!(stages(&dir).is_empty(), "SIGINT left {:?}", stages(&dir));
        }
    }
    // After kill -9 the stage is still there; the next build removes it.
    assert!(!stages(&dir).is_empty());
    let out = project.run("target/release/vestnik build data site");
    assert_eq!(out.status.code(), Some(0));
    assert!(stages(&dir).is_empty(), "{:?}", stages(&dir));
    assert!(dir.join("site/news/n799/index.html").is_file());
    assert_eq!(tree_hash(&project.data()), data_before);
}

#[test]
fn check_data_reports_relative_paths() {
    let project = Project::new();
    let out = project.run("target/release/vestnik check data");
    assert_eq!(out.status.code(), Some(0), "the shipped data has problems");
    // Every problem of a file, not only the first: an impossible date and
    // an unknown section, each at its line.
    let bad = project.data().join("entries/2026/bad.md");
    std::fs::write(
        &bad,
        "+++\ntitle = \"Плохая дата\"\ndate = \"31.02.2026\"\nsections = [\"sport\"]\n+++\n",
    )
    .unwrap();
    let out = project.run("target/release/vestnik check data");
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[0].starts_with("data/entries/2026/bad.md:3:"),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with("data/entries/2026/bad.md:4:"),
        "{stdout}"
    );
    assert!(lines[1].contains("unknown section \"sport\""), "{stdout}");
    // The same from inside DATA, as `.`.
    let out = project.run_in("data", "../target/release/vestnik check .");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("./entries/2026/bad.md:"));
}

#[test]
fn import_dry_run_names_the_file_it_would_write() {
    let project = Project::new();
    let before = tree_hash(&project.data());
    let out =
        project.run("target/release/vestnik import --dry-run tests/data/import/two-sections.txt");
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with(
            "tests/data/import/two-sections.txt: would write data/entries/2022/2022-09-20-"
        ),
        "{stdout}"
    );
    assert_eq!(tree_hash(&project.data()), before, "a dry run wrote");
    // For real, then the entry is served and checked like any other.
    let out = project.run("target/release/vestnik import tests/data/import/two-sections.txt");
    assert_eq!(out.status.code(), Some(0));
    let out = project.run("target/release/vestnik check data");
    assert_eq!(out.status.code(), Some(0));
    assert_ne!(tree_hash(&project.data()), before);
}

#[test]
fn new_writes_an_entry_that_is_published() {
    let project = Project::new();
    let command = "target/release/vestnik new --section gorodskoi-passazhirskii-transport --source \"Информационное агентство URA.RU\" \"Новые трамваи в Омске\"";
    let out = project.run(command);
    assert_eq!(out.status.code(), Some(0));
    let printed = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        printed.starts_with("data/entries/") && printed.ends_with("-novye-tramvai-v-omske.md"),
        "{printed}"
    );
    let written = std::fs::read_to_string(project.dir().join(&printed)).unwrap();
    assert!(
        written.contains("title = \"Новые трамваи в Омске\""),
        "{written}"
    );
    assert!(
        written.contains("[source]\nname = \"Информационное агентство URA.RU\"\nurl = "),
        "{written}"
    );
    // Valid as written, and published.
    let check = project.run("target/release/vestnik check data");
    assert_eq!(check.status.code(), Some(0));
    let served = project.serve_in(".", "cargo run --release -- serve data");
    let (_, feed) = served.get("/feeds/gorodskoi-passazhirskii-transport.rss");
    assert!(
        feed.contains("<title>Новые трамваи в Омске</title>"),
        "{feed}"
    );
    // Never overwritten.
    std::fs::write(project.dir().join(&printed), "отредактировано").unwrap();
    let again = project.run(command);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    assert_eq!(
        std::fs::read_to_string(project.dir().join(&printed)).unwrap(),
        "отредактировано"
    );
    // An unknown section lists the valid ones.
    let wrong = project.run("target/release/vestnik new --section sport \"Матч\"");
    assert_eq!(wrong.status.code(), Some(2));
    let said = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        said.contains("unknown section \"sport\" (known: informatizatsiia-"),
        "{said}"
    );
}

#[test]
fn serve_data_publishes_a_scheduled_entry_on_time() {
    let project = Project::new();
    // Due about 3 s after the server starts (4 s from now, whole seconds).
    let due = chrono::Utc::now() + chrono::Duration::seconds(4);
    let due = chrono::DateTime::<chrono::Utc>::from_timestamp(due.timestamp(), 0).unwrap();
    std::fs::write(
        project.data().join("entries/2026/embargo.md"),
        format!(
            "+++\ntitle = \"Под эмбарго\"\ndate = \"{}\"\nsections = [\"gorodskoi-passazhirskii-transport\"]\n+++\n\nТекст.\n",
            due.to_rfc3339()
        ),
    )
    .unwrap();
    let served = project.serve_in(".", "cargo run --release -- serve data");
    assert!(
        chrono::Utc::now() < due,
        "the server took too long to start for this test"
    );
    assert!(!served.get("/feeds/all.rss").1.contains("Под эмбарго"));
    assert_eq!(served.get("/news/embargo").0, 404);
    let health = served.health();
    assert_eq!(health["scheduled"], 1, "{health}");
    loop {
        let (_, feed) = served.get("/feeds/all.rss");
        let now = chrono::Utc::now();
        if feed.contains("<title>Под эмбарго</title>") {
            let lag = (now - due).num_milliseconds();
            eprintln!("went live {lag} ms after its due time");
            assert!(lag < 1000, "{lag} ms late");
            break;
        }
        assert!(
            now < due + chrono::Duration::seconds(1),
            "not live 1 s after its due time"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(served.get("/news/embargo").0, 200);
}
