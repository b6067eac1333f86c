//! `vestnik import`: news pages saved as plain text, turned into entry files.
//!
//! A saved page is the section menu, the title, a `DD.MM.YYYY` date line, the
//! title again, one body paragraph per line, `Источник: NAME`,
//! `Секции АСДГ: a, b` and the `Возврат к списку` link. The core is pure:
//! [`decode`] turns bytes into text, [`parse_page`] text into a [`Page`], and
//! [`render_page`] a page into the bytes of an entry file. [`run`] is the thin
//! edge that reads the pages, writes the files and draws the progress bar.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use chrono::{Datelike as _, NaiveDate};

use crate::cli::ImportArgs;
use crate::config::Config;
use crate::diagnostic::Diagnostic;
use crate::entry::Source;
use crate::text::{slug_prefix, slugify, squash_whitespace, xml_safe};

/// The file of known news sources inside the data directory.
use crate::config::load_sources;
#[cfg(test)]
use crate::config::parse_sources;

/// The label of the attribution line, `Источник: NAME`.
const SOURCE_LABEL: &str = "Источник";
/// The label of the sections line, `Секции АСДГ: a, b`.
const SECTIONS_LABEL: &str = "Секции АСДГ";
/// The link that ends every saved page.
const BACK_LINK: &str = "Возврат к списку";
/// File names stay well under path limits and readable in a listing.
const MAX_SLUG: usize = 60;

/// What the importer knows besides the page: sections, sources, the fallback section.
#[derive(Debug, Clone)]
pub struct Known {
    /// Every configured section, in site order.
    sections: Vec<KnownSection>,
    sources: Vec<Source>,
    fallback: Option<String>,
}

#[derive(Debug, Clone)]
struct KnownSection {
    /// The title as [`fold`] leaves it, for matching.
    folded: String,
    slug: String,
    title: String,
}

impl Known {
    /// Collects what pages are matched against: the sections of `config`, the
    /// known `sources`, and the `--section` slug used when a page names none.
    pub fn new(config: &Config, sources: Vec<Source>, fallback: Option<String>) -> Known {
        Known {
            sections: config
                .sections
                .iter()
                .map(|s| KnownSection {
                    folded: fold(&s.title),
                    slug: s.slug.clone(),
                    title: s.title.clone(),
                })
                .collect(),
            sources,
            fallback,
        }
    }

    fn slug_of_title(&self, title: &str) -> Option<&str> {
        let folded = fold(title);
        self.sections
            .iter()
            .find(|s| s.folded == folded)
            .map(|s| s.slug.as_str())
    }

    fn has_slug(&self, slug: &str) -> bool {
        self.sections.iter().any(|s| s.slug == slug)
    }

    fn titles(&self) -> String {
        let titles: Vec<&str> = self.sections.iter().map(|s| s.title.as_str()).collect();
        titles.join(", ")
    }

    fn slugs(&self) -> String {
        let slugs: Vec<&str> = self.sections.iter().map(|s| s.slug.as_str()).collect();
        slugs.join(", ")
    }
}

/// One page, parsed and matched against the site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The title, white space squashed.
    pub title: String,
    /// The publication date.
    pub date: NaiveDate,
    /// The date line exactly as the page writes it, e.g. `22.08.2022`.
    pub date_text: String,
    /// Section slugs, in the order the page names them, without repeats.
    pub sections: Vec<String>,
    /// The `Источник:` line, with the URL and feed from `sources.toml` if listed there.
    pub source: Option<Source>,
    /// Body paragraphs as plain text, one per line of the page.
    pub paragraphs: Vec<String>,
}

impl Page {
    /// Where the entry goes, relative to the data directory, with `/` separators:
    /// `entries/YYYY/YYYY-MM-DD-slug.md`.
    pub fn rel_path(&self) -> String {
        format!(
            "entries/{:04}/{}-{}.md",
            self.date.year(),
            self.date.format("%Y-%m-%d"),
            slug_prefix(&slugify(&self.title), MAX_SLUG)
        )
    }
}

