//! `apppw-ctl password-changed USER`: what pam_apppw runs from the password stack after a
//! password change when the site sets `revoke_on_password_change = yes`. Revokes every active
//! code of USER's account and runs `revoke_hook`. USER must be the caller (who just changed their
//! own password with `passwd`) unless the caller is root (`passwd alice`, `chpasswd`). Running it
//! by hand revokes one's own codes like `revoke --all`; without the policy it refuses, so
//! `revoke --all` keeps asking for the password.
#![forbid(unsafe_code)]

use apppw_core::{Owner, RevokeScope};
use clap::Args;
use serde::Serialize;

use super::open_store;
use crate::audit_log;
use crate::context::{Context, lookup_user};
use crate::error::CtlError;
use crate::output::CodeView;

#[derive(Args)]
pub struct PasswordChangedArgs {
    /// Whose password changed (your own, unless you are root)
    // Not `user`: clap would take it for the global `--user` (same argument id).
    #[arg(value_name = "USER")]
    pub account: String,
}

#[derive(Serialize)]
struct RevokedView<'a> {
    revoked: Vec<CodeView<'a>>,
}

pub fn run(ctx: &Context, args: &PasswordChangedArgs) -> Result<(), CtlError> {
    if !ctx.policy.revoke_on_password_change {
        return Err(CtlError::PolicyOff {
            setting: "revoke_on_password_change",
            config: ctx.config_path.display().to_string(),
        });
    }
    let account = lookup_user(&args.account)?;
    let uid = account.uid.as_raw();
    if !ctx.caller.is_root() && uid != ctx.caller.uid {
        return Err(CtlError::RootOnly {
            option: "password-changed for another user",
        });
    }
    let owner = Owner {
        name: &account.name,
        uid,
    };
    let revoked = {
        let mut store = open_store(ctx, false)?;
        store.revoke_all(
            RevokeScope::Owner(owner),
            "revoked on password change",
            &ctx.changer(),
        )?
    };
    for code in &revoked {
        audit_log::record(
            ctx,
            "revoked on password change",
            code.id,
            &code.label,
            &code.user,
        );
    }
    ctx.revoked_codes_of(&account.name);
    if ctx.out.json() {
        return ctx.out.value(&RevokedView {
            revoked: revoked.iter().map(CodeView::from).collect(),
        });
    }
    ctx.out.text(&format!(
        "The password of {} changed: {} app passwords revoked.\n",
        apppw_core::escape_text(&account.name),
        revoked.len()
    ))
}
