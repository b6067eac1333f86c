//! Requests to responses over one snapshot. No I/O, so tests call it in-process.
//!
//! A response is built wholly from the snapshot it was given: the caller loads
//! the current snapshot once per request.

use bytes::Bytes;
use headers::{HeaderMapExt, IfModifiedSince, IfNoneMatch};
use http::header::{
    ALLOW, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, ETAG, LAST_MODIFIED, VARY,
};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;

use super::negotiate;
use crate::render::Format;
use crate::snapshot::{Encoding, Resource, Snapshot, opml_key};

/// The response body type.
pub type Body = Full<Bytes>;

/// Answers one request from a snapshot. Never panics; every failure is a status.
pub fn respond<B>(snapshot: &Snapshot, req: &Request<B>) -> Response<Body> {
    let method = req.method();
    if method != Method::GET && method != Method::HEAD {
        let mut r = plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed; use GET or HEAD\n".into(),
        );
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let head = method == Method::HEAD;
    let path = match decode_path(req.uri().path()) {
        Ok(p) => p,
        Err(status) => return plain(status, "bad request path\n".into()),
    };
    let resource = match path.as_str() {
        "/healthz" => None,
        "/feeds.opml" => snapshot
            .get(&opml_key(opml_format(req.uri().query())))
            .cloned(),
        p => match p.strip_prefix("/news/") {
            Some(id) if !id.is_empty() => snapshot.news_page(id),
            _ => snapshot.get(p).cloned(),
        },
    };
    let mut response = match (path.as_str(), resource) {
        ("/healthz", _) => healthz(snapshot),
        (_, Some(resource)) => serve_resource(snapshot, &resource, req),
        (_, None) => not_found(snapshot),
    };
    if head {
        // Same headers as GET, including Content-Length, and no body.
        *response.body_mut() = Full::new(Bytes::new());
    }
    response
}

/// The feed format an OPML list should name: `?format=atom|json`, else RSS.
/// Other query parameters are ignored, like everywhere else.
fn opml_format(query: Option<&str>) -> Format {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "format")
        .and_then(|(_, v)| Format::from_extension(&v))
        .unwrap_or(Format::Rss)
}

/// Percent-decodes a request path. NUL bytes and invalid UTF-8 are a 400;
/// everything else is looked up literally, so `..`, `%2e%2e` and `//` can only
/// ever miss and get a 404.
fn decode_path(raw: &str) -> Result<String, StatusCode> {
    let decoded = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| StatusCode::BAD_REQUEST)?;
    if decoded.contains('\0') {
        return Err(StatusCode::BAD_REQUEST);
    }
    Ok(decoded.into_owned())
}

fn serve_resource<B>(snapshot: &Snapshot, resource: &Resource, req: &Request<B>) -> Response<Body> {
    let available: Vec<Encoding> = [Encoding::Brotli, Encoding::Gzip, Encoding::Identity]
        .into_iter()
        .filter(|e| resource.variant(*e).is_some())
        .collect();
    let Some(encoding) = negotiate::choose(req.headers(), &available) else {
        let mut r = plain(
            StatusCode::NOT_ACCEPTABLE,
            "no acceptable content coding; accept identity, gzip or br\n".into(),
        );
        r.headers_mut()
            .insert(VARY, HeaderValue::from_static("Accept-Encoding"));
        return r;
    };
    let Some(variant) = resource.variant(encoding) else {
        return plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n".into());
    };

    let mut builder = Response::builder()
        .header(VARY, "Accept-Encoding")
        .header(
            CACHE_CONTROL,
            format!("public, max-age={}", snapshot.site.config.cache_max_age),
        )
        .header(ETAG, variant.etag.as_str());
    // WebSub discovery (§4) by header, on 200 and 304 alike.
    if let Some(topic) = &resource.topic {
        builder = builder.header(http::header::LINK, topic.link.clone());
    }
    if let Some(lm) = resource.last_modified.filter(|t| http_date_range(*t)) {
        builder = builder.header(LAST_MODIFIED, httpdate::fmt_http_date(lm));
    }

    if not_modified(req, &variant.etag, resource.last_modified) {
        return builder
            .status(StatusCode::NOT_MODIFIED)
            .body(Full::new(Bytes::new()))
            .unwrap_or_else(|_| internal_error());
    }
    if let Some(token) = encoding.token() {
        builder = builder.header(CONTENT_ENCODING, token);
    }
    builder
        .status(StatusCode::OK)
        .header(CONTENT_TYPE, resource.content_type)
        .header(CONTENT_LENGTH, variant.body.len())
        .body(Full::new(variant.body.clone()))
        .unwrap_or_else(|_| internal_error())
}

