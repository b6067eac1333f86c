//! Model to bytes. The only module that knows the feed crates.
//!
//! Every renderer is a pure function of a [`Feed`]: the same site gives the
//! same bytes, and no renderer reads the clock.

mod atom;
pub mod html;
mod json;
pub mod opml;
mod rss;
pub mod sitemap;
pub mod yandex;

use crate::entry::Entry;
use crate::model::{Feed, Site};

/// A feed format Vestnik serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Format {
    /// RSS 2.0.
    Rss,
    /// Atom 1.0 (RFC 4287).
    Atom,
    /// JSON Feed 1.1.
    Json,
}

impl Format {
    /// Every format, in the order feeds are listed.
    pub const ALL: [Format; 3] = [Format::Rss, Format::Atom, Format::Json];

    /// The file extension used in feed URLs.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Rss => "rss",
            Format::Atom => "atom",
            Format::Json => "json",
        }
    }

    /// The media type without parameters, as used in `<link type=...>`.
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Rss => "application/rss+xml",
            Format::Atom => "application/atom+xml",
            Format::Json => "application/feed+json",
        }
    }

    /// The `Content-Type` header value.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Rss => "application/rss+xml; charset=utf-8",
            Format::Atom => "application/atom+xml; charset=utf-8",
            Format::Json => "application/feed+json; charset=utf-8",
        }
    }

    /// A short human name for subscribe links.
    pub fn label(self) -> &'static str {
        match self {
            Format::Rss => "RSS",
            Format::Atom => "Atom",
            Format::Json => "JSON Feed",
        }
    }

    /// The format whose extension this is.
    pub fn from_extension(ext: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.extension() == ext)
    }
}

pub use crate::entry::html::Retain;

/// Renders a feed in one format; `retain` says whether the entries' bodies
/// rendered for it stay with them.
pub fn render(feed: &Feed<'_>, format: Format, retain: Retain) -> Vec<u8> {
    match format {
        Format::Rss => rss::render(feed, retain),
        Format::Atom => atom::render(feed, retain),
        Format::Json => json::render(feed, retain),
    }
}

/// An entry's HTML as every format and its page carry it: the sanitized
/// body, then the source line naming where the article came from.
pub fn content_html(site: &Site, e: &Entry, retain: Retain) -> String {
    let body = e.body.get(retain);
    let Some(source) = &e.source else {
        return body.into_owned();
    };
    let label = html::source_label(site);
    let name = crate::entry::html::escape(&source.name);
    let line = match &source.url {
        Some(url) => format!(
            "\n<p class=\"source\">{label}: <a href=\"{}\" rel=\"noopener noreferrer\">{name}</a></p>\n",
            crate::entry::html::escape(url.as_str())
        ),
        None => format!("\n<p class=\"source\">{label}: {name}</p>\n"),
    };
    let mut html = String::with_capacity(body.len() + line.len());
    html.push_str(&body);
    html.push_str(&line);
    html
}

/// The RFC 5005 paging links of a feed page in one format, as `(rel, URL)`.
fn paging_links(feed: &Feed<'_>, format: Format) -> Vec<(&'static str, String)> {
    feed.paging()
        .into_iter()
        .map(|(rel, page)| (rel, feed.page_url(format.extension(), page).to_string()))
        .collect()
}

/// The name written in `<generator>`. No version, so that upgrading Vestnik
/// does not change every ETag.
const GENERATOR: &str = "Vestnik";

/// The Media RSS namespace (<https://www.rssboard.org/media-rss>), for
/// `media:content` and `media:thumbnail`.
const MEDIA_NS: &str = "http://search.yahoo.com/mrss/";

/// The Media RSS `medium` of a media type, when it is one of the kinds
/// Media RSS names.
fn medium(mime_type: &str) -> Option<&'static str> {
    match mime_type.split('/').next() {
        Some("image") => Some("image"),
        Some("audio") => Some("audio"),
        Some("video") => Some("video"),
        _ => None,
    }
}

/// Attributes of a `media:content` element for a file: url, type,
/// fileSize when known, medium when Media RSS has one.
fn media_content_attrs(m: &crate::entry::Media) -> std::collections::BTreeMap<String, String> {
    let mut attrs = std::collections::BTreeMap::new();
    attrs.insert("url".to_owned(), m.url.to_string());
    attrs.insert("type".to_owned(), m.mime_type.clone());
    if m.length > 0 {
        attrs.insert("fileSize".to_owned(), m.length.to_string());
    }
    if let Some(medium) = medium(&m.mime_type) {
        attrs.insert("medium".to_owned(), medium.to_owned());
    }
    attrs
}

/// Attributes of a `media:thumbnail` element for an image: url, and width
/// and height when the entry gives them.
fn media_thumbnail_attrs(i: &crate::entry::Image) -> std::collections::BTreeMap<String, String> {
    let mut attrs = std::collections::BTreeMap::new();
    attrs.insert("url".to_owned(), i.media.url.to_string());
    if let Some(w) = i.width {
        attrs.insert("width".to_owned(), w.to_string());
    }
    if let Some(h) = i.height {
        attrs.insert("height".to_owned(), h.to_string());
    }
    attrs
}

/// The author names of an entry, or the site's default author.
fn authors<'a>(feed: &'a Feed<'_>, entry: &'a crate::entry::Entry) -> Vec<&'a str> {
    if entry.authors.is_empty() {
        let site = feed.site.config.author.as_str();
        if site.is_empty() { vec![] } else { vec![site] }
    } else {
        entry.authors.iter().map(String::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture;

    #[test]
    fn the_source_line_follows_the_body_in_the_sites_language() {
        let file = |source: &str| {
            format!(
                "+++\ntitle = \"t\"\ndate = 2024-01-01\nsections = [\"a\"]\n{source}\n+++\nТекст.\n"
            )
        };
        let site = fixture::site(
            fixture::config("language = \"ru\"\n[[sections]]\nslug = \"a\"\ntitle = \"A\"\n"),
            &[
                (
                    "a.md",
                    &file("[source]\nname = \"URA.RU\"\nurl = \"https://ura.news/\""),
                ),
                (
                    "b.md",
                    &file("[source]\nname = \"Пресс-служба <мэрии> & Co\""),
                ),
                ("c.md", &file("")),
            ],
        );
        let html = |id: &str| {
            let e = site.entries.iter().find(|e| e.id == id).unwrap();
            content_html(&site, e, Retain::Discard)
        };
        assert_eq!(
            html("a"),
            "<p>Текст.</p>\n\n<p class=\"source\">Источник: <a href=\"https://ura.news/\" rel=\"noopener noreferrer\">URA.RU</a></p>\n"
        );
        assert_eq!(
            html("b"),
            "<p>Текст.</p>\n\n<p class=\"source\">Источник: Пресс-служба &lt;мэрии&gt; &amp; Co</p>\n"
        );
        assert_eq!(html("c"), "<p>Текст.</p>\n");

        let english = fixture::site(
            fixture::config("[[sections]]\nslug = \"a\"\ntitle = \"A\"\n"),
            &[("a.md", &file("[source]\nname = \"TASS\""))],
        );
        assert!(
            content_html(&english, &english.entries[0], Retain::Keep)
                .ends_with("<p class=\"source\">Source: TASS</p>\n")
        );
    }
}
