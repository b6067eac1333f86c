//! The output folder of `vestnik build`: which folders it may write to, the
//! manifest that marks a folder as an earlier build, and the swap that puts a
//! finished build in place.
//!
//! An editor's files are the only copy of the news, so the rule is that a
//! build deletes nothing it did not write. [`Target::prepare`] refuses every
//! OUT but a missing folder, an empty one, or an earlier build whose every
//! file its [`Manifest`] lists; and always an OUT that is DATA, lies inside
//! it, contains it, or contains the current directory. The build is written
//! into a [`Stage`] beside OUT (named `.{OUT}.tmp-{pid}`), which removes
//! itself unless committed, and is swapped in with one `renameat2` exchange,
//! so a web server sees the old build or the new one, never a mix.
//!
//! A file whose bytes equal the previous build's is hard-linked from it
//! instead of written, so an unchanged file keeps its inode and mtime and
//! `rsync` or a CDN upload moves only what changed. A group of files (a page
//! and its `.gz` and `.br`) whose input key ([`crate::inputs`]) equals the
//! one the manifest recorded is linked without being rendered at all
//! ([`Stage::reuse`]). Either way the previous file is trusted only while
//! its size, mtime and inode are those the manifest recorded; otherwise its
//! bytes are hashed again, so a file changed in OUT since is never carried
//! over.

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The manifest's file name inside OUT.
pub const MANIFEST: &str = ".vestnik-build.json";

/// Written first into a stage, so a stage left by a killed build is known
/// as Vestnik's own and removed by the next build.
const STAGE_MARK: &str = ".vestnik-stage";

/// Why a build refuses to write to OUT. Each message names the folder.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// OUT and DATA are the same folder.
    #[error("refusing to build into {out}: it is the data directory {data}")]
    IsData { out: String, data: String },
    /// OUT is a folder inside DATA.
    #[error(
        "refusing to build into {out}: it lies inside the data directory {data}; choose a folder outside it"
    )]
    InsideData { out: String, data: String },
    /// DATA is inside OUT, so replacing OUT would remove it.
    #[error(
        "refusing to build into {out}: it contains the data directory {data}, which the build would replace"
    )]
    ContainsData { out: String, data: String },
    /// The current directory is inside OUT.
    #[error(
        "refusing to build into {out}: it contains the current directory; run from elsewhere or choose another folder"
    )]
    ContainsCwd { out: String },
    /// OUT is something other than a folder.
    #[error("refusing to build into {out}: it exists and is not a folder")]
    NotAFolder { out: String },
    /// OUT holds files and no manifest of an earlier build.
    #[error(
        "refusing to build into {out}: it is not empty and is not an earlier Vestnik build (it has no {MANIFEST}); choose a new or empty folder"
    )]
    NotABuild { out: String },
    /// OUT is an earlier build, and something else was added to it since.
    #[error(
        "refusing to build into {out}: it is an earlier Vestnik build, but {what} was not written by Vestnik; move it elsewhere first"
    )]
    Foreign { out: String, what: String },
    /// A path could not be resolved or read.
    #[error("cannot use {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// One file of a build: its size and the SHA-256 of its bytes, and what
/// `stat` said of it once written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// Bytes.
    pub size: u64,
    /// Lowercase hex SHA-256 of the bytes.
    pub sha256: String,
    /// Modification time in nanoseconds since the epoch; with `size` and
    /// `ino`, the proof that the file is still the one written, without
    /// reading it. Absent in manifests of older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime_ns: Option<i64>,
    /// Inode number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ino: Option<u64>,
}

impl FileRecord {
    fn same_bytes(&self, other: &FileRecord) -> bool {
        self.size == other.size && self.sha256 == other.sha256
    }
}

/// `(mtime in ns, inode)` of a file's metadata.
fn stamp(meta: &std::fs::Metadata) -> (i64, u64) {
    use std::os::unix::fs::MetadataExt as _;
    (
        meta.mtime().saturating_mul(1_000_000_000) + meta.mtime_nsec(),
        meta.ino(),
    )
}

/// What a build wrote, kept in OUT as [`MANIFEST`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always `"vestnik"`: what wrote the folder.
    pub generator: String,
    /// The version that wrote it.
    pub version: String,
    /// Every file, by `/`-separated path relative to OUT.
    pub files: BTreeMap<String, FileRecord>,
    /// Input keys ([`crate::inputs`]) by the path of the first file of
    /// their group (a page; its `.gz` and `.br` follow from it).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub keys: BTreeMap<String, String>,
}

