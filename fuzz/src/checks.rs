//! Property checks shared by the fuzz targets and their stable-Rust replays.
//!
//! The fuzz crate compiles this file as `vestnik_fuzz::checks`; the main
//! crate's tests include the very same file with
//! `#[path = "../fuzz/src/checks.rs"] mod checks;`, so an input found by
//! fuzzing is replayed on stable Rust through exactly the assertions that
//! flagged it. Checks panic with a message that names the input and what
//! failed, because a panic is what libFuzzer records as a crash.
//!
//! Only crates that both the fuzz crate and the main crate's tests can see
//! are used here: vestnik's own dependencies plus `roxmltree` and `html5ever`.
#![allow(dead_code)]

use std::cell::RefCell;
use std::future::Future as _;
use std::path::Path;
use std::sync::Arc;

use chrono::Datelike;
use html5ever::tendril::StrTendril;
use html5ever::tokenizer::{
    BufferQueue, Tag, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};
use http::header::{
    ACCEPT_ENCODING, ALLOW, CONTENT_ENCODING, CONTENT_LENGTH, IF_MODIFIED_SINCE, IF_NONE_MATCH,
};
use http::{HeaderValue, Method, Request, StatusCode};
use vestnik::config::Config;
use vestnik::entry::html::Sanitizer;
use vestnik::entry::{Context, Parsed, date};
use vestnik::model::Site;
use vestnik::render::{self, Format};
use vestnik::snapshot::Snapshot;

/// The site every fuzzed entry is parsed against. Berlin has DST, so local
/// dates cross gaps and overlaps; the base URL has a path, so relative links
/// have something to be resolved against.
pub const SITE_TOML: &str = r#"
title = "Fuzz & <Co>"
base_url = "http://example.org/base/"
language = "en"
timezone = "Europe/Berlin"
[[sections]]
slug = "news"
title = "News"
[[sections]]
slug = "sport"
title = "Sport"
"#;

/// Where the fuzzed entry claims to live, for diagnostics.
pub const ENTRY_PATH: &str = "entries/fuzz.md";

/// Elements that must never reach content HTML: they run script, load other
/// documents, submit data, change how the page resolves URLs, or (svg, math,
/// noscript, template, xmp, style) switch parsers, the usual mutation-XSS route.
pub const DENIED_ELEMENTS: &[&str] = &[
    "applet",
    "base",
    "button",
    "embed",
    "form",
    "frame",
    "frameset",
    "iframe",
    "input",
    "isindex",
    "link",
    "math",
    "meta",
    "noembed",
    "noframes",
    "noscript",
    "object",
    "plaintext",
    "portal",
    "script",
    "select",
    "style",
    "svg",
    "template",
    "textarea",
    "xmp",
];

/// Attributes whose value a browser treats as a URL.
pub const URL_ATTRIBUTES: &[&str] = &[
    "action",
    "archive",
    "background",
    "cite",
    "classid",
    "codebase",
    "data",
    "dynsrc",
    "formaction",
    "href",
    "icon",
    "longdesc",
    "lowsrc",
    "manifest",
    "ping",
    "poster",
    "profile",
    "src",
    "srcset",
    "usemap",
    "xlink:href",
];

/// URL schemes that run script or smuggle a document in.
pub const DANGEROUS_SCHEMES: &[&str] = &["javascript:", "vbscript:", "data:", "livescript:"];

/// The fixed site configuration.
pub fn config() -> Config {
    Config::parse(Path::new("site.toml"), SITE_TOML)
        .unwrap_or_else(|d| panic!("the fixed fuzz config must parse: {d}"))
}

/// Everything parsing needs, built once per process.
pub struct Fixture {
    /// The fixed configuration.
    pub config: Config,
    /// A sanitizer bound to its base URL.
    pub sanitizer: Sanitizer,
}

