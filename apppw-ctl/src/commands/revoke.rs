//! `apppw-ctl revoke ID|LABEL`, `revoke --all` and, for root, `revoke --all-users`: stop app
//! passwords from working. When this returns, the revocation is on disk (fsynced) and every later
//! login refuses the code.
#![forbid(unsafe_code)]

use apppw_core::{CodeRef, RevokeScope};
use clap::{ArgGroup, Args};
use serde::Serialize;

use super::open_store;
use crate::audit_log;
use crate::context::Context;
use crate::error::CtlError;
use crate::output::{CodeView, quote};

#[derive(Args)]
#[command(group(ArgGroup::new("which").required(true).args(["target", "all", "all_users"])))]
pub struct RevokeArgs {
    /// Id of the app password (as `list` shows it), or its label
    pub target: Option<String>,
    /// Revoke every active app password (of the user)
    #[arg(long)]
    pub all: bool,
    /// Revoke every active app password of every user (root only)
    #[arg(long)]
    pub all_users: bool,
}

#[derive(Serialize)]
struct RevokedView<'a> {
    revoked: Vec<CodeView<'a>>,
}

pub fn run(ctx: &Context, args: &RevokeArgs) -> Result<(), CtlError> {
    let which = args.target.as_deref().map(CodeRef::parse).transpose()?;
    if args.all_users {
        ctx.require_root("revoke --all-users")?;
    }
    if args.all {
        crate::reauth::confirm_identity(ctx, crate::reauth::Purpose::RevokeAll)?;
    }
    let revoked = {
        let mut store = open_store(ctx, false)?;
        let by = ctx.changer();
        match &which {
            Some(which) => vec![store.revoke(ctx.owner(), which, &by)?],
            None if args.all_users => store.revoke_all(RevokeScope::Everyone, "revoked", &by)?,
            None => store.revoke_all(RevokeScope::Owner(ctx.owner()), "revoked", &by)?,
        }
    };
    for code in &revoked {
        audit_log::record(ctx, "revoked", code.id, &code.label, &code.user);
        // `main` runs revoke_hook for each owner once the store is closed.
        ctx.revoked_codes_of(&code.user);
    }
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
        let owner = if args.all_users {
            format!(" of {}", apppw_core::escape_text(&code.user))
        } else {
            String::new()
        };
        text.push_str(&format!(
            "Revoked app password {} ({}){owner}. It no longer works.\n",
            code.id,
            quote(&code.label)
        ));
    }
    ctx.out.text(&text)
}
