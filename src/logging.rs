//! Log lines: tracing-subscriber's default format, to stderr, and for
//! `serve` through a [`Batched`] buffer that a thread of its own writes out.
//!
//! The access line, written once per request, skips tracing: [`access`]
//! writes the same text the default formatter would, byte for byte, straight
//! into the buffer, without `core::fmt` for the parts that dominate its cost
//! at tens of thousands of requests a second (the timestamp's date and time
//! of day are formatted once a second, not once a line; numbers, addresses
//! and plain strings are copied). `RUST_LOG` still decides whether it is
//! written. To a terminal, with colours, it goes through tracing like every
//! other line.

use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The target of the line `serve` writes for every answered request.
pub const ACCESS: &str = "vestnik::access";

/// Logs to stderr, filtered by `RUST_LOG` (default `info`). For `serve`,
/// lines (access logs among them) go to a [`Batched`] buffer that a thread
/// of its own writes out, so no request waits on stderr: a slow journal or
/// terminal costs memory (up to [`Batched::LIMIT`] bytes), never latency.
/// Nothing is dropped; past that the request path waits. The other commands
/// write directly, in order with what they print.
///
/// The returned guard writes what is still buffered when dropped: keep it
/// until the process exits.
pub fn init(serve: bool) -> Option<Flush> {
    let colours = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(colours);
    if !serve {
        logs.with_writer(std::io::stderr).init();
        return None;
    }
    match Batched::start(std::io::stderr(), Batched::LIMIT) {
        Ok((writer, flush)) => {
            if !colours {
                let _ = DIRECT.set(writer.clone());
            }
            logs.with_writer(writer).init();
            Some(flush)
        }
        Err(e) => {
            logs.with_writer(std::io::stderr).init();
            tracing::warn!("logging without a writer thread: cannot start one: {e}");
            None
        }
    }
}

/// A log sink that appends each line to one shared buffer and wakes a
/// writer thread only when the buffer was empty; the thread waits
/// [`Batched::WINDOW`] for more lines, then writes them all at once. At
/// tens of thousands of lines a second that is one wake-up and one
/// `write` per few hundred lines, and no allocation per line (the thread
/// swaps two buffers that keep their capacity).
#[derive(Clone)]
pub struct Batched {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<Pending>,
    /// Bytes buffered before a new line waits for the writer thread.
    limit: usize,
    /// The writer thread waits here for a first line, or for the end.
    wake: Condvar,
    /// Writers of lines wait here while the buffer is past the limit.
    room: Condvar,
}

#[derive(Default)]
struct Pending {
    lines: Vec<u8>,
    /// Set when the [`Flush`] guard is dropped: write what is left and stop.
    closed: bool,
    /// Lines waiting for room.
    blocked: usize,
}

impl Batched {
    /// How long the writer thread collects lines after the first one.
    pub const WINDOW: Duration = Duration::from_millis(5);
    /// Bytes buffered before a new line waits for the writer thread.
    pub const LIMIT: usize = 16 << 20;

    /// A sink writing to `out` from a thread named `log-writer`, holding up
    /// to `limit` bytes, and the guard that writes what is left and stops
    /// the thread when dropped.
    pub fn start(
        mut out: impl std::io::Write + Send + 'static,
        limit: usize,
    ) -> std::io::Result<(Batched, Flush)> {
        let shared = Arc::new(Shared {
            state: Mutex::new(Pending::default()),
            limit,
            wake: Condvar::new(),
            room: Condvar::new(),
        });
        let thread = Arc::clone(&shared);
        let writer = std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || {
                let mut batch = Vec::new();
                loop {
                    let closed = {
                        let mut state = lock(&thread.state);
                        while state.lines.is_empty() && !state.closed {
                            state = thread.wake.wait(state).unwrap_or_else(|e| e.into_inner());
                        }
                        if !state.closed {
                            // Let the batch fill for a moment.
                            drop(state);
                            std::thread::sleep(Self::WINDOW);
                            state = lock(&thread.state);
                        }
                        std::mem::swap(&mut batch, &mut state.lines);
                        if state.blocked > 0 {
                            thread.room.notify_all();
                        }
                        state.closed
                    };
                    // Nowhere to report a failure to write the log itself.
                    let _ = out.write_all(&batch).and_then(|()| out.flush());
                    batch.clear();
                    if batch.capacity() > thread.limit {
                        batch = Vec::new();
                    }
                    if closed && lock(&thread.state).lines.is_empty() {
                        return;
                    }
                }
            })?;
        let flush = Flush {
            shared: Arc::clone(&shared),
            writer: Some(writer),
        };
        Ok((Batched { shared }, flush))
    }
}

