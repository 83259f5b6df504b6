//! `apppw-ctl edit ID [--label L] [--service S]... [--from NET]... [--expires WHEN]` and the
//! `--any-service`, `--any-network`, `--no-expiry` that lift a limit. Narrowing takes effect on
//! the next login. Widening a code (a service or network added, a limit lifted, the expiry moved
//! later) lets it do what it could not, which is as sensitive as minting one: it asks for the
//! account password like `new`. Narrowing does not.
#![forbid(unsafe_code)]

use apppw_core::scope::Scope;
use apppw_core::{CodeRef, Edit, Label};
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

impl EditArgs {
    fn changes_limits(&self) -> bool {
        self.any_service
            || self.any_network
            || self.no_expiry
            || !self.limits.services.is_empty()
            || !self.limits.networks.is_empty()
            || self.limits.expires.is_some()
    }

    /// The limits this edit asks for, on top of the code's current ones.
    fn new_scope(&self, ctx: &Context, current: &Scope, created: i64) -> Result<Scope, CtlError> {
        let mut base = current.clone();
        if self.any_service {
            base.services.clear();
        }
        if self.any_network {
            base.networks.clear();
        }
        if self.no_expiry {
            base.expires = None;
        }
        settle(ctx, self.limits.apply(base, ctx.now)?, created)
    }
}

pub fn run(ctx: &Context, args: &EditArgs) -> Result<(), CtlError> {
    let which = CodeRef::parse(&args.id)?;
    let label = args.label.as_deref().map(Label::new).transpose()?;
    let asks_password = !ctx.caller.is_root() && ctx.policy.reauthenticate;
    let edited = if args.changes_limits() {
        // Read the code, decide, ask for the password (as the caller) if the edit widens, then
        // apply it only if nobody changed the code meanwhile. Whoever may be asked reads through
        // a helper that becomes the store account, so this process stays the caller for PAM.
        let (id, current, created) = if asks_password {
            peek_scope(ctx, &which)?
        } else {
            let code = open_store(ctx, false)?.find(ctx.owner(), &which)?;
            (code.id, code.scope, code.created)
        };
        // From here on the code is the one read, by id: a label swapped meanwhile cannot make
        // the edit land on another code.
        let which = CodeRef::Id(id);
        let scope = args.new_scope(ctx, &current, created)?;
        if asks_password && scope.widens(&current) {
            crate::reauth::confirm_identity(ctx, crate::reauth::Purpose::Mint)?;
        }
        let change = Edit {
            label: label.as_ref(),
            scope: Some(&scope),
            expected_scope: Some(&current),
        };
        let edited = open_store(ctx, false)?.edit(ctx.owner(), &which, &change, &ctx.changer())?;
        // A narrower code must stop working in servers' login caches too, as a revoked one
        // does: `main` runs revoke_hook once the store is closed.
        if current.widens(&scope) {
            ctx.revoked_codes_of(&ctx.user);
        }
        edited
    } else {
        let change = Edit {
            label: label.as_ref(),
            ..Edit::default()
        };
        open_store(ctx, false)?.edit(ctx.owner(), &which, &change, &ctx.changer())?
    };
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

/// The id, current limits and creation time of the caller's code `which`, read by a helper
/// process.
fn peek_scope(ctx: &Context, which: &CodeRef) -> Result<(i64, Scope, i64), CtlError> {
    fn optional(s: &str) -> Option<&str> {
        (!s.is_empty()).then_some(s)
    }
    let text = crate::privilege::read_as_store_account(|| {
        let code = open_store(ctx, false)?.find(ctx.owner(), which)?;
        Ok(format!(
            "{}\n{}\n{}\n{}\n{}\n",
            code.id,
            code.created,
            code.scope.services_column().unwrap_or_default(),
            code.scope.networks_column().unwrap_or_default(),
            code.scope
                .expires
                .map(|t| t.to_string())
                .unwrap_or_default(),
        ))
    })?;
    let damaged = || CtlError::Helper("the helper process sent a damaged answer".into());
    let lines: Vec<&str> = text.split('\n').collect();
    let [id, created, services, networks, expires, ..] = lines[..] else {
        return Err(damaged());
    };
    let expires = optional(expires)
        .map(str::parse::<i64>)
        .transpose()
        .map_err(|_| damaged())?;
    let scope = Scope::from_columns(optional(services), optional(networks), expires)
        .map_err(|_| damaged())?;
    Ok((
        id.parse().map_err(|_| damaged())?,
        scope,
        created.parse().map_err(|_| damaged())?,
    ))
}
