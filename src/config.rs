//! `site.toml`: the raw serde shape, validated once into [`Config`].
//!
//! Nothing past this module sees a raw value: the base URL is a parsed [`Url`]
//! with a trailing slash, the zone is a [`Tz`], and section slugs are checked.

use std::path::Path;

use chrono_tz::Tz;
use serde::Deserialize;
use url::Url;

use crate::diagnostic::Diagnostic;
use crate::text::squash_whitespace;

/// The name of the site configuration file inside the data directory.
pub const SITE_FILE: &str = "site.toml";

/// The list of known sources inside the data directory, for `import` and `new`.
pub const SOURCES_FILE: &str = "sources.toml";

/// The slug of the combined feed; no section may use it.
pub const ALL: &str = "all";

/// Default number of items per feed.
pub const DEFAULT_FEED_LIMIT: usize = 50;

/// Default cap on `?limit=` (raised to `feed_limit` when that is larger).
pub const DEFAULT_MAX_LIMIT: usize = 200;

/// Default `Cache-Control: max-age` in seconds.
pub const DEFAULT_CACHE_MAX_AGE: u32 = 300;

/// Default largest entry file, in bytes (1 MiB).
pub const DEFAULT_MAX_ENTRY_BYTES: u64 = 1024 * 1024;

/// The most `max_entry_bytes` may be raised to (64 MiB): every entry is held in
/// memory and rendered into several feeds, so a larger file is a mistake
/// (an attachment saved as `.md`) rather than an article.
pub const MAX_ENTRY_BYTES_CEILING: u64 = 64 * 1024 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSite {
    title: String,
    #[serde(default)]
    description: String,
    base_url: toml::Spanned<String>,
    #[serde(default = "default_language")]
    language: String,
    timezone: toml::Spanned<String>,
    #[serde(default)]
    author: String,
    feed_limit: Option<toml::Spanned<i64>>,
    max_limit: Option<toml::Spanned<i64>>,
    cache_max_age: Option<toml::Spanned<i64>>,
    max_entry_bytes: Option<toml::Spanned<i64>>,
    websub_hub: Option<toml::Spanned<String>>,
    #[serde(default)]
    sections: Vec<RawSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSection {
    slug: toml::Spanned<String>,
    title: String,
    description: Option<String>,
}

fn default_language() -> String {
    "en".to_owned()
}

/// The validated site configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The site's name.
    pub title: String,
    /// The site's description; may be empty.
    pub description: String,
    /// Public URL prefix of the service, always ending in `/`.
    pub base_url: Url,
    /// Language tag such as `ru`.
    pub language: String,
    /// Zone for dates written without an offset.
    pub timezone: Tz,
    /// Default author name; may be empty.
    pub author: String,
    /// Items per feed.
    pub feed_limit: usize,
    /// The most items a `?limit=` request gets; at least `feed_limit`.
    pub max_limit: usize,
    /// `Cache-Control: max-age`, in seconds.
    pub cache_max_age: u32,
    /// Entry files larger than this are reported and not read. It lives in
    /// `site.toml` so `check`, `serve` and `build` agree on the same data.
    pub max_entry_bytes: u64,
    /// Sections in the order the site lists them.
    pub sections: Vec<Section>,
    /// The WebSub hub that feeds name and that reloads ping, if any.
    pub websub_hub: Option<Url>,
    /// `serve --preview`, for an editor's own machine: drafts and scheduled
    /// entries are published, and marked as such on the pages. Never read
    /// from `site.toml`.
    pub preview: bool,
}

/// One section of the site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// URL-safe identifier: lowercase ASCII letters, digits and hyphens.
    pub slug: String,
    /// Human title, e.g. «Городской пассажирский транспорт».
    pub title: String,
    /// Optional description; the feed falls back to the site's.
    pub description: Option<String>,
}

impl Config {
    /// Parses and validates the text of `site.toml`; `path` is only used in messages.
    pub fn parse(path: &Path, text: &str) -> Result<Config, Diagnostic> {
        let raw: RawSite = toml::from_str(text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            Diagnostic::at_offset(path, text, offset, 1, toml_message(&e))
        })?;
        let err = |offset: usize, msg: String| Diagnostic::at_offset(path, text, offset, 1, msg);

