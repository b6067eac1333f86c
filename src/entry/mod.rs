//! One entry file: TOML front matter between `+++` lines, then a Markdown body.
//!
//! [`parse`] is pure: bytes in, an [`Entry`] and diagnostics out. It decodes
//! and splits the file here; `fields` checks the front matter one field at a
//! time. Reading the directory is [`load`]'s job.

pub mod date;
mod fields;
pub mod html;
pub mod spool;

use std::path::Path;

use chrono::{DateTime, FixedOffset};
use url::Url;

use crate::config::Config;
use crate::diagnostic::Diagnostic;
use crate::text::xml_safe;

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
    /// `draft = true`: only ever published by `serve --preview`.
    pub draft: bool,
    /// `publish_at`: when the entry goes public, if not at its `date`
    /// (an embargo whose displayed date must differ).
    pub publish_at: Option<DateTime<FixedOffset>>,
    /// `expires`: when the entry leaves everything public.
    pub expires: Option<DateTime<FixedOffset>>,
    /// Known section slugs, in the order the entry lists them, without repeats.
    pub sections: Vec<String>,
    /// The `summary` key, cleaned; `None` when absent or blank, and then
    /// [`Entry::summary`] is the body's first paragraph.
    pub summary_key: Option<String>,
    /// The body, rendered to sanitized HTML on first use (render appends the source line).
    pub body: html::LazyHtml,
    /// The `link` key: the article's canonical URL elsewhere. `None` (the
    /// usual case) makes it the entry's own page; see [`Entry::link`]. Not
    /// kept resolved: a `Url` per entry is 12 MB at N = 100,000.
    pub canonical: Option<Url>,
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
    /// paragraph (possibly empty), kept with the entry if `retain` says so.
    pub fn summary(&self, retain: html::Retain) -> std::borrow::Cow<'_, str> {
        match &self.summary_key {
            Some(key) => std::borrow::Cow::Borrowed(key),
            None => self.body.first_paragraph(retain),
        }
    }

    /// The canonical URL of the article: the `link` key, else the entry's
    /// own page on the site.
    pub fn link(&self, config: &Config) -> Url {
        match &self.canonical {
            Some(url) => url.clone(),
            None => config.url(&crate::urls::news(&self.id)),
        }
    }

    /// When the entry goes public: `publish_at`, else its `date`.
    pub fn due(&self) -> DateTime<FixedOffset> {
        self.publish_at.unwrap_or(self.published)
    }

    /// Whether the entry is public at `cutoff`: due, and not yet expired.
    pub fn visibility(&self, cutoff: DateTime<chrono::Utc>) -> Visibility {
        if self.due() > cutoff {
            Visibility::Scheduled
        } else if self.expires.is_some_and(|e| e <= cutoff) {
            Visibility::Expired
        } else {
            Visibility::Public
        }
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
            crate::urls::segment(&self.id)
        )
    }
}

/// Where an entry stands at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// Due and not expired: in every feed and page.
    Public,
    /// Not due yet: in nothing public, its page a 404.
    Scheduled,
    /// Past `expires`: in nothing public, its page a 410.
    Expired,
}

pub use crate::config::Source;

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
    /// Where bodies go to be kept out of memory (see [`spool`]); `None`
    /// keeps them in memory. A batch is one thread's, hence the `RefCell`.
    pub spool: Option<&'a std::cell::RefCell<spool::Batch>>,
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

/// The front matter and body of a file, split at the `+++` lines.
struct Split<'a> {
    front: &'a str,
    /// 1-based line of the file where `front` starts.
    front_line: usize,
    body: &'a str,
}

/// Parses one entry file. `path` is what diagnostics show; `rel` is its path
/// relative to `DATA/entries`, whose file stem is the default id.
///
/// Every problem the file has is reported, ordered by position, not only the
/// first: each field is checked even after another one turned out bad.
pub fn parse(ctx: &Context<'_>, path: &Path, rel: &str, bytes: &[u8]) -> Parsed {
    let decoded = match decode(path, bytes) {
        Ok(text) => text,
        Err(d) => return Parsed::problem(d),
    };
    // Characters XML forbids (a pasted U+0008, say) would make TOML reject the
    // file and strict aggregators reject the feed; the contract removes them.
    let text = xml_safe(&decoded);
    let split = match split(path, &text) {
        Ok(split) => split,
        Err(d) => return Parsed::problem(d),
    };
    let mut fields = fields::Fields::new(ctx, path, split.front, split.front_line);
    let entry = fields.entry(rel, split.body);
    let mut diagnostics = fields.diagnostics;
    // Stable, so problems at one position keep the order they were found in.
    diagnostics.sort_by_key(|d| (d.line, d.column));
    Parsed {
        entry,
        diagnostics,
        local_media: fields.local_media,
    }
}

impl Parsed {
    /// A file that cannot be read as an entry at all.
    fn problem(d: Diagnostic) -> Parsed {
        Parsed {
            diagnostics: vec![d],
            ..Parsed::default()
        }
    }
}

/// The default id: the file name without its `.md` extension.
pub fn default_id(rel: &str) -> String {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    name.strip_suffix(".md").unwrap_or(name).to_owned()
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

#[cfg(test)]
mod tests;
