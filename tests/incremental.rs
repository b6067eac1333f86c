//! The incremental build's promise, checked with the real binary: a rebuild
//! into an earlier build writes only the files whose bytes change, keeps
//! the inode and mtime of every other file, removes the files that are gone,
//! and leaves OUT equal, byte for byte, to a fresh build of the same DATA.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use vestnik::out_dir::{MANIFEST, Manifest};

/// A fixed build time, so the news sitemap's window is the same in every build.
const AT: &str = "2024-02-01T00:00:00+07:00";

/// A site of twelve entries, one a day, odd ones in section `a` and even ones
/// in `b`, three to a feed page: the combined feed has four pages, each
/// section two (so later feed and listing pages exist).
fn fixture(data: &Path) {
    std::fs::create_dir_all(data.join("entries/2024")).unwrap();
    std::fs::write(data.join("site.toml"), SITE).unwrap();
    for n in 1..=12 {
        write_entry(data, n, &format!("Новость {n}"), "Первый абзац.");
    }
}

const SITE: &str = "title = \"Инкремент\"\nbase_url = \"https://example.org/\"\n\
    language = \"ru\"\ntimezone = \"Asia/Novosibirsk\"\nfeed_limit = 3\n\n\
    [[sections]]\nslug = \"a\"\ntitle = \"Раздел А\"\n\n\
    [[sections]]\nslug = \"b\"\ntitle = \"Раздел Б\"\n";

fn write_entry(data: &Path, n: u32, title: &str, first: &str) {
    let section = if n % 2 == 1 { "a" } else { "b" };
    let body = "Второй абзац, подлиннее, чтобы сжатие было выгодно. ".repeat(20);
    std::fs::write(
        data.join(format!("entries/2024/e{n:02}.md")),
        format!(
            "+++\ntitle = \"{title}\"\ndate = \"2024-01-{n:02}T10:00:00+07:00\"\n\
             sections = [\"{section}\"]\n+++\n\n{first}\n\n{body}\n"
        ),
    )
    .unwrap();
}

/// What a build printed: files written, kept and removed.
#[derive(Debug, PartialEq, Eq)]
struct Summary {
    written: usize,
    kept: usize,
    removed: usize,
}

/// Runs `vestnik build --at AT data out` and reads its summary line.
fn build(data: &Path, out: &Path) -> Summary {
    build_with(data, out, &["--at", AT]).0
}

/// Runs `vestnik build ARGS data out`; its summary line, and whether it
/// found OUT up to date without loading anything.
fn build_with(data: &Path, out: &Path, args: &[&str]) -> (Summary, bool) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vestnik"));
    cmd.arg("build")
        .args(args)
        .arg(data)
        .arg(out)
        .current_dir(data.parent().unwrap());
    let done = cmd.output().expect("run vestnik");
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{cmd:?} failed:\n{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("built "))
        .unwrap_or_else(|| panic!("{cmd:?} printed no summary:\n{stderr}"));
    let count = |what: &str| -> usize {
        let before = line
            .split(&format!(" {what}"))
            .next()
            .unwrap_or_else(|| panic!("no {what} in {line}"));
        let n = before.rsplit([' ', ':']).next().unwrap();
        n.parse()
            .unwrap_or_else(|_| panic!("{what} is not a number in {line}"))
    };
    let summary = Summary {
        written: count("written"),
        kept: count("kept"),
        removed: count("removed"),
    };
    (summary, stderr.contains(" is up to date: nothing under "))
}

/// One file of a build: its inode, its mtime and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct File {
    ino: u64,
    mtime_ns: i128,
    bytes: Vec<u8>,
}

/// Every file of a build but its manifest, by path relative to it.
fn tree(dir: &Path) -> BTreeMap<String, File> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if rel == MANIFEST {
                continue;
            }
            let file = File {
                ino: meta.ino(),
                mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
                bytes: std::fs::read(&path).unwrap(),
            };
            files.insert(rel, file);
        }
    }
    files
}

/// The paths whose bytes differ between two trees, or that only one has.
fn differ(a: &BTreeMap<String, File>, b: &BTreeMap<String, File>) -> BTreeSet<String> {
    a.keys()
        .chain(b.keys())
        .filter(|k| a.get(*k).map(|f| &f.bytes) != b.get(*k).map(|f| &f.bytes))
        .cloned()
        .collect()
}

/// The paths of `after` that are not the very file `before` had (another
/// inode or another mtime): what a build wrote.
fn rewritten(before: &BTreeMap<String, File>, after: &BTreeMap<String, File>) -> BTreeSet<String> {
    after
        .iter()
        .filter(|(k, f)| {
            before
                .get(*k)
                .is_none_or(|b| (b.ino, b.mtime_ns) != (f.ino, f.mtime_ns))
        })
        .map(|(k, _)| k.clone())
        .collect()
}

