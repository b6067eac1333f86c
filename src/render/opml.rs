//! OPML 2.0 subscription list: the combined feed and every section's feed, so
//! a reader can subscribe to all of them in one import.

use super::Format;
use crate::model::Site;

/// The path of the list naming feeds in `format`, relative to `base_url`:
/// `feeds.opml` for RSS, `feeds.opml?format=atom` or `?format=json` else.
pub fn path(format: Format) -> String {
    crate::urls::opml((format != Format::Rss).then(|| format.extension()))
}

/// Renders the subscription list with feed URLs in `format`.
pub fn render(site: &Site, format: Format) -> Vec<u8> {
    let config = &site.config;
    let outlines = site
        .feeds()
        .iter()
        .map(|feed| opml::Outline {
            text: feed.title(),
            title: Some(feed.title()),
            description: Some(feed.description()),
            // OPML 2.0 says type="rss" for every feed subscription, whatever its format.
            r#type: Some("rss".to_owned()),
            xml_url: Some(feed.url(format.extension()).to_string()),
            html_url: Some(feed.html_url().to_string()),
            language: (!config.language.is_empty()).then(|| config.language.clone()),
            ..opml::Outline::default()
        })
        .collect();
    let doc = opml::OPML {
        version: "2.0".to_owned(),
        head: Some(opml::Head {
            title: Some(config.title.clone()),
            owner_name: (!config.author.is_empty()).then(|| config.author.clone()),
            docs: Some("http://opml.org/spec2.opml".to_owned()),
            ..opml::Head::default()
        }),
        body: opml::Body { outlines },
    };
    // The crate escapes every attribute; a document of plain strings always serializes.
    let mut out = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n".to_vec();
    out.extend_from_slice(doc.to_string().unwrap_or_default().as_bytes());
    out.push(b'\n');
    out
}
