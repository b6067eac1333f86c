//! HTML pages for people: the home page and its later pages, one page per
//! section (and its later pages), one per entry, and the page that explains
//! how to subscribe. Askama templates in `templates/` are checked at compile
//! time and escape every value unless marked `safe`; only entry bodies are,
//! and those were sanitized by ammonia when the entry was loaded.

use askama::Template;
use chrono::{DateTime, Datelike, FixedOffset, Timelike};
use url::Url;

use super::Format;
use crate::entry::Entry;
use crate::model::{Feed, Scope, Site};
use crate::urls;

/// The pages' one style sheet, inline in every page's `<style>` element
/// (exactly these bytes, so [`CONTENT_SECURITY_POLICY`] can name its hash).
pub const STYLE: &str = concat!("\n", include_str!("../../templates/style.css"));

/// The `Content-Security-Policy` of every HTML page: nothing runs and nothing
/// loads but pictures and the page's own style, allowed by its SHA-256 (no
/// `'unsafe-inline'`); no frames around it, no forms, no `<base>`. Pictures
/// may come from any http(s) host, since entry bodies may show them.
pub static CONTENT_SECURITY_POLICY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    use base64::Engine as _;
    use sha2::Digest as _;
    let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(STYLE));
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; img-src http: https:; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
});

/// Entries per page of the home page: its first page lists the newest
/// `HOME_PAGE_SIZE`, `/?page=2` the next ones, and so on.
pub const HOME_PAGE_SIZE: usize = 20;

/// Words of the interface, in the site's language (Russian or English).
struct Labels {
    subscribe_all: &'static str,
    subscribe: &'static str,
    subscribe_sections: &'static str,
    sections: &'static str,
    entries: &'static str,
    newest: &'static str,
    latest: &'static str,
    all_news: &'static str,
    empty: &'static str,
    original: &'static str,
    /// Before the name of the source an article was reprinted from.
    source: &'static str,
    /// `serve --preview`: the mark of a draft.
    draft: &'static str,
    /// `serve --preview`: before the due time of a scheduled entry.
    scheduled: &'static str,
    /// Before the date an entry was last updated.
    updated: &'static str,
    /// Before the time of an update made on the day of publication.
    at: &'static str,
    /// The title of the subscribe page and of the links to it.
    how_to: &'static str,
    /// The OPML link on a section's page, which lists every section.
    opml_all: &'static str,
    /// «Страница 2 из 5»: the words around the two numbers.
    page: &'static str,
    of: &'static str,
    /// The pager's label and its two links.
    pages: &'static str,
    newer: &'static str,
    older: &'static str,
    months: &'static [&'static str; 12],
    guide: &'static Guide,
}

const RU: Labels = Labels {
    subscribe_all: "Подписаться на все новости",
    subscribe: "Подписаться",
    subscribe_sections: "Подписаться на секции этой новости",
    sections: "Секции",
    entries: "Записей",
    newest: "последняя",
    latest: "Последние новости",
    all_news: "Все новости",
    empty: "В этой секции пока нет записей.",
    original: "Оригинал публикации",
    source: "Источник",
    draft: "черновик",
    scheduled: "запланировано на",
    updated: "обновлено",
    at: "в",
    how_to: "Как подписаться",
    opml_all: "OPML: все секции",
    page: "Страница",
    of: "из",
    pages: "Страницы",
    newer: "← Новее",
    older: "Раньше →",
    months: &MONTHS_GENITIVE,
    guide: &GUIDE_RU,
};

const EN: Labels = Labels {
    subscribe_all: "Subscribe to all news",
    subscribe: "Subscribe",
    subscribe_sections: "Subscribe to this entry's sections",
    sections: "Sections",
    entries: "Entries",
    newest: "newest",
    latest: "Latest news",
    all_news: "All news",
    empty: "No entries in this section yet.",
    original: "Original article",
    source: "Source",
    draft: "draft",
    scheduled: "scheduled for",
    updated: "updated",
    at: "at",
    how_to: "How to subscribe",
    opml_all: "OPML: every section",
    page: "Page",
    of: "of",
    pages: "Pages",
    newer: "← Newer",
    older: "Older →",
    months: &MONTHS_EN,
    guide: &GUIDE_EN,
};

