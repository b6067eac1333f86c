//! The accept step both listeners share (the public one in `serve`, the
//! admin one in `admin`): wait for a connection permit, accept, and on a
//! failure back off and report it at most once a second, with a count.
//!
//! Out of file descriptors, every `accept` fails until one is freed: the
//! connection stays in the kernel's backlog, and the loop retries after a
//! short sleep. A log line per failure would write twenty lines a second,
//! filling the journal (or the disk) just when the machine is struggling, so
//! the accept loops count failures and report them once a second, then once
//! more when accepting works again. Time is a parameter, so tests drive it.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long to wait after a failed accept before the next try.
const BACK_OFF: Duration = Duration::from_millis(50);

/// A listener's accept loop state: its connection permits and its failures.
#[derive(Debug)]
pub struct Acceptor {
    listener: TcpListener,
    permits: Arc<Semaphore>,
    failures: AcceptFailures,
    /// Put before each logged line: `""` or `"admin: "`.
    who: &'static str,
}

impl Acceptor {
    /// Accepts on `listener`, at most `max_connections` connections open at once.
    pub fn new(listener: TcpListener, max_connections: usize, who: &'static str) -> Acceptor {
        Acceptor {
            listener,
            permits: Arc::new(Semaphore::new(max_connections.max(1))),
            failures: AcceptFailures::default(),
            who,
        }
    }

    /// The next connection with its permit (dropped when the connection
    /// ends), or `None` once `shutdown` completes. Out of file descriptors
    /// and similar failures back off and retry; the server keeps serving
    /// the connections it has.
    pub async fn next(
        &mut self,
        mut shutdown: Pin<&mut impl Future<Output = ()>>,
    ) -> std::io::Result<Option<(OwnedSemaphorePermit, TcpStream, SocketAddr)>> {
        let permit = tokio::select! {
            p = self.permits.clone().acquire_owned() => p.map_err(std::io::Error::other)?,
            () = &mut shutdown => return Ok(None),
        };
        loop {
            tokio::select! {
                r = self.listener.accept() => match r {
                    Ok((stream, peer)) => {
                        if let Some(line) = self.failures.accepted(Instant::now()) {
                            tracing::info!("{}{line}", self.who);
                        }
                        return Ok(Some((permit, stream, peer)));
                    }
                    Err(e) => {
                        if let Some(line) = self.failures.failed(&e, Instant::now()) {
                            tracing::warn!("{}{line}", self.who);
                        }
                        tokio::time::sleep(BACK_OFF).await;
                    }
                },
                () = &mut shutdown => return Ok(None),
            }
        }
    }
}

/// The shortest time between two reports.
const EVERY: Duration = Duration::from_secs(1);

/// Failed accepts since the last report, for one accept loop.
#[derive(Debug, Default)]
pub struct AcceptFailures {
    /// Failures not yet reported.
    unreported: u64,
    /// When the current run of failures began; `None` while accepting works.
    since: Option<Instant>,
    /// When the last report was written.
    reported: Option<Instant>,
}

impl AcceptFailures {
    /// Counts a failed accept at `now`; returns the line to log when a
    /// second has passed since the last one (at once for the first failure).
    pub fn failed(&mut self, error: &std::io::Error, now: Instant) -> Option<String> {
        self.unreported += 1;
        self.since.get_or_insert(now);
        let last = self.reported;
        if last.is_some_and(|t| now.duration_since(t) < EVERY) {
            return None;
        }
        let count = std::mem::take(&mut self.unreported);
        self.reported = Some(now);
        Some(match last {
            None => format!(
                "accept failed: {error}{}; connections wait in the backlog, and further failures are reported once a second",
                hint(error)
            ),
            Some(t) => format!(
                "accept failed {count} more time(s) in the last {:.1} s: {error}",
                now.duration_since(t).as_secs_f64()
            ),
        })
    }

    /// Notes a successful accept at `now`; after a run of failures, returns
    /// the line saying accepting works again.
    pub fn accepted(&mut self, now: Instant) -> Option<String> {
        let since = self.since.take()?;
        let count = std::mem::take(&mut self.unreported);
        self.reported = None;
        Some(format!(
            "accepting connections again after {:.1} s of failures ({count} more failure(s) since the last report)",
            now.duration_since(since).as_secs_f64()
        ))
    }
}

/// What to do about the errors a busy machine gives.
fn hint(error: &std::io::Error) -> &'static str {
    use rustix::io::Errno;
    match Errno::from_io_error(error) {
        Some(Errno::MFILE) => {
            " (out of file descriptors: raise the limit, LimitNOFILE= in the unit or ulimit -n, or lower --max-connections)"
        }
        Some(Errno::NFILE) => " (the system is out of file descriptors: raise fs.file-max)",
        Some(Errno::NOBUFS | Errno::NOMEM) => " (out of memory)",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_a_second_with_the_count_then_one_on_recovery() {
        let emfile = std::io::Error::from_raw_os_error(24);
        let start = Instant::now();
        let mut failures = AcceptFailures::default();
        let mut lines = Vec::new();
        // Every 50 ms for 3 s, as the accept loop retries.
        for i in 0..60 {
            let now = start + Duration::from_millis(50 * i);
            lines.extend(failures.failed(&emfile, now));
        }
        assert_eq!(lines.len(), 3, "{lines:#?}");
        assert!(lines[0].starts_with("accept failed: "), "{}", lines[0]);
        assert!(
            lines[1].starts_with("accept failed 20 more time(s) in the last 1.0 s"),
            "{}",
            lines[1]
        );
        assert!(lines[0].contains("LimitNOFILE"), "{}", lines[0]);
        let back = failures
            .accepted(start + Duration::from_millis(3000))
            .unwrap();
        assert!(back.contains("after 3.0 s"), "{back}");
        assert!(
            back.contains("(19 more failure(s) since the last report)"),
            "{back}"
        );
        assert_eq!(failures.accepted(start + Duration::from_secs(4)), None);
        // A new run reports its first failure at once.
        let again = failures.failed(&emfile, start + Duration::from_millis(4100));
        assert!(again.unwrap().starts_with("accept failed: "));
    }
}
