//! `vestnik build`: the whole site as static files, for any web server, object
//! store or CDN.
//!
//! Export writes the very bytes `serve` answers with, from the same
//! [`Snapshot`], plus `.gz` and `.br` siblings for servers that send
//! precompressed files (nginx `gzip_static`/`brotli_static`). It writes into a
//! stage beside OUT and swaps it into place ([`crate::out_dir`]), so a web
//! server never sees half a build, and nothing Vestnik did not write is lost.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use rayon::prelude::*;

use crate::inputs::Keys;
use crate::model::Scope;
use crate::out_dir::{Stage, Target, Written};
use crate::render::Format;
use crate::snapshot::{Encoding, Resource, Snapshot, opml_key};

/// What an export wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Resources exported (each with its compressed siblings).
    pub resources: usize,
    /// Files written, siblings included.
    pub files: usize,
    /// Bytes of every file of the build, kept ones included.
    pub bytes: u64,
    /// Files whose bytes equal the previous build's, linked instead of written.
    pub kept: usize,
    /// Files of the previous build that this one no longer has.
    pub removed: usize,
}

impl Stats {
    fn count(&mut self, written: Written, len: usize) {
        self.files += 1;
        self.bytes += len as u64;
        if written == Written::Kept {
            self.kept += 1;
        }
    }
}

impl std::ops::Add for Stats {
    type Output = Stats;

    fn add(self, other: Stats) -> Stats {
        Stats {
            resources: self.resources + other.resources,
            files: self.files + other.files,
            bytes: self.bytes + other.bytes,
            kept: self.kept + other.kept,
            removed: self.removed + other.removed,
        }
    }
}

/// The file, relative to OUT, that holds the resource served at `key`.
///
/// Pages become `index.html` in a folder named like their path, so a plain
/// `try_files $uri $uri/index.html` serves them at the same URLs. Later
/// pages of the home page and of section pages, `/?page=N` and
/// `/sections/{slug}?page=N`, become `page/N/index.html` and
/// `sections/{slug}/page/N/index.html` (deploy/nginx.conf maps the query).
pub fn file_for(key: &str) -> Option<PathBuf> {
    if key == "/" {
        return Some(PathBuf::from("index.html"));
    }
    for format in Format::ALL {
        if key == opml_key(format) {
            return Some(PathBuf::from(match format {
                Format::Rss => "feeds.opml".to_owned(),
                other => format!("feeds.{}.opml", other.extension()),
            }));
        }
    }
    let rel = key.strip_prefix('/')?;
    // Files at the top that crawlers fetch by name: robots.txt, sitemaps.
    if !rel.contains(['/', '?']) && (rel.ends_with(".xml") || rel.ends_with(".txt")) {
        return Some(PathBuf::from(rel));
    }
    if let Some((path, page)) = rel.split_once("?page=") {
        let page: usize = page.parse().ok().filter(|&n| n > 1)?;
        let plain_slug =
            |slug: &str| !slug.is_empty() && !slug.contains('/') && !slug.starts_with('.');
        if path.is_empty() {
            return Some(PathBuf::from(format!("page/{page}/index.html")));
        }
        if let Some(slug) = path.strip_prefix("sections/") {
            return plain_slug(slug)
                .then(|| PathBuf::from(format!("sections/{slug}/page/{page}/index.html")));
        }
        // Later pages of a feed: `/feeds/{slug}.{ext}?page=N` is the file
        // `feeds/pages/{slug}/N.{ext}`.
        let (slug, ext) = path.strip_prefix("feeds/")?.rsplit_once('.')?;
        Format::from_extension(ext)?;
        return plain_slug(slug).then(|| PathBuf::from(format!("feeds/pages/{slug}/{page}.{ext}")));
    }
    if rel.contains('?')
        || rel
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..")
    {
        return None;
    }
    if rel.starts_with("feeds/") {
        Some(PathBuf::from(rel))
    } else {
        Some(Path::new(rel).join("index.html"))
    }
}

