//! Who owns a user name now. A code remembers the uid its owner's name had when it was made; a
//! login and `audit --orphans` ask again, so that a deleted account's codes never serve an account
//! that got the same name later. The module and apppw-ctl ask the system (NSS: files, LDAP, SSSD);
//! tests give a table.
#![forbid(unsafe_code)]

use crate::error::Error;

pub trait Accounts {
    /// The uid `name` resolves to now, or `None` when it names no account. An error means the
    /// user database could not be asked (an outage, not an answer).
    fn uid_of(&self, name: &str) -> Result<Option<u32>, Error>;
}

/// The system's user database, through the C library (getpwnam_r).
pub struct SystemAccounts;

impl Accounts for SystemAccounts {
    fn uid_of(&self, name: &str) -> Result<Option<u32>, Error> {
        nix::unistd::User::from_name(name)
            .map(|user| user.map(|u| u.uid.as_raw()))
            .map_err(|e| Error::AccountLookup {
                user: name.into(),
                reason: e.to_string(),
            })
    }
}
