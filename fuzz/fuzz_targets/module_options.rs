//! The arguments of a pam.d line: parsing never panics, and any accepted paths are absolute.
#![no_main]

use apppw_core::module_options::ModuleOptions;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|line: &str| {
    let args: Vec<&str> = line.split_whitespace().collect();
    if let Ok(options) = ModuleOptions::parse(&args) {
        assert!(options.db.as_deref().is_none_or(std::path::Path::is_absolute));
        assert!(options.store_conf.is_absolute());
        assert!(options.conf.is_absolute() && options.ctl.is_absolute());
    }
});