impl Fixture {
    /// The fixed configuration and its sanitizer.
    pub fn new() -> Fixture {
        let config = config();
        let sanitizer = Sanitizer::new(&config.base_url);
        Fixture { config, sanitizer }
    }

    /// Parses one entry file's bytes.
    pub fn parse(&self, bytes: &[u8]) -> Parsed {
        let ctx = Context {
            config: &self.config,
            sanitizer: &self.sanitizer,
            spool: None,
        };
        vestnik::entry::parse(&ctx, Path::new(ENTRY_PATH), "fuzz.md", bytes)
    }
}

impl Default for Fixture {
    fn default() -> Self {
        Fixture::new()
    }
}

// ---------------------------------------------------------------------------
// front_matter_dates

/// Zones the date strings are resolved in: two with DST on either side of
/// UTC, UTC itself, and the easternmost zone chrono-tz knows.
const ZONES: [chrono_tz::Tz; 4] = [
    chrono_tz::Europe::Berlin,
    chrono_tz::America::New_York,
    chrono_tz::UTC,
    chrono_tz::Pacific::Kiritimati,
];

/// `front_matter_dates`: the bytes as a whole entry file, as the `date` value
/// of an otherwise valid entry (quoted and as a raw TOML literal), and as a
/// string given to [`date::parse_str`]. Nothing panics; every accepted date
/// has a local year from 1 to 9999 and writes RFC 3339 that reads back to the
/// same instant; every diagnostic names the file at a line inside it.
pub fn front_matter_dates(fx: &Fixture, data: &[u8]) {
    check_parse(fx, data);
    let text = String::from_utf8_lossy(data);
    for zone in ZONES {
        match date::parse_str(&text, zone) {
            Ok(dt) => check_date(&dt, &text),
            Err(message) => assert!(!message.is_empty(), "empty date error for {text:?}"),
        }
    }
    let quoted = toml_string(&text);
    check_parse(fx, entry_with_date(&quoted).as_bytes());
    if !text.contains(['\n', '\r']) {
        check_parse(fx, entry_with_date(&text).as_bytes());
    }
}

/// A TOML string holding `s`, escaped as TOML requires.
pub fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// An entry whose `date` line is `date = {value}`.
pub fn entry_with_date(value: &str) -> String {
    format!("+++\ntitle = \"Dated\"\ndate = {value}\nsections = [\"news\"]\n+++\nBody.\n")
}

fn check_date(dt: &chrono::DateTime<chrono::FixedOffset>, input: &str) {
    assert!(
        (1..=9999).contains(&dt.year()),
        "date {input:?} resolved to year {} outside 1..=9999",
        dt.year()
    );
    let written = dt.to_rfc3339();
    let back = chrono::DateTime::parse_from_rfc3339(&written)
        .unwrap_or_else(|e| panic!("{input:?} gave {written:?}, which is not RFC 3339: {e}"));
    assert_eq!(
        back, *dt,
        "{input:?} does not round-trip through {written:?}"
    );
}

/// Parses an entry and checks what every parse must satisfy.
fn check_parse(fx: &Fixture, bytes: &[u8]) -> Parsed {
    let parsed = fx.parse(bytes);
    let text = String::from_utf8_lossy(bytes);
    let lines = text.split('\n').count();
    for d in &parsed.diagnostics {
        assert_eq!(
            d.path,
            Path::new(ENTRY_PATH),
            "diagnostic names another file: {d}"
        );
        assert!(
            d.line >= 1 && d.line <= lines && d.column >= 1,
            "diagnostic position outside the file ({lines} lines): {d}"
        );
        assert!(!d.message.is_empty(), "empty diagnostic message");
    }
    if let Some(e) = &parsed.entry {
        check_date(&e.published, "published");
        if let Some(u) = &e.updated {
            check_date(u, "updated");
        }
    }
    parsed
}

// ---------------------------------------------------------------------------
// entry_to_feeds

