//! An immutable, pre-rendered view of one load of the data directory.
//!
//! Every standard feed is rendered once into bytes, with its gzip and brotli
//! variants and their ETags, when the snapshot is built. Requests only look
//! bytes up here, so nothing is rendered or compressed on the request path.
//! The snapshot is shared as `Arc<Snapshot>` and replaced whole, never mutated.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::model::{Site, feed_path};
use crate::render::{self, Format};

/// A content coding Vestnik can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// No compression.
    Identity,
    /// gzip (RFC 1952) at level 9.
    Gzip,
    /// Brotli (RFC 7932) at quality 11.
    Brotli,
}

impl Encoding {
    /// The `Content-Encoding` token, or `None` for identity.
    pub fn token(self) -> Option<&'static str> {
        match self {
            Encoding::Identity => None,
            Encoding::Gzip => Some("gzip"),
            Encoding::Brotli => Some("br"),
        }
    }

    /// The file suffix of a precompressed sibling (`.gz`, `.br`).
    pub fn file_suffix(self) -> Option<&'static str> {
        match self {
            Encoding::Identity => None,
            Encoding::Gzip => Some(".gz"),
            Encoding::Brotli => Some(".br"),
        }
    }
}

/// One representation of a resource: its bytes and their strong ETag.
#[derive(Debug, Clone)]
pub struct Variant {
    /// The body as sent.
    pub body: Bytes,
    /// The quoted strong entity tag, e.g. `"3f2a…"` or `"3f2a…-br"`.
    pub etag: String,
}

/// A resource served at one path, in every encoding worth sending.
#[derive(Debug, Clone)]
pub struct Resource {
    /// The `Content-Type` header value.
    pub content_type: &'static str,
    /// The feed's newest entry time, for `Last-Modified`.
    pub last_modified: Option<SystemTime>,
    /// The uncompressed body.
    pub identity: Variant,
    /// gzip variant, when it is smaller than the identity body.
    pub gzip: Option<Variant>,
    /// Brotli variant, when it is smaller than the identity body.
    pub brotli: Option<Variant>,
}

impl Resource {
    /// Builds a resource from rendered bytes, compressing them at the best levels.
    pub fn new(
        content_type: &'static str,
        last_modified: Option<SystemTime>,
        body: Vec<u8>,
    ) -> Self {
        let hash = hex_prefix(&Sha256::digest(&body));
        let make = |encoding: Encoding, compressed: Vec<u8>| -> Option<Variant> {
            (compressed.len() < body.len()).then(|| Variant {
                body: Bytes::from(compressed),
                etag: format!("\"{hash}-{}\"", encoding.token().unwrap_or_default()),
            })
        };
        let (gzip, brotli) = rayon::join(
            || make(Encoding::Gzip, gzip(&body)),
            || make(Encoding::Brotli, brotli(&body)),
        );
        Resource {
            content_type,
            last_modified,
            identity: Variant {
                etag: format!("\"{hash}\""),
                body: Bytes::from(body),
            },
            gzip,
            brotli,
        }
    }

    /// The variant for an encoding, if this resource has one.
    pub fn variant(&self, encoding: Encoding) -> Option<&Variant> {
        match encoding {
            Encoding::Identity => Some(&self.identity),
            Encoding::Gzip => self.gzip.as_ref(),
            Encoding::Brotli => self.brotli.as_ref(),
        }
    }
}

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
}

/// Everything the server answers from, built once per data load.
#[derive(Debug)]
pub struct Snapshot {
    /// The site the resources were rendered from.
    pub site: Arc<Site>,
    /// Resources by absolute URL path, e.g. `/feeds/all.rss`.
    pub resources: BTreeMap<String, Arc<Resource>>,
    /// Figures for `/healthz`.
    pub health: Health,
    /// The plain-text body of a 404: every feed URL.
    pub not_found: Bytes,
}

