//! Time-aware publishing with an injected clock (never sleeping for a
//! schedule): scheduled entries are invisible everywhere until their time,
//! go live when the clock passes it, expire into 410, and a clock stepped
//! back unpublishes nothing. Plus `check`'s information lines and
//! `build --at`, through the binary.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, TimeZone as _, Utc};
use http::Request;
use http_body_util::BodyExt as _;
use vestnik::reload::{Change, Reloader};
use vestnik::snapshot::Snapshot;

const SITE: &str = "title = \"T\"\nbase_url = \"http://example.org/\"\ntimezone = \"Asia/Novosibirsk\"\n[[sections]]\nslug = \"news\"\ntitle = \"News\"\n";

fn write(dir: &Path, name: &str, extra: &str, date: &str) {
    std::fs::write(
        dir.join("entries").join(format!("{name}.md")),
        format!(
            "+++\ntitle = \"{name}\"\ndate = \"{date}\"\nsections = [\"news\"]\n{extra}+++\n\nBody of {name}.\n"
        ),
    )
    .unwrap();
}

fn data() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("site.toml"), SITE).unwrap();
    std::fs::create_dir(dir.path().join("entries")).unwrap();
    // 2027-01-15 10:00 in Novosibirsk is 03:00 UTC.
    write(dir.path(), "old", "", "2026-01-01T10:00:00+07:00");
    write(dir.path(), "embargo", "", "2027-01-15T10:00:00+07:00");
    write(
        dir.path(),
        "press",
        "publish_at = \"2027-01-15T12:00:00+07:00\"\n",
        "2027-01-10T09:00:00+07:00",
    );
    write(
        dir.path(),
        "promo",
        "expires = \"2027-01-20T00:00:00+07:00\"\n",
        "2026-06-01T10:00:00+07:00",
    );
    dir
}

struct Clock(Arc<AtomicI64>);

impl Clock {
    fn set(&self, t: DateTime<Utc>) {
        self.0.store(t.timestamp(), Ordering::SeqCst);
    }
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

/// A loader and reloader over `dir` with a clock the test moves.
fn start(dir: &Path, now: DateTime<Utc>) -> (Reloader, vestnik::serve::Current, Clock) {
    let seconds = Arc::new(AtomicI64::new(now.timestamp()));
    let clock = Clock(seconds.clone());
    let mut loader = vestnik::load::Loader::open(dir).unwrap();
    loader.set_cutoff(now);
    let snapshot = Snapshot::build_from(Arc::new(loader.site()), None);
    let current = Arc::new(arc_swap::ArcSwap::from_pointee(snapshot));
    let reloader = Reloader::new(loader, current.clone()).with_clock(Arc::new(move || {
        Utc.timestamp_opt(seconds.load(Ordering::SeqCst), 0)
            .unwrap()
    }));
    (reloader, current, clock)
}

fn get(current: &vestnik::serve::Current, path: &str) -> (u16, String) {
    let req = Request::get(path).body(()).unwrap();
    let r = vestnik::serve::handler::respond(&current.load(), &req);
    let status = r.status().as_u16();
    let body = r.into_body();
    let bytes = match futures_ready(body.collect()) {
        Ok(collected) => collected.to_bytes(),
        Err(never) => match never {},
    };
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

fn futures_ready<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("a snapshot body is always ready"),
    }
}

/// Asserts the served site equals a fresh load of `dir` at `t`: the
/// clock's incremental publishing gives the bytes a restart would.
fn same_as_fresh(current: &vestnik::serve::Current, dir: &Path, t: DateTime<Utc>) {
    let fresh = Snapshot::build(Arc::new(vestnik::load_site_at(dir, None, Some(t)).unwrap()));
    let served = current.load();
    assert_eq!(served.health.content_hash, fresh.health.content_hash);
    assert_eq!(served.site.section_counts(), fresh.site.section_counts());
    assert_eq!(
        served.site.schedule.next_change,
        fresh.site.schedule.next_change
    );
    assert_eq!(
        served.site.schedule.scheduled,
        fresh.site.schedule.scheduled
    );
}

