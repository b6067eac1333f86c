//! The published order: entries newest first, held in shared chunks.
//!
//! A live server keeps two copies of the order, the loader's and the served
//! site's, and makes a new site for every edit. A plain `Vec<Arc<Entry>>`
//! would make each edit clone 100,000 `Arc`s (an atomic increment each, on
//! cache lines untouched since the load, then as many decrements when the old
//! site goes): about 20 ms at N = 100,000. An [`Order`] is a list of
//! reference-counted chunks, so a clone copies one pointer per chunk, and
//! replacing or inserting an entry copies only the chunk it lands in.
//!
//! Each chunk also keeps its newest modification time, so the site's newest
//! (the home page's and sitemaps' `Last-Modified`) is a look at one time per
//! chunk, not a scan of every entry per reload.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset};
use rayon::prelude::*;

use crate::entry::Entry;

/// Entries per chunk when an order is built from a list. An insert grows its
/// chunk; a chunk of twice this size is split in two.
const CHUNK: usize = 1024;

/// Entries in a fixed order, cheap to clone and to change one at a time.
#[derive(Clone, Default)]
pub struct Order {
    /// Never empty chunks.
    chunks: Vec<Arc<[Arc<Entry>]>>,
    /// `ends[k]`: entries in chunks `0..=k`.
    ends: Vec<usize>,
    /// `newest[k]`: the newest [`Entry::modified`] in chunk `k`.
    newest: Vec<DateTime<FixedOffset>>,
}

impl Order {
    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.ends.last().copied().unwrap_or(0)
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// The entries in order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Arc<Entry>> + Clone + '_ {
        self.chunks.iter().flat_map(|c| c.iter())
    }

    /// The entries in order, in parallel (rayon); `collect` keeps the order.
    pub fn par_iter(&self) -> impl ParallelIterator<Item = &Arc<Entry>> + '_ {
        self.chunks.par_iter().flat_map_iter(|c| c.iter())
    }

    /// The entry at `i`, if there is one.
    pub fn get(&self, i: usize) -> Option<&Arc<Entry>> {
        let (k, j) = self.locate(i)?;
        Some(&self.chunks[k][j])
    }

    /// The newest [`Entry::modified`] of all, if there is an entry.
    pub fn newest(&self) -> Option<DateTime<FixedOffset>> {
        self.newest.iter().max().copied()
    }

    /// Binary search, as [`slice::binary_search_by`] on the whole order.
    pub fn binary_search_by(
        &self,
        mut f: impl FnMut(&Arc<Entry>) -> std::cmp::Ordering,
    ) -> Result<usize, usize> {
        // The chunk that holds the place: the first whose last entry is not Less.
        let k = self
            .chunks
            .partition_point(|c| f(&c[c.len() - 1]) == std::cmp::Ordering::Less);
        match self.chunks.get(k) {
            None => Err(self.len()),
            Some(c) => {
                let start = self.start(k);
                c.binary_search_by(f)
                    .map(|j| start + j)
                    .map_err(|j| start + j)
            }
        }
    }

    /// Puts `entry` at `i` in place of the entry there. Copies that one chunk.
    ///
    /// # Panics
    /// When `i` is out of bounds.
    pub fn set(&mut self, i: usize, entry: Arc<Entry>) {
        let (k, j) = self.locate(i).expect("Order::set: index out of bounds");
        let mut chunk = self.chunks[k].to_vec();
        chunk[j] = entry;
        self.newest[k] = newest(&chunk);
        self.chunks[k] = chunk.into();
    }

    /// Inserts `entry` at `i`, shifting what follows. Copies one chunk, or
    /// splits it in two when it has grown to twice [`CHUNK`].
    ///
    /// # Panics
    /// When `i > len`.
    pub fn insert(&mut self, i: usize, entry: Arc<Entry>) {
        assert!(i <= self.len(), "Order::insert: index out of bounds");
        if self.chunks.is_empty() {
            self.newest.push(entry.modified());
            self.chunks.push(Arc::from(vec![entry]));
            self.ends.push(1);
            return;
        }
        // At a boundary, the entry joins the end of the chunk before it.
        let k = self
            .ends
            .partition_point(|&end| end < i)
            .min(self.chunks.len() - 1);
        let mut chunk = Vec::with_capacity(self.chunks[k].len() + 1);
        chunk.extend_from_slice(&self.chunks[k]);
        chunk.insert(i - self.start(k), entry);
        if chunk.len() >= 2 * CHUNK {
            let tail = chunk.split_off(chunk.len() / 2);
            self.newest.insert(k + 1, newest(&tail));
            self.chunks.insert(k + 1, tail.into());
            self.ends.insert(k + 1, 0);
        }
        self.newest[k] = newest(&chunk);
        self.chunks[k] = chunk.into();
        self.recount(k);
    }

    /// Chunk and offset of index `i`.
    fn locate(&self, i: usize) -> Option<(usize, usize)> {
        let k = self.ends.partition_point(|&end| end <= i);
        (k < self.chunks.len()).then(|| (k, i - self.start(k)))
    }

    /// Index of chunk `k`'s first entry.
    fn start(&self, k: usize) -> usize {
        if k == 0 { 0 } else { self.ends[k - 1] }
    }

    /// Recomputes `ends` from chunk `k` on.
    fn recount(&mut self, k: usize) {
        let mut end = self.start(k);
        for (c, e) in self.chunks[k..].iter().zip(&mut self.ends[k..]) {
            end += c.len();
            *e = end;
        }
    }
}

