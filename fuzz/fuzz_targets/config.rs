//! apppw.conf text: parsing never panics, and an error always names a line within the file.
#![no_main]

use std::path::Path;

use apppw_core::config::parse_policy;
use apppw_core::Error;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    match parse_policy(Path::new("/etc/apppw/apppw.conf"), text) {
        Err(Error::Config { line, .. } | Error::ConfigSyntax { line, .. }) => {
            assert!(line >= 1 && line <= text.lines().count());
        }
        Err(other) => panic!("a configuration text gave a non-configuration error: {other}"),
        Ok(_) => {}
    }
});
