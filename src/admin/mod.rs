//! The admin listener: `/metrics` for Prometheus, `/stats` (subscribers per
//! feed) and `/problems` (what `vestnik check` prints) for editors.
//!
//! It runs only when `vestnik serve --admin-addr` is given, on its own
//! address and its own accept loop, never on the public one: these pages
//! say who reads what and where the data is broken, which is for the people
//! who run the site. Bind it to loopback or a private network.
//!
//! [`respond`] is pure over its inputs (the current snapshot, the shared
//! [`Metrics`] and [`Stats`], and `now`), so tests call it in-process.

pub mod metrics;
pub mod stats;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use askama::Template;
use bytes::Bytes;
use http::header::{ACCEPT, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

pub use metrics::Metrics;
pub use stats::Stats;

use crate::snapshot::Current;

/// What the public server reports to the admin listener; empty (the
/// default) when there is no admin listener, so nothing is counted.
#[derive(Debug, Clone, Default)]
pub struct Observers {
    /// Request counters and histograms.
    pub metrics: Option<Arc<Metrics>>,
    /// Subscribers per feed.
    pub stats: Option<Arc<Stats>>,
}

impl Observers {
    /// True when anyone is listening (there is an admin listener).
    pub fn is_some(&self) -> bool {
        self.metrics.is_some() || self.stats.is_some()
    }

    /// Reports one answered request at `now`: the metrics count every
    /// request; the subscriber figures count successful fetches (200 or
    /// 304) of feeds that are subscriptions (see [`stats::feed_key`]).
    pub fn answered(&self, a: &Answered<'_>, now: SystemTime) {
        if let Some(m) = &self.metrics {
            if a.rate_limited {
                m.rate_limited();
            }
            m.served(&a.served);
        }
        let fetched =
            a.served.route == metrics::Route::Feed && matches!(a.served.status, 200 | 304);
        if let (Some(s), true) = (&self.stats, fetched) {
            if let Some(feed) = stats::feed_key(a.path, a.query) {
                let fetch = stats::Fetch {
                    feed: &feed,
                    client: a.client,
                    user_agent: a.user_agent,
                };
                s.record(&fetch, now);
            }
        }
    }
}

/// One request answered on the public address, as [`Observers`] see it.
#[derive(Debug, Clone, Copy)]
pub struct Answered<'a> {
    /// The request path, as sent.
    pub path: &'a str,
    /// The query string, if any.
    pub query: Option<&'a str>,
    /// The `User-Agent` header, if any (and valid text).
    pub user_agent: Option<&'a str>,
    /// The client (after `--trusted-proxy` resolution).
    pub client: std::net::IpAddr,
    /// True when the rate limit refused it.
    pub rate_limited: bool,
    /// Its route, status, coding, size and duration.
    pub served: metrics::Served,
}

/// Everything the admin pages read.
#[derive(Debug, Clone)]
pub struct Admin {
    /// The snapshot being served publicly.
    pub current: Current,
    /// The counters the I/O edges update.
    pub metrics: Arc<Metrics>,
    /// Subscribers per feed.
    pub stats: Arc<Stats>,
}

/// Connections the admin listener serves at once: it is for a scraper
/// and a few editors.
const MAX_CONNECTIONS: usize = 64;

/// Serves the admin pages on `listener` until `shutdown` completes.
pub async fn run(
    listener: TcpListener,
    admin: Arc<Admin>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10))
        .max_buf_size(16 * 1024);
    let mut acceptor = crate::listen::Acceptor::new(listener, MAX_CONNECTIONS, "admin: ");
    tokio::pin!(shutdown);
    while let Some((permit, stream, peer)) = acceptor.next(shutdown.as_mut()).await? {
        let admin = admin.clone();
        let service = service_fn(move |req: Request<hyper::body::Incoming>| {
            let admin = admin.clone();
            async move { Ok::<_, Infallible>(respond(&admin, &req, SystemTime::now())) }
        });
        let conn = builder.serve_connection(TokioIo::new(stream), service);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, "admin connection closed: {e}");
            }
            drop(permit);
        });
    }
    Ok(())
}

/// The response body type.
pub type Body = Full<Bytes>;

