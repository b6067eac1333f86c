//! An immutable, pre-rendered view of one load of the data directory.
//!
//! Every standard resource (feeds, the home, section and subscribe pages,
//! the OPML lists) is rendered into bytes when the snapshot is built, with
//! strong ETags; requests only look bytes up, so nothing standard is
//! rendered or compressed on the request path. The snapshot is shared as
//! `Arc<Snapshot>` and replaced whole, never mutated.
//!
//! - [`key`]: the typed [`Key`] of every resource, and its URL and file;
//! - [`resource`]: a resource's bytes in each coding, and its state;
//! - [`compress`]: the codecs, and the worker that compresses after a swap;
//! - [`build`]: building a snapshot, reusing what did not change;
//! - [`later`]: what is rendered on first request, and its caches.

mod build;
pub mod compress;
pub mod key;
mod later;
pub mod resource;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;
use bytes::Bytes;

use crate::model::Site;

pub use key::{Key, NoKey};
use later::Later;
pub use later::{Item, Miss, ON_DEMAND_BYTES};
pub use resource::{Compression, Encoding, Resource, Topic, Variant};

/// The snapshot being served, swapped whole by the reload thread and read
/// once per request.
pub type Current = Arc<ArcSwap<Snapshot>>;

/// Health figures for `/healthz`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Health {
    /// Published entries.
    pub entries: usize,
    /// Configured sections.
    pub sections: usize,
    /// Problems found at load.
    pub problems: usize,
    /// A hash over every served body, equal across replicas with the same data.
    pub content_hash: String,
    /// Resources whose gzip or brotli variant is still being computed; 0 when settled.
    pub compressing: usize,
    /// Entries not due yet (never their titles: an embargo holds).
    pub scheduled: usize,
    /// When the next scheduled entry goes live (RFC 3339), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_due: Option<String>,
}

/// Everything the server answers from, built once per data load.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The site the resources were rendered from.
    pub site: Arc<Site>,
    /// The pre-rendered resources.
    pub resources: BTreeMap<Key, Arc<Resource>>,
    /// Figures for `/healthz`.
    pub health: Health,
    /// The plain-text body of a 404: every feed URL.
    pub not_found: Bytes,
    /// How many resources this build rendered (the rest were reused).
    pub rendered: usize,
    /// When this snapshot was built, for the admin listener's snapshot age.
    /// Set by the I/O edge that built it (`app`, `reload`); `build_from`
    /// never reads the clock, so it leaves `None`. Nothing rendered reads it.
    pub built: Option<SystemTime>,
    /// What is rendered on first request, cached for this snapshot's life.
    later: Later,
}

impl Snapshot {
    /// Resources still waiting for a compressed variant.
    pub fn pending(&self) -> usize {
        self.resources.values().filter(|r| r.pending()).count()
    }

    /// The resource at a URL path with its query (`/feeds/all.rss?page=2`,
    /// already percent-decoded), as the server would answer it.
    pub fn at(&self, target: &str) -> Option<Arc<Resource>> {
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (target, None),
        };
        self.resolve(&Key::parse(path, query).ok()?).ok()
    }

    /// The pre-rendered resource under `key`, if there is one.
    pub fn get(&self, key: &Key) -> Option<&Arc<Resource>> {
        self.resources.get(key)
    }
}

const TEXT_HTML: &str = "text/html; charset=utf-8";
const TEXT_PLAIN: &str = "text/plain; charset=utf-8";
const XML: &str = "application/xml; charset=utf-8";
const OPML: &str = "text/x-opml; charset=utf-8";