        let base_url = parse_base_url(raw.base_url.get_ref())
            .map_err(|m| err(raw.base_url.span().start, m))?;
        let timezone: Tz = raw.timezone.get_ref().parse().map_err(|_| {
            err(
                raw.timezone.span().start,
                format!(
                    "unknown time zone \"{}\"; use an IANA name such as \"Asia/Novosibirsk\"",
                    raw.timezone.get_ref()
                ),
            )
        })?;
        let feed_limit = match raw.feed_limit {
            None => DEFAULT_FEED_LIMIT,
            Some(v) => usize::try_from(*v.get_ref())
                .ok()
                .filter(|&n| n >= 1)
                .ok_or_else(|| err(v.span().start, "feed_limit must be at least 1".into()))?,
        };
        let max_limit = match raw.max_limit {
            None => DEFAULT_MAX_LIMIT.max(feed_limit),
            Some(v) => usize::try_from(*v.get_ref())
                .ok()
                .filter(|&n| n >= feed_limit)
                .ok_or_else(|| {
                    err(
                        v.span().start,
                        format!("max_limit must be at least feed_limit ({feed_limit})"),
                    )
                })?,
        };
        let cache_max_age = match raw.cache_max_age {
            None => DEFAULT_CACHE_MAX_AGE,
            Some(v) => u32::try_from(*v.get_ref()).map_err(|_| {
                err(
                    v.span().start,
                    "cache_max_age must be a number of seconds from 0".into(),
                )
            })?,
        };
        let max_entry_bytes = match raw.max_entry_bytes {
            None => DEFAULT_MAX_ENTRY_BYTES,
            Some(v) => u64::try_from(*v.get_ref())
                .ok()
                .filter(|n| (1..=MAX_ENTRY_BYTES_CEILING).contains(n))
                .ok_or_else(|| {
                    err(
                        v.span().start,
                        format!(
                            "max_entry_bytes must be from 1 to {MAX_ENTRY_BYTES_CEILING} (64 MiB); the default is {DEFAULT_MAX_ENTRY_BYTES} (1 MiB)"
                        ),
                    )
                })?,
        };
        let websub_hub = match raw.websub_hub {
            None => None,
            Some(v) => Some(parse_hub_url(v.get_ref()).map_err(|m| err(v.span().start, m))?),
        };
        if raw.title.trim().is_empty() {
            return Err(Diagnostic::file(path, "title must not be empty"));
        }

        let mut sections: Vec<Section> = Vec::with_capacity(raw.sections.len());
        for s in raw.sections {
            let slug = s.slug.get_ref();
            let at = s.slug.span().start;
            if slug == ALL {
                return Err(err(
                    at,
                    format!("the section slug \"{ALL}\" is reserved for the combined feed"),
                ));
            }
            if slug.is_empty()
                || !slug
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(err(
                    at,
                    format!(
                        "section slug \"{slug}\" must use only a-z, 0-9 and '-' (try \"{}\")",
                        crate::text::slugify(slug)
                    ),
                ));
            }
            if sections.iter().any(|o| &o.slug == slug) {
                return Err(err(at, format!("section slug \"{slug}\" is used twice")));
            }
            sections.push(Section {
                slug: slug.clone(),
                title: clean(&s.title),
                description: s.description.map(|d| clean(&d)).filter(|d| !d.is_empty()),
            });
        }

        Ok(Config {
            title: clean(&raw.title),
            description: clean(&raw.description),
            base_url,
            language: raw.language.trim().to_owned(),
            timezone,
            author: clean(&raw.author),
            feed_limit,
            max_limit,
            cache_max_age,
            max_entry_bytes,
            sections,
            websub_hub,
            preview: false,
        })
    }

    /// Reads and validates `DATA/site.toml`.
    pub fn load(data_dir: &Path) -> Result<Config, Diagnostic> {
        Self::read(data_dir).map(|(config, _)| config)
    }

    /// Reads and validates `DATA/site.toml`, and gives its text too (the
    /// loader hashes it to tell a real change from a touch). The one place
    /// `site.toml` is read.
    pub fn read(data_dir: &Path) -> Result<(Config, String), Diagnostic> {
        let path = data_dir.join(SITE_FILE);
        let text = crate::file::read_to_string(&path)
            .map_err(|e| Diagnostic::file(&path, format!("cannot read site configuration: {e}")))?;
        Ok((Self::parse(&path, &text)?, text))
    }

    /// The section with this slug.
    pub fn section(&self, slug: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.slug == slug)
    }

    /// The host that `tag:` URIs are minted under.
    pub fn tag_authority(&self) -> &str {
        self.base_url.host_str().unwrap_or("localhost")
    }

    /// `base_url` joined with a relative path such as `feeds/all.rss`.
    pub fn url(&self, relative: &str) -> Url {
        // base_url is absolute and ends in '/', so joining a relative path cannot fail.
        self.base_url
            .join(relative)
            .unwrap_or_else(|_| self.base_url.clone())
    }
}

