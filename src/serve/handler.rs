//! Requests to responses over one snapshot. No I/O, so tests call it in-process.
//!
//! A response is built wholly from the snapshot it was given: the caller loads
//! the current snapshot once per request.

use std::sync::Arc;

use bytes::Bytes;
use headers::{HeaderMapExt, IfModifiedSince, IfNoneMatch};
use http::header::{
    ALLOW, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_SECURITY_POLICY, CONTENT_TYPE,
    ETAG, LAST_MODIFIED, REFERRER_POLICY, VARY, X_CONTENT_TYPE_OPTIONS,
};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;

use super::negotiate;
use crate::snapshot::{Encoding, Key, Miss, NoKey, Resource, Snapshot};

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
    let query = req.uri().query();
    let resource = if path == "/healthz" {
        Err(healthz(snapshot))
    } else {
        route(snapshot, &path, query).map_err(|r| *r)
    };
    let mut response = match resource {
        Ok(resource) => serve_resource(snapshot, &resource, req),
        Err(response) => response,
    };
    // No response is to be sniffed into another type: an error body that
    // echoes a query stays text, a feed stays a feed.
    response
        .headers_mut()
        .insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if head {
        // Same headers as GET, including Content-Length, and no body.
        *response.body_mut() = Full::new(Bytes::new());
    }
    response
}

/// The resource a decoded path and raw query name, or the response that
/// says why there is none: a 308 from a trailing slash to the page without
/// it, a 400 for a query that cannot be read, a 404, or a 410.
fn route(
    snapshot: &Snapshot,
    path: &str,
    query: Option<&str>,
) -> Result<Arc<Resource>, Box<Response<Body>>> {
    let key = Key::parse(path, query);
    // `/sections/{slug}/`, `/news/{id}/` or `/subscribe/` of a page that
    // exists without the slash (and not with it): its canonical URL.
    if let Some(bare) = Key::unslashed(path).filter(|bare| snapshot.has(bare))
        && !key.as_ref().is_ok_and(|key| snapshot.has(key))
    {
        return Err(Box::new(redirect(snapshot, &bare.rel(), query)));
    }
    let key = key.map_err(|no| {
        Box::new(match no {
            NoKey::NotFound => not_found(snapshot),
            NoKey::BadQuery(msg) => plain(StatusCode::BAD_REQUEST, format!("{msg}\n")),
        })
    })?;
    snapshot.resolve(&key).map_err(|miss| {
        Box::new(match miss {
            Miss::NotFound => not_found(snapshot),
            Miss::Expired => plain(StatusCode::GONE, "this entry has expired\n".into()),
            Miss::UnknownSection(s) => {
                let slugs: Vec<&str> = snapshot
                    .site
                    .config
                    .sections
                    .iter()
                    .map(|s| s.slug.as_str())
                    .collect();
                plain(
                    StatusCode::NOT_FOUND,
                    format!(
                        "no section \"{s}\"; the sections are:\n\n{}\n",
                        slugs.join("\n")
                    ),
                )
            }
            Miss::PastEnd { pages } => {
                let (page, what) = match &key {
                    Key::Feed { page, .. } => (page, "feed"),
                    Key::Home { page } | Key::Section { page, .. } => (page, "page"),
                    _ => (&0, "resource"),
                };
                plain(
                    StatusCode::NOT_FOUND,
                    format!("page {page} is past the end; this {what} has {pages} page(s)\n"),
                )
            }
        })
    })
}

/// A permanent redirect (308, so the method is kept) to the page at
/// `rel`, relative to `base_url`, with the request's query. The target is
/// absolute, built from `base_url` like every link on the pages.
fn redirect(snapshot: &Snapshot, rel: &str, query: Option<&str>) -> Response<Body> {
    let mut target = snapshot.site.config.url(rel);
    target.set_query(query.filter(|q| !q.is_empty()));
    let mut r = plain(
        StatusCode::PERMANENT_REDIRECT,
        format!("moved to {target}\n"),
    );
    match HeaderValue::from_str(target.as_str()) {
        Ok(location) => {
            r.headers_mut().insert(http::header::LOCATION, location);
            r
        }
        Err(_) => not_found(snapshot),
    }
}

