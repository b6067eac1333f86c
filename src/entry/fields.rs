//! The front matter, one field at a time: each validator checks one field and
//! reports its problems into the shared [`Fields`] instead of returning at the
//! first one, so `vestnik check` shows every problem of a file in one run.
//!
//! A field the entry cannot do without (an impossible date, an empty title, a
//! bad link) comes back as [`Bad`]; the entry is skipped only after every
//! field was checked. Problems that lose nothing essential (an unknown
//! section, a bad enclosure, an unknown key) are reported and the entry is
//! published without the bad part.

use std::path::Path;

use chrono::{DateTime, FixedOffset};
use chrono_tz::Tz;
use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use url::Url;

use super::{Context, Entry, Genre, Image, LocalMedia, Media, Source, date, default_id, html};
use crate::diagnostic::Diagnostic;
use crate::text::{squash_whitespace, xml_safe};
use crate::urls::{NotHttpUrl, http_url};

/// Every top-level key of the front matter, in the order messages list them.
const KNOWN_KEYS: [&str; 17] = [
    "title",
    "date",
    "updated",
    "publish_at",
    "expires",
    "timezone",
    "sections",
    "id",
    "summary",
    "link",
    "authors",
    "source",
    "draft",
    "enclosures",
    "image",
    "genre",
    "extra",
];

/// The fields every entry needs.
const REQUIRED_KEYS: [&str; 3] = ["title", "date", "sections"];

/// A field the entry cannot be published with. Its problem is already reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Bad;

/// The front matter with every value of the right shape (TOML types).
/// A value of the wrong shape is reported and left `None` (or empty).
#[derive(Debug, Default)]
struct FrontMatter {
    title: Option<Spanned<String>>,
    date: Option<Spanned<date::RawDate>>,
    updated: Option<Spanned<date::RawDate>>,
    publish_at: Option<Spanned<date::RawDate>>,
    expires: Option<Spanned<date::RawDate>>,
    timezone: Option<Spanned<String>>,
    sections: Option<Spanned<Vec<Spanned<String>>>>,
    id: Option<Spanned<String>>,
    summary: Option<String>,
    link: Option<Spanned<String>>,
    authors: Vec<String>,
    source: Option<Spanned<RawSource>>,
    draft: bool,
    enclosures: Vec<Spanned<RawEnclosure>>,
    image: Option<Spanned<RawImage>>,
    genre: Option<Spanned<String>>,
    /// Required keys that are absent.
    missing: Vec<&'static str>,
    /// Some value had the wrong shape: the entry cannot be published.
    misshapen: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    name: Option<String>,
    url: Option<Spanned<String>>,
    feed: Option<Spanned<String>>,
}

/// One `[[enclosures]]` table. Unknown keys are errors, as in `[source]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnclosure {
    url: Spanned<String>,
    #[serde(rename = "type")]
    mime_type: Option<Spanned<String>>,
    length: Option<Spanned<i64>>,
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
    url: Spanned<String>,
    #[serde(rename = "type")]
    mime_type: Option<Spanned<String>>,
    width: Option<Spanned<i64>>,
    height: Option<Spanned<i64>>,
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

/// What every field validator shares: the site, where the front matter is,
/// and the problems found so far.
pub(super) struct Fields<'a> {
    ctx: &'a Context<'a>,
    /// The file, as diagnostics show it.
    path: &'a Path,
    /// The front matter; TOML spans are byte offsets into it.
    text: &'a str,
    /// The line of the file where `text` starts.
    first_line: usize,
    /// Every problem found, in the order found.
    pub(super) diagnostics: Vec<Diagnostic>,
    /// The files under `DATA/media/` the entry names, for the loader to measure.
    pub(super) local_media: Vec<LocalMedia>,
}

impl<'a> Fields<'a> {
    /// A context for the front matter `text`, which starts at line `first_line` of `path`.
    pub(super) fn new(
        ctx: &'a Context<'a>,
        path: &'a Path,
        text: &'a str,
        first_line: usize,
    ) -> Self {
        Fields {
            ctx,
            path,
            text,
            first_line,
            diagnostics: Vec::new(),
            local_media: Vec::new(),
        }
    }