impl Manifest {
    /// Reads OUT's manifest; `None` when there is none or it is not Vestnik's.
    pub fn read(out: &Path) -> Option<Manifest> {
        let bytes = std::fs::read(out.join(MANIFEST)).ok()?;
        let manifest: Manifest = serde_json::from_slice(&bytes).ok()?;
        (manifest.generator == "vestnik").then_some(manifest)
    }
}

/// A checked OUT, ready to stage a build for.
#[derive(Debug)]
pub struct Target {
    /// OUT as the user wrote it, for messages.
    shown: PathBuf,
    /// OUT with symlinks, `.` and `..` resolved.
    real: PathBuf,
    /// The earlier build in OUT, if any.
    previous: Option<Manifest>,
}

impl Target {
    /// Checks that a build of `data` may go to `out` (see the module
    /// documentation), and removes stages that killed builds left beside it.
    pub fn prepare(data: &Path, out: &Path) -> Result<Target, Refused> {
        let shown = out.display().to_string();
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |source| Refused::Io { path, source }
        };
        let data_real = std::fs::canonicalize(data).map_err(io(data))?;
        let cwd = std::env::current_dir().map_err(io(Path::new(".")))?;
        let cwd_real = std::fs::canonicalize(&cwd).map_err(io(&cwd))?;
        let real = resolve(&cwd, out).map_err(io(out))?;
        let data_shown = data.display().to_string();
        if real == data_real {
            return Err(Refused::IsData {
                out: shown,
                data: data_shown,
            });
        }
        if real.starts_with(&data_real) {
            return Err(Refused::InsideData {
                out: shown,
                data: data_shown,
            });
        }
        if data_real.starts_with(&real) {
            return Err(Refused::ContainsData {
                out: shown,
                data: data_shown,
            });
        }
        if cwd_real.starts_with(&real) {
            return Err(Refused::ContainsCwd { out: shown });
        }
        let previous = match std::fs::symlink_metadata(&real) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io(out)(e)),
            Ok(meta) if !meta.is_dir() => return Err(Refused::NotAFolder { out: shown }),
            Ok(_) => {
                let empty = std::fs::read_dir(&real).map_err(io(out))?.next().is_none();
                if empty {
                    None
                } else {
                    let manifest =
                        Manifest::read(&real).ok_or(Refused::NotABuild { out: shown.clone() })?;
                    if let Some(what) = foreign(&real, &manifest) {
                        return Err(Refused::Foreign { out: shown, what });
                    }
                    Some(manifest)
                }
            }
        };
        let target = Target {
            shown: out.to_path_buf(),
            real,
            previous,
        };
        target.remove_dead_stages();
        Ok(target)
    }

    /// OUT as the user wrote it.
    pub fn shown(&self) -> &Path {
        &self.shown
    }

    /// The folder OUT's stages and swaps happen in.
    fn parent(&self) -> &Path {
        self.real.parent().unwrap_or(Path::new("/"))
    }

    /// OUT's own name, for the names of its stages.
    fn name(&self) -> String {
        self.real
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "site".to_owned())
    }

    /// Creates an empty stage beside OUT to write the build into.
    pub fn stage(&self, interrupted: Arc<AtomicBool>) -> std::io::Result<Stage<'_>> {
        std::fs::create_dir_all(self.parent())?;
        let dir = self
            .parent()
            .join(format!(".{}.tmp-{}", self.name(), std::process::id()));
        if dir.join(STAGE_MARK).exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir(&dir)?;
        let stage = Stage {
            target: self,
            dir,
            files: Mutex::new(Vec::new()),
            keys: Mutex::new(Vec::new()),
            previous: self
                .previous
                .as_ref()
                .map(|m| m.files.iter().map(|(k, v)| (k.as_str(), v)).collect())
                .unwrap_or_default(),
            previous_keys: self
                .previous
                .as_ref()
                .map(|m| {
                    m.keys
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str()))
                        .collect()
                })
                .unwrap_or_default(),
            interrupted,
            committed: false,
        };
        std::fs::write(stage.dir.join(STAGE_MARK), b"")?;
        Ok(stage)
    }

    /// Removes stages (`.{OUT}.tmp-{pid}`) of builds that were killed: those
    /// Vestnik marked as its own and whose process is gone.
    fn remove_dead_stages(&self) {
        let prefix = format!(".{}.tmp-", self.name());
        let Ok(dir) = std::fs::read_dir(self.parent()) else {
            return;
        };
        for entry in dir.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = name.strip_prefix(&prefix) else {
                continue;
            };
            let alive = Path::new("/proc").join(pid).exists();
            let path = entry.path();
            if alive || pid.parse::<u32>().is_err() {
                continue;
            }
            if path.join(STAGE_MARK).is_file() {
                match std::fs::remove_dir_all(&path) {
                    Ok(()) => {
                        tracing::info!("removed {} left by a build that stopped", path.display())
                    }
                    Err(e) => tracing::warn!("cannot remove {}: {e}", path.display()),
                }
            } else if std::fs::remove_dir(&path).is_ok() {
                // A build killed between creating its stage and marking it
                // leaves it empty; rmdir removes only an empty folder, so
                // nothing of anyone's can go with it.
                tracing::info!(
                    "removed empty {} left by a build that stopped",
                    path.display()
                );
            }
        }
    }
}