/// The text of the subscribe page, in the site's language. Plain text:
/// the template places the site's own feed and OPML links between the parts.
struct Guide {
    intro: &'static str,
    readers_title: &'static str,
    /// Feed readers, each with its site and what kind of program it is.
    readers: &'static [(&'static str, &'static str, &'static str)],
    url_title: &'static str,
    url_text: &'static str,
    url_discovery: &'static str,
    all_feeds: &'static str,
    section_feeds: &'static str,
    opml_title: &'static str,
    opml_text: &'static str,
    formats_title: &'static str,
    /// Each format's label and what it is for, in `Format::ALL` order.
    formats: [&'static str; 3],
    formats_choice: &'static str,
}

const GUIDE_RU: Guide = Guide {
    intro: "Подписка — это лента новостей в программе-читалке (её называют RSS-ридером или агрегатором). Читалка сама проверяет сайт и показывает новые записи, как почтовый ящик показывает новые письма: не нужно заходить на сайт и искать, что появилось, и не нужны ни регистрация, ни электронная почта.",
    readers_title: "1. Выберите читалку",
    readers: &[
        (
            "Miniflux",
            "https://miniflux.app/",
            "простая читалка в браузере; её ставят на свой сервер или берут готовую по подписке",
        ),
        (
            "FreshRSS",
            "https://freshrss.org/",
            "бесплатная читалка в браузере, которую ставят на свой сервер; есть приложения для телефона",
        ),
        (
            "Feedly",
            "https://feedly.com/",
            "сервис в браузере и приложение для телефона; достаточно зарегистрироваться",
        ),
        (
            "Inoreader",
            "https://www.inoreader.com/",
            "сервис в браузере и приложение для телефона; достаточно зарегистрироваться",
        ),
        (
            "Thunderbird",
            "https://www.thunderbird.net/",
            "почтовая программа для компьютера, которая читает и ленты",
        ),
        (
            "NetNewsWire",
            "https://netnewswire.com/",
            "бесплатная читалка для Mac, iPhone и iPad",
        ),
    ],
    url_title: "2. Добавьте адрес ленты",
    url_text: "Скопируйте адрес ленты: нажмите на кнопку «RSS», «Atom» или «JSON Feed» правой кнопкой мыши (на телефоне — долгим нажатием) и выберите «Копировать адрес ссылки». Затем в читалке нажмите «Добавить подписку» (Add feed, Subscribe, «+») и вставьте адрес.",
    url_discovery: "Большинству читалок хватит и адреса любой страницы этого сайта: они сами найдут на ней ленты.",
    all_feeds: "Все новости",
    section_feeds: "Ленты отдельных секций — на главной странице и на странице каждой секции.",
    opml_title: "3. Все секции сразу: OPML",
    opml_text: "OPML — это файл со списком лент. Сохраните его и импортируйте в читалке (обычно «Импорт OPML» или Import в настройках): читалка подпишется на ленту каждой секции и на ленту всех новостей. Файл есть в трёх вариантах, по формату лент внутри:",
    formats_title: "Какой формат выбрать",
    formats: [
        "самый распространённый формат, его понимает любая читалка.",
        "более строгий стандарт (RFC 4287) с точной датой обновления каждой записи; его понимают почти все читалки.",
        "та же лента в JSON; удобна программам и читалкам, которые её поддерживают (например, Miniflux и NetNewsWire).",
    ],
    formats_choice: "Во всех трёх форматах одни и те же записи целиком. Если не знаете, что выбрать, берите RSS.",
};

