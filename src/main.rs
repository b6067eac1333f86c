//! The `vestnik` binary: parse the command line, dispatch, print the error chain, exit.

use std::process::ExitCode;

use clap::Parser as _;
use vestnik::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Kept until main returns: dropping it writes what is still buffered.
    let _flush = vestnik::logging::init(matches!(cli.command, Command::Serve(_)));
    let result = match cli.command {
        Command::Serve(args) => vestnik::app::serve(&args).map(|()| ExitCode::SUCCESS),
        Command::Check { data } => check_command(&data),
        Command::Import(args) => import_command(&args),
        Command::Build(args) => build_command(&args),
        Command::New(args) => new_command(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn check_command(data: &std::path::Path) -> anyhow::Result<ExitCode> {
    let now = chrono::Utc::now();
    let (site, waiting) = match vestnik::check(data, now) {
        Ok(found) => found,
        Err(d) => {
            println!("{d}");
            return Ok(ExitCode::FAILURE);
        }
    };
    for d in &site.diagnostics {
        println!("{d}");
    }
    // Information, not problems: what the clock holds back does not change
    // the exit code, and goes to stderr with the summary.
    for line in waiting {
        eprintln!("{line}");
    }
    eprintln!(
        "{} entries in {} sections, {} problem(s)",
        site.entries.len(),
        site.config.sections.len(),
        site.diagnostics.len()
    );
    Ok(if site.diagnostics.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn import_command(args: &vestnik::cli::ImportArgs) -> anyhow::Result<ExitCode> {
    let report = vestnik::import::run(args).map_err(|d| anyhow::anyhow!("cannot import: {d}"))?;
    // Problems come last so a long list of imported files does not hide them.
    let (problems, done): (Vec<_>, Vec<_>) = report.files.iter().partition(|f| f.is_problem());
    for file in done.iter().chain(&problems) {
        println!("{file}");
    }
    eprintln!("{}", report.summary());
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn new_command(args: &vestnik::cli::NewArgs) -> anyhow::Result<ExitCode> {
    let request = vestnik::new::Request {
        title: args.title.clone(),
        sections: args.sections.clone(),
        at: args.at.clone(),
        source: args.source.clone(),
    };
    // The clock is read here, at the edge; `new::plan` takes the time.
    let path = vestnik::new::run(&args.data, &request, chrono::Utc::now())?;
    println!("{}", path.display());
    Ok(ExitCode::SUCCESS)
}

fn build_command(args: &vestnik::cli::BuildArgs) -> anyhow::Result<ExitCode> {
    use anyhow::Context as _;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    let (data, out) = match args.paths.as_slice() {
        [out] => (std::path::Path::new("data"), out),
        [data, out] => (data.as_path(), out),
        _ => anyhow::bail!("usage: vestnik build [DATA] OUT"),
    };
    let started = std::time::Instant::now();
    // Checked before loading, so a refused OUT costs nothing and says why;
    // what DATA looks like is read meanwhile.
    let (target, inputs) = rayon::join(
        || vestnik::out_dir::Target::prepare(data, out),
        || vestnik::out_dir::fresh::inputs(data, args.base_url.as_ref()),
    );
    let target = target?;
    tracing::debug!(
        "checked {} and read its inputs in {:.2} s",
        out.display(),
        started.elapsed().as_secs_f64()
    );
    // The clock is read here; `--at` builds as of another time.
    let cutoff = args.at.unwrap_or_else(chrono::Utc::now);
    if let Some((manifest, fresh)) = inputs
        .as_deref()
        .and_then(|inputs| target.fresh(inputs, cutoff))
    {
        // Nothing the build reads changed, and OUT is as it was written.
        for problem in &fresh.problems {
            tracing::warn!("{problem}");
        }
        eprintln!(
            "{} is up to date: nothing under {} changed since it was built",
            out.display(),
            data.display()
        );
        let files = manifest.files.len();
        let stats = vestnik::export::Stats {
            resources: fresh.resources,
            files,
            bytes: manifest.files.values().map(|f| f.size).sum(),
            kept: files,
            removed: 0,
        };
        report(&stats, out, started, fresh.next_due, fresh.next_change);
        return Ok(ExitCode::SUCCESS);
    }
    let site = vestnik::load_site_at(data, args.base_url.clone(), Some(cutoff))
        .map_err(|d| anyhow::anyhow!("{d}"))
        .with_context(|| format!("cannot load {}", data.display()))?;
    for d in &site.diagnostics {
        tracing::warn!("{d}");
    }
    tracing::debug!("loaded at {:.2} s", started.elapsed().as_secs_f64());
    // Ctrl-C, SIGTERM or SIGHUP stop the build between two files, and the
    // stage is removed; a second signal ends the process at once.
    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register_conditional_shutdown(signal, 130, interrupted.clone())?;
        signal_hook::flag::register(signal, interrupted.clone())?;
    }
    let next_due = site.schedule.next_due;
    let next_change = site.schedule.next_change;
    // Not compressed yet: export compresses only what changed.
    let snapshot = vestnik::snapshot::Snapshot::build_from(Arc::new(site), None);
    tracing::debug!("snapshot at {:.2} s", started.elapsed().as_secs_f64());
    let how = vestnik::export::How {
        commit: if args.swap {
            vestnik::out_dir::Commit::Whole
        } else {
            vestnik::out_dir::Commit::InPlace
        },
        inputs,
        interrupted,
    };
    let stats = match vestnik::export::export(&snapshot, Some(data), &target, how) {
        Ok(stats) => stats,
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
            eprintln!(
                "interrupted: {} was left as it was, and nothing else was written",
                out.display()
            );
            return Ok(ExitCode::from(130));
        }
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot write {}; it was left as it was", out.display()));
        }
    };
    report(&stats, out, started, next_due, next_change);
    Ok(ExitCode::SUCCESS)
}

/// The summary line of a build, and when to build again.
fn report(
    stats: &vestnik::export::Stats,
    out: &std::path::Path,
    started: std::time::Instant,
    next_due: Option<chrono::DateTime<chrono::FixedOffset>>,
    next_change: Option<chrono::DateTime<chrono::Utc>>,
) {
    eprintln!(
        "built {} resources as {} files ({} bytes) in {} in {:.2} s: {} written, {} kept, {} removed",
        stats.resources,
        stats.files,
        stats.bytes,
        out.display(),
        started.elapsed().as_secs_f64(),
        stats.files - stats.kept,
        stats.kept,
        stats.removed,
    );
    if let Some(hint) = rebuild_hint(next_due, next_change) {
        eprintln!("{hint}");
    }
}

/// When to build again, so a cron job knows: the earliest time the clock
/// alone changes what is published. That is the next scheduled entry's due
/// time, unless an entry expires or leaves the news sitemap's two-day window
/// before it (`next_change` is the earliest of all three).
fn rebuild_hint(
    next_due: Option<chrono::DateTime<chrono::FixedOffset>>,
    next_change: Option<chrono::DateTime<chrono::Utc>>,
) -> Option<String> {
    let due_first = next_due.filter(|due| next_change.is_none_or(|t| due.to_utc() <= t));
    match (due_first, next_change) {
        (Some(due), _) => Some(format!(
            "the next scheduled entry goes live at {}; build again then",
            due.to_rfc3339()
        )),
        (None, Some(t)) => Some(format!(
            "what is published changes at {} (an entry expires or leaves the news sitemap); \
             build again then",
            t.to_rfc3339()
        )),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::rebuild_hint;

    #[test]
    fn the_rebuild_hint_names_what_changes() {
        let due = chrono::DateTime::parse_from_rfc3339("2026-12-08T09:00:00+07:00").unwrap();
        let change = chrono::DateTime::parse_from_rfc3339("2026-12-09T00:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(
            rebuild_hint(Some(due), Some(change)).unwrap(),
            "the next scheduled entry goes live at 2026-12-08T09:00:00+07:00; build again then"
        );
        assert_eq!(
            rebuild_hint(None, Some(change)).unwrap(),
            "what is published changes at 2026-12-09T00:00:00+00:00 (an entry expires or \
             leaves the news sitemap); build again then"
        );
        assert_eq!(rebuild_hint(None, None), None);
        // An expiry before the next due time: build again at the expiry.
        let expiry = chrono::DateTime::parse_from_rfc3339("2026-12-08T01:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(
            rebuild_hint(Some(due), Some(expiry)).unwrap(),
            "what is published changes at 2026-12-08T01:00:00+00:00 (an entry expires or \
             leaves the news sitemap); build again then"
        );
        // The due time itself is the next change (the schedule's usual case).
        assert_eq!(
            rebuild_hint(Some(due), Some(due.to_utc())).unwrap(),
            "the next scheduled entry goes live at 2026-12-08T09:00:00+07:00; build again then"
        );
    }
}
