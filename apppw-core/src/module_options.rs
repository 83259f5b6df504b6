//! pam_apppw's arguments from the pam.d line, parsed once into a typed struct. Anything unknown
//! or malformed is an error, so a typo fails closed instead of silently running with defaults.
//! (Here rather than in the module so that the parser is unit-tested and fuzzed like the others.)
#![forbid(unsafe_code)]

use std::path::PathBuf;

use crate::config::DEFAULT_CONFIG_PATH;
use crate::store::DEFAULT_STORE_PATH;

/// Where the packages install apppw-ctl.
pub const DEFAULT_CTL_PATH: &str = "/usr/bin/apppw-ctl";

/// What is wrong with an argument on the pam.d line.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum OptionError {
    #[error("option {arg:?}: {key}= needs an absolute path")]
    NotAbsolute { arg: String, key: &'static str },
    #[error("unknown option {0:?}: pam_apppw knows db=PATH, conf=PATH, ctl=PATH and debug")]
    Unknown(String),
}

#[derive(Debug, PartialEq, Eq)]
pub struct ModuleOptions {
    /// The store (`db=PATH`, absolute).
    pub db: PathBuf,
    /// The configuration file (`conf=PATH`, absolute).
    pub conf: PathBuf,
    /// `debug`: log the decision path (never secrets).
    pub debug: bool,
    /// apppw-ctl (`ctl=PATH`, absolute), which the password group runs to revoke a user's codes
    /// after a password change.
    pub ctl: PathBuf,
}

impl ModuleOptions {
    pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<ModuleOptions, OptionError> {
        let mut options = ModuleOptions {
            db: PathBuf::from(DEFAULT_STORE_PATH),
            conf: PathBuf::from(DEFAULT_CONFIG_PATH),
            debug: false,
            ctl: PathBuf::from(DEFAULT_CTL_PATH),
        };
        for arg in args.iter().map(AsRef::as_ref) {
            match arg.split_once('=') {
                None if arg == "debug" => options.debug = true,
                Some(("db", path)) if path.starts_with('/') => options.db = PathBuf::from(path),
                Some(("conf", path)) if path.starts_with('/') => options.conf = PathBuf::from(path),
                Some(("ctl", path)) if path.starts_with('/') => options.ctl = PathBuf::from(path),
                Some((key @ ("db" | "conf" | "ctl"), _)) => {
                    return Err(OptionError::NotAbsolute {
                        arg: arg.into(),
                        key: match key {
                            "db" => "db",
                            "conf" => "conf",
                            _ => "ctl",
                        },
                    });
                }
                _ => return Err(OptionError::Unknown(arg.into())),
            }
        }
        Ok(options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_known_options() {
        assert_eq!(
            ModuleOptions::parse::<&str>(&[]).map(|o| o.db),
            Ok(PathBuf::from(DEFAULT_STORE_PATH))
        );
        let parsed = ModuleOptions::parse(&["debug", "db=/srv/apppw.db", "conf=/srv/apppw.conf"]);
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
            &["conf=x"],
            &["ctl=apppw-ctl"],
            &["debug=1"],
            &["nullok"],
            &["fault=panic"],
        ] {
            assert!(ModuleOptions::parse(bad).is_err(), "{bad:?}");
        }
    }
}
