//! /etc/apppw/apppw.conf: `key = value` lines, `#` comments. Every key is known and every value
//! validated; a mistake is an error naming the file, the line and the key, and the PAM module
//! fails closed on it rather than guess.
#![forbid(unsafe_code)]

use std::io::Read;
use std::path::Path;

use crate::duration::parse_duration;
use crate::error::Error;
use crate::policy::Policy;
use crate::scope::parse_service;
use crate::secure_path::{OpenConfigError, open_config};

/// Where the configuration lives unless root says otherwise.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/apppw/apppw.conf";

/// The file `apppw-ctl init` writes: every key, commented out at its default.
pub const DEFAULT_CONFIG_TEXT: &str = "\
# apppw configuration (apppw.conf(5)). Lines are `key = value`; `#` starts a comment.
# Every key is optional; the values shown are the defaults.

# Most active app passwords one user may hold.
#max_active_codes = 25

# Most app passwords one user may create, rename or edit in 24 hours (root is not counted).
# It bounds how many rows one user can add to the store; revoking is never refused.
#max_changes_per_day = 50

# Who may create app passwords: user names and/or group names, separated by spaces or commas.
# Both empty: everyone.
#allowed_users =
#allowed_groups =

# Argon2id cost of newly minted codes (existing codes keep the cost they were made with).
#argon2_memory_kib = 19456
#argon2_iterations = 2
#argon2_parallelism = 1

# Ask users for their account password (PAM service apppw-ctl) before `new` and `revoke --all`.
# Set to no on hosts where users log in with SSH keys only and have no password.
#reauthenticate = yes

# PAM services app passwords may be used for (e.g. imap pop3 smtp). Empty: any service that
# stacks pam_apppw (never apppw-ctl).
#allowed_services =

# Longest lifetime of an app password (e.g. 365d); new codes expire after it at the latest.
# Empty: no limit.
#max_lifetime =

# App passwords unused for this long stop working (e.g. 90d). Empty: never.
#expire_unused =

# A command run after every revocation (and every edit that narrows a code), with %u replaced by
# the code's owner; no shell. Use it to make the change take effect at once where a server caches
# logins, e.g.
#revoke_hook = /usr/bin/doveadm auth cache flush %u
#revoke_hook =

# Revoke a user's app passwords when their account password is changed through PAM (passwd):
# pam_apppw must be in the password stack (pam_apppw(8)). Apple and Google do this; it cuts off a
# phished account's devices with the password reset.
#revoke_on_password_change = no
";

/// The largest configuration file read: the default file is 2 kB, and a login reads it each time.
const MAX_CONFIG_BYTES: u64 = 64 * 1024;

/// Reads the policy from `path`; a missing file means the defaults. The file is opened once and
/// checked as opened (`secure_path::open_config`).
pub fn load_policy(path: &Path) -> Result<Policy, Error> {
    match read_config(path)? {
        Some((text, _)) => parse_policy(path, &text),
        None => Ok(Policy::default()),
    }
}

/// The text of the root-owned configuration file at `path` (opened once, checked as opened by
/// `secure_path::open_config`, at most `MAX_CONFIG_BYTES`), with what it is; `None` when there is
/// no such file.
pub(crate) fn read_config(path: &Path) -> Result<Option<(String, std::fs::Metadata)>, Error> {
    let unreadable = |e: std::io::Error| Error::ConfigUnreadable {
        path: path.into(),
        reason: e.to_string(),
    };
    let (file, meta) = match open_config(path) {
        Ok(Some(opened)) => opened,
        Ok(None) => return Ok(None),
        Err(OpenConfigError::Unsafe(e)) => return Err(Error::UnsafePath(e)),
        Err(OpenConfigError::Unreadable(e)) => return Err(unreadable(e)),
    };
    let too_large = || Error::ConfigTooLarge {
        path: path.into(),
        limit: MAX_CONFIG_BYTES,
    };
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(too_large());
    }
    let mut text = String::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(unreadable)?;
    // It grew after the check: still bounded by `take`, still refused.
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(too_large());
    }
    Ok(Some((text, meta)))
}

/// Parses configuration text (`path` is only for messages).
pub fn parse_policy(path: &Path, text: &str) -> Result<Policy, Error> {
    let mut policy = Policy::default();
    let mut seen = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let content = raw.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        let fail = |key: &str, problem: String| Error::Config {
            path: path.into(),
            line,
            key: key.into(),
            problem,
        };
        let Some((key, value)) = content.split_once('=') else {
            return Err(Error::ConfigSyntax {
                path: path.into(),
                line,
                found: content.into(),
            });
        };
        let (key, value) = (key.trim(), value.trim());
        if seen.contains(&key.to_string()) {
            return Err(fail(key, "is set twice".into()));
        }
        seen.push(key.to_string());
        match key {
            "max_active_codes" => {
                policy.max_active_codes = number(value, 1, 10_000).map_err(|p| fail(key, p))?;
            }
            "max_changes_per_day" => {
                policy.max_changes_per_day = number(value, 1, 100_000).map_err(|p| fail(key, p))?;
            }
            "allowed_users" => policy.allowed_users = names(value),
            "allowed_groups" => policy.allowed_groups = names(value),
            // Argon2 needs 8 KiB per lane: 1024 KiB covers the most lanes (64) allowed below.
            "argon2_memory_kib" => {
                policy.hash_params.memory_kib =
                    number(value, 1024, 4 * 1024 * 1024).map_err(|p| fail(key, p))?;
            }
            "argon2_iterations" => {
                policy.hash_params.iterations = number(value, 1, 100).map_err(|p| fail(key, p))?;
            }
            "argon2_parallelism" => {
                policy.hash_params.parallelism = number(value, 1, 64).map_err(|p| fail(key, p))?;
            }
            "reauthenticate" => policy.reauthenticate = boolean(value).map_err(|p| fail(key, p))?,
            "allowed_services" => {
                policy.allowed_services = names(value)
                    .iter()
                    .map(|s| parse_service(s))
                    .collect::<Result<_, _>>()
                    .map_err(|p| fail(key, p))?;
            }
            "max_lifetime" => {
                policy.max_lifetime = optional_duration(value).map_err(|p| fail(key, p))?;
            }
            "expire_unused" => {
                policy.expire_unused = optional_duration(value).map_err(|p| fail(key, p))?;
            }
            "revoke_hook" => policy.revoke_hook = command(value).map_err(|p| fail(key, p))?,
            "revoke_on_password_change" => {
                policy.revoke_on_password_change = boolean(value).map_err(|p| fail(key, p))?;
            }
            _ => {
                return Err(fail(
                    key,
                    "is not a known setting (see apppw.conf(5) or the comments `apppw-ctl init` writes)".into(),
                ));
            }
        }
    }
    Ok(policy)
}

