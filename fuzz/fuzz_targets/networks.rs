//! Networks (`--from`) and PAM_RHOST values: never a panic; an accepted network prints as
//! something that parses back to it, and contains its own base address.
#![no_main]

use apppw_core::scope::{Network, parse_rhost};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(network) = text.parse::<Network>() {
        let shown = network.to_string();
        assert_eq!(shown.parse::<Network>().as_ref(), Ok(&network));
        let base = shown.split('/').next().unwrap_or_default();
        if let Some(addr) = parse_rhost(base) {
            assert!(network.contains(addr));
        }
    }
    if let Some(addr) = parse_rhost(text) {
        let _ = "0.0.0.0/0".parse::<Network>().map(|n| n.contains(addr));
    }
});
