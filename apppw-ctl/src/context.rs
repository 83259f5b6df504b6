//! Who is asking, about whom, under which policy, and where the store is. Identity comes from the
//! real uid, never from the environment; every override of whom, where or which configuration is
//! for root only. This is the one place where those privilege decisions are made.
#![forbid(unsafe_code)]

use std::cell::RefCell;
use std::ffi::CString;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use apppw_core::config::{DEFAULT_CONFIG_PATH, load_policy};
use apppw_core::store::StoreTarget;
use apppw_core::store_config::{DEFAULT_STORE_CONFIG_PATH, StoreUser, resolve_store};
use apppw_core::{Changer, Owner, Policy};
use nix::unistd::{Group, User, getgrouplist, getuid};

use crate::cli::GlobalArgs;
use crate::error::CtlError;
use crate::output::Output;

/// The person running apppw-ctl, from the real uid.
pub struct Caller {
    pub uid: u32,
    pub name: String,
}

impl Caller {
    pub fn is_root(&self) -> bool {
        self.uid == 0
    }
}

/// How the caller confirms who they are before minting, revoking all or widening
/// (`reauth.rs`).
pub enum Confirmation {
    /// Through the PAM service apppw-ctl, on the caller's terminal.
    Terminal,
    /// In apppw-web: the web session's helper authenticated the user through the PAM service
    /// apppw-web this long ago (at sign-in, or when the page last asked for the password).
    Web { since: std::time::Duration },
}

/// Everything a command needs to run.
pub struct Context {
    pub caller: Caller,
    /// Whose codes the command works on: the caller, or for root the `--user` given.
    pub user: String,
    /// That account's uid: the store matches codes by name and uid (`Owner`).
    pub user_uid: u32,
    /// Whether root named the user with `--user` (audit then shows only that user).
    pub user_was_given: bool,
    /// Root's `--db`: this SQLite file, unless store.conf names a login store (then refused).
    pub db_override: Option<PathBuf>,
    /// store.conf (root may give another with `--store-conf`). It is read by `store_target`
    /// only once the process is the `apppw` account: it may hold a database password, so only
    /// root and that account can read it.
    pub store_conf: PathBuf,
    pub config_path: PathBuf,
    pub policy: Policy,
    /// Unix seconds, read once.
    pub now: i64,
    /// Where the caller sits: terminal and remote host (`origin.rs`).
    pub origin: String,
    pub out: Output,
    pub confirmation: Confirmation,
    /// Owners whose codes were revoked: `main` runs `revoke_hook` for each once the store is
    /// closed.
    pub revoked_owners: RefCell<Vec<String>>,
    /// Things to tell the caller on stderr once the command is done (`main` prints them).
    pub notes: RefCell<Vec<String>>,
}