/// The first thing in `out` that `manifest` does not account for: a file it
/// does not list, or a folder holding none of its files.
fn foreign(out: &Path, manifest: &Manifest) -> Option<String> {
    let mut folders = std::collections::HashSet::new();
    for rel in manifest.files.keys() {
        let mut p = Path::new(rel.as_str());
        while let Some(parent) = p.parent().filter(|p| !p.as_os_str().is_empty()) {
            folders.insert(parent.to_path_buf());
            p = parent;
        }
    }
    let walk = walkdir::WalkDir::new(out).min_depth(1).follow_links(false);
    for entry in walk {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => return Some(format!("an unreadable path ({e})")),
        };
        let rel = entry.path().strip_prefix(out).unwrap_or(entry.path());
        let known = if entry.file_type().is_dir() {
            folders.contains(rel)
        } else {
            rel == Path::new(MANIFEST)
                || (entry.file_type().is_file()
                    && rel.to_str().is_some_and(|r| manifest.files.contains_key(r)))
        };
        if !known {
            return Some(entry.path().display().to_string());
        }
    }
    None
}

/// `path` made absolute against `cwd`, with symlinks resolved in the part
/// that exists and `.`/`..` applied to the part that does not yet.
fn resolve(cwd: &Path, path: &Path) -> std::io::Result<PathBuf> {
    let abs = cwd.join(path);
    let mut existing = abs.as_path();
    let mut rest = Vec::new();
    loop {
        match std::fs::canonicalize(existing) {
            Ok(mut real) => {
                for part in rest.iter().rev() {
                    match part {
                        Component::ParentDir => {
                            real.pop();
                        }
                        Component::Normal(name) => real.push(name),
                        _ => {}
                    }
                }
                return Ok(real);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // A dangling symlink exists but cannot be resolved.
                if std::fs::symlink_metadata(existing).is_ok() {
                    return Err(std::io::Error::other(
                        "it is a symbolic link to nothing; remove it or give another folder",
                    ));
                }
                let Some(last) = existing.components().next_back() else {
                    return Err(e);
                };
                rest.push(last);
                existing = existing.parent().ok_or(e)?;
            }
            Err(e) => return Err(e),
        }
    }
}

/// What writing one file did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// New or changed bytes were written.
    Wrote,
    /// The bytes equal the previous build's: that file was linked, keeping its mtime.
    Kept,
}

/// A build being written beside OUT. Dropped uncommitted (an error, a
/// panic, an interruption), it removes itself.
pub struct Stage<'a> {
    target: &'a Target,
    dir: PathBuf,
    files: Mutex<Vec<(String, FileRecord)>>,
    keys: Mutex<Vec<(String, String)>>,
    previous: HashMap<&'a str, &'a FileRecord>,
    previous_keys: HashMap<&'a str, &'a str>,
    interrupted: Arc<AtomicBool>,
    committed: bool,
}

