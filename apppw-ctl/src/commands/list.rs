//! `apppw-ctl list`: the caller's active app passwords (never the codes).
#![forbid(unsafe_code)]

use apppw_core::{EventsAbout, escape_text, timefmt};
use clap::Args;

use super::limits;
use super::open_store;
use crate::context::Context;
use crate::error::CtlError;
use crate::output::{CodeView, UseView, describe_last_use, quote, table};

#[derive(Args)]
pub struct ListArgs {
    /// Also show revoked app passwords
    #[arg(long, conflicts_with = "events")]
    pub revoked: bool,
    /// Show the recorded changes to your app passwords instead: who, when, from where
    #[arg(long, conflicts_with = "history")]
    pub events: bool,
    /// Show where app password ID was used recently instead: when, which service, from where
    #[arg(long, value_name = "ID")]
    pub history: Option<i64>,
}

/// How many of the newest events `--events` shows.
pub const EVENTS_SHOWN: u32 = 200;

pub fn run(ctx: &Context, args: &ListArgs) -> Result<(), CtlError> {
    if let Some(id) = args.history {
        let (code, uses) = {
            let store = open_store(ctx, false)?;
            let code = store.find_any(ctx.owner(), id)?;
            let uses = store.uses(code.id)?;
            (code, uses)
        };
        if ctx.out.json() {
            let views: Vec<UseView<'_>> = uses.iter().map(UseView::from).collect();
            return ctx.out.value(&views);
        }
        return ctx.out.text(&format!(
            "Recent uses of app password {} ({}), most recent first:\n{}",
            code.id,
            quote(&code.label),
            crate::output::uses_table(&uses)
        ));
    }
    if args.events {
        let events =
            open_store(ctx, false)?.events(EventsAbout::Owner(ctx.owner()), EVENTS_SHOWN)?;
        return crate::output::show_events(&ctx.out, &events, false);
    }
    let codes = open_store(ctx, false)?.list(ctx.owner(), args.revoked)?;
    if ctx.out.json() {
        let views: Vec<CodeView<'_>> = codes.iter().map(CodeView::from).collect();
        return ctx.out.value(&views);
    }
    if codes.is_empty() {
        return ctx.out.text(&format!(
            "{} has no active app passwords. Create one with: apppw-ctl new LABEL\n",
            escape_text(&ctx.user)
        ));
    }
    let rows: Vec<Vec<String>> = codes
        .iter()
        .map(|code| {
            vec![
                code.id.to_string(),
                escape_text(&code.label).into_owned(),
                timefmt::human(code.created),
                code.use_count.to_string(),
                limits::describe(code),
                match code.revoked {
                    Some(t) => format!("revoked {}", timefmt::human(t)),
                    None => describe_last_use(code),
                },
            ]
        })
        .collect();
    let table = table(
        &["ID", "LABEL", "CREATED", "USES", "LIMITS", "LAST USED"],
        &rows,
        &[0, 3],
    );
    ctx.out.text(&table)
}
