//! The `serve` command assembled: load, snapshot, listen, watch, reload on
//! SIGHUP, stop on SIGINT/SIGTERM. The edges around the pure core meet here.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;

use crate::admin::stats::StateDir;
use crate::admin::{self, Admin, Metrics, Observers, Stats};
use crate::cli::ServeArgs;
use crate::load::Loader;
use crate::reload::{self, Change, Event, Reloader};
use crate::serve::{self, Limits};
use crate::snapshot::Snapshot;
use crate::websub;

/// Runs `vestnik serve` until SIGINT or SIGTERM.
pub fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    // Checked before loading, so a wrong address or a misplaced state
    // directory costs nothing.
    if args
        .admin_addr
        .is_some_and(|a| a == args.addr && a.port() != 0)
    {
        anyhow::bail!(
            "--admin-addr {} is the public address; give the admin listener its own (e.g. 127.0.0.1:9180)",
            args.addr
        );
    }
    let state = match (&args.state_dir, args.admin_addr) {
        (Some(dir), Some(_)) => Some(
            StateDir::open(dir, &args.data)
                .with_context(|| format!("cannot use the state directory {}", dir.display()))?,
        ),
        (Some(dir), None) => {
            tracing::warn!(
                "--state-dir {} has no effect without --admin-addr, which collects the figures it saves",
                dir.display()
            );
            None
        }
        (None, _) => None,
    };
    let observers = match args.admin_addr {
        Some(_) => Observers {
            metrics: Some(Arc::new(Metrics::new())),
            stats: Some(Arc::new(Stats::new(random_salt()?))),
        },
        None => Observers::default(),
    };
    if let (Some(state), Some(stats)) = (&state, &observers.stats) {
        match state.load(stats, SystemTime::now()) {
            Ok(n) => tracing::info!(
                "loaded {n} subscriber count(s) from {}",
                state.file().display()
            ),
            Err(e) => tracing::warn!(
                "cannot read {}: {e}; subscriber counts start empty",
                state.file().display()
            ),
        }
    }
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
    let mut snapshot = Snapshot::build_from(Arc::new(site), None);
    let built = SystemTime::now();
    snapshot.built = Some(built);
    if let Some(m) = &observers.metrics {
        m.loaded(built);
    }
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
    let (publisher, pinger) =
        websub::Publisher::new(websub::Retry::default(), observers.metrics.clone())
            .context("cannot start the WebSub publisher")?;
    let mut reloader = Reloader::new(loader, current.clone()).with_publisher(publisher);
    if let Some(m) = &observers.metrics {
        reloader = reloader.with_metrics(m.clone());
    }
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
        let admin_listener = match args.admin_addr {
            Some(a) => Some(
                tokio::net::TcpListener::bind(a)
                    .await
                    .with_context(|| format!("cannot listen on --admin-addr {a}"))?,
            ),
            None => None,
        };
        // SIGINT/SIGTERM stop both listeners and the saving of the figures.
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            serve::shutdown_signal().await;
            notify_systemd(&[sd_notify::NotifyState::Stopping]);
            let _ = stop_tx.send(true);
        });
        // Tests and scripts read this line to find an ephemeral port.
        // Once, on stdout: a log line as well would show it twice on a terminal.
        println!("listening on http://{addr}/");
        if let (Some(admin_listener), Some(metrics), Some(stats)) =
            (admin_listener, &observers.metrics, &observers.stats)
        {
            let admin_addr = admin_listener.local_addr()?;
            println!("admin listening on http://{admin_addr}/");
            let admin = Arc::new(Admin {
                current: current.clone(),
                metrics: metrics.clone(),
                stats: stats.clone(),
            });
            let admin_stop = stop_rx.clone();
            tokio::spawn(async move {
                if let Err(e) = admin::run(admin_listener, admin, stopped(admin_stop)).await {
                    tracing::error!("the admin listener stopped: {e}");
                }
            });
            tokio::spawn(every_minute(state.clone(), stats.clone()));
        }
        // The first snapshot is in place and the listeners are bound:
        // connections from here on are answered (they wait in the backlog
        // until the accept loop below takes them).
        notify_systemd(&[sd_notify::NotifyState::Ready]);
        tokio::spawn(forward_sighup(tx));
        tokio::spawn(pinger);
        let server = serve::Server {
            current,
            limits,
            observers: observers.clone(),
        };
        serve::run(listener, server, stopped(stop_rx)).await?;
        anyhow::Ok(())
    })?;
    if let (Some(state), Some(stats)) = (&state, &observers.stats) {
        match state.save(stats) {
            Ok(()) => tracing::info!("saved subscriber counts to {}", state.file().display()),
            Err(e) => tracing::warn!("cannot save {}: {e}", state.file().display()),
        }
    }
    Ok(())
}

/// 32 random bytes from the operating system, keying the hashes of
/// (address, User-Agent) pairs; never stored, so the hashes die with the process.
fn random_salt() -> anyhow::Result<[u8; 32]> {
    let mut salt = [0u8; 32];
    getrandom::fill(&mut salt)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("cannot draw a random salt")?;
    Ok(salt)
}

/// Completes when the stop signal is sent (or its sender is gone).
async fn stopped(mut rx: tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Tells systemd (under `Type=notify`) how the service is doing; does
/// nothing when not started by systemd.
fn notify_systemd(state: &[sd_notify::NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(state) {
        tracing::warn!("cannot notify systemd: {e}");
    }
}

/// Every minute, forgets expired reader pairs (which bounds memory even
/// when nobody looks at /stats) and saves the aggregators' counts to the
/// state directory, if there is one. The last save happens after shutdown.
async fn every_minute(state: Option<StateDir>, stats: Arc<Stats>) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    tick.tick().await; // the first tick is immediate; the counts were just loaded
    loop {
        tick.tick().await;
        let (state, stats) = (state.clone(), stats.clone());
        let saved = tokio::task::spawn_blocking(move || {
            stats.prune(SystemTime::now());
            match state {
                Some(state) => state
                    .save(&stats)
                    .map_err(|e| (state.file().to_path_buf(), e)),
                None => Ok(()),
            }
        })
        .await;
        if let Ok(Err((file, e))) = saved {
            tracing::warn!("cannot save {}: {e}", file.display());
        }
    }
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
