//! Sections, entries and the feeds they form. No I/O, no clock.
//!
//! A [`Site`] owns the configuration and the published entries, sorted newest
//! first. A [`Feed`] is a view: a scope (combined, one section or a bundle of
//! sections) plus one page of the entries that belong in it. Page 1 of the
//! default size (`feed_limit`) is the feed subscribers see; the later pages
//! (RFC 5005 paged feeds) hold the rest of the history.

mod order;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, FixedOffset};
use url::Url;

use crate::config::{ALL, Config, Section};
use crate::diagnostic::Diagnostic;
use crate::entry::Entry;
use crate::urls;

pub use order::Order;

/// Everything the renderers need, built from one load of the data directory.
#[derive(Debug)]
pub struct Site {
    /// The validated configuration.
    pub config: Config,
    /// Published entries, newest first; ties broken by id.
    ///
    /// Shared with the loader's per-file cache, so an entry whose file did not
    /// change is the same allocation across reloads; `Arc::ptr_eq` tells the
    /// snapshot which feeds need no re-render. Shared in chunks, so a site
    /// for an edit costs one chunk, not a copy of the order.
    pub entries: Order,
    /// Problems found while loading.
    pub diagnostics: Vec<Diagnostic>,
    /// Entries per configured section, in configuration order, counted on first use.
    counts: OnceLock<Vec<usize>>,
    /// What is not public at the site's cutoff, and when that changes.
    pub schedule: Schedule,
}

/// How far back the news sitemap reaches from the cutoff (Google News reads
/// two days); the schedule wakes the server when an entry leaves it.
pub const NEWS_WINDOW: chrono::TimeDelta = chrono::TimeDelta::days(2);

/// The entries a time leaves out of a site, and when that changes. A site is
/// a function of the data and its cutoff, so this is too.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schedule {
    /// The time the site was built for; `None` leaves nothing out.
    pub cutoff: Option<DateTime<chrono::Utc>>,
    /// Entries not due yet at the cutoff.
    pub scheduled: usize,
    /// The earliest time after the cutoff when the public entries change:
    /// a scheduled entry's due time or a public entry's expiry.
    pub next_change: Option<DateTime<chrono::Utc>>,
    /// The earliest due time of a scheduled entry, for `/healthz` and `build`.
    pub next_due: Option<DateTime<FixedOffset>>,
    /// Ids of entries past their `expires`: their pages answer 410 Gone.
    pub expired: std::collections::HashSet<String>,
}

impl Schedule {
    /// True when both leave out the same entries and change at the same
    /// time: whatever their cutoffs, their sites publish the same.
    pub fn same_entries(&self, other: &Schedule) -> bool {
        self.scheduled == other.scheduled
            && self.next_change == other.next_change
            && self.expired == other.expired
    }
}

/// Which entries a feed covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// Every published entry.
    All,
    /// The entries of one section.
    Section(&'a Section),
    /// The entries of any of these sections (`?sections=a,b`), sorted by slug,
    /// without duplicates; an entry in two of them appears once.
    Bundle(&'a [&'a Section]),
}

/// A feed ready to render: its scope and one page of its entries, newest first.
#[derive(Debug, Clone)]
pub struct Feed<'a> {
    /// The site the feed belongs to.
    pub site: &'a Site,
    /// Combined, one section or a bundle.
    pub scope: Scope<'a>,
    /// This page's entries (at most `per_page`), newest first.
    pub entries: Vec<&'a Entry>,
    /// This page's number, from 1.
    pub page: usize,
    /// How many pages the scope's entries fill; at least 1.
    pub pages: usize,
    /// Entries per page: `feed_limit`, or the request's `?limit`.
    pub per_page: usize,
}

/// Orders entries newest first, ties broken by id so the order is total.
pub fn newest_first(a: &Entry, b: &Entry) -> std::cmp::Ordering {
    b.published.cmp(&a.published).then_with(|| a.id.cmp(&b.id))
}

