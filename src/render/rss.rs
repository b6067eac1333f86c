//! RSS 2.0 through the `rss` crate, with the Atom, Dublin Core and content modules.

use rss::extension::atom::{AtomExtension, Link};
use rss::extension::dublincore::DublinCoreExtension;
use rss::extension::{Extension, ExtensionMap};
use rss::{Category, Channel, Enclosure, Guid, Item, Source};

use super::{
    Format, GENERATOR, MEDIA_NS, authors, media_content_attrs, media_thumbnail_attrs, paging_links,
};
use crate::model::Feed;

/// RFC 822/2822 date with a numeric offset, e.g. `Mon, 22 Aug 2022 00:00:00 +0700`.
///
/// Written with a format string rather than `to_rfc2822`, which panics on
/// years before 1900 that the data contract allows.
pub(super) fn rfc822(dt: &chrono::DateTime<chrono::FixedOffset>) -> String {
    dt.format("%a, %d %b %Y %H:%M:%S %z").to_string()
}

/// The channel fields every RSS profile of a feed shares (the standard
/// feed and the Yandex one): title, links, description, language, dates
/// and generator.
pub(super) fn channel(feed: &Feed<'_>) -> Channel {
    let config = &feed.site.config;
    let updated = rfc822(&feed.updated());
    Channel {
        title: feed.title(),
        link: feed.html_url().to_string(),
        // Plain text, escaped as HTML like item summaries: RSS readers render
        // <description> as HTML, so markup here would become live markup.
        description: crate::entry::html::escape(&feed.description()),
        language: (!config.language.is_empty()).then(|| config.language.clone()),
        pub_date: Some(updated.clone()),
        last_build_date: Some(updated),
        generator: Some(GENERATOR.to_owned()),
        ..Channel::default()
    }
}

pub(super) fn render(feed: &Feed<'_>, retain: super::Retain) -> Vec<u8> {
    let config = &feed.site.config;
    let items = feed.entries.iter().map(|e| item(feed, e, retain)).collect();
    let ttl = config.cache_max_age.div_ceil(60);
    let mut channel = Channel {
        docs: Some("https://www.rssboard.org/rss-specification".to_owned()),
        ttl: (ttl > 0).then(|| ttl.to_string()),
        atom_ext: Some(AtomExtension {
            links: std::iter::once(("self", feed.self_url(Format::Rss.extension()).to_string()))
                .chain(paging_links(feed, Format::Rss))
                .map(|(rel, href)| Link {
                    rel: rel.to_owned(),
                    href,
                    mime_type: Some(Format::Rss.media_type().to_owned()),
                    ..Link::default()
                })
                .collect(),
        }),
        items,
        ..channel(feed)
    };
    // Declared only when used, so feeds without media keep their bytes.
    if channel
        .items
        .iter()
        .any(|i| i.extensions.contains_key("media"))
    {
        channel
            .namespaces
            .insert("media".to_owned(), MEDIA_NS.to_owned());
    }
    // WebSub discovery (W3C WebSub §4): the hub next to the self link, on
    // the feeds whose changes are announced (see `Feed::hub`).
    if let (Some(hub), Some(ext)) = (feed.hub(), channel.atom_ext.as_mut()) {
        ext.links.push(Link {
            rel: "hub".to_owned(),
            href: hub.to_string(),
            ..Link::default()
        });
    }
    let mut out = Vec::with_capacity(4096 + feed.entries.len() * 4096);
    // Writing into a Vec cannot fail, and the crate escapes all text.
    let _ = channel.pretty_write_to(&mut out, b' ', 2);
    out.push(b'\n');
    out
}