/// Percent-decodes a request path. NUL bytes and invalid UTF-8 are a 400;
/// everything else is looked up literally, so `..`, `%2e%2e` and `//` can only
/// ever miss and get a 404.
pub(super) fn decode_path(raw: &str) -> Result<String, StatusCode> {
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

    let mut builder = Response::builder();
    if resource.content_type.starts_with("text/html") {
        builder = builder
            .header(
                CONTENT_SECURITY_POLICY,
                crate::render::html::CONTENT_SECURITY_POLICY.as_str(),
            )
            .header(REFERRER_POLICY, "strict-origin-when-cross-origin");
    }
    let mut builder = builder
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
pub(super) fn http_date_range(t: std::time::SystemTime) -> bool {
    const END_OF_9999: u64 = 253_402_300_799;
    t.duration_since(std::time::UNIX_EPOCH)
        .is_ok_and(|d| d.as_secs() <= END_OF_9999)
}

/// RFC 9110 §13.2.2: If-None-Match (weak comparison) decides when present;
/// If-Modified-Since is only consulted without it.
///
/// A validator that breaks its grammar is ignored, as if it had not been
/// sent: RFC 9110 §13.1.3 requires that of If-Modified-Since (not a valid
/// HTTP-date, or more than one), and §13.1.2 gives If-None-Match no other
/// rule, so it is treated alike. Ignoring can only ever cost a full 200, never
/// a wrong 304. It also keeps tags with SP or HTAB (which `HeaderValue`
/// allows but `etagc` does not) away from the `headers` crate, whose debug
/// builds assert they never see one.
pub(super) fn not_modified<B>(
    req: &Request<B>,
    etag: &str,
    last_modified: Option<std::time::SystemTime>,
) -> bool {
    let headers = req.headers();
    let mut inm = headers
        .get_all(http::header::IF_NONE_MATCH)
        .iter()
        .peekable();
    if inm.peek().is_some() && inm.all(|v| is_entity_tag_list(v.as_bytes())) {
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

/// True when `value` is `*` or a list of at least one entity-tag (RFC 9110
/// §8.8.3, §5.6.1): `[W/]"…"` whose characters are `etagc` (`!`, `#`–`~` or
/// obs-text: no SP, HTAB or `"`), separated by commas with optional
/// whitespace; empty list elements are allowed.
fn is_entity_tag_list(value: &[u8]) -> bool {
    // A HeaderValue holds no CR or LF, so the only ASCII whitespace is OWS.
    let mut rest = value.trim_ascii();
    if rest == b"*" {
        return true;
    }
    let etagc = |b: &u8| *b == 0x21 || (0x23..=0x7e).contains(b) || *b >= 0x80;
    let mut tags = 0;
    loop {
        rest = rest.trim_ascii_start();
        let Some(&first) = rest.first() else {
            return tags > 0;
        };
        if first == b',' {
            rest = &rest[1..];
            continue;
        }
        let opaque = rest.strip_prefix(b"W/").unwrap_or(rest);
        let Some(opaque) = opaque.strip_prefix(b"\"") else {
            return false;
        };
        let len = opaque.iter().take_while(|b| etagc(b)).count();
        if opaque.get(len) != Some(&b'"') {
            return false;
        }
        tags += 1;
        rest = opaque[len + 1..].trim_ascii_start();
        match rest.first() {
            None => return true,
            Some(b',') => rest = &rest[1..],
            Some(_) => return false,
        }
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

/// A short plain-text response (errors), with its length.
pub fn plain(status: StatusCode, text: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(X_CONTENT_TYPE_OPTIONS, "nosniff")
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

    fn empty_snapshot() -> Snapshot {
        let config = crate::config::Config::parse(
            std::path::Path::new("site.toml"),
            "title = \"t\"\nbase_url = \"http://e.org/\"\ntimezone = \"UTC\"\n",
        )
        .unwrap();
        let site = crate::model::Site::new(config, vec![], vec![]);
        Snapshot::build(std::sync::Arc::new(site))
    }

    /// Conditional requests against one resource: each case is the
    /// validator headers sent (`{etag}` and `{lm}` stand for the resource's
    /// own) and the status expected.
    #[test]
    fn invalid_validators_are_ignored_never_a_panic() {
        let snapshot = empty_snapshot();
        // 2001-09-09T01:46:40Z
        let lm = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
        let resource = Resource::new("text/plain", Some(lm), b"body".to_vec());
        let fresh = serve_resource(&snapshot, &resource, &Request::get("/x").body(()).unwrap());
        let etag = fresh.headers()[ETAG].to_str().unwrap().to_owned();
        let lm = fresh.headers()[LAST_MODIFIED].to_str().unwrap().to_owned();
        let inm = "if-none-match";
        let ims = "if-modified-since";
        let cases: &[(&[(&str, &str)], u16)] = &[
            // Valid If-None-Match decides, whatever If-Modified-Since says.
            (&[(inm, "{etag}")], 304),
            (&[(inm, "\"x\" , ,W/{etag}")], 304),
            (&[(inm, "*")], 304),
            (&[(inm, "\"x\""), (ims, "{lm}")], 200),
            (&[(inm, "\"x\""), (inm, "{etag}")], 304),
            // obs-text is valid etagc: a tag that cannot be ours.
            (&[(inm, "\"\u{e9}\"")], 200),
            // So is the empty tag.
            (&[(inm, "\"\""), (ims, "{lm}")], 200),
            // Invalid If-None-Match (SP or HTAB inside a tag, no quotes, a
            // stray `*`, junk between tags, no tag at all) is ignored as if
            // absent: no 304 from it, and If-Modified-Since decides.
            (&[(inm, "\"a b\"")], 200),
            (&[(inm, "\"a\tb\"")], 200),
            (&[(inm, "W/\" \"")], 200),
            (&[(inm, "\"a b\""), (ims, "{lm}")], 304),
            (&[(inm, "{etag}, \"a b\"")], 200),
            (&[(inm, "{etag}"), (inm, "\"a b\"")], 200),
            (&[(inm, "\"a b\", {etag}"), (ims, "{lm}")], 304),
            (&[(inm, "abc")], 200),
            (&[(inm, "*, {etag}")], 200),
            (&[(inm, "{etag} {etag}")], 200),
            (&[(inm, "\"unterminated")], 200),
            (&[(inm, "")], 200),
            (&[(inm, " , ")], 200),
            // If-Modified-Since that is not one valid HTTP-date is ignored.
            (&[(ims, "{lm}")], 304),
            (&[(ims, "not a date")], 200),
            (&[(ims, "")], 200),
            (&[(ims, "{lm}, {lm}")], 200),
            (&[(ims, "{lm}"), (ims, "{lm}")], 200),
            (&[(ims, "Sun, 32 Sep 2001 01:46:40 GMT")], 200),
            (&[(ims, "Fri, 31 Dec 99999 23:59:59 GMT")], 200),
            (&[(ims, "Thu, 01 Jan 1970 00:00:00 GMT")], 200),
            (&[(ims, "Fri, 31 Dec 9999 23:59:59 GMT")], 304),
            (&[(ims, "Sunday, 09-Sep-01 01:46:40 GMT")], 304),
            (&[(ims, "Sun Sep  9 01:46:40 2001")], 304),
        ];
        for (headers, expected) in cases {
            let mut req = Request::get("/x");
            for (name, value) in *headers {
                let value = value.replace("{etag}", &etag).replace("{lm}", &lm);
                let value = HeaderValue::from_bytes(
                    // Latin-1 on the wire: U+00E9 is the obs-text byte 0xE9.
                    &value.chars().map(|c| c as u8).collect::<Vec<u8>>(),
                )
                .unwrap();
                req = req.header(*name, value);
            }
            let req = req.body(()).unwrap();
            let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                serve_resource(&snapshot, &resource, &req)
            }))
            .unwrap_or_else(|_| panic!("panicked on {headers:?}"));
            assert_eq!(got.status().as_u16(), *expected, "{headers:?}");
        }
    }

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
