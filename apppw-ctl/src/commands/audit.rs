//! `apppw-ctl audit`: every user's app passwords with when, how and from where each was last
//! used, never-used and stalest first, so codes nobody uses any more stand out (root only).
#![forbid(unsafe_code)]

use apppw_core::duration::parse_duration;
use apppw_core::{escape_text, timefmt};
use clap::Args;

use super::open_store;
use crate::context::Context;
use crate::error::CtlError;
use crate::output::{CodeView, describe_last_use};

#[derive(Args)]
pub struct AuditArgs {
    /// Only active codes not used for this long (e.g. 90d), never-used ones included
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub unused_for: Option<i64>,
    /// Only active codes that were never used
    #[arg(long)]
    pub never_used: bool,
}

pub fn run(ctx: &Context, args: &AuditArgs) -> Result<(), CtlError> {
    ctx.require_root("audit")?;
    let store = open_store(ctx, false)?;
    // `--user` narrows the audit to one user; without it, root sees everyone.
    let only_user = ctx.user_was_given.then_some(ctx.user.as_str());
    let mut codes = store.audit(only_user)?;
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
    let rows: Vec<[String; 6]> = codes
        .iter()
        .map(|c| {
            [
                escape_text(&c.user).into_owned(),
                c.id.to_string(),
                escape_text(&c.label).into_owned(),
                timefmt::human(c.created),
                c.use_count.to_string(),
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
    let headers = ["USER", "ID", "LABEL", "CREATED", "USES", "LAST USED"];
    let widths: Vec<usize> = (0..5)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([headers[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut table = String::new();
    let line = |cells: [&str; 6]| {
        format!(
            "{:<w0$}  {:>w1$}  {:<w2$}  {:<w3$}  {:>w4$}  {}\n",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            cells[4],
            cells[5],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
            w4 = widths[4],
        )
    };
    table.push_str(&line(headers));
    for r in &rows {
        table.push_str(&line([&r[0], &r[1], &r[2], &r[3], &r[4], &r[5]]));
    }
    ctx.out.text(&table)
}
