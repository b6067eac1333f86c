//! The same data gives byte-identical feeds: across loads, and across server
//! processes (so ETags agree across restarts and replicas).

mod common;

use common::{Server, client, root};
use vestnik::snapshot::Snapshot;

#[test]
fn loading_twice_gives_identical_bytes() {
    let data = root().join("data");
    let a = Snapshot::build(vestnik::load_site(&data).unwrap().into());
    let b = Snapshot::build(vestnik::load_site(&data).unwrap().into());
    assert_eq!(a.resources.len(), b.resources.len());
    for (path, ra) in &a.resources {
        let rb = &b.resources[path];
        assert_eq!(ra.identity.body, rb.identity.body, "{path}");
        assert_eq!(ra.identity.etag, rb.identity.etag, "{path}");
        assert_eq!(
            ra.gzip.as_ref().map(|v| &v.body),
            rb.gzip.as_ref().map(|v| &v.body),
            "{path}"
        );
        assert_eq!(
            ra.brotli.as_ref().map(|v| &v.body),
            rb.brotli.as_ref().map(|v| &v.body),
            "{path}"
        );
    }
    assert_eq!(a.health.content_hash, b.health.content_hash);
}

#[test]
fn two_server_processes_return_identical_etags_and_bodies() {
    let data = root().join("data");
    let (one, two) = (Server::start(&data, &[]), Server::start(&data, &[]));
    let http = client();
    let site = vestnik::load_site(&data).unwrap();
    for feed in site.feeds() {
        for ext in ["rss", "atom"] {
            for encoding in ["identity", "gzip", "br"] {
                let path = format!("/feeds/{}.{ext}", feed.scope.slug());
                let get = |s: &Server| {
                    let r = http
                        .get(s.url(&path))
                        .header("accept-encoding", encoding)
                        .send()
                        .unwrap();
                    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
                    (etag, r.bytes().unwrap())
                };
                assert_eq!(get(&one), get(&two), "{path} {encoding}");
            }
        }
    }
    let health = |s: &Server| http.get(s.url("/healthz")).send().unwrap().text().unwrap();
    assert_eq!(health(&one), health(&two));
}
