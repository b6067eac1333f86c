//! `vestnik build`: the whole site as static files, for any web server, object
//! store or CDN.
//!
//! Export writes the very bytes `serve` answers with, from the same
//! [`Snapshot`], plus `.gz` and `.br` siblings for servers that send
//! precompressed files (nginx `gzip_static`/`brotli_static`). It writes into a
//! stage beside OUT and puts it in place from there ([`crate::out_dir`]), so
//! a web server never sees a half-written file, a stopped build is finished
//! or undone, and nothing Vestnik did not write is lost.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use rayon::prelude::*;

use crate::inputs::Keys;
use crate::out_dir::fresh::Fresh;
use crate::out_dir::{Commit, Stage, Target, Written};
use crate::snapshot::{Encoding, Item, Resource, Snapshot};

/// What an export wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Resources exported (each with its compressed siblings).
    pub resources: usize,
    /// Files written, siblings included.
    pub files: usize,
    /// Bytes of every file of the build, kept ones included.
    pub bytes: u64,
    /// Files whose bytes equal the previous build's, kept instead of written.
    pub kept: usize,
    /// Files of the previous build that this one no longer has.
    pub removed: usize,
}

impl Stats {
    fn count(&mut self, written: Written, len: usize) {
        self.files += 1;
        self.bytes += len as u64;
        if written == Written::Kept {
            self.kept += 1;
        }
    }
}

impl std::ops::Add for Stats {
    type Output = Stats;

    fn add(self, other: Stats) -> Stats {
        Stats {
            resources: self.resources + other.resources,
            files: self.files + other.files,
            bytes: self.bytes + other.bytes,
            kept: self.kept + other.kept,
            removed: self.removed + other.removed,
        }
    }
}

/// Writes every resource `snapshot` lists ([`Snapshot::items`]: the
/// standard ones, every entry's page, every later page of the feeds and of
/// the home and section pages, the sitemaps) to its file ([`Key::file`])
/// in a stage beside `target`, copies the servable files of `DATA/media/`
/// of `media_from` (see [`crate::media::list`]) so the enclosure URLs of
/// the exported feeds resolve, and puts the stage in place. Files whose bytes
/// equal the previous build's keep their inode and mtime, and a page whose
/// input key ([`crate::inputs`]) the previous build recorded is kept
/// without being rendered. Once `interrupted` is set the build stops,
/// and the stage is removed. The build is put in place as `how` says, and
/// its manifest records `inputs` ([`crate::out_dir::fresh`]) when given.
pub fn export(
    snapshot: &Snapshot,
    media_from: Option<&Path>,
    target: &Target,
    how: How,
) -> std::io::Result<Stats> {
    // Explained once the stage is gone, so a full disk's free space counts
    // what the unfinished build held.
    write_build(snapshot, media_from, target, how).map_err(|e| target.explain(e))
}

/// How an export is put in place.
#[derive(Debug, Clone)]
pub struct How {
    /// Whole or in place ([`Commit`]).
    pub commit: Commit,
    /// The digest of what the build read, for the next build's check.
    pub inputs: Option<String>,
    /// Set by a signal: stop between two files.
    pub interrupted: Arc<AtomicBool>,
}

fn write_build(
    snapshot: &Snapshot,
    media_from: Option<&Path>,
    target: &Target,
    how: How,
) -> std::io::Result<Stats> {
    let stage = target.stage(how.interrupted, how.commit)?;
    let clock = std::time::Instant::now();
    let keys = Keys::new(&snapshot.site, crate::inputs::program_digest());
    let keys = keys.as_ref();
    tracing::debug!("input keys in {:.2} s", clock.elapsed().as_secs_f64());
    let items = snapshot.items();
    let bar = crate::progress::bar(items.len(), "{bar:40} {pos}/{len} files");
    let result = (|| -> std::io::Result<Stats> {
        // Rendering, compressing and writing one file is independent of
        // every other, so every item runs on rayon's pool.
        let mut stats = total(items.par_iter().map(|item| {
            let stats = match item.key.file() {
                Some(file) => {
                    let input = keys.and_then(|k| item.input(k));
                    let write = Write {
                        file: &file,
                        item,
                        keys,
                    };
                    write_keyed(&stage, &write, input, || item.render(snapshot))
                }
                None => Ok(Stats::default()),
            };
            bar.inc(1);
            stats
        }))?;
        if let Some(data) = media_from {
            copy_media(data, &stage, &mut stats)?;
        }
        Ok(stats)
    })();
    bar.finish_and_clear();
    tracing::debug!("staged in {:.2} s", clock.elapsed().as_secs_f64());
    let mut stats = result?;
    stats.removed = stage.removed();
    let fresh = how
        .inputs
        .and_then(|inputs| Fresh::new(inputs, &snapshot.site, stats.resources));
    stage.commit(fresh)?;
    Ok(stats)
}

