//! The `serve` command assembled: load, snapshot, listen, watch, reload on
//! SIGHUP, stop on SIGINT/SIGTERM. The edges around the pure core meet here.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::cli::ServeArgs;
use crate::entry::Loader;
use crate::reload::{self, Change, Event, Reloader};
use crate::serve::{self, Limits};
use crate::snapshot::Snapshot;
use crate::websub;

/// Runs `vestnik serve` until SIGINT or SIGTERM.
pub fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut loader = Loader::open_as(&args.data, args.base_url.clone(), args.preview)
        .map_err(|d| anyhow::anyhow!("{d}"))
        .with_context(|| format!("cannot load {}", args.data.display()))?;
    let read_ms = started.elapsed().as_millis() as u64;
    // Entries due later are left out until their time (the reload loop
    // wakes for it); the clock is read here, at the edge.
    loader.set_cutoff(chrono::Utc::now());
    let site = loader.site();
    let site_ms = started.elapsed().as_millis() as u64;
    // Start watching on another thread while the feeds render: the
    // watcher walks every file of DATA (~0.2 s at 100,000 entries). Not
    // before loading: the watch would then report every file the load opens.
    let (tx, rx) = std::sync::mpsc::channel::<Event>();
    let watching = (!args.no_watch).then(|| {
        // The real path, with symlinks and `..` resolved: the loader maps
        // the watcher's absolute paths back to DATA as the user wrote it.
        let (data, tx) = (loader.watch_dir().to_path_buf(), tx.clone());
        std::thread::spawn(move || reload::watch(&data, tx))
    });
    for d in &site.diagnostics {
        tracing::warn!("{d}");
    }
    // Serve as soon as the feeds are rendered; the reload thread adds the
    // gzip and then brotli variants in the background (clients get the
    // uncompressed bytes until then).
    let snapshot = Snapshot::build_from(Arc::new(site), None);
    tracing::debug!(
        read_ms,
        site_ms,
        snapshot_ms = started.elapsed().as_millis() as u64,
        "startup phases (cumulative)"
    );
    tracing::info!(
        entries = snapshot.health.entries,
        problems = snapshot.health.problems,
        ms = started.elapsed().as_millis() as u64,
        "loaded {}",
        args.data.display()
    );
    let current = Arc::new(arc_swap::ArcSwap::from_pointee(snapshot));

    // Pings go out from a task on the runtime below; the reload thread only queues them.
    let (publisher, pinger) = websub::Publisher::new(websub::Retry::default())
        .context("cannot start the WebSub publisher")?;
    let reloader = Reloader::new(loader, current.clone()).with_publisher(publisher);
    let worker_tx = tx.clone();
    let data = args.data.clone();
    std::thread::Builder::new()
        .name("reload".into())
        .spawn(move || {
            // The watcher lives as long as the reload loop. It is joined here
            // rather than before listening, so the first feed does not wait
            // for its walk. Changes it reports queue up until the loop runs.
            // Without a watcher (say, the inotify watch limit is reached) the
            // server keeps serving and SIGHUP still reloads.
            let _watcher = watching.and_then(|thread| match thread.join() {
                Ok(Ok(watcher)) => Some(watcher),
                Ok(Err(e)) => {
                    tracing::error!(
                        "cannot watch {}: {e}; changes are picked up on SIGHUP only",
                        data.display()
                    );
                    None
                }
                Err(_) => {
                    tracing::error!(
                        "the file watcher failed to start; changes are picked up on SIGHUP only"
                    );
                    None
                }
            });
            reloader.run(&rx, worker_tx)
        })
        .context("cannot start the reload thread")?;

    let limits = Limits {
        header_timeout: Duration::from_secs(args.header_timeout.max(1)),
        max_header_bytes: args.max_header_bytes,
        max_connections: args.max_connections,
        rate: NonZeroU32::new(args.rate_limit)
            .map(|r| (r, NonZeroU32::new(args.rate_burst).unwrap_or(r))),
        shutdown_grace: Duration::from_secs(args.shutdown_grace),
        trusted_proxies: serve::client_ip::TrustedProxies::new(args.trusted_proxies.clone()),
        media_from: Some(args.data.clone()),
        send_timeout: Duration::from_secs(args.send_timeout.max(1)),
    };
    if args.preview {
        tracing::warn!(
            "preview: drafts and scheduled entries are published; do not expose this server"
        );
    }
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .with_context(|| format!("cannot listen on {}", args.addr))?;
        let addr = listener.local_addr()?;
        // Tests and scripts read this line to find an ephemeral port.
        // Once, on stdout: a log line as well would show it twice on a terminal.
        println!("listening on http://{addr}/");
        tokio::spawn(forward_sighup(tx));
        tokio::spawn(pinger);
        serve::run(listener, current, limits, serve::shutdown_signal()).await?;
        anyhow::Ok(())
    })
}

/// SIGHUP forces a full reload: `site.toml` and every entry re-read.
async fn forward_sighup(tx: std::sync::mpsc::Sender<Event>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP");
            return;
        };
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: full reload");
            if tx.send(Event::Changed(Change::Full)).is_err() {
                return;
            }
        }
    }
    #[cfg(not(unix))]
    drop(tx);
}
