//! Every path of the site, written in one place.
//!
//! Paths here are relative to `base_url` (`feeds/all.rss`, `news/some-id`);
//! `Config::url` makes them absolute, and the snapshot's `Key::path` makes
//! them the URL paths the server routes. A leaf module: it imports
//! nothing of the domain, so every layer may use it, and a new kind of URL
//! is added here and nowhere else.

/// The folder of `DATA/` whose files are served under `media/`, and that
/// URL path's first segment.
pub const MEDIA_DIR: &str = "media";

/// The page that explains how to subscribe.
pub const SUBSCRIBE: &str = "subscribe";

/// `robots.txt`, naming the sitemap.
pub const ROBOTS: &str = "robots.txt";

/// The sitemap, or the sitemap index once the site is past one file's limits.
pub const SITEMAP: &str = "sitemap.xml";

/// The Google News sitemap.
pub const NEWS_SITEMAP: &str = "sitemap-news.xml";

/// Percent-encodes one URL path segment (an entry id, a media file name).
pub fn segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        // form encoding writes spaces as '+', which a path would keep literally.
        .replace('+', "%20")
}

/// An entry's page, e.g. `news/some-id`.
pub fn news(id: &str) -> String {
    format!("news/{}", segment(id))
}

/// A section's page, e.g. `sections/sport`.
pub fn section(slug: &str) -> String {
    format!("sections/{slug}")
}

/// A feed's first page, e.g. `feeds/all.rss`, `feeds/sport.yandex.rss`.
pub fn feed(slug: &str, ext: &str) -> String {
    format!("feeds/{slug}.{ext}")
}

/// The Yandex News profile of a feed, e.g. `feeds/all.yandex.rss`.
pub fn yandex_feed(slug: &str) -> String {
    feed(slug, "yandex.rss")
}

/// The query of one page of a feed, in canonical form: the bundle's
/// sections (as given: sorted and deduplicated by the caller), then a
/// `limit` where it is not the default, then a page past the first. `None`
/// when there is nothing to say, so the standard first page has one URL.
/// Slugs are a-z, 0-9 and '-', so nothing here needs escaping.
pub fn feed_query(bundle: &[&str], limit: Option<usize>, page: usize) -> Option<String> {
    let mut query = Vec::new();
    if !bundle.is_empty() {
        query.push(format!("sections={}", bundle.join(",")));
    }
    if let Some(limit) = limit {
        query.push(format!("limit={limit}"));
    }
    if page > 1 {
        query.push(format!("page={page}"));
    }
    (!query.is_empty()).then(|| query.join("&"))
}

/// The query of page `page` of an HTML listing (the home page, a section's
/// page): `page=N` past the first, none for page 1.
pub fn page_query(page: usize) -> Option<String> {
    (page > 1).then(|| format!("page={page}"))
}

/// The subscription list naming feeds with extension `ext`: `feeds.opml`
/// for RSS (`None`), `feeds.opml?format=atom` or `?format=json` else.
pub fn opml(ext: Option<&str>) -> String {
    match ext {
        None => "feeds.opml".to_owned(),
        Some(ext) => format!("feeds.opml?format={ext}"),
    }
}

/// Child sitemap `n` (from 1) of a sitemap index.
pub fn sitemap_child(n: usize) -> String {
    format!("sitemap-{n}.xml")
}

/// A media file under `DATA/media/`, each segment percent-encoded:
/// `media/2022/photo.jpg`.
pub fn media(rel: &str) -> String {
    let segments: Vec<String> = rel.split('/').map(segment).collect();
    format!("{MEDIA_DIR}/{}", segments.join("/"))
}

/// Why [`http_url`] refused a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotHttpUrl {
    /// Not a URL at all (for a media file: maybe a path under `DATA/media/`).
    NotUrl,
    /// A URL of another scheme, such as `ftp:` or `javascript:`.
    OtherScheme,
}

/// The one check of the links Vestnik writes into feeds: an http or https
/// URL, absolute, or relative to `base` when one is given. Surrounding
/// whitespace is ignored. Entries (`link`, `[source]`, media) and `sources.toml`
/// both check with it, so they agree on what a link is.
pub fn http_url(raw: &str, base: Option<&url::Url>) -> Result<url::Url, NotHttpUrl> {
    let url = url::Url::options()
        .base_url(base)
        .parse(raw.trim())
        .map_err(|_| NotHttpUrl::NotUrl)?;
    if matches!(url.scheme(), "http" | "https") {
        Ok(url)
    } else {
        Err(NotHttpUrl::OtherScheme)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_and_paths_are_encoded_once() {
        assert_eq!(segment("a b/ц"), "a%20b%2F%D1%86");
        assert_eq!(
            news("2024 итоги"),
            "news/2024%20%D0%B8%D1%82%D0%BE%D0%B3%D0%B8"
        );
        assert_eq!(media("2022/a b.jpg"), "media/2022/a%20b.jpg");
        assert_eq!(feed("all", "rss"), "feeds/all.rss");
        assert_eq!(section("sport"), "sections/sport");
    }

    #[test]
    fn feed_queries_are_canonical() {
        assert_eq!(feed_query(&[], None, 1), None);
        assert_eq!(feed_query(&[], None, 2).as_deref(), Some("page=2"));
        assert_eq!(
            feed_query(&["a", "b"], Some(100), 3).as_deref(),
            Some("sections=a,b&limit=100&page=3")
        );
        assert_eq!(page_query(1), None);
        assert_eq!(page_query(4).as_deref(), Some("page=4"));
        assert_eq!(opml(None), "feeds.opml");
        assert_eq!(opml(Some("atom")), "feeds.opml?format=atom");
    }

    #[test]
    fn http_urls() {
        let base = url::Url::parse("http://example.org/news/").unwrap();
        let cases: &[(&str, Option<&url::Url>, Result<&str, NotHttpUrl>)] = &[
            (
                " https://ura.news/a?b=1 ",
                None,
                Ok("https://ura.news/a?b=1"),
            ),
            ("HTTP://Example.org", None, Ok("http://example.org/")),
            ("ura.news", None, Err(NotHttpUrl::NotUrl)),
            ("2024/photo.jpg", None, Err(NotHttpUrl::NotUrl)),
            ("ftp://x.org/a.mp3", None, Err(NotHttpUrl::OtherScheme)),
            ("javascript:alert(1)", None, Err(NotHttpUrl::OtherScheme)),
            ("/a/b", Some(&base), Ok("http://example.org/a/b")),
            ("c", Some(&base), Ok("http://example.org/news/c")),
            (
                "javascript:alert(1)",
                Some(&base),
                Err(NotHttpUrl::OtherScheme),
            ),
        ];
        for (raw, base, want) in cases {
            let got = http_url(raw, *base);
            assert_eq!(
                got.as_ref().map(url::Url::as_str),
                want.as_ref().map(|s| *s),
                "{raw:?} against {base:?}"
            );
        }
    }
}
