//! Support for the fuzz targets in `fuzz_targets/`: the property checks they
//! run, shared with the stable replays in the main crate's tests.

pub mod checks;
