//! `apppw-ctl list`: the caller's active app passwords (never the codes).
#![forbid(unsafe_code)]

use apppw_core::{escape_text, timefmt};
use clap::Args;

use super::open_store;
use crate::context::Context;
use crate::error::CtlError;
use crate::output::{CodeView, describe_last_use};

#[derive(Args)]
pub struct ListArgs {
    /// Also show revoked app passwords
    #[arg(long)]
    pub revoked: bool,
}

pub fn run(ctx: &Context, args: &ListArgs) -> Result<(), CtlError> {
    let store = open_store(ctx, false)?;
    let codes = store.list(&ctx.user, args.revoked)?;
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
    let labels: Vec<String> = codes
        .iter()
        .map(|c| escape_text(&c.label).into_owned())
        .collect();
    let width = labels
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(0)
        .max(5);
    let mut table = format!(
        "{:>5}  {:<width$}  {:<20}  {:>5}  LAST USED\n",
        "ID", "LABEL", "CREATED", "USES"
    );
    for (code, label) in codes.iter().zip(&labels) {
        let state = match code.revoked {
            Some(t) => format!("revoked {}", timefmt::human(t)),
            None => describe_last_use(code),
        };
        table.push_str(&format!(
            "{:>5}  {:<width$}  {:<20}  {:>5}  {}\n",
            code.id,
            label,
            timefmt::human(code.created),
            code.use_count,
            state
        ));
    }
    ctx.out.text(&table)
}
