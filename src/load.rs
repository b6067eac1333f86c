//! Reading `DATA/entries/**/*.md` into entries, once or again and again.
//!
//! A [`Loader`] keeps one [`FileState`] per file: its fingerprint (size,
//! mtime, content hash) and what parsing it gave. A reload re-reads only the
//! files that changed, and a file that turns bad keeps its last good entry, so
//! a half-written save never takes an article out of the feeds.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use rayon::prelude::*;

use crate::config::{Config, SITE_FILE};
use crate::diagnostic::Diagnostic;
use crate::entry::spool::Spool;
use crate::entry::{Context, Entry, html::Sanitizer, parse};
use crate::model::Site;

/// The entries directory inside DATA.
pub const ENTRIES_DIR: &str = "entries";

/// The outcome of loading a data directory once.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Published entries with unique ids, in path order.
    pub entries: Vec<Arc<Entry>>,
    /// Every problem, ordered by path and position.
    pub diagnostics: Vec<Diagnostic>,
    /// The entries the cutoff left out, and when that changes.
    pub schedule: crate::model::Schedule,
    /// The scheduled entries, earliest due first, so the clock can publish
    /// them without a full rebuild.
    pub waiting: Vec<Arc<Entry>>,
    /// The earliest expiry or news-window exit after the cutoff: the
    /// clock's changes that need a full rebuild.
    pub next_other: Option<chrono::DateTime<chrono::Utc>>,
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

/// Lists the entry files under `root` (a folder inside `DATA/entries`),
/// sorted by relative path.
///
/// Hidden and `_` directories are skipped. Symlinks are followed only when
/// they resolve inside the data directory; others are reported.
pub fn scan(data_dir: &Path, root: &Path) -> (Vec<Candidate>, Vec<Diagnostic>) {
    let entries_root = data_dir.join(ENTRIES_DIR);
    let mut found = Vec::new();
    let mut problems = Vec::new();
    if !root.is_dir() {
        return (found, problems);
    }
    let data_real = std::fs::canonicalize(data_dir).ok();
    let walker = walkdir::WalkDir::new(root)
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
                let path = e.path().unwrap_or(root).to_path_buf();
                problems.push(Diagnostic::file(
                    &path,
                    format!("cannot read: {}", io_reason(&e)),
                ));
                continue;
            }
        };
        let name = item.file_name().to_string_lossy();
        if item.file_type().is_dir() {
            continue;
        }
        if is_ignored_name(&name) {
            // Symlinked folders are never walked into. One that leads out of
            // DATA would otherwise hide its entries without a word, so it is
            // reported like a file symlink (found by tests/hostile.rs).
            if item.file_type().is_symlink() && !name.starts_with(['.', '_']) {
                if let (Ok(target), Some(data)) = (std::fs::canonicalize(item.path()), &data_real) {
                    if target.is_dir() && !target.starts_with(data) {
                        problems.push(outside_link(item.path(), &target));
                    }
                }
            }
            continue;
        }
        let path = item.path().to_path_buf();
        if item.file_type().is_symlink() {
            match (std::fs::canonicalize(&path), &data_real) {
                (Ok(target), Some(data)) if target.starts_with(data) => {
                    if !target.is_file() {
                        continue;
                    }
                }
                (Ok(target), _) => {
                    problems.push(outside_link(&path, &target));
                    continue;
                }
                (Err(e), _) => {
                    problems.push(Diagnostic::file(&path, format!("broken symlink: {e}")));
                    continue;
                }
            }
        } else if !item.file_type().is_file() {
            // A FIFO, socket or device named like an entry: reported, never opened.
            if let Ok(meta) = item.metadata() {
                problems.push(Diagnostic::file(
                    &path,
                    format!(
                        "cannot read: {}; only regular files are read",
                        crate::file::kind(&meta)
                    ),
                ));
            }
            continue;
        }
        if let Some(rel) = relative(&entries_root, &path) {
            found.push(Candidate { rel, path });
        }
    }
    found.sort_by(|a, b| a.rel.cmp(&b.rel));
    (found, problems)
}

fn outside_link(path: &Path, target: &Path) -> Diagnostic {
    Diagnostic::file(
        path,
        format!(
            "symlink to {} points outside the data directory; not followed",
            target.display()
        ),
    )
}

/// `path` relative to `root` with `/` separators, if it is inside it.
fn relative(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    Some(
        rel.components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/"),
    )
}

fn io_reason(e: &walkdir::Error) -> String {
    e.io_error()
        .map_or_else(|| e.to_string(), std::string::ToString::to_string)
}

/// Size and modification time: cheap to read, and enough to skip unchanged files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    len: u64,
    mtime: Option<SystemTime>,
}

/// What the loader knows about one file.
#[derive(Debug, Clone)]
pub struct FileState {
    stat: Stat,
    hash: u64,
    /// The entry parsed from the current bytes, if they parse.
    entry: Option<Arc<Entry>>,
    /// The problems in the current bytes.
    diagnostics: Vec<Diagnostic>,
    /// The last entry this file gave, kept while the file is broken.
    last_good: Option<Arc<Entry>>,
    /// True when the file parsed cleanly but is a draft.
    draft: bool,
    /// The files under `DATA/media/` the entry names and their sizes when
    /// read (`None`: unusable), so a changed file re-measures the entry.
    media: Vec<(String, Option<u64>)>,
}