fn clean(s: &str) -> String {
    crate::text::squash_whitespace(&crate::text::xml_safe(s))
}

/// Parses a `base_url`: an absolute http(s) URL with a host and no query or
/// fragment, given a trailing slash. Also used for `--base-url`.
pub fn parse_base_url(s: &str) -> Result<Url, String> {
    let mut url = Url::parse(s).map_err(|e| {
        format!("base_url \"{s}\" is not an absolute URL ({e}); write it like \"http://localhost:8080/\"")
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!(
            "base_url \"{s}\" must be an http or https URL with a host"
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "base_url \"{s}\" must not have a query or fragment"
        ));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// A hub is any absolute http(s) URL; unlike `base_url` it may carry a query
/// (some hubs take the publisher's key there) and keeps its path as written.
fn parse_hub_url(s: &str) -> Result<Url, String> {
    let url = Url::parse(s).map_err(|e| {
        format!("websub_hub \"{s}\" is not an absolute URL ({e}); write it like \"https://pubsubhubbub.appspot.com/\"")
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!(
            "websub_hub \"{s}\" must be an http or https URL with a host"
        ));
    }
    if url.fragment().is_some() {
        return Err(format!("websub_hub \"{s}\" must not have a fragment"));
    }
    Ok(url)
}

/// Attribution of a reprinted article: an entry's `[source]`, or a source
/// `sources.toml` lists for `vestnik import` and `vestnik new`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The source's name, e.g. «Информационное агентство URA.RU».
    pub name: String,
    /// The article or site it came from.
    pub url: Option<Url>,
    /// The source's own RSS or Atom feed.
    pub feed: Option<Url>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSources {
    #[serde(default)]
    sources: Vec<RawSource>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    name: String,
    url: Option<toml::Spanned<String>>,
    feed: Option<toml::Spanned<String>>,
}

/// Parses and validates the text of `sources.toml`; `path` is only used in messages.
pub fn parse_sources(path: &Path, text: &str) -> Result<Vec<Source>, Diagnostic> {
    let raw: RawSources = toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        Diagnostic::at_offset(path, text, offset, 1, toml_message(&e))
    })?;
    let url = |u: Option<toml::Spanned<String>>, key: &str| -> Result<Option<Url>, Diagnostic> {
        u.map(|u| {
            crate::urls::http_url(u.get_ref(), None).map_err(|_| {
                Diagnostic::at_offset(
                    path,
                    text,
                    u.span().start,
                    1,
                    format!(
                        "source {key} \"{}\" must be an absolute http(s) URL",
                        u.get_ref()
                    ),
                )
            })
        })
        .transpose()
    };
    raw.sources
        .into_iter()
        .map(|s| {
            Ok(Source {
                name: squash_whitespace(&s.name),
                url: url(s.url, "url")?,
                feed: url(s.feed, "feed")?,
            })
        })
        .collect()
}