fn item(feed: &Feed<'_>, e: &crate::entry::Entry, retain: super::Retain) -> Item {
    let config = &feed.site.config;
    let categories = e
        .sections
        .iter()
        .filter_map(|slug| config.section(slug))
        .map(|s| Category {
            name: s.title.clone(),
            domain: Some(
                config
                    .url(&crate::urls::feed(&s.slug, Format::Rss.extension()))
                    .to_string(),
            ),
        })
        .collect();
    let mut dc = DublinCoreExtension {
        creators: authors(feed, e).into_iter().map(str::to_owned).collect(),
        ..DublinCoreExtension::default()
    };
    // The RSS <source> element names the source's feed; without one, the
    // article URL goes to dc:source, which is what it means.
    let source = e.source.as_ref().and_then(|s| {
        s.feed.as_ref().map(|feed_url| Source {
            url: feed_url.to_string(),
            title: Some(s.name.clone()),
        })
    });
    if source.is_none() {
        if let Some(url) = e.source.as_ref().and_then(|s| s.url.as_ref()) {
            dc.sources.push(url.to_string());
        }
    }
    let has_dc = !dc.creators.is_empty() || !dc.sources.is_empty();
    // RSS allows one <enclosure> per item (RSS Best Practices Profile; the
    // W3C validator warns about more): the first enclosure, else the image.
    // Every enclosure is also a media:content, and the image a media:thumbnail.
    let enclosure = e
        .enclosures
        .first()
        .or(e.image.as_ref().map(|i| &i.media))
        .map(enclosure);
    let mut media: std::collections::BTreeMap<String, Vec<Extension>> = Default::default();
    if !e.enclosures.is_empty() {
        media.insert(
            "content".to_owned(),
            e.enclosures
                .iter()
                .map(|m| media_ext("media:content", media_content_attrs(m)))
                .collect(),
        );
    }
    if let Some(image) = &e.image {
        media.insert(
            "thumbnail".to_owned(),
            vec![media_ext("media:thumbnail", media_thumbnail_attrs(image))],
        );
    }
    let mut extensions = ExtensionMap::default();
    if !media.is_empty() {
        extensions.insert("media".to_owned(), media);
    }
    Item {
        title: Some(e.title.clone()),
        link: Some(e.link(&feed.site.config).to_string()),
        // RSS 2.0 defines <description> as entity-encoded HTML and readers
        // render it so, but the summary is plain text: a summary with
        // `<img src=x onerror=...>` (from the `summary` key, or an escaped
        // `\<` in the body's first paragraph) would otherwise arrive as
        // live markup. Found by fuzzing `entry_to_feeds`.
        description: Some(crate::entry::html::escape(&e.summary(retain))).filter(|s| !s.is_empty()),
        guid: Some(Guid {
            value: e.tag_uri(config),
            permalink: false,
        }),
        pub_date: Some(rfc822(&e.published)),
        categories,
        source,
        content: Some(super::content_html(feed.site, e, retain)),
        dublin_core_ext: has_dc.then_some(dc),
        enclosure,
        extensions,
        ..Item::default()
    }
}

/// An RSS `<enclosure>`: url, length (0 when unknown, as RSS Best Practices
/// allow) and type.
pub(super) fn enclosure(m: &crate::entry::Media) -> Enclosure {
    Enclosure {
        url: m.url.to_string(),
        length: m.length.to_string(),
        mime_type: m.mime_type.clone(),
    }
}

/// An empty extension element with attributes, e.g. `<media:thumbnail url=…>`.
pub(super) fn media_ext(
    name: &str,
    attrs: std::collections::BTreeMap<String, String>,
) -> Extension {
    Extension {
        name: name.to_owned(),
        attrs,
        ..Extension::default()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::Config;
    use crate::entry::{Context, html::Sanitizer, parse};
    use crate::model::{Scope, Site};

    #[test]
    fn plain_text_summary_is_escaped_as_html_in_description() {
        let config = Config::parse(
            std::path::Path::new("site.toml"),
            "title = \"T\"\nbase_url = \"http://example.org/\"\ntimezone = \"UTC\"\n[[sections]]\nslug = \"a\"\ntitle = \"A\"\n",
        )
        .unwrap();
        let sanitizer = Sanitizer::new(&config.base_url);
        let ctx = Context {
            config: &config,
            sanitizer: &sanitizer,
            spool: None,
        };
        let file = "+++\ntitle = \"t\"\ndate = 2024-01-01\nsections = [\"a\"]\nsummary = \"1 < 2 & <img src=x onerror=alert(1)>\"\n+++\nBody.\n";
        let entry = parse(&ctx, "x.md".as_ref(), "x.md", file.as_bytes())
            .entry
            .unwrap();
        let site = Site::new(config, vec![Arc::new(entry)], Vec::new());
        let xml =
            String::from_utf8(render(&site.feed(Scope::All), crate::render::Retain::Keep)).unwrap();
        assert!(
            xml.contains("<description><![CDATA[1 &lt; 2 &amp; &lt;img src=x onerror=alert(1)&gt;]]></description>"),
            "{xml}"
        );
    }

    #[test]
    fn channel_descriptions_are_escaped_like_summaries() {
        let config = Config::parse(
            std::path::Path::new("site.toml"),
            "title = \"T\"\nbase_url = \"http://example.org/\"\ntimezone = \"UTC\"\n[[sections]]\nslug = \"a\"\ntitle = \"A\"\ndescription = \"<b>bold</b><script>alert(1)</script> & more\"\n",
        )
        .unwrap();
        let section = config.sections[0].clone();
        let site = Site::new(config, Vec::new(), Vec::new());
        for xml in [
            render(
                &site.feed(Scope::Section(&section)),
                crate::render::Retain::Keep,
            ),
            super::super::yandex::render(
                &site.feed(Scope::Section(&section)),
                crate::render::Retain::Keep,
            ),
        ] {
            let xml = String::from_utf8(xml).unwrap();
            let doc = roxmltree::Document::parse(&xml).unwrap();
            let channel = doc
                .descendants()
                .find(|n| n.has_tag_name("channel"))
                .unwrap();
            let description = channel
                .children()
                .find(|n| n.has_tag_name("description"))
                .and_then(|n| n.text())
                .unwrap();
            // What a reader renders as HTML is the text, not markup.
            assert_eq!(
                description,
                "&lt;b&gt;bold&lt;/b&gt;&lt;script&gt;alert(1)&lt;/script&gt; &amp; more",
                "{xml}"
            );
        }
    }
}
