//! `apppw-ctl rename ID LABEL`: change what an app password is called.
#![forbid(unsafe_code)]

use apppw_core::{CodeRef, Label};
use clap::Args;

use super::open_store;
use crate::audit_log;
use crate::context::Context;
use crate::error::CtlError;
use crate::output::{CodeView, quote};

#[derive(Args)]
pub struct RenameArgs {
    /// Id of the app password (as `list` shows it), or its current label
    pub id: String,
    /// The new label (1-64 characters)
    pub label: String,
}

pub fn run(ctx: &Context, args: &RenameArgs) -> Result<(), CtlError> {
    let which = CodeRef::parse(&args.id)?;
    let label = Label::new(&args.label)?;
    let renamed = open_store(ctx, false)?.rename(ctx.owner(), &which, &label, &ctx.changer())?;
    audit_log::record(ctx, "renamed", renamed.id, &renamed.label, &renamed.user);
    if ctx.out.json() {
        ctx.out.value(&CodeView::from(&renamed))
    } else {
        ctx.out.text(&format!(
            "Renamed app password {} to {}.\n",
            renamed.id,
            quote(&renamed.label)
        ))
    }
}