/// Decodes a saved page: UTF-8 (a byte-order mark is dropped), UTF-16 with a
/// byte-order mark, and anything else as Windows-1251.
///
/// Pages saved on Windows by a Russian-locale browser or editor are
/// Windows-1251; valid UTF-8 is almost never valid-looking 1251 text and the
/// reverse, so "not UTF-8" is a safe test.
pub fn decode(bytes: &[u8]) -> Cow<'_, str> {
    // Let chains would need Rust 1.88; the crate supports 1.85.
    match encoding_rs::Encoding::for_bom(bytes) {
        Some((encoding, bom)) if encoding != encoding_rs::UTF_8 => {
            return encoding.decode_without_bom_handling(&bytes[bom..]).0;
        }
        _ => {}
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => {
            encoding_rs::WINDOWS_1251
                .decode_without_bom_handling(bytes)
                .0
        }
    }
}

/// Parses the text of one saved page; the error says what is wrong with it.
pub fn parse_page(text: &str, known: &Known) -> Result<Page, String> {
    // Characters XML forbids would be dropped by the loader anyway; dropping
    // them here keeps the written file equal to what gets published.
    let text = xml_safe(text);
    // CRLF splits into a line and an empty one; empty lines never count.
    let lines: Vec<&str> = text.split(['\n', '\r']).map(str::trim).collect();
    let number = |i: usize| i + 1;

    let date_at = lines.iter().position(|l| is_date_shaped(l)).ok_or(
        "no date line (DD.MM.YYYY) found; put the publication date on its own line after the title",
    )?;
    let date_text = lines[date_at].to_owned();
    let date = crate::entry::date::parse_str(&date_text, chrono_tz::UTC)
        .map_err(|m| format!("date line {}: {m}", number(date_at)))?
        .date_naive();

    let title_at = lines[..date_at]
        .iter()
        .rposition(|l| !l.is_empty())
        .ok_or_else(|| {
            format!(
                "no title before the date line {}; put the title on the line before the date",
                number(date_at)
            )
        })?;
    let title = squash_whitespace(lines[title_at]);
    if known.slug_of_title(&title).is_some() {
        // The last item of the section menu sits right above a missing title.
        return Err(format!(
            "line {} before the date is the section menu item \"{title}\", not a title; put the news title on the line before the date",
            number(title_at)
        ));
    }

    let mut after = lines[date_at + 1..]
        .iter()
        .filter(|l| !l.is_empty())
        .peekable();
    if after.peek().is_some_and(|l| squash_whitespace(l) == title) {
        after.next();
    }
    let mut paragraphs = Vec::new();
    let mut source_name = None;
    let mut sections_line = None;
    for line in after {
        if let Some(name) = labelled(line, SOURCE_LABEL) {
            source_name.get_or_insert(name);
        } else if let Some(list) = labelled(line, SECTIONS_LABEL) {
            sections_line.get_or_insert(list);
        } else if *line == BACK_LINK {
            break;
        } else if source_name.is_none() && sections_line.is_none() {
            paragraphs.push(line.to_string());
        }
    }
    if paragraphs.is_empty() {
        return Err(format!(
            "no body paragraphs after the title; the text goes between the title and the «{SOURCE_LABEL}:» line"
        ));
    }

    let named = match sections_line {
        Some(list) => section_slugs(list, known)?,
        None => Vec::new(),
    };
    let sections = match (named.is_empty(), &known.fallback) {
        (false, _) => named,
        (true, Some(slug)) if known.has_slug(slug) => vec![slug.clone()],
        (true, Some(slug)) => {
            return Err(format!(
                "no section named on the page and --section \"{slug}\" is not a section slug in site.toml (known: {})",
                known.slugs()
            ));
        }
        (true, None) => return Err("no section named on the page; pass --section SLUG".into()),
    };

    let source = source_name
        .map(squash_whitespace)
        .filter(|n| !n.is_empty())
        .map(|name| {
            known
                .sources
                .iter()
                .find(|s| s.name == name)
                .cloned()
                .unwrap_or(Source {
                    name,
                    url: None,
                    feed: None,
                })
        });

    let page = Page {
        title,
        date,
        date_text,
        sections,
        source,
        paragraphs,
    };
    if slugify(&page.title).is_empty() {
        return Err(format!(
            "the title \"{}\" has no letters or digits to name the file after; write the title in words",
            page.title
        ));
    }
    Ok(page)
}

