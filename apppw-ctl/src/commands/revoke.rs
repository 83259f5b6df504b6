//! `apppw-ctl revoke ID|LABEL` and `apppw-ctl revoke --all`: stop app passwords from working. When
//! this returns, the revocation is on disk (fsynced) and every later login refuses the code.
#![forbid(unsafe_code)]

use apppw_core::CodeRef;
use clap::{ArgGroup, Args};
use serde::Serialize;

use super::open_store;
use crate::context::Context;
use crate::error::CtlError;
use crate::output::{CodeView, quote};

#[derive(Args)]
#[command(group(ArgGroup::new("which").required(true).args(["target", "all"])))]
pub struct RevokeArgs {
    /// Id of the app password (as `list` shows it), or its label
    pub target: Option<String>,
    /// Revoke every active app password
    #[arg(long)]
    pub all: bool,
}

#[derive(Serialize)]
struct RevokedView<'a> {
    revoked: Vec<CodeView<'a>>,
}

pub fn run(ctx: &Context, args: &RevokeArgs) -> Result<(), CtlError> {
    let which = args.target.as_deref().map(CodeRef::parse).transpose()?;
    let mut store = open_store(ctx, false)?;
    let revoked = match &which {
        Some(which) => vec![store.revoke(&ctx.user, which, ctx.now)?],
        None => store.revoke_all(&ctx.user, ctx.now)?,
    };
    if ctx.out.json() {
        return ctx.out.value(&RevokedView {
            revoked: revoked.iter().map(CodeView::from).collect(),
        });
    }
    if revoked.is_empty() {
        return ctx
            .out
            .text("There were no active app passwords to revoke.\n");
    }
    let mut text = String::new();
    for code in &revoked {
        text.push_str(&format!(
            "Revoked app password {} ({}). It no longer works.\n",
            code.id,
            quote(&code.label)
        ));
    }
    ctx.out.text(&text)
}