    fn report(&mut self, offset: usize, message: String) {
        self.diagnostics.push(Diagnostic::at_offset(
            self.path,
            self.text,
            offset,
            self.first_line,
            message,
        ));
    }

    /// A TOML error at its own span, else at `span` (the value being read).
    fn toml_error(&mut self, e: &toml::de::Error, span: std::ops::Range<usize>) {
        self.report(
            e.span().unwrap_or(span).start,
            format!("front matter: {}", crate::config::toml_message(e)),
        );
    }

    /// Checks every field, then builds the entry unless a field it needs is
    /// bad or the file is a draft. `rel` gives the default id; `body` is the
    /// Markdown after the front matter.
    pub(super) fn entry(&mut self, rel: &str, body: &str) -> Option<Entry> {
        let fm = self.front_matter()?;
        // A draft is work in progress: only the shape of its values is
        // checked, unless an editor previews it.
        if fm.draft && !self.ctx.config.preview {
            return None;
        }
        self.missing(&fm.missing);
        let title = required(&fm.title).and_then(|t| self.title(t));
        let zone = self.timezone(fm.timezone.as_ref());
        // Every date form names the same calendar day in any zone (a DST gap
        // moves the time, it never makes a date impossible), so the dates are
        // still checked when the zone is bad.
        let in_zone = zone.unwrap_or(self.ctx.config.timezone);
        let published = required(&fm.date).and_then(|d| self.date("date", d, in_zone));
        let updated = fm
            .updated
            .as_ref()
            .map(|u| self.date("updated", u, in_zone))
            .transpose();
        let publish_at = fm
            .publish_at
            .as_ref()
            .map(|u| self.date("publish_at", u, in_zone))
            .transpose();
        let expires = fm
            .expires
            .as_ref()
            .map(|u| self.date("expires", u, in_zone))
            .transpose();
        let expires = match (&expires, &publish_at, &published, &fm.expires) {
            (Ok(Some(end)), Ok(start), Ok(date), Some(raw)) if *end <= start.unwrap_or(*date) => {
                self.report(
                    raw.span().start,
                    "expires: the entry would expire before it is published; give a later time"
                        .to_owned(),
                );
                Err(Bad)
            }
            _ => expires,
        };
        let sections = required(&fm.sections).and_then(|s| self.sections(s));
        let id = self.id(fm.id.as_ref(), rel);
        let link = self.link(fm.link.as_ref());
        let source = fm.source.as_ref().map(|s| self.source(s)).transpose();
        let enclosures = self.enclosures(&fm.enclosures);
        let image = fm.image.as_ref().and_then(|i| self.image(i));
        let genre = self.genre(fm.genre.as_ref());

        // Every field is checked: only now does a bad one stop the entry.
        if fm.misshapen {
            return None;
        }
        zone.ok()?;
        let source = source.ok()?;
        Some(Entry {
            id: id.ok()?,
            path: rel.to_owned(),
            title: title.ok()?,
            published: published.ok()?,
            updated: updated.ok()?,
            draft: fm.draft,
            publish_at: publish_at.ok()?,
            expires: expires.ok()?,
            sections: sections.ok()?,
            summary_key: summary(fm.summary.as_deref()),
            body: html::LazyHtml::stored(body, self.ctx.sanitizer.clone(), self.ctx.spool),
            canonical: link.ok()?,
            authors: authors(&fm.authors),
            source,
            enclosures,
            image,
            genre,
        })
    }