fn number(value: &str, min: u32, max: u32) -> Result<u32, String> {
    value
        .parse::<u32>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| format!("must be a whole number from {min} to {max}, not {value:?}"))
}

fn optional_duration(value: &str) -> Result<Option<i64>, String> {
    if value.is_empty() {
        Ok(None)
    } else {
        parse_duration(value).map(Some)
    }
}

fn command(value: &str) -> Result<Vec<String>, String> {
    let argv: Vec<String> = value.split_whitespace().map(str::to_owned).collect();
    match argv.first() {
        None => Ok(argv),
        Some(program) if program.starts_with('/') => Ok(argv),
        Some(program) => Err(format!(
            "{program:?} must be an absolute path (the command runs with no PATH)"
        )),
    }
}

fn boolean(value: &str) -> Result<bool, String> {
    match value {
        "yes" | "true" | "1" => Ok(true),
        "no" | "false" | "0" => Ok(false),
        _ => Err(format!("must be yes or no, not {value:?}")),
    }
}

fn names(value: &str) -> Vec<String> {
    value
        .split([' ', ',', '\t'])
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::HashParams;

    fn parse(text: &str) -> Result<Policy, Error> {
        parse_policy(Path::new("/etc/apppw/apppw.conf"), text)
    }

    #[test]
    fn the_default_file_gives_the_defaults() {
        assert_eq!(parse(DEFAULT_CONFIG_TEXT).unwrap(), Policy::default());
    }

    #[test]
    fn the_packaged_file_is_the_one_init_writes() {
        assert_eq!(
            include_str!("../../packaging/apppw.conf"),
            DEFAULT_CONFIG_TEXT
        );
    }

    #[test]
    fn every_key_is_read() {
        let p = parse(
            "max_active_codes = 5\nallowed_users = alice, bob\nallowed_groups = mail\n\
             argon2_memory_kib = 47104 # 46 MiB\nargon2_iterations=1\nargon2_parallelism = 2\nreauthenticate = no\n\
             allowed_services = imap smtp\nmax_lifetime = 365d\nexpire_unused = 90d\n\
             revoke_hook = /usr/bin/doveadm auth cache flush %u\nrevoke_on_password_change = yes\n",
        )
        .unwrap();
        assert_eq!(p.max_active_codes, 5);
        assert_eq!(p.allowed_users, ["alice", "bob"]);
        assert_eq!(p.allowed_groups, ["mail"]);
        assert_eq!(
            p.hash_params,
            HashParams {
                memory_kib: 47104,
                iterations: 1,
                parallelism: 2
            }
        );
        assert!(!p.reauthenticate);
        assert_eq!(p.allowed_services, ["imap", "smtp"]);
        assert_eq!(p.max_lifetime, Some(365 * 86_400));
        assert_eq!(p.expire_unused, Some(90 * 86_400));
        assert!(p.revoke_on_password_change);
        assert_eq!(
            p.revoke_hook,
            ["/usr/bin/doveadm", "auth", "cache", "flush", "%u"]
        );
    }

    #[test]
    fn mistakes_name_file_line_and_key() {
        for (text, line, key) in [
            ("max_active_codes = lots", 1, "max_active_codes"),
            ("\n\nmax_codes = 3", 3, "max_codes"),
            ("reauthenticate = maybe", 1, "reauthenticate"),
            ("max_lifetime = 90", 1, "max_lifetime"),
            ("revoke_hook = doveadm auth cache flush", 1, "revoke_hook"),
            ("allowed_services = imap apppw-ctl", 1, "allowed_services"),
            ("argon2_memory_kib = 12", 1, "argon2_memory_kib"),
            (
                "max_active_codes = 1\nmax_active_codes = 2",
                2,
                "max_active_codes",
            ),
        ] {
            match parse(text) {
                Err(Error::Config {
                    line: l, key: k, ..
                }) => assert_eq!((l, k.as_str()), (line, key), "{text:?}"),
                other => panic!("{text:?}: {other:?}"),
            }
        }
        assert!(matches!(
            parse("\njust words"),
            Err(Error::ConfigSyntax { line: 2, .. })
        ));
        let message = parse("\nbogus = 1").unwrap_err().to_string();
        assert!(
            message.starts_with("/etc/apppw/apppw.conf:2: bogus: "),
            "{message}"
        );
    }
}
