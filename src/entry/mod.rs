//! One entry file: TOML front matter between `+++` lines, then a Markdown body.
//!
//! [`parse`] is pure: bytes in, an [`Entry`] and diagnostics out. Reading the
//! directory is [`load`]'s job.

pub mod date;
pub mod html;
pub mod load;

use std::path::Path;

use chrono::{DateTime, FixedOffset};
use chrono_tz::Tz;
use serde::Deserialize;
use url::Url;

use crate::config::Config;
use crate::diagnostic::Diagnostic;
use crate::text::{squash_whitespace, xml_safe};

pub use load::{Loaded, Loader};

/// A published entry, validated and rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Unique id: the `id` key, or the file name without `.md`.
    pub id: String,
    /// Path relative to `DATA/entries`, with `/` separators.
    pub path: String,
    /// Plain-text title.
    pub title: String,
    /// Publication time with the offset it was resolved in.
    pub published: DateTime<FixedOffset>,
    /// Last update, if the entry says so.
    pub updated: Option<DateTime<FixedOffset>>,
    /// Known section slugs, in the order the entry lists them, without repeats.
    pub sections: Vec<String>,
    /// The `summary` key, cleaned; `None` when absent or blank, and then
    /// [`Entry::summary`] is the body's first paragraph.
    pub summary_key: Option<String>,
    /// The body, rendered to sanitized HTML (followed by the source line) on first use.
    pub body: html::LazyHtml,
    /// Canonical URL of the article.
    pub link: Url,
    /// Author names; empty means the site's default author.
    pub authors: Vec<String>,
    /// Where the article came from.
    pub source: Option<Source>,
    /// Attached files (`[[enclosures]]`), in the order the entry lists them.
    pub enclosures: Vec<Media>,
    /// The entry's picture (`image`); boxed, since few entries have one and
    /// an `Image` is 160 bytes (100,000 entries, 15 MB).
    pub image: Option<Box<Image>>,
    /// Yandex News genre (`genre`); `message` unless the entry says otherwise.
    pub genre: Genre,
}

impl Entry {
    /// Plain-text summary: the `summary` key, or else the body's first
    /// paragraph (possibly empty).
    pub fn summary(&self) -> std::borrow::Cow<'_, str> {
        match &self.summary_key {
            Some(key) => std::borrow::Cow::Borrowed(key),
            None => self.body.first_paragraph(),
        }
    }

    /// Sanitized HTML of the body followed by the source line, if any.
    /// Cached on first use, except inside [`html::uncached`].
    pub fn content_html(&self) -> std::borrow::Cow<'_, str> {
        self.body.get()
    }

    /// The newest of `updated` and `published`.
    pub fn modified(&self) -> DateTime<FixedOffset> {
        self.updated
            .map_or(self.published, |u| u.max(self.published))
    }

    /// The `tag:` URI (RFC 4151) that identifies this entry in every feed.
    ///
    /// It is built from the site's host, the local publication date and the id,
    /// so it survives moving the file and editing its text.
    pub fn tag_uri(&self, config: &Config) -> String {
        format!(
            "tag:{},{}:{}",
            config.tag_authority(),
            self.published.format("%Y-%m-%d"),
            url_segment(&self.id)
        )
    }
}

/// Attribution of a reprinted article.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The source's name, e.g. «Информационное агентство URA.RU».
    pub name: String,
    /// The article or site it came from.
    pub url: Option<Url>,
    /// The source's own RSS or Atom feed.
    pub feed: Option<Url>,
}

/// A file attached to an entry: an enclosure, or the entry's image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// Absolute http(s) URL.
    pub url: Url,
    /// Media type, e.g. `image/jpeg`.
    pub mime_type: String,
    /// Size in bytes: measured by the loader for a file under `DATA/media/`;
    /// the `length` key (or 0, "unknown", as RSS Best Practices allow) for a
    /// remote URL.
    pub length: u64,
    /// For a file under `DATA/media/`: its path relative to that folder.
    pub local: Option<String>,
}

/// The entry's picture, with its size in pixels when the entry gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// The file.
    pub media: Media,
    /// Width in pixels.
    pub width: Option<u32>,
    /// Height in pixels.
    pub height: Option<u32>,
}