/// Reads `DATA/sources.toml`; a missing file means no known sources.
pub fn load_sources(data_dir: &Path) -> Result<Vec<Source>, Diagnostic> {
    let path = data_dir.join(SOURCES_FILE);
    match crate::file::read_to_string(&path) {
        Ok(text) => parse_sources(&path, &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(Diagnostic::file(
            &path,
            format!("cannot read the list of sources: {e}"),
        )),
    }
}

/// The TOML parser's message on one line, without its own rendering of the source.
pub(crate) fn toml_message(e: &toml::de::Error) -> String {
    crate::text::squash_whitespace(e.message())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
title = "Site"
base_url = "http://example.org/news"
timezone = "Asia/Novosibirsk"
[[sections]]
slug = "transport"
title = "Транспорт"
"#;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(Path::new("site.toml"), text).map_err(|d| d.to_string())
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.base_url.as_str(), "http://example.org/news/");
        assert_eq!(c.feed_limit, 50);
        assert_eq!(c.max_limit, 200);
        assert_eq!(c.cache_max_age, 300);
        assert_eq!(c.max_entry_bytes, 1024 * 1024);
        let custom = parse(&format!("max_entry_bytes = 2048\n{MINIMAL}")).unwrap();
        assert_eq!(custom.max_entry_bytes, 2048);
        assert_eq!(c.timezone, chrono_tz::Asia::Novosibirsk);
        assert_eq!(
            c.url("feeds/all.rss").as_str(),
            "http://example.org/news/feeds/all.rss"
        );
        assert_eq!(c.tag_authority(), "example.org");
        assert_eq!(c.websub_hub, None);
    }

    #[test]
    fn websub_hub_is_an_absolute_http_url() {
        let with = |hub: &str| {
            parse(&MINIMAL.replace(
                "[[sections]]",
                &format!("websub_hub = \"{hub}\"\n[[sections]]"),
            ))
        };
        let c = with("https://pubsubhubbub.appspot.com/").unwrap();
        assert_eq!(
            c.websub_hub.as_ref().map(Url::as_str),
            Some("https://pubsubhubbub.appspot.com/")
        );
        let cases = [
            (
                "/hub",
                "site.toml:5:14: websub_hub \"/hub\" is not an absolute URL",
            ),
            (
                "ftp://hub.example/",
                "must be an http or https URL with a host",
            ),
            ("https://hub.example/#x", "must not have a fragment"),
        ];
        for (hub, expected) in cases {
            let got = with(hub).unwrap_err();
            assert!(got.contains(expected), "expected {expected:?} in {got:?}");
        }
    }

    #[test]
    fn errors_name_the_line_and_say_what_to_do() {
        let cases = [
            (
                MINIMAL.replace("Asia/Novosibirsk", "Asia/Novosibirks"),
                "site.toml:4:12: unknown time zone \"Asia/Novosibirks\"",
            ),
            (
                MINIMAL.replace("transport", "all"),
                "site.toml:6:8: the section slug \"all\" is reserved",
            ),
            (
                MINIMAL.replace("transport", "Транспорт"),
                "must use only a-z, 0-9 and '-' (try \"transport\")",
            ),
            (MINIMAL.replace("http://", ""), "site.toml:3:12: base_url"),
            (
                format!("feed_limit = 20\nmax_limit = 10\n{MINIMAL}"),
                "site.toml:2:13: max_limit must be at least feed_limit (20)",
            ),
            (
                format!("{MINIMAL}feed_limt = 3\n"),
                "unknown field `feed_limt`",
            ),
            (
                format!("{MINIMAL}\n[[sections]]\nslug = \"transport\"\ntitle = \"x\"\n"),
                "used twice",
            ),
            ("title = \"unterminated\n".to_owned(), "site.toml:1:"),
            (
                format!("max_entry_bytes = 0\n{MINIMAL}"),
                "site.toml:1:19: max_entry_bytes must be from 1 to 67108864 (64 MiB)",
            ),
            (
                format!("max_entry_bytes = 67108865\n{MINIMAL}"),
                "max_entry_bytes must be from 1 to 67108864",
            ),
            (
                format!("max_entry_bytes = -5\n{MINIMAL}"),
                "max_entry_bytes must be from 1",
            ),
        ];
        for (text, expected) in cases {
            let got = parse(&text).unwrap_err();
            assert!(got.contains(expected), "expected {expected:?} in {got:?}");
        }
    }
}
