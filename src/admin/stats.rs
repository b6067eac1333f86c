//! Subscribers per feed, as far as a server can know them.
//!
//! Hosted aggregators (Feedly, Inoreader, NewsBlur, Feedbin…) fetch a feed
//! once for all their users and say in the `User-Agent` how many subscribe
//! ("123 subscribers"). For each feed, the latest count of each aggregator
//! (keyed by the aggregator and the feed id it sends, if any) is kept: a
//! count is a state, so ten polls of "123 subscribers" are 123, not 1230.
//!
//! Everyone else (desktop and self-hosted readers) is estimated as the
//! distinct (client address, User-Agent) pairs that fetched the feed in the
//! last 24 hours. Only a keyed hash of each pair is held, in memory, with a
//! salt drawn at startup and never stored, so the figures cannot be turned
//! back into addresses and do not outlive the process. Crawlers, monitors
//! and command-line tools are counted apart.
//!
//! Time is an input: every method that depends on "now" takes it.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::metrics::unix_seconds;

/// Who fetched a feed, as its `User-Agent` tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Client {
    /// A hosted aggregator that states its subscriber count.
    Aggregator {
        /// Its name, e.g. "Feedly".
        name: String,
        /// The aggregator's own id of the feed, when it sends one.
        feed_id: Option<String>,
        /// Subscribers it reports for this feed.
        subscribers: u64,
    },
    /// A search crawler, an uptime monitor or a command-line tool.
    Crawler(&'static str),
    /// Anything else: a person's reader, or an aggregator that states no count.
    Reader,
}

/// Known aggregators: a case-insensitive marker in the User-Agent and the
/// name to show. An aggregator not listed here that states a count is still
/// counted, under the first product token of its User-Agent.
const AGGREGATORS: &[(&str, &str)] = &[
    ("feedly", "Feedly"),
    ("inoreader", "Inoreader"),
    ("newsblur", "NewsBlur"),
    ("feedbin", "Feedbin"),
    ("theoldreader", "The Old Reader"),
    ("bazqux", "BazQux"),
    ("netvibes", "Netvibes"),
    ("feedspot", "Feedspot"),
    ("feedfetcher-google", "Google Feedfetcher"),
    ("overcast", "Overcast"),
];

/// Crawlers, monitors and tools: a case-insensitive marker and the name to
/// show. Checked in order, after aggregators, so the first match names it.
const CRAWLERS: &[(&str, &str)] = &[
    ("googlebot", "Googlebot"),
    ("bingbot", "bingbot"),
    ("yandex", "Yandex bots"),
    ("baiduspider", "Baiduspider"),
    ("duckduckbot", "DuckDuckBot"),
    ("applebot", "Applebot"),
    ("petalbot", "PetalBot"),
    ("ahrefsbot", "AhrefsBot"),
    ("semrushbot", "SemrushBot"),
    ("mj12bot", "MJ12bot"),
    ("dotbot", "DotBot"),
    ("gptbot", "GPTBot"),
    ("ccbot", "CCBot"),
    ("claudebot", "ClaudeBot"),
    ("bytespider", "Bytespider"),
    ("facebookexternalhit", "facebookexternalhit"),
    ("twitterbot", "Twitterbot"),
    ("uptimerobot", "UptimeRobot"),
    ("pingdom", "Pingdom"),
    ("statuscake", "StatusCake"),
    ("betteruptime", "Better Stack"),
    ("site24x7", "Site24x7"),
    ("blackbox", "Prometheus blackbox exporter"),
    ("kube-probe", "kube-probe"),
    ("elb-healthchecker", "ELB health checker"),
    ("googlehc", "Google health checker"),
    ("w3c_validator", "W3C validator"),
    ("feedvalidator", "Feed validator"),
    ("curl/", "curl"),
    ("wget/", "Wget"),
    ("python-requests", "python-requests"),
    ("python-urllib", "Python urllib"),
    ("aiohttp", "aiohttp"),
    ("go-http-client", "Go http client"),
    ("libwww-perl", "libwww-perl"),
    ("node-fetch", "node-fetch"),
    ("axios/", "axios"),
    ("java/", "Java"),
];