const GUIDE_EN: Guide = Guide {
    intro: "Subscribing means following this site's news in a feed reader (also called an RSS reader or aggregator). The reader checks the site for you and shows new entries the way a mailbox shows new mail: no need to visit the site to see what is new, and no account or e-mail address here.",
    readers_title: "1. Pick a feed reader",
    readers: &[
        (
            "Miniflux",
            "https://miniflux.app/",
            "a minimal reader in the browser, self-hosted or as a paid hosted service",
        ),
        (
            "FreshRSS",
            "https://freshrss.org/",
            "a free reader in the browser that you host yourself; phone apps can sync with it",
        ),
        (
            "Feedly",
            "https://feedly.com/",
            "a web service with phone apps; just sign up",
        ),
        (
            "Inoreader",
            "https://www.inoreader.com/",
            "a web service with phone apps; just sign up",
        ),
        (
            "Thunderbird",
            "https://www.thunderbird.net/",
            "the desktop mail program, which reads feeds too",
        ),
        (
            "NetNewsWire",
            "https://netnewswire.com/",
            "a free reader for Mac, iPhone and iPad",
        ),
    ],
    url_title: "2. Add a feed's address",
    url_text: "Copy a feed's address: right-click the \"RSS\", \"Atom\" or \"JSON Feed\" button (long-press on a phone) and choose \"Copy link address\". Then, in the reader, choose \"Add feed\" (or \"Subscribe\", or \"+\") and paste it.",
    url_discovery: "Most readers also accept the address of any page of this site and find its feeds themselves.",
    all_feeds: "All news",
    section_feeds: "Each section's feeds are on the home page and on the section's own page.",
    opml_title: "3. Every section at once: OPML",
    opml_text: "OPML is a file that lists feeds. Save it and import it in your reader (usually \"Import OPML\" in its settings): the reader subscribes to every section's feed and to the feed of all news. There are three versions, one per feed format:",
    formats_title: "Which format to choose",
    formats: [
        "the most widespread format; every reader understands it.",
        "a stricter standard (RFC 4287) with each entry's exact update time; almost every reader understands it.",
        "the same feed as JSON, handy for programs and for the readers that support it (Miniflux and NetNewsWire among them).",
    ],
    formats_choice: "All three carry the same entries in full. If unsure, pick RSS.",
};

/// The word before an entry's source: «Источник» or «Source».
pub(super) fn source_label(site: &Site) -> &'static str {
    labels(site).source
}

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

/// A moment as a page shows it: words for people, RFC 3339 for `<time datetime>`.
struct When {
    datetime: String,
    text: String,
}

/// When an entry was published and, if later, last updated.
struct Dates {
    published: When,
    updated: Option<When>,
}

/// Links between the pages of a listing (the home page, a section's page).
struct Pager {
    page: usize,
    pages: usize,
    prev: Option<String>,
    next: Option<String>,
}

struct SectionRow {
    title: String,
    href: String,
    count: usize,
    newest: Option<When>,
    feeds: Vec<Link>,
}

struct EntryRow {
    title: String,
    href: String,
    /// `serve --preview`: «черновик» or «запланировано на …».
    mark: Option<String>,
    dates: Dates,
    sections: Vec<Link>,
}

/// One section's subscribe links on an entry's page.
struct SectionFeeds {
    title: String,
    feeds: Vec<Link>,
}

#[derive(Template)]
#[template(path = "index.html")]
struct IndexPage<'a> {
    lang: &'a str,
    site_title: &'a str,
    description: &'a str,
    labels: &'static Labels,
    alternates: Vec<Alternate>,
    all_feeds: Vec<Link>,
    opml: String,
    how_to: String,
    sections: Vec<SectionRow>,
    entries: Vec<EntryRow>,
    pager: Option<Pager>,
}

/// The home page past its first page: older entries, newest first.
#[derive(Template)]
#[template(path = "archive.html")]
struct ArchivePage<'a> {
    lang: &'a str,
    site_title: &'a str,
    home: &'a str,
    labels: &'static Labels,
    alternates: Vec<Alternate>,
    all_feeds: Vec<Link>,
    opml: String,
    how_to: String,
    page: usize,
    entries: Vec<EntryRow>,
    pager: Option<Pager>,
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
    opml: String,
    how_to: String,
    page: usize,
    entries: Vec<EntryRow>,
    pager: Option<Pager>,
}

#[derive(Template)]
#[template(path = "news.html")]
struct NewsPage<'a> {
    lang: &'a str,
    site_title: &'a str,
    home: &'a str,
    title: &'a str,
    /// `serve --preview`: «черновик» or «запланировано на …».
    mark: Option<String>,
    dates: Dates,
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
    /// The feeds of the entry's sections, to subscribe to.
    subscriptions: Vec<SectionFeeds>,
    how_to: String,
}

#[derive(Template)]
#[template(path = "subscribe.html")]
struct SubscribePage<'a> {
    lang: &'a str,
    site_title: &'a str,
    home: &'a str,
    labels: &'static Labels,
    guide: &'static Guide,
    alternates: Vec<Alternate>,
    all_feeds: Vec<Link>,
    /// The OPML lists, one per feed format.
    opmls: Vec<Link>,
    /// Each format's name and what it is good for.
    formats: Vec<(&'static str, &'static str)>,
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

