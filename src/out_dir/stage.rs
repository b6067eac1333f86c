//! A build being written: every file goes through a [`Stage`] beside OUT,
//! and [`Stage::commit`] puts it in place in one of two ways.
//!
//! - **Whole** (a first build, or `--swap`): the stage holds the complete
//!   tree, unchanged files hard-linked from the previous build, and is
//!   swapped with OUT in one `renameat2(RENAME_EXCHANGE)`. A web server
//!   sees the old tree or the new one, never a mix; the cost is Θ(files)
//!   links and unlinks.
//! - **In place** (a rebuild into an earlier build, the default): the stage
//!   holds only the files whose bytes changed. Commit writes the new
//!   manifest into the stage as a journal, renames each changed file over
//!   its old copy (each file is atomically old or new), removes the files
//!   the new build no longer has, and renames the journal over the
//!   manifest: Θ(changes). A build killed during those renames leaves the
//!   journal behind, and the next build finishes the update from it
//!   ([`finish_stopped`]) before anything else, so OUT is never left a mix.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use super::{FileRecord, MANIFEST, Manifest, STAGE_MARK, Target, stamp};

/// In a stage, the manifest of an in-place update whose renames began: the
/// list of what the update puts in OUT.
pub(super) const JOURNAL: &str = ".vestnik-journal.json";

/// What writing one file did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// New or changed bytes were written.
    Wrote,
    /// The bytes equal the previous build's: that file stays (or, in a
    /// whole-tree build, is linked), keeping its inode and mtime.
    Kept,
}

/// How a stage is put in place; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// Stage the whole tree and swap it with OUT at once.
    Whole,
    /// Stage only the changed files and rename them into OUT.
    InPlace,
}

/// A build being written beside OUT. Dropped uncommitted (an error, a
/// panic, an interruption), it removes itself and OUT is as it was.
pub struct Stage<'a> {
    pub(super) target: &'a Target,
    pub(super) dir: PathBuf,
    pub(super) commit: Commit,
    pub(super) files: Mutex<Vec<(String, FileRecord)>>,
    pub(super) keys: Mutex<Vec<(String, String)>>,
    pub(super) previous: HashMap<&'a str, &'a FileRecord>,
    pub(super) previous_keys: HashMap<&'a str, &'a str>,
    pub(super) interrupted: Arc<AtomicBool>,
    pub(super) committed: bool,
}

