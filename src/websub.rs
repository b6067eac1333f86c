//! WebSub publishing (W3C WebSub, the protocol formerly called PubSubHubbub):
//! which feeds are topics of the configured hub, and the pings that tell the
//! hub a feed changed.
//!
//! Two halves:
//! - **pure**: a feed's [`Topic`] (its canonical URL, the hub, and the `Link`
//!   header value announcing both), built with the snapshot; and
//!   [`changed_topics`], the feeds whose bytes differ between two snapshots;
//! - **I/O**: the [`Publisher`], a background task on the tokio runtime that
//!   POSTs `hub.mode=publish` to the hub, with retries and backoff.
//!
//! Only a changed feed is pinged: a feed is "changed" when its identity ETag
//! (a hash of its bytes) differs from the previous snapshot's, or it is new.
//! The startup snapshot is never diffed against anything, so starting the
//! server sends no pings; neither do brotli variants being installed.
//!
//! [`Publisher::publish`] only takes a lock and pushes onto a queue, so the
//! reload thread never waits on the network, and serving never touches this
//! module beyond reading [`Topic::link`] from the snapshot.

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::StatusCode;
use tokio::sync::{Notify, Semaphore};
use url::Url;

use crate::admin::metrics::{Metrics, PingOutcome};
use crate::snapshot::Snapshot;
pub use crate::snapshot::Topic;

/// The topics whose bytes changed from `old` to `new`, in key order (feed
/// by feed, RSS, Atom, then JSON): every
/// resource of `new` that has a topic and whose identity ETag differs from the
/// resource at the same path in `old`, or that `old` did not have. Removed
/// feeds are not pinged (there is nothing left to fetch).
pub fn changed_topics<'a>(old: &Snapshot, new: &'a Snapshot) -> Vec<&'a Topic> {
    new.resources
        .iter()
        .filter_map(|(key, r)| {
            let topic = r.topic.as_ref()?;
            let same = old
                .resources
                .get(key)
                .is_some_and(|o| o.identity.etag == r.identity.etag);
            (!same).then_some(topic)
        })
        .collect()
}

/// How pings are retried.
#[derive(Debug, Clone)]
pub struct Retry {
    /// Attempts per ping, the first included.
    pub attempts: u32,
    /// Wait before the second attempt; each later wait doubles.
    pub first_delay: Duration,
    /// The longest wait between two attempts.
    pub max_delay: Duration,
    /// Time allowed for one request, connection included.
    pub timeout: Duration,
}

impl Default for Retry {
    /// Five attempts, 1 s, 2 s, 4 s and 8 s apart: a hub that is down for
    /// about a quarter of a minute still hears about the change.
    fn default() -> Self {
        Retry {
            attempts: 5,
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
        }
    }
}

impl Retry {
    /// The wait after failed attempt number `attempt` (1-based).
    fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.first_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }
}

/// Pings waiting for the sender. A feed URL can be pending once: a burst of
/// reloads that changes it five times before the sender gets to it is one
/// ping, since the hub fetches the current bytes anyway.
const MAX_PENDING: usize = 10_000;

/// Pings being sent (or waiting to be retried) at once.
const CONCURRENCY: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Ping {
    hub: Url,
    topic: Url,
}

#[derive(Debug, Default)]
struct Queue {
    order: VecDeque<Ping>,
    pending: HashSet<Ping>,
}

#[derive(Debug, Default)]
struct Shared {
    queue: Mutex<Queue>,
    wake: Notify,
    /// Counts each attempt's outcome for the admin listener, when there is one.
    metrics: Option<Arc<Metrics>>,
}

impl Shared {
    fn count(&self, outcome: PingOutcome) {
        if let Some(m) = &self.metrics {
            m.ping(outcome);
        }
    }
}

/// The sending half of WebSub: queues pings and hands them to a background task.
#[derive(Debug, Clone)]
pub struct Publisher {
    shared: Arc<Shared>,
}

