//! Who is asking, about whom, and where the store is. Identity comes from the real uid, never from
//! the environment; every override of whom or where is for root only. This is the one place where
//! those privilege decisions are made.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use apppw_core::{DEFAULT_STORE_PATH, Policy};
use nix::unistd::{Uid, User, getuid};

use crate::cli::GlobalArgs;
use crate::error::CtlError;
use crate::output::Output;

/// Everything a command needs to run.
pub struct Context {
    /// Whose codes the command works on: the caller, or for root the `--user` given.
    pub user: String,
    pub store_path: PathBuf,
    pub policy: Policy,
    /// Unix seconds, read once.
    pub now: i64,
    pub out: Output,
}

impl Context {
    pub fn resolve(global: &GlobalArgs) -> Result<Context, CtlError> {
        let uid = getuid();
        let is_root = uid.is_root();
        if !is_root {
            if global.db.is_some() {
                return Err(CtlError::RootOnly { option: "--db" });
            }
            if global.user.is_some() {
                return Err(CtlError::RootOnly { option: "--user" });
            }
        }
        let user = match &global.user {
            Some(name) => match User::from_name(name) {
                Ok(Some(user)) => user.name,
                Ok(None) => return Err(CtlError::NoSuchUser(name.clone())),
                Err(e) => return Err(CtlError::UserLookup(e.to_string())),
            },
            None => caller_name(uid)?,
        };
        Ok(Context {
            user,
            store_path: global
                .db
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_STORE_PATH)),
            policy: Policy::default(),
            now: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0),
            out: Output::new(global.json),
        })
    }
}

fn caller_name(uid: Uid) -> Result<String, CtlError> {
    match User::from_uid(uid) {
        Ok(Some(user)) => Ok(user.name),
        Ok(None) => Err(CtlError::UnknownCaller(uid.as_raw())),
        Err(e) => Err(CtlError::UserLookup(e.to_string())),
    }
}
