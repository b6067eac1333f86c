//! Entry bodies: CommonMark to sanitized, absolute-linked, XML-safe HTML.
//!
//! The pipeline is pulldown-cmark (Markdown to HTML), then ammonia (drops
//! scripts, event handlers, `javascript:`/`data:` URLs, and makes relative links
//! absolute against `base_url`, because feed readers ignore `xml:base`).

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
use std::borrow::Cow;
use url::Url;

use super::spool::{Batch, Spooled};

/// A reusable HTML sanitizer bound to one base URL.
///
/// Building an ammonia policy costs more than cleaning a short body, so the
/// loader builds one per load and shares it across threads and entries;
/// cloning shares the policy.
#[derive(Clone)]
pub struct Sanitizer {
    policy: std::sync::Arc<ammonia::Builder<'static>>,
}

impl std::fmt::Debug for Sanitizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sanitizer")
    }
}

impl Sanitizer {
    /// A sanitizer that resolves relative URLs against `base`.
    pub fn new(base: &Url) -> Self {
        let mut policy = ammonia::Builder::default();
        policy
            .url_relative(ammonia::UrlRelative::RewriteWithBase(base.clone()))
            .link_rel(Some("noopener noreferrer"));
        Sanitizer {
            policy: std::sync::Arc::new(policy),
        }
    }

    /// Cleans untrusted HTML into a safe fragment.
    pub fn clean(&self, html: &str) -> String {
        let cleaned = self.policy.clean(html).to_string();
        // html5ever writes U+00A0 back as `&nbsp;`, the one named entity that XML
        // and many feed parsers do not know. A literal "&nbsp;" in its output can
        // only be that entity, since a text "&" is always written as "&amp;".
        let utf8 = if cleaned.contains("&nbsp;") {
            cleaned.replace("&nbsp;", "\u{a0}")
        } else {
            cleaned
        };
        match crate::text::xml_safe(&utf8) {
            Cow::Borrowed(_) => utf8,
            Cow::Owned(safe) => safe,
        }
    }
}

/// A rendered body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    /// Sanitized HTML.
    pub html: String,
    /// The first paragraph as plain text, white space squashed; empty if none.
    pub first_paragraph: String,
}

/// Whether a body rendered for a page stays with its entry afterwards: the
/// caller says, as an argument.
///
/// The standard feeds render with [`Retain::Keep`]: their few thousand
/// newest entries are rendered again at every reload. Later feed pages,
/// bundles, entry pages and all of `vestnik build` render with
/// [`Retain::Discard`], so neither a build nor a crawler walking every page
/// keeps 100,000 rendered bodies (~180 MB at ~1.8 KB each) alive;
/// rendering one again costs ~25 µs. A body kept before is used either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retain {
    /// Keep what is rendered with the entry.
    Keep,
    /// Render without keeping.
    Discard,
}

/// An entry's body, kept as Markdown and turned into sanitized HTML on first
/// use. Only the entries that reach a feed or a page are ever rendered: at
/// 100,000 entries that is a few thousand, and rendering plus sanitizing is
/// most of what loading would otherwise cost (measured: 60% of CPU and half
/// the memory of loading a 10,000-entry corpus).
///
/// The Markdown itself is in memory, or in the loader's [`Spool`] when it has
/// one (see there): then it is read back for the rare render.
#[derive(Clone)]
pub struct LazyHtml {
    markdown: Markdown,
    sanitizer: Sanitizer,
    html: std::sync::OnceLock<String>,
    first_paragraph: std::sync::OnceLock<String>,
}

/// Where a body's Markdown is.
#[derive(Clone)]
enum Markdown {
    Resident(Box<str>),
    Spooled(Spooled),
}

impl LazyHtml {
    /// Bytes of the Markdown source, to estimate rendered sizes without rendering.
    pub fn source_len(&self) -> usize {
        match &self.markdown {
            Markdown::Resident(text) => text.len(),
            Markdown::Spooled(at) => at.len(),
        }
    }

