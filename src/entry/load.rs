//! Reading `DATA/entries/**/*.md`: walk, read and parse in parallel, then
//! resolve duplicate ids. Returns what loaded plus every problem found.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::{Context, Entry, Parsed, html::Sanitizer, parse};
use crate::config::Config;
use crate::diagnostic::Diagnostic;

/// The entries directory inside DATA.
pub const ENTRIES_DIR: &str = "entries";

/// Entry files larger than this are rejected rather than read.
pub const MAX_ENTRY_BYTES: u64 = 1024 * 1024;

/// The outcome of loading a data directory.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Published entries with unique ids, in path order.
    pub entries: Vec<Entry>,
    /// Every problem, ordered by path and position.
    pub diagnostics: Vec<Diagnostic>,
}

/// One candidate file found by the walk.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Path relative to `DATA/entries`, `/`-separated.
    pub rel: String,
    /// Full path, as shown in diagnostics.
    pub path: PathBuf,
}

/// True when a file name is one the loader ignores: dot files, `_` files, and
/// anything not ending in `.md` (which covers `x.md~`, `.x.md.swp`, `x.md.bak`).
pub fn is_ignored_name(name: &str) -> bool {
    name.starts_with('.') || name.starts_with('_') || !name.ends_with(".md")
}

/// Lists the entry files under `DATA/entries`, sorted by relative path.
///
/// Hidden and `_` directories are skipped. Symlinks are followed only when
/// they resolve inside the data directory; others are reported.
pub fn scan(data_dir: &Path) -> (Vec<Candidate>, Vec<Diagnostic>) {
    let root = data_dir.join(ENTRIES_DIR);
    let mut found = Vec::new();
    let mut problems = Vec::new();
    if !root.is_dir() {
        return (found, problems);
    }
    let data_real = std::fs::canonicalize(data_dir).ok();
    let walker = walkdir::WalkDir::new(&root)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| {
            e.depth() == 0 || {
                let name = e.file_name().to_string_lossy();
                !(name.starts_with('.') || name.starts_with('_'))
            }
        });
    for item in walker {
        let item = match item {
            Ok(i) => i,
            Err(e) => {
                let path = e.path().unwrap_or(&root).to_path_buf();
                problems.push(Diagnostic::file(
                    &path,
                    format!("cannot read: {}", io_reason(&e)),
                ));
                continue;
            }
        };
        let name = item.file_name().to_string_lossy();
        if item.depth() == 0 || is_ignored_name(&name) {
            continue;
        }
        let path = item.path().to_path_buf();
        let ft = item.file_type();
        if ft.is_symlink() {
            match (std::fs::canonicalize(&path), &data_real) {
                (Ok(target), Some(data)) if target.starts_with(data) => {
                    if !target.is_file() {
                        continue;
                    }
                }
                (Ok(target), _) => {
                    problems.push(Diagnostic::file(
                        &path,
                        format!(
                            "symlink to {} points outside the data directory; not followed",
                            target.display()
                        ),
                    ));
                    continue;
                }
                (Err(e), _) => {
                    problems.push(Diagnostic::file(&path, format!("broken symlink: {e}")));
                    continue;
                }
            }
        } else if !ft.is_file() {
            continue;
        }
        let rel = path
            .strip_prefix(&root)
            .unwrap_or(&path)
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        found.push(Candidate { rel, path });
    }
    found.sort_by(|a, b| a.rel.cmp(&b.rel));
    (found, problems)
}

fn io_reason(e: &walkdir::Error) -> String {
    e.io_error()
        .map_or_else(|| e.to_string(), std::string::ToString::to_string)
}

/// Reads and parses one candidate file.
pub fn read_and_parse(ctx: &Context<'_>, c: &Candidate) -> Parsed {
    match read_limited(&c.path) {
        Ok(bytes) => parse(ctx, &c.path, &c.rel, &bytes),
        Err(message) => Parsed {
            entry: None,
            diagnostics: vec![Diagnostic::file(&c.path, message)],
        },
    }
}

fn read_limited(path: &Path) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    if meta.len() > MAX_ENTRY_BYTES {
        return Err(format!(
            "file is {} bytes, over the {} byte limit for an entry; split it or move attachments out",
            meta.len(),
            MAX_ENTRY_BYTES
        ));
    }
    std::fs::read(path).map_err(|e| format!("cannot read: {e}"))
}

/// Loads every entry under `DATA/entries`.
pub fn load(data_dir: &Path, config: &Config) -> Loaded {
    let (candidates, mut diagnostics) = scan(data_dir);
    let sanitizer = Sanitizer::new(&config.base_url);
    let ctx = Context {
        config,
        sanitizer: &sanitizer,
    };
    let parsed: Vec<(Candidate, Parsed)> = candidates
        .into_par_iter()
        .map(|c| {
            let p = read_and_parse(&ctx, &c);
            (c, p)
        })
        .collect();
    let mut loaded = resolve(parsed);
    diagnostics.append(&mut loaded.diagnostics);
    sort_diagnostics(&mut diagnostics);
    loaded.diagnostics = diagnostics;
    loaded
}

/// Collects parsed files into published entries, in path order.
///
/// Of two files with the same id, the one whose path sorts first is published,
/// and the other gets a diagnostic naming both.
pub fn resolve(mut parsed: Vec<(Candidate, Parsed)>) -> Loaded {
    parsed.sort_by(|a, b| a.0.rel.cmp(&b.0.rel));
    let mut owners: HashMap<String, PathBuf> = HashMap::with_capacity(parsed.len());
    let mut out = Loaded::default();
    for (c, p) in parsed {
        out.diagnostics.extend(p.diagnostics);
        let Some(entry) = p.entry else { continue };
        if let Some(first) = owners.get(&entry.id) {
            out.diagnostics.push(Diagnostic::file(
                &c.path,
                format!(
                    "duplicate id \"{}\": {} has it too and is published; this file is not (give one of them another `id`)",
                    entry.id,
                    first.display()
                ),
            ));
            continue;
        }
        owners.insert(entry.id.clone(), c.path);
        out.entries.push(entry);
    }
    sort_diagnostics(&mut out.diagnostics);
    out
}

fn sort_diagnostics(d: &mut [Diagnostic]) {
    d.sort_by(|a, b| (&a.path, a.line, a.column).cmp(&(&b.path, b.line, b.column)));
}
