//! `vestnik new`: a new entry file with valid front matter, so editors do not
//! hand-write TOML.
//!
//! [`plan`] is pure: the site, the known sources, the request and the time
//! give the file's path and bytes. [`run`] reads the configuration, takes
//! "now" from the caller (the command line's edge), and creates the file,
//! never replacing one.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike as _, FixedOffset, Utc};

use crate::config::Config;
use crate::entry::Source;
use crate::import::toml_string;
use crate::text::{slug_prefix, slugify};

/// File names stay well under path limits and readable in a listing.
const MAX_SLUG: usize = 60;

/// What the editor asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The title, as given.
    pub title: String,
    /// Section slugs, at least one.
    pub sections: Vec<String>,
    /// `--at`: the publication time as `DD.MM.YYYY HH:MM` (or any date form
    /// of the contract), in the site's zone; now when absent.
    pub at: Option<String>,
    /// `--source`: the name of the agency the article comes from.
    pub source: Option<String>,
}

/// The file to write: its path relative to DATA and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// `entries/{YYYY}/{YYYY-MM-DD}-{slug}.md`.
    pub rel: String,
    /// Front matter and an empty body.
    pub content: String,
}

/// Works out the entry file for `request` at time `now`. Fails with a message
/// that says what to do: an unknown section lists the valid slugs.
pub fn plan(
    config: &Config,
    sources: &[Source],
    request: &Request,
    now: DateTime<Utc>,
) -> Result<Planned, String> {
    let title = crate::text::squash_whitespace(&crate::text::xml_safe(&request.title));
    if title.is_empty() {
        return Err("the title is empty; give it as the last argument".to_owned());
    }
    if request.sections.is_empty() {
        return Err(format!(
            "give at least one --section (known: {})",
            known_slugs(config)
        ));
    }
    for slug in &request.sections {
        if config.section(slug).is_none() {
            return Err(format!(
                "unknown section \"{slug}\" (known: {})",
                known_slugs(config)
            ));
        }
    }
    let zone = config.timezone;
    let when: DateTime<FixedOffset> = match &request.at {
        Some(text) => crate::entry::date::parse_str(text, zone)
            .map_err(|e| format!("--at: {e}; write it like \"28.11.2024 14:30\""))?,
        None => now.with_timezone(&zone).fixed_offset(),
    };
    let local = when.with_timezone(&zone);
    let slug = slugify(&title);
    let slug = match slug_prefix(&slug, MAX_SLUG) {
        "" => "entry",
        s => s,
    };
    let rel = format!(
        "entries/{:04}/{}-{slug}.md",
        local.year(),
        local.format("%Y-%m-%d")
    );
    let mut content = String::from("+++\n");
    content.push_str(&format!("title = {}\n", toml_string(&title)));
    content.push_str(&format!(
        "date = {}\n",
        toml_string(&local.format("%d.%m.%Y %H:%M").to_string())
    ));
    let sections: Vec<String> = request.sections.iter().map(|s| toml_string(s)).collect();
    content.push_str(&format!("sections = [{}]\n", sections.join(", ")));
    if let Some(name) = &request.source {
        let name = crate::text::squash_whitespace(name);
        let known = sources.iter().find(|s| s.name.eq_ignore_ascii_case(&name));
        content.push_str("\n[source]\n");
        content.push_str(&format!(
            "name = {}\n",
            toml_string(known.map_or(name.as_str(), |s| s.name.as_str()))
        ));
        if let Some(url) = known.and_then(|s| s.url.as_ref()) {
            content.push_str(&format!("url = {}\n", toml_string(url.as_str())));
        }
        if let Some(feed) = known.and_then(|s| s.feed.as_ref()) {
            content.push_str(&format!("feed = {}\n", toml_string(feed.as_str())));
        }
    }
    content.push_str("+++\n\n");
    Ok(Planned { rel, content })
}