fn lock(state: &Mutex<Pending>) -> std::sync::MutexGuard<'_, Pending> {
    // A panic while holding the lock leaves bytes, never broken invariants.
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl std::io::Write for &Batched {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let shared = &self.shared;
        let mut state = lock(&shared.state);
        while state.lines.len() > shared.limit && !state.closed {
            state.blocked += 1;
            state = shared.room.wait(state).unwrap_or_else(|e| e.into_inner());
            state.blocked -= 1;
        }
        let first = state.lines.is_empty();
        state.lines.extend_from_slice(line);
        drop(state);
        if first {
            shared.wake.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Batched {
    type Writer = &'a Batched;

    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

/// Writes what [`Batched`] still holds and stops its thread, when dropped.
pub struct Flush {
    shared: Arc<Shared>,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Flush {
    fn drop(&mut self) {
        lock(&self.shared.state).closed = true;
        self.shared.wake.notify_one();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// Where [`access`] writes directly: the `serve` sink, when lines are not
/// coloured.
static DIRECT: OnceLock<Batched> = OnceLock::new();

/// One answered request, as the access line records it.
#[derive(Debug, Clone, Copy)]
pub struct Access<'a> {
    /// The client: the peer, or who a trusted proxy says it forwards.
    pub client: IpAddr,
    /// The address the connection came from.
    pub peer: IpAddr,
    pub method: &'a str,
    /// The request path, without the query.
    pub path: &'a str,
    pub status: u16,
    /// `Content-Length` of the answer (0 without one).
    pub bytes: u64,
    /// Time to the answer's head, in microseconds.
    pub micros: u64,
    /// `User-Agent`, or `-`.
    pub user_agent: &'a str,
}

/// Writes the access line for `request`, at level INFO with target
/// [`ACCESS`], if `RUST_LOG` lets it through.
pub fn access(request: &Access<'_>) {
    if !tracing::enabled!(target: ACCESS, tracing::Level::INFO) {
        return;
    }
    let Some((sink, now)) = DIRECT.get().zip(now()) else {
        tracing::info!(
            target: ACCESS,
            client = %request.client,
            peer = %request.peer,
            method = %request.method,
            path = %request.path,
            status = request.status,
            bytes = request.bytes,
            micros = request.micros,
            user_agent = request.user_agent,
        );
        return;
    };
    LINE.with_borrow_mut(|line| {
        line.clear();
        access_line(now, request, line);
        // The sink never fails.
        let _ = std::io::Write::write_all(&mut &*sink, line.as_bytes());
    });
}

thread_local! {
    /// The line being written, reused.
    static LINE: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    static STAMP: Stamp = const { Stamp { second: std::cell::Cell::new(None) } };
}

/// The default formatter's text for the access event: timestamp, padded
/// level, target, then `name=value` fields, the user agent quoted as
/// `Debug` quotes a string.
fn access_line(now: (u64, u32), r: &Access<'_>, line: &mut String) {
    STAMP.with(|stamp| stamp.write(now, line));
    line.push_str("  INFO ");
    line.push_str(ACCESS);
    line.push_str(": client=");
    ip(r.client, line);
    line.push_str(" peer=");
    ip(r.peer, line);
    line.push_str(" method=");
    line.push_str(r.method);
    line.push_str(" path=");
    line.push_str(r.path);
    line.push_str(" status=");
    line.push_str(itoa::Buffer::new().format(r.status));
    line.push_str(" bytes=");
    line.push_str(itoa::Buffer::new().format(r.bytes));
    line.push_str(" micros=");
    line.push_str(itoa::Buffer::new().format(r.micros));
    line.push_str(" user_agent=");
    // `Debug` for `str` quotes, and escapes quotes, backslashes and
    // anything not printable ASCII; most agents need none of that.
    let plain = r
        .user_agent
        .bytes()
        .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\');
    if plain {
        line.push('"');
        line.push_str(r.user_agent);
        line.push('"');
    } else {
        let _ = fmt::Write::write_fmt(line, format_args!("{:?}", r.user_agent));
    }
    line.push('\n');
}

/// `ip` as `Display` writes it; IPv4 without `core::fmt`.
fn ip(ip: IpAddr, line: &mut String) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    line.push('.');
                }
                line.push_str(itoa::Buffer::new().format(octet));
            }
        }
        IpAddr::V6(v6) => {
            let _ = fmt::Write::write_fmt(line, format_args!("{v6}"));
        }
    }
}