/// A Yandex News genre (`yandex:genre`). The values are those of the Yandex
/// News feed format's technical requirements (`partner.news.yandex.ru/tech.pdf`):
/// `lenta`, `message`, `article`, `interview`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Genre {
    /// Short news-wire items.
    Lenta,
    /// A news message; the default.
    #[default]
    Message,
    /// An article.
    Article,
    /// An interview.
    Interview,
}

impl Genre {
    /// Every genre, in the order messages list them.
    pub const ALL: [Genre; 4] = [
        Genre::Lenta,
        Genre::Message,
        Genre::Article,
        Genre::Interview,
    ];

    /// The value written in `yandex:genre` and accepted in front matter.
    pub fn as_str(self) -> &'static str {
        match self {
            Genre::Lenta => "lenta",
            Genre::Message => "message",
            Genre::Article => "article",
            Genre::Interview => "interview",
        }
    }
}

/// A file under `DATA/media/` that an entry names, and where it names it:
/// the loader measures the file and reports a missing one at that position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMedia {
    /// Path relative to `DATA/media/`.
    pub rel: String,
    /// 1-based line of the `url` in the entry file.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

/// What parsing needs besides the file: the site configuration and a sanitizer.
pub struct Context<'a> {
    /// The validated site configuration.
    pub config: &'a Config,
    /// The HTML sanitizer bound to `base_url`.
    pub sanitizer: &'a html::Sanitizer,
}

/// The result of parsing one file.
#[derive(Debug, Default)]
pub struct Parsed {
    /// The entry, unless the file is broken or a draft.
    pub entry: Option<Entry>,
    /// Every problem found, including ones that did not stop publication.
    pub diagnostics: Vec<Diagnostic>,
    /// The files under `DATA/media/` the entry names, for the loader to measure.
    pub local_media: Vec<LocalMedia>,
}

#[derive(Debug, Deserialize)]
struct FrontMatter {
    title: Option<toml::Spanned<String>>,
    date: Option<toml::Spanned<date::RawDate>>,
    updated: Option<toml::Spanned<date::RawDate>>,
    timezone: Option<toml::Spanned<String>>,
    sections: Option<toml::Spanned<Vec<toml::Spanned<String>>>>,
    id: Option<toml::Spanned<String>>,
    summary: Option<String>,
    link: Option<toml::Spanned<String>>,
    #[serde(default)]
    authors: Vec<String>,
    source: Option<toml::Spanned<RawSource>>,
    #[serde(default)]
    draft: bool,
    #[serde(default)]
    enclosures: Vec<toml::Spanned<RawEnclosure>>,
    image: Option<toml::Spanned<RawImage>>,
    genre: Option<toml::Spanned<String>>,
    /// Free-form data for other tools, as in Zola; Vestnik ignores it.
    #[serde(default, rename = "extra")]
    _extra: Option<toml::Table>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    name: Option<String>,
    url: Option<toml::Spanned<String>>,
    feed: Option<toml::Spanned<String>>,
}

/// One `[[enclosures]]` table. Unknown keys are errors, as in `[source]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnclosure {
    url: toml::Spanned<String>,
    #[serde(rename = "type")]
    mime_type: Option<toml::Spanned<String>>,
    length: Option<toml::Spanned<i64>>,
}

/// `image = "photo.jpg"`, or a table with `url` and optional `type`,
/// `width` and `height`.
#[derive(Debug)]
enum RawImage {
    Url(String),
    Table(RawImageTable),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImageTable {
    url: toml::Spanned<String>,
    #[serde(rename = "type")]
    mime_type: Option<toml::Spanned<String>>,
    width: Option<toml::Spanned<i64>>,
    height: Option<toml::Spanned<i64>>,
}

impl<'de> Deserialize<'de> for RawImage {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RawImage;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "a URL or a path under DATA/media/, or a table with url, width and height",
                )
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawImage, E> {
                Ok(RawImage::Url(v.to_owned()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<RawImage, A::Error> {
                RawImageTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(RawImage::Table)
            }
        }
        d.deserialize_any(Visitor)
    }
}

const KNOWN_KEYS: &str = "title, date, updated, timezone, sections, id, summary, link, authors, source, draft, enclosures, image, genre, extra";

/// The front matter and body of a file, split at the `+++` lines.
struct Split<'a> {
    front: &'a str,
    /// 1-based line of the file where `front` starts.
    front_line: usize,
    body: &'a str,
}

