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
    /// `Some(None)`: `manage_store = none`, a host that changes no codes (a mail-only host, which
    /// must not hold apppw-ctl's database password).
    pub manage_store: Option<Option<StoreTarget>>,
}

impl StoreConfig {
    /// The store `user` uses: its key, or the SQLite file when the file sets neither key;
    /// `None` for apppw-ctl on a host whose `manage_store = none`.
    pub fn target_for(&self, user: StoreUser) -> Option<StoreTarget> {
        let default = || StoreTarget::Sqlite(PathBuf::from(DEFAULT_STORE_PATH));
        match user {
            StoreUser::Module => Some(self.login_store.clone().unwrap_or_else(default)),
            StoreUser::Ctl => match &self.manage_store {
                None => Some(default()),
                Some(chosen) => chosen.clone(),
            },
        }
    }
}

/// The store `user` uses: the SQLite file `explicit_db` if one was given (`db=` on the pam.d
/// line, root's `--db`), else what `store_conf` says, else the default SQLite file.
///
/// A `db=` beside a store.conf that names a login store is refused: the module would read one
/// store while apppw-ctl changes another, and revocations would silently not reach logins.
pub fn resolve_store(
    explicit_db: Option<&Path>,
    store_conf: &Path,
    user: StoreUser,
) -> Result<StoreTarget, Error> {
    let config = load_store_config(store_conf)?.unwrap_or_default();
    if let Some(path) = explicit_db {
        if config.login_store.is_some() {
            return Err(Error::Config {
                path: store_conf.into(),
                line: 0,
                key: "login_store".into(),
                problem: format!(
                    "names a store, and db={} names another: logins and apppw-ctl would use different stores. Remove one",
                    path.display()
                ),
            });
        }
        return Ok(StoreTarget::Sqlite(path.to_path_buf()));
    }
    config.target_for(user).ok_or_else(|| Error::Config {
        path: store_conf.into(),
        line: 0,
        key: "manage_store".into(),
        problem: "is none: this host changes no app passwords. Use apppw-ctl on a host whose store.conf names the manage store".into(),
    })
}

