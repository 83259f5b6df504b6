//! Module arguments from the pam.d line, parsed once into a typed struct. Anything unknown or
//! malformed is an error, so a typo fails closed instead of silently running with defaults.
#![forbid(unsafe_code)]

use std::path::PathBuf;

use apppw_core::DEFAULT_STORE_PATH;
use apppw_core::config::DEFAULT_CONFIG_PATH;

#[derive(Debug, PartialEq, Eq)]
pub struct Options {
    /// The store (`db=PATH`, absolute).
    pub db: PathBuf,
    /// The configuration file (`conf=PATH`, absolute).
    pub conf: PathBuf,
    /// `debug`: log the decision path (never secrets).
    pub debug: bool,
    /// `fault=panic`, only in builds with the `fault-injection` feature (tests).
    pub panic_for_tests: bool,
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut options = Options {
            db: PathBuf::from(DEFAULT_STORE_PATH),
            conf: PathBuf::from(DEFAULT_CONFIG_PATH),
            debug: false,
            panic_for_tests: false,
        };
        for arg in args {
            match arg.split_once('=') {
                None if arg == "debug" => options.debug = true,
                Some(("db", path)) if path.starts_with('/') && !path.contains('\0') => {
                    options.db = PathBuf::from(path)
                }
                #[cfg(feature = "fault-injection")]
                Some(("fault", "panic")) => options.panic_for_tests = true,
                Some(("conf", path)) if path.starts_with('/') => options.conf = PathBuf::from(path),
                Some((key @ ("db" | "conf"), _)) => {
                    return Err(format!("option {arg:?}: {key}= needs an absolute path"));
                }
                _ => {
                    return Err(format!(
                        "unknown option {arg:?}: pam_apppw knows db=PATH, conf=PATH and debug"
                    ));
                }
            }
        }
        Ok(options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        Options::parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn defaults_and_known_options() {
        assert_eq!(
            parse(&[]).map(|o| o.db),
            Ok(PathBuf::from(DEFAULT_STORE_PATH))
        );
        let parsed = parse(&["debug", "db=/srv/apppw.db", "conf=/srv/apppw.conf"]);
        assert_eq!(
            parsed.map(|o| (o.debug, o.db, o.conf)),
            Ok((
                true,
                PathBuf::from("/srv/apppw.db"),
                PathBuf::from("/srv/apppw.conf")
            ))
        );
    }

    #[test]
    fn unknown_or_malformed_options_are_errors() {
        for bad in [
            &["dbg"][..],
            &["db"],
            &["db="],
            &["db=relative.db"],
            &["debug=1"],
            &["nullok"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