/// `entry_to_feeds`: the bytes as one entry file; if an entry results, it is
/// published alone and every feed is rendered in every format, and each
/// output must pass [`check_feed`].
pub fn entry_to_feeds(fx: &Fixture, data: &[u8]) {
    let parsed = check_parse(fx, data);
    let Some(entry) = parsed.entry else {
        return;
    };
    let site = Site::new(fx.config.clone(), vec![Arc::new(entry)], Vec::new());
    let entry = &site.entries[0];
    let keep = render::Retain::Keep;
    let (summary, content) = (
        entry.summary(keep),
        render::content_html(&site, entry, keep),
    );
    for (what, text) in [
        ("title", entry.title.as_str()),
        ("summary", &*summary),
        ("content", &*content),
    ] {
        assert!(
            text.chars().all(vestnik::text::is_xml_char),
            "{what} keeps a character XML forbids: {text:?}"
        );
    }
    assert!(
        !entry.title.is_empty(),
        "an entry with an empty title was accepted"
    );
    assert_eq!(
        entry.title,
        vestnik::text::squash_whitespace(&entry.title),
        "title white space is not squashed"
    );
    let link = entry.link(&site.config);
    assert!(
        matches!(link.scheme(), "http" | "https"),
        "entry link is not http(s): {link}"
    );
    render_and_check(&site);
}

/// Renders every feed of a site in every format and checks each output.
pub fn render_and_check(site: &Site) {
    for feed in site.feeds() {
        for format in Format::ALL {
            let bytes = render::render(&feed, format, render::Retain::Keep);
            let what = format!("/feeds/{}.{}", feed.scope.slug(), format.extension());
            check_feed(&what, format, &bytes);
        }
    }
}

/// One piece of a rendered feed that readers treat as HTML.
#[derive(Debug, Clone)]
pub struct HtmlField {
    /// Where it was found, e.g. `rss item[0] content:encoded`.
    pub location: String,
    /// The decoded HTML, as a reader gets it after XML or JSON parsing.
    pub html: String,
}

/// A rendered feed after strict parsing.
#[derive(Debug, Default)]
pub struct FeedDoc {
    /// Every field a reader renders as HTML.
    pub html: Vec<HtmlField>,
}

/// Parses a rendered feed strictly and checks it is safe: well-formed XML
/// (roxmltree: matching end tags, declared namespaces, only XML characters)
/// or valid JSON; no `script` element or `on*` attribute as XML markup; and
/// every field readers render as HTML passes [`markup_problems`]. Panics with
/// the document on failure; returns the HTML fields for further checks.
pub fn check_feed(what: &str, format: Format, bytes: &[u8]) -> FeedDoc {
    let doc = parse_feed(format, bytes).unwrap_or_else(|e| {
        panic!(
            "{what}: {e}\n--- document ---\n{}",
            String::from_utf8_lossy(bytes)
        )
    });
    for field in &doc.html {
        let problems = markup_problems(&field.html);
        assert!(
            problems.is_empty(),
            "{what}: unsafe HTML in {}: {problems:?}\n--- html ---\n{}",
            field.location,
            field.html
        );
    }
    doc
}

/// Parses a rendered feed; the error says what is malformed.
///
/// The syntax is chosen from the media type and the XML vocabulary from the
/// root element, not by matching on [`Format`], so a format added later is
/// checked without editing this file.
pub fn parse_feed(format: Format, bytes: &[u8]) -> Result<FeedDoc, String> {
    if format.media_type().contains("json") {
        return parse_json_feed(bytes);
    }
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
    let xml = roxmltree::Document::parse(text).map_err(|e| format!("malformed XML: {e}"))?;
    let mut doc = FeedDoc::default();
    let root = xml.root_element();
    for node in root.descendants().filter(roxmltree::Node::is_element) {
        let name = node.tag_name().name();
        if name.eq_ignore_ascii_case("script") {
            return Err(format!("a <{name}> element in the XML"));
        }
        if let Some(a) = node
            .attributes()
            .find(|a| a.name().to_ascii_lowercase().starts_with("on"))
        {
            return Err(format!("event handler attribute {}= on <{name}>", a.name()));
        }
        if let Some(location) = html_location(root.tag_name().name(), node) {
            // Text and CDATA sections together: a writer splits CDATA at `]]>`.
            let html = node
                .children()
                .filter(roxmltree::Node::is_text)
                .filter_map(|n| n.text())
                .collect();
            doc.html.push(HtmlField { location, html });
        }
    }
    Ok(doc)
}

