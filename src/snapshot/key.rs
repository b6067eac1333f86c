//! The one map of the site: every resource it serves has a typed [`Key`],
//! with exactly one mapping each way.
//!
//! - key → URL ([`Key::path`], [`Key::rel`]) and key → exported file
//!   ([`Key::file`]);
//! - request path and query → key ([`Key::parse`]), or the reason there is
//!   none (a 400 with its message, or a 404).
//!
//! The snapshot lists every key it can serve (`Snapshot::keys`), `serve`
//! routes through [`Key::parse`], `vestnik build` writes what the snapshot
//! lists to [`Key::file`], and `tests/export.rs` compares the two through
//! it. The strings themselves come from [`crate::urls`]. Adding a kind of
//! resource means a variant here, its renderer, and nothing else.

use crate::render::Format;
use crate::urls;

/// One resource of the site.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    /// The home page: page 1 (`/`) or a later one (`/?page=N`).
    Home {
        /// From 1.
        page: usize,
    },
    /// A section's page, `/sections/{slug}`, and its later pages.
    Section {
        /// The section's slug.
        slug: String,
        /// From 1.
        page: usize,
    },
    /// An entry's page, `/news/{id}`.
    News {
        /// The entry's id as written (the URL percent-encodes it).
        id: String,
    },
    /// How to subscribe, `/subscribe`.
    Subscribe,
    /// One page of a feed: `/feeds/{slug}.{ext}`, with `sections`, `limit`
    /// and `page` in its query when they are not the defaults.
    Feed {
        /// `all` or a section's slug.
        slug: String,
        /// A bundle of sections of the combined feed; empty for none.
        sections: Vec<String>,
        /// The format.
        format: Format,
        /// Entries per page, when not the site's `feed_limit`.
        limit: Option<usize>,
        /// From 1.
        page: usize,
    },
    /// The Yandex News profile of a feed, `/feeds/{slug}.yandex.rss`.
    Yandex {
        /// `all` or a section's slug.
        slug: String,
    },
    /// The OPML subscription list naming feeds in a format.
    Opml(Format),
    /// `/robots.txt`.
    Robots,
    /// `/sitemap.xml`: the sitemap, or the index of its children.
    Sitemap,
    /// `/sitemap-N.xml`, child N (from 1) of the sitemap index.
    SitemapChild(usize),
    /// `/sitemap-news.xml`, the Google News sitemap.
    NewsSitemap,
}

/// Why a request names no resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoKey {
    /// Nothing is served at that path (404).
    NotFound,
    /// The query cannot be read (400), with the reason for the client.
    BadQuery(String),
}

impl Key {
    /// The standard first page of a feed.
    pub fn feed(slug: &str, format: Format) -> Key {
        Key::Feed {
            slug: slug.to_owned(),
            sections: Vec::new(),
            format,
            limit: None,
            page: 1,
        }
    }

    /// The URL relative to `base_url`, query included:
    /// `feeds/all.rss?page=2`, `news/some-id`, `` for the home page.
    pub fn rel(&self) -> String {
        let with_query = |path: String, query: Option<String>| match query {
            Some(q) => format!("{path}?{q}"),
            None => path,
        };
        match self {
            Key::Home { page } => with_query(String::new(), urls::page_query(*page)),
            Key::Section { slug, page } => with_query(urls::section(slug), urls::page_query(*page)),
            Key::News { id } => urls::news(id),
            Key::Subscribe => urls::SUBSCRIBE.to_owned(),
            Key::Feed {
                slug,
                sections,
                format,
                limit,
                page,
            } => {
                let sections: Vec<&str> = sections.iter().map(String::as_str).collect();
                with_query(
                    urls::feed(slug, format.extension()),
                    urls::feed_query(&sections, *limit, *page),
                )
            }
            Key::Yandex { slug } => urls::yandex_feed(slug),
            Key::Opml(format) => urls::opml(opml_format(*format)),
            Key::Robots => urls::ROBOTS.to_owned(),
            Key::Sitemap => urls::SITEMAP.to_owned(),
            Key::SitemapChild(n) => urls::sitemap_child(*n),
            Key::NewsSitemap => urls::NEWS_SITEMAP.to_owned(),
        }
    }

    /// The absolute URL path with its query, as requested: `/feeds/all.rss?page=2`.
    pub fn path(&self) -> String {
        format!("/{}", self.rel())
    }

