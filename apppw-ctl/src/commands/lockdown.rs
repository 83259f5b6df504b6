//! `apppw-ctl lockdown USER` (root): the one command for "this account may be compromised".
//! Revokes every active code under the name, whichever account made it (a deleted one's too),
//! runs `revoke_hook` so caching servers forget them, and shows where each code was used
//! recently: when, which service, from which address. The name need not exist any more.
#![forbid(unsafe_code)]

use apppw_core::store::UseEntry;
use apppw_core::{RevokeScope, escape_text, timefmt};
use clap::Args;
use serde::Serialize;

use super::open_store;
use crate::audit_log;
use crate::context::Context;
use crate::error::CtlError;
use crate::output::{CodeView, UseView, quote};

#[derive(Args)]
pub struct LockdownArgs {
    /// The user name whose app passwords are revoked (an account that was deleted too)
    // Not `user`: clap would take it for the global `--user` (same argument id).
    #[arg(value_name = "USER")]
    pub account: String,
}

#[derive(Serialize)]
struct LockedView<'a> {
    user: &'a str,
    revoked: Vec<LockedCode<'a>>,
}

#[derive(Serialize)]
struct LockedCode<'a> {
    #[serde(flatten)]
    code: CodeView<'a>,
    uses: Vec<UseView<'a>>,
}

pub fn run(ctx: &Context, args: &LockdownArgs) -> Result<(), CtlError> {
    ctx.require_root("lockdown")?;
    let user = args.account.as_str();
    let (revoked, uses) = {
        let mut store = open_store(ctx, false)?;
        let revoked = store.revoke_all(RevokeScope::Name(user), "locked down", &ctx.changer())?;
        let uses: Vec<Vec<UseEntry>> = revoked
            .iter()
            .map(|code| store.uses(code.id))
            .collect::<Result<_, _>>()?;
        (revoked, uses)
    };
    for code in &revoked {
        audit_log::record(ctx, "locked down", code.id, &code.label, &code.user);
    }
    // `main` runs revoke_hook once the store is closed, even when nothing was active: a
    // caching server may still hold a code revoked a moment before.
    ctx.revoked_codes_of(user);
    if ctx.out.json() {
        return ctx.out.value(&LockedView {
            user,
            revoked: revoked
                .iter()
                .zip(&uses)
                .map(|(code, uses)| LockedCode {
                    code: CodeView::from(code),
                    uses: uses.iter().map(UseView::from).collect(),
                })
                .collect(),
        });
    }
    let mut text = format!(
        "Locked down {}: {} active app passwords revoked.\n",
        escape_text(user),
        revoked.len()
    );
    for (code, uses) in revoked.iter().zip(&uses) {
        text.push_str(&format!(
            "\n{} {} (created {}):\n",
            code.id,
            quote(&code.label),
            timefmt::human(code.created)
        ));
        text.push_str(&crate::output::uses_table(uses));
    }
    text.push_str(
        "\nThe account password is unchanged: change it too if it may be known (`passwd`).\n",
    );
    ctx.out.text(&text)
}