/// The bytes of the entry file for `page`, in the shape of the shipped entries.
pub fn render_page(page: &Page) -> String {
    let mut out = String::from("+++\n");
    out.push_str(&format!("title = {}\n", toml_string(&page.title)));
    out.push_str(&format!("date = {}\n", toml_string(&page.date_text)));
    let sections: Vec<String> = page.sections.iter().map(|s| toml_string(s)).collect();
    out.push_str(&format!("sections = [{}]\n", sections.join(", ")));
    if let Some(source) = &page.source {
        out.push_str("\n[source]\n");
        out.push_str(&format!("name = {}\n", toml_string(&source.name)));
        if let Some(url) = &source.url {
            out.push_str(&format!("url = {}\n", toml_string(url.as_str())));
        }
        if let Some(feed) = &source.feed {
            out.push_str(&format!("feed = {}\n", toml_string(feed.as_str())));
        }
    }
    out.push_str("+++\n");
    for p in &page.paragraphs {
        out.push('\n');
        out.push_str(&escape_paragraph(p));
        out.push('\n');
    }
    out
}

/// A TOML basic string: double quotes, with `\`, `"` and control characters escaped.
///
/// Written by hand because the `toml` crate picks a literal string (single
/// quotes) for text containing `"`, and the shipped entries use one form.
pub fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A line of plain text as a Markdown paragraph that renders to the same text.
///
/// A leading `#`, `>`, `-`, `+` or `*`, or a leading `1.`/`1)` number, would
/// start a heading, quote or list, so it is backslash-escaped (`1\.` for
/// numbers, since a backslash before a digit is literal). Inline markup
/// characters (`\`, `` ` ``, `*`, `_`, `[`, `~`) are escaped anywhere, `<` is
/// written `&lt;` so nothing becomes HTML, and an `&` that starts an entity
/// such as `&laquo;` is written `&amp;`.
pub fn escape_paragraph(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + 8);
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    let mut rest = line;
    if (1..=9).contains(&digits)
        && matches!(line.as_bytes().get(digits), Some(b'.' | b')'))
        && line[digits + 1..]
            .chars()
            .next()
            .is_none_or(char::is_whitespace)
    {
        out.push_str(&line[..digits]);
        out.push('\\');
        rest = &line[digits..];
    } else if line.starts_with(['#', '>', '-', '+']) {
        // `*` is escaped below like everywhere else.
        out.push('\\');
    }
    for (i, c) in rest.char_indices() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '&' if starts_entity(&rest[i + 1..]) => out.push_str("&amp;"),
            c => out.push(c),
        }
    }
    out
}

/// True when the text after an `&` would make CommonMark read an entity:
/// `name;`, `#123;` or `#x1F;`.
fn starts_entity(after: &str) -> bool {
    let Some(end) = after.find(';') else {
        return false;
    };
    let body = &after[..end];
    let numeric = body
        .strip_prefix('#')
        .map(|n| n.strip_prefix(['x', 'X']).map_or(n, |h| h));
    match numeric {
        Some(n) => !n.is_empty() && n.bytes().all(|b| b.is_ascii_hexdigit()),
        None => !body.is_empty() && body.bytes().all(|b| b.is_ascii_alphanumeric()),
    }
}

/// True for a line that is exactly `DD.MM.YYYY`.
fn is_date_shaped(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() == 10
        && b[2] == b'.'
        && b[5] == b'.'
        && [0, 1, 3, 4, 6, 7, 8, 9]
            .iter()
            .all(|&i| b[i].is_ascii_digit())
}

/// The value of a `LABEL: value` line, trimmed.
fn labelled<'a>(line: &'a str, label: &str) -> Option<&'a str> {
    line.strip_prefix(label)?
        .trim_start()
        .strip_prefix(':')
        .map(str::trim)
}