/// Writes every resource of `snapshot`, every entry's page and every later
/// feed page into a stage beside `target`, copies the servable files of
/// `DATA/media/` of `media_from` (see [`crate::media::list`]) so the
/// enclosure URLs of the exported feeds resolve, and swaps the stage in.
/// Files whose bytes equal the previous build's keep their inode and mtime,
/// and pages whose inputs equal the previous build's ([`crate::inputs`])
/// are linked from it without being rendered. Once `interrupted` is set the
/// build stops, and the stage is removed.
pub fn export(
    snapshot: &Snapshot,
    media_from: Option<&Path>,
    target: &Target,
    interrupted: Arc<AtomicBool>,
) -> std::io::Result<Stats> {
    let stage = target.stage(interrupted)?;
    let items: Vec<(&String, &Arc<Resource>)> = snapshot.resources.iter().collect();
    let site = &*snapshot.site;
    let clock = std::time::Instant::now();
    let keys = Keys::new(site, crate::inputs::program_digest());
    let keys = keys.as_ref();
    tracing::debug!("input keys in {:.2} s", clock.elapsed().as_secs_f64());
    let bar = progress(items.len() + site.entries.len());
    let result = (|| -> std::io::Result<Stats> {
        // Every step runs on rayon's pool: rendering, compressing and
        // writing one file is independent of every other.
        let mut stats = total(items.par_iter().map(|(key, resource)| {
            let stats = write_at(&stage, key, resource);
            bar.inc(1);
            stats
        }))?;
        stats = stats
            + total(site.entries.par_iter().map(|entry| {
                let key = format!("/news/{}", entry.id);
                let input = keys.and_then(|k| k.news(entry));
                let stats = write_keyed(&stage, &key, input, || {
                    Some(Arc::new(snapshot.render_news_page(entry)))
                });
                bar.inc(1);
                stats
            }))?;
        stats = stats + write_feed_pages(snapshot, keys, &stage)?;
        // Sitemaps show every entry, and the news sitemap's window moves
        // with the cutoff (the clock), so they are always rendered; the
        // comparison of bytes still keeps the unchanged ones.
        for key in snapshot.sitemap_keys() {
            if let Some(r) = snapshot.sitemap(&key) {
                stats = stats + write_at(&stage, &key, &r)?;
            }
        }
        stats = stats
            + total(
                crate::snapshot::later_listings(site)
                    .par_iter()
                    .map(|(key, feed)| {
                        let input = keys.and_then(|k| k.page("html", feed));
                        write_keyed(&stage, key, input, || {
                            Some(Arc::new(crate::snapshot::render_listing(feed)))
                        })
                    }),
            )?;
        if let Some(data) = media_from {
            copy_media(data, &stage, &mut stats)?;
        }
        Ok(stats)
    })();
    bar.finish_and_clear();
    tracing::debug!("staged in {:.2} s", clock.elapsed().as_secs_f64());
    let mut stats = result?;
    stats.removed = stage.removed();
    stage.commit()?;
    Ok(stats)
}

/// Writes page 2 onward of every standard feed: the RFC 5005 history that
/// `serve` renders on demand, rendered here the same way, so the bytes agree.
fn write_feed_pages(
    snapshot: &Snapshot,
    keys: Option<&Keys>,
    out: &Stage<'_>,
) -> std::io::Result<Stats> {
    let site = &*snapshot.site;
    let scopes = std::iter::once(Scope::All).chain(site.config.sections.iter().map(Scope::Section));
    let mut stats = Stats::default();
    for scope in scopes {
        let pages = site.feed_pages(scope, site.config.feed_limit);
        stats = stats
            + total(
                pages
                    .par_iter()
                    .skip(1)
                    .flat_map_iter(|feed| Format::ALL.into_iter().map(move |f| (feed, f)))
                    .map(|(feed, format)| {
                        let url = feed.self_url(format.extension());
                        let key = &url[url::Position::BeforePath..];
                        let input = keys.and_then(|k| k.page(format.extension(), feed));
                        write_keyed(out, key, input, || {
                            Some(Arc::new(Resource::on_demand_feed(feed, format)))
                        })
                    }),
            )?;
    }
    Ok(stats)
}

/// Copies every servable media file, as it is (no compressed siblings:
/// images and archives are compressed already).
fn copy_media(data_dir: &Path, out: &Stage<'_>, stats: &mut Stats) -> std::io::Result<()> {
    for (rel, _) in crate::media::list(data_dir) {
        // Read through the same checks as serving, so export copies exactly
        // what `serve` would send.
        let Ok((bytes, meta)) = crate::media::read(data_dir, &rel) else {
            continue;
        };
        let rel = format!("{}/{rel}", crate::media::MEDIA_DIR);
        let written = out.write(&rel, &bytes)?;
        // Keep the source's mtime, so a web server's Last-Modified (and
        // nginx's ETag) for the copy stay the same across builds.
        if let (Written::Wrote, Ok(mtime)) = (written, meta.modified()) {
            std::fs::File::options()
                .write(true)
                .open(out.path(&rel))?
                .set_modified(mtime)?;
        }
        stats.count(written, bytes.len());
        stats.resources += 1;
    }
    Ok(())
}

