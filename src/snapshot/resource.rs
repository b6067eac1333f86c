//! A resource as served: its bytes in every content coding worth sending,
//! their strong ETags, and how far its compression has come.

use std::time::SystemTime;

use bytes::Bytes;
use http::HeaderValue;
use sha2::{Digest, Sha256};
use url::Url;

use super::compress;

/// A content coding Vestnik can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// No compression.
    Identity,
    /// gzip (RFC 1952).
    Gzip,
    /// Brotli (RFC 7932).
    Brotli,
}

impl Encoding {
    /// Every coding, the best first.
    pub const ALL: [Encoding; 3] = [Encoding::Brotli, Encoding::Gzip, Encoding::Identity];

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

/// How far a resource's compression has come. Only moves forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Compression {
    /// Identity only; gzip and then brotli are still to be computed.
    Waiting,
    /// gzip computed; brotli still to be.
    Gzipped,
    /// Every variant it will have is there.
    Settled,
}

/// A feed as a WebSub topic: what its responses and bodies announce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    /// The hub named by `websub_hub`.
    pub hub: Url,
    /// The feed's canonical absolute URL, as in its `rel="self"` link.
    pub url: Url,
    /// `<hub>; rel="hub", <self>; rel="self"`, the `Link` header of the
    /// feed's responses (WebSub §4), computed once per render.
    pub link: HeaderValue,
}

impl Topic {
    /// The topic of the feed at `url` under `hub`. `None` only if the URLs
    /// could not form a header value, which serialized `Url`s (ASCII,
    /// percent-encoded, no controls) always can.
    pub fn new(hub: &Url, url: Url) -> Option<Topic> {
        let link =
            HeaderValue::from_str(&format!("<{hub}>; rel=\"hub\", <{url}>; rel=\"self\"")).ok()?;
        Some(Topic {
            hub: hub.clone(),
            url,
            link,
        })
    }
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
    /// For a feed of a site with a WebSub hub: its topic and `Link` header.
    pub topic: Option<Topic>,
    compression: Compression,
}

/// Bodies shorter than this are not worth compressing.
const MIN_COMPRESS: usize = 256;

impl Resource {
    /// Builds a resource from rendered bytes, with its compressed variants
    /// still to do: [`Resource::with_gzip`] and [`Resource::finish`] compute
    /// them. A reload publishes the identity bytes at once and the
    /// compression worker ([`super::compress::Worker`]) adds gzip and then
    /// brotli, so an edit never waits for compression. Until then clients
    /// get identity: never stale bytes.
    pub fn new(
        content_type: &'static str,
        last_modified: Option<SystemTime>,
        body: Vec<u8>,
    ) -> Self {
        let hash = compress::hex_prefix(&Sha256::digest(&body));
        let compression = if body.len() >= MIN_COMPRESS {
            Compression::Waiting
        } else {
            Compression::Settled
        };
        Resource {
            content_type,
            last_modified,
            identity: Variant {
                etag: format!("\"{hash}\""),
                body: Bytes::from(body),
            },
            gzip: None,
            brotli: None,
            topic: None,
            compression,
        }
    }

    /// This resource with `topic` announced in its `Link` header.
    pub fn with_topic(mut self, topic: Option<Topic>) -> Self {
        self.topic = topic;
        self
    }

    /// How far its compression has come.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// True while a compressed variant is still to be computed.
    pub fn pending(&self) -> bool {
        self.compression != Compression::Settled
    }

    /// This resource with its gzip variant at the best level computed.
    pub fn with_gzip(&self) -> Resource {
        self.with_gzip_at(compress::GZIP_LEVEL)
    }

    pub(super) fn with_gzip_at(&self, level: u32) -> Resource {
        let mut done = self.clone();
        if self.compression == Compression::Waiting {
            done.gzip = self.compressed(compress::gzip_at(&self.identity.body, level), "gzip");
            done.compression = Compression::Gzipped;
        }
        done
    }

    /// This resource settled with gzip alone (no brotli will follow).
    pub(super) fn gzip_only(mut self) -> Resource {
        self.compression = Compression::Settled;
        self
    }

