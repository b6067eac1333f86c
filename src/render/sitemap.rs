//! Sitemaps for search engines and news aggregators, and `robots.txt`.
//!
//! - `/sitemap.xml` (sitemaps.org 0.9) lists the home page, every section
//!   page and every news page, each with `lastmod`. Past the protocol's
//!   limits (50,000 URLs or 50 MB a file) it becomes a sitemap index over
//!   `/sitemap-1.xml`, `/sitemap-2.xml`, …
//! - `/sitemap-news.xml` follows Google News' rules: the articles published
//!   in the two days before the site's cutoff, at most 1,000, newest first,
//!   with the publication's name and language and each article's date and
//!   title. Its window moves with the cutoff (the schedule wakes the server
//!   when an article leaves it), and is empty for a site built without one.
//!
//! XML is written with quick-xml's writer, which escapes every value. Pure:
//! the same site gives the same bytes.

use chrono::{DateTime, FixedOffset};
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

use crate::model::Site;
use crate::urls;

/// The most URLs one sitemap file may list (sitemaps.org).
pub const MAX_URLS: usize = 50_000;

/// The most bytes one sitemap file may have, uncompressed (sitemaps.org).
pub const MAX_BYTES: usize = 50 * 1024 * 1024;

pub use crate::model::NEWS_WINDOW;

/// The most articles a news sitemap may list (Google News).
pub const MAX_NEWS: usize = 1000;

const SITEMAP_NS: &str = "http://www.sitemaps.org/schemas/sitemap/0.9";
const NEWS_NS: &str = "http://www.google.com/schemas/sitemap-news/0.9";

/// One URL of the site and when it last changed.
struct Page {
    loc: String,
    lastmod: Option<DateTime<FixedOffset>>,
}

/// Every page of the site, in a stable order: home, sections, news (newest
/// first). A listing page's `lastmod` is the latest change of any entry on it.
fn pages(site: &Site) -> Vec<Page> {
    let config = &site.config;
    let mut newest: Option<DateTime<FixedOffset>> = None;
    let mut sections: Vec<Option<DateTime<FixedOffset>>> = vec![None; config.sections.len()];
    // By slug, so each entry costs a lookup per section it names, not a
    // comparison per configured section.
    let index: std::collections::HashMap<&str, usize> = config
        .sections
        .iter()
        .enumerate()
        .map(|(i, s)| (s.slug.as_str(), i))
        .collect();
    let mut news = Vec::with_capacity(site.entries.len());
    for e in site.entries.iter() {
        let changed = e.modified();
        newest = newest.max(Some(changed));
        for slug in &e.sections {
            if let Some(&i) = index.get(slug.as_str()) {
                sections[i] = sections[i].max(Some(changed));
            }
        }
        news.push(Page {
            loc: config.url(&urls::news(&e.id)).to_string(),
            lastmod: Some(changed),
        });
    }
    let mut out = Vec::with_capacity(1 + sections.len() + news.len());
    out.push(Page {
        loc: config.base_url.to_string(),
        lastmod: newest,
    });
    out.extend(
        config
            .sections
            .iter()
            .zip(sections)
            .map(|(s, lastmod)| Page {
                loc: config.url(&urls::section(&s.slug)).to_string(),
                lastmod,
            }),
    );
    out.extend(news);
    out
}

/// How the site's pages split into sitemap files: one range of
/// [`pages`] per file, each within both limits. A single range means
/// `/sitemap.xml` is the urlset itself; more mean an index.
fn chunks(pages: &[Page]) -> Vec<std::ops::Range<usize>> {
    // A generous bound on one <url> entry's bytes beside its address.
    const ENTRY_OVERHEAD: usize = 96;
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 256);
    for (i, p) in pages.iter().enumerate() {
        let size = p.loc.len() * 2 + ENTRY_OVERHEAD;
        if i > start && (i - start == MAX_URLS || bytes + size > MAX_BYTES) {
            out.push(start..i);
            start = i;
            bytes = 256;
        }
        bytes += size;
    }
    out.push(start..pages.len());
    out
}

/// How many child sitemaps the site has: 0 when `/sitemap.xml` lists every
/// page itself.
pub fn children(site: &Site) -> usize {
    match chunks(&pages(site)).len() {
        1 => 0,
        n => n,
    }
}