impl Publisher {
    /// A publisher and the task that sends its pings; spawn the task on a
    /// tokio runtime. Pings queued before it runs wait for it. With
    /// `metrics`, every attempt's outcome is counted there.
    pub fn new(
        retry: Retry,
        metrics: Option<Arc<Metrics>>,
    ) -> Result<(Publisher, impl Future<Output = ()>), reqwest::Error> {
        let client = reqwest::Client::builder()
            .user_agent("Vestnik (WebSub publisher)")
            .timeout(retry.timeout)
            .connect_timeout(retry.timeout)
            // A hub that redirects a POST is misconfigured here; following a
            // 301/302 would turn the ping into a GET and lose it silently.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let shared = Arc::new(Shared {
            metrics,
            ..Shared::default()
        });
        let task = send_loop(shared.clone(), client, retry);
        Ok((Publisher { shared }, task))
    }

    /// Queues one ping per topic, skipping those already pending. Never
    /// blocks on the network; returns how many were queued.
    pub fn publish<'a>(&self, topics: impl IntoIterator<Item = &'a Topic>) -> usize {
        let mut queued = 0;
        {
            let Ok(mut q) = self.shared.queue.lock() else {
                return 0;
            };
            for t in topics {
                let ping = Ping {
                    hub: t.hub.clone(),
                    topic: t.url.clone(),
                };
                if q.pending.contains(&ping) {
                    continue;
                }
                if q.order.len() >= MAX_PENDING {
                    tracing::warn!(topic = %t.url, "{MAX_PENDING} pings pending; dropping");
                    self.shared.count(PingOutcome::Dropped);
                    continue;
                }
                q.pending.insert(ping.clone());
                q.order.push_back(ping);
                queued += 1;
            }
        }
        if queued > 0 {
            self.shared.wake.notify_one();
        }
        queued
    }
}

/// Takes pings off the queue and sends each on its own task, at most
/// [`CONCURRENCY`] at once, so one hub's backoff does not hold up the others.
async fn send_loop(shared: Arc<Shared>, client: reqwest::Client, retry: Retry) {
    let permits = Arc::new(Semaphore::new(CONCURRENCY));
    let retry = Arc::new(retry);
    loop {
        // A notify_one with no waiter is kept, so a ping queued between the
        // last pop and this await is not missed.
        shared.wake.notified().await;
        loop {
            let next = shared.queue.lock().ok().and_then(|mut q| {
                let ping = q.order.pop_front()?;
                // From here on a new change to this feed queues a new ping:
                // the hub may already have fetched the older bytes.
                q.pending.remove(&ping);
                Some(ping)
            });
            let Some(ping) = next else { break };
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            let (client, retry, counts) = (client.clone(), retry.clone(), shared.clone());
            tokio::spawn(async move {
                deliver(&client, &ping, &retry, &counts).await;
                drop(permit);
            });
        }
    }
}

/// Why one attempt failed.
enum Failure {
    /// Worth retrying: network errors, timeouts, 408, 429 and 5xx.
    Transient(String),
    /// The hub refused the ping (another 4xx, or a redirect); retrying the
    /// same request would be refused again.
    Permanent(String),
}

/// Sends one ping, retrying transient failures with exponential backoff.
async fn deliver(client: &reqwest::Client, ping: &Ping, retry: &Retry, counts: &Shared) {
    let attempts = retry.attempts.max(1);
    for attempt in 1..=attempts {
        let result = post(client, ping).await;
        counts.count(match &result {
            Ok(_) => PingOutcome::Delivered,
            Err(Failure::Permanent(_)) => PingOutcome::Refused,
            Err(Failure::Transient(_)) if attempt < attempts => PingOutcome::Retried,
            Err(Failure::Transient(_)) => PingOutcome::GaveUp,
        });
        match result {
            Ok(status) => {
                tracing::info!(hub = %ping.hub, topic = %ping.topic, attempt, status = status.as_u16(), "hub notified");
                return;
            }
            Err(Failure::Permanent(why)) => {
                tracing::warn!(hub = %ping.hub, topic = %ping.topic, attempt, "hub refused the ping ({why}); not retrying");
                return;
            }
            Err(Failure::Transient(why)) if attempt < attempts => {
                let wait = retry.delay(attempt);
                tracing::warn!(hub = %ping.hub, topic = %ping.topic, attempt, "ping failed ({why}); retrying in {wait:?}");
                tokio::time::sleep(wait).await;
            }
            Err(Failure::Transient(why)) => {
                tracing::error!(hub = %ping.hub, topic = %ping.topic, attempt, "ping failed ({why}); giving up");
            }
        }
    }
}

/// One `hub.mode=publish` POST for one topic. One `hub.url` per request: the
/// multi-URL form is a common extension, not part of every hub.
async fn post(client: &reqwest::Client, ping: &Ping) -> Result<StatusCode, Failure> {
    let response = client
        .post(ping.hub.clone())
        .form(&[("hub.mode", "publish"), ("hub.url", ping.topic.as_str())])
        .send()
        .await
        .map_err(|e| Failure::Transient(error_chain(&e)))?;
    let status = response.status();
    if status.is_success() {
        Ok(status)
    } else if status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
    {
        Err(Failure::Transient(format!("hub answered {status}")))
    } else {
        Err(Failure::Permanent(format!("hub answered {status}")))
    }
}

