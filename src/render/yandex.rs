//! The Yandex News profile of RSS 2.0 (`/feeds/{all|slug}.yandex.rss`),
//! through the `rss` crate with the `yandex` and `media` namespaces.
//!
//! Each item has what the Yandex News feed format asks for: `title`,
//! `link`, `pubDate` (RFC 822 with a numeric offset), `yandex:full-text`
//! (the plain text of the whole body), `yandex:genre`, and the pictures as
//! `enclosure` (one, as RSS allows) and `media:content` (all). The guid is
//! the entry's `tag:` URI, as in every other feed. The file is kept under
//! [`MAX_BYTES`] by dropping the oldest items.

use std::collections::BTreeMap;

use rss::extension::atom::{AtomExtension, Link};
use rss::extension::{Extension, ExtensionMap};
use rss::{Category, Channel, Guid, Item};

use super::rss::{enclosure, media_ext, rfc822};
use super::{Format, MEDIA_NS, authors, media_content_attrs};
use crate::entry::{Entry, Media};
use crate::model::Feed;

/// The Yandex News namespace.
pub const YANDEX_NS: &str = "http://news.yandex.ru";

/// The largest Yandex feed: 10 MB (10,000,000 bytes, the smaller reading of
/// Yandex's "10 MB"). Past it the oldest items are dropped.
pub const MAX_BYTES: usize = 10_000_000;

/// Renders a feed's entries as a Yandex News feed of at most [`MAX_BYTES`].
pub fn render(feed: &Feed<'_>, retain: super::Retain) -> Vec<u8> {
    render_capped(feed, MAX_BYTES, retain)
}

/// Renders at most `max_bytes`, dropping the oldest items until the feed
/// fits (an empty channel always remains, however small the cap).
pub fn render_capped(feed: &Feed<'_>, max_bytes: usize, retain: super::Retain) -> Vec<u8> {
    let mut items: Vec<Item> = feed.entries.iter().map(|e| item(feed, e, retain)).collect();
    let mut out = write(feed, items.clone());
    if out.len() <= max_bytes {
        return out;
    }
    // Each item's share of the bytes, measured alone in an empty channel,
    // so the cut is found with one more render rather than one per item.
    let empty = write(feed, Vec::new()).len();
    let sizes: Vec<usize> = items
        .iter()
        .map(|i| write(feed, vec![i.clone()]).len().saturating_sub(empty))
        .collect();
    let mut total = empty;
    let keep = sizes
        .iter()
        .take_while(|s| {
            total += **s;
            total <= max_bytes
        })
        .count();
    items.truncate(keep);
    out = write(feed, items.clone());
    // Indentation makes the sum exact, but never trust it blindly.
    while out.len() > max_bytes && items.pop().is_some() {
        out = write(feed, items.clone());
    }
    out
}

fn write(feed: &Feed<'_>, items: Vec<Item>) -> Vec<u8> {
    let config = &feed.site.config;
    let mut namespaces = BTreeMap::new();
    namespaces.insert("yandex".to_owned(), YANDEX_NS.to_owned());
    namespaces.insert("media".to_owned(), MEDIA_NS.to_owned());
    let channel = Channel {
        // RSS Best Practices ask every feed to name its own URL.
        atom_ext: Some(AtomExtension {
            links: vec![Link {
                rel: "self".to_owned(),
                href: config
                    .url(&crate::urls::yandex_feed(feed.scope.slug()))
                    .to_string(),
                mime_type: Some(Format::Rss.media_type().to_owned()),
                ..Link::default()
            }],
        }),
        namespaces,
        items,
        ..super::rss::channel(feed)
    };
    let mut out = Vec::new();
    // Writing into a Vec cannot fail, and the crate escapes all text.
    let _ = channel.pretty_write_to(&mut out, b' ', 2);
    out.push(b'\n');
    out
}

/// The pictures of an entry: its image, then its image enclosures, once each.
fn pictures(e: &Entry) -> Vec<&Media> {
    let mut out: Vec<&Media> = Vec::new();
    let candidates = e.image.iter().map(|i| &i.media).chain(
        e.enclosures
            .iter()
            .filter(|m| m.mime_type.starts_with("image/")),
    );
    for m in candidates {
        if !out.iter().any(|o| o.url == m.url) {
            out.push(m);
        }
    }
    out
}

fn text_ext(name: &str, value: String) -> Extension {
    Extension {
        name: name.to_owned(),
        value: Some(value),
        ..Extension::default()
    }
}

