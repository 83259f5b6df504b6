//! The administrator's `revoke_hook`: a command run after each revocation so that servers which
//! cache logins (Dovecot's auth cache, saslauthd -c) forget the revoked code at once. It runs after
//! the store is closed, as the `apppw` account (root for root's commands), with no shell, clean
//! (see `clean_exec.rs`) and stdin on /dev/null; `%u` in an argument becomes the owner of the
//! revoked code. A failing hook does not undo the revocation; it is reported.
#![forbid(unsafe_code)]

use std::process::{Command, Stdio};

use apppw_core::escape_text;

use crate::audit_log;
use crate::context::Context;

/// Runs the hook for `user` if one is configured. Returns a warning for the caller to print when
/// it could not run or failed.
pub fn after_revoke(ctx: &Context, user: &str) -> Option<String> {
    let (program, args) = ctx.policy.revoke_hook.split_first()?;
    let args: Vec<String> = args.iter().map(|a| a.replace("%u", user)).collect();
    let result = crate::clean_exec::clean(&mut Command::new(program))
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output();
    let problem = match result {
        Ok(out) if out.status.success() => return None,
        Ok(out) => format!(
            "{} ({})",
            out.status,
            escape_text(String::from_utf8_lossy(&out.stderr).trim())
        ),
        Err(e) => e.to_string(),
    };
    let warning = format!(
        "the revocation is done, but revoke_hook `{}` failed for {}: {problem}. A server that caches logins may accept the code until its cache expires",
        ctx.policy.revoke_hook.join(" "),
        escape_text(user)
    );
    audit_log::record_text(ctx, &warning);
    Some(warning)
}

/// Prints a line for the caller on stderr (a closed stderr is not an error).
pub fn tell(text: &str) {
    let message = format!("apppw-ctl: {text}\n");
    let _ = crate::output::write_within(&std::io::stderr(), message.as_bytes());
}
