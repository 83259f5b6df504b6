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

use apppw_core::secure_path::check_store_path;
use apppw_core::{Access, Store};

use crate::context::Context;
use crate::error::CtlError;

/// Opens the store after checking its directory and file. Only root may create a missing store
/// (`init`, or `new` as root); anyone else is told to ask root to run `apppw-ctl init`.
fn open_store(ctx: &Context, create: bool) -> Result<Store, CtlError> {
    check_store_path(&ctx.store_path).map_err(apppw_core::Error::UnsafePath)?;
    let create = create && ctx.caller.is_root();
    Ok(Store::open(&ctx.store_path, Access::Manage { create })?)
}