/// What one refresh changed, for the reload log.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    /// Files seen for the first time.
    pub added: usize,
    /// Files whose content changed.
    pub changed: usize,
    /// Files that went away.
    pub removed: usize,
    /// True when `site.toml` changed and was accepted.
    pub config: bool,
}

impl Changes {
    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        *self == Changes::default()
    }
}

/// The loading state of one data directory, kept across reloads.
pub struct Loader {
    /// DATA as the user gave it (relative, `.`, a symlink…): every path the
    /// loader shows is under it, so messages name files the way the user does.
    data_dir: PathBuf,
    /// DATA with symlinks, `.` and `..` resolved: where the watcher looks,
    /// and so the prefix of every path it reports.
    real_dir: PathBuf,
    config: Config,
    config_hash: u64,
    /// `--base-url`: replaces `site.toml`'s `base_url` on every read.
    base_url: Option<url::Url>,
    /// A broken `site.toml` seen after startup; the previous config stays in use.
    config_problem: Option<Diagnostic>,
    sanitizer: Sanitizer,
    /// Where parsed bodies are kept out of memory (see [`crate::entry::spool`]);
    /// `None` when no temporary file could be made.
    spool: Option<Arc<Spool>>,
    files: BTreeMap<String, FileState>,
    /// Problems found by the walk itself (outside symlinks, unreadable folders).
    scan_problems: Vec<Diagnostic>,
    /// The order, problems and section counts of the last [`Loader::site`], for patching.
    published: Option<Published>,
    /// Entries replaced since then without moving: (old, new).
    swaps: Vec<(Arc<Entry>, Arc<Entry>)>,
    /// True when a change since then needs a full rebuild of the order.
    full: bool,
    /// Entries not due at this time, or expired by it, are left out of the
    /// site; `None` publishes every entry whatever its dates.
    cutoff: Option<chrono::DateTime<chrono::Utc>>,
    /// Scheduled entries of the last full build, earliest due first.
    waiting: Vec<Arc<Entry>>,
    /// The earliest expiry or news-window exit after the last cutoff.
    next_other: Option<chrono::DateTime<chrono::Utc>>,
    /// True when waiting entries became due and the next site must publish them.
    due_pending: bool,
}

impl Loader {
    /// Reads `site.toml` and every entry. A broken `site.toml` is an error here.
    pub fn open(data_dir: &Path) -> Result<Loader, Diagnostic> {
        Loader::open_with(data_dir, None)
    }

    /// Like [`Loader::open`], with `base_url` (if given) in place of the one
    /// in `site.toml`, now and on every reload: a deployment names its public
    /// address without editing the data.
    pub fn open_with(data_dir: &Path, base_url: Option<url::Url>) -> Result<Loader, Diagnostic> {
        Loader::open_as(data_dir, base_url, false)
    }