/// Every public resource's bytes, joined: nothing scheduled may be in any.
fn everything(current: &vestnik::serve::Current) -> String {
    let snapshot = current.load();
    let mut all = String::new();
    for key in snapshot.resources.keys() {
        all.push_str(&get(current, &key.path()).1);
    }
    for path in [
        "/feeds/all.rss?page=1&limit=1",
        "/feeds/all.atom?sections=news",
        "/?page=1",
    ] {
        all.push_str(&get(current, path).1);
    }
    all
}

#[test]
fn scheduled_entries_are_invisible_until_due_then_live_then_expire() {
    let dir = data();
    let (mut reloader, current, clock) = start(dir.path(), utc(2027, 1, 15, 2, 0));

    // Before 03:00 UTC: neither embargoed entry shows anywhere.
    let all = everything(&current);
    for hidden in ["embargo", "press"] {
        let title = format!(">{hidden}<");
        assert!(!all.contains(&title), "{hidden} leaked before its time");
        assert!(
            !all.contains(&format!("/news/{hidden}")),
            "{hidden}'s URL leaked"
        );
        assert_eq!(get(&current, &format!("/news/{hidden}")).0, 404);
    }
    assert!(all.contains(">old<") && all.contains(">promo<"));
    let health: serde_json::Value = serde_json::from_str(&get(&current, "/healthz").1).unwrap();
    assert_eq!(health["scheduled"], 2);
    assert_eq!(health["next_due"], "2027-01-15T10:00:00+07:00");
    assert_eq!(health["entries"], 2);
    // No feed date is later than the cutoff.
    assert!(
        get(&current, "/feeds/all.atom")
            .1
            .contains("<updated>2026-06-01T10:00:00+07:00</updated>")
    );
    assert_eq!(
        reloader.next_change(),
        Some(utc(2027, 1, 15, 3, 0)),
        "the timer is armed for the first due time"
    );

    // The clock passes 03:00 UTC: the embargo lifts, in every feed.
    clock.set(utc(2027, 1, 15, 3, 0));
    let report = reloader.apply(&Change::Clock).expect("a new snapshot");
    assert!(report.rendered > 0);
    for ext in ["rss", "atom", "json"] {
        assert!(
            get(&current, &format!("/feeds/all.{ext}"))
                .1
                .contains("embargo"),
            "{ext}"
        );
        assert!(
            get(&current, &format!("/feeds/news.{ext}"))
                .1
                .contains("embargo"),
            "{ext}"
        );
    }
    assert_eq!(get(&current, "/news/embargo").0, 200);
    assert_eq!(get(&current, "/news/press").0, 404, "publish_at is later");
    same_as_fresh(&current, dir.path(), utc(2027, 1, 15, 3, 0));
    assert_eq!(reloader.next_change(), Some(utc(2027, 1, 15, 5, 0)));

    // `publish_at` governs, while the displayed date stays the entry's own.
    clock.set(utc(2027, 1, 15, 5, 0));
    reloader.apply(&Change::Clock).expect("a new snapshot");
    same_as_fresh(&current, dir.path(), utc(2027, 1, 15, 5, 0));
    let (status, page) = get(&current, "/news/press");
    assert_eq!(status, 200);
    assert!(
        page.contains("10 января 2027") || page.contains("10 January 2027"),
        "{page}"
    );
    let health: serde_json::Value = serde_json::from_str(&get(&current, "/healthz").1).unwrap();
    assert_eq!(health["scheduled"], 0);
    assert!(health.get("next_due").is_none());

    // A clock stepped back unpublishes nothing.
    clock.set(utc(2027, 1, 1, 0, 0));
    let _ = reloader.apply(&Change::Clock);
    assert_eq!(get(&current, "/news/embargo").0, 200);
    assert_eq!(get(&current, "/news/press").0, 200);

    // Expiry: gone from every feed, and its page answers 410.
    // Next, `embargo` leaves the news sitemap's two-day window; then the expiry.
    assert_eq!(reloader.next_change(), Some(utc(2027, 1, 17, 3, 0)));
    clock.set(utc(2027, 1, 19, 17, 0));
    reloader.apply(&Change::Clock).expect("a new snapshot");
    assert!(!everything(&current).contains(">promo<"));
    assert_eq!(get(&current, "/news/promo").0, 410);
    assert_eq!(get(&current, "/news/never-existed").0, 404);
    same_as_fresh(&current, dir.path(), utc(2027, 1, 19, 17, 0));
    assert_eq!(reloader.next_change(), None);
}

