//! Entry bodies: CommonMark to sanitized, absolute-linked, XML-safe HTML.
//!
//! The pipeline is pulldown-cmark (Markdown to HTML), then ammonia (drops
//! scripts, event handlers, `javascript:`/`data:` URLs, and makes relative links
//! absolute against `base_url`, because feed readers ignore `xml:base`).

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
use url::Url;

/// A reusable HTML sanitizer bound to one base URL.
///
/// Building an ammonia policy costs more than cleaning a short body, so the
/// loader builds one per load and shares it across threads.
pub struct Sanitizer {
    policy: ammonia::Builder<'static>,
}

impl Sanitizer {
    /// A sanitizer that resolves relative URLs against `base`.
    pub fn new(base: &Url) -> Self {
        let mut policy = ammonia::Builder::default();
        policy
            .url_relative(ammonia::UrlRelative::RewriteWithBase(base.clone()))
            .link_rel(Some("noopener noreferrer"));
        Sanitizer { policy }
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
        crate::text::xml_safe(&utf8).into_owned()
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

/// Renders a CommonMark body to sanitized HTML and extracts its first paragraph.
pub fn render(markdown: &str, sanitizer: &Sanitizer) -> Body {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_TASKLISTS;
    let events: Vec<Event<'_>> = Parser::new_ext(markdown, options).collect();
    let first_paragraph = first_paragraph_text(&events);
    let mut raw = String::with_capacity(markdown.len() * 5 / 4);
    pulldown_cmark::html::push_html(&mut raw, events.into_iter());
    Body {
        html: sanitizer.clean(&raw),
        first_paragraph,
    }
}

fn first_paragraph_text(events: &[Event<'_>]) -> String {
    let mut text = String::new();
    let mut inside = false;
    for event in events {
        match event {
            Event::Start(Tag::Paragraph) => inside = true,
            Event::End(TagEnd::Paragraph) if inside => break,
            Event::Text(t) | Event::Code(t) if inside => text.push_str(t),
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
    fn first_paragraph_is_plain_text() {
        let base = Url::parse("http://example.org/").unwrap();
        let s = Sanitizer::new(&base);
        let body = render("# Head\n\nSome *bold*\nline `code`.\n\nSecond.", &s);
        assert_eq!(body.first_paragraph, "Some bold line code.");
        assert_eq!(render("", &s).first_paragraph, "");
    }
}