impl Stage<'_> {
    /// Writes `bytes` as the file `rel` (`/`-separated, relative to OUT), or
    /// links the previous build's copy when its bytes are the same. Fails
    /// with [`std::io::ErrorKind::Interrupted`] once the build was interrupted.
    pub fn write(&self, rel: &str, bytes: &[u8]) -> std::io::Result<Written> {
        self.check_interrupted()?;
        let mut record = FileRecord {
            size: bytes.len() as u64,
            sha256: crate::text::hex(&Sha256::digest(bytes)),
            mtime_ns: None,
            ino: None,
        };
        let path = self.dir.join(rel);
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder)?;
        }
        let kept = self
            .previous
            .get(rel)
            .filter(|r| r.same_bytes(&record))
            .and_then(|r| self.intact(rel, r))
            .filter(|_| std::fs::hard_link(self.target.real.join(rel), &path).is_ok());
        let outcome = if let Some((mtime, ino)) = kept {
            (record.mtime_ns, record.ino) = (Some(mtime), Some(ino));
            Written::Kept
        } else {
            let mut file = std::fs::File::create(&path)?;
            std::io::Write::write_all(&mut file, bytes)?;
            let (mtime, ino) = stamp(&file.metadata()?);
            (record.mtime_ns, record.ino) = (Some(mtime), Some(ino));
            Written::Wrote
        };
        self.lock_files().push((rel.to_owned(), record));
        Ok(outcome)
    }

    /// Links the previous build's group of files `rels` (a page first, then
    /// its siblings; those the previous build has) when the previous build
    /// recorded the same input `key` for the group and every file is still
    /// as it wrote it. Returns the sizes of the files linked, or `None` when
    /// the group must be rendered and written: then nothing was linked.
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
        if let Some(folder) = self.dir.join(first).parent() {
            std::fs::create_dir_all(folder)?;
        }
        for (i, (rel, _, _)) in group.iter().enumerate() {
            if std::fs::hard_link(self.target.real.join(rel), self.dir.join(rel)).is_err() {
                // Undo, so the caller writes into a clean place.
                for (rel, _, _) in &group[..i] {
                    std::fs::remove_file(self.dir.join(rel))?;
                }
                return Ok(None);
            }
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
        let path = self.target.real.join(rel);
        let meta = std::fs::symlink_metadata(&path).ok()?;
        if !meta.is_file() || meta.len() != record.size {
            return None;
        }
        let now = stamp(&meta);
        if (record.mtime_ns, record.ino) == (Some(now.0), Some(now.1)) {
            return Some(now);
        }
        let digest = crate::file::sha256(&path).ok()?;
        (crate::text::hex(&digest) == record.sha256).then_some(now)
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

    /// The path of `rel` inside the stage (to set a copied file's mtime).
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

    /// Writes the manifest and puts the stage in OUT's place: one atomic
    /// exchange where the filesystem has it, else two renames. The previous
    /// build's files are then removed, and nothing else.
    pub fn commit(mut self) -> std::io::Result<()> {
        let manifest = Manifest {
            generator: "vestnik".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            files: std::mem::take(&mut *self.lock_files())
                .into_iter()
                .collect(),
            keys: std::mem::take(&mut *self.keys.lock().unwrap_or_else(|e| e.into_inner()))
                .into_iter()
                .collect(),
        };
        let clock = std::time::Instant::now();
        let json = serde_json::to_vec(&manifest).map_err(std::io::Error::other)?;
        std::fs::write(self.dir.join(MANIFEST), json)?;
        tracing::debug!("manifest written in {:.2} s", clock.elapsed().as_secs_f64());
        std::fs::remove_file(self.dir.join(STAGE_MARK))?;
        let out = &self.target.real;
        if self.target.previous.is_none() {
            // OUT is missing or an empty folder, which rename(2) replaces.
            std::fs::rename(&self.dir, out)?;
        } else {
            exchange(&self.dir, out)?;
            tracing::debug!("swapped in at {:.2} s", clock.elapsed().as_secs_f64());
            // The stage's path now holds the previous build.
            remove_build(&self.dir, self.target.previous.as_ref());
            tracing::debug!(
                "previous build removed at {:.2} s",
                clock.elapsed().as_secs_f64()
            );
        }
        self.committed = true;
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

impl Target {
    /// `error` from writing this build, made to name the filesystem when it
    /// is full (ENOSPC) or over quota (EDQUOT): which one, where it is
    /// mounted and what is free. Any other error is returned as it is.
    /// Call it once the stage is dropped, so the space it held is counted
    /// as free again.
    pub fn explain(&self, error: std::io::Error) -> std::io::Error {
        use rustix::io::Errno;
        let what = match Errno::from_io_error(&error) {
            Some(Errno::NOSPC) => "no space left",
            Some(Errno::DQUOT) => "disk quota exceeded",
            _ => return error,
        };
        let fs = Filesystem::holding(self.parent())
            .map(|fs| format!(" ({fs})"))
            .unwrap_or_default();
        std::io::Error::new(
            error.kind(),
            format!(
                "{what} on the filesystem holding {}{fs}; free some space there or build into a folder on another filesystem",
                self.shown.display()
            ),
        )
    }
}

/// The filesystem a path lies on, as `df` would show it.
struct Filesystem {
    /// From `/proc/self/mountinfo`: type, source and mount point, when found.
    mount: Option<(String, String, String)>,
    /// Bytes free to unprivileged users, and the size.
    free: u64,
    total: u64,
    /// Inodes (files) free, where the filesystem counts them.
    free_files: u64,
}

impl Filesystem {
    fn holding(path: &Path) -> Option<Filesystem> {
        let vfs = rustix::fs::statvfs(path).ok()?;
        let dev = rustix::fs::stat(path).ok()?.st_dev;
        let id = format!("{}:{}", rustix::fs::major(dev), rustix::fs::minor(dev));
        let real = std::fs::canonicalize(path).ok()?;
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        Some(Filesystem {
            mount: mount_of(&mountinfo, &id, &real),
            free: vfs.f_bavail.saturating_mul(vfs.f_frsize),
            total: vfs.f_blocks.saturating_mul(vfs.f_frsize),
            free_files: if vfs.f_files == 0 {
                u64::MAX
            } else {
                vfs.f_ffree
            },
        })
    }
}

impl std::fmt::Display for Filesystem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.mount {
            // A tmpfs's source is "tmpfs" too: name it once.
            Some((fstype, source, point)) if source == fstype || source == "none" => {
                write!(f, "{fstype} mounted at {point}, ")?
            }
            Some((fstype, source, point)) => write!(f, "{fstype} {source} mounted at {point}, ")?,
            None => {}
        }
        write!(f, "{} free of {}", size(self.free), size(self.total))?;
        if self.free_files == 0 {
            write!(f, ", and no inodes (files) left")?;
        }
        Ok(())
    }
}

