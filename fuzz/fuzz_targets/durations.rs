//! Durations and expiries as typed: never a panic or an overflow, and an accepted expiry lies in
//! the future.
#![no_main]

use apppw_core::duration::parse_duration;
use apppw_core::scope::parse_expiry;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(seconds) = parse_duration(text) {
        assert!(seconds > 0);
    }
    let now = 1_800_000_000;
    if let Ok(at) = parse_expiry(text, now) {
        assert!(at > now);
    }
});