    /// The file, relative to OUT, that `vestnik build` writes this
    /// resource to; `None` for what a build does not export (bundles and
    /// other page sizes, which only exist as queries).
    ///
    /// Pages become `index.html` in a folder named like their path, so a
    /// plain `try_files $uri $uri/index.html` serves them at the same
    /// URLs. Later pages become `page/N/index.html` below the page, and
    /// later feed pages `feeds/pages/{slug}/N.{ext}`; `deploy/nginx.conf`
    /// maps the queries to them.
    pub fn file(&self) -> Option<String> {
        let page_dir = |dir: String, page: usize| match page {
            1 => format!("{dir}index.html"),
            n => format!("{dir}page/{n}/index.html"),
        };
        match self {
            Key::Home { page } => Some(page_dir(String::new(), *page)),
            Key::Section { slug, page } => {
                plain_slug(slug).then(|| page_dir(format!("{}/", urls::section(slug)), *page))
            }
            // The id as written: a web server decodes the URL before it
            // looks for the file.
            Key::News { id } => {
                let safe = !id.contains('?')
                    && id
                        .split('/')
                        .all(|p| !p.is_empty() && p != "." && p != "..");
                safe.then(|| format!("news/{id}/index.html"))
            }
            Key::Subscribe => Some(format!("{}/index.html", urls::SUBSCRIBE)),
            Key::Feed {
                slug,
                sections,
                format,
                limit: None,
                page,
            } if sections.is_empty() && plain_slug(slug) => Some(match page {
                1 => urls::feed(slug, format.extension()),
                n => format!("feeds/pages/{slug}/{n}.{}", format.extension()),
            }),
            Key::Feed { .. } => None,
            Key::Yandex { slug } => plain_slug(slug).then(|| self.rel()),
            Key::Opml(format) => Some(match opml_format(*format) {
                None => "feeds.opml".to_owned(),
                Some(ext) => format!("feeds.{ext}.opml"),
            }),
            Key::Robots | Key::Sitemap | Key::SitemapChild(_) | Key::NewsSitemap => {
                Some(self.rel())
            }
        }
    }

    /// The key a request's decoded path and raw query name.
    ///
    /// Only the parameters a resource reads are looked at (`page`, `limit`
    /// and `sections` on feeds, `page` on the home and section pages,
    /// `format` on the OPML list); others, tracking parameters among them,
    /// are ignored, so the plain URL's bytes and ETag answer. The first
    /// non-empty occurrence of a parameter counts.
    pub fn parse(path: &str, query: Option<&str>) -> Result<Key, NoKey> {
        let query = query.unwrap_or_default();
        let page = || parse_page(query).map_err(NoKey::BadQuery);
        if path == "/" {
            return Ok(Key::Home { page: page()? });
        }
        if let Some(slug) = path.strip_prefix("/sections/") {
            return Ok(Key::Section {
                slug: slug.to_owned(),
                page: page()?,
            });
        }
        if let Some(id) = path.strip_prefix("/news/").filter(|id| !id.is_empty()) {
            return Ok(Key::News { id: id.to_owned() });
        }
        if let Some((slug, ext)) = path
            .strip_prefix("/feeds/")
            .and_then(|n| n.rsplit_once('.'))
        {
            if let Some(slug) = slug.strip_suffix(".yandex") {
                return match ext {
                    "rss" => Ok(Key::Yandex {
                        slug: slug.to_owned(),
                    }),
                    _ => Err(NoKey::NotFound),
                };
            }
            let format = Format::from_extension(ext).ok_or(NoKey::NotFound)?;
            return feed_key(slug, format, query).map_err(NoKey::BadQuery);
        }
        if let Some(n) = path
            .strip_prefix("/sitemap-")
            .and_then(|n| n.strip_suffix(".xml"))
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()) && !n.starts_with('0'))
            .and_then(|n| n.parse().ok())
        {
            return Ok(Key::SitemapChild(n));
        }
        let rel = path.strip_prefix('/').unwrap_or(path);
        match rel {
            "feeds.opml" => Ok(Key::Opml(parse_opml_format(query))),
            urls::SUBSCRIBE => Ok(Key::Subscribe),
            urls::ROBOTS => Ok(Key::Robots),
            urls::SITEMAP => Ok(Key::Sitemap),
            urls::NEWS_SITEMAP => Ok(Key::NewsSitemap),
            _ => Err(NoKey::NotFound),
        }
    }

    /// The page that `path` names with a trailing slash added:
    /// `/sections/{slug}/`, `/news/{id}/` and `/subscribe/`. The server
    /// redirects there (308) when that page exists and `path` does not.
    pub fn unslashed(path: &str) -> Option<Key> {
        let bare = path.strip_suffix('/')?;
        match Key::parse(bare, None) {
            Ok(key @ (Key::Section { .. } | Key::News { .. } | Key::Subscribe)) => Some(key),
            _ => None,
        }
    }
}