/// The newest modification time in a non-empty chunk.
fn newest(chunk: &[Arc<Entry>]) -> DateTime<FixedOffset> {
    chunk
        .iter()
        .map(|e| e.modified())
        .max()
        .expect("chunks are never empty")
}

impl From<Vec<Arc<Entry>>> for Order {
    fn from(entries: Vec<Arc<Entry>>) -> Order {
        let chunks: Vec<Arc<[Arc<Entry>]>> = entries.chunks(CHUNK).map(Arc::from).collect();
        let mut order = Order {
            ends: vec![0; chunks.len()],
            newest: chunks.iter().map(|c| newest(c)).collect(),
            chunks,
        };
        order.recount(0);
        order
    }
}

impl std::ops::Index<usize> for Order {
    type Output = Arc<Entry>;

    fn index(&self, i: usize) -> &Arc<Entry> {
        self.get(i).expect("Order: index out of bounds")
    }
}

impl fmt::Debug for Order {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A distinct entry whose title is `n`, published at a time that
    /// jumps about with `n`.
    fn entry(n: usize) -> Arc<Entry> {
        static BASE: std::sync::OnceLock<Entry> = std::sync::OnceLock::new();
        let base = BASE.get_or_init(|| {
            let config = crate::fixture::config("[[sections]]\nslug = \"a\"\ntitle = \"A\"\n");
            let text = "+++\ntitle = \"t\"\ndate = 2024-01-01\nsections = [\"a\"]\n+++\nText.\n";
            crate::fixture::entry(&config, "a.md", text)
        });
        let jump = chrono::TimeDelta::seconds((n * 7919 % 10007) as i64);
        Arc::new(Entry {
            title: n.to_string(),
            published: base.published + jump,
            ..base.clone()
        })
    }

    fn titles(o: &Order) -> Vec<String> {
        o.iter().map(|e| e.title.clone()).collect()
    }

    /// Every operation agrees with the same operation on a `Vec`, across
    /// chunk boundaries, growth and splits.
    #[test]
    fn behaves_as_a_vec() {
        let mut v: Vec<Arc<Entry>> = (0..3 * CHUNK + 7).map(|n| 10 * n).map(entry).collect();
        let mut o = Order::from(v.clone());
        let mut next = 1;
        // Inserts at the front, at chunk boundaries, in the middle and at the end,
        // enough of them at one place to split its chunk more than once.
        let places = [0, CHUNK, CHUNK + 1, 2 * CHUNK, 5, v.len()];
        for round in 0..(2 * CHUNK + 10) {
            let at = places[round % places.len()].min(v.len());
            let at = if round % 7 == 0 { 0 } else { at };
            let e = entry(next);
            next += 10;
            v.insert(at, e.clone());
            o.insert(at, e);
        }
        for i in (0..v.len()).step_by(97) {
            let e = entry(i * 3 + 1);
            v[i] = e.clone();
            o.set(i, e);
        }
        assert_eq!(o.len(), v.len());
        assert_eq!(
            titles(&o),
            v.iter().map(|e| e.title.clone()).collect::<Vec<_>>()
        );
        for (i, e) in v.iter().enumerate() {
            assert!(Arc::ptr_eq(&o[i], e), "index {i}");
        }
        assert!(o.get(v.len()).is_none());
        assert!(
            o.chunks
                .iter()
                .all(|c| !c.is_empty() && c.len() < 2 * CHUNK)
        );
        let par: Vec<&Arc<Entry>> = o.par_iter().collect();
        assert!(par.iter().zip(&v).all(|(a, b)| Arc::ptr_eq(a, b)));
        assert_eq!(o.iter().rev().count(), v.len());
        assert_eq!(o.newest(), v.iter().map(|e| e.modified()).max());
    }

    #[test]
    fn binary_search_finds_places_as_a_slice_does() {
        let v: Vec<Arc<Entry>> = (0..2 * CHUNK + 3).map(|n| 2 * n + 1).map(entry).collect();
        let o = Order::from(v.clone());
        let key = |e: &Arc<Entry>| e.title.parse::<usize>().unwrap();
        for probe in 0..(4 * CHUNK + 10) {
            assert_eq!(
                o.binary_search_by(|e| key(e).cmp(&probe)),
                v.binary_search_by(|e| key(e).cmp(&probe)),
                "probe {probe}"
            );
        }
        assert_eq!(
            Order::default().binary_search_by(|_| std::cmp::Ordering::Less),
            Err(0)
        );
    }

    #[test]
    fn a_change_copies_one_chunk_and_shares_the_rest() {
        let o = Order::from((0..4 * CHUNK).map(entry).collect::<Vec<_>>());
        let mut p = o.clone();
        p.set(CHUNK + 3, entry(1));
        p.insert(3 * CHUNK + 1, entry(2));
        let shared = o
            .chunks
            .iter()
            .zip(&p.chunks)
            .filter(|(a, b)| Arc::ptr_eq(a, b))
            .count();
        assert_eq!(shared, 2, "chunks 0 and 2 are shared, 1 and 3 copied");
        assert_eq!(
            titles(&o)[CHUNK + 3],
            (CHUNK + 3).to_string(),
            "the original is untouched"
        );
        assert_eq!(o.len() + 1, p.len());
    }

    #[test]
    fn an_empty_order_takes_its_first_entry() {
        let mut o = Order::default();
        assert!(o.is_empty() && o.get(0).is_none() && o.iter().next().is_none());
        o.insert(0, entry(7));
        o.insert(1, entry(8));
        o.insert(0, entry(6));
        assert_eq!(titles(&o), ["6", "7", "8"]);
        assert_eq!(o.get(0).unwrap().title, "6");
    }
}
