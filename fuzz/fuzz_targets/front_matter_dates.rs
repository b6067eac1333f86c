//! Arbitrary bytes as an entry file, as its `date` value and as a date string:
//! nothing panics and every accepted date is in range and round-trips.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use vestnik_fuzz::checks::{self, Fixture};

static FIXTURE: LazyLock<Fixture> = LazyLock::new(Fixture::new);

fuzz_target!(|data: &[u8]| checks::front_matter_dates(&FIXTURE, data));