/// The slugs of the sections a `Секции АСДГ:` line names.
///
/// A title may itself hold a comma («По вопросам ГО,ЧС и ОПБ»), so at each
/// point the longest run of comma-separated parts that names a section wins.
fn section_slugs(list: &str, known: &Known) -> Result<Vec<String>, String> {
    let parts: Vec<&str> = list.split(',').collect();
    let mut slugs: Vec<String> = Vec::new();
    let mut unknown: Vec<String> = Vec::new();
    let mut i = 0;
    while i < parts.len() {
        if parts[i].trim().is_empty() {
            i += 1;
            continue;
        }
        let found = (i + 1..=parts.len())
            .rev()
            .find_map(|j| known.slug_of_title(&parts[i..j].join(",")).map(|s| (j, s)));
        match found {
            Some((j, slug)) => {
                if !slugs.iter().any(|s| s == slug) {
                    slugs.push(slug.to_owned());
                }
                i = j;
            }
            None => {
                unknown.push(format!("\"{}\"", squash_whitespace(parts[i])));
                i += 1;
            }
        }
    }
    if unknown.is_empty() {
        Ok(slugs)
    } else {
        Err(format!(
            "unknown section {} on the «{SECTIONS_LABEL}:» line (known: {}); fix the name on the page or add the section to site.toml",
            unknown.join(", "),
            known.titles()
        ))
    }
}

/// A title folded for matching: white space squashed (none around commas),
/// lowercase, and «ё» read as «е», as editors write either.
fn fold(s: &str) -> String {
    squash_whitespace(s)
        .replace(" ,", ",")
        .replace(", ", ",")
        .to_lowercase()
        .replace('ё', "е")
}

/// What happened to one page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The entry was written to this path.
    Imported(PathBuf),
    /// `--dry-run`: the entry would be written to this path with this content.
    WouldWrite {
        /// Where the entry would go.
        path: PathBuf,
        /// The whole file.
        content: String,
    },
    /// Nothing written: this path already exists (or an earlier page of the
    /// same run claims it).
    Skipped(PathBuf),
    /// Nothing written, for this reason.
    Problem(String),
}

/// One input file and what happened to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReport {
    /// The page file as given on the command line.
    pub file: PathBuf,
    /// What happened.
    pub outcome: Outcome,
}

impl FileReport {
    /// True when the page had a problem and nothing was written for it.
    pub fn is_problem(&self) -> bool {
        matches!(self.outcome, Outcome::Problem(_))
    }
}

impl fmt::Display for FileReport {
    /// `FILE: imported as PATH`, `FILE: skipped, PATH already exists`,
    /// `FILE: REASON`, or `FILE: would write PATH` followed by the content.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.display();
        match &self.outcome {
            Outcome::Imported(path) => write!(f, "{file}: imported as {}", path.display()),
            Outcome::WouldWrite { path, content } => {
                write!(f, "{file}: would write {}\n{content}", path.display())
            }
            Outcome::Skipped(path) => {
                write!(f, "{file}: skipped, {} already exists", path.display())
            }
            Outcome::Problem(reason) => write!(f, "{file}: {reason}"),
        }
    }
}

/// What one `vestnik import` run did, file by file, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// One report per input file.
    pub files: Vec<FileReport>,
    /// True when nothing was written (`--dry-run`).
    pub dry_run: bool,
}

impl Report {
    fn count(&self, pred: impl Fn(&Outcome) -> bool) -> usize {
        self.files.iter().filter(|f| pred(&f.outcome)).count()
    }

    /// Pages written, or that would be written in a dry run.
    pub fn imported(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Imported(_) | Outcome::WouldWrite { .. }))
    }

    /// Pages skipped because their file exists.
    pub fn skipped(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Skipped(_)))
    }

    /// Pages with a problem.
    pub fn problems(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Problem(_)))
    }

    /// One line: `imported N, skipped N (existing files), problems N`.
    pub fn summary(&self) -> String {
        let counts = format!(
            "skipped {} (existing files), problems {}",
            self.skipped(),
            self.problems()
        );
        if self.dry_run {
            format!(
                "dry run: would import {}, {counts}; nothing written",
                self.imported()
            )
        } else {
            format!("imported {}, {counts}", self.imported())
        }
    }
}