    /// The Markdown source: with the configuration (which fixes the
    /// sanitizer), all the rendered body depends on, so [`crate::inputs`]
    /// keys pages by it. Read back from the spool if it is there.
    pub fn source(&self) -> Cow<'_, str> {
        match &self.markdown {
            Markdown::Resident(text) => Cow::Borrowed(text),
            Markdown::Spooled(at) => Cow::Owned(at.read()),
        }
    }

    /// A body to render later with `sanitizer`, kept in memory.
    pub fn new(markdown: String, sanitizer: Sanitizer) -> Self {
        Self::with(Markdown::Resident(markdown.into_boxed_str()), sanitizer)
    }

    /// A body to render later with `sanitizer`, put in `spool` when there
    /// is one (never allocated in memory then), else kept in memory.
    pub fn stored(
        markdown: &str,
        sanitizer: Sanitizer,
        spool: Option<&std::cell::RefCell<Batch>>,
    ) -> Self {
        match spool.and_then(|b| b.borrow_mut().put(markdown)) {
            Some(at) => Self::with(Markdown::Spooled(at), sanitizer),
            None => Self::new(markdown.to_owned(), sanitizer),
        }
    }

    fn with(markdown: Markdown, sanitizer: Sanitizer) -> Self {
        LazyHtml {
            markdown,
            sanitizer,
            html: std::sync::OnceLock::new(),
            first_paragraph: std::sync::OnceLock::new(),
        }
    }

    /// The body's first paragraph as plain text ([`first_paragraph`]),
    /// computed on first use: loading 100,000 entries should not parse
    /// 100,000 bodies for summaries only the feeds' newest entries show.
    pub fn first_paragraph(&self, retain: Retain) -> Cow<'_, str> {
        cached(&self.first_paragraph, retain, || {
            first_paragraph(&self.source())
        })
    }

    /// The sanitized HTML, rendered on first use.
    pub fn get(&self, retain: Retain) -> Cow<'_, str> {
        cached(&self.html, retain, || {
            // A kept body stays for the life of the entry, so it is
            // allocated at its exact size rather than with a growth margin.
            let mut html = render(&self.source(), &self.sanitizer).html;
            html.shrink_to_fit();
            html
        })
    }
}

/// The value in `cell`, or `make`'s: kept in `cell` when `retain` says so.
fn cached<'a>(
    cell: &'a std::sync::OnceLock<String>,
    retain: Retain,
    make: impl FnOnce() -> String,
) -> Cow<'a, str> {
    match (cell.get(), retain) {
        (Some(value), _) => Cow::Borrowed(value),
        (None, Retain::Discard) => Cow::Owned(make()),
        (None, Retain::Keep) => Cow::Borrowed(cell.get_or_init(make)),
    }
}

/// The text of sanitized HTML, as a reader would see it without markup:
/// entities decoded, runs of white space squashed, and one line per block
/// (paragraph, heading, list item, table row…) or `<br>`.
///
/// Uses html5ever's tokenizer (the parser ammonia is built on), not
/// patterns, so attributes, comments and entities are read the way a
/// browser reads them.
pub fn plain_text(html: &str) -> String {
    use html5ever::tendril::StrTendril;
    use html5ever::tokenizer::{
        BufferQueue, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
    };
    use std::cell::RefCell;

    /// Collects lines; `line` is the block being filled.
    #[derive(Default)]
    struct Sink {
        lines: RefCell<Vec<String>>,
        line: RefCell<String>,
        /// Inside `<script>`, `<style>` or `<template>` (never in sanitized
        /// HTML, but their text is not prose either way).
        hidden: std::cell::Cell<u32>,
    }

    impl Sink {
        fn break_line(&self) {
            let line = std::mem::take(&mut *self.line.borrow_mut());
            let line = crate::text::squash_whitespace(&line);
            if !line.is_empty() {
                self.lines.borrow_mut().push(line);
            }
        }
    }

    impl TokenSink for Sink {
        type Handle = ();
        fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
            match token {
                Token::CharacterTokens(t) if self.hidden.get() == 0 => {
                    self.line.borrow_mut().push_str(&t)
                }
                Token::TagToken(tag) => {
                    let name: &str = &tag.name;
                    match name {
                        "script" | "style" | "template" => {
                            let h = self.hidden.get();
                            self.hidden.set(match tag.kind {
                                TagKind::StartTag => h + 1,
                                TagKind::EndTag => h.saturating_sub(1),
                            });
                        }
                        "p" | "div" | "br" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "li"
                        | "ul" | "ol" | "dl" | "dt" | "dd" | "blockquote" | "pre" | "table"
                        | "tr" | "hr" | "figure" | "figcaption" | "section" | "article"
                        | "header" | "footer" | "aside" | "details" | "summary" => {
                            self.break_line()
                        }
                        // Cells of a row stay on its line, apart.
                        "td" | "th" => self.line.borrow_mut().push(' '),
                        _ => {}
                    }
                }
                _ => {}
            }
            TokenSinkResult::Continue
        }
    }

    let input = BufferQueue::default();
    input.push_back(StrTendril::from_slice(html));
    let tokenizer = Tokenizer::new(Sink::default(), TokenizerOpts::default());
    let _ = tokenizer.feed(&input);
    tokenizer.end();
    tokenizer.sink.break_line();
    let lines = tokenizer.sink.lines.take();
    crate::text::xml_safe(&lines.join("\n")).into_owned()
}