/// Answers one admin request at `now`. Never panics; every failure is a status.
pub fn respond<B>(admin: &Admin, req: &Request<B>, now: SystemTime) -> Response<Body> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = text(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "method not allowed; use GET or HEAD\n".into(),
        );
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let json = query_format_json(req.uri().query());
    let snapshot = admin.current.load();
    let mut response = match req.uri().path() {
        "/" => html(index_page(&snapshot)),
        "/metrics" => {
            let openmetrics = wants_openmetrics(req);
            text(
                StatusCode::OK,
                metrics::content_type(openmetrics),
                admin.metrics.encode(&snapshot, now, openmetrics),
            )
        }
        "/stats" if !json => html(stats_page(&snapshot, &admin.stats.report(now))),
        "/stats" | "/stats.json" => json_response(&admin.stats.report(now)),
        "/problems" if !json => html(problems_page(&snapshot)),
        "/problems" | "/problems.json" => json_response(&problems_json(&snapshot)),
        _ => text(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found; the admin pages are /metrics, /stats, /stats.json, /problems and /problems.json\n".into(),
        ),
    };
    // Figures of the moment: never cached by a browser or a proxy.
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if req.method() == Method::HEAD {
        *response.body_mut() = Full::new(Bytes::new());
    }
    response
}

fn query_format_json(query: Option<&str>) -> bool {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .any(|(k, v)| k == "format" && v == "json")
}

/// Prometheus asks for OpenMetrics first in its `Accept`; anything else
/// gets the classic text format.
fn wants_openmetrics<B>(req: &Request<B>) -> bool {
    req.headers()
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"))
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn html(body: String) -> Response<Body> {
    text(StatusCode::OK, "text/html; charset=utf-8", body)
}

fn json_response<T: serde::Serialize>(value: &T) -> Response<Body> {
    match serde_json::to_string_pretty(value) {
        Ok(mut body) => {
            body.push('\n');
            text(StatusCode::OK, "application/json", body)
        }
        Err(_) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain; charset=utf-8",
            "internal error\n".into(),
        ),
    }
}

/// A Unix time as `2024-05-01 12:00:00 UTC`, for the pages.
fn utc(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|s| chrono::DateTime::<chrono::Utc>::from_timestamp(s, 0))
        .map_or_else(String::new, |t| {
            t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
        })
}

fn loaded_at(snapshot: &crate::snapshot::Snapshot) -> String {
    snapshot
        .built
        .map(|t| utc(metrics::unix_seconds(t)))
        .unwrap_or_default()
}

#[derive(Template)]
#[template(path = "admin/index.html")]
struct IndexPage {
    site_title: String,
    entries: usize,
    problems: usize,
    loaded: String,
}

fn index_page(snapshot: &crate::snapshot::Snapshot) -> String {
    IndexPage {
        site_title: snapshot.site.config.title.clone(),
        entries: snapshot.health.entries,
        problems: snapshot.health.problems,
        loaded: loaded_at(snapshot),
    }
    .render()
    .unwrap_or_default()
}

/// One problem, as `/problems.json` lists it.
#[derive(Debug, serde::Serialize)]
struct ProblemJson {
    path: String,
    line: usize,
    column: usize,
    message: String,
    /// `path:line:column: message`, as `vestnik check` prints it.
    text: String,
}

#[derive(Debug, serde::Serialize)]
struct ProblemsJson {
    problems: usize,
    entries: usize,
    /// Unix seconds at which the data was loaded.
    loaded: Option<u64>,
    diagnostics: Vec<ProblemJson>,
}

fn problems_json(snapshot: &crate::snapshot::Snapshot) -> ProblemsJson {
    ProblemsJson {
        problems: snapshot.site.diagnostics.len(),
        entries: snapshot.health.entries,
        loaded: snapshot.built.map(metrics::unix_seconds),
        diagnostics: snapshot
            .site
            .diagnostics
            .iter()
            .map(|d| ProblemJson {
                path: d.path.display().to_string(),
                line: d.line,
                column: d.column,
                message: d.message.clone(),
                text: d.to_string(),
            })
            .collect(),
    }
}

struct ProblemRow {
    place: String,
    message: String,
}

#[derive(Template)]
#[template(path = "admin/problems.html")]
struct ProblemsPage {
    site_title: String,
    loaded: String,
    entries: usize,
    rows: Vec<ProblemRow>,
}

fn problems_page(snapshot: &crate::snapshot::Snapshot) -> String {
    ProblemsPage {
        site_title: snapshot.site.config.title.clone(),
        loaded: loaded_at(snapshot),
        entries: snapshot.health.entries,
        rows: snapshot
            .site
            .diagnostics
            .iter()
            .map(|d| ProblemRow {
                place: format!("{}:{}:{}", d.path.display(), d.line, d.column),
                message: d.message.clone(),
            })
            .collect(),
    }
    .render()
    .unwrap_or_default()
}

struct StatsRow {
    feed: String,
    subscribers: u64,
    aggregator_subscribers: u64,
    other_readers: u64,
    aggregators: Vec<(String, u64, String)>,
    crawlers: Vec<(String, u64, u64)>,
}

