//! XSS: the payloads in `tests/data/xss/*.payload` put into entry bodies, and
//! into titles, summaries and source names as plain text. No feed format
//! and no HTML page lets a script element, an event handler, a
//! `javascript:`/`data:`/`vbscript:` URL or a frame, form or object through as
//! markup; text stays text; relative links come out absolute against
//! `base_url`. Feeds are checked on the HTML a reader decodes from them
//! (`fuzz/src/checks.rs`, shared with the fuzz targets), not on escaped bytes.

#[path = "../fuzz/src/checks.rs"]
mod checks;
mod common;

use std::path::Path;
use std::sync::Arc;

use common::root;
use vestnik::config::Config;
use vestnik::entry::html::Sanitizer;
use vestnik::entry::{Context, Entry, Parsed};
use vestnik::model::{Scope, Site};
use vestnik::render::{self, Format};
use vestnik::text::squash_whitespace;

const SITE: &str = r#"
title = "XSS"
base_url = "http://example.org/base/"
language = "en"
timezone = "UTC"
[[sections]]
slug = "news"
title = "News"
"#;

/// Every payload file as (file name, payload without its final newline).
fn payloads() -> Vec<(String, String)> {
    let dir = root().join("tests/data/xss");
    let mut found: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "payload"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("payload is UTF-8");
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, text.trim_end_matches('\n').to_owned())
        })
        .collect();
    found.sort();
    assert!(
        found.len() >= 30,
        "only {} payloads in {}",
        found.len(),
        dir.display()
    );
    found
}

