//! Sections, entries and the feeds they form. No I/O, no clock.
//!
//! A [`Site`] owns the configuration and the published entries, sorted newest
//! first. A [`Feed`] is a view: a scope (combined or one section) plus the
//! entries that belong in it, already limited to `feed_limit`.

use std::sync::Arc;

use chrono::{DateTime, FixedOffset};
use url::Url;

use crate::config::{ALL, Config, Section};
use crate::diagnostic::Diagnostic;
use crate::entry::Entry;

/// Everything the renderers need, built from one load of the data directory.
#[derive(Debug)]
pub struct Site {
    /// The validated configuration.
    pub config: Config,
    /// Published entries, newest first; ties broken by id.
    ///
    /// Shared with the loader's per-file cache, so an entry whose file did not
    /// change is the same allocation across reloads; `Arc::ptr_eq` tells the
    /// snapshot which feeds need no re-render.
    pub entries: Vec<Arc<Entry>>,
    /// Problems found while loading.
    pub diagnostics: Vec<Diagnostic>,
}

/// Which entries a feed covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// Every published entry.
    All,
    /// The entries of one section.
    Section(&'a Section),
}

/// A feed ready to render: its scope and its entries, newest first.
#[derive(Debug)]
pub struct Feed<'a> {
    /// The site the feed belongs to.
    pub site: &'a Site,
    /// Combined or one section.
    pub scope: Scope<'a>,
    /// At most `feed_limit` entries, newest first.
    pub entries: Vec<&'a Entry>,
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
            entries,
            diagnostics,
        }
    }

    /// Builds a site from entries already in [`newest_first`] order.
    pub fn from_sorted(
        config: Config,
        entries: Vec<Arc<Entry>>,
        diagnostics: Vec<Diagnostic>,
    ) -> Site {
        debug_assert!(
            entries
                .windows(2)
                .all(|w| newest_first(&w[0], &w[1]).is_le())
        );
        Site {
            config,
            entries,
            diagnostics,
        }
    }

    /// The combined feed followed by one feed per section, in site order.
    pub fn feeds(&self) -> Vec<Feed<'_>> {
        std::iter::once(Scope::All)
            .chain(self.config.sections.iter().map(Scope::Section))
            .map(|scope| self.feed(scope))
            .collect()
    }

    /// The feed for one scope.
    pub fn feed(&self, scope: Scope<'_>) -> Feed<'_> {
        let scope = match scope {
            Scope::All => Scope::All,
            // Re-borrow the section from self so the feed's lifetime is the site's.
            Scope::Section(s) => match self.config.section(&s.slug) {
                Some(own) => Scope::Section(own),
                None => Scope::All,
            },
        };
        let entries = self
            .entries
            .iter()
            .map(|e| &**e)
            .filter(|e| scope.contains(e))
            .take(self.config.feed_limit)
            .collect();
        Feed {
            site: self,
            scope,
            entries,
        }
    }

    /// The newest modification time of any entry, if there is one.
    pub fn newest(&self) -> Option<DateTime<FixedOffset>> {
        self.entries.iter().map(|e| e.modified()).max()
    }
}

impl Scope<'_> {
    /// The slug used in URLs: `all` or the section's slug.
    pub fn slug(&self) -> &str {
        match self {
            Scope::All => ALL,
            Scope::Section(s) => &s.slug,
        }
    }

    /// True when the entry belongs in this scope.
    pub fn contains(&self, entry: &Entry) -> bool {
        match self {
            Scope::All => true,
            Scope::Section(s) => entry.sections.contains(&s.slug),
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
        }
    }

    /// The section's description, else the site's, else the title.
    pub fn description(&self) -> String {
        let c = &self.site.config;
        let own = match self.scope {
            Scope::Section(s) => s.description.clone(),
            Scope::All => None,
        };
        own.or_else(|| (!c.description.is_empty()).then(|| c.description.clone()))
            .unwrap_or_else(|| self.title())
    }

    /// The absolute URL of this feed in a format with extension `ext` (`rss`, `atom`).
    pub fn url(&self, ext: &str) -> Url {
        self.site.config.url(&feed_path(self.scope.slug(), ext))
    }

    /// The human page the feed stands for: the home page, or the section's page.
    pub fn html_url(&self) -> Url {
        match self.scope {
            Scope::All => self.site.config.base_url.clone(),
            Scope::Section(s) => self.site.config.url(&section_path(&s.slug)),
        }
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

/// The path of a section's page relative to `base_url`, e.g. `sections/sport`.
pub fn section_path(slug: &str) -> String {
    format!("sections/{slug}")
}

/// The path of an entry's page relative to `base_url`, e.g. `news/some-id`.
pub fn news_path(id: &str) -> String {
    format!("news/{}", crate::entry::url_segment(id))
}

/// The path of a feed relative to `base_url`, e.g. `feeds/all.rss`.
pub fn feed_path(slug: &str, ext: &str) -> String {
    format!("feeds/{slug}.{ext}")
}