/// The calendar date of a moment in the zone of its own offset, written the
/// way the site's readers write it: «22 августа 2022» in Russian,
/// "22 August 2022" otherwise.
///
/// An entry's dates keep the offset of the zone its editor wrote them in
/// (its `timezone`, else the site's), so an entry dated «28.11.2024» in
/// Vladivostok shows 28 November, as written, even on a site in
/// Novosibirsk, where that midnight is still 27 November. The feeds carry
/// the same offset.
pub fn human_date(site: &Site, dt: &DateTime<FixedOffset>) -> String {
    date_words(labels(site), dt)
}

fn date_words(labels: &Labels, dt: &DateTime<FixedOffset>) -> String {
    let month = labels.months[dt.month0() as usize];
    format!("{} {} {}", dt.day(), month, dt.year())
}

/// A moment for `<time datetime>`: RFC 3339 with its own offset and whole
/// seconds (HTML allows at most three digits of a fraction; chrono may
/// write nine).
fn machine_time(dt: &DateTime<FixedOffset>) -> String {
    dt.to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

fn when(labels: &Labels, dt: &DateTime<FixedOffset>) -> When {
    When {
        datetime: machine_time(dt),
        text: date_words(labels, dt),
    }
}

/// An entry's dates as pages show them. The update is shown only when it is
/// later than the publication (the feeds' `updated` is the later of the
/// two); an update on the day of publication shows its time instead of
/// repeating the date: «28 ноября 2024 · обновлено в 15:30».
fn dates(labels: &Labels, e: &Entry) -> Dates {
    let updated = e.updated.filter(|u| *u > e.published).map(|u| {
        let text = if u.date_naive() == e.published.date_naive() {
            format!("{} {:02}:{:02}", labels.at, u.hour(), u.minute())
        } else {
            date_words(labels, &u)
        };
        When {
            datetime: machine_time(&u),
            text,
        }
    });
    Dates {
        published: when(labels, &e.published),
        updated,
    }
}

/// A scope's feed for its title and URLs only, without gathering its
/// entries (an entry's page names the feeds of its sections; filtering a
/// large archive for each would be wasted).
fn feed_head<'s>(site: &'s Site, scope: Scope<'s>) -> Feed<'s> {
    Feed {
        site,
        scope,
        entries: Vec::new(),
        page: 1,
        pages: 1,
        per_page: site.config.feed_limit,
    }
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
            href: site.config.url(&urls::section(&s.slug)).to_string(),
            media_type: "text/html",
        })
        .collect()
}

/// What a preview marks an entry as: a draft, or scheduled (with its due
/// time in its own zone); `None` for a public entry and outside a preview.
fn preview_mark(site: &Site, e: &Entry) -> Option<String> {
    if !site.config.preview {
        return None;
    }
    let l = labels(site);
    if e.draft {
        return Some(l.draft.to_owned());
    }
    let due = e.due();
    site.schedule.cutoff.is_some_and(|now| due > now).then(|| {
        format!(
            "{} {}, {:02}:{:02}",
            l.scheduled,
            human_date(site, &due),
            due.hour(),
            due.minute()
        )
    })
}

fn entry_row(site: &Site, e: &Entry) -> EntryRow {
    EntryRow {
        title: e.title.clone(),
        href: site.config.url(&urls::news(&e.id)).to_string(),
        mark: preview_mark(site, e),
        dates: dates(labels(site), e),
        sections: section_links(site, e),
    }
}

/// The pager of page `page` of `pages` of the listing `feed` stands for;
/// none when everything fits on one page.
fn pager(feed: &Feed<'_>, page: usize, pages: usize) -> Option<Pager> {
    (pages > 1).then(|| Pager {
        page,
        pages,
        prev: (page > 1).then(|| feed.html_page_url(page - 1).to_string()),
        next: (page < pages).then(|| feed.html_page_url(page + 1).to_string()),
    })
}

/// The URL of the subscribe page.
pub fn subscribe_url(site: &Site) -> Url {
    site.config.url(urls::SUBSCRIBE)
}

fn opml_url(site: &Site) -> String {
    site.config.url(&super::opml::path(Format::Rss)).to_string()
}