/// Longest feed id or aggregator name kept; longer ones are cut.
const MAX_LABEL: usize = 64;

/// Classifies a `User-Agent` header (`None` when the request had none).
pub fn classify(user_agent: Option<&str>) -> Client {
    let Some(ua) = user_agent.map(str::trim).filter(|ua| !ua.is_empty()) else {
        return Client::Crawler("no User-Agent");
    };
    let lower = ua.to_ascii_lowercase();
    if let Some(subscribers) = subscriber_count(&lower) {
        let name = AGGREGATORS
            .iter()
            .find(|(marker, _)| lower.contains(marker))
            .map_or_else(|| product_name(ua), |(_, name)| (*name).to_owned());
        return Client::Aggregator {
            name,
            feed_id: feed_id(ua),
            subscribers,
        };
    }
    if let Some((_, name)) = CRAWLERS.iter().find(|(marker, _)| lower.contains(marker)) {
        return Client::Crawler(name);
    }
    if ["bot", "crawler", "spider"]
        .iter()
        .any(|w| lower.contains(w))
    {
        return Client::Crawler("other bots");
    }
    Client::Reader
}

/// The number right before "subscriber" or "subscribers" (the forms every
/// aggregator above uses: "123 subscribers", "1 subscriber").
fn subscriber_count(lower: &str) -> Option<u64> {
    lower.match_indices("subscriber").find_map(|(at, _)| {
        let before = lower[..at].trim_end();
        let start = before
            .rfind(|c: char| !c.is_ascii_digit())
            .map_or(0, |i| i + 1);
        let digits = &before[start..];
        (!digits.is_empty() && digits.len() <= 12)
            .then(|| digits.parse().ok())
            .flatten()
    })
}

/// The aggregator's id of the feed: `feed-id:123` (Feedbin), `feed-id=abc`
/// (The Old Reader, Google, Overcast), `feedID: 123` (Netvibes), or the
/// site number in NewsBlur's `/site/1234/` link.
fn feed_id(ua: &str) -> Option<String> {
    let lower = ua.to_ascii_lowercase();
    let value_at = |start: usize| {
        let rest = ua[start..].trim_start();
        let id: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .take(MAX_LABEL)
            .collect();
        (!id.is_empty()).then_some(id)
    };
    for marker in ["feed-id:", "feed-id=", "feedid:", "feedid="] {
        if let Some(at) = lower.find(marker) {
            return value_at(at + marker.len());
        }
    }
    if lower.contains("newsblur") {
        if let Some(at) = lower.find("/site/") {
            return value_at(at + "/site/".len());
        }
    }
    None
}

/// The first product token that is not a browser's (`Mozilla/5.0`,
/// `compatible`), for an aggregator not in [`AGGREGATORS`].
fn product_name(ua: &str) -> String {
    let token = ua
        .split(|c: char| c == ';' || c == '(' || c == ')' || c.is_whitespace())
        .map(|t| t.split('/').next().unwrap_or(t).trim_start_matches('+'))
        .find(|t| {
            !t.is_empty()
                && t.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && !matches!(
                    t.to_ascii_lowercase().as_str(),
                    "mozilla" | "compatible" | "applewebkit" | "khtml" | "like" | "gecko"
                )
        })
        .unwrap_or("unknown");
    token
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(MAX_LABEL)
        .collect()
}

/// One fetch of a feed, as the request path reports it.
#[derive(Debug, Clone, Copy)]
pub struct Fetch<'a> {
    /// The feed, as [`feed_key`] names it.
    pub feed: &'a str,
    /// The client address (after `--trusted-proxy` resolution).
    pub client: IpAddr,
    /// The `User-Agent` header, if any.
    pub user_agent: Option<&'a str>,
}

