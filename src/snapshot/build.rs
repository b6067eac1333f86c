//! Building a snapshot: every standard resource rendered in parallel, and
//! the bytes of everything whose inputs did not change reused from the
//! previous snapshot.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::{Health, Key, Later, OPML, Resource, Snapshot, TEXT_HTML, TEXT_PLAIN, Topic, compress};
use crate::model::{Feed, Scope, Site};
use crate::render::{self, Format, Retain};

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
            Job::Feed(feed, format) => Resource::new(
                format.content_type(),
                Some(SystemTime::from(feed.updated())),
                render::render(feed, *format, Retain::Keep),
            )
            .with_topic(
                feed.site
                    .config
                    .websub_hub
                    .as_ref()
                    .and_then(|hub| Topic::new(hub, feed.url(format.extension()))),
            ),
            Job::Yandex(feed) => Resource::new(
                Format::Rss.content_type(),
                Some(SystemTime::from(feed.updated())),
                render::yandex::render(feed, Retain::Keep),
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
        let pending: Vec<(&Key, &Arc<Resource>)> =
            self.resources.iter().filter(|(_, r)| r.pending()).collect();
        let finished: Vec<(Key, Arc<Resource>)> = pending
            .into_par_iter()
            .map(|(key, r)| (key.clone(), Arc::new(r.finish())))
            .collect();
        done.resources.extend(finished);
        done.health.compressing = done.pending();
        done
    }

    /// Like [`Snapshot::build`], but reuses the bytes of every feed whose
    /// inputs are unchanged since `prev`: same configuration and the very same
    /// entries (`Arc` identity, which the loader keeps for unchanged files).
    /// Unchanged feeds keep their bytes and ETags; only changed ones are
    /// rendered, and none is compressed yet (see [`super::compress::Worker`]).
    pub fn build_from(site: Arc<Site>, prev: Option<&Snapshot>) -> Snapshot {
        let prev = prev.filter(|p| p.site.config == site.config);
        let feeds = site.feeds();
        let mut resources: BTreeMap<Key, Arc<Resource>> = BTreeMap::new();
        let mut jobs: Vec<(Key, Job<'_, '_>)> = Vec::new();
        for feed in &feeds {
            let reusable = prev.filter(|p| same_feed(p, &site, feed));
            let slug = feed.scope.slug();
            let mut wanted: Vec<(Key, Job<'_, '_>)> = Format::ALL
                .into_iter()
                .map(|f| (Key::feed(slug, f), Job::Feed(feed, f)))
                .collect();
            wanted.push((
                Key::Yandex {
                    slug: slug.to_owned(),
                },
                Job::Yandex(feed),
            ));
            if let Scope::Section(s) = feed.scope {
                let key = Key::Section {
                    slug: s.slug.clone(),
                    page: 1,
                };
                wanted.push((key, Job::SectionPage(feed)));
            }
            for (key, job) in wanted {
                match reusable.and_then(|p| p.resources.get(&key)) {
                    Some(r) => {
                        resources.insert(key, r.clone());
                    }
                    None => jobs.push((key, job)),
                }
            }
        }
        // The home page counts every entry of every section, so it is always rebuilt.
        jobs.push((Key::Home { page: 1 }, Job::Index(&site)));
        // The subscription lists and the subscribe page depend on the
        // configuration only.
        let by_config = Format::ALL
            .into_iter()
            .map(|format| (Key::Opml(format), Job::Opml(&site, format)))
            .chain([
                (Key::Subscribe, Job::Subscribe(&site)),
                (Key::Robots, Job::Robots(&site)),
            ]);
        for (key, job) in by_config {
            match prev.and_then(|p| p.resources.get(&key)) {
                Some(r) => {
                    resources.insert(key, r.clone());
                }
                None => jobs.push((key, job)),
            }
        }
        let rendered: Vec<(Key, Arc<Resource>)> = jobs
            .into_par_iter()
            .map(|(key, job)| (key, Arc::new(job.run())))
            .collect();
        let rerendered = rendered.len();
        resources.extend(rendered);
        let health = Health {
            entries: site.entries.len(),
            sections: site.config.sections.len(),
            problems: site.diagnostics.len(),
            content_hash: content_hash(&resources),
            compressing: resources.values().filter(|r| r.pending()).count(),
            scheduled: site.schedule.scheduled,
            next_due: site.schedule.next_due.map(|t| t.to_rfc3339()),
        };
        Snapshot {
            not_found: Bytes::from(format!("not found; the feeds are:\n\n{}", feed_list(&site))),
            site,
            resources,
            health,
            rendered: rerendered,
            built: None,
            later: Later::new(),
        }
    }
}

/// True when `feed` shows what it showed in `prev`: the very same entries
/// and page count (page 1 links to the last page). An empty feed's date
/// falls back to the site's newest entry, so that must not have moved.
fn same_feed(prev: &Snapshot, site: &Site, feed: &Feed<'_>) -> bool {
    let old = prev.site.feed(feed.scope);
    old.pages == feed.pages
        && old.entries.len() == feed.entries.len()
        && old
            .entries
            .iter()
            .zip(&feed.entries)
            .all(|(a, b)| std::ptr::eq(*a, *b))
        && (!feed.entries.is_empty() || prev.site.newest() == site.newest())
}

/// A hash over every served path and its identity ETag, in path order:
/// equal across replicas with the same data.
fn content_hash(resources: &BTreeMap<Key, Arc<Resource>>) -> String {
    let by_path: BTreeMap<String, &str> = resources
        .iter()
        .map(|(key, r)| (key.path(), r.identity.etag.as_str()))
        .collect();
    let mut hasher = Sha256::new();
    for (path, etag) in by_path {
        hasher.update(path.as_bytes());
        hasher.update(etag.as_bytes());
    }
    compress::hex_prefix(&hasher.finalize())
}

/// Every feed URL with its title, as plain text for 404 answers.
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
        let keys = Format::ALL
            .into_iter()
            .map(|f| Key::feed(slug, f))
            .chain([Key::Yandex {
                slug: slug.to_owned(),
            }]);
        for key in keys {
            let _ = writeln!(out, "  {}", config.url(&key.rel()));
        }
    }
    out
}