impl Snapshot {
    /// Renders and compresses every standard feed of the site, in parallel.
    pub fn build(site: Arc<Site>) -> Snapshot {
        let feeds = site.feeds();
        let jobs: Vec<_> = feeds
            .iter()
            .flat_map(|f| Format::ALL.into_iter().map(move |fmt| (f, fmt)))
            .collect();
        let mut resources: BTreeMap<String, Arc<Resource>> = jobs
            .into_par_iter()
            .map(|(feed, format)| {
                let body = render::render(feed, format);
                let updated = SystemTime::from(feed.updated());
                let path = format!("/{}", feed_path(feed.scope.slug(), format.extension()));
                let resource = Resource::new(format.content_type(), Some(updated), body);
                (path, Arc::new(resource))
            })
            .collect();
        let list = feed_list(&site);
        let index = format!(
            "{}\n{}\n\nFeeds:\n\n{list}",
            site.config.title, site.config.description
        );
        resources.insert(
            "/".to_owned(),
            Arc::new(Resource::new(
                TEXT_PLAIN,
                site.newest().map(SystemTime::from),
                index.into_bytes(),
            )),
        );
        let not_found = Bytes::from(format!("not found; the feeds are:\n\n{list}"));
        let mut hasher = Sha256::new();
        for (path, r) in &resources {
            hasher.update(path.as_bytes());
            hasher.update(r.identity.etag.as_bytes());
        }
        let health = Health {
            entries: site.entries.len(),
            sections: site.config.sections.len(),
            problems: site.diagnostics.len(),
            content_hash: hex_prefix(&hasher.finalize()),
        };
        Snapshot {
            site,
            resources,
            health,
            not_found,
        }
    }

    /// The resource at a URL path.
    pub fn get(&self, path: &str) -> Option<&Arc<Resource>> {
        self.resources.get(path)
    }
}

const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

/// Every feed URL with its title, as plain text for `/` and 404 answers.
fn feed_list(site: &Site) -> String {
    use std::fmt::Write as _;
    let config = &site.config;
    let mut out = String::new();
    let scopes = std::iter::once(("all", config.title.as_str())).chain(
        config
            .sections
            .iter()
            .map(|s| (s.slug.as_str(), s.title.as_str())),
    );
    for (slug, title) in scopes {
        let _ = writeln!(out, "{title}");
        for f in Format::ALL {
            let _ = writeln!(out, "  {}", config.url(&feed_path(slug, f.extension())));
        }
    }
    out
}

/// The first 128 bits of a digest in lowercase hex: short enough for a header,
/// long enough that two bodies never share it by accident.
fn hex_prefix(digest: &[u8]) -> String {
    use std::fmt::Write as _;
    digest[..16]
        .iter()
        .fold(String::with_capacity(32), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// gzip at the best level. The header carries no timestamp or name, so the
/// same input always gives the same bytes.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::GzBuilder::new().write(
        Vec::with_capacity(data.len() / 3),
        flate2::Compression::best(),
    );
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

/// Brotli at quality 11 with a 4 MiB window.
pub fn brotli(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() / 4);
    let params = brotli::enc::BrotliEncoderParams {
        quality: 11,
        lgwin: 22,
        size_hint: data.len(),
        ..brotli::enc::BrotliEncoderParams::default()
    };
    let mut input = data;
    // Reading from a slice and writing into a Vec cannot fail.
    let _ = brotli::BrotliCompress(&mut input, &mut out, &params);
    out
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

    #[test]
    fn each_encoding_has_its_own_etag_and_tiny_bodies_stay_plain() {
        let r = Resource::new("text/plain", None, "x".repeat(1000).into_bytes());
        let gz = r.gzip.as_ref().unwrap();
        let br = r.brotli.as_ref().unwrap();
        assert_ne!(r.identity.etag, gz.etag);
        assert_ne!(gz.etag, br.etag);
        assert!(r.identity.etag.starts_with('"') && r.identity.etag.len() == 34);

        let tiny = Resource::new("text/plain", None, b"x".to_vec());
        assert!(tiny.gzip.is_none() && tiny.brotli.is_none());
    }
}
