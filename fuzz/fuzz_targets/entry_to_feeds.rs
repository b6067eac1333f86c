//! Arbitrary bytes as one entry file, published and rendered in every feed
//! format: every output is well-formed and carries no script as markup.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use vestnik_fuzz::checks::{self, Fixture};

static FIXTURE: LazyLock<Fixture> = LazyLock::new(Fixture::new);

fuzz_target!(|data: &[u8]| checks::entry_to_feeds(&FIXTURE, data));