fn config() -> Config {
    Config::parse(Path::new("site.toml"), SITE).expect("test config")
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// An entry file with the given plain-text fields and Markdown body.
fn entry_file(title: &str, summary: &str, source_name: &str, body: &str) -> String {
    format!(
        "+++\ntitle = {}\ndate = 2024-05-01T10:00:00Z\nsections = [\"news\"]\nsummary = {}\n\n[source]\nname = {}\nurl = \"https://source.example/a\"\n+++\n\n{body}\n",
        toml_str(title),
        toml_str(summary),
        toml_str(source_name),
    )
}

fn parse(config: &Config, file: &str) -> Parsed {
    let sanitizer = Sanitizer::new(&config.base_url);
    let ctx = Context {
        config,
        sanitizer: &sanitizer,
        spool: None,
    };
    vestnik::entry::parse(&ctx, Path::new("entries/x.md"), "x.md", file.as_bytes())
}

fn publish(file: &str) -> Site {
    let config = config();
    let parsed = parse(&config, file);
    let entry = parsed.entry.unwrap_or_else(|| {
        panic!(
            "entry rejected: {:?}\n--- file ---\n{file}",
            parsed.diagnostics
        )
    });
    Site::new(config, vec![Arc::new(entry)], Vec::new())
}

/// Problems of an HTML page beyond those of the same page for a harmless
/// entry: the templates carry `<meta>`, `<link>` and `<style>` of their own.
fn page_problems(page: &[u8], baseline: &[u8]) -> Vec<String> {
    let mut got = checks::markup_problems(&String::from_utf8_lossy(page));
    for known in checks::markup_problems(&String::from_utf8_lossy(baseline)) {
        if let Some(i) = got.iter().position(|p| *p == known) {
            got.remove(i);
        }
    }
    got
}

/// Every output of a one-entry site: (name, bytes, format or `None` for pages).
fn outputs(site: &Site) -> Vec<(String, Vec<u8>, Option<Format>)> {
    let mut out = Vec::new();
    for feed in site.feeds() {
        for format in Format::ALL {
            let name = format!("/feeds/{}.{}", feed.scope.slug(), format.extension());
            out.push((
                name,
                render::render(&feed, format, render::Retain::Keep),
                Some(format),
            ));
        }
        if let Scope::Section(s) = feed.scope {
            out.push((
                format!("/sections/{}", s.slug),
                render::html::section(&feed),
                None,
            ));
        }
    }
    out.push(("/".into(), render::html::index(site), None));
    out.push((
        "/news/x".into(),
        render::html::news(site, &site.entries[0], render::Retain::Keep),
        None,
    ));
    out
}

/// Security problems in every feed and page of a one-entry site.
fn site_problems(site: &Site, baseline: &Site) -> Vec<String> {
    let mut problems = Vec::new();
    let base_outputs = outputs(baseline);
    for ((name, bytes, format), (_, base_bytes, _)) in outputs(site).iter().zip(&base_outputs) {
        match format {
            Some(format) => match checks::parse_feed(*format, bytes) {
                Err(e) => problems.push(format!("{name}: {e}")),
                Ok(doc) => {
                    for field in &doc.html {
                        for p in checks::markup_problems(&field.html) {
                            problems.push(format!("{name} {}: {p}", field.location));
                        }
                    }
                }
            },
            None => {
                for p in page_problems(bytes, base_bytes) {
                    problems.push(format!("{name}: {p}"));
                }
            }
        }
    }
    problems
}

fn harmless() -> Site {
    publish(&entry_file(
        "Harmless",
        "A summary.",
        "Source",
        "Plain *body*.",
    ))
}

/// Payloads that run nothing in an HTML5 body, so the checker rightly does
/// not flag them raw: the cheat sheets' locator string; CDATA, which HTML
/// reads as a bogus comment (it matters only if a feed's XML is mangled);
/// and backtick quoting, which only old Internet Explorer honoured. They stay
/// in the corpus for the feeds' well-formedness and text round trip.
const PROBES: [&str; 3] = ["script-in-cdata", "cheat-sheet-locator", "img-backtick-src"];

#[test]
fn every_payload_is_flagged_when_not_sanitized() {
    // Guards the checks themselves: a payload the checker cannot see would
    // make the tests below pass vacuously.
    for (name, payload) in payloads() {
        let mut raw = String::new();
        pulldown_cmark::html::push_html(&mut raw, pulldown_cmark::Parser::new(&payload));
        // As HTML a browser would read it, or as Markdown would render it.
        let flagged = !checks::markup_problems(&payload).is_empty()
            || !checks::markup_problems(&raw).is_empty();
        let probe = PROBES.iter().any(|p| name.contains(p));
        assert!(
            flagged != probe,
            "{name}: unsanitized HTML {} flagged: {raw}",
            if flagged { "is" } else { "is not" }
        );
    }
}

#[test]
fn payloads_in_bodies_never_reach_markup() {
    let baseline = harmless();
    let mut failures = Vec::new();
    for (name, payload) in payloads() {
        let body = format!("Before.\n\n{payload}\n\nAfter [a link](page.html).");
        let site = publish(&entry_file("Harmless", "A summary.", "Source", &body));
        for p in site_problems(&site, &baseline) {
            failures.push(format!("{name}: {p}"));
        }
    }
    assert!(
        failures.is_empty(),
        "payloads reached markup:\n{}",
        failures.join("\n")
    );
}

#[test]
fn payloads_in_title_summary_and_source_name_stay_text() {
    let baseline = harmless();
    let mut failures = Vec::new();
    for (name, payload) in payloads() {
        let text = squash_whitespace(&payload);
        let site = publish(&entry_file(&text, &text, &text, "Plain *body*."));
        for p in site_problems(&site, &baseline) {
            failures.push(format!("{name}: {p}"));
        }
        let entry: &Entry = &site.entries[0];
        assert_eq!(entry.title, text, "{name}: title");
        let html = vestnik::render::content_html(&site, entry, vestnik::render::Retain::Keep);
        assert!(
            checks::html_text(&html).contains(&format!("Source: {text}")),
            "{name}: the source name is not shown as text in {html:?}"
        );
        for format in Format::ALL {
            let bytes = render::render(&site.feed(Scope::All), format, render::Retain::Keep);
            let feed = feed_rs::parser::parse(&bytes[..])
                .unwrap_or_else(|e| panic!("{name}: feed-rs rejects {format:?}: {e}"));
            let got = feed.entries[0].title.as_ref().map(|t| t.content.as_str());
            assert_eq!(got, Some(text.as_str()), "{name}: title in {format:?}");
            let summary = feed.entries[0].summary.as_ref().map(|t| {
                // RSS <description> is HTML; Atom and JSON Feed summaries are text.
                if t.content_type.essence().to_string() == "text/html" {
                    checks::html_text(&t.content)
                } else {
                    t.content.clone()
                }
            });
            assert_eq!(
                summary.as_deref(),
                Some(text.as_str()),
                "{name}: summary in {format:?}"
            );
        }
    }
    assert!(
        failures.is_empty(),
        "plain-text payloads became markup:\n{}",
        failures.join("\n")
    );
}

#[test]
fn script_urls_are_rejected_as_link_and_source_urls() {
    let config = config();
    let good = entry_file("T", "S", "Source", "Body.");
    for url in [
        "javascript:alert(1)",
        " JavaScript:alert(1)",
        "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        "vbscript:msgbox(1)",
    ] {
        let quoted = toml_str(url);
        let cases = [
            (
                "link",
                good.replace(
                    "sections = [\"news\"]",
                    &format!("sections = [\"news\"]\nlink = {quoted}"),
                ),
            ),
            (
                "source url",
                good.replace(
                    "url = \"https://source.example/a\"",
                    &format!("url = {quoted}"),
                ),
            ),
            (
                "source feed",
                good.replace(
                    "url = \"https://source.example/a\"",
                    &format!("url = \"https://source.example/a\"\nfeed = {quoted}"),
                ),
            ),
        ];
        for (key, file) in cases {
            let parsed = parse(&config, &file);
            assert!(
                parsed.entry.is_none(),
                "{key} = {url:?} was accepted: {:?}",
                parsed.entry.map(|e| e.link(&config))
            );
            let messages: Vec<String> = parsed.diagnostics.iter().map(|d| d.to_string()).collect();
            assert!(
                messages.iter().any(|m| m.contains("http(s)")),
                "{key} = {url:?}: {messages:?}"
            );
        }
    }
}

#[test]
fn relative_links_and_images_become_absolute_against_base_url() {
    let body = "[page](page.html) [up](../up/) [root](/top) [query](?q=1) [proto](//cdn.example/x)\n\n\
                ![image](img/a.png) <img src=\"b.png\" alt=\"b\"> <a href=\"sub/c.html\">c</a>";
    let site = publish(&entry_file("Links", "Links.", "Source", body));
    let want = [
        "http://example.org/base/page.html",
        "http://example.org/up/",
        "http://example.org/top",
        "http://example.org/base/?q=1",
        "http://cdn.example/x",
        "http://example.org/base/img/a.png",
        "http://example.org/base/b.png",
        "http://example.org/base/sub/c.html",
    ];
    for feed in site.feeds() {
        for format in Format::ALL {
            let name = format!("/feeds/{}.{}", feed.scope.slug(), format.extension());
            let doc = checks::check_feed(
                &name,
                format,
                &render::render(&feed, format, render::Retain::Keep),
            );
            let content: Vec<&checks::HtmlField> = doc
                .html
                .iter()
                .filter(|f| f.html.contains("page.html"))
                .collect();
            assert_eq!(
                content.len(),
                1,
                "{name}: one content field, got {content:?}"
            );
            let html = &content[0].html;
            assert_eq!(
                checks::relative_urls(html),
                Vec::<(String, String)>::new(),
                "{name}: relative URLs left in {html}"
            );
            let urls: Vec<String> = checks::start_tags(html)
                .iter()
                .flat_map(|t| &t.attrs)
                .filter(|a| matches!(&*a.name.local, "href" | "src"))
                .map(|a| a.value.to_string())
                .collect();
            for url in want {
                assert!(
                    urls.iter().any(|u| u == url),
                    "{name}: no {url} in {urls:?}"
                );
            }
        }
    }
}