fn item(feed: &Feed<'_>, e: &Entry, retain: super::Retain) -> Item {
    let config = &feed.site.config;
    let pictures = pictures(e);
    let mut yandex = BTreeMap::new();
    yandex.insert(
        "full-text".to_owned(),
        vec![text_ext(
            "yandex:full-text",
            // The whole text as readers see it, ending with the
            // «Источник: …» line: a reprint keeps its attribution here too.
            crate::entry::html::plain_text(&super::content_html(feed.site, e, retain)),
        )],
    );
    yandex.insert(
        "genre".to_owned(),
        vec![text_ext("yandex:genre", e.genre.as_str().to_owned())],
    );
    let mut extensions = ExtensionMap::default();
    extensions.insert("yandex".to_owned(), yandex);
    if !pictures.is_empty() {
        let content = pictures
            .iter()
            .map(|m| media_ext("media:content", media_content_attrs(m)))
            .collect();
        extensions.insert(
            "media".to_owned(),
            std::iter::once(("content".to_owned(), content)).collect(),
        );
    }
    let names = authors(feed, e);
    Item {
        title: Some(e.title.clone()),
        link: Some(e.link(&feed.site.config).to_string()),
        description: Some(crate::entry::html::escape(&e.summary(retain))).filter(|s| !s.is_empty()),
        // Yandex reads a plain name here (RSS 2.0 would want an e-mail address).
        author: (!names.is_empty()).then(|| names.join(", ")),
        categories: e
            .sections
            .iter()
            .filter_map(|slug| config.section(slug))
            .map(|s| Category {
                name: s.title.clone(),
                domain: None,
            })
            .collect(),
        guid: Some(Guid {
            value: e.tag_uri(config),
            permalink: false,
        }),
        pub_date: Some(rfc822(&e.published)),
        enclosure: pictures.first().map(|m| enclosure(m)),
        // RSS <source> names the source's feed, as in the RSS feeds.
        source: e.source.as_ref().and_then(|s| {
            s.feed.as_ref().map(|url| rss::Source {
                url: url.to_string(),
                title: Some(s.name.clone()),
            })
        }),
        extensions,
        ..Item::default()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::Config;
    use crate::entry::{Context, html::Sanitizer, parse};
    use crate::model::{Scope, Site};

    fn site(bodies: &[(&str, &str)]) -> Site {
        let config = Config::parse(
            std::path::Path::new("site.toml"),
            "title = \"T\"\nbase_url = \"http://example.org/\"\ntimezone = \"Asia/Novosibirsk\"\nauthor = \"Ред\"\n[[sections]]\nslug = \"a\"\ntitle = \"A\"\n",
        )
        .unwrap();
        let sanitizer = Sanitizer::new(&config.base_url);
        let ctx = Context {
            config: &config,
            sanitizer: &sanitizer,
            spool: None,
        };
        let entries = bodies
            .iter()
            .enumerate()
            .map(|(i, (front, body))| {
                let file = format!(
                    "+++\ntitle = \"t{i}\"\ndate = 2024-01-{:02}T10:00:00\nsections = [\"a\"]\n{front}\n+++\n{body}\n",
                    i + 1
                );
                let p = parse(&ctx, "x.md".as_ref(), &format!("e{i}.md"), file.as_bytes());
                assert!(p.diagnostics.is_empty(), "{:?}", p.diagnostics);
                Arc::new(p.entry.unwrap())
            })
            .collect();
        Site::new(config, entries, Vec::new())
    }

    #[test]
    fn items_have_the_yandex_elements() {
        let site = site(&[(
            "genre = \"interview\"\nimage = \"https://cdn.example.org/p.jpg\"\n[source]\nname = \"Агентство\"",
            "Первый <b>абзац</b>.\n\nВторой & третий.",
        )]);
        let xml =
            String::from_utf8(render(&site.feed(Scope::All), crate::render::Retain::Keep)).unwrap();
        for want in [
            "xmlns:yandex=\"http://news.yandex.ru\"",
            "xmlns:media=\"http://search.yahoo.com/mrss/\"",
            "<pubDate>Mon, 01 Jan 2024 10:00:00 +0700</pubDate>",
            "<yandex:genre>interview</yandex:genre>",
            "<yandex:full-text>Первый абзац.\nВторой &amp; третий.\nSource: Агентство</yandex:full-text>",
            "<guid isPermaLink=\"false\">tag:example.org,2024-01-01:e0</guid>",
            "<author>Ред</author>",
            "<category>A</category>",
            "<enclosure url=\"https://cdn.example.org/p.jpg\" length=\"0\" type=\"image/jpeg\"/>",
            "<media:content",
        ] {
            assert!(xml.contains(want), "missing {want}\n{xml}");
        }
        // The source line (in the site's language, English here) is
        // attribution, so it stays with the text.
    }

    #[test]
    fn the_oldest_items_go_first_when_over_the_cap() {
        let big = "слово ".repeat(2000);
        let site = site(&[("", &big), ("", &big), ("", &big), ("", &big)]);
        let feed = site.feed(Scope::All);
        let full = render_capped(&feed, usize::MAX, crate::render::Retain::Keep);
        let count = |xml: &[u8]| String::from_utf8_lossy(xml).matches("<item>").count();
        assert_eq!(count(&full), 4);
        for cap in [full.len(), full.len() - 1, full.len() / 2, 3000, 10] {
            let out = render_capped(&feed, cap, crate::render::Retain::Keep);
            let n = count(&out);
            assert!(out.len() <= cap || n == 0, "cap {cap}: {} bytes", out.len());
            if cap == full.len() {
                assert_eq!(out, full);
            }
            // Newest first: what remains is a prefix of the full feed's items.
            let text = String::from_utf8(out).unwrap();
            for i in 0..n {
                assert!(
                    text.contains(&format!("<title>t{}</title>", 3 - i)),
                    "{text}"
                );
            }
        }
        assert_eq!(
            count(&render_capped(
                &feed,
                full.len() - 1,
                crate::render::Retain::Keep
            )),
            3
        );
    }
}