/// Parses one entry file. `path` is what diagnostics show; `rel` is its path
/// relative to `DATA/entries`, whose file stem is the default id.
pub fn parse(ctx: &Context<'_>, path: &Path, rel: &str, bytes: &[u8]) -> Parsed {
    let mut out = Parsed::default();
    match parse_inner(
        ctx,
        path,
        rel,
        bytes,
        &mut out.diagnostics,
        &mut out.local_media,
    ) {
        Ok(entry) => out.entry = entry,
        Err(d) => out.diagnostics.push(d),
    }
    out
}

fn parse_inner(
    ctx: &Context<'_>,
    path: &Path,
    rel: &str,
    bytes: &[u8],
    problems: &mut Vec<Diagnostic>,
    local_media: &mut Vec<LocalMedia>,
) -> Result<Option<Entry>, Diagnostic> {
    let decoded = decode(path, bytes)?;
    // Characters XML forbids (a pasted U+0008, say) would make TOML reject the
    // file and strict aggregators reject the feed; the contract removes them.
    let text = xml_safe(&decoded);
    let split = split(path, &text)?;
    let fm_text = split.front;
    let at = |offset: usize, msg: String| {
        Diagnostic::at_offset(path, fm_text, offset, split.front_line, msg)
    };

    let mut unknown = Vec::new();
    let fm: FrontMatter = toml::de::Deserializer::parse(fm_text)
        .and_then(|de| serde_ignored::deserialize(de, |p| unknown.push(p.to_string())))
        .map_err(|e| {
            at(
                e.span().map_or(0, |s| s.start),
                format!("front matter: {}", crate::config::toml_message(&e)),
            )
        })?;
    for key in unknown {
        let top = key.split('.').next().unwrap_or(&key);
        let offset = key_offset(fm_text, top).unwrap_or(0);
        problems.push(at(
            offset,
            format!("unknown front matter key `{key}` is ignored (known: {KNOWN_KEYS}); put custom data under [extra]"),
        ));
    }
    if fm.draft {
        return Ok(None);
    }

    let missing: Vec<&str> = [
        ("title", fm.title.is_none()),
        ("date", fm.date.is_none()),
        ("sections", fm.sections.is_none()),
    ]
    .iter()
    .filter(|(_, m)| *m)
    .map(|(k, _)| *k)
    .collect();
    if !missing.is_empty() {
        return Err(Diagnostic::at(
            path,
            split.front_line,
            1,
            format!(
                "missing {} in front matter; every entry needs title, date and sections",
                missing.join(", ")
            ),
        ));
    }
    let (Some(title), Some(raw_date), Some(raw_sections)) = (fm.title, fm.date, fm.sections) else {
        unreachable!("checked just above")
    };

    let title_text = squash_whitespace(&xml_safe(title.get_ref()));
    if title_text.is_empty() {
        return Err(at(title.span().start, "title is empty".into()));
    }

    let zone: Tz = match &fm.timezone {
        None => ctx.config.timezone,
        Some(z) => z.get_ref().parse().map_err(|_| {
            at(
                z.span().start,
                format!(
                    "unknown time zone \"{}\"; use an IANA name such as \"Asia/Vladivostok\"",
                    z.get_ref()
                ),
            )
        })?,
    };
    let published = date::resolve(raw_date.get_ref(), zone)
        .map_err(|m| at(raw_date.span().start, format!("date: {m}")))?;
    let updated = match &fm.updated {
        None => None,
        Some(u) => Some(
            date::resolve(u.get_ref(), zone)
                .map_err(|m| at(u.span().start, format!("updated: {m}")))?,
        ),
    };

    if raw_sections.get_ref().is_empty() {
        return Err(at(
            raw_sections.span().start,
            "sections is empty; name at least one section slug from site.toml".into(),
        ));
    }
    let mut sections: Vec<String> = Vec::new();
    for s in raw_sections.get_ref() {
        let slug = s.get_ref();
        if ctx.config.section(slug).is_some() {
            if !sections.contains(slug) {
                sections.push(slug.clone());
            }
        } else {
            problems.push(at(
                s.span().start,
                format!(
                    "unknown section \"{slug}\" (known: {}); the entry is still published in its other sections and the combined feed",
                    known_sections(ctx.config)
                ),
            ));
        }
    }

    let id = match &fm.id {
        Some(id) => {
            let v = id.get_ref().trim();
            if v.is_empty()
                || v == "."
                || v == ".."
                || v.contains(['/', '\\'])
                || v.chars().any(char::is_control)
            {
                return Err(at(
                    id.span().start,
                    "id must be non-empty, not . or .., without slashes or control characters"
                        .into(),
                ));
            }
            v.to_owned()
        }
        None => default_id(rel),
    };

    let link = match &fm.link {
        None => ctx.config.url(&crate::model::news_path(&id)),
        Some(l) => ctx
            .config
            .base_url
            .join(l.get_ref().trim())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| {
                at(
                    l.span().start,
                    format!("link \"{}\" is not an http(s) URL", l.get_ref()),
                )
            })?,
    };

    let source = match fm.source {
        None => None,
        Some(s) => {
            let span = s.span();
            let raw = s.into_inner();
            let name = raw
                .name
                .as_deref()
                .map(|n| squash_whitespace(&xml_safe(n)))
                .filter(|n| !n.is_empty())
                .ok_or_else(|| at(span.start, "[source] needs a non-empty name".into()))?;
            let parse_url =
                |u: &Option<toml::Spanned<String>>, key: &str| -> Result<Option<Url>, Diagnostic> {
                    u.as_ref()
                        .map(|u| {
                            Url::parse(u.get_ref().trim())
                                .ok()
                                .filter(|p| matches!(p.scheme(), "http" | "https"))
                                .ok_or_else(|| {
                                    at(
                                        u.span().start,
                                        format!(
                                            "source {key} \"{}\" must be an absolute http(s) URL",
                                            u.get_ref()
                                        ),
                                    )
                                })
                        })
                        .transpose()
                };
            Some(Source {
                url: parse_url(&raw.url, "url")?,
                feed: parse_url(&raw.feed, "feed")?,
                name,
            })
        }
    };

    // A bad enclosure or image is reported and left out; the entry is
    // still published, like an entry with an unknown section.
    let mut media_ctx = MediaContext {
        config: ctx.config,
        path,
        fm_text,
        front_line: split.front_line,
        problems,
        local_media,
    };
    let enclosures = fm
        .enclosures
        .iter()
        .filter_map(|e| {
            let raw = e.get_ref();
            media_ctx.media(
                "enclosure",
                &raw.url,
                raw.mime_type.as_ref(),
                raw.length.as_ref(),
            )
        })
        .collect();
    let image = fm.image.as_ref().and_then(|i| {
        let (url, mime_type, width, height) = match i.get_ref() {
            RawImage::Url(u) => (
                toml::Spanned::new(i.span(), u.clone()),
                None,
                None,
                None,
            ),
            RawImage::Table(t) => (
                t.url.clone(),
                t.mime_type.as_ref(),
                t.width.as_ref(),
                t.height.as_ref(),
            ),
        };
        let media = media_ctx.media("image", &url, mime_type, None)?;
        if !media.mime_type.starts_with("image/") {
            media_ctx.report(
                url.span().start,
                format!(
                    "image \"{}\" has type {}, not an image type; the entry is published without its image",
                    url.get_ref(),
                    media.mime_type
                ),
            );
            media_ctx.local_media.retain(|m| Some(&m.rel) != media.local.as_ref());
            return None;
        }
        Some(Box::new(Image {
            width: media_ctx.pixels("width", width),
            height: media_ctx.pixels("height", height),
            media,
        }))
    });
    let genre = match &fm.genre {
        None => Genre::default(),
        Some(g) => {
            let value = g.get_ref().trim();
            Genre::ALL
                .into_iter()
                .find(|k| k.as_str() == value)
                .unwrap_or_else(|| {
                    let known: Vec<&str> = Genre::ALL.iter().map(|k| k.as_str()).collect();
                    problems.push(at(
                        g.span().start,
                        format!(
                            "unknown genre \"{value}\" (known: {}); using message",
                            known.join(", ")
                        ),
                    ));
                    Genre::default()
                })
        }
    };

    let summary_key = fm
        .summary
        .map(|s| squash_whitespace(&xml_safe(&s)))
        .filter(|s| !s.is_empty());
    let attribution = source
        .as_ref()
        .map(|s| source_line(ctx.config, s))
        .unwrap_or_default();
    let body = html::LazyHtml::new(split.body.to_owned(), attribution, ctx.sanitizer.clone());
    let authors = fm
        .authors
        .iter()
        .map(|a| squash_whitespace(&xml_safe(a)))
        .filter(|a| !a.is_empty())
        .collect();

    Ok(Some(Entry {
        id,
        path: rel.to_owned(),
        title: title_text,
        published,
        updated,
        sections,
        summary_key,
        body,
        link,
        authors,
        source,
        enclosures,
        image,
        genre,
    }))
}