#[derive(Template)]
#[template(path = "admin/stats.html")]
struct StatsPage {
    site_title: String,
    generated: String,
    window_hours: u64,
    capped: bool,
    rows: Vec<StatsRow>,
}

fn stats_page(snapshot: &crate::snapshot::Snapshot, report: &stats::Report) -> String {
    StatsPage {
        site_title: snapshot.site.config.title.clone(),
        generated: utc(report.generated),
        window_hours: report.window_hours,
        capped: report.capped,
        rows: report
            .feeds
            .iter()
            .map(|f| StatsRow {
                feed: f.feed.clone(),
                subscribers: f.subscribers,
                aggregator_subscribers: f.aggregator_subscribers,
                other_readers: f.other_readers,
                aggregators: f
                    .aggregators
                    .iter()
                    .map(|a| {
                        let name = match &a.feed_id {
                            Some(id) => format!("{} (feed {id})", a.name),
                            None => a.name.clone(),
                        };
                        (name, a.subscribers, utc(a.last_seen))
                    })
                    .collect(),
                crawlers: f
                    .crawlers
                    .iter()
                    .map(|c| (c.name.clone(), c.requests, c.clients))
                    .collect(),
            })
            .collect(),
    }
    .render()
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn admin(data: &str) -> Admin {
        let site = crate::load_site(Path::new(data)).unwrap();
        let mut snapshot = crate::snapshot::Snapshot::build_from(Arc::new(site), None);
        snapshot.built = Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        Admin {
            current: Arc::new(arc_swap::ArcSwap::from_pointee(snapshot)),
            metrics: Arc::new(Metrics::new()),
            stats: Arc::new(Stats::new([0; 32])),
        }
    }

    fn get(admin: &Admin, uri: &str) -> (StatusCode, String, String) {
        let req = Request::get(uri).body(()).unwrap();
        let r = respond(
            admin,
            &req,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_060),
        );
        let status = r.status();
        let ct = r.headers()[CONTENT_TYPE].to_str().unwrap().to_owned();
        let body =
            String::from_utf8(r.into_body().into_inner().unwrap_or_default().to_vec()).unwrap();
        (status, ct, body)
    }

    fn r_status(uri: &str, admin: &Admin) -> StatusCode {
        let req = Request::get(uri).body(()).unwrap();
        respond(admin, &req, SystemTime::UNIX_EPOCH).status()
    }

    #[test]
    fn problems_are_escaped_and_listed_in_both_forms() {
        let a = admin("tests/data/broken");
        let (status, ct, page) = get(&a, "/problems");
        assert_eq!(status, StatusCode::OK);
        assert!(ct.starts_with("text/html"), "{ct}");
        let snapshot = a.current.load();
        assert!(!snapshot.site.diagnostics.is_empty());
        for d in &snapshot.site.diagnostics {
            let place = format!("{}:{}:{}", d.path.display(), d.line, d.column);
            assert!(page.contains(&place), "{place} missing");
        }
        assert!(!page.contains("<script"), "escaped");
        for uri in ["/problems.json", "/problems?format=json"] {
            let (_, ct, body) = get(&a, uri);
            assert_eq!(ct, "application/json");
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["problems"], snapshot.site.diagnostics.len());
            assert_eq!(v["loaded"], 1_700_000_000);
        }
    }

    #[test]
    fn stats_and_metrics_answer_and_others_are_404() {
        let a = admin("tests/data/good-min");
        a.stats.record(
            &stats::Fetch {
                feed: "/feeds/all.rss",
                client: "192.0.2.1".parse().unwrap(),
                user_agent: Some(
                    "Feedly/1.0 (+http://www.feedly.com/fetcher.html; 9 subscribers; )",
                ),
            },
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        );
        let (_, _, page) = get(&a, "/stats");
        assert!(
            page.contains("/feeds/all.rss") && page.contains("Feedly"),
            "{page}"
        );
        assert!(page.contains("estimate"), "the page says what is estimated");
        let (_, ct, body) = get(&a, "/stats.json");
        assert_eq!(ct, "application/json");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["feeds"][0]["subscribers"], 9);
        let (_, ct, body) = get(&a, "/metrics");
        assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
        assert!(body.contains("vestnik_snapshot_age_seconds 60.0"), "{body}");
        assert_eq!(r_status("/feeds/all.rss", &a), StatusCode::NOT_FOUND);
        let post = Request::post("/metrics").body(()).unwrap();
        assert_eq!(
            respond(&a, &post, SystemTime::now()).status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
    }
}
