//! HTTP/1.1 over the current snapshot: limits, timeouts, access logs and
//! graceful shutdown around the pure [`handler`].
//!
//! Each request loads the current snapshot once, so a response never mixes two
//! snapshots even while a reload swaps in a new one.

pub mod client_ip;
pub mod handler;
pub mod media;
pub mod negotiate;

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock as _};
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, HOST, RETRY_AFTER, USER_AGENT};
use http::{HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::admin::metrics::{Coding, Route, Served};
use crate::admin::{Answered, Observers};
use crate::listen::Acceptor;
use client_ip::TrustedProxies;

/// A response body: bytes from the snapshot, or a media file streamed from disk.
pub type Body = http_body_util::Either<
    handler::Body,
    http_body_util::combinators::UnsyncBoxBody<bytes::Bytes, std::io::Error>,
>;

pub use crate::snapshot::Current;

/// Connection and request limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Time allowed for a request head, and for idling between keep-alive requests.
    pub header_timeout: Duration,
    /// Largest request head in bytes; hyper needs at least 8 KiB.
    pub max_header_bytes: usize,
    /// Connections served at once.
    pub max_connections: usize,
    /// Per-client-IP rate: requests per second and burst; `None` is unlimited.
    pub rate: Option<(NonZeroU32, NonZeroU32)>,
    /// Time in-flight requests get to finish at shutdown.
    pub shutdown_grace: Duration,
    /// Reverse proxies whose `X-Forwarded-For` names the client for the rate
    /// limit and the access log; empty (the default) trusts no header.
    pub trusted_proxies: TrustedProxies,
    /// The data directory whose `media/` folder is served at `/media/`;
    /// `None` serves no media.
    pub media_from: Option<std::path::PathBuf>,
    /// Time a write to a client may stay blocked (a client that stopped
    /// reading) before the connection is dropped.
    pub send_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            max_connections: 4096,
            rate: None,
            shutdown_grace: Duration::from_secs(10),
            trusted_proxies: TrustedProxies::default(),
            media_from: None,
            send_timeout: Duration::from_secs(60),
        }
    }
}

/// What [`run`] serves: the snapshot, the limits, and who is told about
/// each request.
#[derive(Debug, Clone)]
pub struct Server {
    /// The snapshot being served, swapped whole by reloads.
    pub current: Current,
    /// Connection and request limits.
    pub limits: Limits,
    /// Metrics and subscriber figures for the admin listener; empty
    /// without one.
    pub observers: Observers,
}

struct Shared {
    current: Current,
    observers: Observers,
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
    trusted_proxies: TrustedProxies,
    media: Option<Arc<media::MediaFiles>>,
    /// Permits for renders on the request path: one core is always left
    /// for everything else.
    renders: Arc<Semaphore>,
}

/// Serves until `shutdown` completes, then stops accepting and gives
/// in-flight requests up to `limits.shutdown_grace` to finish.
pub async fn run(
    listener: TcpListener,
    server: Server,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let Server {
        current,
        limits,
        observers,
    } = server;
    let shared = Arc::new(Shared {
        current,
        observers,
        limiter: limits
            .rate
            .map(|(rate, burst)| RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))),
        trusted_proxies: limits.trusted_proxies.clone(),
        media: limits
            .media_from
            .clone()
            .map(|data| Arc::new(media::MediaFiles::new(data))),
        renders: Arc::new(Semaphore::new(
            std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1)),
        )),
    });
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .keep_alive(true);
    let mut last_sweep = Instant::now();
    let mut acceptor = Acceptor::new(listener, limits.max_connections, "");
    tokio::pin!(shutdown);

    while let Some((permit, stream, peer)) = acceptor.next(shutdown.as_mut()).await? {
        let _ = stream.set_nodelay(true);
        if let Some(limiter) = &shared.limiter {
            if last_sweep.elapsed() > Duration::from_secs(60) {
                limiter.retain_recent();
                last_sweep = Instant::now();
            }
        }
        let shared = shared.clone();
        let service = service_fn(move |req| {
            let shared = shared.clone();
            async move { Ok::<_, Infallible>(answer(&shared, peer, &req).await) }
        });
        // A client that stops reading holds a connection, and for media a
        // file, only until the send timeout (nginx's send_timeout).
        let mut stream = tokio_io_timeout::TimeoutStream::new(stream);
        stream.set_write_timeout(Some(limits.send_timeout));
        let io = TokioIo::new(Box::pin(stream));
        let conn = graceful.watch(builder.serve_connection(io, service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, "connection closed: {e}");
            }
            drop(permit);
        });
    }

    drop(acceptor);
    tracing::info!("shutting down; waiting for in-flight requests");
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(limits.shutdown_grace) => {
            tracing::warn!("grace period over; closing remaining connections");
        }
    }
    Ok(())
}