/// The home page: the site's description, subscribe links, sections with
/// counts and subscribe links, the latest entries and a link to older ones.
pub fn index(site: &Site) -> Vec<u8> {
    let config = &site.config;
    let all = site.feed(Scope::All);
    let labels = labels(site);
    // Counts cover every entry, not only those in the feeds (counted once
    // per site); entries are sorted newest first, so a section's newest
    // publication date is its feed's first entry.
    let sections = config
        .sections
        .iter()
        .map(|s| {
            let feed = site.feed(Scope::Section(s));
            let count = site.section_len(&s.slug);
            SectionRow {
                title: s.title.clone(),
                href: feed.html_url().to_string(),
                count,
                newest: feed.entries.first().map(|e| when(labels, &e.published)),
                feeds: feed_links(&feed),
            }
        })
        .collect();
    let pages = crate::model::page_count(site.entries.len(), HOME_PAGE_SIZE);
    let page = IndexPage {
        lang: &config.language,
        site_title: &config.title,
        description: &config.description,
        labels,
        alternates: alternates(&all),
        all_feeds: feed_links(&all),
        opml: opml_url(site),
        how_to: subscribe_url(site).to_string(),
        sections,
        entries: site
            .entries
            .iter()
            .take(HOME_PAGE_SIZE)
            .map(|e| entry_row(site, e))
            .collect(),
        pager: pager(&all, 1, pages),
    };
    page.render().unwrap_or_default().into_bytes()
}

/// A page of the home page's listing: `feed` is a page of the combined
/// scope at [`HOME_PAGE_SIZE`] entries per page. Page 1 is [`index`];
/// later pages list only the entries, with subscribe links and the pager.
pub fn home(feed: &Feed<'_>) -> Vec<u8> {
    let site = feed.site;
    if feed.page <= 1 {
        return index(site);
    }
    let config = &site.config;
    // The feeds to subscribe to are the standard ones, whatever this
    // listing's page size.
    let all = feed_head(site, Scope::All);
    let page = ArchivePage {
        lang: &config.language,
        site_title: &config.title,
        home: config.base_url.as_str(),
        labels: labels(site),
        alternates: alternates(&all),
        all_feeds: feed_links(&all),
        opml: opml_url(site),
        how_to: subscribe_url(site).to_string(),
        page: feed.page,
        entries: feed.entries.iter().map(|e| entry_row(site, e)).collect(),
        pager: pager(feed, feed.page, feed.pages),
    };
    page.render().unwrap_or_default().into_bytes()
}

/// A page of a section's listing: its entries (page `feed.page` of the
/// section's feed, `feed_limit` per page), its feeds and the pager.
pub fn section(feed: &Feed<'_>) -> Vec<u8> {
    let site = feed.site;
    let config = &site.config;
    let Scope::Section(s) = feed.scope else {
        return home(feed);
    };
    let standard = feed_head(site, feed.scope);
    let page = SectionPage {
        lang: &config.language,
        site_title: &config.title,
        home: config.base_url.as_str(),
        title: &s.title,
        description: s.description.clone().unwrap_or_default(),
        labels: labels(site),
        alternates: alternates(&standard),
        feeds: feed_links(&standard),
        opml: opml_url(site),
        how_to: subscribe_url(site).to_string(),
        page: feed.page,
        entries: feed.entries.iter().map(|e| entry_row(site, e)).collect(),
        pager: pager(feed, feed.page, feed.pages),
    };
    page.render().unwrap_or_default().into_bytes()
}

/// One entry's page: dates, sections, body, source line, and the feeds of
/// its sections (autodiscovery and subscribe links) beside the combined one.
pub fn news(site: &Site, entry: &Entry, retain: super::Retain) -> Vec<u8> {
    let config = &site.config;
    let labels = labels(site);
    let own = config.url(&urls::news(&entry.id));
    let body = super::content_html(site, entry, retain);
    let section_feeds: Vec<Feed<'_>> = entry
        .sections
        .iter()
        .filter_map(|slug| config.section(slug))
        .map(|s| feed_head(site, Scope::Section(s)))
        .collect();
    let mut alternates_ = alternates(&feed_head(site, Scope::All));
    alternates_.extend(section_feeds.iter().flat_map(alternates));
    let page = NewsPage {
        lang: &config.language,
        site_title: &config.title,
        home: config.base_url.as_str(),
        title: &entry.title,
        mark: preview_mark(site, entry),
        dates: dates(labels, entry),
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
        // Only a `link` key can point elsewhere than this page.
        canonical: (entry.link(config) != own).then(|| entry.link(config).to_string()),
        labels,
        alternates: alternates_,
        subscriptions: section_feeds
            .iter()
            .filter_map(|f| match f.scope {
                Scope::Section(s) => Some(SectionFeeds {
                    title: s.title.clone(),
                    feeds: feed_links(f),
                }),
                Scope::All | Scope::Bundle(_) => None,
            })
            .collect(),
        how_to: subscribe_url(site).to_string(),
    };
    page.render().unwrap_or_default().into_bytes()
}

