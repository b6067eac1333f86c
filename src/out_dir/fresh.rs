//! Whether OUT is already the build of DATA as it is now, so a rebuild with
//! nothing changed loads, renders and writes nothing.
//!
//! A build records in its manifest a [`Fresh`]: a digest of everything it
//! read, taken from `stat` alone ([`inputs`]), and the span of time its
//! output holds for (from its cutoff until the schedule's next change: an
//! entry due, an entry expiring, an entry leaving the news sitemap's
//! window). The next build is skipped ([`Target::fresh`]) when the digest
//! is the same, its cutoff lies in that span, and every file of OUT still
//! has the size, mtime and inode recorded.
//!
//! The digest errs on the side of change: it covers every path under DATA
//! with its type, size, mtime, ctime and inode (and for a symbolic link,
//! its target and the target's), DATA as given, `--base-url`, the version,
//! and the running executable's identity. An edit, a touch, a new or
//! removed file, a rename or a new binary each change it; so does a
//! `chmod`, which then costs a full rebuild that writes nothing.

use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use chrono::{DateTime, FixedOffset, Utc};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Manifest, Target};
use crate::model::Site;

/// What a build read and how long its output holds, kept in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fresh {
    /// The digest of [`inputs`] when the build ran.
    pub inputs: String,
    /// The build's cutoff.
    pub from: DateTime<Utc>,
    /// The first time after `from` at which the output changes by the
    /// clock alone; `None` when nothing is scheduled to.
    pub until: Option<DateTime<Utc>>,
    /// Resources the build exported, for its summary line.
    pub resources: usize,
    /// The problems the build reported, as it printed them.
    pub problems: Vec<String>,
    /// The earliest due time of a scheduled entry.
    pub next_due: Option<DateTime<FixedOffset>>,
    /// The schedule's next change.
    pub next_change: Option<DateTime<Utc>>,
}

impl Fresh {
    /// The record of a build of `site` (built at its cutoff) from inputs
    /// with digest `inputs`, which exported `resources`.
    pub fn new(inputs: String, site: &Site, resources: usize) -> Option<Fresh> {
        let from = site.schedule.cutoff?;
        let until = if site.config.preview {
            // A preview marks what is not public yet at exactly its cutoff.
            Some(from + chrono::Duration::nanoseconds(1))
        } else {
            site.schedule.next_change
        };
        Some(Fresh {
            inputs,
            from,
            until,
            resources,
            problems: site.diagnostics.iter().map(|d| d.to_string()).collect(),
            next_due: site.schedule.next_due,
            next_change: site.schedule.next_change,
        })
    }

    /// Whether the output of a build at `cutoff` is the recorded one.
    fn holds_at(&self, cutoff: DateTime<Utc>) -> bool {
        self.from <= cutoff && self.until.is_none_or(|until| cutoff < until)
    }
}

/// The digest of everything a build of `data` with `base_url` reads, from
/// `stat`; `None` when any of it cannot be read (then nothing is skipped).
pub fn inputs(data: &Path, base_url: Option<&url::Url>) -> Option<String> {
    let mut h = Sha256::new();
    h.update(env!("CARGO_PKG_VERSION"));
    h.update([0]);
    let exe = std::fs::canonicalize(std::env::current_exe().ok()?).ok()?;
    h.update(exe.as_os_str().as_encoded_bytes());
    stat_into(&mut h, &std::fs::metadata(&exe).ok()?);
    h.update(data.as_os_str().as_encoded_bytes());
    h.update([0]);
    h.update(base_url.map(url::Url::as_str).unwrap_or_default());
    h.update([0]);
    // The walk (directory reads) goes in order; the stats, one per path,
    // are done in parallel and hashed in walk order. With a cold inode
    // cache they are reads from disk, and two at a time keep it busier.
    let paths = walkdir::WalkDir::new(data)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .ok()?;
    let stats: Vec<Option<Stat>> = paths.par_iter().map(Stat::of).collect();
    for (entry, stat) in paths.iter().zip(stats) {
        let stat = stat?;
        h.update(entry.path().as_os_str().as_encoded_bytes());
        h.update([0]);
        stat_into(&mut h, &stat.meta);
        if let Some((target, target_meta)) = stat.link {
            h.update(target.as_os_str().as_encoded_bytes());
            h.update([0]);
            // A link to nothing is read as missing by the loader: its
            // target's absence is the input.
            if let Some(meta) = target_meta {
                stat_into(&mut h, &meta);
            }
        }
    }
    Some(crate::text::hex(&h.finalize()))
}