/// Where an XML element holds HTML that readers render, or `None`.
///
/// RSS 2.0 `description` is entity-encoded HTML by the specification, and
/// `content:encoded` is HTML by definition. Atom says so with `type="html"`;
/// `type="xhtml"` would put markup in the XML itself, which the element check
/// above covers. Unknown vocabularies are treated like RSS.
fn html_location(root: &str, node: roxmltree::Node<'_, '_>) -> Option<String> {
    let name = node.tag_name().name();
    let is_html = match root {
        "feed" => node.attribute("type") == Some("html"),
        _ => name == "description" || name == "encoded",
    };
    is_html.then(|| {
        let parent = node
            .parent_element()
            .map(|p| p.tag_name().name())
            .unwrap_or("");
        format!("{root}: {parent}/{name} at byte {}", node.range().start)
    })
}

fn parse_json_feed(bytes: &[u8]) -> Result<FeedDoc, String> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}"))?;
    let mut doc = FeedDoc::default();
    let items = value["items"]
        .as_array()
        .ok_or("JSON Feed without an items array")?;
    for (i, item) in items.iter().enumerate() {
        // JSON Feed 1.1: content_html is HTML; title and summary are plain text.
        if let Some(html) = item["content_html"].as_str() {
            doc.html.push(HtmlField {
                location: format!("json: items[{i}].content_html"),
                html: html.to_owned(),
            });
        }
    }
    Ok(doc)
}

/// Security problems in an HTML fragment, empty when it is safe.
///
/// The fragment goes through html5ever's tokenizer, as a browser's would, so
/// entity-encoded attribute values are decoded and casing does not matter.
/// The tokenizer stays in the data state throughout (no switch to raw text
/// after `<style>` or `<textarea>`), so it sees every tag a browser could
/// see and some it would not: stricter, never laxer.
pub fn markup_problems(html: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for tag in start_tags(html) {
        let name = &*tag.name;
        if DENIED_ELEMENTS.contains(&name) {
            problems.push(format!("<{name}> element"));
        }
        for attr in &tag.attrs {
            let attr_name = &*attr.name.local;
            let value = &*attr.value;
            if attr_name.starts_with("on") {
                problems.push(format!("event handler {attr_name}= on <{name}>"));
            }
            if URL_ATTRIBUTES.contains(&attr_name) && is_dangerous_url(attr_name, value) {
                problems.push(format!("{attr_name}={value:?} on <{name}>"));
            }
            if attr_name == "style" && is_dangerous_style(value) {
                problems.push(format!("style={value:?} on <{name}>"));
            }
        }
    }
    problems
}

/// URL attributes (`href`, `src`) in an HTML fragment that are not absolute
/// URLs, as `(attribute, value)`.
pub fn relative_urls(html: &str) -> Vec<(String, String)> {
    start_tags(html)
        .iter()
        .flat_map(|t| &t.attrs)
        .filter(|a| matches!(&*a.name.local, "href" | "src"))
        .filter(|a| url::Url::parse(&a.value).is_err())
        .map(|a| (a.name.local.to_string(), a.value.to_string()))
        .collect()
}

/// Every start tag of an HTML fragment, attribute values decoded.
pub fn start_tags(html: &str) -> Vec<Tag> {
    tokenize(html).0
}

/// The text of an HTML fragment as a reader shows it: character references
/// decoded, tags and comments dropped.
pub fn html_text(html: &str) -> String {
    tokenize(html).1
}