    /// Like [`Loader::open_with`]; `preview` publishes drafts and scheduled
    /// entries too (`serve --preview`), marked on the pages.
    pub fn open_as(
        data_dir: &Path,
        base_url: Option<url::Url>,
        preview: bool,
    ) -> Result<Loader, Diagnostic> {
        let (config, config_hash) = read_config(data_dir, base_url.as_ref(), preview)?;
        let mut loader = Loader {
            base_url,
            data_dir: data_dir.to_path_buf(),
            real_dir: std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf()),
            sanitizer: Sanitizer::new(&config.base_url),
            spool: Spool::create(),
            config,
            config_hash,
            config_problem: None,
            files: BTreeMap::new(),
            scan_problems: Vec::new(),
            published: None,
            swaps: Vec::new(),
            full: true,
            cutoff: None,
            waiting: Vec::new(),
            next_other: None,
            due_pending: false,
        };
        loader.rescan();
        Ok(loader)
    }

    /// Publishes the site as of `cutoff`: entries due later are scheduled
    /// and entries whose `expires` has passed are expired, both left out.
    pub fn set_cutoff(&mut self, cutoff: chrono::DateTime<chrono::Utc>) {
        // Only a cutoff that passes the next due time or expiry changes the
        // public entries; a later time alone keeps an edit on the fast path.
        // Entries that only became due are inserted into the published
        // order; an expiry or a news-window exit takes a full rebuild.
        let crosses = match &self.published {
            Some((_, _, _, schedule)) => {
                schedule.cutoff.is_none_or(|old| cutoff < old)
                    || self.next_other.is_some_and(|t| t <= cutoff)
                    || self.config.preview
            }
            None => true,
        };
        if crosses {
            self.full = true;
        } else if self
            .waiting
            .first()
            .is_some_and(|e| e.due().to_utc() <= cutoff)
        {
            self.due_pending = true;
        }
        self.cutoff = Some(cutoff);
    }

    /// The time the site is published as of, if any.
    pub fn cutoff(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.cutoff
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// True when DATA itself is gone: the folder is missing, or it holds
    /// neither `site.toml` nor `entries/` (an unmounted mount point).
    pub fn data_gone(&self) -> bool {
        !self.data_dir.is_dir()
            || (!self.data_dir.join(SITE_FILE).exists()
                && !self.data_dir.join(ENTRIES_DIR).exists())
    }

    /// The data directory, as given.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The data directory with symlinks, `.` and `..` resolved: the folder a
    /// file watcher should watch, since [`Loader::refresh_paths`] maps the
    /// absolute paths it reports back to [`Loader::data_dir`].
    pub fn watch_dir(&self) -> &Path {
        &self.real_dir
    }

    /// `path` (as a watcher reports it, under [`Loader::watch_dir`], or
    /// already under [`Loader::data_dir`]) as a path under `data_dir`; `None`
    /// for a path outside DATA.
    fn as_given(&self, path: &Path) -> Option<PathBuf> {
        if let Ok(rest) = path.strip_prefix(&self.real_dir) {
            return Some(self.data_dir.join(rest));
        }
        path.starts_with(&self.data_dir).then(|| path.to_path_buf())
    }

    /// Re-reads `site.toml`. A broken one keeps the previous configuration and
    /// is reported; a changed one re-parses every entry against it.
    pub fn reload_config(&mut self) -> Changes {
        let mut changes = Changes::default();
        // The config problem is part of the published problems.
        self.full = true;
        match read_config(&self.data_dir, self.base_url.as_ref(), self.config.preview) {
            Err(d) => self.config_problem = Some(previous_config_kept(d)),
            Ok((config, hash)) => {
                self.config_problem = None;
                if hash != self.config_hash {
                    self.config_hash = hash;
                    if config != self.config {
                        self.sanitizer = Sanitizer::new(&config.base_url);
                        self.config = config;
                        // Entries depend on the config (sections, base_url, zone).
                        self.files.clear();
                        self.full = true;
                        changes = self.rescan();
                        changes.config = true;
                    }
                }
            }
        }
        changes
    }

    /// Walks the whole entries tree; re-reads files whose size or mtime
    /// changed, and re-parses those whose content hash changed.
    pub fn rescan(&mut self) -> Changes {
        self.walk(false)
    }

    /// Walks the whole entries tree and re-reads every file (SIGHUP), so a
    /// change that kept size and mtime is still seen. Unchanged content keeps
    /// its parsed entry.
    pub fn rescan_all(&mut self) -> Changes {
        self.walk(true)
    }

    fn walk(&mut self, force: bool) -> Changes {
        // The walk's own problems may change; rebuild the order and problems.
        self.full = true;
        let root = self.data_dir.join(ENTRIES_DIR);
        let (candidates, problems) = scan(&self.data_dir, &root);
        self.scan_problems = problems;
        let mut changes = Changes::default();
        let seen: std::collections::HashSet<&str> =
            candidates.iter().map(|c| c.rel.as_str()).collect();
        let before = self.files.len();
        self.files.retain(|rel, _| seen.contains(rel.as_str()));
        changes.removed = before - self.files.len();
        self.update(&candidates, force, &mut changes);
        changes
    }

    /// Refreshes just these paths (from a file watcher): files are re-read,
    /// folders are walked, and paths that no longer exist are dropped.
    pub fn refresh_paths(&mut self, paths: &[PathBuf]) -> Changes {
        let root = self.data_dir.join(ENTRIES_DIR);
        let media_root = self.data_dir.join(crate::urls::MEDIA_DIR);
        let mut changes = Changes::default();
        let mut candidates = Vec::new();
        let mut media_changed = false;
        // A watcher reports absolute paths under the real DATA, while DATA
        // may have been given as `data`, `./data/`, `../x/data` or a symlink:
        // compare in one form, the user's.
        let paths: Vec<PathBuf> = paths.iter().filter_map(|p| self.as_given(p)).collect();
        for path in &paths {
            if path.starts_with(&media_root) {
                // Entries name media files; which ones is known per entry,
                // and re-measuring them is a stat each, so walk them all.
                media_changed = true;
                continue;
            }
            if path.file_name().is_some_and(|n| n == SITE_FILE)
                && path.parent() == Some(&*self.data_dir)
            {
                let c = self.reload_config();
                if c.config {
                    return c;
                }
                continue;
            }
            let Some(rel) = relative(&root, path) else {
                continue;
            };
            if rel.is_empty() {
                return self.rescan();
            }
            if path.is_dir() {
                let (found, _) = scan(&self.data_dir, path);
                candidates.extend(found);
            } else if path.exists() {
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                let hidden = rel
                    .split('/')
                    .any(|part| part.starts_with('.') || part.starts_with('_'));
                if !is_ignored_name(&name) && !hidden {
                    candidates.push(Candidate {
                        rel,
                        path: path.clone(),
                    });
                }
            } else {
                // Gone: the file itself, or a folder with everything under it.
                // Keys are sorted, so a folder's files are one contiguous range.
                let before = changes.removed;
                changes.removed += usize::from(self.files.remove(&rel).is_some());
                let prefix = format!("{rel}/");
                let under: Vec<String> = self
                    .files
                    .range(prefix.clone()..)
                    .take_while(|(r, _)| r.starts_with(&prefix))
                    .map(|(r, _)| r.clone())
                    .collect();
                for r in under {
                    self.files.remove(&r);
                    changes.removed += 1;
                }
                // An editor's temporary file vanishing changes nothing published.
                if changes.removed > before {
                    self.full = true;
                }
            }
        }
        candidates.sort_by(|a, b| a.rel.cmp(&b.rel));
        candidates.dedup_by(|a, b| a.rel == b.rel);
        // The watcher said these changed: read them even if size and mtime
        // look the same, since mtime can be coarse. The hash decides.
        self.update(&candidates, true, &mut changes);
        if media_changed {
            let more = self.rescan();
            changes.added += more.added;
            changes.changed += more.changed;
            changes.removed += more.removed;
        }
        changes
    }

    fn update(&mut self, candidates: &[Candidate], force: bool, changes: &mut Changes) {
        let (config, sanitizer) = (&self.config, &self.sanitizer);
        let files = &self.files;
        let data_dir = &self.data_dir;
        let spool = &self.spool;
        // Each piece of the work spools its bodies through its own batch,
        // written when the piece ends: all of them before `collect` returns.
        // Collected as it is indexed, into one vector of the final size: a
        // `flatten` here made rayon gather pieces and copy them, and the heap
        // kept 45 MB more at N = 100,000.
        let results: Vec<Option<(String, Option<FileState>)>> = candidates
            .par_iter()
            .with_min_len(1024)
            .map_init(
                || spool.as_ref().map(|s| RefCell::new(s.batch())),
                |batch, c| {
                    let ctx = Context {
                        config,
                        sanitizer,
                        spool: batch.as_ref(),
                    };
                    let old = files.get(&c.rel);
                    if let (Some(old), false) = (old, force) {
                        let stat = stat(&c.path);
                        if stat == Some(old.stat) && media_unchanged(data_dir, &old.media) {
                            return None;
                        }
                    }
                    let state = read_state(&ctx, data_dir, c, old);
                    Some((c.rel.clone(), state))
                },
            )
            .collect();
        for (rel, state) in results.into_iter().flatten() {
            match state {
                None => {}
                Some(new) => match self.files.get(&rel) {
                    None => {
                        changes.added += 1;
                        self.full = true;
                        self.files.insert(rel, new);
                    }
                    Some(old) if old.hash == new.hash && old.media == new.media => {
                        // Touched but not changed: keep the same Arc, only update the stat.
                        let stat = new.stat;
                        if let Some(s) = self.files.get_mut(&rel) {
                            s.stat = stat;
                        }
                    }
                    Some(old) => {
                        changes.changed += 1;
                        match in_place_swap(old, &new) {
                            Some(swap) => self.swaps.push(swap),
                            None => self.full = true,
                        }
                        self.files.insert(rel, new);
                    }
                },
            }
        }
    }

    /// The site as the loader sees it now.
    ///
    /// Entries come in path order; of two with the same id, the one whose path
    /// sorts first is published. A broken file contributes its last good entry.
    ///
    /// The common edit (one entry's text changes, its date and id do not)
    /// leaves the order as it was, so the previous order is patched in place
    /// instead of rebuilt: at 100,000 entries that is the difference between
    /// a few and about seventy milliseconds.
    pub fn site(&mut self) -> Site {
        let swaps = std::mem::take(&mut self.swaps);
        let config = &self.config;
        if let Some(published) = self.published.as_mut().filter(|_| !self.full) {
            if patch(&mut published.0, &swaps) {
                // Section counts follow the swaps too, so the new site
                // does not count 100,000 entries again.
                let index = |slug: &String| config.sections.iter().position(|s| &s.slug == slug);
                let counts = &mut published.2;
                for (old, new) in &swaps {
                    for i in old.sections.iter().filter_map(index) {
                        counts[i] -= 1;
                    }
                    for i in new.sections.iter().filter_map(index) {
                        counts[i] += 1;
                    }
                }
                if let (true, Some(cutoff)) = (self.due_pending, self.cutoff) {
                    publish_due(
                        config,
                        cutoff,
                        &mut self.waiting,
                        &mut self.next_other,
                        published,
                    );
                }
                self.due_pending = false;
                let (order, diagnostics, counts, schedule) = published;
                return Site::from_sorted(config.clone(), order.clone(), diagnostics.clone())
                    .with_section_counts(counts.clone())
                    .with_schedule(schedule.clone());
            }
        }
        let loaded = self.loaded();
        self.waiting = loaded.waiting;
        self.next_other = loaded.next_other;
        self.due_pending = false;
        let site = Site::new(self.config.clone(), loaded.entries, loaded.diagnostics)
            .with_schedule(loaded.schedule);
        self.published = Some((
            site.entries.clone(),
            site.diagnostics.clone(),
            site.section_counts().to_vec(),
            site.schedule.clone(),
        ));
        self.full = false;
        site
    }

    /// Entries and problems as the loader sees them now.
    pub fn loaded(&self) -> Loaded {
        let entries_root = self.data_dir.join(ENTRIES_DIR);
        let mut out = Loaded {
            entries: Vec::with_capacity(self.files.len()),
            diagnostics: self.scan_problems.clone(),
            schedule: crate::model::Schedule::default(),
            waiting: Vec::new(),
            next_other: None,
        };
        out.diagnostics.extend(self.config_problem.iter().cloned());
        let mut owners: HashMap<&str, &str> = HashMap::with_capacity(self.files.len());
        for (rel, state) in &self.files {
            out.diagnostics.extend(state.diagnostics.iter().cloned());
            let entry = match (&state.entry, &state.last_good) {
                (Some(e), _) => e,
                (None, Some(good)) if !state.draft => {
                    out.diagnostics.push(Diagnostic::file(
                        &entries_root.join(rel),
                        "still publishing the last good version of this file until it is fixed",
                    ));
                    good
                }
                _ => continue,
            };
            if let Some(first) = owners.get(entry.id.as_str()) {
                out.diagnostics.push(Diagnostic::file(
                    &entries_root.join(rel),
                    format!(
                        "duplicate id \"{}\": {} has it too and is published; this file is not (give one of them another `id`)",
                        entry.id,
                        entries_root.join(first).display()
                    ),
                ));
                continue;
            }
            owners.insert(&entry.id, rel);
            out.entries.push(entry.clone());
        }
        if let Some(cutoff) = self.cutoff {
            if self.config.preview {
                // Everything is shown; the pages mark what is not public yet.
                let mut all = out.entries.clone();
                out.schedule = schedule(&mut all, cutoff).0;
                out.schedule.next_change = None;
                out.schedule.expired.clear();
            } else {
                (out.schedule, out.waiting, out.next_other) = schedule(&mut out.entries, cutoff);
            }
        }
        out.diagnostics
            .sort_by(|a, b| (&a.path, a.line, a.column).cmp(&(&b.path, b.line, b.column)));
        out
    }
}