/// Runs `vestnik import`: every page in `args.files` becomes an entry file in
/// `args.data`, except pages with a problem and files that already exist.
///
/// Only a broken `site.toml` or `sources.toml` stops the run; a page's problem
/// is reported and the other pages are still imported. A progress bar is drawn
/// on stderr when it is a terminal.
pub fn run(args: &ImportArgs) -> Result<Report, Diagnostic> {
    let config = Config::load(&args.data)?;
    let sources = load_sources(&args.data)?;
    let known = Known::new(&config, sources, args.section.clone());

    let bar = crate::progress::bar(args.files.len(), "{bar:40} {pos}/{len} {wide_msg}");
    // In a dry run nothing lands on disk, so paths claimed by earlier pages
    // of this run are remembered to report the same skips a real run would.
    let mut claimed: HashSet<PathBuf> = HashSet::new();
    let mut files = Vec::with_capacity(args.files.len());
    for file in &args.files {
        bar.set_message(file.display().to_string());
        let outcome = match import_one(file, &known) {
            Err(reason) => Outcome::Problem(reason),
            Ok((rel, content)) => {
                let path = args.data.join(rel);
                if args.dry_run {
                    if path.exists() || !claimed.insert(path.clone()) {
                        Outcome::Skipped(path)
                    } else {
                        Outcome::WouldWrite { path, content }
                    }
                } else {
                    write_new(&path, &content)
                }
            }
        };
        files.push(FileReport {
            file: file.clone(),
            outcome,
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(Report {
        files,
        dry_run: args.dry_run,
    })
}

/// Reads and converts one page: its path relative to the data directory and its content.
fn import_one(file: &Path, known: &Known) -> Result<(String, String), String> {
    let bytes = std::fs::read(file).map_err(|e| format!("cannot read the page: {e}"))?;
    let page = parse_page(&decode(&bytes), known)?;
    Ok((page.rel_path(), render_page(&page)))
}

/// Writes a new file, never replacing one; `create_new` makes the check and
/// the creation one step, so a file that appears meanwhile is not overwritten.
fn write_new(path: &Path, content: &str) -> Outcome {
    if let Some(dir) = path.parent() {
        if let Err(e) = std::fs::create_dir_all(dir) {
            return Outcome::Problem(format!("cannot create {}: {e}", dir.display()));
        }
    }
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Outcome::Skipped(path.to_path_buf());
        }
        Err(e) => return Outcome::Problem(format!("cannot create {}: {e}", path.display())),
    };
    match file.write_all(content.as_bytes()) {
        Ok(()) => Outcome::Imported(path.to_path_buf()),
        Err(e) => {
            // A half-written entry would be published broken; leave nothing.
            let _ = std::fs::remove_file(path);
            Outcome::Problem(format!("cannot write {}: {e}", path.display()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SITE: &str = r#"
title = "Тест"
base_url = "http://example.org/"
language = "ru"
timezone = "Asia/Novosibirsk"
[[sections]]
slug = "transport"
title = "Городской пассажирский транспорт"
[[sections]]
slug = "go-chs"
title = "По вопросам ГО,ЧС и ОПБ"
[[sections]]
slug = "sport"
title = "Муниципальный спорт и физическая культура"
"#;

    fn known(fallback: Option<&str>) -> Known {
        let config = Config::parse(Path::new("site.toml"), SITE).unwrap();
        let sources = parse_sources(
            Path::new("sources.toml"),
            "[[sources]]\nname = \"ТАСС\"\nurl = \"https://tass.ru/\"\nfeed = \"https://tass.ru/rss/v2.xml\"\n",
        )
        .unwrap();
        Known::new(&config, sources, fallback.map(str::to_owned))
    }

    /// A page in the layout of the saved pages, with `body` between the dates
    /// block and the trailing navigation.
    fn page(body: &str) -> String {
        format!(
            "Секции\n \nГородской пассажирский транспорт\nМуниципальный спорт и физическая культура\n\nНовые автобусы\n\n14.09.2022\n\nНовые автобусы\n\n{body}\n\nВозврат к списку"
        )
    }

    fn parse(text: &str) -> Result<Page, String> {
        parse_page(text, &known(None))
    }

    /// Asserts the page is rejected with a reason starting with `expected`.
    fn check_problem(text: &str, fallback: Option<&str>, expected: &str) {
        let got = parse_page(text, &known(fallback)).unwrap_err();
        assert!(
            got.starts_with(expected),
            "got {got:?}\nexpected prefix {expected:?}"
        );
    }

    #[test]
    fn a_full_page() {
        let p = parse(&page(
            "Первый абзац.\nВторой абзац.\n\nИсточник: ТАСС\n\nСекции АСДГ: Городской пассажирский транспорт",
        ))
        .unwrap();
        assert_eq!(p.title, "Новые автобусы");
        assert_eq!(p.date, NaiveDate::from_ymd_opt(2022, 9, 14).unwrap());
        assert_eq!(p.date_text, "14.09.2022");
        assert_eq!(p.sections, ["transport"]);
        assert_eq!(p.paragraphs, ["Первый абзац.", "Второй абзац."]);
        let s = p.source.clone().unwrap();
        assert_eq!(s.name, "ТАСС");
        assert_eq!(s.url.unwrap().as_str(), "https://tass.ru/");
        assert_eq!(s.feed.unwrap().as_str(), "https://tass.ru/rss/v2.xml");
        assert_eq!(p.rel_path(), "entries/2022/2022-09-14-novye-avtobusy.md");
        assert_eq!(
            render_page(&p),
            "+++\ntitle = \"Новые автобусы\"\ndate = \"14.09.2022\"\nsections = [\"transport\"]\n\n[source]\nname = \"ТАСС\"\nurl = \"https://tass.ru/\"\nfeed = \"https://tass.ru/rss/v2.xml\"\n+++\n\nПервый абзац.\n\nВторой абзац.\n"
        );
    }

    #[test]
    fn structure_variants() {
        // CRLF, an unknown source (no URL), sections in page order, the
        // comma inside a title, case and spacing, a repeat.
        let p = parse(&page("Текст.\r\nИсточник:  Пресс-служба  мэрии \r\nСекции АСДГ: по вопросам  ГО, ЧС и ОПБ,городской пассажирский транспорт, По вопросам ГО,ЧС и ОПБ").replace('\n', "\r\n")).unwrap();
        assert_eq!(p.sections, ["go-chs", "transport"]);
        assert_eq!(
            p.source,
            Some(Source {
                name: "Пресс-служба мэрии".into(),
                url: None,
                feed: None
            })
        );
        assert_eq!(p.paragraphs, ["Текст."]);

        // No source line: the body runs to the sections line; no [source].
        let p = parse(&page(
            "Текст.\nСекции АСДГ: Муниципальный спорт и физическая культура",
        ))
        .unwrap();
        assert_eq!(
            (p.source.as_ref(), p.sections.as_slice()),
            (None, &["sport".to_owned()][..])
        );
        assert!(!render_page(&p).contains("[source]"));

        // A different line after the date is the first paragraph, not a title.
        let p = parse("Меню\nЗаголовок\n01.02.2023\nСразу текст.\nИсточник: ТАСС\nСекции АСДГ: Муниципальный спорт и физическая культура").unwrap();
        assert_eq!(p.title, "Заголовок");
        assert_eq!(p.paragraphs, ["Сразу текст."]);

        // No labels at all: the body ends at the back link; --section fills in.
        let p = parse_page(&page("Текст."), &known(Some("sport"))).unwrap();
        assert_eq!(
            (p.sections.as_slice(), p.paragraphs.len()),
            (&["sport".to_owned()][..], 1)
        );
    }

    #[test]
    fn problems_say_what_to_do() {
        let body = "Текст.\nИсточник: ТАСС\nСекции АСДГ: Городской пассажирский транспорт";
        check_problem(
            &page(body).replace("14.09.2022", "14 сентября 2022"),
            None,
            "no date line (DD.MM.YYYY) found",
        );
        check_problem(
            &page(body).replace("14.09.2022", "31.02.2022"),
            None,
            "date line 8: no such date: month 02 of 2022 has only 28 days (31.02.2022)",
        );
        check_problem(
            "\n14.09.2022\nТекст.",
            None,
            "no title before the date line 2",
        );
        check_problem(
            "Муниципальный спорт и физическая культура\n14.09.2022\nТекст.",
            Some("sport"),
            "line 1 before the date is the section menu item",
        );
        check_problem(&page("Источник: ТАСС"), Some("sport"), "no body paragraphs");
        check_problem(
            &page("Текст.\nСекции АСДГ: "),
            None,
            "no section named on the page; pass --section SLUG",
        );
        check_problem(
            &page("Текст."),
            Some("sprot"),
            "no section named on the page and --section \"sprot\" is not a section slug in site.toml (known: transport, go-chs, sport)",
        );
        check_problem(
            &page(
                "Текст.\nСекции АСДГ: Транспорт, Спорт, Муниципальный спорт и физическая культура",
            ),
            Some("sport"),
            "unknown section \"Транспорт\", \"Спорт\" on the «Секции АСДГ:» line (known: Городской пассажирский транспорт, По вопросам ГО,ЧС и ОПБ, Муниципальный спорт и физическая культура)",
        );
        check_problem(
            "Меню\n«»\n14.09.2022\nТекст.",
            Some("sport"),
            "the title \"«»\" has no letters or digits",
        );
    }

    #[test]
    fn decode_utf8_bom_1251_and_utf16() {
        let text = "Заголовок «ЁЖ» — 22.08.2022\r\n";
        assert_eq!(decode(text.as_bytes()), text);
        assert_eq!(decode(format!("\u{feff}{text}").as_bytes()), text);
        let (cp1251, _, lossy) = encoding_rs::WINDOWS_1251.encode(text);
        assert!(!lossy);
        assert_eq!(decode(&cp1251), text);
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        assert_eq!(decode(&utf16), text);
    }

    #[test]
    fn toml_strings_round_trip() {
        for s in [
            "АНО «Диалог» — „Госпаблики“",
            "a \"quoted\" \\ back\\slash",
            "tab\tand \u{1}\u{7f} controls",
            "it's",
        ] {
            let written = toml_string(s);
            assert!(written.starts_with('"'), "{written}");
            let parsed: toml::Table = toml::from_str(&format!("v = {written}")).unwrap();
            assert_eq!(parsed["v"].as_str(), Some(s), "{written}");
        }
        assert_eq!(toml_string("«Диалог»"), "\"«Диалог»\"");
    }

    /// What the entry loader's Markdown renderer shows for a paragraph.
    fn rendered(line: &str) -> String {
        let sanitizer =
            crate::entry::html::Sanitizer::new(&url::Url::parse("http://example.org/").unwrap());
        crate::entry::html::render(&escape_paragraph(line), &sanitizer).html
    }

    #[test]
    fn paragraphs_render_literally() {
        let cases = [
            (
                "Обычный текст, 100% городов.",
                "Обычный текст, 100% городов.",
            ),
            ("# не заголовок", "\\# не заголовок"),
            ("> не цитата", "\\> не цитата"),
            ("- не список", "\\- не список"),
            ("+ не список", "\\+ не список"),
            ("* не список", "\\* не список"),
            ("---", "\\---"),
            ("1. не список", "1\\. не список"),
            ("2022) год", "2022\\) год"),
            ("22.08.2022 состоялось", "22.08.2022 состоялось"),
            (
                "a <b>c</b> & d &laquo; &#171;",
                "a &lt;b>c&lt;/b> & d &amp;laquo; &amp;#171;",
            ),
            (
                "*важно* и _тоже_ `код` [ссылка](x) ~~нет~~ C:\\dir",
                "\\*важно\\* и \\_тоже\\_ \\`код\\` \\[ссылка](x) \\~\\~нет\\~\\~ C:\\\\dir",
            ),
        ];
        for (line, escaped) in cases {
            assert_eq!(escape_paragraph(line), escaped, "{line}");
            let html = rendered(line);
            let expected = format!("<p>{}</p>\n", crate::entry::html::escape(line));
            assert_eq!(html, expected, "{line} -> {escaped}");
        }
    }

    #[test]
    fn sources_toml_is_validated() {
        let err = parse_sources(
            Path::new("sources.toml"),
            "[[sources]]\nname = \"A\"\nurl = \"ura.news\"\n",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "sources.toml:3:7: source url \"ura.news\" must be an absolute http(s) URL"
        );
        let err =
            parse_sources(Path::new("sources.toml"), "[[sources]]\nnam = \"A\"\n").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("sources.toml:2:1: unknown field `nam`"),
            "{err}"
        );
    }
}