async fn answer(shared: &Shared, peer: SocketAddr, req: &Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let client = shared.trusted_proxies.client(peer.ip(), req.headers());
    // Load balancers poll /healthz on their own schedule; never throttle them.
    let limited = (req.uri().path() != "/healthz")
        .then(|| rate_limited(shared, client))
        .flatten();
    let was_limited = limited.is_some();
    // RFC 9112 §3.2: a server must answer 400 to an HTTP/1.1 request
    // without Host (hyper leaves this to the service).
    let hostless = req.version() == http::Version::HTTP_11 && !req.headers().contains_key(HOST);
    let response = match limited {
        _ if hostless => {
            handler::plain(StatusCode::BAD_REQUEST, "missing Host header\n".into()).map(Body::Left)
        }
        Some(r) => r.map(Body::Left),
        None => match &shared.media {
            Some(files) if media::is_media(req) => {
                let max_age = u64::from(shared.current.load().site.config.cache_max_age);
                files.respond(max_age, req).await
            }
            _ if may_render(req) => render_aside(shared, req).await.map(Body::Left),
            _ => handler::respond(&shared.current.load(), req).map(Body::Left),
        },
    };
    let bytes: u64 = response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    crate::logging::access(&crate::logging::Access {
        client,
        peer: peer.ip(),
        method: req.method().as_str(),
        path: req.uri().path(),
        status: response.status().as_u16(),
        bytes,
        micros: started.elapsed().as_micros() as u64,
        user_agent: req
            .headers()
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-"),
    });
    if shared.observers.is_some() {
        let route = Route::of(req.uri().path());
        shared.observers.answered(
            &Answered {
                path: req.uri().path(),
                query: req.uri().query(),
                user_agent: req.headers().get(USER_AGENT).and_then(|v| v.to_str().ok()),
                client,
                rate_limited: was_limited,
                served: Served {
                    route,
                    status: response.status().as_u16(),
                    coding: Coding::from_header(
                        response
                            .headers()
                            .get(CONTENT_ENCODING)
                            .map(|v| v.as_bytes()),
                    ),
                    // A HEAD response states the length of a body it does not send.
                    bytes: if req.method() == http::Method::HEAD {
                        0
                    } else {
                        bytes
                    },
                    took: started.elapsed(),
                },
            },
            SystemTime::now(),
        );
    }
    response
}

/// Answers a request that may render (a later page, a bundle, an entry
/// page) on the blocking pool, at most [`Shared::renders`] at once: a burst
/// of large renders queues there instead of taking every core, so cached
/// feeds and `/healthz` keep answering. Concurrent requests for the same
/// page wait for one render (the snapshot's caches are single-flight).
async fn render_aside(shared: &Shared, req: &Request<Incoming>) -> Response<handler::Body> {
    let snapshot = shared.current.load_full();
    let mut copy = Request::new(());
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    let Ok(_permit) = shared.renders.clone().acquire_owned().await else {
        return handler::respond(&snapshot, &copy);
    };
    let rendered = tokio::task::spawn_blocking(move || handler::respond(&snapshot, &copy)).await;
    rendered.unwrap_or_else(|_| {
        handler::plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n".into())
    })
}

/// True when answering may render on the request path (anything with a
/// query, and entry pages); everything else is a lookup in the snapshot.
fn may_render<B>(req: &Request<B>) -> bool {
    req.uri().query().is_some() || req.uri().path().starts_with("/news/")
}

fn rate_limited(shared: &Shared, ip: IpAddr) -> Option<Response<handler::Body>> {
    let limiter = shared.limiter.as_ref()?;
    let not_until = limiter.check_key(&ip).err()?;
    let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut r = Response::new(http_body_util::Full::new(bytes::Bytes::from_static(
        b"too many requests; slow down and retry after the given seconds\n",
    )));
    *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    r.headers_mut().insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Some(r)
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