impl Site {
    /// Builds a site from a configuration and loaded entries.
    pub fn new(config: Config, mut entries: Vec<Arc<Entry>>, diagnostics: Vec<Diagnostic>) -> Site {
        entries.sort_by(|a, b| newest_first(a, b));
        Site {
            config,
            entries: Order::from(entries),
            diagnostics,
            counts: OnceLock::new(),
            schedule: Schedule::default(),
        }
    }

    /// This site with the schedule its entries were chosen by.
    pub fn with_schedule(mut self, schedule: Schedule) -> Site {
        self.schedule = schedule;
        self
    }

    /// Builds a site from entries already in [`newest_first`] order.
    pub fn from_sorted(config: Config, entries: Order, diagnostics: Vec<Diagnostic>) -> Site {
        debug_assert!(
            entries
                .iter()
                .zip(entries.iter().skip(1))
                .all(|(a, b)| newest_first(a, b).is_le())
        );
        Site {
            config,
            entries,
            diagnostics,
            counts: OnceLock::new(),
            schedule: Schedule::default(),
        }
    }

    /// The combined feed followed by one feed per section, in site order.
    pub fn feeds(&self) -> Vec<Feed<'_>> {
        std::iter::once(Scope::All)
            .chain(self.config.sections.iter().map(Scope::Section))
            .map(|scope| self.feed(scope))
            .collect()
    }

    /// The first page of a scope's feed at the default size: the feed that
    /// subscribers poll.
    pub fn feed(&self, scope: Scope<'_>) -> Feed<'_> {
        let scope = self.own_scope(scope);
        let per_page = self.config.feed_limit;
        let entries = self
            .entries
            .iter()
            .map(|e| &**e)
            .filter(|e| scope.contains(e))
            .take(per_page)
            .collect();
        Feed {
            site: self,
            scope,
            entries,
            page: 1,
            pages: page_count(self.scope_len(&scope), per_page),
            per_page,
        }
    }

    /// Page `page` (from 1) of a scope's feed with `per_page` entries per
    /// page, or `None` past the last page. Page 1 always exists, even empty.
    pub fn feed_page<'s>(
        &'s self,
        scope: Scope<'s>,
        per_page: usize,
        page: usize,
    ) -> Option<Feed<'s>> {
        let per_page = per_page.max(1);
        let pages = page_count(self.scope_len(&scope), per_page);
        if page == 0 || page > pages {
            return None;
        }
        let entries = self
            .entries
            .iter()
            .map(|e| &**e)
            .filter(|e| scope.contains(e))
            .skip((page - 1) * per_page)
            .take(per_page)
            .collect();
        Some(Feed {
            site: self,
            scope,
            entries,
            page,
            pages,
            per_page,
        })
    }

    /// Every page of a scope's feed with `per_page` entries per page, from
    /// one pass over the entries (for export, where a page at a time would
    /// scan the archive once per page).
    pub fn feed_pages<'s>(&'s self, scope: Scope<'s>, per_page: usize) -> Vec<Feed<'s>> {
        let per_page = per_page.max(1);
        let entries: Vec<&Entry> = self
            .entries
            .iter()
            .map(|e| &**e)
            .filter(|e| scope.contains(e))
            .collect();
        let pages = page_count(entries.len(), per_page);
        let mut chunks: Vec<Vec<&Entry>> =
            entries.chunks(per_page).map(<[&Entry]>::to_vec).collect();
        if chunks.is_empty() {
            chunks.push(Vec::new());
        }
        chunks
            .into_iter()
            .enumerate()
            .map(|(i, entries)| Feed {
                site: self,
                scope,
                entries,
                page: i + 1,
                pages,
                per_page,
            })
            .collect()
    }

    /// A scope whose section borrows from this site, so that the feed's
    /// lifetime is the site's.
    fn own_scope(&self, scope: Scope<'_>) -> Scope<'_> {
        match scope {
            Scope::Section(s) => match self.config.section(&s.slug) {
                Some(own) => Scope::Section(own),
                None => Scope::All,
            },
            // Bundles are only built from this site's sections (see
            // `Site::bundle`); anything else falls back to the combined feed.
            Scope::All | Scope::Bundle(_) => Scope::All,
        }
    }

    /// How many published entries a scope holds.
    pub fn scope_len(&self, scope: &Scope<'_>) -> usize {
        match scope {
            Scope::All => self.entries.len(),
            Scope::Section(s) => self.section_len(&s.slug),
            Scope::Bundle(_) => self.entries.iter().filter(|e| scope.contains(e)).count(),
        }
    }

    /// How many published entries name the section `slug`.
    pub fn section_len(&self, slug: &str) -> usize {
        self.config
            .sections
            .iter()
            .position(|s| s.slug == slug)
            .map_or(0, |i| self.section_counts()[i])
    }

    /// Published entries per configured section, in configuration order,
    /// counted on first use.
    pub fn section_counts(&self) -> &[usize] {
        self.counts
            .get_or_init(|| count_sections(&self.config, &self.entries))
    }

    /// This site with its section counts already known (the loader keeps
    /// them across in-place edits). Debug builds check them.
    pub fn with_section_counts(self, counts: Vec<usize>) -> Site {
        debug_assert_eq!(counts, count_sections(&self.config, &self.entries));
        let _ = self.counts.set(counts);
        self
    }

    /// The configured sections with these slugs, sorted by slug and without
    /// duplicates, or the first slug that names no section.
    pub fn bundle<'q>(&self, slugs: &[&'q str]) -> Result<Vec<&Section>, &'q str> {
        let mut sections = slugs
            .iter()
            .map(|slug| self.config.section(slug).ok_or(*slug))
            .collect::<Result<Vec<_>, _>>()?;
        sections.sort_by(|a, b| a.slug.cmp(&b.slug));
        sections.dedup_by(|a, b| a.slug == b.slug);
        Ok(sections)
    }

    /// The newest modification time of any entry, if there is one.
    pub fn newest(&self) -> Option<DateTime<FixedOffset>> {
        self.entries.newest()
    }
}

