//! Live data directory: file events become new snapshots, swapped atomically.
//!
//! A watcher thread (the `notify` crate) and SIGHUP send [`Change`]s into one
//! channel. The reload loop coalesces a burst of changes (a `git pull`, an
//! `rsync`) into one refresh, asks the [`Loader`] to re-read only what changed,
//! builds a snapshot that reuses every unchanged feed, and swaps it in. A
//! request that already loaded the old snapshot finishes on it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant, SystemTime};

use crate::admin::metrics::{Metrics, ReloadOutcome};
use crate::load::Changes;
use crate::load::Loader;
use crate::snapshot::compress::{self, Done, Worker};
use crate::snapshot::{Current, Snapshot};
use crate::websub::Publisher;

/// What happened in the data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// These paths were created, written, renamed or removed.
    Paths(Vec<PathBuf>),
    /// The watcher lost track (event queue overflow): walk everything.
    Rescan,
    /// Re-read `site.toml` and every entry (SIGHUP).
    Full,
    /// The clock reached a scheduled entry's due time or an expiry.
    Clock,
}

/// After a change, wait this long for another before reloading, so a save
/// that truncates, writes and renames in several steps is one reload. Those
/// steps come from one process within a millisecond or so; a burst such as
/// `git pull` keeps extending the wait, up to [`MAX_DELAY`].
const QUIET: Duration = Duration::from_millis(10);

/// When every file that changed has also been finished (closed after
/// writing, renamed or removed), the saves are complete: wait only this
/// long for the next file of a larger operation (`git` and `rsync` close
/// one file and open the next within microseconds) before reloading.
/// Waiting [`QUIET`] instead was 10 of the 23 ms from save to served for one
/// edit at N = 100,000.
const SETTLED: Duration = Duration::from_millis(2);

/// Never delay a reload longer than this, however busy the directory is.
const MAX_DELAY: Duration = Duration::from_millis(300);

/// A message to the reload loop.
#[derive(Debug)]
pub enum Event {
    /// Something changed in the data directory, or SIGHUP asked for a reload.
    Changed(Change),
    /// These files are finished: closed after writing, renamed, or removed.
    Finished(Vec<PathBuf>),
    /// The compression worker finished a resource's gzip variant, or
    /// both, or skipped one whose bytes are no longer served.
    Compressed(Done),
}

/// The outcome of one reload, for logs and tests.
#[derive(Debug, Clone)]
pub struct Report {
    /// Files added, changed and removed, and whether the config changed.
    pub changes: Changes,
    /// Feed representations rendered (the others kept their bytes).
    pub rendered: usize,
    /// Problems in the new snapshot.
    pub problems: usize,
    /// Wall time from the start of the refresh to the swap.
    pub took: Duration,
}

/// The time now, as the reload loop reads it: the system clock in `serve`,
/// a hand-moved one in tests.
pub type Clock = Arc<dyn Fn() -> chrono::DateTime<chrono::Utc> + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(chrono::Utc::now)
}

/// Owns the loader and publishes snapshots into `current`.
pub struct Reloader {
    loader: Loader,
    current: Current,
    /// Tells the WebSub hub about feeds a reload changed.
    publisher: Option<Publisher>,
    /// Where "now" comes from: scheduled entries go live, and expired ones
    /// leave, when it passes their time.
    clock: Clock,
    /// Counts reloads for the admin listener, when there is one.
    metrics: Option<Arc<Metrics>>,
    /// True while DATA is gone, so that is logged once, not per event.
    data_gone: bool,
}

impl Reloader {
    /// A reloader for a loader whose site is already being served from `current`.
    pub fn new(loader: Loader, current: Current) -> Self {
        Reloader {
            loader,
            current,
            publisher: None,
            clock: system_clock(),
            metrics: None,
            data_gone: false,
        }
    }

    /// Reads "now" from `clock` instead of the system clock (tests).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// When the public entries next change by the clock alone, if ever.
    pub fn next_change(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.current.load().site.schedule.next_change
    }

    /// Counts each reload, its duration and the time of the last applied one.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Pings the site's WebSub hub (if it names one) after each reload that
    /// changes feed bytes. Queuing is all the reload thread does.
    pub fn with_publisher(mut self, publisher: Publisher) -> Self {
        self.publisher = Some(publisher);
        self
    }

