//! What each page of a build is made of: one input key per group of files
//! (a page with its `.gz` and `.br`), so a rebuild into an earlier build
//! keeps the files whose inputs are unchanged without rendering,
//! compressing or hashing them ([`crate::out_dir::Stage::reuse`]).
//!
//! A key is a SHA-256 over everything the page's render can read, and it
//! errs on the side of change:
//! - the program: a digest of the running executable ([`program_digest`]),
//!   so a new version, a new template (askama compiles them in) or any other
//!   code change renders everything again;
//! - the whole validated [`Config`](crate::config::Config) (title, base URL
//!   after `--base-url`, language, zone, sections and their titles, limits,
//!   hub …), and the cutoff when previewing (pages mark scheduled entries);
//! - each entry the page shows, by every field of [`Entry`] (the destructuring
//!   in `entry_digest` fails to compile when a field is added) and its
//!   Markdown source, so the resolved id, dates in their offsets and measured
//!   media lengths count, not only the file's bytes;
//! - for a page of a listing or a feed: the scope, the page number, the page
//!   count and the page size (its paging links).
//!
//! The sitemaps have no key: they show every entry, and the news sitemap's
//! window moves with the clock, so export renders them every time.
//! Pure: no I/O but [`program_digest`], which the caller runs once.

use std::collections::HashMap;
use std::fmt::Write as _;

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::entry::Entry;
use crate::model::{Feed, Scope, Site};

/// Bump when what a key covers changes, so older keys never match.
const SCHEME: &str = "vestnik-inputs-1";

/// The digest of the running executable, or `None` when it cannot be read
/// (then nothing is reused by key: every page is rendered).
pub fn program_digest() -> Option<[u8; 32]> {
    let exe = std::env::current_exe().ok()?;
    crate::file::sha256(&exe).ok()
}

/// The input keys of one site's pages.
#[derive(Debug)]
pub struct Keys {
    /// Program, configuration and preview cutoff.
    site: [u8; 32],
    /// Each entry's digest, by the entry's address (the site owns them).
    entries: HashMap<usize, [u8; 32]>,
}

impl Keys {
    /// Keys for the pages of `site` rendered by the program with digest
    /// `program`; `None` when the program is unknown. Digests every entry
    /// once, in parallel.
    pub fn new(site: &Site, program: Option<[u8; 32]>) -> Option<Keys> {
        let program = program?;
        let mut h = Writer(Sha256::new());
        h.0.update(SCHEME.as_bytes());
        h.0.update(program);
        let config = &site.config;
        let _ = write!(h, "\x1f{config:?}");
        if config.preview {
            let _ = write!(h, "\x1f{:?}", site.schedule.cutoff);
        }
        let digests: Vec<[u8; 32]> = site
            .entries
            .par_iter()
            .map(|e| entry_digest(e, config))
            .collect();
        let entries = site
            .entries
            .iter()
            .zip(digests)
            .map(|(e, d)| (address(e), d))
            .collect();
        Some(Keys {
            site: h.0.finalize().into(),
            entries,
        })
    }

    /// The key of an entry's page.
    pub fn news(&self, entry: &Entry) -> Option<String> {
        let d = self.entries.get(&address(entry))?;
        Some(self.key("news", &[d]))
    }

    /// The key of a page of a feed in one format (`kind`, e.g. `rss`) or of
    /// a listing (`kind` = `html`).
    pub fn page(&self, kind: &str, feed: &Feed<'_>) -> Option<String> {
        let mut h = Writer(Sha256::new());
        let scope = match feed.scope {
            Scope::All => "all".to_owned(),
            Scope::Section(s) => format!("section {:?}", s.slug),
            Scope::Bundle(ref b) => format!("bundle {b:?}"),
        };
        let _ = write!(
            h,
            "{kind:?} {scope} page {} of {} by {}",
            feed.page, feed.pages, feed.per_page
        );
        if feed.entries.is_empty() {
            // An empty page's date falls back to the site's newest.
            let _ = write!(h, " {:?}", feed.site.newest());
        }
        for e in &feed.entries {
            h.0.update(self.entries.get(&address(e))?);
        }
        let head: [u8; 32] = h.0.finalize().into();
        Some(self.key("page", &[&head]))
    }

    /// The key of the compressed siblings of a resource whose identity
    /// bytes are `body`: they are a function of those bytes and of the
    /// program alone.
    pub fn siblings(&self, body: &[u8]) -> String {
        self.key("siblings", &[&Sha256::digest(body).into()])
    }

    fn key(&self, what: &str, parts: &[&[u8; 32]]) -> String {
        let mut h = Sha256::new();
        h.update(self.site);
        h.update(what.as_bytes());
        for p in parts {
            h.update(p);
        }
        crate::text::hex(&h.finalize())
    }
}

fn address(e: &Entry) -> usize {
    e as *const Entry as usize
}

