//! Every change apppw-ctl makes goes to syslog (LOG_AUTHPRIV, ident apppw-ctl), naming who did it
//! (uid and name), to whom, and which code (id and label, never the code). The store keeps the
//! same facts (created_by, revoked_by) for `apppw-ctl audit`. A host without a syslog socket
//! loses only the log line, not the change.
#![forbid(unsafe_code)]

use apppw_core::escape_text;
use syslog::{Facility, Formatter3164};

use crate::context::Context;

/// Logs `action` ("created", "renamed", "revoked") of code `id` (now labelled `label`) of `user`.
pub fn record(ctx: &Context, action: &str, id: i64, label: &str, user: &str) {
    let message = format!(
        "uid={}({}) {action} app password id={id} label=\"{}\" of user={}",
        ctx.caller.uid,
        escape_text(&ctx.caller.name),
        escape_text(label),
        escape_text(user),
    );
    send(&message);
}

/// Logs a change that is not about one code (prune).
pub fn record_text(ctx: &Context, what: &str) {
    send(&format!(
        "uid={}({}) {what}",
        ctx.caller.uid,
        escape_text(&ctx.caller.name)
    ));
}

fn send(message: &str) {
    let formatter = Formatter3164 {
        facility: Facility::LOG_AUTHPRIV,
        hostname: None,
        process: "apppw-ctl".into(),
        pid: std::process::id(),
    };
    if let Ok(mut logger) = syslog::unix(formatter) {
        let _ = logger.notice(message);
    }
}