/// Validates enclosures and images against the configuration, reporting
/// problems at their position in the front matter.
struct MediaContext<'a, 'p> {
    config: &'a Config,
    path: &'a Path,
    fm_text: &'a str,
    front_line: usize,
    problems: &'p mut Vec<Diagnostic>,
    local_media: &'p mut Vec<LocalMedia>,
}

impl MediaContext<'_, '_> {
    fn report(&mut self, offset: usize, message: String) {
        self.problems.push(Diagnostic::at_offset(
            self.path,
            self.fm_text,
            offset,
            self.front_line,
            message,
        ));
    }

    /// One file: an absolute http(s) URL, or a path relative to
    /// `DATA/media/`; its type from `type` or the file extension; its length
    /// from `length` (remote) or, later, the loader (local). `None` after
    /// reporting why, when it cannot be used.
    fn media(
        &mut self,
        what: &str,
        url: &toml::Spanned<String>,
        mime_type: Option<&toml::Spanned<String>>,
        length: Option<&toml::Spanned<i64>>,
    ) -> Option<Media> {
        let raw = url.get_ref().trim();
        let dropped = format!("the entry is published without this {what}");
        let (absolute, local) = match Url::parse(raw) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => (u, None),
            Ok(_) => {
                self.report(
                    url.span().start,
                    format!(
                        "{what} url \"{raw}\" must be an http(s) URL or a path relative to DATA/media/; {dropped}"
                    ),
                );
                return None;
            }
            Err(_) => {
                if let Err(why) = crate::media::check_path(raw) {
                    self.report(
                        url.span().start,
                        format!("{what} path \"{raw}\": {why}; {dropped}"),
                    );
                    return None;
                }
                (
                    self.config.url(&crate::media::url_path(raw)),
                    Some(raw.to_owned()),
                )
            }
        };
        let mime_type = match mime_type {
            Some(t) => match t.get_ref().trim().parse::<mime_guess::Mime>() {
                Ok(m) if m.params().next().is_none() => m.essence_str().to_owned(),
                _ => {
                    self.report(
                        t.span().start,
                        format!(
                            "{what} type \"{}\" is not a media type such as \"image/jpeg\"; {dropped}",
                            t.get_ref()
                        ),
                    );
                    return None;
                }
            },
            None => {
                let name = local.as_deref().unwrap_or(absolute.path());
                match crate::media::media_type(name) {
                    Some(t) => t.to_owned(),
                    None => {
                        self.report(
                            url.span().start,
                            format!(
                                "cannot tell the type of {what} \"{raw}\" from its name; add type = \"…\" (e.g. \"image/jpeg\"); {dropped}"
                            ),
                        );
                        return None;
                    }
                }
            }
        };
        let length = match (length, &local) {
            (None, _) => 0,
            (Some(l), Some(_)) => {
                self.report(
                    l.span().start,
                    "length is ignored for a file under DATA/media/: its real size is used; remove it"
                        .to_owned(),
                );
                0
            }
            (Some(l), None) => match u64::try_from(*l.get_ref()) {
                Ok(n) => n,
                Err(_) => {
                    self.report(
                        l.span().start,
                        format!("{what} length must be 0 or more bytes; using 0 (unknown)"),
                    );
                    0
                }
            },
        };
        if let Some(rel) = &local {
            let (line, column) = crate::diagnostic::line_column(self.fm_text, url.span().start);
            self.local_media.push(LocalMedia {
                rel: rel.clone(),
                line: self.front_line + line - 1,
                column,
            });
        }
        Some(Media {
            url: absolute,
            mime_type,
            length,
            local,
        })
    }

    /// A width or height: a whole number of pixels from 1.
    fn pixels(&mut self, key: &str, value: Option<&toml::Spanned<i64>>) -> Option<u32> {
        let v = value?;
        match u32::try_from(*v.get_ref()).ok().filter(|&n| n > 0) {
            Some(n) => Some(n),
            None => {
                self.report(
                    v.span().start,
                    format!("image {key} must be a whole number of pixels from 1; ignored"),
                );
                None
            }
        }
    }
}