/// The sum of what parallel writes wrote, or the first error.
fn total(writes: impl ParallelIterator<Item = std::io::Result<Stats>>) -> std::io::Result<Stats> {
    writes.try_reduce(Stats::default, |a, b| Ok(a + b))
}

/// Writes the resource served at `key` that `render` makes, unless the
/// previous build recorded the same input key (`input`) for its file: then
/// its files are linked from there, and nothing is rendered.
fn write_keyed(
    out: &Stage<'_>,
    key: &str,
    input: Option<String>,
    render: impl FnOnce() -> Option<Arc<Resource>>,
) -> std::io::Result<Stats> {
    let (Some(input), Some(file)) = (input, file_for(key)) else {
        return render().map_or(Ok(Stats::default()), |r| write_at(out, key, &r));
    };
    let Some(file) = file.to_str() else {
        return Ok(Stats::default());
    };
    let rels = ENCODINGS.map(|e| format!("{file}{}", e.file_suffix().unwrap_or("")));
    if let Some(sizes) = out.reuse(&rels.each_ref().map(String::as_str), &input)? {
        return Ok(Stats {
            resources: 1,
            files: sizes.len(),
            bytes: sizes.iter().sum(),
            kept: sizes.len(),
            removed: 0,
        });
    }
    let Some(resource) = render() else {
        return Ok(Stats::default());
    };
    let stats = write_at(out, key, &resource)?;
    out.record_key(file, &input);
    Ok(stats)
}

/// The files of a resource: the identity body first, then its siblings.
const ENCODINGS: [Encoding; 3] = [Encoding::Identity, Encoding::Gzip, Encoding::Brotli];

/// Writes the resource served at `key` into its file in the stage, with a
/// sibling per compressed variant, if the key has a file (see [`file_for`]).
fn write_at(out: &Stage<'_>, key: &str, r: &Resource) -> std::io::Result<Stats> {
    let Some(file) = file_for(key) else {
        return Ok(Stats::default());
    };
    let Some(file) = file.to_str() else {
        return Ok(Stats::default());
    };
    let mut stats = Stats {
        resources: 1,
        ..Stats::default()
    };
    for encoding in ENCODINGS {
        let Some(variant) = r.variant(encoding) else {
            continue;
        };
        let rel = format!("{file}{}", encoding.file_suffix().unwrap_or(""));
        stats.count(out.write(&rel, &variant.body)?, variant.body.len());
    }
    Ok(stats)
}

/// A progress bar on a terminal; hidden otherwise, so logs and CI stay quiet.
fn progress(len: usize) -> indicatif::ProgressBar {
    if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(len as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} files") {
            bar.set_style(style);
        }
        bar
    } else {
        indicatif::ProgressBar::hidden()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_for_keys() {
        let cases = [
            ("/", Some("index.html")),
            ("/feeds/all.rss", Some("feeds/all.rss")),
            ("/feeds.opml", Some("feeds.opml")),
            ("/feeds.opml?format=atom", Some("feeds.atom.opml")),
            ("/sections/sport", Some("sections/sport/index.html")),
            ("/news/a b", Some("news/a b/index.html")),
            ("/news/..", None),
            ("/news/", None),
            ("/feeds/all.rss?page=2", Some("feeds/pages/all/2.rss")),
            (
                "/feeds/transport.json?page=10",
                Some("feeds/pages/transport/10.json"),
            ),
            ("/feeds/all.rss?page=1", None),
            ("/feeds/all.rss?page=x", None),
            ("/feeds/a/b.rss?page=2", None),
            ("/feeds/all.rss?sections=a", None),
            ("/subscribe", Some("subscribe/index.html")),
            ("/?page=2", Some("page/2/index.html")),
            ("/?page=1", None),
            ("/?page=x", None),
            (
                "/sections/sport?page=3",
                Some("sections/sport/page/3/index.html"),
            ),
            ("/sections/sport?page=1", None),
            ("/sections/?page=2", None),
            ("/sections/a/b?page=2", None),
            ("/sections/.x?page=2", None),
            ("/news/x?page=2", None),
            ("relative", None),
        ];
        for (key, want) in cases {
            assert_eq!(file_for(key), want.map(PathBuf::from), "{key}");
        }
    }
}