/// What the last [`Loader::site`] published: newest-first order, problems,
/// entries per configured section, and the schedule.
type Published = (
    crate::model::Order,
    Vec<Diagnostic>,
    Vec<usize>,
    crate::model::Schedule,
);

/// Keeps only the entries public at `cutoff` and describes the rest: how
/// many are scheduled, which expired, and when the public set next changes.
fn schedule(
    entries: &mut Vec<Arc<Entry>>,
    cutoff: chrono::DateTime<chrono::Utc>,
) -> (
    crate::model::Schedule,
    Vec<Arc<Entry>>,
    Option<chrono::DateTime<chrono::Utc>>,
) {
    use crate::entry::Visibility;
    let mut next_other: Option<chrono::DateTime<chrono::Utc>> = None;
    let mut waiting = Vec::new();
    let mut expired = std::collections::HashSet::new();
    entries.retain(|e| match e.visibility(cutoff) {
        Visibility::Public => {
            next_other = earliest(next_other, public_changes(e, cutoff));
            true
        }
        Visibility::Scheduled => {
            waiting.push(e.clone());
            false
        }
        Visibility::Expired => {
            expired.insert(e.id.clone());
            false
        }
    });
    waiting.sort_by(|a, b| (a.due(), &a.id).cmp(&(b.due(), &b.id)));
    let next_due = waiting.first().map(|e| e.due());
    let s = crate::model::Schedule {
        cutoff: Some(cutoff),
        scheduled: waiting.len(),
        next_change: earliest(next_other, next_due.map(|t| t.to_utc())),
        next_due,
        expired,
    };
    (s, waiting, next_other)
}

