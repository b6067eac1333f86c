//! Compression: the codecs and their levels, and the worker thread that
//! adds gzip and brotli variants to a new snapshot's resources after it is
//! served, so an edit waits for rendering, never for compression.
//!
//! The worker only computes. What it finishes goes back to the reload
//! thread as [`Done`], and that thread installs it ([`install`]), since
//! only it stores snapshots.

use std::collections::HashSet;
use std::io::Write;
use std::sync::Arc;
use std::sync::mpsc::Sender;

use super::{Current, Key, Resource, Snapshot};

/// The gzip level of the pre-rendered resources.
pub const GZIP_LEVEL: u32 = 9;

/// The gzip level of resources rendered on the request path.
pub const ON_DEMAND_GZIP: u32 = 6;

/// The brotli quality of the pre-rendered resources (feeds, pages, OPML).
///
/// Measured on the shipped `data/`'s `all.rss` (95,780 bytes): gzip 9 gives
/// 21,175 bytes in 8 ms; brotli 9 18,626 bytes in 17 ms; brotli 10 17,069
/// in 59 ms; brotli 11 16,985 in 164 ms. Quality 10 and 11 switch to the
/// optimal-parsing encoder, which costs ten times as much CPU for another
/// 9%. A reload re-compresses every changed feed on a 2-core machine that
/// is serving at the same time, and most aggregators (Go's and Python's
/// HTTP clients among them) only ask for gzip, so 9 is the better trade.
pub const BROTLI_QUALITY: i32 = 9;

/// The brotli window of the pre-rendered resources: 2^22 bytes, 4 MiB.
pub const BROTLI_WINDOW: i32 = 22;

/// Bodies up to this size count as small for [`on_demand_brotli`].
const SMALL_BODY: usize = 64 * 1024;

/// gzip at the best level. The header carries no timestamp or name, so the
/// same input always gives the same bytes.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    gzip_at(data, GZIP_LEVEL)
}

/// gzip at `level` (0 to 9), deterministic like [`gzip`].
pub(super) fn gzip_at(data: &[u8], level: u32) -> Vec<u8> {
    let mut enc = flate2::GzBuilder::new().write(
        Vec::with_capacity(data.len() / 3),
        flate2::Compression::new(level),
    );
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

/// Brotli at [`BROTLI_QUALITY`] with a 4 MiB window, as
/// [`Resource::finish`] compresses.
pub fn brotli(data: &[u8]) -> Vec<u8> {
    brotli_at(data, BROTLI_QUALITY, BROTLI_WINDOW)
}

/// The brotli quality and window (log2 of its size) of a body of `len`
/// bytes rendered on the request path (entry pages, later feed pages,
/// bundles).
///
/// The encoder's set-up cost dominates small bodies: on a 5 KB entry page
/// quality 5 with a 4 MiB window takes ~0.6 ms, quality 4 with a window
/// fitted to the body ~0.1 ms, and gzip 6 ~0.06 ms. Quality 4 still beats
/// gzip on such pages, by ~3%; quality 5 by ~14%, for six times the time,
/// on pages of a few KB. Larger bodies (feed pages of ~150 KB) get quality 5
/// and the full window: ~5 ms, 7% smaller than gzip 6 on the shipped data.
pub fn on_demand_brotli(len: usize) -> (i32, i32) {
    if len <= SMALL_BODY {
        // The smallest power of two that holds the body, within brotli's
        // window range of 2^10 to 2^24 bytes.
        let fitted = len.max(1).next_power_of_two().trailing_zeros() as i32;
        (4, fitted.clamp(10, BROTLI_WINDOW))
    } else {
        (5, BROTLI_WINDOW)
    }
}

/// Brotli at `quality` with a window of 2^`lgwin` bytes.
pub(super) fn brotli_at(data: &[u8], quality: i32, lgwin: i32) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() / 4);
    let params = brotli::enc::BrotliEncoderParams {
        quality,
        lgwin,
        size_hint: data.len(),
        ..brotli::enc::BrotliEncoderParams::default()
    };
    let mut input = data;
    // Reading from a slice and writing into a Vec cannot fail.
    let _ = brotli::BrotliCompress(&mut input, &mut out, &params);
    out
}

/// The first 128 bits of a digest in lowercase hex: short enough for a header,
/// long enough that two bodies never share it by accident.
pub fn hex_prefix(digest: &[u8]) -> String {
    crate::text::hex(&digest[..16])
}

