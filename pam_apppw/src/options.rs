//! The module's arguments: `apppw_core::module_options` parses them; test builds with the
//! `fault-injection` feature also take `fault=panic`, which makes `authenticate` panic.
#![forbid(unsafe_code)]

use apppw_core::module_options::{ModuleOptions, OptionError};

pub struct Options {
    pub parsed: ModuleOptions,
    /// `fault=panic`, only in builds with the `fault-injection` feature (tests).
    pub panic_for_tests: bool,
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Options, OptionError> {
        let fault = |a: &&String| cfg!(feature = "fault-injection") && a.as_str() == "fault=panic";
        let rest: Vec<&String> = args.iter().filter(|a| !fault(a)).collect();
        Ok(Options {
            parsed: ModuleOptions::parse(&rest)?,
            panic_for_tests: args.iter().any(|a| fault(&a)),
        })
    }
}
