//! The password group: with `revoke_on_password_change = yes`, a password change that reached
//! this module (it stacks after the module that changes the password, so it runs only when that
//! succeeded) revokes the user's active app passwords. The revocation is apppw-ctl's, run as a
//! child: it leaves the reach of whoever runs `passwd` before it opens the store, which this
//! process (often setuid root, but stoppable by its user) cannot (docs/SECURITY.md).
#![forbid(unsafe_code)]

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use apppw_core::config::{DEFAULT_CONFIG_PATH, load_policy};
use apppw_core::escape_text;
use apppw_core::store_config::DEFAULT_STORE_CONFIG_PATH;
use pamsm::{Pam, PamError, PamFlags, PamLibExt};

use crate::options::Options;
use crate::outcome::{Failure, Report};

/// pam_chauthtok's second pass, after every module agreed in the first (_pam_types.h).
const PAM_UPDATE_AUTHTOK: i32 = 0x2000;

/// `pam_sm_chauthtok`.
pub fn chauthtok<'a>(
    pamh: &'a Pam,
    flags: PamFlags,
    args: &[String],
) -> Result<Report<'a>, Failure> {
    let options = Options::parse(args).map_err(Failure::BadOptions)?;
    if flags.bits() & PAM_UPDATE_AUTHTOK == 0 {
        return Ok(Report::Answer(PamError::IGNORE));
    }
    let policy = load_policy(&options.parsed.conf).map_err(Failure::BadConfig)?;
    if !policy.revoke_on_password_change {
        return Ok(Report::Answer(PamError::IGNORE));
    }
    let user = pamh
        .get_user(None)
        .map_err(|e| Failure::Pam(e, "reading the user name"))?
        .and_then(|u| u.to_str().ok())
        .filter(|u| !u.is_empty())
        .ok_or(Failure::Pam(
            PamError::USER_UNKNOWN,
            "reading the user name",
        ))?;
    let revoked = revoke_all_of(&options, user)?;
    Ok(Report::PasswordChanged {
        user,
        revoked,
        silent: flags.contains(PamFlags::SILENT),
    })
}

/// How long a password change waits for apppw-ctl before it gives up on it (it may wait up to
/// 5 s for the store, a slow user database or a slow `revoke_hook`).
const CTL_DEADLINE: Duration = Duration::from_secs(30);

/// Most output read from apppw-ctl (a JSON list of the revoked codes, a message on stderr).
const MAX_OUTPUT: u64 = 1 << 20;

/// Runs `apppw-ctl password-changed USER` and returns how many codes it revoked. It uses
/// apppw-ctl's own store and configuration (`db=` and `conf=` are refused in this group: only
/// root may point apppw-ctl elsewhere, and `passwd` runs as the user); apppw-ctl finds its store
/// through store.conf as always.
fn revoke_all_of(options: &Options, user: &str) -> Result<usize, Failure> {
    let parsed = &options.parsed;
    if parsed.db.is_some()
        || parsed.store_conf != Path::new(DEFAULT_STORE_CONFIG_PATH)
        || parsed.conf != Path::new(DEFAULT_CONFIG_PATH)
    {
        return Err(Failure::Ctl(
            "db=, store_conf= and conf= cannot be used in the password group; apppw-ctl uses its defaults"
                .into(),
        ));
    }
    let ctl = &options.parsed.ctl;
    let mut child = Command::new(ctl)
        .env_clear()
        .current_dir("/")
        .args(["--json", "password-changed", "--", user])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Failure::Ctl(format!("cannot run {}: {e}", ctl.display())))?;
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    // Both pipes are read on threads of this call (joined before it returns), so a full pipe
    // cannot stall the child; the child is killed at the deadline.
    let (status, out, err) = std::thread::scope(|scope| {
        let out = scope.spawn(move || read_bounded(stdout));
        let err = scope.spawn(move || read_bounded(stderr));
        let status = wait_until(&mut child, Instant::now() + CTL_DEADLINE);
        (
            status,
            out.join().unwrap_or_default(),
            err.join().unwrap_or_default(),
        )
    });
    let status = status.map_err(|why| {
        Failure::Ctl(format!(
            "{} {why}; the codes may or may not be revoked",
            ctl.display()
        ))
    })?;
    if !status.success() {
        return Err(Failure::Ctl(format!(
            "{} {} ({})",
            ctl.display(),
            status,
            escape_text(String::from_utf8_lossy(&err).trim())
        )));
    }
    serde_json::from_slice::<serde_json::Value>(&out)
        .ok()
        .and_then(|v| v["revoked"].as_array().map(Vec::len))
        .ok_or_else(|| Failure::Ctl(format!("{} gave an answer it should not", ctl.display())))
}

/// Everything `pipe` gives until it closes, at most `MAX_OUTPUT` bytes.
fn read_bounded(pipe: Option<impl Read>) -> Vec<u8> {
    let mut text = Vec::new();
    if let Some(pipe) = pipe {
        let _ = pipe.take(MAX_OUTPUT).read_to_end(&mut text);
    }
    text
}

/// Waits for `child` until `deadline`, then kills it. A host that reaps children itself (or
/// ignores SIGCHLD) takes the exit status away: that is said, not guessed.
fn wait_until(child: &mut Child, deadline: Instant) -> Result<ExitStatus, String> {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "did not finish within {} s and was stopped",
                    CTL_DEADLINE.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("exit status is unknown ({e})")),
        }
    }
}
