//! `apppw-ctl new LABEL`: mint a code and show it once. A code that cannot be shown (stdout
//! closed at start, or writing it out failed) is never left active: it is refused before minting
//! or withdrawn after, and the exit status says so.
#![forbid(unsafe_code)]

use apppw_core::mint::{MintRequest, mint};
use apppw_core::scope::Scope;
use apppw_core::{Label, escape_text, timefmt};
use clap::Args;
use rand::TryRngCore;
use rand::rngs::OsRng;
use serde::Serialize;

use super::limits::{LimitArgs, settle};
use super::open_store;
use crate::audit_log;
use crate::context::Context;
use crate::error::CtlError;
use crate::output::quote;

#[derive(Args)]
pub struct NewArgs {
    /// What the app password is for, e.g. "Phone mail" (1-64 characters)
    pub label: String,
    #[command(flatten)]
    pub limits: LimitArgs,
}

#[derive(Serialize)]
struct NewView<'a> {
    id: i64,
    user: &'a str,
    label: &'a str,
    code: &'a str,
    created: String,
}

pub fn run(ctx: &Context, args: &NewArgs) -> Result<(), CtlError> {
    let label = Label::new(&args.label)?;
    let scope = settle(ctx, args.limits.apply(Scope::default(), ctx.now)?, ctx.now)?;
    ctx.check_may_create()?;
    if crate::startup::stdout_goes_nowhere() {
        return Err(CtlError::StdoutClosed);
    }
    crate::reauth::confirm_identity(ctx, crate::reauth::Purpose::Mint)?;
    // Fail before touching the store if the kernel's generator is unavailable; after this probe a
    // failure is practically impossible, and would abort rather than mint a weak code.
    let mut probe = [0u8; 1];
    OsRng
        .try_fill_bytes(&mut probe)
        .map_err(|e| CtlError::Random(e.to_string()))?;
    let mut rng = OsRng.unwrap_err();

    let minted = {
        let mut store = open_store(ctx, true)?;
        let request = MintRequest {
            owner: ctx.owner(),
            label: &label,
            scope: &scope,
        };
        mint(&mut store, &request, &ctx.policy, &ctx.changer(), &mut rng)?
    };
    audit_log::record(ctx, "created", minted.id, label.as_str(), &ctx.user);
    ctx.out.holds_new_code(minted.id);
    let shown = minted.code.display_grouped();
    if ctx.out.json() {
        ctx.out.value(&NewView {
            id: minted.id,
            user: &ctx.user,
            label: label.as_str(),
            code: &shown,
            created: timefmt::rfc3339(minted.created),
        })
    } else {
        ctx.out.text(&format!(
            "New app password for {}, label {} (id {}):\n\n    {}\n\n\
             Enter it in your mail client instead of your password. It will not be shown again.\n",
            escape_text(&ctx.user),
            quote(label.as_str()),
            minted.id,
            shown.as_str(),
        ))
    }
}

/// Takes back code `id`, whose only showing could not be written out, and reports why.
pub fn withdraw(ctx: &Context, id: i64, why: std::io::Error) -> Result<(), CtlError> {
    let withdrawn = {
        let mut store = open_store(ctx, false)?;
        store.withdraw(ctx.owner(), id, &ctx.changer())?
    };
    audit_log::record(
        ctx,
        "withdrew",
        withdrawn.id,
        &withdrawn.label,
        &withdrawn.user,
    );
    Err(CtlError::CodeNotShown(why))
}