    /// Applies one change; swaps in a new snapshot if anything changed.
    pub fn apply(&mut self, change: &Change) -> Option<Report> {
        let started = Instant::now();
        // DATA deleted or unmounted: publishing what is left would empty
        // every feed. Keep serving the last snapshot until DATA is back.
        if self.loader.data_gone() {
            if !self.data_gone {
                tracing::error!(
                    "{} is gone (deleted or unmounted); still serving the last snapshot; \
                     restore it and send SIGHUP to reload",
                    self.loader.data_dir().display()
                );
                self.data_gone = true;
            }
            return None;
        }
        if std::mem::take(&mut self.data_gone) {
            tracing::info!("{} is back", self.loader.data_dir().display());
        }
        // The cutoff never moves back: a clock stepped back unpublishes nothing.
        let now = (self.clock)();
        let cutoff = self.loader.cutoff().map_or(now, |c| c.max(now));
        self.loader.set_cutoff(cutoff);
        let changes = match change {
            Change::Clock => crate::load::Changes::default(),
            Change::Paths(paths) => self.loader.refresh_paths(paths),
            Change::Rescan => self.loader.rescan(),
            Change::Full => {
                let c = self.loader.reload_config();
                if c.config {
                    c
                } else {
                    self.loader.rescan_all()
                }
            }
        };
        let refreshed = started.elapsed();
        let prev = self.current.load_full();
        let site = self.loader.site();
        let assembled = started.elapsed();
        let problems_changed = site.diagnostics != prev.site.diagnostics;
        let schedule_changed = !site.schedule.same_entries(&prev.site.schedule);
        if changes.is_empty() && !problems_changed && !schedule_changed && *change != Change::Full {
            if let Some(m) = &self.metrics {
                m.reloaded(
                    ReloadOutcome::Unchanged,
                    started.elapsed(),
                    SystemTime::now(),
                );
            }
            return None;
        }
        let mut snapshot = Snapshot::build_from(Arc::new(site), Some(&prev));
        // The clock is read here, at the edge; rendering never sees it.
        snapshot.built = Some(SystemTime::now());
        tracing::debug!(
            refresh_ms = refreshed.as_secs_f64() * 1000.0,
            site_ms = (assembled - refreshed).as_secs_f64() * 1000.0,
            snapshot_ms = (started.elapsed() - assembled).as_secs_f64() * 1000.0,
            "reload phases"
        );
        let report = Report {
            changes,
            rendered: snapshot.rendered,
            problems: snapshot.health.problems,
            took: Duration::ZERO,
        };
        self.current.store(Arc::new(snapshot));
        if let Some(publisher) = &self.publisher {
            publisher.publish(crate::websub::changed_topics(&prev, &self.current.load()));
        }
        let report = Report {
            took: started.elapsed(),
            ..report
        };
        if let Some(m) = &self.metrics {
            m.reloaded(ReloadOutcome::Applied, report.took, SystemTime::now());
        }
        log(&report, &self.current.load().site.diagnostics);
        Some(report)
    }

