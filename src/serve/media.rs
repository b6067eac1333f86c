//! `GET`/`HEAD /media/{path}`: files from `DATA/media/`, streamed from disk.
//!
//! The one part of serving that does file I/O, so it lives beside the pure
//! [`handler`](super::handler) rather than in it. Paths go through
//! [`crate::media::check_path`] and [`crate::media::open`]: no `..`, no
//! hidden files, no symlink out of `DATA/media/`, regular files only (a FIFO
//! is refused without being opened for a blocking read) of at most
//! [`crate::media::MAX_MEDIA_BYTES`]. Anything refused is a plain 404.
//!
//! Memory per response is one [`CHUNK`]-sized buffer, whatever the file's
//! size: the body is read as the client takes it (like nginx's sendfile and
//! static-web-server's streamed bodies), and a client that stops reading is
//! dropped by the connection's send timeout. Opening, stat'ing and hashing
//! run on tokio's blocking pool, at most [`BLOCKING_PERMITS`] at once.
//!
//! The ETag is a hash of the bytes, so replicas with equal files agree (an
//! inode or mtime would not: `git checkout` and `cp` give new ones). It is
//! computed once per file version and cached by the file's fingerprint
//! (device, inode, size, mtime, ctime), so a HEAD or a 304 costs a `stat`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use headers::{ETag, HeaderMapExt as _, IfRange, LastModified};
use http::header::{
    ACCEPT_RANGES, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG, LAST_MODIFIED,
    RANGE, X_CONTENT_TYPE_OPTIONS,
};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Either, Full, StreamBody};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
use tokio::sync::Semaphore;

use super::Body;
use super::handler::{http_date_range, not_modified};
use crate::urls::MEDIA_DIR;

/// Bytes read from disk per step of a media body.
pub const CHUNK: usize = 64 * 1024;

/// Blocking file operations (open, stat, hash) running at once.
pub const BLOCKING_PERMITS: usize = 64;

/// Hashes of media files kept, by fingerprint.
const CACHED_ETAGS: usize = 10_000;

/// True when the request is for a media file (any method; others get the
/// handler's 405).
pub fn is_media<B>(req: &Request<B>) -> bool {
    (req.method() == Method::GET || req.method() == Method::HEAD)
        && req
            .uri()
            .path()
            .strip_prefix('/')
            .and_then(|p| p.strip_prefix(MEDIA_DIR))
            .is_some_and(|p| p.starts_with('/'))
}

