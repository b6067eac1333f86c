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
