//! HTML pages for people: the home page, one page per section and one per
//! entry. Askama templates in `templates/` are checked at compile time and
//! escape every value unless marked `safe`; only entry bodies are, and those
//! were sanitized by ammonia when the entry was loaded.

use askama::Template;
use chrono::{DateTime, Datelike, FixedOffset};

use super::Format;
use crate::entry::Entry;
use crate::model::{Feed, Scope, Site, news_path, section_path};

/// Entries listed on the home page.
const LATEST_ON_HOME: usize = 20;

/// Words of the interface, in the site's language (Russian or English).
struct Labels {
    subscribe_all: &'static str,
    subscribe: &'static str,
    sections: &'static str,
    entries: &'static str,
    newest: &'static str,
    latest: &'static str,
    empty: &'static str,
    original: &'static str,
}

const RU: Labels = Labels {
    subscribe_all: "Подписаться на все новости",
    subscribe: "Подписаться",
    sections: "Секции",
    entries: "Записей",
    newest: "последняя",
    latest: "Последние новости",
    empty: "В этой секции пока нет записей.",
    original: "Оригинал публикации",
};

const EN: Labels = Labels {
    subscribe_all: "Subscribe to all news",
    subscribe: "Subscribe",
    sections: "Sections",
    entries: "Entries",
    newest: "newest",
    latest: "Latest news",
    empty: "No entries in this section yet.",
    original: "Original article",
};

fn labels(site: &Site) -> &'static Labels {
    if site.config.language.starts_with("ru") {
        &RU
    } else {
        &EN
    }
}

/// A `<link rel="alternate">` for feed autodiscovery.
struct Alternate {
    media_type: &'static str,
    title: String,
    href: String,
}

/// A link with a label, e.g. a subscribe button or a section tag.
struct Link {
    label: String,
    href: String,
    media_type: &'static str,
}

/// An enclosure listed on an entry's page.
struct Attachment {
    label: String,
    href: String,
    media_type: String,
}

struct SectionRow {
    title: String,
    href: String,
    count: usize,
    newest: String,
    feeds: Vec<Link>,
}

struct EntryRow {
    title: String,
    href: String,
    date: String,
    datetime: String,
    sections: Vec<Link>,
}

#[derive(Template)]
#[template(path = "index.html")]
struct IndexPage<'a> {
    lang: &'a str,
    site_title: &'a str,
    home: &'a str,
    description: &'a str,
    labels: &'static Labels,
    alternates: Vec<Alternate>,
    all_feeds: Vec<Link>,
    opml: String,
    sections: Vec<SectionRow>,
    entries: Vec<EntryRow>,
}

#[derive(Template)]
#[template(path = "section.html")]
struct SectionPage<'a> {
    lang: &'a str,
    site_title: &'a str,
    home: &'a str,
    title: &'a str,
    description: String,
    labels: &'static Labels,
    alternates: Vec<Alternate>,
    feeds: Vec<Link>,
    entries: Vec<EntryRow>,
}

#[derive(Template)]
#[template(path = "news.html")]
struct NewsPage<'a> {
    lang: &'a str,
    site_title: &'a str,
    home: &'a str,
    title: &'a str,
    date: String,
    datetime: String,
    sections: Vec<Link>,
    authors: String,
    body: &'a str,
    /// The entry's picture, shown above the body.
    image: Option<&'a crate::entry::Image>,
    /// The enclosures, listed as links after the body.
    attachments: Vec<Attachment>,
    canonical: Option<String>,
    labels: &'static Labels,
    alternates: Vec<Alternate>,
}

const MONTHS_GENITIVE: [&str; 12] = [
    "января",
    "февраля",
    "марта",
    "апреля",
    "мая",
    "июня",
    "июля",
    "августа",
    "сентября",
    "октября",
    "ноября",
    "декабря",
];

const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// A date in the site's zone, written the way the site's readers write it:
/// «22 августа 2022» in Russian, "22 August 2022" otherwise.
pub fn human_date(site: &Site, dt: &DateTime<FixedOffset>) -> String {
    let local = dt.with_timezone(&site.config.timezone);
    let month = local.month0() as usize;
    let name = if site.config.language.starts_with("ru") {
        MONTHS_GENITIVE[month]
    } else {
        MONTHS_EN[month]
    };
    format!("{} {} {}", local.day(), name, local.year())
}

fn feed_links(feed: &Feed<'_>) -> Vec<Link> {
    Format::ALL
        .into_iter()
        .map(|f| Link {
            label: f.label().to_owned(),
            href: feed.url(f.extension()).to_string(),
            media_type: f.media_type(),
        })
        .collect()
}