impl Context {
    pub fn resolve(global: &GlobalArgs) -> Result<Context, CtlError> {
        let caller = current_caller()?;
        if !caller.is_root() {
            for (given, option) in [
                (global.db.is_some(), "--db"),
                (global.store_conf.is_some(), "--store-conf"),
                (global.user.is_some(), "--user"),
                (global.config.is_some(), "--config"),
            ] {
                if given {
                    return Err(CtlError::RootOnly { option });
                }
            }
        }
        let (user, user_uid) = match &global.user {
            Some(name) => {
                let account = lookup_user(name)?;
                (account.name, account.uid.as_raw())
            }
            None => (caller.name.clone(), caller.uid),
        };
        let config_path = global
            .config
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH));
        let policy = load_policy(&config_path)?;
        Ok(Context {
            caller,
            user,
            user_uid,
            user_was_given: global.user.is_some(),
            db_override: global.db.clone(),
            store_conf: global
                .store_conf
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_STORE_CONFIG_PATH)),
            config_path,
            policy,
            now: unix_now(),
            origin: crate::origin::describe(),
            out: Output::new(global.json),
            confirmation: Confirmation::Terminal,
            revoked_owners: RefCell::new(Vec::new()),
            notes: RefCell::new(Vec::new()),
        })
    }

    /// For a web session's child, which has become `user` (`privilege::act_for`): the caller is
    /// that user, with no overrides, exactly as when they run apppw-ctl themselves.
    pub fn for_web(
        user: &User,
        address: &str,
        since_confirmed: std::time::Duration,
    ) -> Result<Context, CtlError> {
        let config_path = PathBuf::from(DEFAULT_CONFIG_PATH);
        let policy = load_policy(&config_path)?;
        Ok(Context {
            caller: Caller {
                uid: user.uid.as_raw(),
                name: user.name.clone(),
            },
            user: user.name.clone(),
            user_uid: user.uid.as_raw(),
            user_was_given: false,
            db_override: None,
            store_conf: PathBuf::from(DEFAULT_STORE_CONFIG_PATH),
            config_path,
            policy,
            now: unix_now(),
            origin: format!("web from {address}"),
            out: Output::for_web(),
            confirmation: Confirmation::Web {
                since: since_confirmed,
            },
            revoked_owners: RefCell::new(Vec::new()),
            notes: RefCell::new(Vec::new()),
        })
    }

    /// The store apppw-ctl works on: root's `--db`, else store.conf's `manage_store`, else the
    /// default SQLite file.
    pub fn store_target(&self) -> Result<StoreTarget, CtlError> {
        Ok(resolve_store(
            self.db_override.as_deref(),
            &self.store_conf,
            StoreUser::Ctl,
        )?)
    }

    /// The account whose codes the command works on.
    pub fn owner(&self) -> Owner<'_> {
        Owner {
            name: &self.user,
            uid: self.user_uid,
        }
    }

    /// The caller as the store records a change: who, from where, when, and the daily cap that
    /// applies to them (none for root).
    pub fn changer(&self) -> Changer<'_> {
        Changer {
            uid: self.caller.uid,
            name: &self.caller.name,
            origin: &self.origin,
            // The clock now, not at start: a change is recorded when it is made.
            now: unix_now(),
            daily_cap: (!self.caller.is_root()).then_some(self.policy.max_changes_per_day),
        }
    }

    /// Keeps `note` for `main` to print on stderr after the command.
    pub fn note(&self, note: &str) {
        self.notes.borrow_mut().push(note.to_owned());
    }

    /// Notes that codes of `owner` were revoked, for `revoke_hook`.
    pub fn revoked_codes_of(&self, owner: &str) {
        let mut owners = self.revoked_owners.borrow_mut();
        if !owners.iter().any(|o| o == owner) {
            owners.push(owner.to_owned());
        }
    }

    /// Refuses commands that only root may run.
    pub fn require_root(&self, command: &'static str) -> Result<(), CtlError> {
        if self.caller.is_root() {
            Ok(())
        } else {
            Err(CtlError::RootOnlyCommand { command })
        }
    }

    /// Whether the policy lets the target user create codes (root may always).
    pub fn check_may_create(&self) -> Result<(), CtlError> {
        if self.caller.is_root() {
            return Ok(());
        }
        let user = lookup_user(&self.user)?;
        let name =
            CString::new(user.name.clone()).map_err(|e| CtlError::UserLookup(e.to_string()))?;
        let groups: Vec<String> = getgrouplist(&name, user.gid)
            .map_err(|e| CtlError::UserLookup(e.to_string()))?
            .into_iter()
            .filter_map(|gid| Group::from_gid(gid).ok().flatten().map(|g| g.name))
            .collect();
        if self.policy.may_create(&user.name, &groups) {
            Ok(())
        } else {
            Err(CtlError::NotAllowed {
                user: user.name,
                config: self.config_path.display().to_string(),
            })
        }
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn current_caller() -> Result<Caller, CtlError> {
    let uid = getuid();
    match User::from_uid(uid) {
        Ok(Some(user)) => Ok(Caller {
            uid: uid.as_raw(),
            name: user.name,
        }),
        Ok(None) => Err(CtlError::UnknownCaller(uid.as_raw())),
        Err(e) => Err(CtlError::UserLookup(e.to_string())),
    }
}

pub fn lookup_user(name: &str) -> Result<User, CtlError> {
    match User::from_name(name) {
        Ok(Some(user)) => Ok(user),
        Ok(None) => Err(CtlError::NoSuchUser(name.to_owned())),
        Err(e) => Err(CtlError::UserLookup(e.to_string())),
    }
}
