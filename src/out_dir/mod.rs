//! The output folder of `vestnik build`: which folders it may write to, the
//! manifest that marks a folder as an earlier build, and how a finished
//! build is put in place.
//!
//! An editor's files are the only copy of the news, so the rule is that a
//! build deletes nothing it did not write. [`Target::prepare`] refuses every
//! OUT but a missing folder, an empty one, or an earlier build whose every
//! file its [`Manifest`] lists; and always an OUT that is DATA, lies inside
//! it, contains it, or contains the current directory. The build is written
//! into a [`Stage`] beside OUT (named `.{OUT}.tmp-{pid}`), which removes
//! itself unless committed. A first build is renamed into place whole; a
//! rebuild renames only its changed files over the old ones, journaled so
//! that a build killed half way is finished by the next one, or, with
//! `--swap`, is staged whole and swapped in with one `renameat2` exchange
//! ([`stage`]).
//!
//! A file whose bytes equal the previous build's is kept instead of
//! written, so an unchanged file keeps its inode and mtime and `rsync` or a
//! CDN upload moves only what changed. A group of files (a page and its
//! `.gz` and `.br`) whose input key ([`crate::inputs`]) equals the one the
//! manifest recorded is kept without being rendered at all
//! ([`Stage::reuse`]). Either way the previous file is trusted only while
//! its size, mtime and inode are those the manifest recorded; otherwise its
//! bytes are hashed again, so a file changed in OUT since is never carried
//! over. And when nothing the build reads changed since the previous build
//! ([`fresh`]), nothing is loaded or rendered at all.

pub mod fresh;
mod space;
pub mod stage;

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

pub use stage::{Commit, Stage, Written};

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

    /// Whether `meta` (from `lstat`) is of the very file this records: a
    /// regular file of the recorded size, mtime and inode. Says nothing of
    /// its bytes when it is not.
    fn stat_matches(&self, meta: &std::fs::Metadata) -> bool {
        let (mtime, ino) = stamp(meta);
        meta.is_file()
            && meta.len() == self.size
            && (self.mtime_ns, self.ino) == (Some(mtime), Some(ino))
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
    /// What the build read, to tell the next one whether anything changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fresh: Option<fresh::Fresh>,
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
        // A stopped update is finished before OUT is looked at.
        remove_dead_stages(&real);
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

    /// Creates an empty stage beside OUT to write the build into, to be put
    /// in place as `commit` says; a first build is always put in whole.
    pub fn stage(
        &self,
        interrupted: Arc<AtomicBool>,
        commit: Commit,
    ) -> std::io::Result<Stage<'_>> {
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
            commit: if self.previous.is_some() {
                commit
            } else {
                Commit::Whole
            },
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

    /// The earlier build in OUT, if there is one.
    pub fn previous(&self) -> Option<&Manifest> {
        self.previous.as_ref()
    }
}

/// Removes the stages (`.{OUT}.tmp-{pid}`) beside `out` of builds that were
/// killed: those Vestnik marked as its own and whose process is gone. A
/// stage holding the journal of an in-place update is finished first
/// ([`stage::finish_stopped`]), so OUT is the complete new build.
fn remove_dead_stages(out: &Path) {
    let (Some(parent), Some(name)) = (out.parent(), out.file_name()) else {
        return;
    };
    let prefix = format!(".{}.tmp-", name.to_string_lossy());
    let Ok(dir) = std::fs::read_dir(parent) else {
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
            match stage::finish_stopped(&path, out) {
                Ok(true) => {
                    tracing::info!(
                        "finished the update of {} that a stopped build had begun",
                        out.display()
                    );
                    continue;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(
                        "cannot finish the update of {} from {}: {e}",
                        out.display(),
                        path.display()
                    );
                    continue;
                }
            }
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

/// The first thing in `out` (by path) that `manifest` does not account
/// for: a file it does not list, or a folder holding none of its files.
/// Each folder is read on rayon's pool; only the names are read, not stat.
fn foreign(out: &Path, manifest: &Manifest) -> Option<String> {
    use rayon::prelude::*;
    let mut folders = std::collections::HashSet::new();
    folders.insert(PathBuf::new());
    for rel in manifest.files.keys() {
        let mut p = Path::new(rel.as_str());
        while let Some(parent) = p.parent().filter(|p| !p.as_os_str().is_empty()) {
            if !folders.insert(parent.to_path_buf()) {
                break;
            }
            p = parent;
        }
    }
    let list: Vec<&PathBuf> = folders.iter().collect();
    list.par_iter()
        .filter_map(|folder| {
            let dir = out.join(folder);
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                // A folder of the manifest that is gone has nothing foreign.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
                Err(e) => return Some(format!("an unreadable path ({}: {e})", dir.display())),
            };
            entries
                .map(|entry| {
                    let entry = entry
                        .map_err(|e| format!("an unreadable path ({}: {e})", dir.display()))?;
                    let rel = folder.join(entry.file_name());
                    let kind = entry
                        .file_type()
                        .map_err(|e| format!("an unreadable path ({e})"))?;
                    let known = if kind.is_dir() {
                        folders.contains(&rel)
                    } else {
                        rel == Path::new(MANIFEST)
                            || (kind.is_file()
                                && rel.to_str().is_some_and(|r| manifest.files.contains_key(r)))
                    };
                    if known {
                        Ok(())
                    } else {
                        Err(out.join(&rel).display().to_string())
                    }
                })
                .filter_map(Result::err)
                .min()
        })
        .min()
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
}
