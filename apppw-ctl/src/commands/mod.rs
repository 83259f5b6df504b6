//! One module per subcommand, each with its clap arguments and a `run`.
#![forbid(unsafe_code)]

pub mod list;
pub mod new;
pub mod rename;
pub mod revoke;

use apppw_core::{Access, Store};

use crate::context::Context;
use crate::error::CtlError;

/// Opens the store for a command that changes it; `create` for the command that may be the first
/// ever run on a host (`new`).
fn open_store(ctx: &Context, create: bool) -> Result<Store, CtlError> {
    Ok(Store::open(&ctx.store_path, Access::Manage { create })?)
}