impl Stage<'_> {
    /// Writes `bytes` as the file `rel` (`/`-separated, relative to OUT),
    /// unless the previous build's copy holds the same bytes: then that one
    /// is kept. Fails with [`std::io::ErrorKind::Interrupted`] once the
    /// build was interrupted.
    pub fn write(&self, rel: &str, bytes: &[u8]) -> std::io::Result<Written> {
        self.check_interrupted()?;
        let mut record = FileRecord {
            size: bytes.len() as u64,
            sha256: crate::text::hex(&Sha256::digest(bytes)),
            mtime_ns: None,
            ino: None,
        };
        let kept = self
            .previous
            .get(rel)
            .filter(|r| r.same_bytes(&record))
            .and_then(|r| self.intact(rel, r))
            .filter(|_| self.link_whole(&[rel]).is_ok());
        let outcome = if let Some((mtime, ino)) = kept {
            (record.mtime_ns, record.ino) = (Some(mtime), Some(ino));
            Written::Kept
        } else {
            let path = self.dir.join(rel);
            if let Some(folder) = path.parent() {
                std::fs::create_dir_all(folder)?;
            }
            let mut file = std::fs::File::create(&path)?;
            std::io::Write::write_all(&mut file, bytes)?;
            let (mtime, ino) = stamp(&file.metadata()?);
            (record.mtime_ns, record.ino) = (Some(mtime), Some(ino));
            Written::Wrote
        };
        self.lock_files().push((rel.to_owned(), record));
        Ok(outcome)
    }

    /// Keeps the previous build's group of files `rels` (a page first, then
    /// its siblings; those the previous build has) when the previous build
    /// recorded the same input `key` for the group and every file is still
    /// as it wrote it. Returns the sizes of the files kept, or `None` when
    /// the group must be rendered and written.
    pub fn reuse(&self, rels: &[&str], key: &str) -> std::io::Result<Option<Vec<u64>>> {
        self.check_interrupted()?;
        let Some(first) = rels.first() else {
            return Ok(None);
        };
        if self.previous_keys.get(first) != Some(&key) {
            return Ok(None);
        }
        let mut group = Vec::with_capacity(rels.len());
        for rel in rels {
            let Some(record) = self.previous.get(rel) else {
                continue;
            };
            let Some(stamp) = self.intact(rel, record) else {
                return Ok(None);
            };
            group.push((*rel, *record, stamp));
        }
        let present: Vec<&str> = group.iter().map(|(rel, _, _)| *rel).collect();
        if self.link_whole(&present).is_err() {
            return Ok(None);
        }
        let sizes = group.iter().map(|(_, r, _)| r.size).collect();
        self.lock_files()
            .extend(group.into_iter().map(|(rel, record, (mtime, ino))| {
                let record = FileRecord {
                    mtime_ns: Some(mtime),
                    ino: Some(ino),
                    ..record.clone()
                };
                (rel.to_owned(), record)
            }));
        self.record_key(first, key);
        Ok(Some(sizes))
    }

    /// In a whole-tree stage, hard-links the previous build's `rels` into
    /// it, all or none; in place, the files stay where they are.
    fn link_whole(&self, rels: &[&str]) -> std::io::Result<()> {
        if self.commit == Commit::InPlace {
            return Ok(());
        }
        for (i, rel) in rels.iter().enumerate() {
            let path = self.dir.join(rel);
            if let Some(folder) = path.parent() {
                std::fs::create_dir_all(folder)?;
            }
            if let Err(e) = std::fs::hard_link(self.target.real.join(rel), &path) {
                // Undo, so the caller writes into a clean place.
                for rel in &rels[..i] {
                    std::fs::remove_file(self.dir.join(rel))?;
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// Records the input key of the group of files that starts at `rel`,
    /// for the next build's [`Stage::reuse`].
    pub fn record_key(&self, rel: &str, key: &str) {
        self.keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((rel.to_owned(), key.to_owned()));
    }

    /// `(mtime, inode)` of the previous build's `rel` when it still holds
    /// the bytes `record` describes: trusted from `stat` when size, mtime
    /// and inode are those recorded, else hashed again.
    fn intact(&self, rel: &str, record: &FileRecord) -> Option<(i64, u64)> {
        intact(&self.target.real.join(rel), record)
    }

    fn check_interrupted(&self) -> std::io::Result<()> {
        if self.interrupted.load(Ordering::Relaxed) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::Interrupted,
                "interrupted",
            ));
        }
        Ok(())
    }

    /// The path of `rel` inside the stage (to set a copied file's mtime
    /// after [`Stage::write`] wrote it).
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    fn lock_files(&self) -> std::sync::MutexGuard<'_, Vec<(String, FileRecord)>> {
        // A panic while holding the lock leaves a plain Vec; it is still usable.
        self.files.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Files of the previous build that this one does not have.
    pub fn removed(&self) -> usize {
        let files = self.lock_files();
        let now: std::collections::HashSet<&str> = files.iter().map(|(r, _)| r.as_str()).collect();
        self.previous.keys().filter(|r| !now.contains(**r)).count()
    }

    /// Puts the build in place ([`Commit`]) with its manifest, which
    /// `fresh` completes (see [`super::fresh`]).
    pub fn commit(mut self, fresh: Option<super::fresh::Fresh>) -> std::io::Result<()> {
        let manifest = Manifest {
            generator: "vestnik".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            files: std::mem::take(&mut *self.lock_files())
                .into_iter()
                .collect(),
            keys: std::mem::take(&mut *self.keys.lock().unwrap_or_else(|e| e.into_inner()))
                .into_iter()
                .collect(),
            fresh,
        };
        let clock = std::time::Instant::now();
        let json = serde_json::to_vec(&manifest).map_err(std::io::Error::other)?;
        let out = &self.target.real;
        match (self.commit, &self.target.previous) {
            (Commit::InPlace, Some(previous)) => {
                // The journal appears whole (written aside, then renamed):
                // from here on the update is finished, by this build or by
                // the next one.
                let journal = self.dir.join(JOURNAL);
                std::fs::write(journal.with_extension("tmp"), &json)?;
                std::fs::rename(journal.with_extension("tmp"), &journal)?;
                self.committed = true;
                apply(&self.dir, out, &manifest, previous)?;
                tracing::debug!("updated in place in {:.2} s", clock.elapsed().as_secs_f64());
            }
            (_, previous) => {
                std::fs::write(self.dir.join(MANIFEST), json)?;
                std::fs::remove_file(self.dir.join(STAGE_MARK))?;
                if previous.is_none() {
                    // OUT is missing or an empty folder, which rename(2) replaces.
                    std::fs::rename(&self.dir, out)?;
                } else {
                    exchange(&self.dir, out)?;
                    tracing::debug!("swapped in at {:.2} s", clock.elapsed().as_secs_f64());
                    // The stage's path now holds the previous build.
                    remove_build(&self.dir, previous.as_ref());
                    tracing::debug!(
                        "previous build removed at {:.2} s",
                        clock.elapsed().as_secs_f64()
                    );
                }
                self.committed = true;
            }
        }
        Ok(())
    }
}