/// What the worker hands back to the reload thread.
#[derive(Debug)]
pub enum Done {
    /// A resource with its gzip variant added (brotli follows), or settled.
    Compressed(Key, Arc<Resource>),
    /// A job skipped (by identity ETag): its bytes were no longer served.
    Stale(String),
}

/// The compression thread, as the reload thread holds it: where to send
/// jobs, and which identity ETags were sent and not yet reported back.
pub struct Worker {
    jobs: Option<Sender<(Key, Arc<Resource>)>>,
    in_flight: HashSet<String>,
}

impl Worker {
    /// Starts the thread. It compresses what [`Worker::queue_pending`]
    /// sends, gzip first for every waiting resource (fast, and what most
    /// clients accept) and brotli after, one by one, and hands each result
    /// to `report`; it stops when `report` returns false. Jobs whose bytes
    /// `current` no longer serves (a burst of edits replaced them) are
    /// skipped. If the thread cannot start, responses stay uncompressed and
    /// a warning says so.
    pub fn spawn(current: Current, report: impl Fn(Done) -> bool + Send + 'static) -> Worker {
        let (jobs, queue) = std::sync::mpsc::channel::<(Key, Arc<Resource>)>();
        let served = move |key: &Key, r: &Resource| {
            current
                .load()
                .resources
                .get(key)
                .is_some_and(|c| c.pending() && c.identity.etag == r.identity.etag)
        };
        let spawned = std::thread::Builder::new()
            .name("compress".into())
            .spawn(move || {
                while let Ok(first) = queue.recv() {
                    let mut batch = vec![first];
                    batch.extend(queue.try_iter());
                    let mut live = Vec::with_capacity(batch.len());
                    for (key, resource) in batch {
                        if !served(&key, &resource) {
                            if !report(Done::Stale(resource.identity.etag.clone())) {
                                return;
                            }
                            continue;
                        }
                        let resource = if resource.compression() == super::Compression::Waiting {
                            let done = Arc::new(resource.with_gzip());
                            if !report(Done::Compressed(key.clone(), done.clone())) {
                                return;
                            }
                            done
                        } else {
                            resource
                        };
                        live.push((key, resource));
                    }
                    for (key, resource) in live {
                        let done = if served(&key, &resource) {
                            Done::Compressed(key, Arc::new(resource.finish()))
                        } else {
                            Done::Stale(resource.identity.etag.clone())
                        };
                        if !report(done) {
                            return;
                        }
                    }
                }
            });
        let jobs = match spawned {
            Ok(_) => Some(jobs),
            Err(e) => {
                tracing::warn!(
                    "cannot start the compression thread ({e}); responses stay uncompressed"
                );
                None
            }
        };
        Worker {
            jobs,
            in_flight: HashSet::new(),
        }
    }

    /// Sends every pending resource of `snapshot` to the thread, once.
    pub fn queue_pending(&mut self, snapshot: &Snapshot) {
        let Some(jobs) = &self.jobs else { return };
        for (key, r) in &snapshot.resources {
            if r.pending() && self.in_flight.insert(r.identity.etag.clone()) {
                let _ = jobs.send((key.clone(), r.clone()));
            }
        }
    }

    /// Notes a result: a settled or skipped job is no longer in flight.
    pub fn reported(&mut self, done: &Done) {
        match done {
            Done::Compressed(_, r) if !r.pending() => {
                self.in_flight.remove(&r.identity.etag);
            }
            Done::Compressed(..) => {}
            Done::Stale(etag) => {
                self.in_flight.remove(etag);
            }
        }
    }
}

/// Publishes a compressed resource if `current` still serves the same
/// bytes under its key and the result is progress (a gzip-only result
/// never replaces a settled one); a stale one is dropped. Returns how many
/// resources are still compressing when it installed. Call it only from
/// the one thread that stores snapshots.
pub fn install(current: &Current, done: Done) -> Option<usize> {
    let Done::Compressed(key, finished) = done else {
        return None;
    };
    let now = current.load_full();
    let r = now.resources.get(&key)?;
    if r.identity.etag != finished.identity.etag || r.compression() >= finished.compression() {
        return None;
    }
    let mut next = (*now).clone();
    next.resources.insert(key, finished);
    next.health.compressing = next.pending();
    let left = next.health.compressing;
    current.store(Arc::new(next));
    Some(left)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn compression_round_trips_and_is_deterministic() {
        let data = "Новости секции. ".repeat(500).into_bytes();
        let gz = gzip(&data);
        assert_eq!(gz, gzip(&data));
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);

        let br = brotli(&data);
        assert_eq!(br, brotli(&data));
        let mut back = Vec::new();
        brotli::Decompressor::new(&br[..], 4096)
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
    }
}
