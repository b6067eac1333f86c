//! An immutable, pre-rendered view of one load of the data directory.
//!
//! Every standard feed is rendered once into bytes, with its gzip and brotli
//! variants and their ETags, when the snapshot is built. Requests only look
//! bytes up here, so nothing is rendered or compressed on the request path.
//! The snapshot is shared as `Arc<Snapshot>` and replaced whole, never mutated.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use bytes::Bytes;
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::model::{Feed, Scope, Site, feed_path, section_path};
use crate::render::{self, Format};

/// A content coding Vestnik can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// No compression.
    Identity,
    /// gzip (RFC 1952) at level 9.
    Gzip,
    /// Brotli (RFC 7932) at quality [`BROTLI_QUALITY`].
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
    /// True until the gzip variant has been computed (see [`Resource::with_gzip`]).
    pub gzip_pending: bool,
    /// True until the brotli variant has been computed (see [`Resource::finish`]).
    pub brotli_pending: bool,
    /// For a feed of a site with a WebSub hub: its topic and `Link` header.
    pub topic: Option<crate::websub::Topic>,
}

/// Bodies shorter than this are not worth compressing.
const MIN_COMPRESS: usize = 256;

impl Resource {
    /// Builds a resource from rendered bytes, with its compressed variants
    /// still to do: [`Resource::with_gzip`] and [`Resource::finish`] compute
    /// them. A reload publishes the identity bytes at once and the reload
    /// loop's worker adds gzip (level 9, ~10 ms for a 150 KB feed) and then
    /// brotli (quality 9, about twice gzip's time), so an edit never waits for
    /// compression. Until then clients get identity: never stale bytes.
    pub fn new(
        content_type: &'static str,
        last_modified: Option<SystemTime>,
        body: Vec<u8>,
    ) -> Self {
        let hash = hex_prefix(&Sha256::digest(&body));
        let worth = body.len() >= MIN_COMPRESS;
        Resource {
            content_type,
            last_modified,
            identity: Variant {
                etag: format!("\"{hash}\""),
                body: Bytes::from(body),
            },
            gzip: None,
            brotli: None,
            gzip_pending: worth,
            brotli_pending: worth,
            topic: None,
        }
    }

    /// True while a compressed variant is still to be computed.
    pub fn pending(&self) -> bool {
        self.gzip_pending || self.brotli_pending
    }

    /// This resource with its gzip variant at the best level computed.
    pub fn with_gzip(&self) -> Resource {
        self.with_gzip_at(9)
    }

    fn with_gzip_at(&self, level: u32) -> Resource {
        let mut done = self.clone();
        if self.gzip_pending {
            done.gzip = self.compressed(gzip_at(&self.identity.body, level), "gzip");
            done.gzip_pending = false;
        }
        done
    }