/// What identifies one version of a file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Fingerprint {
    fn of(meta: &std::fs::Metadata) -> Fingerprint {
        use std::os::unix::fs::MetadataExt as _;
        Fingerprint {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// The media files of one data directory, served.
pub struct MediaFiles {
    data_dir: PathBuf,
    etags: quick_cache::sync::Cache<PathBuf, (Fingerprint, String)>,
    blocking: Arc<Semaphore>,
}

/// An open, checked media file: what a response needs.
struct Found {
    file: std::fs::File,
    len: u64,
    modified: Option<SystemTime>,
    etag: String,
}

impl MediaFiles {
    /// Serves `DATA/media/` of `data_dir`.
    pub fn new(data_dir: PathBuf) -> MediaFiles {
        MediaFiles {
            data_dir,
            etags: quick_cache::sync::Cache::new(CACHED_ETAGS),
            blocking: Arc::new(Semaphore::new(BLOCKING_PERMITS)),
        }
    }

    /// Opens and checks `rel` on the blocking pool, with its ETag.
    async fn find(self: &Arc<Self>, rel: String) -> Option<Found> {
        let _permit = self.blocking.clone().acquire_owned().await.ok()?;
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.find_blocking(&rel))
            .await
            .ok()
            .flatten()
    }

    fn find_blocking(&self, rel: &str) -> Option<Found> {
        let (file, meta) = match crate::media::open(&self.data_dir, rel) {
            Ok(found) => found,
            Err(e) => {
                tracing::debug!("media request refused: {e}");
                return None;
            }
        };
        let print = Fingerprint::of(&meta);
        let key = self.data_dir.join(MEDIA_DIR).join(rel);
        let etag = match self.etags.get(&key) {
            Some((p, etag)) if p == print => etag,
            _ => {
                let etag = hash(&file).ok()?;
                self.etags.insert(key, (print, etag.clone()));
                etag
            }
        };
        Some(Found {
            file,
            len: meta.len(),
            modified: meta.modified().ok().filter(|t| http_date_range(*t)),
            etag,
        })
    }

    /// Answers a request for `/media/{path}`: 200, 206 for one satisfiable
    /// byte range, 416 for an unsatisfiable one, 304, or 404.
    pub async fn respond<B>(
        self: &Arc<Self>,
        cache_max_age: u64,
        req: &Request<B>,
    ) -> Response<Body> {
        let head = req.method() == Method::HEAD;
        let Ok(path) = super::handler::decode_path(req.uri().path()) else {
            return plain(StatusCode::BAD_REQUEST, "bad request path\n");
        };
        let Some(rel) = path.strip_prefix(&format!("/{MEDIA_DIR}/")) else {
            return plain(StatusCode::NOT_FOUND, "no such media file\n");
        };
        let Some(found) = self.find(rel.to_owned()).await else {
            return plain(StatusCode::NOT_FOUND, "no such media file\n");
        };
        let content_type = crate::media::media_type(rel).unwrap_or("application/octet-stream");
        let mut builder = Response::builder()
            .header(CACHE_CONTROL, format!("public, max-age={cache_max_age}"))
            .header(ETAG, found.etag.as_str())
            .header(ACCEPT_RANGES, "bytes")
            .header(X_CONTENT_TYPE_OPTIONS, "nosniff")
            .header("content-security-policy", "default-src 'none'; sandbox");
        if let Some(t) = found.modified {
            builder = builder.header(LAST_MODIFIED, httpdate::fmt_http_date(t));
        }
        if not_modified(req, &found.etag, found.modified) {
            return builder
                .status(StatusCode::NOT_MODIFIED)
                .body(empty())
                .unwrap_or_else(|_| internal());
        }
        let (status, start, len) = match requested_range(req, &found) {
            Ranged::Whole => (StatusCode::OK, 0, found.len),
            Ranged::Part(start, end) => {
                builder =
                    builder.header(CONTENT_RANGE, format!("bytes {start}-{end}/{}", found.len));
                (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
            }
            Ranged::Unsatisfiable => {
                return builder
                    .status(StatusCode::RANGE_NOT_SATISFIABLE)
                    .header(CONTENT_RANGE, format!("bytes */{}", found.len))
                    .header(CONTENT_TYPE, "text/plain; charset=utf-8")
                    .body(Either::Left(Full::new(Bytes::from_static(
                        b"range not satisfiable\n",
                    ))))
                    .unwrap_or_else(|_| internal());
            }
        };
        let builder = builder
            .status(status)
            .header(CONTENT_TYPE, content_type)
            .header(CONTENT_LENGTH, len);
        let body = if head || len == 0 {
            empty()
        } else {
            stream(found.file, start, len)
        };
        builder.body(body).unwrap_or_else(|_| internal())
    }
}

/// The SHA-256 prefix of a file's bytes, read in chunks, as a quoted ETag.
fn hash(file: &std::fs::File) -> std::io::Result<String> {
    use std::io::Read as _;
    let mut hasher = Sha256::new();
    let mut buf = vec![0; CHUNK];
    let mut reader = file.take(crate::media::MAX_MEDIA_BYTES + 1);
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    use std::io::Seek as _;
    (&*file).seek(std::io::SeekFrom::Start(0))?;
    let digest = hasher.finalize();
    Ok(format!(
        "\"{}\"",
        crate::snapshot::compress::hex_prefix(&digest)
    ))
}

/// `len` bytes of `file` from `start`, read [`CHUNK`] at a time as the
/// client takes them. A file that shrinks meanwhile ends the body early
/// (the connection is then closed, as Content-Length promised more).
fn stream(file: std::fs::File, start: u64, len: u64) -> Body {
    let file = tokio::fs::File::from_std(file);
    let state = (file, start, len, false);
    let chunks =
        futures_util::stream::unfold(state, |(mut file, start, left, seeked)| async move {
            if left == 0 {
                return None;
            }
            if !seeked && start > 0 {
                if let Err(e) = file.seek(std::io::SeekFrom::Start(start)).await {
                    return Some((Err(e), (file, start, 0, true)));
                }
            }
            let want = usize::try_from(left.min(CHUNK as u64)).unwrap_or(CHUNK);
            let mut buf = BytesMut::zeroed(want);
            match file.read(&mut buf).await {
                Ok(0) => Some((
                    Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "media file shrank while being sent",
                    )),
                    (file, start, 0, true),
                )),
                Ok(n) => {
                    buf.truncate(n);
                    let frame = hyper::body::Frame::data(Bytes::from(buf));
                    Some((Ok(frame), (file, start, left - n as u64, true)))
                }
                Err(e) => Some((Err(e), (file, start, 0, true))),
            }
        });
    Either::Right(StreamBody::new(chunks).boxed_unsync())
}

