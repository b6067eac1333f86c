//! What is rendered on first request rather than with the snapshot: later
//! feed pages, other page sizes and bundles, later home and section pages,
//! entry pages and sitemaps. Each is cached for the snapshot's life in a
//! bounded cache; [`Snapshot::items`] renders every exported one without
//! caching, for `vestnik build`.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use super::{Key, Resource, Snapshot, TEXT_HTML, XML};
use crate::entry::Entry;
use crate::model::{Feed, Scope, Site, page_count};
use crate::render::{self, Format, Retain};

/// Why a key has no resource in this snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    /// Nothing by that key: an unknown feed, section, page or entry.
    NotFound,
    /// A bundle names a section that does not exist.
    UnknownSection(String),
    /// The page is past the last one.
    PastEnd {
        /// How many pages there are.
        pages: usize,
    },
    /// The entry is past its `expires` (410 Gone).
    Expired,
}

/// Bytes of on-demand feed pages, bundles and later listing pages kept per snapshot.
const LATER_CACHE_BYTES: u64 = 64 << 20;

/// Shards of that cache. A shard holds at most its share of the bytes, and
/// a resource heavier than that is never cached; two shards of 32 MiB keep
/// even a page at [`ON_DEMAND_BYTES`] (with its compressed variants).
const LATER_CACHE_SHARDS: usize = 2;

/// Entry pages kept per snapshot; at ~10 KB each, about 20 MB at most.
const PAGE_CACHE_ITEMS: usize = 2000;

/// About the largest body a `?limit=` feed page is rendered to: past it,
/// the page holds fewer entries (see [`Snapshot::limit_for_size`]), and its
/// paging links lead on to the rest.
pub const ON_DEMAND_BYTES: usize = 8 << 20;

/// The caches of one snapshot, shared by its clones (a compression install
/// clones the snapshot; the caches stay).
#[derive(Debug, Clone)]
pub(super) struct Later {
    /// Entry pages, by id.
    pages: Arc<quick_cache::sync::Cache<String, Arc<Resource>>>,
    /// Entry index by id, built on the first entry page request.
    ids: Arc<OnceLock<HashMap<String, usize>>>,
    /// Everything else rendered on demand, bounded by its size in bytes.
    /// Concurrent requests for one key wait for one render (single flight).
    by_key: Arc<quick_cache::sync::Cache<Key, Arc<Resource>, ByteWeight>>,
    /// [`Snapshot::limit_for_size`], once computed.
    size_limit: Arc<OnceLock<usize>>,
}

/// Weighs cached resources by the bytes they hold.
#[derive(Debug, Clone, Copy)]
pub(super) struct ByteWeight;

impl quick_cache::Weighter<Key, Arc<Resource>> for ByteWeight {
    fn weight(&self, _key: &Key, val: &Arc<Resource>) -> u64 {
        // The key's own few dozen bytes, and the bodies.
        64 + val.weight()
    }
}

impl Later {
    pub(super) fn new() -> Later {
        let options = quick_cache::OptionsBuilder::new()
            .estimated_items_capacity(1024)
            .weight_capacity(LATER_CACHE_BYTES)
            .shards(LATER_CACHE_SHARDS)
            .build()
            .unwrap_or_else(|_| unreachable!("every option is set"));
        Later {
            pages: Arc::new(quick_cache::sync::Cache::new(PAGE_CACHE_ITEMS)),
            ids: Arc::new(OnceLock::new()),
            by_key: Arc::new(quick_cache::sync::Cache::with_options(
                options,
                ByteWeight,
                Default::default(),
                Default::default(),
            )),
            size_limit: Arc::new(OnceLock::new()),
        }
    }
}

