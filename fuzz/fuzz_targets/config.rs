//! apppw.conf text: parsing never panics, and an error always names a line within the file.
#![no_main]

use std::path::Path;

use apppw_core::config::parse_policy;
use apppw_core::Error;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Err(Error::Config { line, .. }) = parse_policy(Path::new("/etc/apppw/apppw.conf"), text) {
        assert!(line <= text.lines().count());
    }
});
