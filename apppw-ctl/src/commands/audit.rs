//! `apppw-ctl audit`: every user's app passwords with when, how and from where each was last
//! used, never-used and stalest first, so codes nobody uses any more stand out (root only).
#![forbid(unsafe_code)]

use apppw_core::accounts::SystemAccounts;
use apppw_core::duration::parse_duration;
use apppw_core::store::Orphan;
use apppw_core::{CodeInfo, EventsAbout, escape_text, timefmt};
use clap::Args;
use serde::Serialize;

use super::limits;
use super::open_store;
use crate::context::Context;
use crate::error::CtlError;
use crate::output::{CodeView, describe_last_use, table};

#[derive(Args)]
pub struct AuditArgs {
    /// Only active codes not used for this long (e.g. 90d), never-used ones included
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub unused_for: Option<i64>,
    /// Only active codes that were never used
    #[arg(long)]
    pub never_used: bool,
    /// Show the trail of recorded changes (the newest 200) instead of the codes
    #[arg(long, conflicts_with_all = ["unused_for", "never_used", "orphans"])]
    pub events: bool,
    /// Only codes whose owner's account is gone: the name was deleted or now names another uid
    #[arg(long, conflicts_with_all = ["unused_for", "never_used"])]
    pub orphans: bool,
}

pub fn run(ctx: &Context, args: &AuditArgs) -> Result<(), CtlError> {
    ctx.require_root("audit")?;
    // `--user` narrows the audit to one user; without it, root sees everyone.
    let only_user = ctx.user_was_given.then_some(ctx.user.as_str());
    if args.events {
        let about = only_user.map_or(EventsAbout::Everyone, EventsAbout::Name);
        let events = open_store(ctx, false)?.events(about, super::list::EVENTS_SHOWN)?;
        return crate::output::show_events(&ctx.out, &events, true);
    }
    if args.orphans {
        return show_orphans(ctx, &open_store(ctx, false)?.orphans(&SystemAccounts)?);
    }
    let store = open_store(ctx, false)?;
    let filtering = args.never_used || args.unused_for.is_some();
    let shown = |c: &CodeInfo| {
        let active = c.revoked.is_none();
        let last = c.last_used.as_ref().map(|u| u.time);
        !filtering
            || (active
                && match (args.never_used, args.unused_for) {
                    (true, _) => last.is_none(),
                    (false, Some(age)) => last.is_none_or(|t| t <= ctx.now - age),
                    (false, None) => true,
                })
    };
    // Each code is turned into output as it is read, never all held at once: a million codes
    // are some 200 MB of JSON, and holding the rows and their views too took a second more.
    if ctx.out.json() {
        let mut list = ctx.out.json_list();
        store.audit_each(only_user, |code| {
            if shown(&code) {
                list.push(&CodeView::from(&code))?;
            }
            Ok::<(), CtlError>(())
        })?;
        list.finish();
        return Ok(());
    }
    let mut rows: Vec<Vec<String>> = Vec::new();
    store.audit_each(only_user, |c| {
        if shown(&c) {
            rows.push(vec![
                escape_text(&c.user).into_owned(),
                c.id.to_string(),
                escape_text(&c.label).into_owned(),
                timefmt::human(c.created),
                c.use_count.to_string(),
                limits::describe(&c),
                match c.revoked {
                    Some(t) => format!(
                        "revoked {} by {}",
                        timefmt::human(t),
                        escape_text(c.revoked_by.as_deref().unwrap_or("?"))
                    ),
                    None => describe_last_use(&c),
                },
            ]);
        }
        Ok::<(), CtlError>(())
    })?;
    drop(store);
    if rows.is_empty() {
        return ctx.out.text("No app passwords match.\n");
    }
    let table = table(
        &[
            "USER",
            "ID",
            "LABEL",
            "CREATED",
            "USES",
            "LIMITS",
            "LAST USED",
        ],
        &rows,
        &[1, 4],
    );
    ctx.out.text(&table)
}

#[derive(Serialize)]
struct OrphanView<'a> {
    #[serde(flatten)]
    code: CodeView<'a>,
    /// The uid the code was made for (`null`: never bound, -1: no account at binding).
    owner_uid: Option<i64>,
    /// The uid the name has now (`null`: no account).
    uid_now: Option<u32>,
}

/// `audit --orphans` (and what `prune --orphans` deleted).
pub fn show_orphans(ctx: &Context, orphans: &[Orphan]) -> Result<(), CtlError> {
    if ctx.out.json() {
        let views: Vec<OrphanView<'_>> = orphans
            .iter()
            .map(|o| OrphanView {
                code: CodeView::from(&o.code),
                owner_uid: o.code.owner_uid,
                uid_now: o.now_uid,
            })
            .collect();
        return ctx.out.value(&views);
    }
    if orphans.is_empty() {
        return ctx
            .out
            .text("Every app password belongs to the account its name has now.\n");
    }
    let rows: Vec<Vec<String>> = orphans
        .iter()
        .map(|o| {
            vec![
                escape_text(&o.code.user).into_owned(),
                o.code.id.to_string(),
                escape_text(&o.code.label).into_owned(),
                match o.code.owner_uid {
                    Some(apppw_core::schema::NO_ACCOUNT) | None => "none".into(),
                    Some(uid) => uid.to_string(),
                },
                o.now_uid.map_or("none (deleted)".into(), |u| u.to_string()),
                if o.code.revoked.is_some() {
                    "revoked"
                } else {
                    "active"
                }
                .into(),
            ]
        })
        .collect();
    ctx.out.text(&table(
        &["USER", "ID", "LABEL", "MADE FOR UID", "UID NOW", "STATE"],
        &rows,
        &[1],
    ))
}