/// What the digest reads of one path: its own metadata and, for a link,
/// where it points and that target's metadata if there is one.
struct Stat {
    meta: std::fs::Metadata,
    link: Option<(std::path::PathBuf, Option<std::fs::Metadata>)>,
}

impl Stat {
    /// `None` when the path cannot be read (then nothing is skipped).
    fn of(entry: &walkdir::DirEntry) -> Option<Stat> {
        let meta = entry.metadata().ok()?;
        let link = if entry.path_is_symlink() {
            let target = std::fs::read_link(entry.path()).ok()?;
            Some((target, std::fs::metadata(entry.path()).ok()))
        } else {
            None
        };
        Some(Stat { meta, link })
    }
}

/// Type, size, mtime, ctime and inode into the digest.
fn stat_into(h: &mut Sha256, meta: &std::fs::Metadata) {
    for n in [
        meta.mode() as i64,
        meta.size() as i64,
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec(),
        meta.ino() as i64,
        meta.dev() as i64,
    ] {
        h.update(n.to_le_bytes());
    }
}

impl Target {
    /// The earlier build in OUT when it is already what a build at `cutoff`
    /// from inputs with digest `inputs` would write: same inputs, a cutoff
    /// its output holds at, and every file as it was written.
    pub fn fresh(&self, inputs: &str, cutoff: DateTime<Utc>) -> Option<(&Manifest, &Fresh)> {
        let manifest = self.previous()?;
        let fresh = manifest.fresh.as_ref()?;
        if fresh.inputs != inputs || !fresh.holds_at(cutoff) {
            return None;
        }
        let out = &self.real;
        let intact = manifest.files.par_iter().all(|(rel, record)| {
            std::fs::symlink_metadata(out.join(rel)).is_ok_and(|meta| record.stat_matches(&meta))
        });
        intact.then_some((manifest, fresh))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_change_under_data_changes_the_inputs() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(data.join("entries")).unwrap();
        std::fs::write(data.join("site.toml"), "title = 'x'\n").unwrap();
        std::fs::write(data.join("entries/a.md"), "A").unwrap();
        let now = || inputs(&data, None).unwrap();
        let first = now();
        assert_eq!(now(), first, "the same DATA gave another digest");
        let mut seen = vec![first];
        let mut differs = |what: &str| {
            let d = now();
            assert!(!seen.contains(&d), "{what} left the digest as it was");
            seen.push(d);
        };
        // Same size, mtime put back: the ctime and inode still tell.
        let file = data.join("entries/a.md");
        let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();
        std::fs::write(data.join("entries/b.md"), "B").unwrap();
        std::fs::rename(data.join("entries/b.md"), &file).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        differs("replacing a file, same size and mtime");
        std::fs::create_dir(data.join("media")).unwrap();
        differs("a new folder");
        std::fs::write(data.join("media/p.jpg"), "jpg").unwrap();
        differs("a new media file");
        std::os::unix::fs::symlink("../site.toml", data.join("media/link")).unwrap();
        differs("a new link");
        std::fs::write(data.join("site.toml"), "title = 'y'\n").unwrap();
        differs("the linked file's edit");
        std::fs::remove_file(data.join("media/p.jpg")).unwrap();
        differs("a removed file");
        assert_ne!(
            inputs(&data, Some(&url::Url::parse("https://a.example/").unwrap())),
            inputs(&data, None),
            "--base-url is not an input"
        );
        assert_eq!(inputs(&dir.path().join("missing"), None), None);
    }

    #[test]
    fn a_record_holds_from_its_cutoff_until_the_next_change() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        let mut fresh = Fresh {
            inputs: String::new(),
            from: t("2026-12-01T10:00:00Z"),
            until: Some(t("2026-12-01T12:00:00Z")),
            resources: 0,
            problems: Vec::new(),
            next_due: None,
            next_change: None,
        };
        assert!(fresh.holds_at(t("2026-12-01T10:00:00Z")));
        assert!(fresh.holds_at(t("2026-12-01T11:59:59Z")));
        assert!(!fresh.holds_at(t("2026-12-01T12:00:00Z")));
        assert!(!fresh.holds_at(t("2026-12-01T09:59:59Z")));
        fresh.until = None;
        assert!(fresh.holds_at(t("2099-01-01T00:00:00Z")));
    }
}
