//! The `vestnik` binary: parse the command line, dispatch, print the error chain, exit.

use std::num::NonZeroU32;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser as _;
use vestnik::cli::{Cli, Command, ServeArgs};
use vestnik::serve::{self, Limits};
use vestnik::snapshot::Snapshot;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve_command(args).map(|()| ExitCode::SUCCESS),
        Command::Check { data } => check_command(&data),
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
    let site = match vestnik::load_site(data) {
        Ok(site) => site,
        Err(d) => {
            println!("{d}");
            return Ok(ExitCode::FAILURE);
        }
    };
    for d in &site.diagnostics {
        println!("{d}");
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

fn serve_command(args: ServeArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let site = vestnik::load_site(&args.data)
        .map_err(|d| anyhow::anyhow!("{d}"))
        .with_context(|| format!("cannot load {}", args.data.display()))?;
    for d in &site.diagnostics {
        tracing::warn!("{d}");
    }
    let snapshot = Snapshot::build(Arc::new(site));
    tracing::info!(
        entries = snapshot.health.entries,
        problems = snapshot.health.problems,
        ms = started.elapsed().as_millis() as u64,
        "loaded {}",
        args.data.display()
    );
    let current = Arc::new(arc_swap::ArcSwap::from_pointee(snapshot));
    let limits = Limits {
        header_timeout: Duration::from_secs(args.header_timeout.max(1)),
        max_header_bytes: args.max_header_bytes,
        max_connections: args.max_connections,
        rate: NonZeroU32::new(args.rate_limit)
            .map(|r| (r, NonZeroU32::new(args.rate_burst).unwrap_or(r))),
        shutdown_grace: Duration::from_secs(args.shutdown_grace),
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .with_context(|| format!("cannot listen on {}", args.addr))?;
        let addr = listener.local_addr()?;
        // Tests and scripts read this line to find an ephemeral port.
        println!("listening on http://{addr}/");
        tracing::info!("listening on http://{addr}/");
        serve::run(listener, current, limits, serve::shutdown_signal()).await?;
        anyhow::Ok(())
    })
}
