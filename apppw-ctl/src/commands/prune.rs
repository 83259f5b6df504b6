//! `apppw-ctl prune [--older-than 90d]`: delete the records of revoked codes (root only). Their
//! hashes were wiped at revocation; this removes what is left for the audit trail.
#![forbid(unsafe_code)]

use apppw_core::accounts::SystemAccounts;
use apppw_core::duration::parse_duration;
use clap::Args;
use serde::Serialize;

use super::open_store;
use crate::audit_log;
use crate::context::Context;
use crate::error::CtlError;

#[derive(Args)]
pub struct PruneArgs {
    /// Only codes revoked at least this long ago (e.g. 90d); default: every revoked code
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub older_than: Option<i64>,
    /// Instead, delete every code whose owner's account is gone (as `audit --orphans` lists)
    #[arg(long, conflicts_with = "older_than")]
    pub orphans: bool,
}

#[derive(Serialize)]
struct PrunedView {
    pruned: usize,
}

pub fn run(ctx: &Context, args: &PruneArgs) -> Result<(), CtlError> {
    ctx.require_root("prune")?;
    if args.orphans {
        let pruned = open_store(ctx, false)?.prune_orphans(&SystemAccounts, &ctx.changer())?;
        audit_log::record_text(
            ctx,
            &format!("pruned {} app passwords of deleted accounts", pruned.len()),
        );
        if !ctx.out.json() {
            ctx.out.text(&format!(
                "Deleted {} app passwords of accounts that are gone:\n",
                pruned.len()
            ))?;
        }
        return super::audit::show_orphans(ctx, &pruned);
    }
    let cutoff = ctx.now - args.older_than.unwrap_or(0);
    let pruned = open_store(ctx, false)?.prune(cutoff, &ctx.changer())?;
    audit_log::record_text(ctx, &format!("pruned {pruned} revoked app passwords"));
    if ctx.out.json() {
        ctx.out.value(&PrunedView { pruned })
    } else {
        ctx.out
            .text(&format!("Pruned {pruned} revoked app passwords.\n"))
    }
}