fn empty() -> Body {
    Either::Left(Full::new(Bytes::new()))
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    super::handler::plain(status, text.into()).map(Either::Left)
}

fn internal() -> Response<Body> {
    plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n")
}

/// What a request's `Range` (and `If-Range`) asks of a file.
#[derive(Debug, PartialEq, Eq)]
enum Ranged {
    /// No range, several ranges, a stale `If-Range` or a malformed header:
    /// the whole file, as RFC 9110 §14.2 allows.
    Whole,
    /// One range, first and last byte inclusive.
    Part(u64, u64),
    /// One range that lies past the end of the file.
    Unsatisfiable,
}

fn requested_range<B>(req: &Request<B>, found: &Found) -> Ranged {
    let Some(value) = req.headers().get(RANGE).and_then(|v| v.to_str().ok()) else {
        return Ranged::Whole;
    };
    if let Some(if_range) = req.headers().typed_get::<IfRange>() {
        let etag = found.etag.parse::<ETag>().ok();
        let modified = found.modified.map(LastModified::from);
        if if_range.is_modified(etag.as_ref(), modified.as_ref()) {
            return Ranged::Whole;
        }
    }
    byte_range(value, found.len)
}

/// Parses a `Range` header value for a representation of `len` bytes
/// (RFC 9110 §14.1.2): one `first-last`, `first-` or `-suffix` range.
/// Several ranges (multipart/byteranges) are answered whole.
fn byte_range(value: &str, len: u64) -> Ranged {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ranged::Whole;
    };
    if spec.contains(',') {
        return Ranged::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Ranged::Whole;
    };
    let number = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    match (first.trim(), last.trim()) {
        ("", suffix) => match number(suffix) {
            Some(0) => Ranged::Unsatisfiable,
            Some(_) if len == 0 => Ranged::Unsatisfiable,
            Some(n) => Ranged::Part(len.saturating_sub(n), len - 1),
            None => Ranged::Whole,
        },
        (first, "") => match number(first) {
            Some(f) if f < len => Ranged::Part(f, len - 1),
            Some(_) => Ranged::Unsatisfiable,
            None => Ranged::Whole,
        },
        (first, last) => match (number(first), number(last)) {
            (Some(f), Some(l)) if f > l => Ranged::Whole,
            (Some(f), Some(_)) if f >= len => Ranged::Unsatisfiable,
            (Some(f), Some(l)) => Ranged::Part(f, l.min(len - 1)),
            _ => Ranged::Whole,
        },
    }
}