impl Drop for Stage<'_> {
    fn drop(&mut self) {
        if !self.committed {
            if let Err(e) = std::fs::remove_dir_all(&self.dir) {
                tracing::warn!("cannot remove {}: {e}", self.dir.display());
            }
        }
    }
}

/// `(mtime, inode)` of the file at `path` when it still holds the bytes
/// `record` describes: trusted from `stat` when size, mtime and inode are
/// those recorded, else hashed again.
pub(super) fn intact(path: &Path, record: &FileRecord) -> Option<(i64, u64)> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    let now = stamp(&meta);
    if record.stat_matches(&meta) {
        return Some(now);
    }
    if !meta.is_file() || meta.len() != record.size {
        return None;
    }
    let digest = crate::file::sha256(path).ok()?;
    (crate::text::hex(&digest) == record.sha256).then_some(now)
}

/// Finishes an in-place update from the stage `dir` of a build that
/// stopped during its renames, if `dir` holds its journal; then removes
/// the stage. Returns whether there was an update to finish.
pub(super) fn finish_stopped(dir: &Path, out: &Path) -> std::io::Result<bool> {
    let Ok(bytes) = std::fs::read(dir.join(JOURNAL)) else {
        return Ok(false);
    };
    let next: Manifest = serde_json::from_slice(&bytes).map_err(std::io::Error::other)?;
    // The manifest is replaced last, so OUT's is still the one before.
    let previous = super::Manifest::read(out).unwrap_or_default();
    apply(dir, out, &next, &previous)?;
    Ok(true)
}