/// The visible attribution line appended to every entry's HTML.
fn source_line(config: &Config, source: &Source) -> String {
    let label = if config.language.starts_with("ru") {
        "Источник"
    } else {
        "Source"
    };
    let name = html::escape(&source.name);
    match &source.url {
        Some(url) => format!(
            "\n<p class=\"source\">{label}: <a href=\"{}\" rel=\"noopener noreferrer\">{name}</a></p>\n",
            html::escape(url.as_str())
        ),
        None => format!("\n<p class=\"source\">{label}: {name}</p>\n"),
    }
}

fn known_sections(config: &Config) -> String {
    config
        .sections
        .iter()
        .map(|s| s.slug.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The default id: the file name without its `.md` extension.
pub fn default_id(rel: &str) -> String {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    name.strip_suffix(".md").unwrap_or(name).to_owned()
}

/// Percent-encodes an id for use as one URL path segment.
pub fn url_segment(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes())
        .collect::<String>()
        // form encoding writes spaces as '+', which a path would keep literally.
        .replace('+', "%20")
}

/// Decodes UTF-8, dropping a byte-order mark; names the first bad byte's position.
fn decode<'a>(path: &Path, bytes: &'a [u8]) -> Result<std::borrow::Cow<'a, str>, Diagnostic> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
        return Err(Diagnostic::file(path, "file is UTF-16; save it as UTF-8"));
    }
    // simdutf8 validates Cyrillic text several times faster than std (one
    // pass over every byte of the archive at startup); its `compat` flavour
    // reports where the first bad byte is, like std.
    match simdutf8::compat::from_utf8(bytes) {
        Ok(s) => Ok(std::borrow::Cow::Borrowed(s)),
        Err(e) => {
            let good = &bytes[..e.valid_up_to()];
            // The prefix is valid UTF-8 by construction.
            let good = std::str::from_utf8(good).unwrap_or_default();
            let (line, column) = crate::diagnostic::line_column(good, good.len());
            Err(Diagnostic::at(
                path,
                line,
                column,
                format!(
                    "invalid UTF-8 (byte 0x{:02X}); save the file as UTF-8",
                    bytes[e.valid_up_to()]
                ),
            ))
        }
    }
}