/// A manifest without what `stat` said (inodes and mtimes differ between
/// two builds of the same bytes).
fn manifest(dir: &Path) -> Manifest {
    let mut m = Manifest::read(dir).expect("a manifest");
    for record in m.files.values_mut() {
        record.mtime_ns = None;
        record.ino = None;
    }
    m
}

/// Builds `data` afresh into a new folder and checks that `out` equals it
/// byte for byte, manifest included once inodes and mtimes are left out.
/// Returns the fresh tree.
fn equals_fresh(data: &Path, out: &Path, step: &str) -> BTreeMap<String, File> {
    let fresh = out.with_file_name(format!("fresh-{step}"));
    build(data, &fresh);
    let (got, want) = (tree(out), tree(&fresh));
    let differ = differ(&got, &want);
    assert!(
        differ.is_empty(),
        "{step}: OUT differs from a fresh build in {differ:#?}"
    );
    assert_eq!(manifest(out), manifest(&fresh), "{step}: manifests differ");
    want
}

/// Past the filesystem's timestamp granularity, so a rewrite shows in mtimes.
fn tick() {
    std::thread::sleep(Duration::from_millis(30));
}

#[test]
fn a_rebuild_writes_only_what_changed_and_equals_a_fresh_build() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = dir.path().join("site");
    fixture(&data);

    // Cold: everything written.
    let cold = build(&data, &out);
    let first = tree(&out);
    assert_eq!(cold.written, first.len(), "{cold:?}");
    assert_eq!((cold.kept, cold.removed), (0, 0));
    let fresh0 = equals_fresh(&data, &out, "cold");
    assert!(
        !Manifest::read(&out).unwrap().keys.is_empty(),
        "no input keys recorded"
    );
    tick();

    // No change: nothing written, every file the very same inode and mtime.
    let (again, skipped) = build_with(&data, &out, &["--at", AT]);
    assert!(skipped, "an unchanged rebuild loaded and rendered");
    assert_eq!(
        again,
        Summary {
            written: 0,
            kept: first.len(),
            removed: 0
        }
    );
    let second = tree(&out);
    assert_eq!(rewritten(&first, &second), BTreeSet::new());
    assert_eq!(second, first);
    equals_fresh(&data, &out, "unchanged");
    tick();

    // One entry's body: exactly the files whose bytes change are written.
    write_entry(&data, 5, "Новость 5", "Исправленный первый абзац.");
    let edit = build(&data, &out);
    let third = tree(&out);
    let fresh1 = equals_fresh(&data, &out, "edit");
    let affected = differ(&fresh0, &fresh1);
    assert_eq!(rewritten(&second, &third), affected);
    assert_eq!(
        edit,
        Summary {
            written: affected.len(),
            kept: third.len() - affected.len(),
            removed: 0
        }
    );
    // e05 is on page 3 of the combined feed (e12-e10, e09-e07, e06-e04)
    // and page 2 of section a (e11-e07, e05-e01). Listings show titles and
    // dates, not bodies, so they keep theirs.
    for file in [
        "news/e05/index.html",
        "feeds/pages/all/3.rss",
        "feeds/pages/all/3.atom",
        "feeds/pages/all/3.json",
        "feeds/pages/a/2.rss",
        "feeds/pages/a/2.json",
    ] {
        assert!(
            affected.contains(file),
            "{file} not rewritten: {affected:#?}"
        );
    }
    for path in third.keys() {
        let other_news = path.starts_with("news/") && !path.starts_with("news/e05/");
        let other_pages = path.starts_with("feeds/pages/b/")
            || path.starts_with("feeds/pages/all/1.")
            || path.starts_with("feeds/pages/all/2.")
            || path.starts_with("feeds/pages/all/4.")
            || path.starts_with("feeds/b.");
        assert!(
            !(affected.contains(path) && (other_news || other_pages)),
            "{path} was rewritten for an entry it does not show"
        );
    }
    tick();

    // An entry removed: its page goes, the pages that listed it change.
    std::fs::remove_file(data.join("entries/2024/e03.md")).unwrap();
    let removal = build(&data, &out);
    let fourth = tree(&out);
    let fresh2 = equals_fresh(&data, &out, "removal");
    let gone: BTreeSet<String> = third
        .keys()
        .filter(|k| !fourth.contains_key(*k))
        .cloned()
        .collect();
    // Eleven entries still fill as many feed and listing pages as twelve.
    assert!(gone.contains("news/e03/index.html"), "{gone:#?}");
    assert!(gone.iter().all(|k| k.starts_with("news/e03/")), "{gone:#?}");
    assert_eq!(removal.removed, gone.len(), "{removal:?}");
    let affected = differ(&fresh1, &fresh2);
    assert_eq!(
        rewritten(&third, &fourth),
        affected
            .iter()
            .filter(|k| fourth.contains_key(*k))
            .cloned()
            .collect()
    );
    assert_eq!(removal.written, affected.len() - gone.len());
    assert!(!out.join("news/e03").exists(), "an empty folder was left");
    tick();

    // The site's title changes: every page shows it, so every page is
    // rendered again and rewritten.
    std::fs::write(
        data.join("site.toml"),
        SITE.replace("Инкремент", "Инкремент 2"),
    )
    .unwrap();
    let config = build(&data, &out);
    let fifth = tree(&out);
    let fresh3 = equals_fresh(&data, &out, "config");
    let affected = differ(&fresh2, &fresh3);
    assert_eq!(rewritten(&fourth, &fifth), affected);
    assert_eq!(config.written, affected.len());
    for path in fifth.keys() {
        let page = path.starts_with("news/") || path.starts_with("feeds/pages/");
        assert!(
            !page || affected.contains(path),
            "{path} kept after the site's title changed"
        );
    }
}