    /// Parses the TOML and takes every known key in the shape it must have,
    /// reporting values of the wrong shape and unknown keys. `None` when the
    /// TOML itself is broken: nothing past the first syntax error is reliable.
    fn front_matter(&mut self) -> Option<FrontMatter> {
        let mut table = match DeTable::parse(self.text) {
            Ok(t) => t.into_inner(),
            Err(e) => {
                self.toml_error(&e, 0..0);
                return None;
            }
        };
        // A required key with a value of the wrong shape is reported as
        // such, not also as missing.
        let missing = REQUIRED_KEYS
            .into_iter()
            .filter(|key| !table.contains_key(*key))
            .collect();
        let mut bad = false;
        let mut fm = FrontMatter {
            title: self.take(&mut table, "title", &mut bad),
            date: self.take(&mut table, "date", &mut bad),
            updated: self.take(&mut table, "updated", &mut bad),
            publish_at: self.take(&mut table, "publish_at", &mut bad),
            expires: self.take(&mut table, "expires", &mut bad),
            timezone: self.take(&mut table, "timezone", &mut bad),
            sections: self.take(&mut table, "sections", &mut bad),
            id: self.take(&mut table, "id", &mut bad),
            summary: self.take(&mut table, "summary", &mut bad),
            link: self.take(&mut table, "link", &mut bad),
            authors: self
                .take(&mut table, "authors", &mut bad)
                .unwrap_or_default(),
            source: self.take(&mut table, "source", &mut bad),
            draft: self.take(&mut table, "draft", &mut bad).unwrap_or(false),
            enclosures: self.take_each(&mut table, "enclosures", &mut bad),
            image: self.take(&mut table, "image", &mut bad),
            genre: self.take(&mut table, "genre", &mut bad),
            missing,
            misshapen: false,
        };
        // Free-form data for other tools, as in Zola; only its shape matters.
        let _: Option<toml::Table> = self.take(&mut table, "extra", &mut bad);
        for (key, _) in table {
            let offset = key_offset(self.text, key.get_ref()).unwrap_or(key.span().start);
            self.report(
                offset,
                format!(
                    "unknown front matter key `{}` is ignored (known: {}); put custom data under [extra]",
                    key.get_ref(),
                    KNOWN_KEYS.join(", ")
                ),
            );
        }
        fm.misshapen = bad;
        Some(fm)
    }

