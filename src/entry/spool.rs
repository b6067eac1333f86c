//! Markdown bodies kept out of memory, in a file of Vestnik's own.
//!
//! At N = 100,000 the bodies' Markdown is 165 MiB of a server's 373 MiB at
//! rest, yet only the few thousand entries in the standard feeds are read
//! again after loading. The loader therefore writes each body once into a
//! spool: an unnamed temporary file (`O_TMPFILE` where the system has it) in
//! the system's temporary folder, removed by the kernel when Vestnik exits.
//! An entry keeps only the body's place in it.
//!
//! The spool is **write-once**: bytes at an offset never change, so reading
//! a body back gives what was parsed, as memory would. That is what keeps
//! the promise that a broken file goes on publishing its last good version:
//! the editor's file may be half-written, the spooled copy is not. It is
//! also why the pure core may read it.
//!
//! A loader makes one spool when it opens. It only grows: an edit spools
//! the new body, and the old one stays until every entry that names this
//! spool is gone, at exit (the file's space is freed then).
//!
//! On a tmpfs `TMPDIR` the spool is in RAM after all (shared memory, not the
//! process's RSS); point `TMPDIR` at a disk to keep bodies out of RAM.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Bytes a [`Batch`] gathers before it writes them with one call. One
/// `pwrite` per body cost a 100,000-entry load 13% of its CPU (and the
/// file's lock serialized the loading threads); one per 64 KiB costs
/// little.
const BATCH: usize = 64 << 10;

/// A write-once, append-only file of bodies.
#[derive(Debug)]
pub struct Spool {
    file: File,
    /// Where the next range goes; reserved by `fetch_add`, so threads append
    /// in parallel without a lock. A batch's unused tail stays a hole.
    end: AtomicU64,
    /// Batches the file would not take (a full disk), kept in memory by
    /// their offset instead: their bodies' places were handed out already.
    kept: Mutex<Vec<(u64, Vec<u8>)>>,
    /// True once `kept` is not empty, so reads skip its lock until then.
    any_kept: AtomicBool,
}

/// One body's place in a spool.
#[derive(Clone)]
pub struct Spooled {
    spool: Arc<Spool>,
    at: u64,
    len: u32,
}

/// Bodies on their way into a spool, written 64 KiB at a time. Everything put
/// is written when the batch is dropped: read nothing back before that.
pub struct Batch {
    spool: Arc<Spool>,
    /// Where `buf` goes in the file.
    at: u64,
    buf: Vec<u8>,
}

impl Spool {
    /// A new spool in the system's temporary folder; `None` (with a warning)
    /// when none can be made, and then bodies stay in memory.
    pub fn create() -> Option<Arc<Spool>> {
        match tempfile::tempfile() {
            Ok(file) => Some(Arc::new(Spool {
                file,
                end: AtomicU64::new(0),
                kept: Mutex::new(Vec::new()),
                any_kept: AtomicBool::new(false),
            })),
            Err(e) => {
                tracing::warn!(
                    "cannot create a file in {} to keep entry bodies out of memory ({e}); \
                     keeping them in memory",
                    std::env::temp_dir().display()
                );
                None
            }
        }
    }

    /// A batch that writes into this spool.
    pub fn batch(self: &Arc<Spool>) -> Batch {
        Batch {
            spool: self.clone(),
            at: 0,
            buf: Vec::new(),
        }
    }

    /// Reserves `len` bytes at the end; returns where they start.
    fn reserve(&self, len: usize) -> u64 {
        self.end.fetch_add(len as u64, Ordering::Relaxed)
    }

    /// Writes `bytes` at `at`, or keeps a copy in memory if the file will
    /// not take them. Either way they read back.
    fn write(&self, bytes: &[u8], at: u64) {
        if let Err(e) = self.file.write_all_at(bytes, at) {
            tracing::warn!(
                "cannot write {} bytes of entry bodies to the spool ({e}); keeping them in memory",
                bytes.len()
            );
            let copy = bytes.to_vec();
            self.kept
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((at, copy));
            self.any_kept.store(true, Ordering::Release);
        }
    }

    /// The `len` bytes at `at`.
    fn read(&self, at: u64, len: usize) -> std::io::Result<Vec<u8>> {
        if self.any_kept.load(Ordering::Acquire) {
            let kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
            for (start, bytes) in kept.iter() {
                if let Some(offset) = at.checked_sub(*start).map(|o| o as usize) {
                    if let Some(found) = bytes.get(offset..offset + len) {
                        return Ok(found.to_vec());
                    }
                }
            }
        }
        let mut buf = vec![0; len];
        self.file.read_exact_at(&mut buf, at)?;
        Ok(buf)
    }
}