/// The in-place update: every file the stage `dir` holds of `next` renamed
/// into `out`, then the files of `previous` that `next` does not have
/// removed (and the folders they leave empty), then the journal renamed
/// over the manifest, and the stage removed. Renaming a file already moved
/// is skipped, so running it again after a stop finishes the same update.
fn apply(dir: &Path, out: &Path, next: &Manifest, previous: &Manifest) -> std::io::Result<()> {
    // What links to what comes after it: media and entry pages, then later
    // pages, then first pages and feeds, then the sitemaps.
    // Read from the stage itself, which holds only what changed.
    let mut staged: Vec<String> = walkdir::WalkDir::new(dir)
        .min_depth(1)
        .follow_links(false)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| {
            let rel = e.path().strip_prefix(dir).ok()?.to_str()?.to_owned();
            next.files.contains_key(&rel).then_some(rel)
        })
        .collect();
    staged.sort_by(|a, b| (rank(a), a).cmp(&(rank(b), b)));
    let mut made = BTreeSet::new();
    for rel in &staged {
        let to = out.join(rel);
        if let Some(folder) = to.parent().filter(|f| made.insert(f.to_path_buf())) {
            std::fs::create_dir_all(folder)?;
        }
        std::fs::rename(dir.join(rel), &to)?;
    }
    let gone: Vec<&String> = previous
        .files
        .keys()
        .filter(|r| !next.files.contains_key(*r))
        .collect();
    {
        use rayon::prelude::*;
        // Up to hundreds of thousands of unlinks: spread over the pool.
        gone.par_iter()
            .try_for_each(|rel| match std::fs::remove_file(out.join(rel)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            })?;
    }
    let mut emptied = BTreeSet::new();
    for rel in gone {
        let mut p = Path::new(rel.as_str());
        while let Some(parent) = p.parent().filter(|p| !p.as_os_str().is_empty()) {
            emptied.insert(parent.to_path_buf());
            p = parent;
        }
    }
    // Deepest first; rmdir removes only a folder that is empty.
    for folder in emptied.iter().rev() {
        let _ = std::fs::remove_dir(out.join(folder));
    }
    std::fs::rename(dir.join(JOURNAL), out.join(MANIFEST))?;
    std::fs::remove_dir_all(dir)
}

/// The order of a file in an in-place update (see [`apply`]).
fn rank(rel: &str) -> u8 {
    if rel.starts_with("media/") || rel.starts_with("news/") {
        0
    } else if rel.contains("/page/") || rel.starts_with("page/") || rel.starts_with("feeds/pages/")
    {
        1
    } else if rel.starts_with("sitemap") || rel == "robots.txt" {
        3
    } else {
        2
    }
}

/// Swaps two directories atomically (Linux `renameat2(RENAME_EXCHANGE)`).
/// Where the filesystem cannot, OUT steps aside and the stage is renamed in:
/// OUT is then missing for the moment between two renames.
fn exchange(stage: &Path, out: &Path) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{CWD, RenameFlags, renameat_with};
        match renameat_with(CWD, stage, CWD, out, RenameFlags::EXCHANGE) {
            Ok(()) => return Ok(()),
            Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => {}
            Err(e) => return Err(e.into()),
        }
    }
    let aside = stage.with_extension("old");
    std::fs::rename(out, &aside)?;
    std::fs::rename(stage, out)?;
    std::fs::rename(&aside, stage)
}