fn alternates(feed: &Feed<'_>) -> Vec<Alternate> {
    Format::ALL
        .into_iter()
        .map(|f| Alternate {
            media_type: f.media_type(),
            title: format!("{} ({})", feed.title(), f.label()),
            href: feed.url(f.extension()).to_string(),
        })
        .collect()
}

fn section_links(site: &Site, entry: &Entry) -> Vec<Link> {
    entry
        .sections
        .iter()
        .filter_map(|slug| site.config.section(slug))
        .map(|s| Link {
            label: s.title.clone(),
            href: site.config.url(&section_path(&s.slug)).to_string(),
            media_type: "text/html",
        })
        .collect()
}

fn entry_row(site: &Site, e: &Entry) -> EntryRow {
    EntryRow {
        title: e.title.clone(),
        href: site.config.url(&news_path(&e.id)).to_string(),
        date: human_date(site, &e.published),
        datetime: e.published.to_rfc3339(),
        sections: section_links(site, e),
    }
}

/// The home page: sections with counts and subscribe links, the latest entries.
pub fn index(site: &Site) -> Vec<u8> {
    let config = &site.config;
    let all = site.feed(Scope::All);
    // Counts cover every entry, not only those in the feeds (counted once
    // per site); entries are sorted newest first, so a section's newest
    // publication date is its feed's first entry.
    let sections = config
        .sections
        .iter()
        .map(|s| {
            let feed = site.feed(Scope::Section(s));
            let count = site.section_len(&s.slug);
            let newest = feed.entries.first().map(|e| e.published);
            SectionRow {
                title: s.title.clone(),
                href: feed.html_url().to_string(),
                count,
                newest: newest.map(|d| human_date(site, &d)).unwrap_or_default(),
                feeds: feed_links(&feed),
            }
        })
        .collect();
    let page = IndexPage {
        lang: &config.language,
        site_title: &config.title,
        home: config.base_url.as_str(),
        description: &config.description,
        labels: labels(site),
        alternates: alternates(&all),
        all_feeds: feed_links(&all),
        opml: config.url("feeds.opml").to_string(),
        sections,
        entries: site
            .entries
            .iter()
            .take(LATEST_ON_HOME)
            .map(|e| entry_row(site, e))
            .collect(),
    };
    page.render().unwrap_or_default().into_bytes()
}

/// A section's page: its latest entries and its feeds.
pub fn section(feed: &Feed<'_>) -> Vec<u8> {
    let site = feed.site;
    let config = &site.config;
    let Scope::Section(s) = feed.scope else {
        return index(site);
    };
    let page = SectionPage {
        lang: &config.language,
        site_title: &config.title,
        home: config.base_url.as_str(),
        title: &s.title,
        description: s.description.clone().unwrap_or_default(),
        labels: labels(site),
        alternates: alternates(feed),
        feeds: feed_links(feed),
        entries: feed.entries.iter().map(|e| entry_row(site, e)).collect(),
    };
    page.render().unwrap_or_default().into_bytes()
}

/// One entry's page: date, sections, body and source line.
pub fn news(site: &Site, entry: &Entry) -> Vec<u8> {
    let config = &site.config;
    let own = config.url(&news_path(&entry.id));
    let body = entry.content_html();
    let page = NewsPage {
        lang: &config.language,
        site_title: &config.title,
        home: config.base_url.as_str(),
        title: &entry.title,
        date: human_date(site, &entry.published),
        datetime: entry.published.to_rfc3339(),
        sections: section_links(site, entry),
        authors: entry.authors.join(", "),
        body: &body,
        image: entry.image.as_deref(),
        attachments: entry
            .enclosures
            .iter()
            .map(|m| Attachment {
                href: m.url.to_string(),
                media_type: m.mime_type.clone(),
                label: m
                    .url
                    .path_segments()
                    .and_then(|mut s| s.next_back())
                    .map(|name| {
                        percent_encoding::percent_decode_str(name)
                            .decode_utf8_lossy()
                            .into_owned()
                    })
                    .filter(|name| !name.is_empty())
                    .unwrap_or_else(|| m.url.to_string()),
            })
            .collect(),
        canonical: (entry.link != own).then(|| entry.link.to_string()),
        labels: labels(site),
        alternates: alternates(&site.feed(Scope::All)),
    };
    page.render().unwrap_or_default().into_bytes()
}