/// Reads store.conf; `None` when there is none. Refused unless it is root's, writable by root
/// only, and readable by nobody but root and a trusted group (root, `apppw`).
pub fn load_store_config(path: &Path) -> Result<Option<StoreConfig>, Error> {
    let fix = || {
        format!(
            "It may hold database passwords: run chown root:apppw {0} && chmod 0640 {0}",
            path.display()
        )
    };
    let read = read_config(path).map_err(|e| match e {
        // open_config's own advice suits a file anyone may read, not this one.
        Error::UnsafePath(mut unsafe_path) if unsafe_path.path == path => {
            unsafe_path.fix = fix();
            Error::UnsafePath(unsafe_path)
        }
        other => other,
    })?;
    let Some((text, meta)) = read else {
        return Ok(None);
    };
    let exposed = |problem: String| {
        Error::UnsafePath(UnsafePath {
            path: path.into(),
            problem,
            fix: fix(),
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
        // Never echo the line: it may be a URL with a password. The key is named only when it
        // looks like one (a typo such as `login_store: postgresql://...` has none).
        let Some((key, value)) = content
            .split_once('=')
            .map(|(k, v)| (k.trim(), v.trim()))
            .filter(|(k, _)| {
                (1..=32).contains(&k.len())
                    && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
            })
        else {
            return Err(fail(
                "(unrecognised line)",
                "expected `login_store = ...` or `manage_store = ...`".into(),
            ));
        };
        let user = match key {
            "login_store" => StoreUser::Module,
            "manage_store" => StoreUser::Ctl,
            _ => {
                return Err(fail(
                    key,
                    "unknown key; store.conf knows login_store and manage_store".into(),
                ));
            }
        };
        let taken = match user {
            StoreUser::Module => config.login_store.is_some(),
            StoreUser::Ctl => config.manage_store.is_some(),
        };
        if taken {
            return Err(fail(key, "is set twice".into()));
        }
        if user == StoreUser::Ctl && value == "none" {
            config.manage_store = Some(None);
            continue;
        }
        let target = StoreTarget::parse(value, user == StoreUser::Module).map_err(|e| match e {
            // The problem, without the value (it is in the file for whoever may read it).
            Error::StoreTarget { problem, .. } => fail(key, problem),
            other => fail(key, other.to_string()),
        })?;
        match user {
            StoreUser::Module => config.login_store = Some(target),
            StoreUser::Ctl => config.manage_store = Some(Some(target)),
        }
    }
    // One key alone would send the other side to the default SQLite file: logins and changes
    // would use different stores, and revocations would not reach logins.
    if config.login_store.is_some() != config.manage_store.is_some() {
        let missing = if config.login_store.is_some() {
            "manage_store"
        } else {
            "login_store"
        };
        return Err(Error::Config {
            path: path.into(),
            line: 0,
            key: missing.into(),
            problem: "is missing: set both keys to the same store (manage_store = none on a host that changes no codes), or neither".into(),
        });
    }
    Ok(config)
}

/// Reads a secret URL (`init --admin-url`, `migrate --to`) from `path`, a file only root may
/// read and write (checked as opened, no symlink, no FIFO), or stdin for `-`.
pub fn read_secret_url(path: &Path) -> Result<zeroize::Zeroizing<String>, Error> {
    use std::io::Read;
    if path == Path::new("-") {
        let mut text = zeroize::Zeroizing::new(String::new());
        std::io::stdin()
            .take(4096)
            .read_to_string(&mut text)
            .map_err(|e| Error::ConfigUnreadable {
                path: path.into(),
                reason: e.to_string(),
            })?;
        return Ok(text);
    }
    let Some((text, meta)) = read_config(path)? else {
        return Err(Error::ConfigUnreadable {
            path: path.into(),
            reason: "there is no such file".into(),
        });
    };
    let text = zeroize::Zeroizing::new(text);
    if meta.mode() & 0o077 != 0 {
        return Err(Error::UnsafePath(UnsafePath {
            path: path.into(),
            problem: "others than root can read it".into(),
            fix: format!("It holds a password: run chmod 0600 {}", path.display()),
        }));
    }
    Ok(text)
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
            Some(StoreTarget::Postgres(_))
        ));
        assert!(matches!(
            config.target_for(StoreUser::Ctl),
            Some(StoreTarget::Sqlite(p)) if p == Path::new("/srv/apppw/apppw.db")
        ));
        let empty = parse("").unwrap();
        assert!(matches!(
            empty.target_for(StoreUser::Module),
            Some(StoreTarget::Sqlite(p)) if p == Path::new(DEFAULT_STORE_PATH)
        ));
    }

    #[test]
    fn one_key_alone_is_refused_and_none_marks_a_host_that_changes_nothing() {
        let err = parse("login_store = postgresql://mail:pw@10.0.0.5/apppw").unwrap_err();
        assert!(
            err.to_string().contains("manage_store: is missing"),
            "{err}"
        );
        let err = parse("manage_store = sqlite:/srv/a.db").unwrap_err();
        assert!(err.to_string().contains("login_store: is missing"), "{err}");
        let mail_only =
            parse("login_store = postgresql://mail:pw@10.0.0.5/apppw\nmanage_store = none")
                .unwrap();
        assert!(mail_only.target_for(StoreUser::Ctl).is_none());
        assert!(mail_only.target_for(StoreUser::Module).is_some());
    }

    #[test]
    fn mistakes_name_the_line_and_never_the_password() {
        for (text, line) in [
            (
                "login_store: postgresql://mail:hunter2@10.0.0.5/apppw?connect_timeout=5",
                1,
            ),
            ("login_store postgresql://mail:hunter2=@10.0.0.5/apppw", 1),
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
            let text = format!("{text}\nmanage_store = none\n");
            let text = text.as_str();
            let err = parse(text).unwrap_err();
            let message = err.to_string();
            assert!(
                matches!(err, Error::Config { line: l, .. } if l == line),
                "{message}"
            );
            assert!(!message.contains("hunter2"), "{message}");
        }
        // The module must be given addresses; apppw-ctl may use names.
        assert!(
            parse(
                "login_store = postgresql://m:pw@10.0.0.5/apppw\n\
                 manage_store = postgresql://ctl:pw@db.example.org/apppw"
            )
            .is_ok()
        );
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