/// Removes a previous build at `dir`: the files its manifest lists, the
/// manifest, then the folders left empty. Anything else (added after the
/// check) stays, and is reported.
fn remove_build(dir: &Path, manifest: Option<&Manifest>) {
    if let Some(manifest) = manifest {
        use rayon::prelude::*;
        // Hundreds of thousands of unlinks: spread over the pool.
        manifest.files.par_iter().for_each(|(rel, _)| {
            let _ = std::fs::remove_file(dir.join(rel));
        });
    }
    let _ = std::fs::remove_file(dir.join(MANIFEST));
    let _ = std::fs::remove_file(dir.join(STAGE_MARK));
    let folders: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .contents_first(true)
        .follow_links(false)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_dir())
        .map(|e| e.into_path())
        .collect();
    for folder in folders {
        let _ = std::fs::remove_dir(folder);
    }
    if dir.exists() {
        tracing::warn!(
            "kept {}: it holds files the previous build did not write",
            dir.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::out_dir::stamp;

    /// A temporary folder holding an empty `data`, and where `out` goes.
    fn folders() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let out = dir.path().join("out");
        (dir, data, out)
    }

    /// A build of `files` (path, bytes, input key) into `out`, each with its key.
    fn build_as(
        commit: Commit,
        data: &Path,
        out: &Path,
        files: &[(&str, &str, &str)],
    ) -> Vec<Option<Vec<u64>>> {
        let target = Target::prepare(data, out).unwrap();
        let stage = target
            .stage(Arc::new(AtomicBool::new(false)), commit)
            .unwrap();
        let mut reused = Vec::new();
        for (rel, bytes, key) in files {
            let sibling = format!("{rel}.gz");
            let got = stage.reuse(&[rel, &sibling], key).unwrap();
            if got.is_none() {
                stage.write(rel, bytes.as_bytes()).unwrap();
                stage.write(&sibling, b"gz").unwrap();
                stage.record_key(rel, key);
            }
            reused.push(got);
        }
        stage.commit(None).unwrap();
        reused
    }

    #[test]
    fn a_group_is_reused_only_under_its_key_and_while_intact_in_place() {
        reuse_under(Commit::InPlace);
    }

    #[test]
    fn a_group_is_reused_only_under_its_key_and_while_intact_swapped_whole() {
        reuse_under(Commit::Whole);
    }

    fn reuse_under(commit: Commit) {
        let (_dir, data, out) = folders();
        let ino = |rel: &str| {
            use std::os::unix::fs::MetadataExt as _;
            std::fs::metadata(out.join(rel)).unwrap().ino()
        };
        let first = build_as(
            commit,
            &data,
            &out,
            &[("a/index.html", "A", "k1"), ("b.rss", "B", "k2")],
        );
        assert_eq!(first, [None, None]);
        let (a, b) = (ino("a/index.html"), ino("b.rss"));

        // Same keys: linked, nothing written; a key that differs renders.
        let again = build_as(
            commit,
            &data,
            &out,
            &[("a/index.html", "A", "k1"), ("b.rss", "B2", "k3")],
        );
        assert_eq!(again, [Some(vec![1, 2]), None]);
        assert_eq!(ino("a/index.html"), a);
        assert_ne!(ino("b.rss"), b);
        assert_eq!(std::fs::read(out.join("b.rss")).unwrap(), b"B2");
        let manifest = Manifest::read(&out).unwrap();
        assert_eq!(manifest.keys["b.rss"], "k3");
        assert!(manifest.files["a/index.html"].mtime_ns.is_some());

        // Changed in OUT behind the build's back (same size, same mtime put
        // back, but another inode): hashed, found different, not reused.
        let page = out.join("a/index.html");
        let mtime = std::fs::metadata(&page).unwrap().modified().unwrap();
        // Written beside it first, so the new inode cannot reuse the old number.
        let other = out.join("a/other");
        std::fs::write(&other, "X").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&other)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        std::fs::rename(&other, &page).unwrap();
        let repaired = build_as(commit, &data, &out, &[("a/index.html", "A", "k1")]);
        assert_eq!(repaired, [None]);
        assert_eq!(std::fs::read(&page).unwrap(), b"A");
        // And b.rss, no longer built, was removed with its sibling.
        assert!(!out.join("b.rss").exists() && !out.join("b.rss.gz").exists());
    }

    /// The record of the file at `path`, as a build would make it.
    fn record(path: &Path) -> FileRecord {
        let bytes = std::fs::read(path).unwrap();
        let (mtime, ino) = stamp(&std::fs::metadata(path).unwrap());
        FileRecord {
            size: bytes.len() as u64,
            sha256: crate::text::hex(&Sha256::digest(&bytes)),
            mtime_ns: Some(mtime),
            ino: Some(ino),
        }
    }

    #[test]
    fn an_update_stopped_during_its_renames_is_finished_by_the_next_build() {
        let (dir, data, out) = folders();
        let v1 = [
            ("a/index.html", "A", "k1"),
            ("b.rss", "B", "k2"),
            ("gone/index.html", "G", "k3"),
        ];
        build_as(Commit::InPlace, &data, &out, &v1);
        // The state a build killed half way through its renames leaves: its
        // journal written, `c` renamed into OUT already, `b` still staged,
        // `gone` (not in the new build) not removed yet.
        let stage = dir.path().join(".out.tmp-99999999");
        std::fs::create_dir(&stage).unwrap();
        std::fs::write(stage.join(STAGE_MARK), "").unwrap();
        std::fs::write(stage.join("b.rss"), "B2").unwrap();
        std::fs::write(out.join("c.atom"), "C").unwrap();
        let previous = Manifest::read(&out).unwrap();
        let mut next = previous.clone();
        next.files.remove("gone/index.html");
        next.files.remove("gone/index.html.gz");
        next.files
            .insert("b.rss".into(), record(&stage.join("b.rss")));
        next.files
            .insert("c.atom".into(), record(&out.join("c.atom")));
        std::fs::write(stage.join(JOURNAL), serde_json::to_vec(&next).unwrap()).unwrap();

        let target = Target::prepare(&data, &out).unwrap();
        assert_eq!(target.previous(), Some(&next));
        assert!(!stage.exists(), "the stage is left");
        assert_eq!(std::fs::read(out.join("b.rss")).unwrap(), b"B2");
        assert_eq!(std::fs::read(out.join("c.atom")).unwrap(), b"C");
        assert_eq!(std::fs::read(out.join("a/index.html")).unwrap(), b"A");
        assert!(
            !out.join("gone").exists(),
            "a removed page or its folder is left"
        );
        assert_eq!(Manifest::read(&out), Some(next.clone()));
        // What the journal recorded is what OUT holds: kept as it is.
        drop(target);
        let again = build_as(Commit::InPlace, &data, &out, &[("a/index.html", "A", "k1")]);
        assert_eq!(again, [Some(vec![1, 2])]);
    }

    #[test]
    fn an_update_renames_only_what_changed_and_removes_what_went() {
        let (_dir, data, out) = folders();
        let ino = |rel: &str| {
            use std::os::unix::fs::MetadataExt as _;
            std::fs::metadata(out.join(rel)).unwrap().ino()
        };
        build_as(
            Commit::InPlace,
            &data,
            &out,
            &[
                ("news/x/index.html", "X", "k1"),
                ("feeds/all.rss", "F", "k2"),
            ],
        );
        let (x, feed) = (ino("news/x/index.html"), ino("feeds/all.rss"));
        let target = Target::prepare(&data, &out).unwrap();
        let stage = target
            .stage(Arc::new(AtomicBool::new(false)), Commit::InPlace)
            .unwrap();
        // Same bytes without a key: kept. New bytes: staged, then renamed in.
        assert_eq!(stage.write("feeds/all.rss", b"F").unwrap(), Written::Kept);
        assert_eq!(
            stage.write("news/y/index.html", b"Y").unwrap(),
            Written::Wrote
        );
        let staged = stage.dir.clone();
        assert_eq!(
            std::fs::read(staged.join("news/y/index.html")).unwrap(),
            b"Y"
        );
        assert!(
            !staged.join("feeds/all.rss").exists(),
            "a kept file was staged"
        );
        // news/x and both .gz siblings.
        assert_eq!(stage.removed(), 3);
        stage.commit(None).unwrap();
        assert!(!staged.exists());
        assert_eq!(ino("feeds/all.rss"), feed);
        assert_ne!(ino("news/y/index.html"), x);
        assert!(!out.join("news/x").exists());
        let manifest = Manifest::read(&out).unwrap();
        assert_eq!(
            manifest.files.keys().collect::<Vec<_>>(),
            ["feeds/all.rss", "news/y/index.html"]
        );
    }
}