#[test]
fn replicas_at_the_same_time_serve_the_same_bytes() {
    let dir = data();
    let at = |t| {
        let site = vestnik::load_site_at(dir.path(), None, Some(t)).unwrap();
        Snapshot::build(Arc::new(site)).health.content_hash
    };
    // Any two times between the same due times give the same site.
    assert_eq!(at(utc(2027, 1, 15, 3, 0)), at(utc(2027, 1, 15, 4, 59)));
    assert_ne!(at(utc(2027, 1, 15, 2, 59)), at(utc(2027, 1, 15, 3, 0)));
}

#[test]
fn check_lists_what_is_waiting_and_build_at_builds_as_of_then() {
    let dir = data();
    write(dir.path(), "far", "", "2099-01-01T10:00:00+07:00");
    let data = dir.path().to_str().unwrap();
    let (code, stdout, stderr) = common::run(&["check", data]);
    // Information, not problems: the exit code stays 0.
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    let far = dir.path().join("entries/far.md");
    assert!(
        stderr.contains(&format!(
            "{}: info: scheduled, goes live 01.01.2099 10:00 (UTC+07:00)",
            far.display()
        )),
        "{stderr}"
    );

    let out = tempfile::tempdir().unwrap();
    let site = out.path().join("site");
    let (code, _, stderr) = common::run(&[
        "build",
        data,
        site.to_str().unwrap(),
        "--at",
        "2027-01-15T10:30:00+07:00",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let feed = std::fs::read_to_string(site.join("feeds/all.rss")).unwrap();
    assert!(feed.contains("<title>embargo</title>") && !feed.contains("<title>press</title>"));
    assert!(site.join("news/embargo/index.html").is_file());
    assert!(!site.join("news/press/index.html").exists());
    assert!(
        stderr.contains("the next scheduled entry goes live at 2027-01-15T12:00:00+07:00"),
        "{stderr}"
    );
}

#[test]
fn preview_publishes_drafts_and_scheduled_entries_marked_as_such() {
    let dir = data();
    std::fs::write(
        dir.path().join("entries/wip.md"),
        "+++\ntitle = \"wip\"\ndate = \"2026-03-01T10:00:00+07:00\"\nsections = [\"news\"]\ndraft = true\n+++\n\nЧерновик.\n",
    )
    .unwrap();
    let now = utc(2027, 1, 15, 2, 0);
    let open = |preview| {
        let mut loader = vestnik::load::Loader::open_as(dir.path(), None, preview).unwrap();
        loader.set_cutoff(now);
        let snapshot = Snapshot::build(Arc::new(loader.site()));
        Arc::new(arc_swap::ArcSwap::from_pointee(snapshot))
    };
    let public = open(false);
    assert!(!everything(&public).contains(">wip<"));
    assert!(!everything(&public).contains(">embargo<"));
    let preview = open(true);
    assert!(
        get(&preview, "/feeds/all.rss")
            .1
            .contains("<title>wip</title>")
    );
    assert!(
        get(&preview, "/feeds/all.rss")
            .1
            .contains("<title>embargo</title>")
    );
    let (status, page) = get(&preview, "/news/wip");
    assert_eq!(status, 200);
    assert!(
        page.contains("<strong>draft</strong>") || page.contains("<strong>черновик</strong>"),
        "{page}"
    );
    let home = get(&preview, "/").1;
    assert!(
        home.contains("scheduled for 15 January 2027, 10:00</strong> <a"),
        "{home}"
    );
    // Public entries carry no mark.
    assert!(!get(&preview, "/news/old").1.contains("class=\"mark\""));
}
