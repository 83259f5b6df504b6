//! pam_apppw's arguments from the pam.d line, parsed once into a typed struct. Anything unknown
//! or malformed is an error, so a typo fails closed instead of silently running with defaults.
//! (Here rather than in the module so that the parser is unit-tested and fuzzed like the others.)
#![forbid(unsafe_code)]

use std::path::PathBuf;

use crate::config::DEFAULT_CONFIG_PATH;
use crate::store_config::DEFAULT_STORE_CONFIG_PATH;

/// Where the packages install apppw-ctl.
pub const DEFAULT_CTL_PATH: &str = "/usr/bin/apppw-ctl";

/// What is wrong with an argument on the pam.d line.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum OptionError {
    #[error("option {arg:?}: {key}= needs an absolute path")]
    NotAbsolute { arg: String, key: &'static str },
    #[error(
        "unknown option {0:?}: pam_apppw knows db=PATH, store_conf=PATH, conf=PATH, ctl=PATH and debug"
    )]
    Unknown(String),
}

#[derive(Debug, PartialEq, Eq)]
pub struct ModuleOptions {
    /// An SQLite store given on the line (`db=PATH`, absolute), instead of the default file;
    /// refused beside a store.conf that names a login store (`resolve_store`).
    pub db: Option<PathBuf>,
    /// Which store to use when `db=` is not given (`store_conf=PATH`, absolute;
    /// /etc/apppw/store.conf by default, and without it the default SQLite file).
    pub store_conf: PathBuf,
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
            db: None,
            store_conf: PathBuf::from(DEFAULT_STORE_CONFIG_PATH),
            conf: PathBuf::from(DEFAULT_CONFIG_PATH),
            debug: false,
            ctl: PathBuf::from(DEFAULT_CTL_PATH),
        };
        for arg in args.iter().map(AsRef::as_ref) {
            match arg.split_once('=') {
                None if arg == "debug" => options.debug = true,
                Some(("db", path)) if path.starts_with('/') => {
                    options.db = Some(PathBuf::from(path));
                }
                Some(("store_conf", path)) if path.starts_with('/') => {
                    options.store_conf = PathBuf::from(path);
                }
                Some(("conf", path)) if path.starts_with('/') => options.conf = PathBuf::from(path),
                Some(("ctl", path)) if path.starts_with('/') => options.ctl = PathBuf::from(path),
                Some((key @ ("db" | "store_conf" | "conf" | "ctl"), _)) => {
                    return Err(OptionError::NotAbsolute {
                        arg: arg.into(),
                        key: match key {
                            "db" => "db",
                            "store_conf" => "store_conf",
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
            ModuleOptions::parse::<&str>(&[]).map(|o| (o.db, o.store_conf)),
            Ok((None, PathBuf::from(DEFAULT_STORE_CONFIG_PATH)))
        );
        let parsed = ModuleOptions::parse(&[
            "debug",
            "db=/srv/apppw.db",
            "conf=/srv/apppw.conf",
            "store_conf=/srv/store.conf",
        ]);
        assert_eq!(
            parsed.map(|o| (o.debug, o.db, o.conf, o.store_conf)),
            Ok((
                true,
                Some(PathBuf::from("/srv/apppw.db")),
                PathBuf::from("/srv/apppw.conf"),
                PathBuf::from("/srv/store.conf")
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
            &["store_conf=store.conf"],
            &["debug=1"],
            &["nullok"],
            &["fault=panic"],
        ] {
            assert!(ModuleOptions::parse(bad).is_err(), "{bad:?}");
        }
    }
}