/// The feed a request polls, or `None` when it is not a subscription:
/// a history page (`page` past 1). Bundles are keyed by their sorted,
/// deduplicated sections; other parameters (`limit`, tracking tags) do
/// not make another feed.
pub fn feed_key(path: &str, query: Option<&str>) -> Option<String> {
    let mut sections: Option<Vec<String>> = None;
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match &*k {
            "page" if !matches!(&*v, "" | "1") => return None,
            "sections" if sections.is_none() => {
                let mut slugs: Vec<String> = v
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect();
                slugs.sort();
                slugs.dedup();
                sections = Some(slugs);
            }
            _ => {}
        }
    }
    Some(match sections {
        Some(slugs) if !slugs.is_empty() => format!("{path}?sections={}", slugs.join(",")),
        _ => path.to_owned(),
    })
}

/// How long a reader pair counts after its last fetch.
pub const READER_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);

/// How long an aggregator's count stands without a fresh poll: an
/// aggregator that stopped polling has lost its subscribers (or the feed).
pub const AGGREGATOR_TTL: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// Reader pairs held at most, over all feeds (~100 bytes each). Past it,
/// new pairs are not counted and the report says the estimate is capped.
const MAX_PAIRS: usize = 200_000;

/// Feeds tracked at most (bundles can name many section sets).
const MAX_FEEDS: usize = 1_000;

/// Aggregator reports kept per feed at most.
const MAX_REPORTS: usize = 1_000;

/// A keyed hash of a (client address, User-Agent) pair.
type PairHash = [u8; 16];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Reported {
    subscribers: u64,
    /// Unix seconds of the poll that reported it.
    seen: u64,
}

#[derive(Debug, Default)]
struct CrawlerStats {
    requests: u64,
    clients: HashMap<PairHash, SystemTime>,
}

#[derive(Debug, Default)]
struct FeedStats {
    /// (aggregator, feed id or "") → latest count.
    aggregators: BTreeMap<(String, String), Reported>,
    /// Reader pairs → last fetch.
    readers: HashMap<PairHash, SystemTime>,
    crawlers: BTreeMap<&'static str, CrawlerStats>,
}

#[derive(Debug, Default)]
struct Inner {
    feeds: BTreeMap<String, FeedStats>,
    pairs: usize,
    capped: bool,
}

/// Subscriber figures of every feed, updated by the request path.
#[derive(Debug)]
pub struct Stats {
    salt: [u8; 32],
    inner: Mutex<Inner>,
}

/// The figures of one feed.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FeedReport {
    /// The feed's path, with `?sections=` for a bundle.
    pub feed: String,
    /// Aggregator subscribers plus the estimated other readers.
    pub subscribers: u64,
    /// The sum of every aggregator's latest count.
    pub aggregator_subscribers: u64,
    /// Distinct (address, User-Agent) pairs of other readers in the last 24 h: an estimate.
    pub other_readers: u64,
    /// Each aggregator's latest count.
    pub aggregators: Vec<AggregatorReport>,
    /// Crawlers, monitors and tools that fetched the feed.
    pub crawlers: Vec<CrawlerReport>,
}

/// One aggregator's latest count for one feed.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AggregatorReport {
    /// The aggregator's name.
    pub name: String,
    /// The aggregator's id for the feed, when it sends one.
    pub feed_id: Option<String>,
    /// The count it reported last.
    pub subscribers: u64,
    /// Unix seconds of that poll.
    pub last_seen: u64,
}

/// One crawler's fetches of one feed.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CrawlerReport {
    /// Its name.
    pub name: String,
    /// Requests since it was first seen; forgotten with its last client,
    /// a day after that client's last request.
    pub requests: u64,
    /// Distinct (address, User-Agent) pairs in the last 24 h.
    pub clients: u64,
}

/// Everything `/stats` shows.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Report {
    /// Unix seconds of the report.
    pub generated: u64,
    /// The window of the reader estimate, in hours.
    pub window_hours: u64,
    /// True when the reader estimate stopped counting new pairs (memory bound).
    pub capped: bool,
    /// Feeds, most subscribers first.
    pub feeds: Vec<FeedReport>,
}