/// Type, source and mount point of the mount of device `id` ("major:minor")
/// whose mount point is the longest prefix of `path`, from the text of
/// `/proc/self/mountinfo` (proc(5): `id parent major:minor root point
/// options [optional...] - type source super-options`).
fn mount_of(mountinfo: &str, id: &str, path: &Path) -> Option<(String, String, String)> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (head, tail) = line.split_once(" - ")?;
            let head: Vec<&str> = head.split(' ').collect();
            let mut tail = tail.split(' ');
            let (fstype, source) = (tail.next()?, tail.next()?);
            let point = unescape(head.get(4)?);
            (head.get(2) == Some(&id) && path.starts_with(&point))
                .then(|| (fstype.to_owned(), unescape(source), point))
        })
        .max_by_key(|(_, _, point)| point.len())
}

/// Undoes mountinfo's octal escapes (`\040` for a space, `\134` for a backslash).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                out.push(d.iter().fold(0u8, |n, b| n.wrapping_mul(8) + (b - b'0')));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Bytes for a person: "812 KiB", "3.5 MiB", "41.0 GiB".
fn size(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    let b = bytes as f64;
    if b < KIB * KIB {
        format!("{:.0} KiB", b / KIB)
    } else if b < KIB * KIB * KIB {
        format!("{:.1} MiB", b / (KIB * KIB))
    } else {
        format!("{:.1} GiB", b / (KIB * KIB * KIB))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_normalizes_what_does_not_exist_yet() {
        let dir = tempfile::tempdir().unwrap();
        let real = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir(real.join("a")).unwrap();
        let cases = [
            ("a", real.join("a")),
            ("a/", real.join("a")),
            ("./a/../b/c", real.join("b/c")),
            ("new/../x", real.join("x")),
            ("a/new/./y/", real.join("a/new/y")),
        ];
        for (given, want) in cases {
            assert_eq!(resolve(&real, Path::new(given)).unwrap(), want, "{given}");
        }
        std::os::unix::fs::symlink(real.join("a"), real.join("link")).unwrap();
        assert_eq!(
            resolve(&real, Path::new("link/z")).unwrap(),
            real.join("a/z")
        );
        std::os::unix::fs::symlink(real.join("none"), real.join("dangling")).unwrap();
        assert!(resolve(&real, Path::new("dangling")).is_err());
    }

    #[test]
    fn the_mount_holding_a_path_is_found_in_mountinfo() {
        let mountinfo = "\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
40 22 0:35 / /tmp rw,nosuid shared:20 - tmpfs tmpfs rw,size=1024k
41 40 0:36 / /tmp/my\\040out rw - tmpfs none rw,size=4096k
42 22 254:0 /srv /mnt/srv rw - ext4 /dev/vda rw
";
        let found = |id, path: &str| mount_of(mountinfo, id, Path::new(path));
        assert_eq!(
            found("0:36", "/tmp/my out/site"),
            Some(("tmpfs".into(), "none".into(), "/tmp/my out".into()))
        );
        assert_eq!(
            found("0:35", "/tmp/x"),
            Some(("tmpfs".into(), "tmpfs".into(), "/tmp".into()))
        );
        // The same device mounted twice: the mount point the path lies under.
        assert_eq!(found("254:0", "/mnt/srv/out").unwrap().2, "/mnt/srv");
        assert_eq!(found("254:0", "/home/x").unwrap().2, "/");
        assert_eq!(found("0:99", "/tmp"), None);
        assert_eq!(size(4 << 20), "4.0 MiB");
        assert_eq!(size(812 * 1024), "812 KiB");
    }

    #[test]
    fn foreign_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        std::fs::create_dir_all(out.join("feeds")).unwrap();
        std::fs::write(out.join("feeds/all.rss"), "x").unwrap();
        std::fs::write(out.join(MANIFEST), "{}").unwrap();
        let mut manifest = Manifest::default();
        manifest.files.insert(
            "feeds/all.rss".into(),
            FileRecord {
                size: 1,
                sha256: String::new(),
                mtime_ns: None,
                ino: None,
            },
        );
        assert_eq!(foreign(out, &manifest), None);
        std::fs::create_dir(out.join("notes")).unwrap();
        assert_eq!(
            foreign(out, &manifest),
            Some(out.join("notes").display().to_string())
        );
        std::fs::remove_dir(out.join("notes")).unwrap();
        std::fs::write(out.join("feeds/mine.txt"), "x").unwrap();
        assert_eq!(
            foreign(out, &manifest),
            Some(out.join("feeds/mine.txt").display().to_string())
        );
    }

    #[test]
    fn stages_of_dead_builds_go_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        // A pid above the kernel's largest (4,194,304) never runs.
        let dead = |what: &str| dir.path().join(format!(".site.tmp-99999999{what}"));
        let marked = dead("1");
        std::fs::create_dir(&marked).unwrap();
        std::fs::write(marked.join(STAGE_MARK), "").unwrap();
        std::fs::write(marked.join("index.html"), "half").unwrap();
        // Killed between making the stage and marking it.
        let empty = dead("2");
        std::fs::create_dir(&empty).unwrap();
        // Not marked and not empty: not known to be Vestnik's.
        let unknown = dead("3");
        std::fs::create_dir(&unknown).unwrap();
        std::fs::write(unknown.join("notes.txt"), "mine").unwrap();
        Target::prepare(&data, &dir.path().join("site")).unwrap();
        assert!(!marked.exists() && !empty.exists());
        assert_eq!(
            std::fs::read_to_string(unknown.join("notes.txt")).unwrap(),
            "mine"
        );
    }

    /// A build of `files` (path, bytes, input key) into `out`, each with its key.
    fn build(data: &Path, out: &Path, files: &[(&str, &str, &str)]) -> Vec<Option<Vec<u64>>> {
        let target = Target::prepare(data, out).unwrap();
        let stage = target.stage(Arc::new(AtomicBool::new(false))).unwrap();
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
        stage.commit().unwrap();
        reused
    }

    #[test]
    fn a_group_is_reused_only_under_its_key_and_while_intact() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let out = dir.path().join("out");
        let ino = |rel: &str| {
            use std::os::unix::fs::MetadataExt as _;
            std::fs::metadata(out.join(rel)).unwrap().ino()
        };
        let first = build(
            &data,
            &out,
            &[("a/index.html", "A", "k1"), ("b.rss", "B", "k2")],
        );
        assert_eq!(first, [None, None]);
        let (a, b) = (ino("a/index.html"), ino("b.rss"));

        // Same keys: linked, nothing written; a key that differs renders.
        let again = build(
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
        let repaired = build(&data, &out, &[("a/index.html", "A", "k1")]);
        assert_eq!(repaired, [None]);
        assert_eq!(std::fs::read(&page).unwrap(), b"A");
        // And b.rss, no longer built, was removed with its sibling.
        assert!(!out.join("b.rss").exists() && !out.join("b.rss.gz").exists());
    }
}
