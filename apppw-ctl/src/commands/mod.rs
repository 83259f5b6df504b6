//! One module per subcommand, each with its clap arguments and a `run`.
#![forbid(unsafe_code)]

pub mod audit;
pub mod completions;
pub mod edit;
pub mod init;
pub mod limits;
pub mod list;
pub mod new;
pub mod prune;
pub mod rename;
pub mod revoke;

use apppw_core::{Access, Store};

use crate::context::Context;
use crate::error::CtlError;

/// Opens the store (`Store::open` checks its directory and file). Only root may create a missing store
/// (`init`, or `new` as root); anyone else is told to ask root to run `apppw-ctl init`.
///
/// This is the only way to the store, and it first becomes the `apppw` account for good
/// (`privilege.rs`): from here on the caller can neither stop nor slow the process. The syslog
/// socket is connected before the store opens, so a change is never made without it when it can
/// be had. Callers print nothing and read nothing while the store is open: output goes to
/// `ctx.out`, which `main` writes once the command has returned and dropped its store.
pub fn open_store(ctx: &Context, create: bool) -> Result<Store, CtlError> {
    crate::privilege::become_store_account(ctx.caller.uid)?;
    crate::audit_log::connect();
    let create = create && ctx.caller.is_root();
    Ok(Store::open(&ctx.store_path, Access::Manage { create })?)
}