/// An error with its causes, since reqwest's own message omits them
/// ("error sending request" rather than "connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::model::{Scope, Site};
    use crate::render::{Format, render};

    const HUB: &str = "https://hub.example/";

    fn site(hub: Option<&str>, entries: &[(&str, &str)]) -> Arc<Site> {
        let hub = hub
            .map(|h| format!("websub_hub = \"{h}\"\n"))
            .unwrap_or_default();
        let config = Config::parse(
            std::path::Path::new("site.toml"),
            &format!(
                "title = \"T\"\nbase_url = \"http://example.org/\"\ntimezone = \"UTC\"\n{hub}\
                 [[sections]]\nslug = \"a\"\ntitle = \"A\"\n[[sections]]\nslug = \"b\"\ntitle = \"B\"\n"
            ),
        )
        .unwrap();
        let sanitizer = crate::entry::html::Sanitizer::new(&config.base_url);
        let ctx = crate::entry::Context {
            config: &config,
            sanitizer: &sanitizer,
            spool: None,
        };
        let entries = entries
            .iter()
            .map(|(section, body)| {
                let file = format!(
                    "+++\ntitle = \"{section}\"\ndate = 2024-01-01\nsections = [\"{section}\"]\n+++\n{body}\n"
                );
                let name = format!("{section}.md");
                Arc::new(
                    crate::entry::parse(&ctx, name.as_ref(), &name, file.as_bytes())
                        .entry
                        .unwrap(),
                )
            })
            .collect();
        Arc::new(Site::new(config, entries, Vec::new()))
    }

    fn urls(topics: &[&Topic]) -> Vec<String> {
        topics.iter().map(|t| t.url.to_string()).collect()
    }

    #[test]
    fn every_format_names_the_hub_and_itself() {
        let site = site(Some(HUB), &[("a", "x")]);
        let feed = site.feed(Scope::All);
        let text = |f| String::from_utf8(render(&feed, f, crate::render::Retain::Keep)).unwrap();
        let rss = text(Format::Rss);
        assert!(
            rss.contains(r#"<atom:link href="http://example.org/feeds/all.rss" rel="self" type="application/rss+xml"/>"#)
                && rss.contains(r#"<atom:link href="https://hub.example/" rel="hub"/>"#),
            "{rss}"
        );
        let atom = text(Format::Atom);
        assert!(
            atom.contains(r#"<link href="http://example.org/feeds/all.atom" rel="self" type="application/atom+xml"/>"#)
                && atom.contains(r#"<link href="https://hub.example/" rel="hub"/>"#),
            "{atom}"
        );
        let json: serde_json::Value =
            serde_json::from_slice(&render(&feed, Format::Json, crate::render::Retain::Keep))
                .unwrap();
        assert_eq!(json["feed_url"], "http://example.org/feeds/all.json");
        assert_eq!(
            json["hubs"],
            serde_json::json!([{"type": "WebSub", "url": HUB}])
        );
    }

    #[test]
    fn only_announced_feeds_name_the_hub() {
        let site = site(Some(HUB), &[("a", "x"), ("b", "y"), ("a", "z")]);
        let sections: Vec<&crate::config::Section> = site.config.sections.iter().collect();
        let unannounced = [
            site.feed_page(Scope::All, 1, 2).unwrap(),
            site.feed_page(Scope::All, 2, 1).unwrap(),
            site.feed_page(Scope::Bundle(&sections), site.config.feed_limit, 1)
                .unwrap(),
        ];
        for feed in &unannounced {
            for f in Format::ALL {
                let text = String::from_utf8(render(feed, f, crate::render::Retain::Keep)).unwrap();
                assert!(!text.contains("hub"), "{f:?}: {text}");
            }
        }
        let standard = site.feed(Scope::Section(&site.config.sections[0]));
        for f in Format::ALL {
            let text =
                String::from_utf8(render(&standard, f, crate::render::Retain::Keep)).unwrap();
            assert!(text.contains(HUB), "{f:?}: {text}");
        }
    }

    #[test]
    fn without_a_hub_nothing_is_announced() {
        let site = site(None, &[("a", "x")]);
        let feed = site.feed(Scope::All);
        for f in Format::ALL {
            let text = String::from_utf8(render(&feed, f, crate::render::Retain::Keep)).unwrap();
            assert!(!text.contains("hub"), "{f:?}: {text}");
        }
        let snapshot = Snapshot::build_from(site, None);
        assert!(snapshot.resources.values().all(|r| r.topic.is_none()));
    }

    #[test]
    fn feeds_carry_their_link_header_and_other_resources_none() {
        let snapshot = Snapshot::build_from(site(Some(HUB), &[("a", "x")]), None);
        let link = |path: &str| {
            snapshot
                .at(path)
                .unwrap()
                .topic
                .as_ref()
                .map(|t| t.link.to_str().unwrap().to_owned())
        };
        assert_eq!(
            link("/feeds/a.atom").as_deref(),
            Some(
                r#"<https://hub.example/>; rel="hub", <http://example.org/feeds/a.atom>; rel="self""#
            )
        );
        assert_eq!(link("/"), None);
        assert_eq!(link("/sections/a"), None);
        assert_eq!(link("/feeds.opml"), None);
        let topics = snapshot
            .resources
            .values()
            .filter(|r| r.topic.is_some())
            .count();
        assert_eq!(topics, 3 * 3, "all, a and b in three formats");
    }

    #[test]
    fn only_feeds_whose_bytes_changed_are_topics_to_ping() {
        let before = site(Some(HUB), &[("a", "x"), ("b", "y")]);
        let old = Snapshot::build_from(before.clone(), None);
        // Section a's entry gets a new body; b's is the very same entry.
        let mut entries = vec![site(Some(HUB), &[("a", "changed")]).entries[0].clone()];
        entries.extend(before.entries.iter().filter(|e| e.id == "b").cloned());
        let after = Arc::new(Site::new(before.config.clone(), entries, Vec::new()));
        let new = Snapshot::build_from(after, Some(&old));
        assert_eq!(
            urls(&changed_topics(&old, &new)),
            [
                "http://example.org/feeds/a.rss",
                "http://example.org/feeds/a.atom",
                "http://example.org/feeds/a.json",
                "http://example.org/feeds/all.rss",
                "http://example.org/feeds/all.atom",
                "http://example.org/feeds/all.json",
            ]
        );
        // Nothing changed: nothing to ping, even though brotli variants
        // (new resource allocations, same bytes) were installed.
        let finished = new.finished();
        assert!(changed_topics(&new, &finished).is_empty());
        assert!(changed_topics(&new, &new).is_empty());
    }

    #[test]
    fn new_feeds_are_pinged_and_removed_ones_are_not() {
        let hubless = Snapshot::build_from(site(None, &[("a", "x")]), None);
        let with_hub = Snapshot::build_from(site(Some(HUB), &[("a", "x")]), Some(&hubless));
        // Naming a hub changes every feed's bytes: all nine are announced.
        assert_eq!(changed_topics(&hubless, &with_hub).len(), 9);

        let mut fewer = site(Some(HUB), &[("a", "x")]);
        Arc::get_mut(&mut fewer).unwrap().config.sections.pop();
        let fewer = Snapshot::build_from(fewer, Some(&with_hub));
        assert!(changed_topics(&with_hub, &fewer).is_empty());
        let back = changed_topics(&fewer, &with_hub);
        assert_eq!(
            urls(&back),
            [
                "http://example.org/feeds/b.rss",
                "http://example.org/feeds/b.atom",
                "http://example.org/feeds/b.json",
            ]
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let r = Retry {
            attempts: 8,
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(5),
            timeout: Duration::from_secs(1),
        };
        let waits: Vec<u64> = (1..=5).map(|a| r.delay(a).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 5, 5]);
        assert_eq!(r.delay(200), Duration::from_secs(5));
    }

    #[test]
    fn pending_pings_are_coalesced() {
        let (publisher, _task) = Publisher::new(Retry::default(), None).unwrap();
        let hub = Url::parse(HUB).unwrap();
        let t = |p: &str| Topic::new(&hub, Url::parse(p).unwrap()).unwrap();
        let (a, b) = (t("http://e.org/feeds/a.rss"), t("http://e.org/feeds/b.rss"));
        assert_eq!(publisher.publish([&a, &b]), 2);
        assert_eq!(publisher.publish([&a, &a, &b]), 0);
        assert_eq!(publisher.shared.queue.lock().unwrap().order.len(), 2);
    }
}
