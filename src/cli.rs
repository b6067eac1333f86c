//! The command line, parsed by clap.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Publishes a directory of news entries as RSS 2.0, Atom 1.0 and JSON Feed 1.1
/// feeds, per section and combined, with HTML pages and OPML lists.
#[derive(Debug, Parser)]
#[command(name = "vestnik", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the feeds (RSS, Atom, JSON Feed), pages and OPML over HTTP, and
    /// follow changes to the data directory.
    Serve(ServeArgs),
    /// Report every problem in the data directory; exit 1 if there is any.
    Check {
        /// The data directory.
        #[arg(default_value = "data")]
        data: PathBuf,
    },
    /// Write the whole site as static files (RSS, Atom and JSON Feed feeds,
    /// pages, OPML) with .gz and .br siblings: the same bytes `serve` answers with.
    ///
    /// OUT must be missing, empty, or an earlier build (it holds the
    /// `.vestnik-build.json` manifest); anything else is refused, as is an OUT
    /// that is, contains or lies inside DATA, or contains the current
    /// directory. Unchanged files keep their mtime.
    #[command(override_usage = "vestnik build [OPTIONS] [DATA] OUT")]
    Build(BuildArgs),
    /// Turn news pages saved as plain text into entry files; exit 1 if any page
    /// had a problem (the good pages are still imported).
    ///
    /// Lists `FILE: imported as PATH`, `FILE: skipped, PATH already exists` and
    /// then every problem as `FILE: reason` on stdout; the summary line and the
    /// progress bar go to stderr, as with `check`.
    Import(ImportArgs),
    /// Start a new entry: writes DATA/entries/YYYY/YYYY-MM-DD-{slug}.md with
    /// valid front matter (dated now in the site's zone, unless --at) and an
    /// empty body, prints its path, and never overwrites a file.
    New(NewArgs),
}

/// Options of `vestnik new`.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// The entry's title.
    pub title: String,
    /// A section slug; repeat for several.
    #[arg(long = "section", value_name = "SLUG", required = true)]
    pub sections: Vec<String>,
    /// Publication time in the site's zone, e.g. "28.11.2024 14:30"; default now.
    #[arg(long, value_name = "\"DD.MM.YYYY HH:MM\"")]
    pub at: Option<String>,
    /// The agency the article comes from (its URL and feed are taken from
    /// sources.toml when it is listed there).
    #[arg(long, value_name = "NAME")]
    pub source: Option<String>,
    /// The data directory.
    #[arg(long, default_value = "data")]
    pub data: PathBuf,
}

/// Options of `vestnik build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// `[DATA] OUT`: the data directory (default `data`) and the output folder.
    #[arg(num_args = 1..=2, required = true, value_name = "PATHS")]
    pub paths: Vec<PathBuf>,
    /// The public URL the site is served at, in place of `base_url` in
    /// `site.toml` (every link in the feeds is built from it).
    #[arg(long, env = "VESTNIK_BASE_URL", value_name = "URL", value_parser = crate::config::parse_base_url)]
    pub base_url: Option<url::Url>,
    /// Build as of this time (RFC 3339, e.g. 2027-01-15T10:00:00+07:00)
    /// instead of now: entries due later, or expired by then, are left out.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub at: Option<chrono::DateTime<chrono::Utc>>,
    /// Stage the whole tree and swap it with OUT in one step, so a web
    /// server serving OUT never sees some files of the new build beside
    /// files of the old; costs a link and an unlink per file. Without it, a
    /// rebuild renames only the changed files into OUT.
    #[arg(long)]
    pub swap: bool,
}

fn parse_time(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.to_utc())
        .map_err(|e| format!("{e}; write it like 2027-01-15T10:00:00+07:00"))
}

/// Options of `vestnik import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Saved pages: UTF-8 or Windows-1251 text, LF or CRLF line endings.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// The data directory; entries go to DATA/entries/YYYY/.
    #[arg(long, default_value = "data")]
    pub data: PathBuf,
    /// Section slug for pages whose «Секции АСДГ:» line names no section.
    #[arg(long, value_name = "SLUG")]
    pub section: Option<String>,
    /// Print each file that would be written, path and content; write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Options of `vestnik serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The data directory.
    #[arg(default_value = "data", env = "VESTNIK_DATA")]
    pub data: PathBuf,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8080", env = "VESTNIK_ADDR")]
    pub addr: SocketAddr,
    /// Seconds a client may take to send a request's headers, and may stay idle
    /// on a keep-alive connection before the next request.
    #[arg(long, default_value_t = 10)]
    pub header_timeout: u64,
    /// Largest request head in bytes (request line plus headers).
    #[arg(long, default_value_t = 16 * 1024)]
    pub max_header_bytes: usize,
    /// Seconds a response may wait for a client that stopped reading before
    /// the connection is dropped (like nginx's send_timeout).
    #[arg(long, default_value_t = 60)]
    pub send_timeout: u64,
    /// Most connections served at once; further ones wait in the kernel backlog.
    #[arg(long, default_value_t = 4096)]
    pub max_connections: usize,
    /// Per-client-IP limit in requests per second; 0 turns it off.
    #[arg(long, default_value_t = 0)]
    pub rate_limit: u32,
    /// Burst allowed above the per-client rate.
    #[arg(long, default_value_t = 20)]
    pub rate_burst: u32,
    /// A reverse proxy (IP address or CIDR network) whose X-Forwarded-For is
    /// believed: for requests from it, the client (for the rate limit and the
    /// access log) is the rightmost X-Forwarded-For address that is not itself
    /// a trusted proxy. Repeat for several; by default no header is trusted.
    #[arg(
        long = "trusted-proxy",
        value_name = "IP|CIDR",
        env = "VESTNIK_TRUSTED_PROXIES",
        value_delimiter = ',',
        value_parser = crate::serve::client_ip::parse_trusted
    )]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Seconds in-flight requests get to finish after SIGINT or SIGTERM.
    #[arg(long, default_value_t = 10)]
    pub shutdown_grace: u64,
    /// The public URL the site is served at, in place of `base_url` in
    /// `site.toml`: every link in the feeds is built from it.
    #[arg(long, env = "VESTNIK_BASE_URL", value_name = "URL", value_parser = crate::config::parse_base_url)]
    pub base_url: Option<url::Url>,
    /// For an editor's own machine: publish drafts and scheduled entries
    /// too, marked «черновик» and «запланировано на …» on the pages (like
    /// Hugo's -D -F). Never on a public server.
    #[arg(long)]
    pub preview: bool,
    /// Do not watch the data directory; reload only on SIGHUP.
    #[arg(long)]
    pub no_watch: bool,
    /// Serve /metrics (Prometheus), /stats (subscribers per feed) and
    /// /problems (what `vestnik check` prints) on this second address, e.g.
    /// 127.0.0.1:9180. Off unless given; keep it off the public network.
    #[arg(long, value_name = "ADDR", env = "VESTNIK_ADMIN_ADDR")]
    pub admin_addr: Option<SocketAddr>,
    /// Save the aggregators' subscriber counts here (every minute and at
    /// shutdown) and load them at start. Must lie outside DATA. Used only
    /// with --admin-addr, which collects them.
    #[arg(long, value_name = "DIR", env = "VESTNIK_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
}
