//! /etc/apppw/store.conf: which store the PAM module and apppw-ctl use, when it is not the SQLite
//! file at /var/lib/apppw/apppw.db. Two keys, each `sqlite:/path` or a `postgresql://` URL:
//!
//! - `login_store`: what the PAM module reads (with PostgreSQL, as a member of `apppw_login`);
//! - `manage_store`: what apppw-ctl changes (as a member of `apppw_manage`).
//!
//! A URL may hold a database password, so the file must be root's, writable by root only and
//! readable by root and the `apppw` group only (0640 root:apppw): the module reads it as root,
//! apppw-ctl as the `apppw` account, ordinary users not at all. Nothing from it ever reaches a
//! message but the key and the line (the password is never echoed, not even from a line that
//! does not parse). Without the file, or without a key, everything is as before: the SQLite file.
#![forbid(unsafe_code)]

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::config::read_config;
use crate::error::Error;
use crate::secure_path::{UnsafePath, trusted_gids};
use crate::store::{DEFAULT_STORE_PATH, StoreTarget};

/// Where the store configuration lives unless root says otherwise.
pub const DEFAULT_STORE_CONFIG_PATH: &str = "/etc/apppw/store.conf";

/// Who is asking which store to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreUser {
    /// The PAM module: `login_store`.
    Module,
    /// apppw-ctl: `manage_store`.
    Ctl,
}

/// What store.conf says.
#[derive(Clone, Debug, Default)]
pub struct StoreConfig {
    pub login_store: Option<StoreTarget>,
    pub manage_store: Option<StoreTarget>,
}

impl StoreConfig {
    /// The store `user` uses: its key, or the SQLite file when the key is absent.
    pub fn target_for(&self, user: StoreUser) -> StoreTarget {
        let chosen = match user {
            StoreUser::Module => &self.login_store,
            StoreUser::Ctl => &self.manage_store,
        };
        chosen
            .clone()
            .unwrap_or_else(|| StoreTarget::Sqlite(PathBuf::from(DEFAULT_STORE_PATH)))
    }
}

/// The store `user` uses: the SQLite file `explicit_db` if one was given (`db=` on the pam.d
/// line, root's `--db`), else what `store_conf` says, else the default SQLite file.
pub fn resolve_store(
    explicit_db: Option<&Path>,
    store_conf: &Path,
    user: StoreUser,
) -> Result<StoreTarget, Error> {
    if let Some(path) = explicit_db {
        return Ok(StoreTarget::Sqlite(path.to_path_buf()));
    }
    Ok(load_store_config(store_conf)?
        .unwrap_or_default()
        .target_for(user))
}

/// Reads store.conf; `None` when there is none. Refused unless it is root's, writable by root
/// only, and readable by nobody but root and a trusted group (root, `apppw`).
pub fn load_store_config(path: &Path) -> Result<Option<StoreConfig>, Error> {
    let Some((text, meta)) = read_config(path)? else {
        return Ok(None);
    };
    let exposed = |problem: String| {
        Error::UnsafePath(UnsafePath {
            path: path.into(),
            problem,
            fix: format!(
                "It may hold database passwords: run chown root:apppw {0} && chmod 0640 {0}",
                path.display()
            ),
        })
    };
    if meta.mode() & 0o004 != 0 {
        return Err(exposed("everyone can read it".into()));
    }
    if meta.mode() & 0o040 != 0 && !trusted_gids().contains(&meta.gid()) {
        return Err(exposed(format!(
            "group {} can read it, which is neither root nor apppw",
            meta.gid()
        )));
    }
    parse_store_config(path, &text).map(Some)
}

/// Parses store.conf's text (`path` is only for messages).
pub fn parse_store_config(path: &Path, text: &str) -> Result<StoreConfig, Error> {
    let mut config = StoreConfig::default();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let content = raw.trim();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let fail = |key: &str, problem: String| Error::Config {
            path: path.into(),
            line,
            key: key.into(),
            problem,
        };
        // Never echo the line: it may be a URL with a password.
        let Some((key, value)) = content.split_once('=') else {
            return Err(fail(
                "(no key)",
                "expected `login_store = ...` or `manage_store = ...`".into(),
            ));
        };
        let (key, value) = (key.trim(), value.trim());
        let (slot, user) = match key {
            "login_store" => (&mut config.login_store, StoreUser::Module),
            "manage_store" => (&mut config.manage_store, StoreUser::Ctl),
            _ => {
                return Err(fail(
                    key,
                    "unknown key; store.conf knows login_store and manage_store".into(),
                ));
            }
        };
        if slot.is_some() {
            return Err(fail(key, "is set twice".into()));
        }
        let target = StoreTarget::parse(value, user == StoreUser::Module).map_err(|e| match e {
            // The problem, without the value (it is in the file for whoever may read it).
            Error::StoreTarget { problem, .. } => fail(key, problem),
            other => fail(key, other.to_string()),
        })?;
        *slot = Some(target);
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<StoreConfig, Error> {
        parse_store_config(Path::new("/etc/apppw/store.conf"), text)
    }

    #[test]
    fn both_keys_are_read_and_absent_keys_mean_the_sqlite_file() {
        let config = parse(
            "# the fleet's store\nlogin_store = postgresql://mail:pw@10.0.0.5/apppw\n\
             manage_store = sqlite:/srv/apppw/apppw.db\n",
        )
        .unwrap();
        assert!(matches!(
            config.target_for(StoreUser::Module),
            StoreTarget::Postgres(_)
        ));
        assert!(matches!(
            config.target_for(StoreUser::Ctl),
            StoreTarget::Sqlite(p) if p == Path::new("/srv/apppw/apppw.db")
        ));
        let empty = parse("").unwrap();
        assert!(matches!(
            empty.target_for(StoreUser::Module),
            StoreTarget::Sqlite(p) if p == Path::new(DEFAULT_STORE_PATH)
        ));
    }

    #[test]
    fn mistakes_name_the_line_and_never_the_password() {
        for (text, line) in [
            ("postgresql://mail:hunter2@10.0.0.5/apppw", 1),
            (
                "\nlogin_store = postgresql://mail:hunter2@db.example.org/apppw",
                2,
            ),
            (
                "login_store = postgresql://mail:hunter2@10.0.0.5/apppw?sslmode=disable",
                1,
            ),
            (
                "manage_store = postgresql://mail:hunter2@10.0.0.5/apppw\nmanage_store = sqlite:/x",
                2,
            ),
            ("store = postgresql://mail:hunter2@10.0.0.5/apppw", 1),
        ] {
            let err = parse(text).unwrap_err();
            let message = err.to_string();
            assert!(
                matches!(err, Error::Config { line: l, .. } if l == line),
                "{message}"
            );
            assert!(!message.contains("hunter2"), "{message}");
        }
        // The module must be given addresses; apppw-ctl may use names.
        assert!(parse("manage_store = postgresql://ctl:pw@db.example.org/apppw").is_ok());
    }

    #[test]
    fn an_explicit_file_wins_over_the_configuration() {
        let target = resolve_store(
            Some(Path::new("/tmp/x.db")),
            Path::new("/nonexistent/store.conf"),
            StoreUser::Module,
        )
        .unwrap();
        assert!(matches!(target, StoreTarget::Sqlite(p) if p == Path::new("/tmp/x.db")));
        let target =
            resolve_store(None, Path::new("/nonexistent/store.conf"), StoreUser::Ctl).unwrap();
        assert!(matches!(target, StoreTarget::Sqlite(p) if p == Path::new(DEFAULT_STORE_PATH)));
    }
}