    /// This resource with its brotli variant at `quality` and a window of
    /// 2^`lgwin` bytes computed, if still pending.
    fn with_brotli_at(mut self, quality: i32, lgwin: i32) -> Resource {
        if self.brotli_pending {
            self.brotli = self.compressed(brotli_at(&self.identity.body, quality, lgwin), "br");
            self.brotli_pending = false;
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
    /// pages) with every variant at once: gzip at [`ON_DEMAND_GZIP`] and
    /// brotli as [`on_demand_brotli`] picks. On a 158 KB feed page gzip 9
    /// takes twice gzip 6's time for a body 1.3% smaller, and brotli 9 costs
    /// four times what brotli 5 does. The bytes are as deterministic as
    /// those of the standard feeds.
    pub fn on_demand(
        content_type: &'static str,
        last_modified: Option<SystemTime>,
        body: Vec<u8>,
    ) -> Self {
        let r = Self::new(content_type, last_modified, body).with_gzip_at(ON_DEMAND_GZIP);
        let (quality, lgwin) = on_demand_brotli(r.identity.body.len());
        r.with_brotli_at(quality, lgwin)
    }

    /// A feed that is not pre-rendered, as `serve` renders it on first
    /// request and `vestnik build` exports it: a bundle, another `limit`, or
    /// a later page.
    ///
    /// Later pages (RFC 5005 history) get gzip only. There are a hundred of
    /// them for each standard feed in a large archive, each fetched about
    /// once per subscriber (by an aggregator backfilling), and gzip is what
    /// every aggregator accepts; brotli 5 would double their compression
    /// time (~5 ms more per 150 KB page) for bodies 2-7% smaller.
    ///
    /// Renders inside [`crate::entry::html::uncached`]: the bodies of the
    /// archive's entries are not kept once their page is written.
    pub fn on_demand_feed(feed: &Feed<'_>, format: Format) -> Self {
        let content_type = format.content_type();
        let last_modified = Some(SystemTime::from(feed.updated()));
        let body = crate::entry::html::uncached(|| render::render(feed, format));
        if feed.page > 1 {
            let mut r = Self::new(content_type, last_modified, body).with_gzip_at(ON_DEMAND_GZIP);
            r.brotli_pending = false; // gzip only, as above
            r
        } else {
            Self::on_demand(content_type, last_modified, body)
        }
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
        self.with_gzip().with_brotli_at(BROTLI_QUALITY, 22)
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
    /// Resources by absolute URL path, e.g. `/feeds/all.rss`.
    pub resources: BTreeMap<String, Arc<Resource>>,
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
    /// Entry pages rendered on demand, cached for the life of this snapshot.
    pages: Arc<quick_cache::sync::Cache<String, Arc<Resource>>>,
    /// Entry index by id, built on the first entry page request.
    ids: Arc<OnceLock<HashMap<String, usize>>>,
    /// Feed pages past the first, bundles, and the later pages of the home
    /// and section pages, rendered on demand and cached for the life of
    /// this snapshot, bounded by their size in bytes. Concurrent requests
    /// for one key wait for one render (single flight).
    later: Arc<quick_cache::sync::Cache<String, Arc<Resource>, ByteWeight>>,
    /// [`Snapshot::limit_for_size`], once computed.
    size_limit: Arc<OnceLock<usize>>,
}

/// Weighs cached resources by the bytes they hold.
#[derive(Debug, Clone, Copy)]
pub struct ByteWeight;

impl quick_cache::Weighter<String, Arc<Resource>> for ByteWeight {
    fn weight(&self, key: &String, val: &Arc<Resource>) -> u64 {
        key.len() as u64 + val.weight()
    }
}

/// Bytes of on-demand feed pages, bundles and later listing pages kept per snapshot.
const FEED_CACHE_BYTES: u64 = 64 << 20;

/// Shards of that cache. A shard holds at most its share of the bytes, and
/// a resource heavier than that is never cached; two shards of 32 MiB keep
/// even a page at [`ON_DEMAND_BYTES`] (with its compressed variants).
const FEED_CACHE_SHARDS: usize = 2;

/// About the largest body a `?limit=` feed page is rendered to: past it,
/// the page holds fewer entries (see [`Snapshot::limit_for_size`]), and its
/// paging links lead on to the rest.
pub const ON_DEMAND_BYTES: usize = 8 << 20;

fn feed_cache() -> quick_cache::sync::Cache<String, Arc<Resource>, ByteWeight> {
    let options = quick_cache::OptionsBuilder::new()
        .estimated_items_capacity(1024)
        .weight_capacity(FEED_CACHE_BYTES)
        .shards(FEED_CACHE_SHARDS)
        .build()
        .unwrap_or_else(|_| unreachable!("every option is set"));
    quick_cache::sync::Cache::with_options(
        options,
        ByteWeight,
        Default::default(),
        Default::default(),
    )
}

/// A feed beyond the standard ones: a later page, another page size, or a
/// bundle of sections (`/feeds/all.rss?sections=a,b&limit=100&page=2`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FeedQuery {
    /// Slugs of the bundled sections, as requested; only on the combined feed.
    pub sections: Option<Vec<String>>,
    /// Entries per page, as requested; capped at `max_limit`.
    pub limit: Option<usize>,
    /// The page, from 1.
    pub page: usize,
}

/// Why a feed query has no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedMiss {
    /// No feed at that path.
    NoFeed,
    /// A bundle names a section that does not exist.
    UnknownSection(String),
    /// The page is past the last one.
    PastEnd {
        /// How many pages the feed has.
        pages: usize,
    },
    /// `sections=` on a section's feed.
    SectionsNeedAll,
}

/// Why a listing page (the home page or a section's, `?page=N`) has no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageMiss {
    /// No listing page at that path.
    NoPage,
    /// The page is past the last one.
    PastEnd {
        /// How many pages the listing has.
        pages: usize,
    },
}