fn w3c(t: &DateTime<FixedOffset>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn writer() -> Writer<Vec<u8>> {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    // Writing into a Vec cannot fail.
    let _ = w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
    w
}

fn text(w: &mut Writer<Vec<u8>>, name: &str, value: &str) {
    let _ = w
        .create_element(name)
        .write_text_content(BytesText::new(value));
}

fn urlset(pages: &[Page]) -> Vec<u8> {
    let mut w = writer();
    let _ = w.write_event(Event::Start(
        BytesStart::new("urlset").with_attributes([("xmlns", SITEMAP_NS)]),
    ));
    for p in pages {
        let _ = w.write_event(Event::Start(BytesStart::new("url")));
        text(&mut w, "loc", &p.loc);
        if let Some(t) = &p.lastmod {
            text(&mut w, "lastmod", &w3c(t));
        }
        let _ = w.write_event(Event::End(BytesEnd::new("url")));
    }
    let _ = w.write_event(Event::End(BytesEnd::new("urlset")));
    let mut out = w.into_inner();
    out.push(b'\n');
    out
}

/// `/sitemap.xml`: every page, or the index of the child sitemaps.
pub fn render(site: &Site) -> Vec<u8> {
    let pages = pages(site);
    let chunks = chunks(&pages);
    if chunks.len() == 1 {
        return urlset(&pages);
    }
    let mut w = writer();
    let _ = w.write_event(Event::Start(
        BytesStart::new("sitemapindex").with_attributes([("xmlns", SITEMAP_NS)]),
    ));
    for (n, range) in chunks.iter().enumerate() {
        let _ = w.write_event(Event::Start(BytesStart::new("sitemap")));
        text(
            &mut w,
            "loc",
            site.config.url(&urls::sitemap_child(n + 1)).as_str(),
        );
        if let Some(t) = pages[range.clone()].iter().filter_map(|p| p.lastmod).max() {
            text(&mut w, "lastmod", &w3c(&t));
        }
        let _ = w.write_event(Event::End(BytesEnd::new("sitemap")));
    }
    let _ = w.write_event(Event::End(BytesEnd::new("sitemapindex")));
    let mut out = w.into_inner();
    out.push(b'\n');
    out
}

/// Child sitemap `n` (from 1), if the site has it.
pub fn render_child(site: &Site, n: usize) -> Option<Vec<u8>> {
    let pages = pages(site);
    let chunks = chunks(&pages);
    if chunks.len() == 1 {
        return None;
    }
    let range = chunks.get(n.checked_sub(1)?)?.clone();
    Some(urlset(&pages[range]))
}

/// `/sitemap-news.xml`: articles published in the [`NEWS_WINDOW`] before the
/// site's cutoff, newest first, at most [`MAX_NEWS`].
pub fn render_news(site: &Site) -> Vec<u8> {
    let config = &site.config;
    let mut w = writer();
    let _ = w.write_event(Event::Start(
        BytesStart::new("urlset").with_attributes([("xmlns", SITEMAP_NS), ("xmlns:news", NEWS_NS)]),
    ));
    if let Some(cutoff) = site.schedule.cutoff {
        let recent = site
            .entries
            .iter()
            .filter(|e| e.due().to_utc() > cutoff - NEWS_WINDOW)
            .take(MAX_NEWS);
        for e in recent {
            let _ = w.write_event(Event::Start(BytesStart::new("url")));
            text(&mut w, "loc", config.url(&urls::news(&e.id)).as_str());
            let _ = w.write_event(Event::Start(BytesStart::new("news:news")));
            let _ = w.write_event(Event::Start(BytesStart::new("news:publication")));
            text(&mut w, "news:name", &config.title);
            text(&mut w, "news:language", &config.language);
            let _ = w.write_event(Event::End(BytesEnd::new("news:publication")));
            text(&mut w, "news:publication_date", &w3c(&e.published));
            text(&mut w, "news:title", &e.title);
            let _ = w.write_event(Event::End(BytesEnd::new("news:news")));
            let _ = w.write_event(Event::End(BytesEnd::new("url")));
        }
    }
    let _ = w.write_event(Event::End(BytesEnd::new("urlset")));
    let mut out = w.into_inner();
    out.push(b'\n');
    out
}

/// `/robots.txt`: everything may be crawled; here are both sitemaps.
pub fn robots(site: &Site) -> Vec<u8> {
    format!(
        "User-agent: *\nAllow: /\n\nSitemap: {}\nSitemap: {}\n",
        site.config.url("sitemap.xml"),
        site.config.url("sitemap-news.xml")
    )
    .into_bytes()
}