/// Every field of an entry, and its Markdown source.
fn entry_digest(e: &Entry, config: &Config) -> [u8; 32] {
    // The resolved link, as the digest read it when entries kept it resolved.
    let link = e.link(config);
    // No `..`: a new field must be added here, or this fails to compile.
    let Entry {
        id,
        path,
        title,
        published,
        updated,
        draft,
        publish_at,
        expires,
        sections,
        summary_key,
        body,
        canonical: _,
        authors,
        source,
        enclosures,
        image,
        genre,
    } = e;
    let mut h = Writer(Sha256::new());
    // Debug quotes and escapes strings, so the fields cannot run together.
    let _ = write!(
        h,
        "{id:?}\x1f{path:?}\x1f{title:?}\x1f{published:?}\x1f{updated:?}\x1f{draft:?}\x1f\
         {publish_at:?}\x1f{expires:?}\x1f{sections:?}\x1f{summary_key:?}\x1f{link:?}\x1f\
         {authors:?}\x1f{source:?}\x1f{enclosures:?}\x1f{image:?}\x1f{genre:?}\x1f"
    );
    let markdown = body.source();
    h.0.update((markdown.len() as u64).to_le_bytes());
    h.0.update(markdown.as_bytes());
    h.0.finalize().into()
}

/// Formats straight into a hasher.
struct Writer(Sha256);

impl std::fmt::Write for Writer {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.update(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;
    use std::sync::Arc;

    const SITE: &str = "title = \"T\"\nbase_url = \"https://example.org/\"\nlanguage = \"ru\"\n\
        timezone = \"Asia/Novosibirsk\"\n\n[[sections]]\nslug = \"a\"\ntitle = \"A\"\n\n\
        [[sections]]\nslug = \"b\"\ntitle = \"B\"\n";

    fn entry(name: &str, text: &str, config: &Config) -> Arc<Entry> {
        let sanitizer = crate::entry::html::Sanitizer::new(&config.base_url);
        let ctx = crate::entry::Context {
            config,
            sanitizer: &sanitizer,
            spool: None,
        };
        let parsed = crate::entry::parse(&ctx, Path::new(name), name, text.as_bytes());
        let diagnostics = parsed.diagnostics;
        Arc::new(
            parsed
                .entry
                .unwrap_or_else(|| panic!("{name}: {diagnostics:?}")),
        )
    }

    fn text(title: &str, body: &str) -> String {
        format!("+++\ntitle = \"{title}\"\ndate = 2024-05-01\nsections = [\"a\"]\n+++\n\n{body}\n")
    }

    /// The keys of the site `toml` with entries (name, text): each entry's
    /// page, then the first page of the combined feed as RSS and as a listing.
    fn keys(toml: &str, entries: &[(&str, String)], program: u8) -> Vec<String> {
        let config = Config::parse(Path::new("site.toml"), toml).unwrap();
        let list = entries.iter().map(|(n, t)| entry(n, t, &config)).collect();
        let site = Site::new(config, list, Vec::new());
        let keys = Keys::new(&site, Some([program; 32])).unwrap();
        let mut out: Vec<String> = site.entries.iter().map(|e| keys.news(e).unwrap()).collect();
        out.push(keys.page("rss", &site.feed(Scope::All)).unwrap());
        out.push(keys.page("html", &site.feed(Scope::All)).unwrap());
        out
    }

    #[test]
    fn a_key_changes_with_what_its_page_shows_and_only_then() {
        let one = ("one.md", text("Один", "Текст."));
        let two = ("two.md", text("Два", "Текст."));
        let base = keys(SITE, &[one.clone(), two.clone()], 1);
        // The same inputs give the same keys: nothing about the run counts.
        assert_eq!(keys(SITE, &[one.clone(), two.clone()], 1), base);
        assert_eq!(base.len(), 4);
        let distinct: std::collections::HashSet<&String> = base.iter().collect();
        assert_eq!(distinct.len(), 4, "pages share a key: {base:?}");

        // Another program, another section title, another base URL or
        // language: every key changes.
        let every = |changed: Vec<String>, why: &str| {
            for (a, b) in base.iter().zip(&changed) {
                assert_ne!(a, b, "{why}");
            }
        };
        every(keys(SITE, &[one.clone(), two.clone()], 2), "program");
        for (from, to) in [
            ("title = \"B\"", "title = \"Б\""),
            ("https://example.org/", "https://example.org/news/"),
            ("language = \"ru\"", "language = \"en\""),
            ("Asia/Novosibirsk", "Asia/Omsk"),
        ] {
            every(
                keys(&SITE.replace(from, to), &[one.clone(), two.clone()], 1),
                to,
            );
        }

        // One entry's body: its page, the feed and the sitemap change; the
        // other entry's page keeps its key.
        let edited = ("one.md", text("Один", "Другой текст."));
        let after = keys(SITE, &[edited, two.clone()], 1);
        let changed: Vec<usize> = (0..4).filter(|&i| base[i] != after[i]).collect();
        assert_eq!(changed.len(), 3, "{base:?}\n{after:?}");
        assert!(changed.contains(&2) && changed.contains(&3));
        // Moving a file changes its path, which the page may not show but
        // the key covers anyway.
        let moved = ("sub/one.md", text("Один", "Текст."));
        assert_ne!(keys(SITE, &[moved, two], 1), base);
    }

    #[test]
    fn no_program_no_keys() {
        let config = Config::parse(Path::new("site.toml"), SITE).unwrap();
        let site = Site::new(config, Vec::new(), Vec::new());
        assert!(Keys::new(&site, None).is_none());
    }

    #[test]
    fn the_running_program_has_a_digest() {
        assert!(program_digest().is_some());
    }
}
