//! Source attribution in every variant, in both formats: the visible line,
//! RSS `<source>`/`dc:source`, Atom `rel="via"`/`atom:source`, and authors.

mod common;

use vestnik::model::Scope;
use vestnik::render::{Format, render};

fn feeds() -> (String, String) {
    let site = vestnik::load_site(&common::root().join("tests/data/attribution")).unwrap();
    assert!(site.diagnostics.is_empty(), "{:#?}", site.diagnostics);
    let feed = site.feed(Scope::All);
    let text = |f| String::from_utf8(render(&feed, f, vestnik::render::Retain::Keep)).unwrap();
    (text(Format::Rss), text(Format::Atom))
}

/// The element of `doc` between `open` and `close` that contains `needle`.
fn part<'a>(doc: &'a str, open: &str, close: &str, needle: &str) -> &'a str {
    doc.split(open)
        .skip(1)
        .map(|s| s.split(close).next().unwrap())
        .find(|s| s.contains(needle))
        .unwrap_or_else(|| panic!("no {open} containing {needle}"))
}

#[test]
fn source_with_a_feed() {
    let (rss, atom) = feeds();
    let item = part(&rss, "<item>", "</item>", "With feed");
    assert!(
        item.contains("<source url=\"https://tass.ru/rss/v2.xml\">ТАСС</source>"),
        "{item}"
    );
    assert!(!item.contains("dc:source"), "{item}");
    assert!(
        item.contains(
            "Источник: <a href=\"https://tass.ru/x\" rel=\"noopener noreferrer\">ТАСС</a>"
        )
    );

    let entry = part(&atom, "<entry>", "</entry>", "With feed");
    assert!(
        entry.contains("<link href=\"https://tass.ru/x\" rel=\"via\" title=\"ТАСС\"/>"),
        "{entry}"
    );
    let source = part(entry, "<source>", "</source>", "ТАСС");
    assert!(
        source.contains("<id>https://tass.ru/rss/v2.xml</id>"),
        "{source}"
    );
    assert!(source.contains("<title>ТАСС</title>"), "{source}");
    assert!(
        source.contains("<link href=\"https://tass.ru/rss/v2.xml\" rel=\"self\"/>"),
        "{source}"
    );
}

#[test]
fn source_with_a_url_only() {
    let (rss, atom) = feeds();
    let item = part(&rss, "<item>", "</item>", "URL only");
    assert!(
        item.contains("<dc:source>https://ura.news/</dc:source>"),
        "{item}"
    );
    assert!(!item.contains("<source"), "{item}");
    let entry = part(&atom, "<entry>", "</entry>", "URL only");
    assert!(entry.contains("rel=\"via\""), "{entry}");
    assert!(!entry.contains("<source>"), "{entry}");
}

#[test]
fn source_with_a_name_only() {
    let (rss, atom) = feeds();
    let item = part(&rss, "<item>", "</item>", "Name only");
    assert!(
        item.contains("<p class=\"source\">Источник: Пресс-служба мэрии</p>"),
        "{item}"
    );
    assert!(
        !item.contains("dc:source") && !item.contains("<source"),
        "{item}"
    );
    let entry = part(&atom, "<entry>", "</entry>", "Name only");
    assert!(entry.contains("Источник: Пресс-служба мэрии"), "{entry}");
    assert!(!entry.contains("rel=\"via\""), "{entry}");
}

#[test]
fn no_source_and_authors() {
    let (rss, atom) = feeds();
    let item = part(&rss, "<item>", "</item>", "No source");
    assert!(!item.contains("Источник"), "{item}");
    assert!(
        item.contains("<dc:creator>Иванова</dc:creator>")
            && item.contains("<dc:creator>Петров</dc:creator>")
    );
    let entry = part(&atom, "<entry>", "</entry>", "No source");
    assert!(
        entry.contains("<name>Иванова</name>") && entry.contains("<name>Петров</name>"),
        "{entry}"
    );
    // Without authors, an Atom entry inherits the feed's author (the site title here).
    let other = part(&atom, "<entry>", "</entry>", "Name only");
    assert!(!other.contains("<author>"), "{other}");
    assert!(
        atom.contains("<author>\n    <name>Test fixture</name>"),
        "{atom}"
    );
}