/// Reads a whole response body, for tests.
#[cfg(test)]
async fn body_bytes(r: Response<Body>) -> Bytes {
    r.into_body().collect().await.unwrap().to_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(media: &Arc<MediaFiles>, path: &str, headers: &[(&str, &str)]) -> Response<Body> {
        let mut req = Request::get(path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(()).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(media.respond(300, &req))
    }

    fn body(r: Response<Body>) -> Vec<u8> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(body_bytes(r)).to_vec()
    }

    #[test]
    fn serves_files_with_validators_and_refuses_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path();
        std::fs::create_dir_all(data.join("media/2024")).unwrap();
        std::fs::write(data.join("media/2024/a b.png"), b"\x89PNG fake").unwrap();
        std::fs::write(data.join("media/.secret"), b"x").unwrap();
        std::fs::write(data.join("site.toml"), b"title").unwrap();
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            data.join("media/fifo.txt"),
            rustix::fs::Mode::from(0o600),
        )
        .unwrap();
        let media = Arc::new(MediaFiles::new(data.to_path_buf()));

        let ok = get(&media, "/media/2024/a%20b.png", &[]);
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(ok.headers()[CONTENT_TYPE], "image/png");
        assert_eq!(ok.headers()[CONTENT_LENGTH], "9");
        assert_eq!(ok.headers()[X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(ok.headers()[ACCEPT_RANGES], "bytes");
        let etag = ok.headers()[ETAG].to_str().unwrap().to_owned();
        let lm = ok.headers()[LAST_MODIFIED].to_str().unwrap().to_owned();
        assert_eq!(body(ok), b"\x89PNG fake");
        assert_eq!(
            get(&media, "/media/2024/a%20b.png", &[("if-none-match", &etag)]).status(),
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(
            get(
                &media,
                "/media/2024/a%20b.png",
                &[("if-modified-since", &lm)]
            )
            .status(),
            StatusCode::NOT_MODIFIED
        );
        for bad in [
            "/media/../site.toml",
            "/media/%2e%2e/site.toml",
            "/media/2024/../../site.toml",
            "/media/.secret",
            "/media/2024",
            "/media/",
            "/media//etc/passwd",
            "/media/nope.png",
            "/media/fifo.txt",
        ] {
            assert_eq!(
                get(&media, bad, &[]).status(),
                StatusCode::NOT_FOUND,
                "{bad}"
            );
        }
        assert_eq!(
            get(&media, "/media/a%00b", &[]).status(),
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn etags_follow_the_bytes_not_the_inode() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path();
        std::fs::create_dir_all(data.join("media")).unwrap();
        std::fs::write(data.join("media/a.txt"), b"one").unwrap();
        let media = Arc::new(MediaFiles::new(data.to_path_buf()));
        let first = get(&media, "/media/a.txt", &[]).headers()[ETAG].clone();
        // The same bytes in a new file (a new inode): the same ETag.
        std::fs::remove_file(data.join("media/a.txt")).unwrap();
        std::fs::write(data.join("media/a.txt"), b"one").unwrap();
        assert_eq!(get(&media, "/media/a.txt", &[]).headers()[ETAG], first);
        // Other bytes of the same size: another ETag, though cached.
        std::fs::write(data.join("media/a.txt"), b"two").unwrap();
        assert_ne!(get(&media, "/media/a.txt", &[]).headers()[ETAG], first);
    }

    #[test]
    fn byte_ranges() {
        let cases = [
            ("bytes=0-0", Ranged::Part(0, 0)),
            ("bytes=0-99", Ranged::Part(0, 99)),
            ("bytes=10-", Ranged::Part(10, 99)),
            ("bytes=-10", Ranged::Part(90, 99)),
            ("bytes=-1000", Ranged::Part(0, 99)),
            ("bytes=50-1000", Ranged::Part(50, 99)),
            ("bytes=100-", Ranged::Unsatisfiable),
            ("bytes=100-200", Ranged::Unsatisfiable),
            ("bytes=-0", Ranged::Unsatisfiable),
            ("bytes=5-1", Ranged::Whole),
            ("bytes=0-1,5-6", Ranged::Whole),
            ("bytes=x-1", Ranged::Whole),
            ("bytes=+1-2", Ranged::Whole),
            ("items=0-1", Ranged::Whole),
            ("bytes=", Ranged::Whole),
        ];
        for (value, want) in cases {
            assert_eq!(byte_range(value, 100), want, "{value}");
        }
        assert_eq!(byte_range("bytes=0-", 0), Ranged::Unsatisfiable);
        assert_eq!(byte_range("bytes=-5", 0), Ranged::Unsatisfiable);
    }

    #[test]
    fn ranges_and_if_range() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path();
        std::fs::create_dir_all(data.join("media")).unwrap();
        let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(data.join("media/a.bin"), &bytes).unwrap();
        let media = Arc::new(MediaFiles::new(data.to_path_buf()));
        let whole = get(&media, "/media/a.bin", &[]);
        let etag = whole.headers()[ETAG].to_str().unwrap().to_owned();
        assert_eq!(body(whole), bytes);

        let part = get(&media, "/media/a.bin", &[("range", "bytes=70000-140000")]);
        assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(part.headers()[CONTENT_RANGE], "bytes 70000-140000/200000");
        assert_eq!(part.headers()[CONTENT_LENGTH], "70001");
        assert_eq!(body(part), &bytes[70000..=140000]);

        let none = get(&media, "/media/a.bin", &[("range", "bytes=300000-")]);
        assert_eq!(none.status(), StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(none.headers()[CONTENT_RANGE], "bytes */200000");

        let current = get(
            &media,
            "/media/a.bin",
            &[("range", "bytes=-5"), ("if-range", &etag)],
        );
        assert_eq!(current.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(body(current), &bytes[199_995..]);
        let stale = get(
            &media,
            "/media/a.bin",
            &[("range", "bytes=-5"), ("if-range", "\"other\"")],
        );
        assert_eq!(stale.status(), StatusCode::OK);
        assert_eq!(body(stale).len(), bytes.len());

        let head = Request::head("/media/a.bin")
            .header("range", "bytes=0-9")
            .body(())
            .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let r = rt.block_on(media.respond(300, &head));
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(r.headers()[CONTENT_LENGTH], "10");
        assert!(body(r).is_empty());
    }

    #[test]
    fn only_get_and_head_under_media() {
        let get = Request::get("/media/a.png").body(()).unwrap();
        let post = Request::post("/media/a.png").body(()).unwrap();
        let other = Request::get("/mediax/a.png").body(()).unwrap();
        assert!(is_media(&get));
        assert!(!is_media(&post));
        assert!(!is_media(&other));
    }
}
