//! The arguments of a pam.d line: parsing never panics, and any accepted paths are absolute.
#![no_main]

use apppw_core::module_options::ModuleOptions;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|line: &str| {
    let args: Vec<&str> = line.split_whitespace().collect();
    if let Ok(options) = ModuleOptions::parse(&args) {
        assert!(options.db.is_absolute() && options.conf.is_absolute());
    }
});