impl Batch {
    /// Adds `text`; returns its place, or `None` when it is too long for a
    /// spool (4 GiB) and stays in memory.
    pub fn put(&mut self, text: &str) -> Option<Spooled> {
        let len = u32::try_from(text.len()).ok()?;
        if text.len() > BATCH / 4 {
            // A long body goes on its own, not through the buffer.
            let at = self.spool.reserve(text.len());
            self.spool.write(text.as_bytes(), at);
            return Some(self.place(at, len));
        }
        if self.buf.capacity() == 0 || self.buf.len() + text.len() > BATCH {
            self.flush();
            self.at = self.spool.reserve(BATCH);
            self.buf.reserve_exact(BATCH);
        }
        let at = self.at + self.buf.len() as u64;
        self.buf.extend_from_slice(text.as_bytes());
        Some(self.place(at, len))
    }

    fn place(&self, at: u64, len: u32) -> Spooled {
        Spooled {
            spool: self.spool.clone(),
            at,
            len,
        }
    }

    fn flush(&mut self) {
        // The buffer is kept for the next bytes: one allocation per batch.
        // Freed and allocated again per flush, its old places were taken by
        // the small allocations of entries loaded meanwhile, and the heap
        // kept 50 MiB more at N = 100,000.
        if !self.buf.is_empty() {
            self.spool.write(&self.buf, self.at);
            self.buf.clear();
        }
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        self.flush();
    }
}

impl Spooled {
    /// Bytes of the body.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// True for an empty body.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The body's text, read back.
    ///
    /// A read of Vestnik's own open, unnamed file fails only when the disk
    /// does; the error is logged and the body reads as empty rather than
    /// taking down the request or the reload that wanted it.
    pub fn read(&self) -> String {
        match self.spool.read(self.at, self.len()).map(String::from_utf8) {
            Ok(Ok(text)) => text,
            Ok(Err(e)) => {
                tracing::error!("an entry body in the spool is not UTF-8: {e}");
                String::new()
            }
            Err(e) => {
                tracing::error!("cannot read an entry body back from the spool: {e}");
                String::new()
            }
        }
    }
}

impl std::fmt::Debug for Spooled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spooled")
            .field("at", &self.at)
            .field("len", &self.len)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Short bodies, long ones past a quarter batch, and enough of them to
    /// fill several batches per thread.
    fn text(t: usize, i: usize) -> String {
        let fill = if i % 97 == 0 { BATCH / 3 } else { i % 37 };
        format!("Тело {t}/{i}: {}", "ж".repeat(fill))
    }

    /// Puts every text through its own thread's batch, drops the batches,
    /// and returns each text with its place.
    fn spool_from_threads(spool: &Arc<Spool>) -> Vec<(String, Spooled)> {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|t| {
                    s.spawn(move || {
                        let mut batch = spool.batch();
                        (0..2_000)
                            .map(|i| {
                                let text = text(t, i);
                                let at = batch.put(&text).expect("placed");
                                (text, at)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        })
    }

    #[test]
    fn bodies_read_back_as_written_from_many_threads() {
        let spool = Spool::create().expect("a temporary file");
        let placed = spool_from_threads(&spool);
        for (text, at) in &placed {
            assert_eq!(at.len(), text.len());
            assert_eq!(&at.read(), text);
        }
        // No two bodies share a byte.
        let mut ranges: Vec<(u64, u64)> = placed
            .iter()
            .map(|(_, at)| (at.at, at.at + at.len as u64))
            .collect();
        ranges.sort();
        assert!(ranges.windows(2).all(|w| w[0].1 <= w[1].0));
        assert!(spool.kept.lock().unwrap().is_empty());
        let mut batch = spool.batch();
        let empty = batch.put("").unwrap();
        drop(batch);
        assert!(empty.is_empty() && empty.read().is_empty());
    }

    /// A file that takes no writes (as a full disk would) loses nothing:
    /// the batches stay in memory and every body still reads back.
    #[test]
    fn bodies_the_file_will_not_take_stay_readable() {
        let named = tempfile::NamedTempFile::new().unwrap();
        let spool = Arc::new(Spool {
            file: File::open(named.path()).unwrap(),
            end: AtomicU64::new(0),
            kept: Mutex::new(Vec::new()),
            any_kept: AtomicBool::new(false),
        });
        let placed = spool_from_threads(&spool);
        assert!(!spool.kept.lock().unwrap().is_empty());
        for (text, at) in &placed {
            assert_eq!(&at.read(), text);
        }
    }
}