/// The saved form: aggregator counts only, never addresses or hashes.
#[derive(Debug, Serialize, Deserialize)]
struct Saved {
    version: u32,
    feeds: BTreeMap<String, Vec<SavedReport>>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedReport {
    aggregator: String,
    feed_id: String,
    subscribers: u64,
    seen: u64,
}

impl Stats {
    /// Empty figures. `salt` keys the reader hashes; draw it at random at
    /// startup and never store it.
    pub fn new(salt: [u8; 32]) -> Stats {
        Stats {
            salt,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn pair_hash(&self, client: IpAddr, user_agent: &str) -> PairHash {
        let mut h = Sha256::new();
        h.update(self.salt);
        match client {
            IpAddr::V4(a) => h.update(a.octets()),
            IpAddr::V6(a) => h.update(a.octets()),
        }
        h.update([0]);
        h.update(user_agent.as_bytes());
        let digest = h.finalize();
        let mut out = [0; 16];
        out.copy_from_slice(&digest[..16]);
        out
    }

    /// Records one successful fetch (200 or 304) of a feed at `now`.
    pub fn record(&self, fetch: &Fetch<'_>, now: SystemTime) {
        let client = classify(fetch.user_agent);
        let hash = match client {
            Client::Aggregator { .. } => None,
            _ => Some(self.pair_hash(fetch.client, fetch.user_agent.unwrap_or(""))),
        };
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let inner = &mut *inner;
        if !inner.feeds.contains_key(fetch.feed) && inner.feeds.len() >= MAX_FEEDS {
            return;
        }
        let feed = inner.feeds.entry(fetch.feed.to_owned()).or_default();
        match (client, hash) {
            (
                Client::Aggregator {
                    name,
                    feed_id,
                    subscribers,
                },
                _,
            ) => {
                let key = (name, feed_id.unwrap_or_default());
                if feed.aggregators.contains_key(&key) || feed.aggregators.len() < MAX_REPORTS {
                    feed.aggregators.insert(
                        key,
                        Reported {
                            subscribers,
                            seen: unix_seconds(now),
                        },
                    );
                }
            }
            (Client::Crawler(name), Some(hash)) => {
                let crawler = feed.crawlers.entry(name).or_default();
                crawler.requests += 1;
                remember(
                    &mut crawler.clients,
                    hash,
                    now,
                    &mut inner.pairs,
                    &mut inner.capped,
                );
            }
            (Client::Reader, Some(hash)) => {
                remember(
                    &mut feed.readers,
                    hash,
                    now,
                    &mut inner.pairs,
                    &mut inner.capped,
                );
            }
            (_, None) => {}
        }
    }

    /// Forgets reader pairs older than [`READER_WINDOW`] and aggregator
    /// counts older than [`AGGREGATOR_TTL`].
    pub fn prune(&self, now: SystemTime) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let fresh = |seen: &SystemTime| {
            now.duration_since(*seen)
                .map_or(true, |age| age <= READER_WINDOW)
        };
        let oldest_report = unix_seconds(now).saturating_sub(AGGREGATOR_TTL.as_secs());
        let mut pairs = 0;
        for feed in inner.feeds.values_mut() {
            feed.readers.retain(|_, seen| fresh(seen));
            feed.aggregators.retain(|_, r| r.seen >= oldest_report);
            pairs += feed.readers.len();
            for c in feed.crawlers.values_mut() {
                c.clients.retain(|_, seen| fresh(seen));
                pairs += c.clients.len();
            }
            feed.crawlers.retain(|_, c| !c.clients.is_empty());
        }
        inner.feeds.retain(|_, f| {
            !f.readers.is_empty() || !f.aggregators.is_empty() || !f.crawlers.is_empty()
        });
        inner.pairs = pairs;
        if pairs < MAX_PAIRS {
            inner.capped = false;
        }
    }

    /// The figures at `now` (pruned first).
    pub fn report(&self, now: SystemTime) -> Report {
        self.prune(now);
        let Ok(inner) = self.inner.lock() else {
            return Report {
                generated: unix_seconds(now),
                window_hours: READER_WINDOW.as_secs() / 3600,
                capped: false,
                feeds: Vec::new(),
            };
        };
        let mut feeds: Vec<FeedReport> = inner
            .feeds
            .iter()
            .map(|(path, f)| {
                let aggregators: Vec<AggregatorReport> = f
                    .aggregators
                    .iter()
                    .map(|((name, id), r)| AggregatorReport {
                        name: name.clone(),
                        feed_id: (!id.is_empty()).then(|| id.clone()),
                        subscribers: r.subscribers,
                        last_seen: r.seen,
                    })
                    .collect();
                let aggregator_subscribers = aggregators
                    .iter()
                    .fold(0u64, |sum, a| sum.saturating_add(a.subscribers));
                let other_readers = f.readers.len() as u64;
                FeedReport {
                    feed: path.clone(),
                    subscribers: aggregator_subscribers.saturating_add(other_readers),
                    aggregator_subscribers,
                    other_readers,
                    aggregators,
                    crawlers: f
                        .crawlers
                        .iter()
                        .map(|(name, c)| CrawlerReport {
                            name: (*name).to_owned(),
                            requests: c.requests,
                            clients: c.clients.len() as u64,
                        })
                        .collect(),
                }
            })
            .collect();
        feeds.sort_by(|a, b| b.subscribers.cmp(&a.subscribers).then(a.feed.cmp(&b.feed)));
        Report {
            generated: unix_seconds(now),
            window_hours: READER_WINDOW.as_secs() / 3600,
            capped: inner.capped,
            feeds,
        }
    }

    /// The aggregator counts as JSON: no addresses, no hashes.
    fn saved(&self) -> Saved {
        let feeds = self
            .inner
            .lock()
            .map(|inner| {
                inner
                    .feeds
                    .iter()
                    .filter(|(_, f)| !f.aggregators.is_empty())
                    .map(|(path, f)| {
                        let reports = f
                            .aggregators
                            .iter()
                            .map(|((aggregator, feed_id), r)| SavedReport {
                                aggregator: aggregator.clone(),
                                feed_id: feed_id.clone(),
                                subscribers: r.subscribers,
                                seen: r.seen,
                            })
                            .collect();
                        (path.clone(), reports)
                    })
                    .collect()
            })
            .unwrap_or_default();
        Saved { version: 1, feeds }
    }

    /// Adds saved aggregator counts (those younger than [`AGGREGATOR_TTL`]
    /// at `now`); a count already known from a poll since is kept.
    fn restore(&self, saved: Saved, now: SystemTime) -> usize {
        let oldest = unix_seconds(now).saturating_sub(AGGREGATOR_TTL.as_secs());
        let Ok(mut inner) = self.inner.lock() else {
            return 0;
        };
        let mut restored = 0;
        for (path, reports) in saved.feeds {
            if !inner.feeds.contains_key(&path) && inner.feeds.len() >= MAX_FEEDS {
                continue;
            }
            let feed = inner.feeds.entry(path).or_default();
            for r in reports.into_iter().filter(|r| r.seen >= oldest) {
                if feed.aggregators.len() >= MAX_REPORTS {
                    break;
                }
                let key = (r.aggregator, r.feed_id);
                let newer = feed.aggregators.get(&key).is_some_and(|k| k.seen >= r.seen);
                if !newer {
                    feed.aggregators.insert(
                        key,
                        Reported {
                            subscribers: r.subscribers,
                            seen: r.seen,
                        },
                    );
                    restored += 1;
                }
            }
        }
        restored
    }
}

fn remember(
    clients: &mut HashMap<PairHash, SystemTime>,
    hash: PairHash,
    now: SystemTime,
    pairs: &mut usize,
    capped: &mut bool,
) {
    if let Some(seen) = clients.get_mut(&hash) {
        *seen = now;
    } else if *pairs < MAX_PAIRS {
        clients.insert(hash, now);
        *pairs += 1;
    } else {
        *capped = true;
    }
}

/// Where the aggregator counts are saved between runs (`--state-dir`).
#[derive(Debug, Clone)]
pub struct StateDir {
    file: PathBuf,
}

/// The file inside the state directory.
const STATE_FILE: &str = "subscribers.json";

impl StateDir {
    /// Checks that `dir` lies outside `data` (a file written into DATA
    /// would be watched, and DATA may be read-only), creating `dir` if it is
    /// missing.
    pub fn open(dir: &Path, data: &Path) -> std::io::Result<StateDir> {
        std::fs::create_dir_all(dir)?;
        let real_dir = dir.canonicalize()?;
        let real_data = data.canonicalize().map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot resolve the data directory {}: {e}", data.display()),
            )
        })?;
        if real_dir.starts_with(&real_data) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "the state directory {} lies inside the data directory {}; choose one outside it (e.g. /var/lib/vestnik)",
                    dir.display(),
                    data.display()
                ),
            ));
        }
        Ok(StateDir {
            file: dir.join(STATE_FILE),
        })
    }

    /// The file the counts are saved in.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Loads saved counts into `stats`; a missing file is an empty state.
    /// Returns how many counts were restored.
    pub fn load(&self, stats: &Stats, now: SystemTime) -> std::io::Result<usize> {
        let bytes = match std::fs::read(&self.file) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        let saved: Saved = serde_json::from_slice(&bytes)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        Ok(stats.restore(saved, now))
    }

    /// Saves the aggregator counts atomically: a temporary file in the same
    /// directory, flushed, then renamed over the old one.
    pub fn save(&self, stats: &Stats) -> std::io::Result<()> {
        use std::io::Write as _;
        let body = serde_json::to_vec_pretty(&stats.saved()).map_err(std::io::Error::other)?;
        let tmp = self
            .file
            .with_file_name(format!(".{STATE_FILE}.tmp-{}", std::process::id()));
        let result = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&body)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.file)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real User-Agents of each supported aggregator and where each was
    /// seen. `check(ua, expected)` classifies one.
    fn check(ua: &str, expected: Client) {
        assert_eq!(classify(Some(ua)), expected, "{ua}");
    }

    fn agg(name: &str, feed_id: Option<&str>, subscribers: u64) -> Client {
        Client::Aggregator {
            name: name.to_owned(),
            feed_id: feed_id.map(str::to_owned),
            subscribers,
        }
    }

    #[test]
    fn aggregators_state_their_subscribers() {
        // (where the string comes from, the User-Agent, what it means)
        let cases: &[(&str, &str, Client)] = &[
            (
                "Feedly's fetcher page, http://www.feedly.com/fetcher.html (named in the UA)",
                "Feedly/1.0 (+http://www.feedly.com/fetcher.html; 123 subscribers; )",
                agg("Feedly", None, 123),
            ),
            (
                "boehs.org, 'RSS Analytics' (2024-03-25), table of reader User-Agents",
                "Feedly/1.0 (+http://www.feedly.com/fetcher.html; 16 subscribers; like FeedFetcher-Google)",
                agg("Feedly", None, 16),
            ),
            (
                "Inoreader's fetcher page, http://www.inoreader.com/feed-fetcher (named in the UA)",
                "Mozilla/5.0 (compatible; Inoreader/1.0; +http://www.inoreader.com/feed-fetcher; 12 subscribers; )",
                agg("Inoreader", None, 12),
            ),
            (
                "NewsBlur's source, samuelclay/NewsBlur utils/feed_fetcher.py: \
                 'NewsBlur Feed Fetcher - %s subscriber%s - %s (Mozilla/5.0 ...)'",
                "NewsBlur Feed Fetcher - 42 subscribers - http://www.newsblur.com/site/1234/vestnik (Mozilla/5.0 (Macintosh; Intel Mac OS X 10_7_1) AppleWebKit/534.48.3 (KHTML, like Gecko) Version/5.1 Safari/534.48.3)",
                agg("NewsBlur", Some("1234"), 42),
            ),
            (
                "the same NewsBlur format string, singular for one subscriber",
                "NewsBlur Feed Fetcher - 1 subscriber - http://www.newsblur.com/site/77/x (Mozilla/5.0)",
                agg("NewsBlur", Some("77"), 1),
            ),
            (
                "Feedbin's source, feedbin/feedbin app/jobs/feed_crawler/downloader.rb: \
                 \"Feedbin feed-id:#{@feed_id} - #{@subscribers} subscribers\"",
                "Feedbin feed-id:1234 - 56 subscribers",
                agg("Feedbin", Some("1234"), 56),
            ),
            (
                "boehs.org, 'RSS Analytics' (2024-03-25), table of reader User-Agents",
                "Mozilla/5.0 (compatible; theoldreader.com; 7 subscribers; feed-id=abc)",
                agg("The Old Reader", Some("abc"), 7),
            ),
            (
                "BazQux's fetcher page, https://bazqux.com/fetcher (named in the UA)",
                "Mozilla/5.0 (compatible; BazQux/2.4; +https://bazqux.com/fetcher; 5 subscribers)",
                agg("BazQux", None, 5),
            ),
            (
                "Netvibes' fetcher as recorded in user-agent parser test tables \
                 (the consumer service closed in June 2025)",
                "Netvibes (http://www.netvibes.com/; 1 subscribers; feedID: 6639445)",
                agg("Netvibes", Some("6639445"), 1),
            ),
            (
                "Google Feedfetcher, http://www.google.com/feedfetcher.html (named in the UA; retired)",
                "Feedfetcher-Google; (+http://www.google.com/feedfetcher.html; 4 subscribers; feed-id=9048986372668769311)",
                agg("Google Feedfetcher", Some("9048986372668769311"), 4),
            ),
            (
                "Overcast's podcaster info page, https://overcast.fm/podcasterinfo",
                "Overcast/1.0 Podcast Sync (123 subscribers; feed-id=456789; +http://overcast.fm/)",
                agg("Overcast", Some("456789"), 123),
            ),
            (
                "made up: an aggregator not in the table still counts, under its product token",
                "Mozilla/5.0 (compatible; Newsify/3.1; +http://newsify.io; 9 subscribers)",
                agg("Newsify", None, 9),
            ),
        ];
        for (source, ua, want) in cases {
            assert!(!source.is_empty());
            check(ua, want.clone());
        }
    }

    #[test]
    fn readers_and_crawlers_state_no_count() {
        let cases: &[(&str, Client)] = &[
            // self-hosted and desktop readers: one subscriber each, estimated by pairs
            (
                "Mozilla/5.0 (compatible; Miniflux/2.2.3; +https://miniflux.app)",
                Client::Reader,
            ),
            ("Tiny Tiny RSS/24.02 (https://tt-rss.org/)", Client::Reader),
            (
                "FreshRSS/1.23.1 (Linux; https://freshrss.org)",
                Client::Reader,
            ),
            (
                "NetNewsWire (RSS Reader; https://netnewswire.com/)",
                Client::Reader,
            ),
            // Feedly without a count is one reader, not an aggregator count
            (
                "Feedly/1.0 (+http://www.feedly.com/fetcher.html; like FeedFetcher-Google)",
                Client::Reader,
            ),
            (
                "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
                Client::Crawler("Googlebot"),
            ),
            (
                "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
                Client::Crawler("bingbot"),
            ),
            (
                "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
                Client::Crawler("Yandex bots"),
            ),
            (
                "UptimeRobot/2.0; http://www.uptimerobot.com/",
                Client::Crawler("UptimeRobot"),
            ),
            ("curl/8.5.0", Client::Crawler("curl")),
            ("Wget/1.21.4", Client::Crawler("Wget")),
            ("python-requests/2.32.3", Client::Crawler("python-requests")),
            ("SomeNewBot/0.1", Client::Crawler("other bots")),
            ("", Client::Crawler("no User-Agent")),
        ];
        for (ua, want) in cases {
            check(ua, want.clone());
        }
        assert_eq!(classify(None), Client::Crawler("no User-Agent"));
    }

    #[test]
    fn feed_keys_skip_history_and_sort_bundles() {
        assert_eq!(
            feed_key("/feeds/all.rss", None).as_deref(),
            Some("/feeds/all.rss")
        );
        assert_eq!(
            feed_key("/feeds/all.rss", Some("utm_source=x&page=1")).as_deref(),
            Some("/feeds/all.rss")
        );
        assert_eq!(feed_key("/feeds/all.rss", Some("page=2")), None);
        assert_eq!(
            feed_key("/feeds/all.rss", Some("sections=b,a,b&limit=10")).as_deref(),
            Some("/feeds/all.rss?sections=a,b")
        );
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    fn fetch<'a>(feed: &'a str, ip: &str, ua: &'a str) -> Fetch<'a> {
        Fetch {
            feed,
            client: ip.parse().unwrap(),
            user_agent: Some(ua),
        }
    }

    #[test]
    fn latest_count_per_aggregator_and_distinct_readers() {
        let stats = Stats::new([7; 32]);
        let feedly =
            |n: u32| format!("Feedly/1.0 (+http://www.feedly.com/fetcher.html; {n} subscribers; )");
        let (a, b) = (feedly(120), feedly(123));
        for (i, ua) in [&a, &a, &b].into_iter().enumerate() {
            // Feedly polls from several addresses: the count is not summed.
            stats.record(
                &fetch("/feeds/all.rss", &format!("10.0.0.{i}"), ua),
                at(i as u64),
            );
        }
        stats.record(
            &fetch(
                "/feeds/all.rss",
                "10.1.0.1",
                "Feedbin feed-id:1 - 5 subscribers",
            ),
            at(5),
        );
        stats.record(
            &fetch(
                "/feeds/all.rss",
                "10.1.0.1",
                "Feedbin feed-id:2 - 3 subscribers",
            ),
            at(5),
        );
        let reader = "Mozilla/5.0 (compatible; Miniflux/2.2.3; +https://miniflux.app)";
        for _ in 0..3 {
            stats.record(&fetch("/feeds/all.rss", "192.0.2.1", reader), at(10));
        }
        stats.record(&fetch("/feeds/all.rss", "192.0.2.2", reader), at(11));
        stats.record(&fetch("/feeds/all.rss", "192.0.2.2", "curl/8.5.0"), at(11));
        let report = stats.report(at(20));
        let feed = &report.feeds[0];
        assert_eq!(feed.feed, "/feeds/all.rss");
        assert_eq!(feed.aggregator_subscribers, 123 + 5 + 3);
        assert_eq!(feed.other_readers, 2);
        assert_eq!(feed.subscribers, 133);
        assert_eq!(feed.crawlers.len(), 1);
        assert_eq!(
            (feed.crawlers[0].requests, feed.crawlers[0].clients),
            (1, 1)
        );

        // A day later the reader pairs have expired; the counts stand for a week.
        let later = stats.report(at(20 + READER_WINDOW.as_secs() + 1));
        assert_eq!(later.feeds[0].other_readers, 0);
        assert_eq!(later.feeds[0].aggregator_subscribers, 131);
        let gone = stats.report(at(20 + AGGREGATOR_TTL.as_secs() + 1));
        assert!(gone.feeds.is_empty(), "{gone:?}");
    }

    #[test]
    fn state_keeps_counts_only_and_refuses_data() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let inside = StateDir::open(&data.join("state"), &data).unwrap_err();
        assert!(
            inside.to_string().contains("inside the data directory"),
            "{inside}"
        );
        assert!(StateDir::open(&data, &data).is_err());

        let state = StateDir::open(&dir.path().join("state"), &data).unwrap();
        let stats = Stats::new([1; 32]);
        stats.record(
            &fetch(
                "/feeds/all.rss",
                "10.0.0.1",
                "Feedbin feed-id:9 - 4 subscribers",
            ),
            at(0),
        );
        stats.record(
            &fetch("/feeds/all.rss", "192.0.2.9", "NetNewsWire (RSS Reader)"),
            at(0),
        );
        state.save(&stats).unwrap();
        let text = std::fs::read_to_string(state.file()).unwrap();
        assert!(
            !text.contains("192.0.2.9") && !text.contains("NetNewsWire"),
            "{text}"
        );
        let names: Vec<_> = std::fs::read_dir(dir.path().join("state"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [STATE_FILE], "no temporary file is left");

        let restored = Stats::new([2; 32]);
        assert_eq!(state.load(&restored, at(60)).unwrap(), 1);
        let report = restored.report(at(60));
        assert_eq!(report.feeds[0].aggregator_subscribers, 4);
        assert_eq!(report.feeds[0].other_readers, 0);
    }
}