    /// Runs until every sender is gone, coalescing bursts into single reloads.
    ///
    /// gzip and brotli variants that new snapshots leave pending are computed
    /// by the compression [`Worker`] and come back as [`Event::Compressed`],
    /// so a reload never waits behind compression. `tx` is the sending side
    /// of `rx`, for the worker.
    pub fn run(mut self, rx: &Receiver<Event>, tx: Sender<Event>) {
        let mut worker = Worker::spawn(self.current.clone(), move |done| {
            tx.send(Event::Compressed(done)).is_ok()
        });
        worker.queue_pending(&self.current.load());
        loop {
            // Wake for the next due time or expiry as well as for events.
            let event = match self.next_change() {
                Some(at) => {
                    let wait = (at - (self.clock)()).to_std().unwrap_or(Duration::ZERO);
                    match rx.recv_timeout(wait) {
                        Ok(event) => event,
                        Err(RecvTimeoutError::Timeout) => Event::Changed(Change::Clock),
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
                None => match rx.recv() {
                    Ok(event) => event,
                    Err(_) => break,
                },
            };
            match event {
                Event::Compressed(done) => self.install(&mut worker, done),
                // Closed after a reload already read it: every write before
                // the close was a change of its own, so nothing is missed.
                Event::Finished(_) => {}
                Event::Changed(first) => {
                    let mut compressed = Vec::new();
                    let change = coalesce(first, rx, &mut compressed);
                    self.apply(&change);
                    for done in compressed {
                        self.install(&mut worker, done);
                    }
                    worker.queue_pending(&self.current.load());
                }
            }
        }
    }

    /// Notes a compression result and installs it if it is still wanted.
    fn install(&self, worker: &mut Worker, done: Done) {
        worker.reported(&done);
        if compress::install(&self.current, done) == Some(0) {
            tracing::info!("all feeds compressed");
        }
    }
}

fn log(report: &Report, diagnostics: &[crate::diagnostic::Diagnostic]) {
    let c = &report.changes;
    tracing::info!(
        added = c.added,
        changed = c.changed,
        removed = c.removed,
        config = c.config,
        feeds_rendered = report.rendered,
        problems = report.problems,
        ms = format!("{:.1}", report.took.as_secs_f64() * 1000.0),
        "reloaded"
    );
    for d in diagnostics {
        tracing::warn!("{d}");
    }
}

/// Gathers the changes that follow `first` until the directory is quiet:
/// [`QUIET`] after the last event, or only [`SETTLED`] once every changed
/// file is finished; never longer than [`MAX_DELAY`] after the first.
/// Compression results that arrive meanwhile are kept in `compressed`; they
/// do not extend the wait (the worker may still be compressing an earlier
/// reload's feeds, and that must not hold this one back).
fn coalesce(first: Change, rx: &Receiver<Event>, compressed: &mut Vec<Done>) -> Change {
    let started = Instant::now();
    let mut writing = Writing::default();
    writing.changed(&first);
    let mut quiet_at = started + writing.quiet();
    let mut merged = first;
    loop {
        let now = Instant::now();
        let until = quiet_at.min(started + MAX_DELAY);
        if now >= until {
            break;
        }
        match rx.recv_timeout(until - now) {
            Ok(Event::Changed(next)) => {
                writing.changed(&next);
                merged = merge(merged, next);
            }
            Ok(Event::Finished(paths)) => writing.finished(&paths),
            Ok(Event::Compressed(done)) => {
                compressed.push(done);
                continue;
            }
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
        }
        quiet_at = Instant::now() + writing.quiet();
    }
    merged
}

/// Which changed files may still be being written, to know how long to
/// wait for quiet.
#[derive(Default)]
struct Writing {
    /// Changed and not finished since.
    open: std::collections::HashSet<PathBuf>,
    /// A change that is not about paths (a rescan, SIGHUP, the clock):
    /// always wait the full [`QUIET`].
    other: bool,
}

impl Writing {
    fn changed(&mut self, change: &Change) {
        match change {
            Change::Paths(paths) => self.open.extend(paths.iter().cloned()),
            Change::Rescan | Change::Full | Change::Clock => self.other = true,
        }
    }

    fn finished(&mut self, paths: &[PathBuf]) {
        for p in paths {
            self.open.remove(p);
        }
    }

    fn quiet(&self) -> Duration {
        if self.open.is_empty() && !self.other {
            SETTLED
        } else {
            QUIET
        }
    }
}

fn merge(a: Change, b: Change) -> Change {
    match (a, b) {
        // Every reload reads the clock, so the clock's own change adds nothing.
        (Change::Clock, other) | (other, Change::Clock) => other,
        (Change::Full, _) | (_, Change::Full) => Change::Full,
        (Change::Rescan, _) | (_, Change::Rescan) => Change::Rescan,
        (Change::Paths(mut x), Change::Paths(y)) => {
            x.extend(y);
            // Beyond this, walking the tree is cheaper than handling paths one by one.
            if x.len() > 10_000 {
                Change::Rescan
            } else {
                Change::Paths(x)
            }
        }
    }
}

/// Starts watching `data_dir` recursively; events go to `tx` as [`Change`]s.
/// Keep the returned watcher alive for as long as watching should go on.
pub fn watch(data_dir: &Path, tx: Sender<Event>) -> notify::Result<notify::RecommendedWatcher> {
    use notify::{RecursiveMode, Watcher};
    // Symlinked folders are not followed: the loader never walks into them
    // either, and following makes the watcher stat every file of DATA.
    let config = notify::Config::default().with_follow_symlinks(false);
    let mut watcher = notify::RecommendedWatcher::new(
        move |res: notify::Result<notify::Event>| {
            let event = match res {
                Ok(event) if event.need_rescan() => Event::Changed(Change::Rescan),
                Ok(event) => match classify(&event.kind) {
                    Kind::Ignored => return,
                    Kind::Finished => Event::Finished(event.paths),
                    Kind::Changed | Kind::ChangedAndFinished if event.paths.is_empty() => {
                        Event::Changed(Change::Rescan)
                    }
                    Kind::Changed => Event::Changed(Change::Paths(event.paths)),
                    Kind::ChangedAndFinished => {
                        // The reload loop is gone only when the server is shutting down.
                        let _ = tx.send(Event::Changed(Change::Paths(event.paths.clone())));
                        Event::Finished(event.paths)
                    }
                },
                Err(e) => {
                    tracing::warn!("file watcher: {e}; rescanning");
                    Event::Changed(Change::Rescan)
                }
            };
            let _ = tx.send(event);
        },
        config,
    )?;
    watcher.watch(data_dir, RecursiveMode::Recursive)?;
    Ok(watcher)
}

/// What a watcher event means to the reload loop.
#[derive(Debug, PartialEq, Eq)]
enum Kind {
    /// Opens and reads change nothing.
    Ignored,
    /// A file was written to or created: more may follow.
    Changed,
    /// A file written to was closed: its save is complete.
    Finished,
    /// Renamed or removed: a change, and complete.
    ChangedAndFinished,
}

fn classify(kind: &notify::EventKind) -> Kind {
    use notify::EventKind;
    use notify::event::{AccessKind, AccessMode, ModifyKind};
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => Kind::Finished,
        EventKind::Access(_) => Kind::Ignored,
        EventKind::Modify(ModifyKind::Name(_)) | EventKind::Remove(_) => Kind::ChangedAndFinished,
        _ => Kind::Changed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_prefers_the_widest_change() {
        let p = |s: &str| Change::Paths(vec![PathBuf::from(s)]);
        assert_eq!(
            merge(p("a"), p("b")),
            Change::Paths(vec!["a".into(), "b".into()])
        );
        assert_eq!(merge(p("a"), Change::Rescan), Change::Rescan);
        assert_eq!(merge(Change::Rescan, Change::Full), Change::Full);
        assert_eq!(merge(Change::Full, p("a")), Change::Full);
    }

    #[test]
    fn only_writes_keep_a_file_open() {
        use notify::EventKind;
        use notify::event::{
            AccessKind, AccessMode, CreateKind, DataChange, ModifyKind, RemoveKind, RenameMode,
        };
        let close = EventKind::Access(AccessKind::Close(AccessMode::Write));
        assert_eq!(classify(&close), Kind::Finished);
        let open = EventKind::Access(AccessKind::Open(AccessMode::Any));
        assert_eq!(classify(&open), Kind::Ignored);
        let write = EventKind::Modify(ModifyKind::Data(DataChange::Any));
        assert_eq!(classify(&write), Kind::Changed);
        assert_eq!(
            classify(&EventKind::Create(CreateKind::File)),
            Kind::Changed
        );
        for rename in [RenameMode::From, RenameMode::To, RenameMode::Both] {
            let kind = EventKind::Modify(ModifyKind::Name(rename));
            assert_eq!(classify(&kind), Kind::ChangedAndFinished);
        }
        let remove = EventKind::Remove(RemoveKind::File);
        assert_eq!(classify(&remove), Kind::ChangedAndFinished);

        // The wait shortens only when every changed file is finished.
        let p = |s: &str| PathBuf::from(s);
        let mut w = Writing::default();
        w.changed(&Change::Paths(vec![p("a"), p("b")]));
        assert_eq!(w.quiet(), QUIET);
        w.finished(&[p("a")]);
        assert_eq!(w.quiet(), QUIET, "b is still being written");
        w.finished(&[p("b")]);
        assert_eq!(w.quiet(), SETTLED);
        w.changed(&Change::Rescan);
        assert_eq!(w.quiet(), QUIET, "a rescan always waits");
    }

    #[test]
    fn a_burst_is_one_change() {
        let (tx, rx) = std::sync::mpsc::channel();
        for i in 0..500 {
            let paths = vec![PathBuf::from(format!("f{i}"))];
            tx.send(Event::Changed(Change::Paths(paths))).unwrap();
        }
        let Ok(Event::Changed(first)) = rx.recv() else {
            panic!("expected a change")
        };
        match coalesce(first, &rx, &mut Vec::new()) {
            Change::Paths(p) => assert_eq!(p.len(), 500),
            other => panic!("{other:?}"),
        }
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn compression_results_do_not_hold_a_reload_back() {
        // The worker reports results every few ms while it compresses an
        // earlier reload's feeds; the wait for quiet counts only changes.
        let (tx, rx) = std::sync::mpsc::channel();
        let sender = std::thread::spawn(move || {
            for _ in 0..60 {
                if tx
                    .send(Event::Compressed(Done::Stale("\"x\"".into())))
                    .is_err()
                {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        let started = Instant::now();
        let mut stale = Vec::new();
        let change = coalesce(Change::Full, &rx, &mut stale);
        let took = started.elapsed();
        drop(rx);
        sender.join().unwrap();
        assert_eq!(change, Change::Full);
        assert!(!stale.is_empty(), "results received meanwhile are kept");
        assert!(took < MAX_DELAY / 2, "waited {took:?} for quiet");
    }
}