/// What one exported resource is rendered from.
enum Work<'s> {
    /// Already in the snapshot.
    Held(&'s Arc<Resource>),
    News(&'s Entry),
    FeedPage(Feed<'s>, Format),
    Listing(Feed<'s>),
    Sitemap,
}

/// One resource `vestnik build` writes: its key, and its rendering.
pub struct Item<'s> {
    /// Where it is served, and (through [`Key::file`]) written.
    pub key: Key,
    work: Work<'s>,
}

impl Snapshot {
    /// The resource under `key`: pre-rendered, or rendered on first request
    /// and cached for the snapshot's life. A feed's key is made canonical
    /// first (a bundle's sections sorted, a limit clamped to `max_limit`
    /// and to [`Snapshot::limit_for_size`], the default limit dropped), so
    /// equivalent queries share bytes and ETag, and the standard first
    /// page is always the pre-rendered one.
    pub fn resolve(&self, key: &Key) -> Result<Arc<Resource>, Miss> {
        match key {
            Key::Feed {
                slug,
                sections,
                format,
                limit,
                page,
            } => self.feed(slug, sections, *format, *limit, *page),
            Key::Home { page } | Key::Section { page, .. } if *page > 1 => self.listing(key),
            Key::News { id } => self.news_page(id).ok_or_else(|| {
                // An entry past its `expires` is gone for good; one not due
                // yet is a 404 like an id that never existed.
                if self.site.schedule.expired.contains(id) {
                    Miss::Expired
                } else {
                    Miss::NotFound
                }
            }),
            Key::Sitemap | Key::SitemapChild(_) | Key::NewsSitemap => self
                .later
                .by_key
                .get_or_insert_with(key, || {
                    self.render_sitemap(key, Siblings::Compute)
                        .map(Arc::new)
                        .ok_or(())
                })
                .map_err(|()| Miss::NotFound),
            _ => self.resources.get(key).cloned().ok_or(Miss::NotFound),
        }
    }

    /// True when `key` names a resource of this snapshot (rendering nothing
    /// but an entry index).
    pub fn has(&self, key: &Key) -> bool {
        match key {
            Key::News { id } => self.ids().contains_key(id),
            other => self.resources.contains_key(other),
        }
    }

    fn feed(
        &self,
        slug: &str,
        sections: &[String],
        format: Format,
        limit: Option<usize>,
        page: usize,
    ) -> Result<Arc<Resource>, Miss> {
        let site = &*self.site;
        let config = &site.config;
        let bundle;
        let scope = match (slug, sections) {
            (crate::config::ALL, []) => Scope::All,
            (crate::config::ALL, slugs) => {
                let slugs: Vec<&str> = slugs.iter().map(String::as_str).collect();
                bundle = site
                    .bundle(&slugs)
                    .map_err(|s| Miss::UnknownSection(s.to_owned()))?;
                Scope::Bundle(&bundle)
            }
            (slug, []) => Scope::Section(config.section(slug).ok_or(Miss::NotFound)?),
            // Key::parse refuses sections= on a section's feed.
            (_, _) => return Err(Miss::NotFound),
        };
        // A `?limit=` is capped at `max_limit`, and so that the page stays
        // near ON_DEMAND_BYTES even when the site's entries are huge.
        let per_page = match limit {
            Some(limit) => limit.clamp(1, config.max_limit.min(self.limit_for_size())),
            None => config.feed_limit,
        };
        let page = page.max(1);
        let canonical = Key::Feed {
            slug: scope.slug().to_owned(),
            sections: match scope {
                Scope::Bundle(b) => b.iter().map(|s| s.slug.clone()).collect(),
                Scope::All | Scope::Section(_) => Vec::new(),
            },
            format,
            limit: (per_page != config.feed_limit).then_some(per_page),
            page,
        };
        if let Some(standard) = self.resources.get(&canonical) {
            return Ok(standard.clone());
        }
        let pages = page_count(site.scope_len(&scope), per_page);
        if page > pages {
            return Err(Miss::PastEnd { pages });
        }
        self.later.by_key.get_or_insert_with(&canonical, || {
            let feed = site
                .feed_page(scope, per_page, page)
                .ok_or(Miss::PastEnd { pages })?;
            Ok(Arc::new(feed_page(&feed, format, Siblings::Compute)))
        })
    }

    /// The most entries a `?limit=` page may hold so that it stays near
    /// [`ON_DEMAND_BYTES`]: that budget over a generous estimate of the
    /// site's largest entry (twice its Markdown, for the HTML, the summary
    /// and escaping, plus 4 KiB for the item's other fields). Computed once
    /// per snapshot, from the data alone, so replicas cap alike.
    pub fn limit_for_size(&self) -> usize {
        *self.later.size_limit.get_or_init(|| {
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

    /// A later page (from 2) of a listing: the home page or a section's.
    fn listing(&self, key: &Key) -> Result<Arc<Resource>, Miss> {
        let site = &*self.site;
        let (scope, page) = match key {
            Key::Home { page } => (Scope::All, *page),
            Key::Section { slug, page } => (
                Scope::Section(site.config.section(slug).ok_or(Miss::NotFound)?),
                *page,
            ),
            _ => return Err(Miss::NotFound),
        };
        let per_page = listing_size(site, &scope);
        let pages = page_count(site.scope_len(&scope), per_page);
        if page > pages {
            return Err(Miss::PastEnd { pages });
        }
        self.later.by_key.get_or_insert_with(key, || {
            let feed = site
                .feed_page(scope, per_page, page)
                .ok_or(Miss::PastEnd { pages })?;
            Ok(Arc::new(listing_page(&feed, Siblings::Compute)))
        })
    }

    /// Entry index by id, built on first use.
    fn ids(&self) -> &HashMap<String, usize> {
        self.later.ids.get_or_init(|| {
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
    fn news_page(&self, id: &str) -> Option<Arc<Resource>> {
        if let Some(r) = self.later.pages.get(id) {
            return Some(r);
        }
        let entry = &self.site.entries[*self.ids().get(id)?];
        let page = Arc::new(self.render_news_page(entry, Siblings::Compute));
        self.later.pages.insert(id.to_owned(), page.clone());
        Some(page)
    }

    /// The page of one entry, rendered (and compressed, as `siblings`
    /// says), without caching.
    fn render_news_page(&self, entry: &Entry, siblings: Siblings) -> Resource {
        siblings.on_demand(Resource::new(
            TEXT_HTML,
            Some(SystemTime::from(entry.modified())),
            render::html::news(&self.site, entry, Retain::Discard),
        ))
    }

    /// A sitemap, rendered (crawlers fetch them far less often than an
    /// edit happens); `None` for a child past the last.
    fn render_sitemap(&self, key: &Key, siblings: Siblings) -> Option<Resource> {
        let site = &*self.site;
        let body = match key {
            Key::Sitemap => render::sitemap::render(site),
            Key::NewsSitemap => render::sitemap::render_news(site),
            Key::SitemapChild(n) => render::sitemap::render_child(site, *n)?,
            _ => return None,
        };
        Some(siblings.on_demand(Resource::new(
            XML,
            site.newest().map(SystemTime::from),
            body,
        )))
    }

    /// Every key this snapshot serves that `vestnik build` exports: the
    /// pre-rendered resources, every entry's page, every later page of the
    /// standard feeds and of the home and section pages, and the sitemaps.
    /// Bundles and other page sizes exist only as queries.
    pub fn keys(&self) -> Vec<Key> {
        self.items().into_iter().map(|item| item.key).collect()
    }

    /// [`Snapshot::keys`] with what renders each, for `vestnik build`.
    /// Later pages are cut from one pass over the entries per scope.
    pub fn items(&self) -> Vec<Item<'_>> {
        let site = &*self.site;
        let mut items: Vec<Item<'_>> = self
            .resources
            .iter()
            .map(|(key, r)| Item {
                key: key.clone(),
                work: Work::Held(r),
            })
            .collect();
        items.extend(site.entries.iter().map(|e| Item {
            key: Key::News { id: e.id.clone() },
            work: Work::News(e),
        }));
        let scopes =
            std::iter::once(Scope::All).chain(site.config.sections.iter().map(Scope::Section));
        for scope in scopes {
            for feed in site
                .feed_pages(scope, site.config.feed_limit)
                .into_iter()
                .skip(1)
            {
                for format in Format::ALL {
                    let key = Key::Feed {
                        slug: scope.slug().to_owned(),
                        sections: Vec::new(),
                        format,
                        limit: None,
                        page: feed.page,
                    };
                    items.push(Item {
                        key,
                        work: Work::FeedPage(feed.clone(), format),
                    });
                }
            }
            for feed in site
                .feed_pages(scope, listing_size(site, &scope))
                .into_iter()
                .skip(1)
            {
                let key = match scope {
                    Scope::Section(s) => Key::Section {
                        slug: s.slug.clone(),
                        page: feed.page,
                    },
                    Scope::All | Scope::Bundle(_) => Key::Home { page: feed.page },
                };
                items.push(Item {
                    key,
                    work: Work::Listing(feed),
                });
            }
        }
        let children = render::sitemap::children(site);
        items.extend(
            [Key::Sitemap, Key::NewsSitemap]
                .into_iter()
                .chain((1..=children).map(Key::SitemapChild))
                .map(|key| Item {
                    key,
                    work: Work::Sitemap,
                }),
        );
        items
    }
}

impl Item<'_> {
    /// The input key of this item's page for an incremental build
    /// ([`crate::inputs`]): entry pages, later feed pages and later listing
    /// pages. The pre-rendered resources and the sitemaps have none; a
    /// build compares their bytes instead.
    pub fn input(&self, keys: &crate::inputs::Keys) -> Option<String> {
        match &self.work {
            Work::News(entry) => keys.news(entry),
            Work::FeedPage(feed, format) => keys.page(format.extension(), feed),
            Work::Listing(feed) => keys.page("html", feed),
            Work::Held(_) | Work::Sitemap => None,
        }
    }

    /// Whether a build writes this resource's compressed siblings: the
    /// standard resources and the sitemaps (see [`Siblings`]).
    pub fn has_siblings(&self) -> bool {
        matches!(self.work, Work::Held(_) | Work::Sitemap)
    }

    /// `r`, as [`Item::render`] gave it, with the compressed variants
    /// `serve` has for it: the standard ones' ([`Resource::finish`]) for a
    /// resource of a snapshot not compressed yet ([`Snapshot::build_from`]),
    /// a page rendered on request's for a sitemap. A build calls it only
    /// for what changed.
    pub fn compress(&self, r: &Resource) -> Resource {
        match self.work {
            Work::Sitemap => r.clone().compress_on_demand(),
            _ => r.finish(),
        }
    }

    /// The resource, rendered as `serve` renders it on request (the same
    /// bytes), but never cached: a build writes each once. Entry pages and
    /// later pages of feeds and listings come without compressed variants
    /// (see [`Siblings`]), and so do the sitemaps: a build compresses them
    /// only when they changed ([`Item::compress`]).
    pub fn render(&self, snapshot: &Snapshot) -> Option<Arc<Resource>> {
        let none = Siblings::Skip;
        Some(match &self.work {
            Work::Held(r) => Arc::clone(r),
            Work::News(entry) => Arc::new(snapshot.render_news_page(entry, none)),
            Work::FeedPage(feed, format) => Arc::new(feed_page(feed, *format, none)),
            Work::Listing(feed) => Arc::new(listing_page(feed, none)),
            Work::Sitemap => Arc::new(snapshot.render_sitemap(&self.key, none)?),
        })
    }
}

/// A feed that is not pre-rendered: a bundle, another `limit`, or a later
/// page.
///
/// Later pages (RFC 5005 history) get gzip only. There are a hundred of
/// them for each standard feed in a large archive, each fetched about
/// once per subscriber (by an aggregator backfilling), and gzip is what
/// every aggregator accepts; brotli 5 would double their compression
/// time (~5 ms more per 150 KB page) for bodies 2-7% smaller.
///
/// Renders with [`Retain::Discard`]: the bodies of the archive's entries
/// are not kept once their page is written.
fn feed_page(feed: &Feed<'_>, format: Format, siblings: Siblings) -> Resource {
    let content_type = format.content_type();
    let last_modified = Some(SystemTime::from(feed.updated()));
    let r = Resource::new(
        content_type,
        last_modified,
        render::render(feed, format, Retain::Discard),
    );
    match siblings {
        Siblings::Skip => r,
        Siblings::Compute if feed.page > 1 => {
            r.with_gzip_at(super::compress::ON_DEMAND_GZIP).gzip_only()
        }
        Siblings::Compute => siblings.on_demand(r),
    }
}

/// Whether a page rendered on request gets its compressed variants.
///
/// `serve` computes them (gzip 6, brotli 4 or 5; later feed pages gzip
/// only), since it answers from memory. `vestnik build` writes entry pages
/// and the later pages of feeds and listings without `.gz`/`.br` siblings:
/// they are most of the files, few people fetch any one of them, and the
/// web server compresses such a page on the fly when asked (`gzip on` in
/// deploy/nginx.conf). Measured on a 10,000-entry corpus (two runs each):
/// with siblings 35,624 files, 11.5-13.3 s wall and 15 s of user CPU;
/// without, 12,584 files, 8.1-9.1 s and 6.5-6.8 s. The standard feeds, pages and lists,
/// which every poll fetches, keep precompressed siblings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Siblings {
    Compute,
    Skip,
}

impl Siblings {
    /// `r` with the variants of a page rendered on request, or as it is.
    fn on_demand(self, r: Resource) -> Resource {
        match self {
            Siblings::Compute => r.compress_on_demand(),
            Siblings::Skip => r,
        }
    }
}

/// Entries per page of a listing: [`render::html::HOME_PAGE_SIZE`] on the
/// home page, `feed_limit` on a section's page (its feed's first page).
fn listing_size(site: &Site, scope: &Scope<'_>) -> usize {
    match scope {
        Scope::Section(_) => site.config.feed_limit,
        Scope::All | Scope::Bundle(_) => render::html::HOME_PAGE_SIZE,
    }
}

/// A later page of a listing, rendered (and compressed as on the request
/// path, as `siblings` says).
fn listing_page(feed: &Feed<'_>, siblings: Siblings) -> Resource {
    let body = match feed.scope {
        Scope::Section(_) => render::html::section(feed),
        Scope::All | Scope::Bundle(_) => render::html::home(feed),
    };
    siblings.on_demand(Resource::new(
        TEXT_HTML,
        Some(SystemTime::from(feed.updated())),
        body,
    ))
}