fn tokenize(html: &str) -> (Vec<Tag>, String) {
    #[derive(Default)]
    struct Sink {
        tags: RefCell<Vec<Tag>>,
        text: RefCell<String>,
    }
    impl TokenSink for Sink {
        type Handle = ();
        fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
            match token {
                Token::TagToken(tag) if tag.kind == TagKind::StartTag => {
                    self.tags.borrow_mut().push(tag);
                }
                Token::CharacterTokens(t) => self.text.borrow_mut().push_str(&t),
                _ => {}
            }
            TokenSinkResult::Continue
        }
    }
    let tokenizer = Tokenizer::new(Sink::default(), TokenizerOpts::default());
    let input = BufferQueue::default();
    input.push_back(StrTendril::from_slice(html));
    // The sink never asks to pause for a script, so one feed consumes everything.
    while let html5ever::TokenizerResult::Script(()) = tokenizer.feed(&input) {}
    tokenizer.end();
    (tokenizer.sink.tags.take(), tokenizer.sink.text.take())
}

/// True when a browser would resolve the value to a script or data URL.
///
/// Browsers drop ASCII tab and newline anywhere in a URL and C0 controls and
/// spaces around it, so `jav&#x09;ascript:` still runs; the same is done here
/// before the scheme is compared.
pub fn is_dangerous_url(attr: &str, value: &str) -> bool {
    let candidates: Vec<&str> = if attr == "srcset" {
        value.split(',').collect()
    } else {
        vec![value]
    };
    candidates.into_iter().any(|candidate| {
        let squeezed: String = candidate
            .chars()
            .filter(|c| !(c.is_ascii_whitespace() || c.is_ascii_control()))
            .collect::<String>()
            .to_ascii_lowercase();
        DANGEROUS_SCHEMES.iter().any(|s| squeezed.starts_with(s))
    })
}

/// True for inline CSS that can run script or load a document in some browser.
fn is_dangerous_style(value: &str) -> bool {
    let squeezed: String = value
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '\\')
        .collect::<String>()
        .to_ascii_lowercase();
    [
        "expression(",
        "javascript:",
        "vbscript:",
        "behavior:",
        "-moz-binding",
        "url(",
    ]
    .iter()
    .any(|bad| squeezed.contains(bad))
}

// ---------------------------------------------------------------------------
// http_request

/// The snapshot the HTTP target answers from: `tests/data/good-min`.
pub fn good_min_snapshot(repo_root: &Path) -> Snapshot {
    let data = repo_root.join("tests/data/good-min");
    let site =
        vestnik::load_site(&data).unwrap_or_else(|d| panic!("{} must load: {d}", data.display()));
    Snapshot::build(Arc::new(site))
}

/// Statuses the handler may answer with.
pub const ALLOWED_STATUSES: [u16; 6] = [200, 304, 400, 404, 405, 406];