/// The page that explains how to subscribe: feed readers, what to do with
/// a feed's address, OPML import and the three formats, with the site's own
/// combined feed and OPML links. Depends on the configuration only.
pub fn subscribe(site: &Site) -> Vec<u8> {
    let config = &site.config;
    let labels = labels(site);
    let all = feed_head(site, Scope::All);
    let opmls = Format::ALL
        .into_iter()
        .map(|f| Link {
            label: format!("OPML ({})", f.label()),
            href: config.url(&super::opml::path(f)).to_string(),
            media_type: "text/x-opml",
        })
        .collect();
    let page = SubscribePage {
        lang: &config.language,
        site_title: &config.title,
        home: config.base_url.as_str(),
        labels,
        guide: labels.guide,
        alternates: alternates(&all),
        all_feeds: feed_links(&all),
        opmls,
        formats: Format::ALL
            .into_iter()
            .map(|f| f.label())
            .zip(labels.guide.formats)
            .collect(),
    };
    page.render().unwrap_or_default().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::sync::Arc;

    /// A site in Novosibirsk (UTC+7) in `language`, one section `a`, and one
    /// entry per front matter fragment (title and sections added).
    fn site(language: &str, fronts: &[&str]) -> Site {
        let config = crate::config::Config::parse(
            Path::new("site.toml"),
            &format!(
                "title = \"Site <T>\"\nbase_url = \"http://e.org/\"\nlanguage = \"{language}\"\n\
                 timezone = \"Asia/Novosibirsk\"\n[[sections]]\nslug = \"a\"\ntitle = \"A\"\n"
            ),
        )
        .unwrap();
        let sanitizer = crate::entry::html::Sanitizer::new(&config.base_url);
        let ctx = crate::entry::Context {
            config: &config,
            sanitizer: &sanitizer,
            spool: None,
        };
        let entries = fronts
            .iter()
            .enumerate()
            .map(|(i, front)| {
                let file =
                    format!("+++\ntitle = \"E{i}\"\nsections = [\"a\"]\n{front}\n+++\nBody.\n");
                let rel = format!("e{i}.md");
                let parsed = crate::entry::parse(&ctx, Path::new(&rel), &rel, file.as_bytes());
                let entry = parsed
                    .entry
                    .unwrap_or_else(|| panic!("{front}: {:?}", parsed.diagnostics));
                Arc::new(entry)
            })
            .collect();
        Site::new(config, entries, vec![])
    }

    /// The dates line of one entry's front matter, as pages show it:
    /// "published" or "published · updated".
    fn check(language: &str, front: &str, expected: &str) {
        let site = site(language, &[front]);
        let d = dates(labels(&site), &site.entries[0]);
        let got = match d.updated {
            None => d.published.text,
            Some(u) => format!("{} · {}", d.published.text, u.text),
        };
        assert_eq!(got, expected, "{front}");
    }

    #[test]
    fn dates_are_shown_in_the_zone_the_editor_wrote_them_in() {
        let vladivostok = "timezone = \"Asia/Vladivostok\"";
        // Midnight in Vladivostok is 21:00 the day before in Novosibirsk.
        check(
            "ru",
            &format!("date = \"28.11.2024\"\n{vladivostok}"),
            "28 ноября 2024",
        );
        check(
            "en",
            &format!("date = \"28.11.2024\"\n{vladivostok}"),
            "28 November 2024",
        );
        check("ru", "date = \"28.11.2024\"", "28 ноября 2024");
        // An offset of its own wins over every zone.
        check(
            "ru",
            "date = \"2024-11-27T23:30:00-05:00\"",
            "27 ноября 2024",
        );
        check("ru", "date = 2024-11-28T02:00:00Z", "28 ноября 2024");
    }

    #[test]
    fn a_later_update_is_shown_with_its_date_or_on_the_same_day_its_time() {
        check(
            "ru",
            "date = \"28.11.2024\"\nupdated = \"02.12.2024\"\ntimezone = \"Asia/Vladivostok\"",
            "28 ноября 2024 · 2 декабря 2024",
        );
        check(
            "ru",
            "date = \"10.01.2025 09:00\"\nupdated = \"10.01.2025 15:30\"",
            "10 января 2025 · в 15:30",
        );
        check(
            "en",
            "date = \"10.01.2025 09:00\"\nupdated = \"10.01.2025 15:30\"",
            "10 January 2025 · at 15:30",
        );
        // Not later than the publication: nothing to tell.
        check(
            "ru",
            "date = \"10.01.2025\"\nupdated = \"10.01.2025\"",
            "10 января 2025",
        );
        check(
            "ru",
            "date = \"10.01.2025\"\nupdated = \"09.01.2025\"",
            "10 января 2025",
        );
    }

    #[test]
    fn time_elements_carry_the_offset_and_whole_seconds() {
        let site = site(
            "ru",
            &[
                "date = \"2024-11-28T00:00:00.123456789+10:00\"\nupdated = \"2024-12-02T10:00:00+10:00\"",
            ],
        );
        let page =
            String::from_utf8(news(&site, &site.entries[0], crate::render::Retain::Keep)).unwrap();
        assert!(
            page.contains("<time datetime=\"2024-11-28T00:00:00+10:00\">28 ноября 2024</time> · обновлено <time datetime=\"2024-12-02T10:00:00+10:00\">2 декабря 2024</time>"),
            "{page}"
        );
    }

    #[test]
    fn pager_links_neighbours_only() {
        let site = site("ru", &[]);
        let feed = feed_head(&site, Scope::Section(&site.config.sections[0]));
        assert!(pager(&feed, 1, 1).is_none());
        let p = pager(&feed, 1, 3).unwrap();
        assert_eq!(
            (p.prev, p.next.as_deref()),
            (None, Some("http://e.org/sections/a?page=2"))
        );
        let p = pager(&feed, 2, 3).unwrap();
        assert_eq!(p.prev.as_deref(), Some("http://e.org/sections/a"));
        assert_eq!(p.next.as_deref(), Some("http://e.org/sections/a?page=3"));
        let p = pager(&feed, 3, 3).unwrap();
        assert_eq!(
            (p.prev.as_deref(), p.next),
            (Some("http://e.org/sections/a?page=2"), None)
        );
    }

    #[test]
    fn home_page_names_the_site_in_one_heading() {
        let site = site("ru", &["date = \"10.01.2025\""]);
        let page = String::from_utf8(index(&site)).unwrap();
        let body = &page[page.find("<body>").unwrap()..];
        assert_eq!(body.matches("<h1").count(), 1, "{body}");
        assert_eq!(body.matches("Site &#60;T&#62;").count(), 1, "{body}");
        assert!(body.contains("<h1>Site &#60;T&#62;</h1>"), "{body}");
    }

    #[test]
    fn subscribe_page_speaks_the_site_language() {
        for (language, title, opml) in [
            ("ru", "<h1>Как подписаться</h1>", "Импорт OPML"),
            ("en", "<h1>How to subscribe</h1>", "Import OPML"),
        ] {
            let page = String::from_utf8(subscribe(&site(language, &[]))).unwrap();
            assert!(page.contains(title) && page.contains(opml), "{page}");
            for name in [
                "Miniflux",
                "FreshRSS",
                "Feedly",
                "Inoreader",
                "Thunderbird",
                "NetNewsWire",
            ] {
                assert!(page.contains(&format!(">{name}</a>")), "{language}: {name}");
            }
            for href in [
                "http://e.org/feeds/all.rss",
                "http://e.org/feeds/all.atom",
                "http://e.org/feeds/all.json",
                "http://e.org/feeds.opml",
                "http://e.org/feeds.opml?format=atom",
                "http://e.org/feeds.opml?format=json",
            ] {
                assert!(
                    page.contains(&format!("href=\"{href}\"")),
                    "{language}: {href}"
                );
            }
        }
    }

    #[test]
    fn nginx_sends_the_pages_content_security_policy() {
        let conf = include_str!("../../deploy/nginx.conf");
        let header = format!(
            "add_header Content-Security-Policy \"{}\" always;",
            *CONTENT_SECURITY_POLICY
        );
        assert!(
            conf.contains(&header),
            "deploy/nginx.conf must send {header} (the style changed?)"
        );
        assert!(STYLE.starts_with('\n') && !STYLE.contains("</style"));
    }
}
