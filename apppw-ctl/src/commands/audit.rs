//! `apppw-ctl audit`: every user's app passwords with when, how and from where each was last
//! used, never-used and stalest first, so codes nobody uses any more stand out (root only).
#![forbid(unsafe_code)]

use apppw_core::duration::parse_duration;
use apppw_core::{escape_text, timefmt};
use clap::Args;

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
    #[arg(long, conflicts_with_all = ["unused_for", "never_used"])]
    pub events: bool,
}

pub fn run(ctx: &Context, args: &AuditArgs) -> Result<(), CtlError> {
    ctx.require_root("audit")?;
    // `--user` narrows the audit to one user; without it, root sees everyone.
    let only_user = ctx.user_was_given.then_some(ctx.user.as_str());
    if args.events {
        let events = open_store(ctx, false)?.events(only_user, super::list::EVENTS_SHOWN)?;
        return crate::output::show_events(&ctx.out, &events, true);
    }
    let mut codes = open_store(ctx, false)?.audit(only_user)?;
    let filtering = args.never_used || args.unused_for.is_some();
    codes.retain(|c| {
        let active = c.revoked.is_none();
        let last = c.last_used.as_ref().map(|u| u.time);
        !filtering
            || (active
                && match (args.never_used, args.unused_for) {
                    (true, _) => last.is_none(),
                    (false, Some(age)) => last.is_none_or(|t| t <= ctx.now - age),
                    (false, None) => true,
                })
    });
    if ctx.out.json() {
        let views: Vec<CodeView<'_>> = codes.iter().map(CodeView::from).collect();
        return ctx.out.value(&views);
    }
    if codes.is_empty() {
        return ctx.out.text("No app passwords match.\n");
    }
    let rows: Vec<Vec<String>> = codes
        .iter()
        .map(|c| {
            vec![
                escape_text(&c.user).into_owned(),
                c.id.to_string(),
                escape_text(&c.label).into_owned(),
                timefmt::human(c.created),
                c.use_count.to_string(),
                limits::describe(c),
                match c.revoked {
                    Some(t) => format!(
                        "revoked {} by {}",
                        timefmt::human(t),
                        escape_text(c.revoked_by.as_deref().unwrap_or("?"))
                    ),
                    None => describe_last_use(c),
                },
            ]
        })
        .collect();
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
