//! One module per subcommand, each with its clap arguments and a `run`.
#![forbid(unsafe_code)]

pub mod audit;
pub mod completions;
pub mod edit;
pub mod init;
pub mod limits;
pub mod list;
pub mod lockdown;
pub mod migrate;
pub mod new;
pub mod password_changed;
pub mod prune;
pub mod rename;
pub mod revoke;

use apppw_core::accounts::SystemAccounts;
use apppw_core::{Access, Store, escape_text};

use crate::context::Context;
use crate::error::CtlError;

/// Opens the store store.conf names (`Context::store_target`; an SQLite file's directory and file
/// are checked by `Store::open`). Only root may create a missing SQLite store (`init`, or `new`
/// as root); anyone else is told to ask root to run `apppw-ctl init`. A PostgreSQL store is made
/// by `init --admin-url` only.
///
/// This is the only way to the store, and it first becomes the `apppw` account for good
/// (`privilege.rs`): from here on the caller can neither stop nor slow the process. The syslog
/// socket is connected before the store opens, so a change is never made without it when it can
/// be had. Callers print nothing and read nothing while the store is open: output goes to
/// `ctx.out`, which `main` writes once the command has returned and dropped its store.
///
/// Only root's runs upgrade an older schema, and they then bind codes from before schema 5 to
/// the uid their owner's name has now (`Store::bind_unowned`), saying so on stderr; a name the
/// user database cannot answer for stays unbound (its codes refused) until a later run.
pub fn open_store(ctx: &Context, create: bool) -> Result<Store, CtlError> {
    crate::privilege::become_store_account(ctx.caller.uid)?;
    crate::audit_log::connect();
    let root = ctx.caller.is_root();
    let access = Access::Manage {
        create: create && root,
        upgrade: root,
    };
    let mut store = Store::open_target(&ctx.store_target()?, access)?;
    if root {
        bind_unowned(ctx, &mut store);
    }
    Ok(store)
}

/// Binds codes from before schema 5 and tells root what was done.
fn bind_unowned(ctx: &Context, store: &mut Store) {
    let outcome = match store.bind_unowned(&SystemAccounts, &ctx.changer()) {
        Ok(outcome) => outcome,
        Err(e) => {
            ctx.note(&format!(
                "could not bind older app passwords to their accounts yet ({e}); they are refused until a later run can"
            ));
            return;
        }
    };
    for binding in outcome.bound {
        ctx.note(&match binding.uid {
            Some(uid) => format!(
                "upgraded: {} app passwords of {} are now bound to uid {uid}, the account the name has now (pam_apppw(8), ACCOUNTS)",
                binding.codes,
                escape_text(&binding.user)
            ),
            None => format!(
                "upgraded: {} app passwords of {} belong to no account (the name resolves to none) and will never log in; `apppw-ctl audit --orphans` lists them",
                binding.codes,
                escape_text(&binding.user)
            ),
        });
    }
    for (user, why) in outcome.postponed {
        ctx.note(&format!(
            "could not bind the older app passwords of {} to an account yet ({why}); they are refused until a later run as root can",
            escape_text(&user)
        ));
    }
}