impl PartialEq for LazyHtml {
    /// Equal sources give equal HTML; whether it was rendered yet does not matter.
    fn eq(&self, other: &Self) -> bool {
        self.source_len() == other.source_len() && self.source() == other.source()
    }
}

impl std::fmt::Debug for LazyHtml {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyHtml")
            .field("markdown_bytes", &self.source_len())
            .field("spooled", &matches!(self.markdown, Markdown::Spooled(_)))
            .field("rendered", &self.html.get().is_some())
            .finish()
    }
}

/// The first paragraph of a CommonMark body as plain text, without rendering
/// the rest.
pub fn first_paragraph(markdown: &str) -> String {
    first_paragraph_text(Parser::new_ext(markdown, OPTIONS))
}

const OPTIONS: Options = Options::ENABLE_TABLES
    .union(Options::ENABLE_STRIKETHROUGH)
    .union(Options::ENABLE_FOOTNOTES)
    .union(Options::ENABLE_TASKLISTS);

/// Renders a CommonMark body to sanitized HTML and extracts its first paragraph.
pub fn render(markdown: &str, sanitizer: &Sanitizer) -> Body {
    let events: Vec<Event<'_>> = Parser::new_ext(markdown, OPTIONS).collect();
    let first_paragraph = first_paragraph_text(events.iter().cloned());
    let mut raw = String::with_capacity(markdown.len() * 5 / 4);
    pulldown_cmark::html::push_html(&mut raw, events.into_iter());
    Body {
        html: sanitizer.clean(&raw),
        first_paragraph,
    }
}

/// The text of the first paragraph among `events`, squashed and XML-safe;
/// stops reading at its end.
fn first_paragraph_text<'a>(events: impl IntoIterator<Item = Event<'a>>) -> String {
    let mut text = String::new();
    let mut inside = false;
    for event in events {
        match event {
            Event::Start(Tag::Paragraph) => inside = true,
            Event::End(TagEnd::Paragraph) if inside => break,
            Event::Text(t) | Event::Code(t) if inside => text.push_str(&t),
            Event::SoftBreak | Event::HardBreak if inside => text.push(' '),
            // Inline HTML in the first paragraph is markup, not words.
            _ => {}
        }
    }
    crate::text::squash_whitespace(&crate::text::xml_safe(&text))
}