fn split<'a>(path: &Path, text: &'a str) -> Result<Split<'a>, Diagnostic> {
    if text.trim().is_empty() {
        return Err(Diagnostic::file(
            path,
            "empty file; an entry starts with a `+++` line, TOML front matter, and another `+++` line",
        ));
    }
    let mut lines = text.split_inclusive('\n');
    let first = lines.next().unwrap_or_default();
    if first.trim_end() != "+++" {
        return Err(Diagnostic::file(
            path,
            "no front matter; the first line must be `+++`, followed by TOML keys and a closing `+++` line",
        ));
    }
    let front_start = first.len();
    let mut offset = front_start;
    for line in lines {
        if line.trim_end() == "+++" {
            return Ok(Split {
                front: &text[front_start..offset],
                front_line: 2,
                body: &text[offset + line.len()..],
            });
        }
        offset += line.len();
    }
    Err(Diagnostic::file(
        path,
        "front matter opened with `+++` on line 1 is never closed; add a `+++` line after the keys",
    ))
}

/// Byte offset of a top-level `key =` or `[key]` line in front matter, for messages.
fn key_offset(text: &str, key: &str) -> Option<usize> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        let indent = line.len() - t.len();
        let is_key = t
            .strip_prefix(key)
            .is_some_and(|rest| rest.trim_start().starts_with('='));
        let is_table = t
            .strip_prefix('[')
            .map(|r| r.trim_start_matches('['))
            .and_then(|r| r.strip_prefix(key))
            .is_some_and(|r| r.starts_with([']', '.']));
        if is_key || is_table {
            return Some(offset + indent);
        }
        offset += line.len();
    }
    None
}

#[cfg(test)]
mod tests;