/// `http_request`: the first byte picks the method (low 3 bits) and whether
/// the third line is sent as `If-None-Match` or `If-Modified-Since` (bit 3);
/// the rest is `target\naccept-encoding\nvalidator`. Inputs whose target is
/// not a valid URI are skipped, as hyper would reject them before routing.
///
/// Properties: no panic; the status is one of [`ALLOWED_STATUSES`]; a 405
/// names the allowed methods; `Content-Length` matches the body; a GET 200
/// under `/feeds` has a body, and a compressed one decodes to the identity
/// body of the same resource; a 304, or a HEAD answered 200, has no body.
pub fn http_request(snapshot: &Snapshot, data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let method = match selector & 7 {
        0..=2 => Method::GET,
        3 => Method::HEAD,
        4 => Method::POST,
        5 => Method::PUT,
        6 => Method::OPTIONS,
        _ => Method::from_bytes(b"PURGE").unwrap_or(Method::PATCH),
    };
    let mut parts = rest.splitn(3, |&b| b == b'\n');
    let target = parts.next().unwrap_or_default();
    let Ok(uri) = http::Uri::try_from(target) else {
        return;
    };
    let mut builder = Request::builder().method(method.clone()).uri(uri.clone());
    if let Some(v) = parts.next().and_then(|v| HeaderValue::from_bytes(v).ok()) {
        builder = builder.header(ACCEPT_ENCODING, v);
    }
    if let Some(v) = parts.next().and_then(|v| HeaderValue::from_bytes(v).ok()) {
        let name = if selector & 8 == 0 {
            IF_NONE_MATCH
        } else {
            IF_MODIFIED_SINCE
        };
        builder = builder.header(name, v);
    }
    let Ok(request) = builder.body(()) else {
        return;
    };
    let response = vestnik::serve::handler::respond(snapshot, &request);
    let status = response.status();
    let context = || format!("{method} {uri} {:?}", request.headers());
    assert!(
        ALLOWED_STATUSES.contains(&status.as_u16()),
        "status {status} for {}",
        context()
    );
    if status == StatusCode::METHOD_NOT_ALLOWED {
        assert!(response.headers().contains_key(ALLOW), "405 without Allow");
    }
    let length = response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let encoding = response
        .headers()
        .get(CONTENT_ENCODING)
        .map(|v| v.as_bytes().to_vec());
    let body = body_bytes(response.into_body());
    // The handler promises HEAD the headers of GET and no body. A HEAD with a
    // bad path gets its 400 text as a body, which hyper drops on the wire
    // (it never writes a body for HEAD), so only 200 and 304 are held to it.
    let bodiless =
        status == StatusCode::NOT_MODIFIED || (method == Method::HEAD && status == StatusCode::OK);
    if bodiless {
        assert!(body.is_empty(), "{status} with a body for {}", context());
    }
    if method == Method::HEAD || bodiless {
        return;
    }
    if let Some(length) = length {
        assert_eq!(length, body.len(), "Content-Length for {}", context());
    }
    let path = percent_encoding::percent_decode_str(uri.path()).decode_utf8_lossy();
    if status == StatusCode::OK && path.starts_with("/feeds") {
        assert!(!body.is_empty(), "200 with an empty body for {}", context());
        if let Some(coding) = encoding {
            let plain = Request::builder()
                .uri(uri.clone())
                .body(())
                .map(|r| body_bytes(vestnik::serve::handler::respond(snapshot, &r).into_body()))
                .unwrap_or_default();
            let decoded = decompress(&coding, &body)
                .unwrap_or_else(|e| panic!("cannot decode the body of {}: {e}", context()));
            assert!(
                decoded == plain,
                "the {} body of {} does not decode to the identity body",
                String::from_utf8_lossy(&coding),
                context()
            );
        }
    }
}

/// The bytes of a handler body, which is always complete.
pub fn body_bytes(body: vestnik::serve::handler::Body) -> Vec<u8> {
    use http_body_util::BodyExt as _;
    let mut collect = std::pin::pin!(body.collect());
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match collect.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(Ok(collected)) => collected.to_bytes().to_vec(),
        std::task::Poll::Ready(Err(never)) => match never {},
        std::task::Poll::Pending => panic!("a Full body is always ready"),
    }
}

fn decompress(coding: &[u8], body: &[u8]) -> Result<Vec<u8>, String> {
    use std::io::Read as _;
    let mut out = Vec::new();
    match coding {
        b"gzip" => flate2::read::GzDecoder::new(body)
            .read_to_end(&mut out)
            .map_err(|e| e.to_string())?,
        b"br" => brotli::Decompressor::new(body, 4096)
            .read_to_end(&mut out)
            .map_err(|e| e.to_string())?,
        other => {
            return Err(format!(
                "unknown coding {:?}",
                String::from_utf8_lossy(other)
            ));
        }
    };
    Ok(out)
}