fn known_slugs(config: &Config) -> String {
    config
        .sections
        .iter()
        .map(|s| s.slug.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Writes the entry planned for `request` into `data_dir` and returns its
/// path. Never replaces a file: an existing one is an error naming it.
pub fn run(data_dir: &Path, request: &Request, now: DateTime<Utc>) -> anyhow::Result<PathBuf> {
    use std::io::Write as _;
    let config = Config::load(data_dir).map_err(|d| anyhow::anyhow!("{d}"))?;
    let sources = crate::config::load_sources(data_dir).map_err(|d| anyhow::anyhow!("{d}"))?;
    let planned = plan(&config, &sources, request, now).map_err(anyhow::Error::msg)?;
    let path = data_dir.join(&planned.rel);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    }
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => anyhow::bail!(
            "{} already exists; edit it, or give the new entry another title",
            path.display()
        ),
        Err(e) => anyhow::bail!("cannot create {}: {e}", path.display()),
    };
    if let Err(e) = file.write_all(planned.content.as_bytes()) {
        // A half-written entry would be reported as broken; leave nothing.
        let _ = std::fs::remove_file(&path);
        anyhow::bail!("cannot write {}: {e}", path.display());
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SITE: &str = "title = \"T\"\nbase_url = \"http://example.org/\"\ntimezone = \"Asia/Novosibirsk\"\n[[sections]]\nslug = \"transport\"\ntitle = \"Транспорт\"\n[[sections]]\nslug = \"sport\"\ntitle = \"Спорт\"\n";

    fn config() -> Config {
        Config::parse(Path::new("site.toml"), SITE).unwrap()
    }

    fn request(title: &str, sections: &[&str], at: Option<&str>, source: Option<&str>) -> Request {
        Request {
            title: title.to_owned(),
            sections: sections.iter().map(|s| s.to_string()).collect(),
            at: at.map(str::to_owned),
            source: source.map(str::to_owned),
        }
    }

    #[test]
    fn plans_a_file_that_parses_back() {
        let sources = crate::config::parse_sources(
            Path::new("sources.toml"),
            "[[sources]]\nname = \"ТАСС\"\nurl = \"https://tass.ru/\"\n",
        )
        .unwrap();
        // 2024-11-28 18:30 UTC is 29.11.2024 01:30 in Novosibirsk (UTC+7).
        let now = "2024-11-28T18:30:00Z".parse().unwrap();
        let p = plan(
            &config(),
            &sources,
            &request(
                "Новые «трамваи» в Новосибирске",
                &["transport", "sport"],
                None,
                Some("ТАСС"),
            ),
            now,
        )
        .unwrap();
        assert_eq!(
            p.rel,
            "entries/2024/2024-11-29-novye-tramvai-v-novosibirske.md"
        );
        assert_eq!(
            p.content,
            "+++\ntitle = \"Новые «трамваи» в Новосибирске\"\ndate = \"29.11.2024 01:30\"\nsections = [\"transport\", \"sport\"]\n\n[source]\nname = \"ТАСС\"\nurl = \"https://tass.ru/\"\n+++\n\n"
        );
        // What it writes is a valid entry, dated as planned.
        let config = config();
        let sanitizer = crate::entry::html::Sanitizer::new(&config.base_url);
        let ctx = crate::entry::Context {
            config: &config,
            sanitizer: &sanitizer,
            spool: None,
        };
        let parsed = crate::entry::parse(&ctx, Path::new(&p.rel), &p.rel, p.content.as_bytes());
        assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
        let entry = parsed.entry.unwrap();
        assert_eq!(entry.published.to_rfc3339(), "2024-11-29T01:30:00+07:00");
        assert_eq!(entry.source.unwrap().name, "ТАСС");
    }

    #[test]
    fn at_and_errors() {
        let now = Utc::now();
        let p = plan(
            &config(),
            &[],
            &request(
                "Заседание",
                &["sport"],
                Some("01.02.2027 10:00"),
                Some("Своё агентство"),
            ),
            now,
        )
        .unwrap();
        assert_eq!(p.rel, "entries/2027/2027-02-01-zasedanie.md");
        assert!(p.content.contains("date = \"01.02.2027 10:00\"\n"));
        assert!(
            p.content
                .contains("[source]\nname = \"Своё агентство\"\n+++")
        );
        let cases = [
            (
                request("X", &["sprot"], None, None),
                "unknown section \"sprot\" (known: transport, sport)",
            ),
            (
                request("X", &[], None, None),
                "give at least one --section (known: transport, sport)",
            ),
            (request("  ", &["sport"], None, None), "the title is empty"),
            (
                request("X", &["sport"], Some("31.02.2027 10:00"), None),
                "--at: ",
            ),
        ];
        for (req, want) in cases {
            let e = plan(&config(), &[], &req, now).unwrap_err();
            assert!(e.starts_with(want), "{e}");
        }
    }

    #[test]
    fn never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("site.toml"), SITE).unwrap();
        let now = "2024-11-28T03:00:00Z".parse().unwrap();
        let req = request("Один", &["sport"], None, None);
        let path = run(dir.path(), &req, now).unwrap();
        assert!(path.ends_with("entries/2024/2024-11-28-odin.md"));
        std::fs::write(&path, "edited").unwrap();
        let e = run(dir.path(), &req, now).unwrap_err().to_string();
        assert!(e.contains("already exists"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "edited");
    }
}