/// Entry pages kept per snapshot; at ~10 KB each, about 20 MB at most.
const PAGE_CACHE_ITEMS: usize = 2000;

/// One piece of rendering work for a snapshot build.
enum Job<'f, 's> {
    Feed(&'f Feed<'s>, Format),
    Yandex(&'f Feed<'s>),
    SectionPage(&'f Feed<'s>),
    Index(&'f Site),
    Robots(&'f Site),
    Subscribe(&'f Site),
    Opml(&'f Site, Format),
}

impl Job<'_, '_> {
    fn run(&self) -> Resource {
        match self {
            Job::Feed(feed, format) => {
                let mut r = Resource::new(
                    format.content_type(),
                    Some(SystemTime::from(feed.updated())),
                    render::render(feed, *format),
                );
                r.topic =
                    feed.site.config.websub_hub.as_ref().and_then(|hub| {
                        crate::websub::Topic::new(hub, feed.url(format.extension()))
                    });
                r
            }
            Job::Yandex(feed) => Resource::new(
                Format::Rss.content_type(),
                Some(SystemTime::from(feed.updated())),
                render::yandex::render(feed),
            ),
            Job::SectionPage(feed) => Resource::new(
                TEXT_HTML,
                Some(SystemTime::from(feed.updated())),
                render::html::section(feed),
            ),
            Job::Index(site) => Resource::new(
                TEXT_HTML,
                site.newest().map(SystemTime::from),
                render::html::index(site),
            ),
            Job::Subscribe(site) => Resource::new(TEXT_HTML, None, render::html::subscribe(site)),
            Job::Robots(site) => Resource::new(TEXT_PLAIN, None, render::sitemap::robots(site)),
            Job::Opml(site, format) => {
                Resource::new(OPML, None, render::opml::render(site, *format))
            }
        }
    }
}

/// The snapshot key of the OPML list that names feeds in `format`.
pub fn opml_key(format: Format) -> String {
    format!("/{}", render::opml::path(format))
}

impl Snapshot {
    /// Renders and compresses every standard feed of the site, in parallel,
    /// brotli included.
    pub fn build(site: Arc<Site>) -> Snapshot {
        Self::build_from(site, None).finished()
    }

    /// This snapshot with every pending gzip and brotli variant computed, in parallel.
    /// Everything else is shared, so the ETags of the other encodings stay.
    pub fn finished(&self) -> Snapshot {
        let mut done = self.clone();
        let pending: Vec<(&String, &Arc<Resource>)> =
            self.resources.iter().filter(|(_, r)| r.pending()).collect();
        let finished: Vec<(String, Arc<Resource>)> = pending
            .into_par_iter()
            .map(|(path, r)| (path.clone(), Arc::new(r.finish())))
            .collect();
        done.resources.extend(finished);
        done.health.compressing = done.pending();
        done
    }

    /// Resources still waiting for their brotli variant.
    pub fn pending(&self) -> usize {
        self.resources.values().filter(|r| r.pending()).count()
    }

    /// Like [`Snapshot::build`], but reuses the bytes of every feed whose
    /// inputs are unchanged since `prev`: same configuration and the very same
    /// entries (`Arc` identity, which the loader keeps for unchanged files).
    /// Unchanged feeds keep their bytes and ETags; only changed ones are
    /// rendered and compressed.
    pub fn build_from(site: Arc<Site>, prev: Option<&Snapshot>) -> Snapshot {
        let prev = prev.filter(|p| p.site.config == site.config);
        let feeds = site.feeds();
        let mut resources: BTreeMap<String, Arc<Resource>> = BTreeMap::new();
        let mut jobs: Vec<(String, Job<'_, '_>)> = Vec::new();
        for feed in &feeds {
            let reusable = prev.and_then(|p| {
                let old = p.site.feed(feed.scope);
                // Page 1 links to the last page, so the page count matters too.
                let same = old.pages == feed.pages
                    && old.entries.len() == feed.entries.len()
                    && old
                        .entries
                        .iter()
                        .zip(&feed.entries)
                        .all(|(a, b)| std::ptr::eq(*a, *b))
                    // An empty feed's date falls back to the site's newest entry.
                    && (!feed.entries.is_empty() || p.site.newest() == site.newest());
                same.then_some(p)
            });
            let mut wanted: Vec<(String, Job<'_, '_>)> = Format::ALL
                .into_iter()
                .map(|f| {
                    let path = format!("/{}", feed_path(feed.scope.slug(), f.extension()));
                    (path, Job::Feed(feed, f))
                })
                .collect();
            wanted.push((
                format!(
                    "/{}",
                    feed_path(feed.scope.slug(), render::yandex::EXTENSION)
                ),
                Job::Yandex(feed),
            ));
            if let Scope::Section(s) = feed.scope {
                wanted.push((
                    format!("/{}", section_path(&s.slug)),
                    Job::SectionPage(feed),
                ));
            }
            for (path, job) in wanted {
                match reusable.and_then(|p| p.resources.get(&path)) {
                    Some(r) => {
                        resources.insert(path, r.clone());
                    }
                    None => jobs.push((path, job)),
                }
            }
        }
        // The home page counts every entry of every section, so it is always rebuilt.
        jobs.push(("/".to_owned(), Job::Index(&site)));
        // The subscription lists and the subscribe page depend on the
        // configuration only.
        let by_config = Format::ALL
            .into_iter()
            .map(|format| (opml_key(format), Job::Opml(&site, format)))
            .chain([
                (SUBSCRIBE_KEY.to_owned(), Job::Subscribe(&site)),
                (ROBOTS_KEY.to_owned(), Job::Robots(&site)),
            ]);
        for (path, job) in by_config {
            match prev.and_then(|p| p.resources.get(&path)) {
                Some(r) => {
                    resources.insert(path, r.clone());
                }
                None => jobs.push((path, job)),
            }
        }
        let rendered: Vec<(String, Arc<Resource>)> = jobs
            .into_par_iter()
            .map(|(path, job)| (path, Arc::new(job.run())))
            .collect();
        let rerendered = rendered.len();
        resources.extend(rendered);
        let list = feed_list(&site);
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
            compressing: resources.values().filter(|r| r.pending()).count(),
            scheduled: site.schedule.scheduled,
            next_due: site.schedule.next_due.map(|t| t.to_rfc3339()),
        };
        Snapshot {
            site,
            resources,
            health,
            not_found,
            rendered: rerendered,
            built: None,
            pages: Arc::new(quick_cache::sync::Cache::new(PAGE_CACHE_ITEMS)),
            ids: Arc::new(OnceLock::new()),
            later: Arc::new(feed_cache()),
            size_limit: Arc::new(OnceLock::new()),
        }
    }

    /// The feed at `/feeds/{slug}.{ext}` as a query selects it. The standard
    /// first page comes from the pre-rendered resources; anything else is
    /// rendered on first request and cached under its canonical URL, so
    /// `?sections=b,a` and `?sections=a,b` share bytes and ETag.
    pub fn feed(
        &self,
        slug: &str,
        format: Format,
        query: &FeedQuery,
    ) -> Result<Arc<Resource>, FeedMiss> {
        let site = &*self.site;
        let config = &site.config;
        let bundle;
        let scope = match (slug, &query.sections) {
            (crate::config::ALL, None) => Scope::All,
            (crate::config::ALL, Some(slugs)) => {
                let slugs: Vec<&str> = slugs.iter().map(String::as_str).collect();
                bundle = site
                    .bundle(&slugs)
                    .map_err(|s| FeedMiss::UnknownSection(s.to_owned()))?;
                Scope::Bundle(&bundle)
            }
            (slug, None) => Scope::Section(config.section(slug).ok_or(FeedMiss::NoFeed)?),
            (_, Some(_)) => return Err(FeedMiss::SectionsNeedAll),
        };
        // A `?limit=` is capped at `max_limit`, and so that the page stays
        // near ON_DEMAND_BYTES even when the site's entries are huge.
        let per_page = match query.limit {
            Some(limit) => limit.clamp(1, config.max_limit.min(self.limit_for_size())),
            None => config.feed_limit,
        };
        let page = query.page.max(1);
        if !matches!(scope, Scope::Bundle(_)) && per_page == config.feed_limit && page == 1 {
            let path = format!("/{}", feed_path(slug, format.extension()));
            return self.get(&path).cloned().ok_or(FeedMiss::NoFeed);
        }
        let pages = crate::model::page_count(site.scope_len(&scope), per_page);
        if page > pages {
            return Err(FeedMiss::PastEnd { pages });
        }
        let key = crate::model::Feed {
            site,
            scope,
            entries: Vec::new(),
            page,
            pages,
            per_page,
        }
        .self_url(format.extension());
        let key = &key[url::Position::BeforePath..];
        self.later.get_or_insert_with(key, || {
            let feed = site
                .feed_page(scope, per_page, page)
                .ok_or(FeedMiss::PastEnd { pages })?;
            Ok(Arc::new(Resource::on_demand_feed(&feed, format)))
        })
    }

    /// The most entries a `?limit=` page may hold so that it stays near
    /// [`ON_DEMAND_BYTES`]: that budget over a generous estimate of the
    /// site's largest entry (twice its Markdown, for the HTML, the summary
    /// and escaping, plus 4 KiB for the item's other fields). Computed once
    /// per snapshot, from the data alone, so replicas cap alike.
    pub fn limit_for_size(&self) -> usize {
        *self.size_limit.get_or_init(|| {
            let largest = self
                .site
                .entries
                .iter()
                .map(|e| e.body.source_len())
                .max()
                .unwrap_or(0);
            (ON_DEMAND_BYTES / (2 * largest + 4096)).max(1)
        })
    }

    /// A sitemap at `path`: `/sitemap.xml`, a child `/sitemap-N.xml` when
    /// the site is past one file's limits, or `/sitemap-news.xml`. Rendered
    /// on first request (crawlers fetch them far less often than an edit
    /// happens) and cached for the snapshot's life.
    pub fn sitemap(&self, path: &str) -> Option<Arc<Resource>> {
        let site = &*self.site;
        let body = || -> Option<Vec<u8>> {
            match path {
                SITEMAP_KEY => Some(render::sitemap::render(site)),
                NEWS_SITEMAP_KEY => Some(render::sitemap::render_news(site)),
                other => {
                    let n = other
                        .strip_prefix("/sitemap-")?
                        .strip_suffix(".xml")
                        .filter(|n| n.bytes().all(|b| b.is_ascii_digit()) && !n.starts_with('0'))?
                        .parse()
                        .ok()?;
                    render::sitemap::render_child(site, n)
                }
            }
        };
        self.later
            .get_or_insert_with(path, || {
                let body = body().ok_or(())?;
                Ok::<_, ()>(Arc::new(Resource::on_demand(
                    XML,
                    site.newest().map(SystemTime::from),
                    body,
                )))
            })
            .ok()
    }

    /// Every sitemap path this snapshot serves, for export.
    pub fn sitemap_keys(&self) -> Vec<String> {
        let children = render::sitemap::children(&self.site);
        [SITEMAP_KEY.to_owned(), NEWS_SITEMAP_KEY.to_owned()]
            .into_iter()
            .chain((1..=children).map(|n| format!("/{}", render::sitemap::child_path(n))))
            .collect()
    }

    /// The resource at a URL path.
    pub fn get(&self, path: &str) -> Option<&Arc<Resource>> {
        self.resources.get(path)
    }

    /// Page `page` (from 1) of a listing: the home page (`/`) or a
    /// section's page (`/sections/{slug}`). Page 1 is the pre-rendered
    /// resource; later pages are rendered on first request and cached with
    /// the later feed pages, under `{path}?page={page}` (`listing_key`).
    pub fn listing(&self, path: &str, page: usize) -> Result<Arc<Resource>, PageMiss> {
        let site = &*self.site;
        let scope = listing_scope(site, path).ok_or(PageMiss::NoPage)?;
        if page <= 1 {
            return self.get(path).cloned().ok_or(PageMiss::NoPage);
        }
        let per_page = listing_size(site, &scope);
        let pages = crate::model::page_count(site.scope_len(&scope), per_page);
        if page > pages {
            return Err(PageMiss::PastEnd { pages });
        }
        self.later.get_or_insert_with(&listing_key(path, page), || {
            let feed = site
                .feed_page(scope, per_page, page)
                .ok_or(PageMiss::PastEnd { pages })?;
            Ok(Arc::new(render_listing(&feed)))
        })
    }

    /// True when an entry with this id is published.
    pub fn has_entry(&self, id: &str) -> bool {
        self.ids().contains_key(id)
    }

    /// Entry index by id, built on first use.
    fn ids(&self) -> &HashMap<String, usize> {
        self.ids.get_or_init(|| {
            self.site
                .entries
                .iter()
                .enumerate()
                .map(|(i, e)| (e.id.clone(), i))
                .collect()
        })
    }

    /// The page of the entry with this id, rendered on first request and
    /// cached for the life of the snapshot. Pre-rendering every entry page
    /// would cost memory proportional to the archive for pages few people open.
    pub fn news_page(&self, id: &str) -> Option<Arc<Resource>> {
        if let Some(r) = self.pages.get(id) {
            return Some(r);
        }
        let entry = &self.site.entries[*self.ids().get(id)?];
        let page = Arc::new(self.render_news_page(entry));
        self.pages.insert(id.to_owned(), page.clone());
        Some(page)
    }

    /// The page of one entry of this snapshot's site, rendered and
    /// compressed, without the cache (export writes each page once). The
    /// body is rendered inside [`crate::entry::html::uncached`].
    pub fn render_news_page(&self, entry: &crate::entry::Entry) -> Resource {
        Resource::on_demand(
            TEXT_HTML,
            Some(SystemTime::from(entry.modified())),
            crate::entry::html::uncached(|| render::html::news(&self.site, entry)),
        )
    }
}

/// The snapshot key of the page that explains how to subscribe.
pub const SUBSCRIBE_KEY: &str = "/subscribe";

/// The scope a listing page at `path` shows: the combined one for the home
/// page, a section's for `/sections/{slug}`.
fn listing_scope<'s>(site: &'s Site, path: &str) -> Option<Scope<'s>> {
    if path == "/" {
        return Some(Scope::All);
    }
    let slug = path.strip_prefix("/sections/")?;
    site.config.section(slug).map(Scope::Section)
}

/// The snapshot key of a later page of the listing at `path`, as
/// [`crate::export::file_for`] reads it: `/?page=2`, `/sections/{slug}?page=2`.
/// (The pages' own links are absolute URLs from [`Feed::html_page_url`].)
fn listing_key(path: &str, page: usize) -> String {
    format!("{path}?page={page}")
}

/// Entries per page of a listing: [`render::html::HOME_PAGE_SIZE`] on the
/// home page, `feed_limit` on a section's page (its feed's first page).
fn listing_size(site: &Site, scope: &Scope<'_>) -> usize {
    match scope {
        Scope::Section(_) => site.config.feed_limit,
        Scope::All | Scope::Bundle(_) => render::html::HOME_PAGE_SIZE,
    }
}

/// A later page of a listing, rendered and compressed as on the request
/// path (gzip 6, brotli 4 or 5; [`Resource::on_demand`]). Export writes
/// these same bytes.
pub fn render_listing(feed: &Feed<'_>) -> Resource {
    let body = match feed.scope {
        Scope::Section(_) => render::html::section(feed),
        Scope::All | Scope::Bundle(_) => render::html::home(feed),
    };
    Resource::on_demand(TEXT_HTML, Some(SystemTime::from(feed.updated())), body)
}

/// Every later page (from 2) of every listing, as (snapshot key, page):
/// the home page's, then each section's, each from one pass over the
/// entries. Export writes them all.
pub fn later_listings(site: &Site) -> Vec<(String, Feed<'_>)> {
    let scopes = std::iter::once(("/".to_owned(), Scope::All)).chain(
        site.config
            .sections
            .iter()
            .map(|s| (format!("/{}", section_path(&s.slug)), Scope::Section(s))),
    );
    scopes
        .flat_map(|(path, scope)| {
            site.feed_pages(scope, listing_size(site, &scope))
                .into_iter()
                .skip(1)
                .map(move |feed| (listing_key(&path, feed.page), feed))
        })
        .collect()
}

const TEXT_HTML: &str = "text/html; charset=utf-8";
const TEXT_PLAIN: &str = "text/plain; charset=utf-8";
const XML: &str = "application/xml; charset=utf-8";

/// The snapshot key of `robots.txt`.
pub const ROBOTS_KEY: &str = "/robots.txt";

/// The snapshot key of the Google News sitemap.
pub const NEWS_SITEMAP_KEY: &str = "/sitemap-news.xml";

/// The snapshot key of the sitemap (or sitemap index).
pub const SITEMAP_KEY: &str = "/sitemap.xml";
const OPML: &str = "text/x-opml; charset=utf-8";

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
        for ext in Format::ALL
            .iter()
            .map(|f| f.extension())
            .chain([render::yandex::EXTENSION])
        {
            let _ = writeln!(out, "  {}", config.url(&feed_path(slug, ext)));
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
    gzip_at(data, 9)
}

/// The gzip level of resources rendered on the request path.
pub const ON_DEMAND_GZIP: u32 = 6;

/// gzip at `level` (0 to 9), deterministic like [`gzip`].
fn gzip_at(data: &[u8], level: u32) -> Vec<u8> {
    let mut enc = flate2::GzBuilder::new().write(
        Vec::with_capacity(data.len() / 3),
        flate2::Compression::new(level),
    );
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

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

/// Brotli at [`BROTLI_QUALITY`] with a 4 MiB window, as [`Resource::finish`]
/// compresses.
pub fn brotli(data: &[u8]) -> Vec<u8> {
    brotli_at(data, BROTLI_QUALITY, 22)
}

/// Bodies up to this size count as small for [`on_demand_brotli`].
const SMALL_BODY: usize = 64 * 1024;

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
        (4, fitted.clamp(10, 22))
    } else {
        (5, 22)
    }
}

/// Brotli at `quality` with a window of 2^`lgwin` bytes.
fn brotli_at(data: &[u8], quality: i32, lgwin: i32) -> Vec<u8> {
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
        let r = Resource::complete("text/plain", None, "x".repeat(1000).into_bytes());
        let gz = r.gzip.as_ref().unwrap();
        let br = r.brotli.as_ref().unwrap();
        assert_ne!(r.identity.etag, gz.etag);
        assert_ne!(gz.etag, br.etag);
        assert!(r.identity.etag.starts_with('"') && r.identity.etag.len() == 34);

        let tiny = Resource::complete("text/plain", None, b"x".to_vec());
        assert!(tiny.gzip.is_none() && tiny.brotli.is_none());
    }
}