impl std::fmt::Display for Key {
    /// The absolute URL path with its query, as [`Key::path`].
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "/{}", self.rel())
    }
}

/// The `format=` an OPML list's URL carries: none for RSS.
fn opml_format(format: Format) -> Option<&'static str> {
    (format != Format::Rss).then(|| format.extension())
}

/// The feed format an OPML list should name: `?format=atom|json`, else RSS.
fn parse_opml_format(query: &str) -> Format {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "format")
        .and_then(|(_, v)| Format::from_extension(&v))
        .unwrap_or(Format::Rss)
}

/// A section slug that is safe as one folder name.
fn plain_slug(slug: &str) -> bool {
    !slug.is_empty() && !slug.contains('/') && !slug.starts_with('.')
}

/// A whole number from 1 in a query: digits only; a number too large for
/// usize is simply past every end.
fn number(v: &str) -> Option<usize> {
    (!v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        .then(|| v.parse::<usize>().unwrap_or(usize::MAX))
        .filter(|&n| n >= 1)
}

/// `page` from a query string, as feeds and pages read it: the first
/// non-empty occurrence counts; none (or only empty ones) is page 1.
fn parse_page(query: &str) -> Result<usize, String> {
    let page = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, v)| k == "page" && !v.is_empty())
        .map(|(_, v)| v);
    match page {
        None => Ok(1),
        Some(v) => {
            number(&v).ok_or_else(|| format!("page must be a whole number from 1, not \"{v}\""))
        }
    }
}