/// A file changed in OUT after the build (same size, mtime put back) is not
/// trusted from its stat alone when the inode differs, and a file changed in
/// place is caught by its mtime: either way it is written again, never
/// carried over.
#[test]
fn a_file_changed_in_out_is_written_again() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = dir.path().join("site");
    fixture(&data);
    build(&data, &out);
    let page = out.join("news/e07/index.html");
    let good = std::fs::read(&page).unwrap();
    // Same size, other bytes, written in place (same inode, new mtime).
    let mut bad = good.clone();
    bad[good.len() / 2] ^= 1;
    std::fs::write(&page, &bad).unwrap();
    let summary = build(&data, &out);
    assert_eq!(summary.written, 1, "{summary:?}");
    assert_eq!(std::fs::read(&page).unwrap(), good);
    equals_fresh(&data, &out, "repaired");
}

/// A rebuild is skipped (nothing loaded, rendered or written) only while
/// nothing it reads changed and its time lies where the previous output
/// holds: from the previous cutoff until the schedule's next change.
#[test]
fn a_rebuild_is_skipped_only_while_nothing_it_reads_changed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = dir.path().join("site");
    fixture(&data);
    // Due four days after AT.
    std::fs::write(
        data.join("entries/2024/later.md"),
        "+++\ntitle = \"Позже\"\ndate = \"2024-02-05T10:00:00+07:00\"\nsections = [\"a\"]\n+++\n\nТекст.\n",
    )
    .unwrap();
    let at = |t: &str| build_with(&data, &out, &["--at", t]);
    let (cold, skipped) = at(AT);
    assert!(!skipped && cold.written > 0);
    let first = tree(&out);
    for (when, skip) in [
        (AT, true),
        ("2024-02-05T09:59:59+07:00", true),
        // Before the recorded cutoff: not known to hold.
        ("2024-01-31T23:00:00+07:00", false),
    ] {
        tick();
        let (summary, skipped) = at(when);
        assert_eq!(skipped, skip, "at {when}");
        assert_eq!(summary.written, 0, "at {when}: {summary:?}");
        assert_eq!(tree(&out), first, "at {when}");
    }
    // Due now: built, and the new entry is there.
    let (due, skipped) = at("2024-02-05T10:00:00+07:00");
    assert!(!skipped);
    assert!(due.written > 0, "{due:?}");
    assert!(out.join("news/later/index.html").is_file());
    // Back to AT: built again, without it.
    let (back, skipped) = at(AT);
    assert!(!skipped && back.removed > 0, "{back:?}");
    assert!(!out.join("news/later").exists());
    assert_eq!(
        tree(&out).keys().collect::<Vec<_>>(),
        first.keys().collect::<Vec<_>>()
    );

    // A file touched under DATA: loaded again, nothing written.
    tick();
    let file = std::fs::File::options()
        .write(true)
        .open(data.join("entries/2024/e01.md"))
        .unwrap();
    file.set_modified(std::time::SystemTime::now()).unwrap();
    let (touched, skipped) = at(AT);
    assert!(!skipped);
    assert_eq!(touched.written, 0, "{touched:?}");
    assert!(at(AT).1, "not skipped after the touch was built");

    // A file of OUT removed: built again, and put back.
    std::fs::remove_file(out.join("news/e02/index.html")).unwrap();
    let (repaired, skipped) = at(AT);
    assert!(!skipped);
    assert_eq!(repaired.written, 1, "{repaired:?}");
    equals_fresh(&data, &out, "repaired");

    // An edit built with --swap (the whole tree staged and swapped in)
    // ends in the same tree as one built in place.
    tick();
    write_entry(&data, 5, "Новость 5", "Исправленный первый абзац.");
    let (swapped, skipped) = build_with(&data, &out, &["--at", AT, "--swap"]);
    assert!(!skipped && swapped.written > 0, "{swapped:?}");
    equals_fresh(&data, &out, "swapped");
}
