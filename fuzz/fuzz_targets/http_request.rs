//! Arbitrary request targets, methods and negotiation headers answered by the
//! in-process handler over `tests/data/good-min`: no panic, only expected
//! statuses, and bodies that match their headers.
#![no_main]

use std::path::Path;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use vestnik::snapshot::Snapshot;
use vestnik_fuzz::checks;

static SNAPSHOT: LazyLock<Snapshot> =
    LazyLock::new(|| checks::good_min_snapshot(&Path::new(env!("CARGO_MANIFEST_DIR")).join("..")));

fuzz_target!(|data: &[u8]| checks::http_request(&SNAPSHOT, data));
