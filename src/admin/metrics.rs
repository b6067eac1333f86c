//! Prometheus metrics of a running server, kept with the `prometheus-client`
//! crate and encoded by it (Prometheus text 0.0.4, or OpenMetrics when the
//! scraper asks for it).
//!
//! One [`Metrics`] is shared as `Arc` by the I/O edges that count: the
//! request path (`serve::answer`), the reload loop (`Reloader::apply`) and
//! the WebSub publisher's task. Figures that describe the current snapshot
//! (its age, entries, problems, compression queue) are read from it when
//! `/metrics` is scraped, so they are never stale.

use std::fmt;
use std::time::{Duration, SystemTime};

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::snapshot::Snapshot;

/// What kind of resource a request asked for: a closed set, so the number
/// of time series stays fixed whatever paths clients invent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// `/feeds/{slug}.{ext}`, the Yandex feeds included.
    Feed,
    /// `/` and `/sections/{slug}`.
    Page,
    /// `/news/{id}`.
    News,
    /// `/media/{path}`.
    Media,
    /// `/feeds.opml`.
    Opml,
    /// `/healthz`.
    Healthz,
    /// Anything else (404s, mostly).
    Other,
}

impl Route {
    /// Every route kind.
    pub const ALL: [Route; 7] = [
        Route::Feed,
        Route::Page,
        Route::News,
        Route::Media,
        Route::Opml,
        Route::Healthz,
        Route::Other,
    ];

    /// The route kind of a request path (as sent, before percent-decoding:
    /// the prefixes are ASCII, so decoding never changes the kind).
    pub fn of(path: &str) -> Route {
        match path {
            "/" => Route::Page,
            "/healthz" => Route::Healthz,
            "/feeds.opml" => Route::Opml,
            p if p.starts_with("/feeds/") => Route::Feed,
            p if p.starts_with("/sections/") => Route::Page,
            p if p.starts_with("/news/") => Route::News,
            p if p.starts_with("/media/") => Route::Media,
            _ => Route::Other,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Route::Feed => "feed",
            Route::Page => "page",
            Route::News => "news",
            Route::Media => "media",
            Route::Opml => "opml",
            Route::Healthz => "healthz",
            Route::Other => "other",
        }
    }
}

impl EncodeLabelValue for Route {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), fmt::Error> {
        fmt::Write::write_str(encoder, self.as_str())
    }
}

/// The content coding a response was sent in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Coding {
    /// No `Content-Encoding`.
    Identity,
    /// `gzip`.
    Gzip,
    /// `br`.
    Brotli,
}

impl Coding {
    /// The coding named by a `Content-Encoding` value; anything unknown
    /// (Vestnik sends nothing else) counts as identity.
    pub fn from_header(value: Option<&[u8]>) -> Coding {
        match value {
            Some(b"gzip") => Coding::Gzip,
            Some(b"br") => Coding::Brotli,
            _ => Coding::Identity,
        }
    }
}

impl EncodeLabelValue for Coding {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), fmt::Error> {
        let s = match self {
            Coding::Identity => "identity",
            Coding::Gzip => "gzip",
            Coding::Brotli => "br",
        };
        fmt::Write::write_str(encoder, s)
    }
}

/// What became of one WebSub ping attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PingOutcome {
    /// The hub answered 2xx.
    Delivered,
    /// The hub refused (a 4xx other than 408/429, or a redirect): not retried.
    Refused,
    /// A transient failure that will be retried.
    Retried,
    /// A transient failure on the last attempt.
    GaveUp,
    /// Not queued: too many pings were pending.
    Dropped,
}

impl EncodeLabelValue for PingOutcome {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), fmt::Error> {
        let s = match self {
            PingOutcome::Delivered => "delivered",
            PingOutcome::Refused => "refused",
            PingOutcome::Retried => "retried",
            PingOutcome::GaveUp => "gave_up",
            PingOutcome::Dropped => "dropped",
        };
        fmt::Write::write_str(encoder, s)
    }
}

/// Whether a reload swapped in a new snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReloadOutcome {
    /// A new snapshot was built and swapped in.
    Applied,
    /// Nothing changed (an editor's temporary file, a touch): no swap.
    Unchanged,
}

