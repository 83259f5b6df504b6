//! Whatever a client types as a password: normalization never panics, and a code it accepts
//! shows and parses back to itself.
#![no_main]

use apppw_core::AppPassword;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|typed: &[u8]| {
    if let Some(code) = AppPassword::parse(typed) {
        assert!(code.lookup_tag() < 1 << apppw_core::code::TAG_BITS);
        let shown = code.display_grouped();
        assert_eq!(AppPassword::parse(shown.as_bytes()), Some(code));
    }
});
