//! JSON Feed 1.1 (<https://jsonfeed.org/version/1.1>), written with serde.

use serde::Serialize;

use super::{Format, authors, paging_links};
use crate::model::Feed;

/// The top-level JSON Feed object; field order follows the specification.
#[derive(Serialize)]
struct JsonFeed<'a> {
    version: &'static str,
    title: String,
    home_page_url: String,
    feed_url: String,
    /// The next page of the history (JSON Feed's own paging field).
    #[serde(skip_serializing_if = "Option::is_none")]
    next_url: Option<String>,
    /// RFC 5005 paging links, as in the RSS and Atom feeds: `first`,
    /// `previous`, `next`, `last`. A JSON Feed extension (leading `_`), which
    /// readers that do not know it ignore.
    _paging: std::collections::BTreeMap<&'static str, String>,
    description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    language: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    authors: Vec<Author<'a>>,
    /// WebSub hubs (JSON Feed 1.1 `hubs`); absent without a configured hub.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    hubs: Vec<Hub<'a>>,
    items: Vec<Item<'a>>,
}

#[derive(Serialize)]
struct Hub<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    url: &'a str,
}

#[derive(Serialize)]
struct Author<'a> {
    name: &'a str,
}

#[derive(Serialize)]
struct Item<'a> {
    id: String,
    url: String,
    /// Where a reprinted article came from (JSON Feed's attribution field).
    #[serde(skip_serializing_if = "Option::is_none")]
    external_url: Option<&'a str>,
    title: &'a str,
    content_html: std::borrow::Cow<'a, str>,
    #[serde(skip_serializing_if = "str::is_empty")]
    summary: std::borrow::Cow<'a, str>,
    date_published: String,
    date_modified: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    authors: Vec<Author<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<&'a str>,
    /// The entry's picture (JSON Feed `image`).
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<&'a str>,
    /// The enclosures (JSON Feed `attachments`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    attachments: Vec<Attachment<'a>>,
}

#[derive(Serialize)]
struct Attachment<'a> {
    url: &'a str,
    mime_type: &'a str,
    /// Omitted when unknown (a remote file without `length`).
    #[serde(skip_serializing_if = "Option::is_none")]
    size_in_bytes: Option<u64>,
}

pub(super) fn render(feed: &Feed<'_>, retain: super::Retain) -> Vec<u8> {
    let config = &feed.site.config;
    let items = feed
        .entries
        .iter()
        .map(|e| Item {
            id: e.tag_uri(config),
            url: e.link(config).to_string(),
            external_url: e
                .source
                .as_ref()
                .and_then(|s| s.url.as_ref())
                .map(url::Url::as_str),
            title: &e.title,
            content_html: std::borrow::Cow::Owned(super::content_html(feed.site, e, retain)),
            summary: e.summary(retain),
            date_published: e.published.to_rfc3339(),
            date_modified: e.modified().to_rfc3339(),
            // Like Atom: entries without their own authors inherit the feed's.
            authors: if e.authors.is_empty() {
                vec![]
            } else {
                authors(feed, e)
                    .into_iter()
                    .map(|name| Author { name })
                    .collect()
            },
            tags: e
                .sections
                .iter()
                .filter_map(|slug| config.section(slug))
                .map(|s| s.title.as_str())
                .collect(),
            image: e.image.as_ref().map(|i| i.media.url.as_str()),
            attachments: e
                .enclosures
                .iter()
                .map(|m| Attachment {
                    url: m.url.as_str(),
                    mime_type: &m.mime_type,
                    size_in_bytes: (m.length > 0).then_some(m.length),
                })
                .collect(),
        })
        .collect();
    let site_author = if config.author.is_empty() {
        config.title.as_str()
    } else {
        config.author.as_str()
    };
    let doc = JsonFeed {
        version: "https://jsonfeed.org/version/1.1",
        title: feed.title(),
        home_page_url: feed.html_url().to_string(),
        // The feed's identifier, the same on every page.
        feed_url: feed.url(Format::Json.extension()).to_string(),
        next_url: (feed.page < feed.pages).then(|| {
            feed.page_url(Format::Json.extension(), feed.page + 1)
                .to_string()
        }),
        _paging: paging_links(feed, Format::Json).into_iter().collect(),
        description: feed.description(),
        language: (!config.language.is_empty()).then_some(config.language.as_str()),
        authors: vec![Author { name: site_author }],
        hubs: feed
            .hub()
            .into_iter()
            .map(|hub| Hub {
                kind: "WebSub",
                url: hub.as_str(),
            })
            .collect(),
        items,
    };
    // Serializing plain structs of strings cannot fail.
    let mut out = serde_json::to_vec_pretty(&doc).unwrap_or_default();
    out.push(b'\n');
    out
}
