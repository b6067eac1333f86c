//! Vestnik publishes a directory of news entries as per-section and combined feeds.
//!
//! Modules in reading order:
//! - [`diagnostic`]: problems tied to a file and a position;
//! - [`text`]: XML-safe text and slugs;
//! - [`file`]: opening DATA's files without blocking on FIFOs or devices;
//! - [`config`]: `site.toml`, validated once;
//! - [`entry`]: one entry file parsed (pure), and the directory loaded;
//! - [`media`]: files under `DATA/media/`: path rule, URL, type, safe open;
//! - [`model`]: the site, its sections and the feeds they form;
//! - [`render`]: model to feed bytes, the only user of the feed crates;
//! - [`snapshot`]: every feed pre-rendered and pre-compressed, immutable;
//! - [`serve`]: HTTP over the current snapshot;
//! - [`export`]: the same snapshot written out as static files;
//! - [`out_dir`]: where a build may write, its manifest, the atomic swap;
//! - [`inputs`]: what each exported page is made of, so a rebuild skips unchanged ones;
//! - [`reload`]: file events to new snapshots, swapped atomically;
//! - [`websub`]: hub links of feeds, and pings to the hub for changed feeds;
//! - [`admin`]: the admin listener: metrics, subscribers per feed, problems;
//! - [`app`]: the `serve` command assembled from the pieces above;
//! - [`import`]: saved news pages (plain text) to entry files;
//! - [`new`]: `vestnik new`, a new entry file with valid front matter;
//! - [`cli`]: the command line.
//!
//! `config → entry → model → render → snapshot` does no network I/O and never
//! reads the clock, so the same data gives byte-identical feeds everywhere.

pub mod admin;
pub mod app;
pub mod cli;
pub mod config;
pub mod diagnostic;
pub mod entry;
pub mod export;
pub mod file;
#[cfg(test)]
mod fixture;
pub mod import;
pub mod inputs;
pub mod listen;
pub mod load;
pub mod logging;
pub mod media;
pub mod model;
pub mod new;
pub mod out_dir;
pub mod progress;
pub mod reload;
pub mod render;
pub mod serve;
pub mod snapshot;
pub mod text;
pub mod urls;
pub mod websub;

use std::path::Path;

/// Loads a data directory into a site: configuration, entries and problems.
///
/// A broken `site.toml` is an error; broken entries are diagnostics.
pub fn load_site(data_dir: &Path) -> Result<model::Site, diagnostic::Diagnostic> {
    Ok(load::Loader::open(data_dir)?.site())
}

/// Like [`load_site`], with `base_url` (when given) in place of `site.toml`'s,
/// and published as of `cutoff` (when given): entries due later and entries
/// expired by then are left out (see [`model::Schedule`]).
pub fn load_site_at(
    data_dir: &Path,
    base_url: Option<url::Url>,
    cutoff: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<model::Site, diagnostic::Diagnostic> {
    let mut loader = load::Loader::open_with(data_dir, base_url)?;
    if let Some(cutoff) = cutoff {
        loader.set_cutoff(cutoff);
    }
    Ok(loader.site())
}

/// What `vestnik check` reports: the site as of `now`, and one information
/// line per entry the clock holds back (scheduled, with its due time in its
/// own zone, or expired), in time order. Every file is read and parsed once.
pub fn check(
    data_dir: &Path,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(model::Site, Vec<String>), diagnostic::Diagnostic> {
    use entry::Visibility;
    let mut loader = load::Loader::open(data_dir)?;
    // Without a cutoff, the site holds every entry whatever its dates.
    let everything = loader.site();
    let entries = data_dir.join(load::ENTRIES_DIR);
    let mut waiting: Vec<(chrono::DateTime<chrono::FixedOffset>, String)> = everything
        .entries
        .iter()
        .filter_map(|e| {
            let path = entries.join(&e.path);
            let (when, what) = match e.visibility(now) {
                Visibility::Public => return None,
                Visibility::Scheduled => (e.due(), "scheduled, goes live"),
                Visibility::Expired => (e.expires?, "expired, no longer public since"),
            };
            let line = format!(
                "{}: info: {what} {}",
                path.display(),
                when.format("%d.%m.%Y %H:%M (UTC%:z)")
            );
            Some((when, line))
        })
        .collect();
    waiting.sort();
    loader.set_cutoff(now);
    Ok((loader.site(), waiting.into_iter().map(|(_, l)| l).collect()))
}
