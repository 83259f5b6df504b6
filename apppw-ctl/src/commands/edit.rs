//! `apppw-ctl edit ID [--label L] [--service S]... [--from NET]... [--expires WHEN]` and the
//! `--any-service`, `--any-network`, `--no-expiry` that lift a limit. Narrowing takes effect on
//! the next login.
#![forbid(unsafe_code)]

use apppw_core::{CodeRef, Label};
use clap::Args;

use super::limits::{LimitArgs, settle};
use super::open_store;
use crate::audit_log;
use crate::context::Context;
use crate::error::CtlError;
use crate::output::{CodeView, quote};

#[derive(Args)]
pub struct EditArgs {
    /// Id of the app password (as `list` shows it), or its label
    pub id: String,
    /// A new label
    #[arg(long)]
    pub label: Option<String>,
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Let it work for any service again
    #[arg(long, conflicts_with = "services")]
    pub any_service: bool,
    /// Let it work from any network again
    #[arg(long, conflicts_with = "networks")]
    pub any_network: bool,
    /// Remove its expiry (within the site's maximum lifetime)
    #[arg(long, conflicts_with = "expires")]
    pub no_expiry: bool,
}

pub fn run(ctx: &Context, args: &EditArgs) -> Result<(), CtlError> {
    let which = CodeRef::parse(&args.id)?;
    let label = args.label.as_deref().map(Label::new).transpose()?;
    let mut store = open_store(ctx, false)?;
    let current = store
        .list(&ctx.user, false)?
        .into_iter()
        .find(|c| match &which {
            CodeRef::Id(id) => c.id == *id,
            CodeRef::Label(l) => c.label == l.as_str(),
        });
    let scope = match current {
        Some(code) => {
            let mut base = code.scope.clone();
            if args.any_service {
                base.services.clear();
            }
            if args.any_network {
                base.networks.clear();
            }
            if args.no_expiry {
                base.expires = None;
            }
            Some(settle(
                ctx,
                args.limits.apply(base, ctx.now)?,
                code.created,
            )?)
        }
        // Not one of the caller's active codes: `edit` below reports it in the usual words.
        None => None,
    };
    let edited = store.edit(&ctx.user, &which, label.as_ref(), scope.as_ref())?;
    audit_log::record(ctx, "edited", edited.id, &edited.label, &edited.user);
    if ctx.out.json() {
        ctx.out.value(&CodeView::from(&edited))
    } else {
        ctx.out.text(&format!(
            "Updated app password {} ({}): {}.\n",
            edited.id,
            quote(&edited.label),
            super::limits::describe(&edited)
        ))
    }
}