impl EncodeLabelValue for ReloadOutcome {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), fmt::Error> {
        let s = match self {
            ReloadOutcome::Applied => "applied",
            ReloadOutcome::Unchanged => "unchanged",
        };
        fmt::Write::write_str(encoder, s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    route: Route,
    status: u16,
    encoding: Coding,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabels {
    route: Route,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct PingLabels {
    outcome: PingOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReloadLabels {
    outcome: ReloadOutcome,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Request durations, 50 µs to ~13 s: a cached feed answers in tens of
/// microseconds, a large on-demand page in seconds.
fn request_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_05, 2.0, 19))
}

/// One finished request, as the access log sees it.
#[derive(Debug, Clone, Copy)]
pub struct Served {
    /// The route kind of the path.
    pub route: Route,
    /// The response status.
    pub status: u16,
    /// The coding the body was sent in.
    pub coding: Coding,
    /// Body bytes sent (`Content-Length`; 0 for HEAD and 304).
    pub bytes: u64,
    /// Time from receiving the head to having the response ready.
    pub took: Duration,
}

/// Every metric Vestnik exports, and the registry that encodes them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    response_bytes: Family<RouteLabels, Counter>,
    not_modified: Family<RouteLabels, Counter>,
    request_duration: HistogramFamily<RouteLabels>,
    rate_limited: Counter,
    reloads: Family<ReloadLabels, Counter>,
    reload_duration: Histogram,
    last_load: Gauge,
    snapshot_age: Gauge<f64, std::sync::atomic::AtomicU64>,
    compressing: Gauge,
    problems: Gauge,
    entries: Gauge,
    pings: Family<PingLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric at zero, registered under the `vestnik_` prefix.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("vestnik");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "Requests answered on the public address, by route kind, status and content coding",
            requests.clone(),
        );
        let response_bytes = Family::<RouteLabels, Counter>::default();
        registry.register_with_unit(
            "http_response_body",
            "Response body bytes sent (Content-Length; HEAD and 304 send none), by route kind",
            Unit::Bytes,
            response_bytes.clone(),
        );
        let not_modified = Family::<RouteLabels, Counter>::default();
        registry.register(
            "http_not_modified",
            "304 Not Modified answers, by route kind; divide by vestnik_http_requests_total for the 304 ratio",
            not_modified.clone(),
        );
        let request_duration: HistogramFamily<RouteLabels> =
            Family::new_with_constructor(request_histogram);
        registry.register_with_unit(
            "http_request_duration",
            "Time from a request's head to its response being ready, by route kind",
            Unit::Seconds,
            request_duration.clone(),
        );
        let rate_limited = Counter::default();
        registry.register(
            "http_rate_limited",
            "Requests refused with 429 by the per-client rate limit",
            rate_limited.clone(),
        );
        let reloads = Family::<ReloadLabels, Counter>::default();
        registry.register(
            "reloads",
            "Reloads of the data directory (file changes, SIGHUP), by whether a new snapshot was swapped in",
            reloads.clone(),
        );
        let reload_duration = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register_with_unit(
            "reload_duration",
            "Time from a change to the new snapshot being served",
            Unit::Seconds,
            reload_duration.clone(),
        );
        let last_load = Gauge::default();
        registry.register(
            "reload_last_success_timestamp_seconds",
            "Unix time at which the current data was loaded and swapped in (startup or the last applied reload)",
            last_load.clone(),
        );
        let snapshot_age = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register_with_unit(
            "snapshot_age",
            "Seconds since the snapshot being served was built",
            Unit::Seconds,
            snapshot_age.clone(),
        );
        let compressing = Gauge::default();
        registry.register(
            "compression_queue",
            "Resources whose gzip or brotli variant is still being computed (healthz compressing)",
            compressing.clone(),
        );
        let problems = Gauge::default();
        registry.register(
            "problems",
            "Problems in the data directory, as vestnik check reports them",
            problems.clone(),
        );
        let entries = Gauge::default();
        registry.register(
            "entries",
            "Published entries in the current snapshot",
            entries.clone(),
        );
        let pings = Family::<PingLabels, Counter>::default();
        registry.register(
            "websub_pings",
            "WebSub publish pings to the hub, by outcome of each attempt",
            pings.clone(),
        );
        // Series of closed label sets start at 0, so rates and ratios work
        // before the first event (a missing series is not a zero to PromQL).
        for route in Route::ALL {
            drop(not_modified.get_or_create(&RouteLabels { route }));
        }
        for outcome in [ReloadOutcome::Applied, ReloadOutcome::Unchanged] {
            drop(reloads.get_or_create(&ReloadLabels { outcome }));
        }
        for outcome in [
            PingOutcome::Delivered,
            PingOutcome::Refused,
            PingOutcome::Retried,
            PingOutcome::GaveUp,
            PingOutcome::Dropped,
        ] {
            drop(pings.get_or_create(&PingLabels { outcome }));
        }
        Metrics {
            registry,
            requests,
            response_bytes,
            not_modified,
            request_duration,
            rate_limited,
            reloads,
            reload_duration,
            last_load,
            snapshot_age,
            compressing,
            problems,
            entries,
            pings,
        }
    }

    /// Counts one answered request.
    pub fn served(&self, s: &Served) {
        let route = RouteLabels { route: s.route };
        self.requests
            .get_or_create(&RequestLabels {
                route: s.route,
                status: s.status,
                encoding: s.coding,
            })
            .inc();
        self.response_bytes.get_or_create(&route).inc_by(s.bytes);
        if s.status == 304 {
            self.not_modified.get_or_create(&route).inc();
        }
        self.request_duration
            .get_or_create(&route)
            .observe(s.took.as_secs_f64());
    }

    /// Counts one request refused by the rate limit (it is counted by
    /// [`Metrics::served`] as a 429 too).
    pub fn rate_limited(&self) {
        self.rate_limited.inc();
    }

    /// Counts one reload; `loaded_at` is when an applied reload swapped its
    /// snapshot in.
    pub fn reloaded(&self, outcome: ReloadOutcome, took: Duration, loaded_at: SystemTime) {
        self.reloads.get_or_create(&ReloadLabels { outcome }).inc();
        self.reload_duration.observe(took.as_secs_f64());
        if outcome == ReloadOutcome::Applied {
            self.loaded(loaded_at);
        }
    }

    /// Records when the data being served was loaded (startup, reloads).
    pub fn loaded(&self, at: SystemTime) {
        self.last_load.set(unix_seconds(at) as i64);
    }

    /// Counts one WebSub ping attempt's outcome.
    pub fn ping(&self, outcome: PingOutcome) {
        self.pings.get_or_create(&PingLabels { outcome }).inc();
    }

    /// Encodes every metric, after reading the snapshot figures from
    /// `snapshot` at `now`. `openmetrics` picks the OpenMetrics text format
    /// over Prometheus text 0.0.4.
    pub fn encode(&self, snapshot: &Snapshot, now: SystemTime, openmetrics: bool) -> String {
        let age = snapshot
            .built
            .and_then(|b| now.duration_since(b).ok())
            .map_or(0.0, |d| d.as_secs_f64());
        self.snapshot_age.set(age);
        self.compressing.set(snapshot.health.compressing as i64);
        self.problems.set(snapshot.health.problems as i64);
        self.entries.set(snapshot.health.entries as i64);
        let mut out = String::new();
        let encoded = if openmetrics {
            prometheus_client::encoding::text::encode(&mut out, &self.registry)
        } else {
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
        };
        // Writing into a String fails only if a metric's own encoder does,
        // which the crate's built-in metrics never do.
        if encoded.is_err() {
            out.clear();
        }
        out
    }
}