/// Seconds and microseconds since the epoch; `None` before it or from
/// year 10,000 on, where the default formatter's timestamp changes shape
/// (and [`access`] leaves the line to it).
fn now() -> Option<(u64, u32)> {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).ok()?;
    (since.as_secs() < LAST_SECOND).then(|| (since.as_secs(), since.subsec_micros()))
}

/// The first second of year 10,000 (UTC).
const LAST_SECOND: u64 = 253_402_300_800;

/// The date and time of day of the last second a line was written in, as
/// `2026-12-07T21:08:26.` (one per thread, so no lock).
struct Stamp {
    second: std::cell::Cell<Option<(u64, [u8; PREFIX])>>,
}

/// `YYYY-MM-DDTHH:MM:SS.`
const PREFIX: usize = 20;

impl Stamp {
    /// Writes `{date}T{time}.{micros}Z` as the default `SystemTime` timer
    /// does (RFC 3339, UTC, six fractional digits); `secs` is before
    /// [`LAST_SECOND`].
    fn write(&self, (secs, micros): (u64, u32), line: &mut String) {
        let prefix = match self.second.get() {
            Some((second, prefix)) if second == secs => prefix,
            _ => {
                let prefix = prefix_of(secs);
                self.second.set(Some((secs, prefix)));
                prefix
            }
        };
        let mut digits = *b"000000Z";
        let mut rest = micros;
        for d in digits[..6].iter_mut().rev() {
            *d = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        // Both are ASCII digits and separators.
        line.push_str(std::str::from_utf8(&prefix).unwrap_or_default());
        line.push_str(std::str::from_utf8(&digits).unwrap_or_default());
    }
}

/// `secs` (before [`LAST_SECOND`]) as `YYYY-MM-DDTHH:MM:SS.` in UTC.
fn prefix_of(secs: u64) -> [u8; PREFIX] {
    let mut prefix = *b"0000-00-00T00:00:00.";
    let at = i64::try_from(secs)
        .ok()
        .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0));
    if let Some(at) = at {
        let text = at.format("%Y-%m-%dT%H:%M:%S.").to_string();
        if let Ok(text) = <[u8; PREFIX]>::try_from(text.as_bytes()) {
            prefix = text;
        }
    }
    prefix
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Collects what a subscriber writes.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Capture {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    /// What tracing-subscriber's default format writes for the events
    /// `log` makes.
    fn default_format(log: impl Fn()) -> String {
        let out = Capture::default();
        let sink = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, log);
        out.text()
    }

    /// The text after the timestamp, line by line.
    fn untimed(text: &str) -> Vec<&str> {
        text.lines().map(|l| l.split_once(' ').unwrap().1).collect()
    }

    fn request<'a>(client: &str, user_agent: &'a str, status: u16) -> Access<'a> {
        Access {
            client: client.parse().unwrap(),
            peer: "127.0.0.1".parse().unwrap(),
            method: "GET",
            path: "/feeds/транспорт.rss",
            status,
            bytes: 150_123,
            micros: 7,
            user_agent,
        }
    }

    #[test]
    fn access_lines_are_the_default_formats_text() {
        let requests = [
            request("192.0.2.10", "Miniflux/2.2.3 (+https://miniflux.app)", 200),
            request("2001:db8::7", "-", 304),
            request("::ffff:10.0.0.1", "", 404),
            request("0.0.0.0", r#"Quoted "agent" \ with backslash"#, 429),
            request("255.255.255.255", "Ünïcode\tand\ncontrol\u{7f}", 503),
        ];
        // With no sink to write to directly, `access` emits a tracing event
        // and the default format writes it: the oracle.
        let default = default_format(|| requests.iter().for_each(access));
        assert_eq!(default.lines().count(), requests.len(), "{default}");
        let mut ours = String::new();
        for r in &requests {
            access_line((1_796_677_706, 5), r, &mut ours);
        }
        assert_eq!(untimed(&ours), untimed(&default));
        assert!(
            ours.starts_with(
                "2026-12-07T21:08:26.000005Z  INFO vestnik::access: client=192.0.2.10 "
            )
        );
        assert!(ours.contains(r#" user_agent="Miniflux/2.2.3 (+https://miniflux.app)""#));
    }

    #[test]
    fn rust_log_can_turn_access_lines_off() {
        let out = Capture::default();
        let sink = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "info,vestnik::access=off",
            ))
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            access(&request("192.0.2.10", "-", 200));
            tracing::info!(target: "vestnik::reload", "still here");
        });
        assert_eq!(untimed(&out.text()), [" INFO vestnik::reload: still here"]);
    }

    #[test]
    fn the_timestamp_is_rfc_3339_utc_with_microseconds() {
        // chrono's own formatting is the oracle.
        for (secs, micros) in [
            (0, 0),
            (1_796_677_706, 5),
            (1_796_677_706, 999_999),
            (LAST_SECOND - 1, 120),
        ] {
            let mut out = String::new();
            Stamp {
                second: std::cell::Cell::new(None),
            }
            .write((secs, micros), &mut out);
            let at = chrono::DateTime::from_timestamp(secs as i64, micros * 1000).unwrap();
            assert_eq!(out, at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string());
        }
        // A second written before is reused, a new one replaces it.
        let stamp = Stamp {
            second: std::cell::Cell::new(None),
        };
        let mut out = String::new();
        for (secs, micros) in [(86_399, 1), (86_399, 2), (86_400, 3)] {
            stamp.write((secs, micros), &mut out);
            out.push(' ');
        }
        assert_eq!(
            out,
            "1970-01-01T23:59:59.000001Z 1970-01-01T23:59:59.000002Z 1970-01-02T00:00:00.000003Z "
        );
    }

    #[test]
    fn the_clock_reads_now() {
        let (secs, _) = now().unwrap();
        let mut out = String::new();
        Stamp {
            second: std::cell::Cell::new(None),
        }
        .write((secs, 0), &mut out);
        let at = chrono::DateTime::parse_from_rfc3339(&out).unwrap();
        let age = chrono::Utc::now().signed_duration_since(at);
        assert!(
            age >= chrono::TimeDelta::zero() && age < chrono::TimeDelta::seconds(5),
            "{out}"
        );
    }

    /// A sink for [`Batched`] that holds every write until `gate` opens.
    #[derive(Clone)]
    struct Gated {
        out: Capture,
        gate: Arc<(Mutex<bool>, Condvar)>,
    }

    impl std::io::Write for Gated {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let (open, turn) = &*self.gate;
            let mut open = open.lock().unwrap();
            while !*open {
                open = turn.wait(open).unwrap();
            }
            self.out.write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn batched_lines_are_all_written_in_order_by_the_time_the_guard_drops() {
        let out = Capture::default();
        let (sink, flush) = Batched::start(out.clone(), Batched::LIMIT).unwrap();
        std::thread::scope(|s| {
            for t in 0..4 {
                let sink = sink.clone();
                s.spawn(move || {
                    for i in 0..5_000 {
                        (&sink).write_all(format!("{t} {i}\n").as_bytes()).unwrap();
                    }
                });
            }
        });
        drop(flush);
        let text = out.text();
        assert_eq!(text.lines().count(), 20_000);
        for t in 0..4 {
            let seen: Vec<usize> = text
                .lines()
                .filter_map(|l| l.strip_prefix(&format!("{t} ")))
                .map(|i| i.parse().unwrap())
                .collect();
            assert_eq!(seen, (0..5_000).collect::<Vec<_>>(), "thread {t}");
        }
    }

    #[test]
    fn a_full_batch_makes_new_lines_wait_not_vanish() {
        let out = Capture::default();
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let gated = Gated {
            out: out.clone(),
            gate: Arc::clone(&gate),
        };
        let (sink, flush) = Batched::start(gated, 100).unwrap();
        let line = [b'x'; 60];
        // The writer thread takes the first batch and is held at the gate;
        // the next lines fill the buffer past its limit of 100 bytes.
        (&sink).write_all(&line).unwrap();
        while !lock(&sink.shared.state).lines.is_empty() {
            std::thread::sleep(Duration::from_millis(1));
        }
        (&sink).write_all(&line).unwrap();
        (&sink).write_all(&line).unwrap();
        let writer = std::thread::spawn({
            let sink = sink.clone();
            move || (&sink).write_all(b"last\n").unwrap()
        });
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            !writer.is_finished(),
            "a line past the limit must wait for room"
        );
        let (open, turn) = &*gate;
        *open.lock().unwrap() = true;
        turn.notify_all();
        writer.join().unwrap();
        drop(flush);
        assert_eq!(out.text(), format!("{}last\n", "x".repeat(180)));
    }
}