/// The earlier of two optional times.
fn earliest(
    a: Option<chrono::DateTime<chrono::Utc>>,
    b: Option<chrono::DateTime<chrono::Utc>>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The earliest time after `cutoff` when a public entry changes the site by
/// the clock alone: its expiry, or its leaving the news sitemap's window.
fn public_changes(
    e: &Entry,
    cutoff: chrono::DateTime<chrono::Utc>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    let leaves = e.due().to_utc() + crate::model::NEWS_WINDOW;
    earliest(
        e.expires.map(|t| t.to_utc()),
        (leaves > cutoff).then_some(leaves),
    )
}

/// Publishes the waiting entries that are due at `cutoff` into a published
/// order, without a full rebuild: each is inserted at its place, its
/// sections counted, and the schedule moved on. This is the clock's common
/// change (an embargo lifting); expiries and the news window take a rebuild.
fn publish_due(
    config: &Config,
    cutoff: chrono::DateTime<chrono::Utc>,
    waiting: &mut Vec<Arc<Entry>>,
    next_other: &mut Option<chrono::DateTime<chrono::Utc>>,
    published: &mut Published,
) {
    let (order, _, counts, schedule) = published;
    let due = waiting.partition_point(|e| e.due().to_utc() <= cutoff);
    for e in waiting.drain(..due) {
        let at = order
            .binary_search_by(|x| crate::model::newest_first(x, &e))
            .unwrap_or_else(|at| at);
        for slug in &e.sections {
            if let Some(i) = config.sections.iter().position(|s| &s.slug == slug) {
                counts[i] += 1;
            }
        }
        *next_other = earliest(*next_other, public_changes(&e, cutoff));
        order.insert(at, e);
    }
    schedule.cutoff = Some(cutoff);
    schedule.scheduled = waiting.len();
    schedule.next_due = waiting.first().map(|e| e.due());
    schedule.next_change = earliest(*next_other, schedule.next_due.map(|t| t.to_utc()));
}

/// The (old, new) entry pair when replacing a file's state keeps the
/// published order and problems as they were: both versions parse cleanly
/// with the same id and date. Anything else needs a full rebuild.
fn in_place_swap(old: &FileState, new: &FileState) -> Option<(Arc<Entry>, Arc<Entry>)> {
    let (a, b) = (old.entry.as_ref()?, new.entry.as_ref()?);
    let clean = old.diagnostics.is_empty() && new.diagnostics.is_empty();
    // The same times: the same place in the order and the same schedule.
    let same = a.id == b.id
        && a.published == b.published
        && a.publish_at == b.publish_at
        && a.expires == b.expires;
    (clean && same).then(|| (a.clone(), b.clone()))
}

/// Replaces each old entry by its new version in a newest-first order.
/// Returns false (leaving `order` possibly half-patched, to be rebuilt) when an
/// old entry is not where the order says, e.g. it was shadowed by a duplicate id.
fn patch(order: &mut crate::model::Order, swaps: &[(Arc<Entry>, Arc<Entry>)]) -> bool {
    for (old, new) in swaps {
        match order.binary_search_by(|e| crate::model::newest_first(e, old)) {
            Ok(i) if Arc::ptr_eq(&order[i], old) => order.set(i, new.clone()),
            _ => return false,
        }
    }
    true
}

fn previous_config_kept(mut d: Diagnostic) -> Diagnostic {
    d.message
        .push_str("; still using the previous configuration until it is fixed");
    d
}

fn read_config(
    data_dir: &Path,
    base_url: Option<&url::Url>,
    preview: bool,
) -> Result<(Config, u64), Diagnostic> {
    let (mut config, text) = Config::read(data_dir)?;
    if let Some(url) = base_url {
        config.base_url = url.clone();
    }
    config.preview = preview;
    Ok((config, hash_bytes(text.as_bytes())))
}

fn stat(path: &Path) -> Option<Stat> {
    let meta = std::fs::metadata(path).ok()?;
    Some(Stat {
        len: meta.len(),
        mtime: meta.modified().ok(),
    })
}

fn hash_bytes(bytes: &[u8]) -> u64 {
    // In-memory change detection only, never persisted: SipHash with fixed keys suffices.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// The size of a media file as the loader uses it: `None` when it cannot be served.
fn media_len(data_dir: &Path, rel: &str) -> Option<u64> {
    crate::media::open(data_dir, rel).ok().map(|(_, m)| m.len())
}

/// True when every media file an entry named still has the size it had.
fn media_unchanged(data_dir: &Path, media: &[(String, Option<u64>)]) -> bool {
    media
        .iter()
        .all(|(rel, len)| media_len(data_dir, rel) == *len)
}

/// The I/O half of enclosures and images: measures each file under
/// `DATA/media/` that the entry names. A file that cannot be served
/// (missing, a folder, a symlink out of `DATA/media/`, too large) is
/// reported at the line naming it and left out; the entry is still published.
/// The files of an entry skipped for another problem are checked too, so
/// `check` names them in the same run.
fn measure(
    data_dir: &Path,
    path: &Path,
    parsed: &mut crate::entry::Parsed,
) -> Vec<(String, Option<u64>)> {
    let mut seen = Vec::new();
    for m in &parsed.local_media {
        let len = match crate::media::open(data_dir, &m.rel) {
            Ok((_, meta)) => Some(meta.len()),
            Err(e) => {
                let what_to_do = if parsed.entry.is_some() {
                    "the entry is published without it (put the file in DATA/media/ or fix the path)"
                } else {
                    "put the file in DATA/media/ or fix the path"
                };
                parsed.diagnostics.push(Diagnostic::at(
                    path,
                    m.line,
                    m.column,
                    format!("{e}; {what_to_do}"),
                ));
                None
            }
        };
        seen.push((m.rel.clone(), len));
    }
    let Some(entry) = parsed.entry.as_mut() else {
        return seen;
    };
    let len_of = |rel: &str| {
        seen.iter()
            .find(|(r, _)| r == rel)
            .and_then(|(_, len)| *len)
    };
    entry.enclosures.retain_mut(|e| match e.local.as_deref() {
        None => true,
        Some(rel) => len_of(rel).map(|len| e.length = len).is_some(),
    });
    if let Some(image) = &mut entry.image {
        if let Some(rel) = image.media.local.as_deref() {
            match len_of(rel) {
                Some(len) => image.media.length = len,
                None => entry.image = None,
            }
        }
    }
    seen
}

/// Reads and parses one file; `None` if it vanished between the walk and the read.
fn read_state(
    ctx: &Context<'_>,
    data_dir: &Path,
    c: &Candidate,
    old: Option<&FileState>,
) -> Option<FileState> {
    // Size and mtime come from the open file (fstat), not the path: one
    // path lookup per file instead of two, which shows at 100,000 files.
    // A file that vanished since the walk is simply not there.
    let last_good = old.and_then(|o| o.entry.clone().or_else(|| o.last_good.clone()));
    let unreadable = |stat: Stat, message: String| FileState {
        stat,
        hash: 0,
        entry: None,
        diagnostics: vec![Diagnostic::file(&c.path, message)],
        last_good: last_good.clone(),
        draft: false,
        media: Vec::new(),
    };
    // Never a blocking open: a FIFO named like an entry once froze reloads.
    let (file, meta) = match crate::file::open_regular(&c.path) {
        Ok(found) => found,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => return Some(unreadable(stat(&c.path)?, format!("cannot read: {e}"))),
    };
    let stat = Stat {
        len: meta.len(),
        mtime: meta.modified().ok(),
    };
    let bytes = match read_limited(file, stat.len, ctx.config.max_entry_bytes) {
        Ok(b) => b,
        Err(message) => return Some(unreadable(stat, message)),
    };
    let hash = hash_bytes(&bytes);
    if let Some(old) = old {
        if old.hash == hash && media_unchanged(data_dir, &old.media) {
            let mut same = old.clone();
            same.stat = stat;
            return Some(same);
        }
    }
    let mut parsed = parse(ctx, &c.path, &c.rel, &bytes);
    let draft = parsed.entry.is_none() && parsed.diagnostics.is_empty();
    let media = measure(data_dir, &c.path, &mut parsed);
    let entry = parsed.entry.map(Arc::new);
    Some(FileState {
        stat,
        hash,
        last_good: if entry.is_some() { None } else { last_good },
        entry,
        diagnostics: parsed.diagnostics,
        draft,
        media,
    })
}

/// Reads an entry file of at most `limit` bytes. Every refusal names the
/// size and the limit and says how to raise it (the caller adds the path).
fn read_limited(file: std::fs::File, len: u64, limit: u64) -> Result<Vec<u8>, String> {
    use std::io::Read as _;
    let advice =
        || format!("split it, move attachments out, or raise `max_entry_bytes` in {SITE_FILE}");
    if len > limit {
        return Err(format!(
            "file is {len} bytes, over the {limit} byte limit for an entry; {}",
            advice()
        ));
    }
    // The file may have grown since it was stat'ed: read at most one byte
    // past the limit, so a file being appended to is never read whole.
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 > limit {
        return Err(format!(
            "file grew past the {limit} byte limit for an entry while being read; {}",
            advice()
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, rel: &str, title: &str, date: &str, id: Option<&str>) {
        let path = dir.join(ENTRIES_DIR).join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let id = id.map(|i| format!("id = \"{i}\"\n")).unwrap_or_default();
        std::fs::write(
            path,
            format!("+++\ntitle = \"{title}\"\ndate = \"{date}\"\n{id}sections = [\"s\"]\n+++\nBody of {title}.\n"),
        )
        .unwrap();
    }

    /// What a fresh load of the directory publishes: ids, titles and problems.
    fn summary(site: &Site) -> (Vec<(String, String)>, Vec<String>) {
        (
            site.entries
                .iter()
                .map(|e| (e.id.clone(), e.title.clone()))
                .collect(),
            site.diagnostics.iter().map(ToString::to_string).collect(),
        )
    }

    /// Applies `edit`, refreshes the one path, and checks that the patched or
    /// rebuilt site equals a full rebuild from the same loader state and, when
    /// no last good version is being kept, a fresh load of the directory.
    fn check(dir: &Path, loader: &mut Loader, rel: &str, edit: impl FnOnce()) {
        edit();
        loader.refresh_paths(&[dir.join(ENTRIES_DIR).join(rel)]);
        compare(dir, loader, rel);
    }

    fn compare(dir: &Path, loader: &mut Loader, rel: &str) {
        let incremental = summary(&loader.site());
        let loaded = loader.loaded();
        let rebuilt = summary(&Site::new(
            loader.config().clone(),
            loaded.entries,
            loaded.diagnostics,
        ));
        assert_eq!(incremental, rebuilt, "after editing {rel}");
        if !incremental.1.iter().any(|d| d.contains("last good")) {
            let fresh = summary(&Loader::open(dir).unwrap().site());
            assert_eq!(incremental, fresh, "after editing {rel}");
        }
    }

    /// A data directory whose `site.toml` has one section, `s`.
    fn data_with_one_section() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(SITE_FILE),
            "title = \"T\"\nbase_url = \"http://e.org/\"\ntimezone = \"UTC\"\n[[sections]]\nslug = \"s\"\ntitle = \"S\"\n",
        )
        .unwrap();
        dir
    }

    #[test]
    fn incremental_site_equals_a_fresh_load() {
        let dir = data_with_one_section();
        let d = dir.path();
        for i in 0..20 {
            write(
                d,
                &format!("e{i:02}.md"),
                &format!("T{i}"),
                &format!("{:02}.01.2024", i + 1),
                None,
            );
        }
        write(d, "dup/e05.md", "Shadowed", "06.01.2024", None);
        let mut loader = Loader::open(d).unwrap();
        let first = loader.site();
        assert_eq!(first.entries.len(), 20);

        // Title edit: patched in place, not rebuilt.
        write(d, "e07.md", "T7 edited", "08.01.2024", None);
        loader.refresh_paths(&[d.join(ENTRIES_DIR).join("e07.md")]);
        assert!(
            !loader.full && loader.swaps.len() == 1,
            "expected an in-place patch"
        );
        compare(d, &mut loader, "e07.md");
        // Date change moves the entry: rebuilt.
        check(d, &mut loader, "e03.md", || {
            write(d, "e03.md", "T3", "30.01.2024", None)
        });
        // A shadowed duplicate is edited: nothing published changes.
        check(d, &mut loader, "dup/e05.md", || {
            write(d, "dup/e05.md", "Shadowed 2", "06.01.2024", None)
        });
        // The published twin is edited.
        check(d, &mut loader, "e05.md", || {
            write(d, "e05.md", "T5 edited", "06.01.2024", None)
        });
        // Broken, then fixed.
        check(d, &mut loader, "e09.md", || {
            std::fs::write(d.join(ENTRIES_DIR).join("e09.md"), "+++\nbroken").unwrap()
        });
        check(d, &mut loader, "e09.md", || {
            write(d, "e09.md", "T9 fixed", "10.01.2024", None)
        });
        // Removed, added, and an id change.
        check(d, &mut loader, "e11.md", || {
            std::fs::remove_file(d.join(ENTRIES_DIR).join("e11.md")).unwrap()
        });
        check(d, &mut loader, "new.md", || {
            write(d, "new.md", "New", "15.01.2024", None)
        });
        check(d, &mut loader, "e12.md", || {
            write(d, "e12.md", "T12", "13.01.2024", Some("renamed"))
        });
    }

    #[test]
    fn media_files_are_measured_and_followed() {
        let dir = data_with_one_section();
        let d = dir.path();
        let entry = d.join(ENTRIES_DIR).join("a.md");
        std::fs::create_dir_all(entry.parent().unwrap()).unwrap();
        std::fs::write(
            &entry,
            "+++\ntitle = \"A\"\ndate = 2024-01-01\nsections = [\"s\"]\nimage = \"p.png\"\n[[enclosures]]\nurl = \"2024/a.mp3\"\n+++\nBody.\n",
        )
        .unwrap();
        let media = d.join(crate::urls::MEDIA_DIR);
        std::fs::create_dir_all(media.join("2024")).unwrap();
        std::fs::write(media.join("p.png"), b"12345").unwrap();

        let mut loader = Loader::open(d).unwrap();
        let site = loader.site();
        let e = &site.entries[0];
        assert_eq!(e.image.as_ref().unwrap().media.length, 5);
        assert!(e.enclosures.is_empty(), "the missing file is left out");
        let problems: Vec<String> = site.diagnostics.iter().map(ToString::to_string).collect();
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert!(
            problems[0].starts_with(&format!(
                "{}:7:7: no file media/2024/a.mp3",
                entry.display()
            )),
            "{problems:#?}"
        );

        // The file appears: the watcher's event on it re-measures the entry.
        std::fs::write(media.join("2024/a.mp3"), b"abc").unwrap();
        loader.refresh_paths(&[media.join("2024/a.mp3")]);
        let site = loader.site();
        assert!(site.diagnostics.is_empty(), "{:#?}", site.diagnostics);
        assert_eq!(site.entries[0].enclosures[0].length, 3);
        // It changes size: a plain rescan (no event) sees it too.
        std::fs::write(media.join("2024/a.mp3"), b"abcdef").unwrap();
        loader.rescan();
        assert_eq!(loader.site().entries[0].enclosures[0].length, 6);
    }

    /// Every missing media file of an entry is reported, also when the entry
    /// is skipped for another problem; and a file that appears later clears
    /// its problem without the entry file being touched.
    #[test]
    fn every_missing_media_file_is_reported() {
        let dir = data_with_one_section();
        let d = dir.path();
        std::fs::create_dir_all(d.join(ENTRIES_DIR)).unwrap();
        std::fs::create_dir_all(d.join(crate::urls::MEDIA_DIR)).unwrap();
        let media =
            "image = \"p.png\"\n[[enclosures]]\nurl = \"a.mp3\"\n[[enclosures]]\nurl = \"b.mp3\"\n";
        let good = d.join(ENTRIES_DIR).join("good.md");
        std::fs::write(
            &good,
            format!("+++\ntitle = \"A\"\ndate = 2024-01-01\nsections = [\"s\"]\n{media}+++\n"),
        )
        .unwrap();
        let skipped = d.join(ENTRIES_DIR).join("skipped.md");
        std::fs::write(
            &skipped,
            format!("+++\ntitle = \"B\"\ndate = \"31.02.2024\"\nsections = [\"s\"]\n{media}+++\n"),
        )
        .unwrap();

        let mut loader = Loader::open(d).unwrap();
        let site = loader.site();
        let problems: Vec<String> = site.diagnostics.iter().map(ToString::to_string).collect();
        let published =
            "; the entry is published without it (put the file in DATA/media/ or fix the path)";
        let fix = "; put the file in DATA/media/ or fix the path";
        let (g, s) = (good.display(), skipped.display());
        let expected = [
            format!(
                "{g}:5:9: no file media/p.png: No such file or directory (os error 2){published}"
            ),
            format!(
                "{g}:7:7: no file media/a.mp3: No such file or directory (os error 2){published}"
            ),
            format!(
                "{g}:9:7: no file media/b.mp3: No such file or directory (os error 2){published}"
            ),
            format!("{s}:3:8: date: no such date: month 02 of 2024 has only 29 days (31.02.2024)"),
            format!("{s}:5:9: no file media/p.png: No such file or directory (os error 2){fix}"),
            format!("{s}:7:7: no file media/a.mp3: No such file or directory (os error 2){fix}"),
            format!("{s}:9:7: no file media/b.mp3: No such file or directory (os error 2){fix}"),
        ];
        assert_eq!(problems, expected);
        let e = &site.entries[0];
        assert!(e.image.is_none() && e.enclosures.is_empty());

        for name in ["p.png", "a.mp3", "b.mp3"] {
            std::fs::write(d.join(crate::urls::MEDIA_DIR).join(name), b"x").unwrap();
        }
        loader.rescan();
        let site = loader.site();
        let problems: Vec<String> = site.diagnostics.iter().map(ToString::to_string).collect();
        assert_eq!(problems, [expected[3].clone()]);
        assert_eq!(site.entries[0].enclosures.len(), 2);
    }

    #[test]
    fn symlinked_folders_out_of_data_are_reported_not_walked() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("x.md"), "+++\ntitle = \"t\"\n+++\n").unwrap();
        let data = tempfile::tempdir().unwrap();
        let entries = data.path().join(ENTRIES_DIR);
        std::fs::create_dir(&entries).unwrap();
        std::os::unix::fs::symlink(outside.path(), entries.join("linked")).unwrap();
        // Hidden and `_` names are skipped without a word, linked or not.
        std::os::unix::fs::symlink(outside.path(), entries.join("_linked")).unwrap();
        let (found, problems) = scan(data.path(), &entries);
        assert!(found.is_empty(), "{found:?}");
        let messages: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(messages.len(), 1, "{messages:?}");
        assert!(
            messages[0].contains("/linked:1:1: symlink to")
                && messages[0].contains("points outside"),
            "{messages:?}"
        );
    }
}