/// True when an HTTP date can express `t`: from 1970 to the end of 9999 UTC.
/// The data contract allows entries dated year 1 to 9999 in any zone, and
/// `httpdate` panics outside this range, so such a resource simply has no
/// `Last-Modified` (its ETag still validates).
fn http_date_range(t: std::time::SystemTime) -> bool {
    const END_OF_9999: u64 = 253_402_300_799;
    t.duration_since(std::time::UNIX_EPOCH)
        .is_ok_and(|d| d.as_secs() <= END_OF_9999)
}

/// RFC 9110 §13.2.2: If-None-Match (weak comparison) decides when present;
/// If-Modified-Since is only consulted without it.
fn not_modified<B>(
    req: &Request<B>,
    etag: &str,
    last_modified: Option<std::time::SystemTime>,
) -> bool {
    let headers = req.headers();
    if headers.contains_key(http::header::IF_NONE_MATCH) {
        return match (
            headers.typed_get::<IfNoneMatch>(),
            etag.parse::<headers::ETag>(),
        ) {
            // precondition_passes is false when some listed tag (or `*`) matches.
            (Some(inm), Ok(tag)) => !inm.precondition_passes(&tag),
            _ => false,
        };
    }
    match (
        headers.typed_get::<IfModifiedSince>(),
        last_modified.filter(|t| http_date_range(*t)),
    ) {
        (Some(ims), Some(lm)) => !ims.is_modified(lm),
        _ => false,
    }
}

fn healthz(snapshot: &Snapshot) -> Response<Body> {
    let body = serde_json::to_vec(&snapshot.health).unwrap_or_default();
    Response::builder()
        .status(StatusCode::OK)
        .header(CONTENT_TYPE, "application/json")
        .header(CACHE_CONTROL, "no-store")
        .header(CONTENT_LENGTH, body.len())
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| internal_error())
}

fn not_found(snapshot: &Snapshot) -> Response<Body> {
    let mut r = Response::new(Full::new(snapshot.not_found.clone()));
    *r.status_mut() = StatusCode::NOT_FOUND;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r.headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from(snapshot.not_found.len()));
    r
}

fn plain(status: StatusCode, text: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "text/plain; charset=utf-8")
        .header(CONTENT_LENGTH, text.len())
        .body(Full::new(Bytes::from(text)))
        .unwrap_or_else(|_| internal_error())
}

fn internal_error() -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from_static(b"internal error\n")));
    *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_outside_http_range_give_no_last_modified_and_no_panic() {
        let day = std::time::Duration::from_secs(86_400);
        let before_1970 = std::time::UNIX_EPOCH - day;
        let year_10000 = std::time::UNIX_EPOCH + std::time::Duration::from_secs(253_402_300_800);
        assert!(!http_date_range(before_1970));
        assert!(!http_date_range(year_10000));
        assert!(http_date_range(std::time::UNIX_EPOCH + day));
        for lm in [before_1970, year_10000] {
            let resource = Resource::new("text/plain", Some(lm), b"x".to_vec());
            let site = crate::model::Site::new(
                crate::config::Config::parse(
                    std::path::Path::new("site.toml"),
                    "title = \"t\"\nbase_url = \"http://e.org/\"\ntimezone = \"UTC\"\n",
                )
                .unwrap(),
                vec![],
                vec![],
            );
            let snapshot = Snapshot::build(std::sync::Arc::new(site));
            let req = Request::get("/x")
                .header("if-modified-since", "Mon, 01 Jan 2001 00:00:00 GMT")
                .body(())
                .unwrap();
            let r = serve_resource(&snapshot, &resource, &req);
            assert_eq!(r.status(), StatusCode::OK);
            assert!(r.headers().get(LAST_MODIFIED).is_none());
        }
    }
}
