//! Atom 1.0 (RFC 4287) through `atom_syndication`.

use atom_syndication::{
    Category, Content, Entry, Feed as AtomFeed, Generator, Link, Person, Source, Text,
};

use super::{Format, GENERATOR, MEDIA_NS, authors, media_thumbnail_attrs, paging_links};
use crate::model::Feed;

fn link(rel: &str, href: String, mime_type: Option<&str>, title: Option<&str>) -> Link {
    Link {
        rel: rel.to_owned(),
        href,
        mime_type: mime_type.map(str::to_owned),
        title: title.map(str::to_owned),
        ..Link::default()
    }
}

fn person(name: &str) -> Person {
    Person {
        name: name.to_owned(),
        ..Person::default()
    }
}

pub(super) fn render(feed: &Feed<'_>, retain: super::Retain) -> Vec<u8> {
    let config = &feed.site.config;
    // Every page of a paged feed is the same feed (RFC 5005 §3), so all pages
    // share the first page's URL as their id; `self` names the page itself.
    let id = feed.url(Format::Atom.extension()).to_string();
    let self_url = feed.self_url(Format::Atom.extension()).to_string();
    let media_type = Some(Format::Atom.media_type());
    // RFC 4287 §4.1.1 wants an author on the feed unless every entry has one;
    // the site title stands in when no default author is configured.
    let feed_author = if config.author.is_empty() {
        &config.title
    } else {
        &config.author
    };
    let description = feed.description();
    let mut atom = AtomFeed {
        title: Text::plain(feed.title()),
        id,
        updated: feed.updated(),
        authors: vec![person(feed_author)],
        generator: Some(Generator {
            value: GENERATOR.to_owned(),
            ..Generator::default()
        }),
        links: [
            link("self", self_url, media_type, None),
            link(
                "alternate",
                feed.html_url().to_string(),
                Some("text/html"),
                None,
            ),
        ]
        .into_iter()
        .chain(
            paging_links(feed, Format::Atom)
                .into_iter()
                .map(|(rel, href)| link(rel, href, media_type, None)),
        )
        .collect(),
        subtitle: (description != feed.title()).then(|| Text::plain(description)),
        lang: (!config.language.is_empty()).then(|| config.language.clone()),
        entries: feed
            .entries
            .iter()
            .map(|e| entry(feed, e, retain))
            .collect(),
        ..AtomFeed::default()
    };
    // Declared only when used, so feeds without images keep their bytes.
    if atom
        .entries
        .iter()
        .any(|e| e.extensions.contains_key("media"))
    {
        atom.namespaces
            .insert("media".to_owned(), MEDIA_NS.to_owned());
    }
    // WebSub discovery (W3C WebSub §4).
    if let Some(hub) = feed.hub() {
        atom.links.push(link("hub", hub.to_string(), None, None));
    }
    let mut out = Vec::with_capacity(4096 + feed.entries.len() * 4096);
    // Writing into a Vec cannot fail, and the crate escapes all text.
    let _ = atom.write_with_config(
        &mut out,
        atom_syndication::WriteConfig {
            write_document_declaration: true,
            indent_size: Some(2),
        },
    );
    out.push(b'\n');
    out
}

fn entry(feed: &Feed<'_>, e: &crate::entry::Entry, retain: super::Retain) -> Entry {
    let config = &feed.site.config;
    let mut links = vec![link(
        "alternate",
        e.link(&feed.site.config).to_string(),
        Some("text/html"),
        None,
    )];
    let mut source = None;
    if let Some(s) = &e.source {
        if let Some(url) = &s.url {
            links.push(link("via", url.to_string(), None, Some(&s.name)));
        }
        if let Some(feed_url) = &s.feed {
            source = Some(Source {
                id: feed_url.to_string(),
                title: Text::plain(s.name.clone()),
                updated: e.modified(),
                links: std::iter::once(link("self", feed_url.to_string(), None, None))
                    .chain(
                        s.url
                            .iter()
                            .map(|u| link("alternate", u.to_string(), None, None)),
                    )
                    .collect(),
                ..Source::default()
            });
        }
    }
    // Enclosures (RFC 4287 §4.2.7.2); length only when known, as it is
    // advisory and 0 would claim an empty file.
    links.extend(e.enclosures.iter().map(|m| Link {
        length: (m.length > 0).then(|| m.length.to_string()),
        ..link("enclosure", m.url.to_string(), Some(&m.mime_type), None)
    }));
    // The picture as a Media RSS thumbnail, which Atom readers also read.
    let mut extensions = atom_syndication::extension::ExtensionMap::default();
    if let Some(image) = &e.image {
        let thumbnail = atom_syndication::extension::Extension {
            name: "media:thumbnail".to_owned(),
            attrs: media_thumbnail_attrs(image),
            ..Default::default()
        };
        extensions.insert(
            "media".to_owned(),
            std::iter::once(("thumbnail".to_owned(), vec![thumbnail])).collect(),
        );
    }
    Entry {
        title: Text::plain(e.title.clone()),
        id: e.tag_uri(config),
        updated: e.modified(),
        published: Some(e.published),
        authors: if e.authors.is_empty() {
            vec![]
        } else {
            authors(feed, e).into_iter().map(person).collect()
        },
        categories: e
            .sections
            .iter()
            .filter_map(|slug| config.section(slug))
            .map(|s| Category {
                term: s.slug.clone(),
                label: Some(s.title.clone()),
                ..Category::default()
            })
            .collect(),
        links,
        source,
        summary: Some(e.summary(retain))
            .filter(|s| !s.is_empty())
            .map(|s| Text::plain(s.into_owned())),
        content: Some(Content {
            value: Some(super::content_html(feed.site, e, retain)),
            content_type: Some("html".to_owned()),
            ..Content::default()
        }),
        extensions,
        ..Entry::default()
    }
}