    /// This resource with its brotli variant at `quality` and a window of
    /// 2^`lgwin` bytes computed, if still pending.
    pub(super) fn with_brotli_at(mut self, quality: i32, lgwin: i32) -> Resource {
        if self.compression == Compression::Waiting {
            self = self.with_gzip();
        }
        if self.compression == Compression::Gzipped {
            self.brotli = self.compressed(
                compress::brotli_at(&self.identity.body, quality, lgwin),
                "br",
            );
            self.compression = Compression::Settled;
        }
        self
    }

    /// The variant for `body` compressed as `coding`, when it is smaller
    /// than the identity body; its ETag is the identity's plus the coding.
    fn compressed(&self, body: Vec<u8>, coding: &str) -> Option<Variant> {
        let hash = self.identity.etag.trim_matches('"');
        (body.len() < self.identity.body.len()).then(|| Variant {
            body: Bytes::from(body),
            etag: format!("\"{hash}-{coding}\""),
        })
    }

    /// Builds a resource on the request path (feed pages, bundles, entry
    /// pages) with every variant at once: gzip at
    /// [`compress::ON_DEMAND_GZIP`] and brotli as
    /// [`compress::on_demand_brotli`] picks. The bytes are as deterministic
    /// as those of the standard feeds.
    pub fn on_demand(
        content_type: &'static str,
        last_modified: Option<SystemTime>,
        body: Vec<u8>,
    ) -> Self {
        Self::new(content_type, last_modified, body).compress_on_demand()
    }

    /// This resource with the variants of a page rendered on request:
    /// gzip at [`compress::ON_DEMAND_GZIP`], brotli as
    /// [`compress::on_demand_brotli`] picks.
    pub fn compress_on_demand(self) -> Self {
        let r = self.with_gzip_at(compress::ON_DEMAND_GZIP);
        let (quality, lgwin) = compress::on_demand_brotli(r.identity.body.len());
        r.with_brotli_at(quality, lgwin)
    }

    /// The bytes this resource holds in memory, every variant included.
    pub fn weight(&self) -> u64 {
        let len = |v: &Option<Variant>| v.as_ref().map_or(0, |v| v.body.len());
        (self.identity.body.len() + len(&self.gzip) + len(&self.brotli)) as u64
    }

    /// Builds a resource with every variant, brotli included.
    pub fn complete(
        content_type: &'static str,
        last_modified: Option<SystemTime>,
        body: Vec<u8>,
    ) -> Self {
        Self::new(content_type, last_modified, body).finish()
    }

    /// This resource with every variant computed: gzip (if still pending)
    /// and brotli.
    pub fn finish(&self) -> Resource {
        self.with_gzip()
            .with_brotli_at(compress::BROTLI_QUALITY, compress::BROTLI_WINDOW)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_encoding_has_its_own_etag_and_tiny_bodies_stay_plain() {
        let r = Resource::complete("text/plain", None, "x".repeat(1000).into_bytes());
        let gz = r.gzip.as_ref().unwrap();
        let br = r.brotli.as_ref().unwrap();
        assert_ne!(r.identity.etag, gz.etag);
        assert_ne!(gz.etag, br.etag);
        assert!(r.identity.etag.starts_with('"') && r.identity.etag.len() == 34);

        let tiny = Resource::complete("text/plain", None, b"x".to_vec());
        assert!(tiny.gzip.is_none() && tiny.brotli.is_none());
    }

    #[test]
    fn compression_only_moves_forward() {
        let r = Resource::new("text/plain", None, "y".repeat(1000).into_bytes());
        assert_eq!(r.compression(), Compression::Waiting);
        let g = r.with_gzip();
        assert_eq!(g.compression(), Compression::Gzipped);
        assert!(g.gzip.is_some() && g.brotli.is_none());
        // gzip again changes nothing: the variant is kept, not recomputed.
        assert_eq!(
            g.with_gzip().gzip.unwrap().etag,
            g.gzip.clone().unwrap().etag
        );
        let f = g.finish();
        assert_eq!(f.compression(), Compression::Settled);
        assert!(f.brotli.is_some());
        assert_eq!(
            r.with_gzip().gzip_only().compression(),
            Compression::Settled
        );
    }
}