    /// Removes `key` from `table` and reads it as a `T`; a value of another
    /// shape is reported (and sets `bad`).
    fn take<T: Deserialize<'a>>(
        &mut self,
        table: &mut DeTable<'a>,
        key: &str,
        bad: &mut bool,
    ) -> Option<T> {
        let value = table.remove(key)?;
        self.read(value, bad)
    }

    /// Like [`Fields::take`] for an array, reading each item on its own so
    /// that every misshapen item is reported, not only the first.
    fn take_each<T: Deserialize<'a>>(
        &mut self,
        table: &mut DeTable<'a>,
        key: &str,
        bad: &mut bool,
    ) -> Vec<T> {
        let Some(value) = table.remove(key) else {
            return Vec::new();
        };
        let span = value.span();
        match value.into_inner() {
            DeValue::Array(items) => items
                .into_iter()
                .filter_map(|item| self.read(item, bad))
                .collect(),
            other => self
                .read::<Vec<T>>(Spanned::new(span, other), bad)
                .unwrap_or_default(),
        }
    }

    /// Reads one value as a `T`. An error without a span of its own (an
    /// untagged enum such as a date matching no form) is placed at the value,
    /// as TOML does when it reads a whole document.
    fn read<T: Deserialize<'a>>(
        &mut self,
        value: Spanned<DeValue<'a>>,
        bad: &mut bool,
    ) -> Option<T> {
        let span = value.span();
        match T::deserialize(ValueDeserializer::from(value)) {
            Ok(v) => Some(v),
            Err(e) => {
                self.toml_error(&e, span);
                *bad = true;
                None
            }
        }
    }

    /// Reports the required keys that are absent, in one message.
    fn missing(&mut self, missing: &[&str]) {
        if !missing.is_empty() {
            self.diagnostics.push(Diagnostic::at(
                self.path,
                self.first_line,
                1,
                format!(
                    "missing {} in front matter; every entry needs title, date and sections",
                    missing.join(", ")
                ),
            ));
        }
    }

    /// `title`: plain text, not empty.
    fn title(&mut self, title: &Spanned<String>) -> Result<String, Bad> {
        let text = squash_whitespace(&xml_safe(title.get_ref()));
        if text.is_empty() {
            self.report(title.span().start, "title is empty".into());
            return Err(Bad);
        }
        Ok(text)
    }

    /// `timezone`: an IANA name; the site's zone when absent.
    fn timezone(&mut self, zone: Option<&Spanned<String>>) -> Result<Tz, Bad> {
        let Some(z) = zone else {
            return Ok(self.ctx.config.timezone);
        };
        z.get_ref().parse().map_err(|_| {
            self.report(
                z.span().start,
                format!(
                    "unknown time zone \"{}\"; use an IANA name such as \"Asia/Vladivostok\"",
                    z.get_ref()
                ),
            );
            Bad
        })
    }

    /// `date` or `updated` (`key`), resolved in `zone`.
    fn date(
        &mut self,
        key: &str,
        raw: &Spanned<date::RawDate>,
        zone: Tz,
    ) -> Result<DateTime<FixedOffset>, Bad> {
        date::resolve(raw.get_ref(), zone).map_err(|m| {
            self.report(raw.span().start, format!("{key}: {m}"));
            Bad
        })
    }

    /// `sections`: at least one slug. Unknown slugs are reported and left
    /// out (the entry stays in its known sections and the combined feed);
    /// repeats are dropped.
    fn sections(&mut self, raw: &Spanned<Vec<Spanned<String>>>) -> Result<Vec<String>, Bad> {
        if raw.get_ref().is_empty() {
            self.report(
                raw.span().start,
                "sections is empty; name at least one section slug from site.toml".into(),
            );
            return Err(Bad);
        }
        let mut sections: Vec<String> = Vec::new();
        for s in raw.get_ref() {
            let slug = s.get_ref();
            if self.ctx.config.section(slug).is_some() {
                if !sections.contains(slug) {
                    sections.push(slug.clone());
                }
            } else {
                let known: Vec<&str> = self
                    .ctx
                    .config
                    .sections
                    .iter()
                    .map(|s| s.slug.as_str())
                    .collect();
                self.report(
                    s.span().start,
                    format!(
                        "unknown section \"{slug}\" (known: {}); the entry is still published in its other sections and the combined feed",
                        known.join(", ")
                    ),
                );
            }
        }
        Ok(sections)
    }

    /// `id`: one safe path segment; the file name without `.md` when absent.
    fn id(&mut self, id: Option<&Spanned<String>>, rel: &str) -> Result<String, Bad> {
        let Some(id) = id else {
            return Ok(default_id(rel));
        };
        let v = id.get_ref().trim();
        if v.is_empty()
            || v == "."
            || v == ".."
            || v.contains(['/', '\\'])
            || v.chars().any(char::is_control)
        {
            self.report(
                id.span().start,
                "id must be non-empty, not . or .., without slashes or control characters".into(),
            );
            return Err(Bad);
        }
        Ok(v.to_owned())
    }

    /// `link`: an http(s) URL, relative to `base_url` or absolute; the
    /// entry's page on this site when absent, which needs a good `id`.
    /// The `link` key, if there is one (else the entry's own page is its link).
    fn link(&mut self, link: Option<&Spanned<String>>) -> Result<Option<Url>, Bad> {
        let Some(l) = link else {
            return Ok(None);
        };
        http_url(l.get_ref(), Some(&self.ctx.config.base_url))
            .map(Some)
            .map_err(|_| {
                self.report(
                    l.span().start,
                    format!("link \"{}\" is not an http(s) URL", l.get_ref()),
                );
                Bad
            })
    }

    /// `[source]`: a name, and optional absolute `url` and `feed`.
    fn source(&mut self, source: &Spanned<RawSource>) -> Result<Source, Bad> {
        let raw = source.get_ref();
        let name = raw
            .name
            .as_deref()
            .map(|n| squash_whitespace(&xml_safe(n)))
            .filter(|n| !n.is_empty());
        if name.is_none() {
            self.report(
                source.span().start,
                "[source] needs a non-empty name".into(),
            );
        }
        let url = self.source_url("url", raw.url.as_ref());
        let feed = self.source_url("feed", raw.feed.as_ref());
        Ok(Source {
            name: name.ok_or(Bad)?,
            url: url?,
            feed: feed?,
        })
    }

    fn source_url(&mut self, key: &str, url: Option<&Spanned<String>>) -> Result<Option<Url>, Bad> {
        let Some(u) = url else {
            return Ok(None);
        };
        match http_url(u.get_ref(), None) {
            Ok(url) => Ok(Some(url)),
            Err(_) => {
                self.report(
                    u.span().start,
                    format!(
                        "source {key} \"{}\" must be an absolute http(s) URL",
                        u.get_ref()
                    ),
                );
                Err(Bad)
            }
        }
    }

    /// `[[enclosures]]`: each one checked; a bad one is reported and left out
    /// (the entry is still published, as with an unknown section).
    fn enclosures(&mut self, raw: &[Spanned<RawEnclosure>]) -> Vec<Media> {
        raw.iter()
            .filter_map(|e| {
                let e = e.get_ref();
                self.media("enclosure", &e.url, e.mime_type.as_ref(), e.length.as_ref())
            })
            .collect()
    }

    /// `image`: a file of an image type; a bad one is reported and left out.
    fn image(&mut self, image: &Spanned<RawImage>) -> Option<Box<Image>> {
        let (url, mime_type, width, height) = match image.get_ref() {
            RawImage::Url(u) => (Spanned::new(image.span(), u.clone()), None, None, None),
            RawImage::Table(t) => (
                t.url.clone(),
                t.mime_type.as_ref(),
                t.width.as_ref(),
                t.height.as_ref(),
            ),
        };
        let media = self.media("image", &url, mime_type, None)?;
        if !media.mime_type.starts_with("image/") {
            self.report(
                url.span().start,
                format!(
                    "image \"{}\" has type {}, not an image type; the entry is published without its image",
                    url.get_ref(),
                    media.mime_type
                ),
            );
            self.local_media
                .retain(|m| Some(&m.rel) != media.local.as_ref());
            return None;
        }
        Some(Box::new(Image {
            width: self.pixels("width", width),
            height: self.pixels("height", height),
            media,
        }))
    }

    /// One file: an absolute http(s) URL, or a path relative to
    /// `DATA/media/`; its type from `type` or the file extension; its length
    /// from `length` (remote) or, later, the loader (local). `None` after
    /// reporting why, when it cannot be used.
    fn media(
        &mut self,
        what: &str,
        url: &Spanned<String>,
        mime_type: Option<&Spanned<String>>,
        length: Option<&Spanned<i64>>,
    ) -> Option<Media> {
        let raw = url.get_ref().trim();
        let dropped = format!("the entry is published without this {what}");
        let (absolute, local) = match http_url(raw, None) {
            Ok(u) => (u, None),
            Err(NotHttpUrl::OtherScheme) => {
                self.report(
                    url.span().start,
                    format!(
                        "{what} url \"{raw}\" must be an http(s) URL or a path relative to DATA/media/; {dropped}"
                    ),
                );
                return None;
            }
            Err(NotHttpUrl::NotUrl) => {
                if let Err(why) = crate::media::check_path(raw) {
                    self.report(
                        url.span().start,
                        format!("{what} path \"{raw}\": {why}; {dropped}"),
                    );
                    return None;
                }
                (
                    self.ctx.config.url(&crate::urls::media(raw)),
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
            let (line, column) = crate::diagnostic::line_column(self.text, url.span().start);
            self.local_media.push(LocalMedia {
                rel: rel.clone(),
                line: self.first_line + line - 1,
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
    fn pixels(&mut self, key: &str, value: Option<&Spanned<i64>>) -> Option<u32> {
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

    /// `genre`: one of [`Genre::ALL`]; `message` when absent or unknown.
    fn genre(&mut self, genre: Option<&Spanned<String>>) -> Genre {
        let Some(g) = genre else {
            return Genre::default();
        };
        let value = g.get_ref().trim();
        if let Some(known) = Genre::ALL.into_iter().find(|k| k.as_str() == value) {
            return known;
        }
        let known: Vec<&str> = Genre::ALL.iter().map(|k| k.as_str()).collect();
        self.report(
            g.span().start,
            format!(
                "unknown genre \"{value}\" (known: {}); using message",
                known.join(", ")
            ),
        );
        Genre::default()
    }
}

/// A required field's value, or [`Bad`] when it is absent or misshapen
/// (reported already, by [`Fields::missing`] or when it was read).
fn required<T>(field: &Option<T>) -> Result<&T, Bad> {
    field.as_ref().ok_or(Bad)
}

/// `summary`, cleaned; `None` when absent or blank.
fn summary(summary: Option<&str>) -> Option<String> {
    summary
        .map(|s| squash_whitespace(&xml_safe(s)))
        .filter(|s| !s.is_empty())
}

/// `authors`, cleaned, blank names dropped.
fn authors(authors: &[String]) -> Vec<String> {
    authors
        .iter()
        .map(|a| squash_whitespace(&xml_safe(a)))
        .filter(|a| !a.is_empty())
        .collect()
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