/// Copies every servable media file, as it is (no compressed siblings:
/// images and archives are compressed already).
fn copy_media(data_dir: &Path, out: &Stage<'_>, stats: &mut Stats) -> std::io::Result<()> {
    for (rel, _) in crate::media::list(data_dir) {
        // Read through the same checks as serving, so export copies exactly
        // what `serve` would send.
        let Ok((bytes, meta)) = crate::media::read(data_dir, &rel) else {
            continue;
        };
        let rel = format!("{}/{rel}", crate::urls::MEDIA_DIR);
        let written = out.write(&rel, &bytes)?;
        // Keep the source's mtime, so a web server's Last-Modified (and
        // nginx's ETag) for the copy stay the same across builds.
        if let (Written::Wrote, Ok(mtime)) = (written, meta.modified()) {
            std::fs::File::options()
                .write(true)
                .open(out.path(&rel))?
                .set_modified(mtime)?;
        }
        stats.count(written, bytes.len());
        stats.resources += 1;
    }
    Ok(())
}

/// The sum of what parallel writes wrote, or the first error.
fn total(writes: impl ParallelIterator<Item = std::io::Result<Stats>>) -> std::io::Result<Stats> {
    writes.try_reduce(Stats::default, |a, b| Ok(a + b))
}

/// Writes the resource `render` makes into `file` in the stage, unless the
/// previous build recorded the same input key (`input`) for that file: then
/// its files are kept, and nothing is rendered.
fn write_keyed(
    out: &Stage<'_>,
    write: &Write<'_>,
    input: Option<String>,
    render: impl FnOnce() -> Option<Arc<Resource>>,
) -> std::io::Result<Stats> {
    let file = write.file;
    let Some(input) = input else {
        return render().map_or(Ok(Stats::default()), |r| write_at(out, write, &r));
    };
    let rels = ENCODINGS.map(|e| format!("{file}{}", e.file_suffix().unwrap_or("")));
    if let Some(sizes) = out.reuse(&rels.each_ref().map(String::as_str), &input)? {
        return Ok(Stats {
            resources: 1,
            files: sizes.len(),
            bytes: sizes.iter().sum(),
            kept: sizes.len(),
            removed: 0,
        });
    }
    let Some(resource) = render() else {
        return Ok(Stats::default());
    };
    let stats = write_at(out, write, &resource)?;
    out.record_key(file, &input);
    Ok(stats)
}

/// The files of a resource: the identity body first, then its siblings.
const ENCODINGS: [Encoding; 3] = [Encoding::Identity, Encoding::Gzip, Encoding::Brotli];

/// Where and how one resource is written.
struct Write<'a> {
    /// Its file, relative to OUT.
    file: &'a str,
    /// What it is: whether it gets a `.gz` and a `.br` sibling, and how
    /// they are compressed ([`Item::has_siblings`], [`Item::compress`]).
    item: &'a Item<'a>,
    /// The site's input keys, for the siblings' key.
    keys: Option<&'a Keys>,
}

/// Writes a resource into its file in the stage, and when it has siblings,
/// one per compressed variant. A resource not compressed yet is compressed
/// here, unless its identity bytes are those the previous build compressed
/// (the siblings' input key, [`Keys::siblings`]): then its siblings are
/// kept.
fn write_at(out: &Stage<'_>, write: &Write<'_>, r: &Resource) -> std::io::Result<Stats> {
    let file = write.file;
    let mut stats = Stats {
        resources: 1,
        ..Stats::default()
    };
    let rel = |encoding: Encoding| format!("{file}{}", encoding.file_suffix().unwrap_or(""));
    let siblings = |r: &Resource, stats: &mut Stats| -> std::io::Result<()> {
        for encoding in [Encoding::Gzip, Encoding::Brotli] {
            if let Some(variant) = r.variant(encoding) {
                stats.count(
                    out.write(&rel(encoding), &variant.body)?,
                    variant.body.len(),
                );
            }
        }
        Ok(())
    };
    let Some(identity) = r.variant(Encoding::Identity) else {
        return Ok(stats);
    };
    stats.count(out.write(file, &identity.body)?, identity.body.len());
    if !write.item.has_siblings() {
        return Ok(stats);
    }
    if !r.pending() {
        siblings(r, &mut stats)?;
        return Ok(stats);
    }
    let Some(key) = write.keys.map(|k| k.siblings(&identity.body)) else {
        siblings(&write.item.compress(r), &mut stats)?;
        return Ok(stats);
    };
    let (gz, br) = (rel(Encoding::Gzip), rel(Encoding::Brotli));
    if let Some(sizes) = out.reuse(&[&gz, &br], &key)? {
        stats.files += sizes.len();
        stats.bytes += sizes.iter().sum::<u64>();
        stats.kept += sizes.len();
        return Ok(stats);
    }
    siblings(&write.item.compress(r), &mut stats)?;
    out.record_key(&gz, &key);
    Ok(stats)
}