/// The `Content-Type` of [`Metrics::encode`]'s output.
pub fn content_type(openmetrics: bool) -> &'static str {
    if openmetrics {
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    } else {
        prometheus_client::encoding::prometheus_text::CONTENT_TYPE
    }
}

/// Seconds since the Unix epoch (0 for times before it).
pub fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_a_closed_set() {
        let cases = [
            ("/", Route::Page),
            ("/sections/sport", Route::Page),
            ("/feeds/all.rss", Route::Feed),
            ("/feeds/all.yandex.rss", Route::Feed),
            ("/feeds.opml", Route::Opml),
            ("/news/x", Route::News),
            ("/media/a.jpg", Route::Media),
            ("/healthz", Route::Healthz),
            ("/wp-login.php", Route::Other),
            ("/feeds", Route::Other),
        ];
        for (path, want) in cases {
            assert_eq!(Route::of(path), want, "{path}");
        }
    }

    #[test]
    fn counts_show_up_in_both_formats() {
        let m = Metrics::new();
        m.served(&Served {
            route: Route::Feed,
            status: 304,
            coding: Coding::Identity,
            bytes: 0,
            took: Duration::from_micros(80),
        });
        m.served(&Served {
            route: Route::Feed,
            status: 200,
            coding: Coding::Brotli,
            bytes: 1234,
            took: Duration::from_micros(120),
        });
        m.ping(PingOutcome::Delivered);
        let site = crate::load_site(std::path::Path::new("tests/data/good-min")).unwrap();
        let mut snapshot = Snapshot::build_from(std::sync::Arc::new(site), None);
        let built = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        snapshot.built = Some(built);
        let text = m.encode(&snapshot, built + Duration::from_secs(7), false);
        for line in [
            "vestnik_http_requests_total{route=\"feed\",status=\"304\",encoding=\"identity\"} 1",
            "vestnik_http_requests_total{route=\"feed\",status=\"200\",encoding=\"br\"} 1",
            "vestnik_http_response_body_bytes_total{route=\"feed\"} 1234",
            "vestnik_http_not_modified_total{route=\"feed\"} 1",
            "vestnik_snapshot_age_seconds 7.0",
            "vestnik_websub_pings_total{outcome=\"delivered\"} 1",
            "# TYPE vestnik_http_request_duration_seconds histogram",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing in\n{text}"
            );
        }
        assert!(!text.contains("# EOF"));
        let open = m.encode(&snapshot, built, true);
        assert!(open.ends_with("# EOF\n"), "{open}");
    }
}