impl Scope<'_> {
    /// The slug used in URL paths: the section's slug, else `all` (a bundle
    /// is served at `feeds/all.*?sections=...`).
    pub fn slug(&self) -> &str {
        match self {
            Scope::All | Scope::Bundle(_) => ALL,
            Scope::Section(s) => &s.slug,
        }
    }

    /// True when the entry belongs in this scope.
    pub fn contains(&self, entry: &Entry) -> bool {
        match self {
            Scope::All => true,
            Scope::Section(s) => entry.sections.contains(&s.slug),
            Scope::Bundle(sections) => sections.iter().any(|s| entry.sections.contains(&s.slug)),
        }
    }
}

impl Feed<'_> {
    /// The feed title: the site's, or "{site} — {section}".
    pub fn title(&self) -> String {
        let site = &self.site.config.title;
        match self.scope {
            Scope::All => site.clone(),
            Scope::Section(s) => format!("{site} — {}", s.title),
            Scope::Bundle(sections) => {
                let titles: Vec<&str> = sections.iter().map(|s| s.title.as_str()).collect();
                format!("{site} — {}", titles.join(", "))
            }
        }
    }

    /// The section's description, else the site's, else the title.
    pub fn description(&self) -> String {
        let c = &self.site.config;
        let own = match self.scope {
            Scope::Section(s) => s.description.clone(),
            Scope::All | Scope::Bundle(_) => None,
        };
        own.or_else(|| (!c.description.is_empty()).then(|| c.description.clone()))
            .unwrap_or_else(|| self.title())
    }

    /// The absolute URL of this feed's first page in a format with extension
    /// `ext` (`rss`, `atom`, `json`): the URL to subscribe to, and the feed's id.
    pub fn url(&self, ext: &str) -> Url {
        self.page_url(ext, 1)
    }

    /// The absolute URL of this page in a format with extension `ext`.
    pub fn self_url(&self, ext: &str) -> Url {
        self.page_url(ext, self.page)
    }

    /// The canonical absolute URL of page `page` of this feed: the bundle's
    /// sections sorted, then a `limit` that differs from `feed_limit`, then a
    /// page past the first, so caches and hubs see one URL per feed page.
    pub fn page_url(&self, ext: &str, page: usize) -> Url {
        let mut url = self.site.config.url(&urls::feed(self.scope.slug(), ext));
        let bundle: Vec<&str> = match self.scope {
            Scope::Bundle(sections) => sections.iter().map(|s| s.slug.as_str()).collect(),
            Scope::All | Scope::Section(_) => Vec::new(),
        };
        let limit = (self.per_page != self.site.config.feed_limit).then_some(self.per_page);
        url.set_query(urls::feed_query(&bundle, limit, page).as_deref());
        url
    }

    /// True for the feeds subscribers poll and WebSub announces: the first
    /// page, at `feed_limit` entries, of the combined feed or a section.
    /// Later pages, other page sizes and bundles are rendered on request.
    pub fn is_standard(&self) -> bool {
        self.page == 1
            && self.per_page == self.site.config.feed_limit
            && !matches!(self.scope, Scope::Bundle(_))
    }

    /// The WebSub hub this feed names: the configured one, for standard
    /// feeds only, since only their changes are announced to it.
    pub fn hub(&self) -> Option<&Url> {
        self.site
            .config
            .websub_hub
            .as_ref()
            .filter(|_| self.is_standard())
    }

    /// RFC 5005 paging links of this page, as `(rel, page number)`: `first`
    /// and `last` always, `previous` and `next` where those pages exist.
    pub fn paging(&self) -> Vec<(&'static str, usize)> {
        let mut links = vec![("first", 1)];
        if self.page > 1 {
            links.push(("previous", self.page - 1));
        }
        if self.page < self.pages {
            links.push(("next", self.page + 1));
        }
        links.push(("last", self.pages));
        links
    }

    /// The human page the feed stands for: the home page, or the section's page.
    pub fn html_url(&self) -> Url {
        match self.scope {
            Scope::All | Scope::Bundle(_) => self.site.config.base_url.clone(),
            Scope::Section(s) => self.site.config.url(&urls::section(&s.slug)),
        }
    }

    /// Page `page` of the human page the feed stands for: [`Feed::html_url`]
    /// for page 1, with `?page=N` past it. The only place such a URL is
    /// written, so page 1 has one URL and later pages have no other query.
    pub fn html_page_url(&self, page: usize) -> Url {
        let mut url = self.html_url();
        url.set_query(urls::page_query(page).as_deref());
        url
    }

    /// The newest `updated`-or-`date` among the feed's entries.
    ///
    /// An empty feed falls back to the newest entry of the whole site, then to
    /// the Unix epoch, so the value never depends on the clock.
    pub fn updated(&self) -> DateTime<FixedOffset> {
        self.entries
            .iter()
            .map(|e| e.modified())
            .max()
            .or_else(|| self.site.newest())
            .unwrap_or_default()
    }
}

/// Entries per configured section, in configuration order: one hash lookup
/// per entry and section, no allocation per entry.
fn count_sections(config: &Config, entries: &Order) -> Vec<usize> {
    let index: HashMap<&str, usize> = config
        .sections
        .iter()
        .enumerate()
        .map(|(i, s)| (s.slug.as_str(), i))
        .collect();
    let mut counts = vec![0; config.sections.len()];
    for slug in entries.iter().flat_map(|e| &e.sections) {
        // Sections named twice in one entry are deduplicated at parse time.
        if let Some(&i) = index.get(slug.as_str()) {
            counts[i] += 1;
        }
    }
    counts
}

/// How many pages of `per_page` entries `len` entries fill; at least 1, so an
/// empty feed still has its first page.
pub fn page_count(len: usize, per_page: usize) -> usize {
    len.div_ceil(per_page.max(1)).max(1)
}
