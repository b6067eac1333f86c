//! The `vestnik` binary: parse the command line, dispatch, print the error chain, exit.

use std::process::ExitCode;

use clap::Parser as _;
use vestnik::cli::{Cli, Command};

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
        Command::Serve(args) => vestnik::app::serve(&args).map(|()| ExitCode::SUCCESS),
        Command::Check { data } => check_command(&data),
        Command::Import(args) => import_command(&args),
        Command::Build { paths } => build_command(&paths).map(|()| ExitCode::SUCCESS),
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

fn build_command(paths: &[std::path::PathBuf]) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let (data, out) = match paths {
        [out] => (std::path::Path::new("data"), out),
        [data, out] => (data.as_path(), out),
        _ => anyhow::bail!("usage: vestnik build [DATA] OUT"),
    };
    let started = std::time::Instant::now();
    let site = vestnik::load_site(data)
        .map_err(|d| anyhow::anyhow!("{d}"))
        .with_context(|| format!("cannot load {}", data.display()))?;
    for d in &site.diagnostics {
        tracing::warn!("{d}");
    }
    let snapshot = vestnik::snapshot::Snapshot::build(std::sync::Arc::new(site));
    let stats = vestnik::export::export_with_media(&snapshot, Some(data), out)
        .with_context(|| format!("cannot write {}", out.display()))?;
    eprintln!(
        "wrote {} resources as {} files ({} bytes) to {} in {:.2} s",
        stats.resources,
        stats.files,
        stats.bytes,
        out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
