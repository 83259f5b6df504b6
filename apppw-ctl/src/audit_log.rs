//! Every change apppw-ctl makes goes to syslog (LOG_AUTHPRIV, ident apppw-ctl) as well as to the
//! store's event trail (written in the change's own transaction: see `Store` and schema V4). A
//! line names who did it (uid, name, terminal and remote host), to whom, and which code (id and
//! label, never the code); every value a person chose is quoted with `log_value`, so one line
//! always parses to the same fields. The socket is connected before the store opens (see
//! `commands::open_store`), so the caller cannot make it fail by exhausting file descriptors in
//! between; a host without a syslog socket keeps the event trail.
#![forbid(unsafe_code)]

use std::sync::Mutex;

use apppw_core::log_value;
use syslog::{Facility, Formatter3164, Logger, LoggerBackend};

use crate::context::Context;

static LOGGER: Mutex<Option<Logger<LoggerBackend, Formatter3164>>> = Mutex::new(None);

/// Connects to the syslog socket, once.
pub fn connect() {
    let mut logger = LOGGER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if logger.is_none() {
        let formatter = Formatter3164 {
            facility: Facility::LOG_AUTHPRIV,
            hostname: None,
            process: "apppw-ctl".into(),
            pid: std::process::id(),
        };
        *logger = syslog::unix(formatter).ok();
    }
}

/// Logs `action` ("created", "renamed", "revoked") of code `id` (now labelled `label`) of `user`.
pub fn record(ctx: &Context, action: &str, id: i64, label: &str, user: &str) {
    send(&format!(
        "{} {action} app password id={id} label={} of user={}",
        who(ctx),
        log_value(label),
        log_value(user),
    ));
}

/// Logs a change that is not about one code (prune), or a problem with one (a failed hook).
pub fn record_text(ctx: &Context, what: &str) {
    send(&format!("{} {what}", who(ctx)));
}

fn who(ctx: &Context) -> String {
    format!(
        "uid={} name={} origin={}",
        ctx.caller.uid,
        log_value(&ctx.caller.name),
        log_value(&ctx.origin)
    )
}

fn send(message: &str) {
    connect();
    let mut logger = LOGGER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(logger) = logger.as_mut() {
        let _ = logger.notice(message);
    }
}
