//! `GET`/`HEAD /media/{path}`: files from `DATA/media/`, read from disk.
//!
//! The one part of serving that does file I/O, so it lives beside the pure
//! [`handler`](super::handler) rather than in it. Paths go through
//! [`crate::media::check_path`] and [`crate::media::read`]: no `..`, no hidden
//! files, no symlink out of `DATA/media/`, regular files of at most
//! [`crate::media::MAX_MEDIA_BYTES`]. Anything refused is a plain 404.

use std::path::Path;

use bytes::Bytes;
use http::header::{
    CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, ETAG, LAST_MODIFIED, X_CONTENT_TYPE_OPTIONS,
};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use sha2::{Digest, Sha256};

use super::handler::{Body, http_date_range, not_modified};
use crate::media::MEDIA_DIR;

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

/// Answers a request for `/media/{path}` from `DATA/media/` of `data_dir`.
///
/// The ETag is a hash of the bytes (like every other ETag here, so replicas
/// agree); `Last-Modified` is the file's mtime. Media are sent as they are,
/// without compression (images and archives are compressed already), with
/// `X-Content-Type-Options: nosniff` and a sandboxing
/// `Content-Security-Policy`, so an uploaded SVG or HTML file opened
/// directly cannot run scripts on the site's origin.
pub fn respond<B>(data_dir: &Path, cache_max_age: u64, req: &Request<B>) -> Response<Body> {
    let head = req.method() == Method::HEAD;
    let Ok(path) = percent_encoding::percent_decode_str(req.uri().path()).decode_utf8() else {
        return plain(StatusCode::BAD_REQUEST, "bad request path\n");
    };
    if path.contains('\0') {
        return plain(StatusCode::BAD_REQUEST, "bad request path\n");
    }
    let Some(rel) = path.strip_prefix(&format!("/{MEDIA_DIR}/")) else {
        return plain(StatusCode::NOT_FOUND, "no such media file\n");
    };
    let (bytes, meta) = match crate::media::read(data_dir, rel) {
        Ok(found) => found,
        Err(e) => {
            tracing::debug!("media request refused: {e}");
            return plain(StatusCode::NOT_FOUND, "no such media file\n");
        }
    };
    let digest = Sha256::digest(&bytes);
    let etag = format!(
        "\"{}\"",
        digest[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let modified = meta.modified().ok().filter(|t| http_date_range(*t));
    let mut builder = Response::builder()
        .header(CACHE_CONTROL, format!("public, max-age={cache_max_age}"))
        .header(ETAG, etag.as_str());
    if let Some(t) = modified {
        builder = builder.header(LAST_MODIFIED, httpdate::fmt_http_date(t));
    }
    if not_modified(req, &etag, modified) {
        return builder
            .status(StatusCode::NOT_MODIFIED)
            .body(Full::new(Bytes::new()))
            .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n"));
    }
    let content_type = crate::media::media_type(rel).unwrap_or("application/octet-stream");
    let len = bytes.len();
    builder
        .status(StatusCode::OK)
        .header(CONTENT_TYPE, content_type)
        .header(CONTENT_LENGTH, len)
        .header(X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header("content-security-policy", "default-src 'none'; sandbox")
        .body(Full::new(if head {
            Bytes::new()
        } else {
            Bytes::from(bytes)
        }))
        .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n"))
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r.headers_mut()
        .insert(CONTENT_LENGTH, http::HeaderValue::from(text.len()));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(data: &Path, path: &str, headers: &[(&str, &str)]) -> Response<Body> {
        let mut req = Request::get(path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        respond(data, 300, &req.body(()).unwrap())
    }

    #[test]
    fn serves_files_with_validators_and_refuses_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path();
        std::fs::create_dir_all(data.join("media/2024")).unwrap();
        std::fs::write(data.join("media/2024/a b.png"), b"\x89PNG fake").unwrap();
        std::fs::write(data.join("media/.secret"), b"x").unwrap();
        std::fs::write(data.join("site.toml"), b"title").unwrap();

        let ok = get(data, "/media/2024/a%20b.png", &[]);
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(ok.headers()[CONTENT_TYPE], "image/png");
        assert_eq!(ok.headers()[CONTENT_LENGTH], "9");
        assert_eq!(ok.headers()[X_CONTENT_TYPE_OPTIONS], "nosniff");
        let etag = ok.headers()[ETAG].to_str().unwrap().to_owned();
        let lm = ok.headers()[LAST_MODIFIED].to_str().unwrap().to_owned();
        assert_eq!(
            get(data, "/media/2024/a%20b.png", &[("if-none-match", &etag)]).status(),
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(
            get(data, "/media/2024/a%20b.png", &[("if-modified-since", &lm)]).status(),
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
        ] {
            assert_eq!(get(data, bad, &[]).status(), StatusCode::NOT_FOUND, "{bad}");
        }
        assert_eq!(
            get(data, "/media/a%00b", &[]).status(),
            StatusCode::BAD_REQUEST
        );
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
