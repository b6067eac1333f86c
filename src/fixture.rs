//! The site the unit tests build on: one configuration and entry parser,
//! instead of a copy per module.

use std::path::Path;
use std::sync::Arc;

use crate::config::Config;
use crate::entry::{Context, Entry, html::Sanitizer, parse};
use crate::model::Site;

/// A configuration: title «T» at `http://example.org/` in UTC, then `more`
/// (sections, language, …) as TOML lines.
pub fn config(more: &str) -> Config {
    let text =
        format!("title = \"T\"\nbase_url = \"http://example.org/\"\ntimezone = \"UTC\"\n{more}");
    Config::parse(Path::new("site.toml"), &text).unwrap_or_else(|d| panic!("{d}"))
}

/// The entry a file's text gives under `config`, at `rel` in `entries/`;
/// panics on any problem.
pub fn entry(config: &Config, rel: &str, text: &str) -> Entry {
    let sanitizer = Sanitizer::new(&config.base_url);
    let ctx = Context {
        config,
        sanitizer: &sanitizer,
        spool: None,
    };
    let parsed = parse(&ctx, Path::new(rel), rel, text.as_bytes());
    assert!(parsed.diagnostics.is_empty(), "{:#?}", parsed.diagnostics);
    parsed.entry.expect("an entry")
}

/// A site of `config` and entry files given as (name, text).
pub fn site(config: Config, files: &[(&str, &str)]) -> Site {
    let entries = files
        .iter()
        .map(|(rel, text)| Arc::new(entry(&config, rel, text)))
        .collect();
    Site::new(config, entries, Vec::new())
}