/// Escapes text for an HTML text node or attribute value.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    // Writing into a String cannot fail.
    let _ = pulldown_cmark_escape::escape_html(&mut out, s);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(markdown: &str, html: &str) {
        let base = Url::parse("http://example.org/site/").unwrap();
        let got = render(markdown, &Sanitizer::new(&base)).html;
        assert_eq!(got.trim_end(), html, "markdown: {markdown:?}");
    }

    #[test]
    fn markdown_becomes_html() {
        check("Hello *world*", "<p>Hello <em>world</em></p>");
        check("a\n\nb", "<p>a</p>\n<p>b</p>");
        check("> quote", "<blockquote>\n<p>quote</p>\n</blockquote>");
    }

    #[test]
    fn scripts_handlers_and_bad_urls_are_dropped() {
        check("<script>alert(1)</script>ok", "ok");
        check(
            "<img src=x onerror=alert(1)>",
            "<img src=\"http://example.org/site/x\">",
        );
        check(
            "[x](javascript:alert(1))",
            "<p><a rel=\"noopener noreferrer\">x</a></p>",
        );
        check(
            "<a href=\"data:text/html,hi\">x</a>",
            "<p><a rel=\"noopener noreferrer\">x</a></p>",
        );
        check("<iframe src=\"http://evil\"></iframe>", "");
    }

    #[test]
    fn relative_links_become_absolute() {
        check(
            "[doc](files/a.pdf) ![](/img/b.png)",
            "<p><a href=\"http://example.org/site/files/a.pdf\" rel=\"noopener noreferrer\">doc</a> <img src=\"http://example.org/img/b.png\" alt=\"\"></p>",
        );
    }

    #[test]
    fn entities_become_utf8_and_forbidden_characters_go() {
        check(
            "&laquo;Диалог&raquo; &mdash; &nbsp;x",
            "<p>«Диалог» — \u{a0}x</p>",
        );
        check("<p>&laquo;raw&raquo;&nbsp;</p>", "<p>«raw»\u{a0}</p>");
        check("a\u{8}b & <c>", "<p>ab &amp; </p>");
    }

    #[test]
    fn plain_text_keeps_blocks_as_lines() {
        let base = Url::parse("http://example.org/").unwrap();
        let s = Sanitizer::new(&base);
        let md = "# Заголовок\n\nПервый *абзац*\nс переносом &laquo;x&raquo; &amp; y.\n\n- один\n- два\n\nстрока<br>вторая\n\n<script>alert(1)</script>\n\n| a | b |\n|---|---|\n| 1 | 2 |\n";
        let html = render(md, &s).html;
        assert_eq!(
            plain_text(&html),
            "Заголовок\nПервый абзац с переносом «x» & y.\nодин\nдва\nстрока\nвторая\na b\n1 2"
        );
        assert_eq!(plain_text(""), "");
        assert_eq!(plain_text("<p>a &lt;b&gt; <!-- c --> d</p>"), "a <b> d");
    }

    #[test]
    fn discarding_renders_without_keeping() {
        let base = Url::parse("http://example.org/").unwrap();
        let lazy = LazyHtml::new("Первый абзац.\n\nВторой.".into(), Sanitizer::new(&base));
        let html = lazy.get(Retain::Discard).into_owned();
        let summary = lazy.first_paragraph(Retain::Discard).into_owned();
        assert_eq!(html, "<p>Первый абзац.</p>\n<p>Второй.</p>\n");
        assert_eq!(summary, "Первый абзац.");
        assert!(lazy.html.get().is_none() && lazy.first_paragraph.get().is_none());
        // Keeping caches; afterwards a discarding caller gets the kept body.
        assert!(matches!(lazy.get(Retain::Keep), Cow::Borrowed(_)));
        assert!(lazy.html.get().is_some());
        assert!(matches!(lazy.get(Retain::Discard), Cow::Borrowed(h) if h == html));
        assert_eq!(lazy.first_paragraph(Retain::Keep), summary);
        assert!(lazy.first_paragraph.get().is_some());
    }

    #[test]
    fn first_paragraph_is_plain_text() {
        let base = Url::parse("http://example.org/").unwrap();
        let s = Sanitizer::new(&base);
        let md = "# Head\n\nSome *bold*\nline `code`.\n\nSecond.";
        assert_eq!(render(md, &s).first_paragraph, "Some bold line code.");
        assert_eq!(first_paragraph(md), "Some bold line code.");
        assert_eq!(render("", &s).first_paragraph, "");
        let lazy = LazyHtml::new(md.into(), s.clone());
        assert_eq!(lazy.get(Retain::Keep), render(md, &s).html);
    }
}