/// A feed's key from its query: `page`, `limit` and `sections`. The first
/// occurrence of each counts; an empty `page=` or `limit=` counts as
/// absent. The key is as asked (a bundle unsorted, a limit unclamped); the
/// snapshot makes it canonical.
fn feed_key(slug: &str, format: Format, query: &str) -> Result<Key, String> {
    let page = parse_page(query)?;
    let (mut limit, mut sections) = (None, None);
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match &*k {
            "limit" if limit.is_none() && !v.is_empty() => limit = Some(v),
            "sections" if sections.is_none() => sections = Some(v),
            _ => {}
        }
    }
    let limit = match limit {
        Some(v) => Some(
            number(&v)
                .ok_or_else(|| format!("limit must be a whole number from 1, not \"{v}\""))?,
        ),
        None => None,
    };
    let sections = match sections {
        Some(v) => {
            let slugs: Vec<String> = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            if slugs.is_empty() {
                return Err("sections= needs at least one section slug, e.g. sections=a,b".into());
            }
            if slug != crate::config::ALL {
                return Err(format!(
                    "sections= bundles sections of the combined feed: use /feeds/all.{}?sections=...",
                    format.extension()
                ));
            }
            slugs
        }
        None => Vec::new(),
    };
    Ok(Key::Feed {
        slug: slug.to_owned(),
        sections,
        format,
        limit,
        page,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(target: &str) -> Result<Key, NoKey> {
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (target, None),
        };
        Key::parse(path, query)
    }

    #[test]
    fn every_key_parses_back_from_its_path() {
        let keys = [
            Key::Home { page: 1 },
            Key::Home { page: 3 },
            Key::Section {
                slug: "sport".into(),
                page: 1,
            },
            Key::Section {
                slug: "sport".into(),
                page: 2,
            },
            Key::Subscribe,
            Key::feed("all", Format::Rss),
            Key::Feed {
                slug: "all".into(),
                sections: vec!["a".into(), "b".into()],
                format: Format::Atom,
                limit: Some(100),
                page: 2,
            },
            Key::Feed {
                slug: "sport".into(),
                sections: vec![],
                format: Format::Json,
                limit: None,
                page: 7,
            },
            Key::Yandex { slug: "all".into() },
            Key::Opml(Format::Rss),
            Key::Opml(Format::Json),
            Key::Robots,
            Key::Sitemap,
            Key::SitemapChild(12),
            Key::NewsSitemap,
        ];
        for key in keys {
            assert_eq!(parse(&key.path()), Ok(key.clone()), "{}", key.path());
        }
        // An entry's path is percent-encoded; the server decodes it first.
        let news = Key::News {
            id: "итоги 2024".into(),
        };
        assert_eq!(news.path(), "/news/%D0%B8%D1%82%D0%BE%D0%B3%D0%B8%202024");
        assert_eq!(parse("/news/итоги 2024"), Ok(news));
    }

    #[test]
    fn files_of_the_export() {
        let file = |target: &str| parse(target).unwrap().file();
        assert_eq!(file("/").as_deref(), Some("index.html"));
        assert_eq!(file("/?page=2").as_deref(), Some("page/2/index.html"));
        assert_eq!(file("/feeds.opml").as_deref(), Some("feeds.opml"));
        assert_eq!(
            file("/feeds.opml?format=atom").as_deref(),
            Some("feeds.atom.opml")
        );
        assert_eq!(file("/feeds/all.rss").as_deref(), Some("feeds/all.rss"));
        assert_eq!(
            file("/feeds/sport.yandex.rss").as_deref(),
            Some("feeds/sport.yandex.rss")
        );
        assert_eq!(
            file("/feeds/sport.atom?page=3").as_deref(),
            Some("feeds/pages/sport/3.atom")
        );
        assert_eq!(file("/feeds/all.rss?limit=5"), None);
        assert_eq!(file("/feeds/all.rss?sections=a"), None);
        assert_eq!(
            file("/sections/sport").as_deref(),
            Some("sections/sport/index.html")
        );
        assert_eq!(
            file("/sections/sport?page=2").as_deref(),
            Some("sections/sport/page/2/index.html")
        );
        assert_eq!(
            file("/news/новость").as_deref(),
            Some("news/новость/index.html")
        );
        assert_eq!(file("/news/a/../b"), None);
        assert_eq!(file("/subscribe").as_deref(), Some("subscribe/index.html"));
        assert_eq!(file("/robots.txt").as_deref(), Some("robots.txt"));
        assert_eq!(file("/sitemap-2.xml").as_deref(), Some("sitemap-2.xml"));
        assert_eq!(
            file("/sitemap-news.xml").as_deref(),
            Some("sitemap-news.xml")
        );
        assert_eq!(file("/sections/../x"), None);
    }

    #[test]
    fn queries_and_misses() {
        assert_eq!(parse("/nope"), Err(NoKey::NotFound));
        assert_eq!(parse("/news/"), Err(NoKey::NotFound));
        assert_eq!(parse("/feeds/all.txt"), Err(NoKey::NotFound));
        assert_eq!(parse("/feeds/all.yandex.atom"), Err(NoKey::NotFound));
        assert_eq!(parse("/sitemap-01.xml"), Err(NoKey::NotFound));
        assert!(matches!(parse("/?page=0"), Err(NoKey::BadQuery(_))));
        assert!(matches!(
            parse("/feeds/all.rss?limit=x"),
            Err(NoKey::BadQuery(_))
        ));
        assert!(matches!(
            parse("/feeds/sport.rss?sections=a"),
            Err(NoKey::BadQuery(m)) if m.contains("/feeds/all.rss?sections=")
        ));
        // Unknown parameters are ignored; empty ones count as absent.
        assert_eq!(
            parse("/feeds/all.rss?utm_source=x&page=&limit="),
            Ok(Key::feed("all", Format::Rss))
        );
        assert_eq!(parse("/feeds.opml?format=nope"), Ok(Key::Opml(Format::Rss)));
        assert_eq!(
            Key::unslashed("/sections/sport/"),
            Some(Key::Section {
                slug: "sport".into(),
                page: 1
            })
        );
        assert_eq!(Key::unslashed("/subscribe/"), Some(Key::Subscribe));
        assert_eq!(Key::unslashed("/feeds/all.rss/"), None);
    }

    /// `?page=` as feeds and pages read it.
    #[test]
    fn page_parameter() {
        let cases: &[(&str, Result<usize, ()>)] = &[
            ("", Ok(1)),
            ("page=", Ok(1)),
            ("utm_source=x", Ok(1)),
            ("page=1", Ok(1)),
            ("page=2", Ok(2)),
            ("page=&page=3", Ok(3)),
            ("page=3&page=x", Ok(3)),
            ("page=007", Ok(7)),
            ("page=99999999999999999999999", Ok(usize::MAX)),
            ("page=0", Err(())),
            ("page=-1", Err(())),
            ("page=x", Err(())),
            ("page=2%20", Err(())),
        ];
        for (query, expected) in cases {
            assert_eq!(parse_page(query).map_err(|_| ()), *expected, "{query}");
        }
    }
}
