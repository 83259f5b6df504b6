//! The authentication path, start to finish, as the PAM module runs it: open the store, normalize
//! the token, find the (at most one, in practice) active code with the token's lookup tag, verify
//! it with Argon2id, and record the use. Everything the module knows about PAM stays in the
//! module; everything it decides is here.
#![forbid(unsafe_code)]

use std::path::Path;

use crate::code::AppPassword;
use crate::error::Error;
use crate::hash::verify_code;
use crate::policy::Policy;
use crate::scope::Limit;
use crate::secure_path::check_store_path;
use crate::store::{Access, Store, UseRecord};

/// The PAM service of `apppw-ctl`'s own re-authentication. An app password is never accepted
/// there, so a leaked code cannot be used to mint more.
pub const CTL_SERVICE: &str = "apppw-ctl";

/// Successful uses of one code closer together than this are recorded once.
pub const RECORD_INTERVAL_SECS: i64 = 60;

/// What the PAM module hands over about one attempt.
pub struct LoginAttempt<'a> {
    /// PAM_USER as given (not necessarily UTF-8).
    pub user: &'a [u8],
    /// PAM_AUTHTOK as given.
    pub token: &'a [u8],
    pub service: Option<&'a str>,
    pub rhost: Option<&'a str>,
    /// Unix seconds.
    pub now: i64,
}

/// The verdict on an attempt that could be checked.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    Accepted {
        id: i64,
        label: String,
        /// Whether the last-use record was written now (false within the record interval or
        /// when the write failed; a failed bookkeeping write never fails a login).
        recorded: Result<bool, String>,
    },
    Rejected(Rejection),
}

/// Why an attempt was refused. None of these carries any part of the token.
#[derive(Debug, PartialEq, Eq, Clone)]
pub enum Rejection {
    /// The token does not normalize to a code (wrong length, foreign characters, empty).
    NotACode,
    /// The user name is not valid UTF-8 or is empty, so no code can belong to it.
    BadUser,
    /// No active code of this user matches.
    NoMatch,
    /// The service is apppw-ctl itself.
    ServiceRefused,
    /// The site policy does not allow app passwords for this service.
    ServiceNotAllowed,
    /// The code matched but one of its limits (or the policy's expiry of unused codes) refused
    /// this login.
    Limited {
        id: i64,
        label: String,
        limit: Limit,
    },
}

impl Rejection {
    pub fn describe(&self) -> &'static str {
        match self {
            Rejection::NotACode => "the password is not shaped like an app password",
            Rejection::BadUser => "the user name cannot hold app passwords",
            Rejection::NoMatch => "no active app password of the user matches",
            Rejection::ServiceRefused => {
                "app passwords are never accepted by the apppw-ctl service"
            }
            Rejection::ServiceNotAllowed => Limit::ServiceNotAllowed.describe(),
            Rejection::Limited { limit, .. } => limit.describe(),
        }
    }
}

/// Checks one attempt against the store at `store_path` under `policy`. An error means the store
/// could not be consulted (missing, unreadable, damaged): the caller must fail the login, not
/// accept it.
pub fn check_login(
    store_path: &Path,
    policy: &Policy,
    attempt: &LoginAttempt<'_>,
) -> Result<Decision, Error> {
    // The store is opened first, whatever the token, so that a broken store is reported the same
    // way for every attempt and a wrong code costs the same as a malformed one.
    check_store_path(store_path)?;
    let store = Store::open(store_path, Access::Login)?;
    if attempt.service == Some(CTL_SERVICE) {
        return Ok(Decision::Rejected(Rejection::ServiceRefused));
    }
    if !policy.allows_service(attempt.service) {
        return Ok(Decision::Rejected(Rejection::ServiceNotAllowed));
    }
    let user = match std::str::from_utf8(attempt.user) {
        Ok(user) if !user.is_empty() => user,
        _ => return Ok(Decision::Rejected(Rejection::BadUser)),
    };
    let Some(code) = AppPassword::parse(attempt.token) else {
        return Ok(Decision::Rejected(Rejection::NotACode));
    };
    for candidate in store.candidates(user, code.lookup_tag())? {
        if verify_code(&code, &candidate.hash)? {
            // Limits are checked only once the code is proven, so only its holder learns why a
            // login was refused.
            let limit = match candidate
                .scope
                .check(attempt.service, attempt.rhost, attempt.now)
            {
                Err(limit) => Some(limit),
                Ok(()) => policy
                    .expire_unused
                    .filter(|max| {
                        attempt.now - candidate.last_used.unwrap_or(candidate.created) >= *max
                    })
                    .map(|_| Limit::Unused),
            };
            if let Some(limit) = limit {
                return Ok(Decision::Rejected(Rejection::Limited {
                    id: candidate.id,
                    label: candidate.label,
                    limit,
                }));
            }
            let record = UseRecord {
                now: attempt.now,
                service: attempt.service,
                rhost: attempt.rhost,
                min_interval: RECORD_INTERVAL_SECS,
            };
            let recorded = store
                .record_use(candidate.id, &record)
                .map_err(|e| e.to_string());
            return Ok(Decision::Accepted {
                id: candidate.id,
                label: candidate.label,
                recorded,
            });
        }
    }
    Ok(Decision::Rejected(Rejection::NoMatch))
}
