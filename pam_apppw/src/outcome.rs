//! The one place where results become PAM return codes and syslog lines. Log lines name the user,
//! the code's id and label, the service and the remote host; never any part of a password. Every
//! value a client or user chose is quoted (`log_value`) or, where fail2ban's pam_unix layout
//! wants a bare word, reduced to one (`bare_field`), so that a line always parses to the same
//! fields.
#![forbid(unsafe_code)]

use apppw_core::code::may_hide_a_code;
use apppw_core::login::{Decision, Rejection};
use apppw_core::{escape_text, log_value};
use pamsm::{LogLvl, Pam, PamError, PamLibExt};

/// What an entry point found, for `finish` to answer and log.
pub enum Report<'a> {
    /// `authenticate` reached a verdict.
    Decided {
        decision: Decision,
        user: &'a [u8],
        service: Option<&'a str>,
        rhost: Option<&'a str>,
        ruser: Option<&'a str>,
        debug: bool,
    },
    /// A fixed answer (setcred, acct_mgmt).
    Answer(PamError),
}

/// Why an entry point could not reach a verdict. Every one of these fails the login.
pub enum Failure {
    BadOptions(String),
    Pam(PamError, &'static str),
    Store(apppw_core::Error),
    Panic(String),
}

/// Maps the result of an entry point to its PAM code, logging as it goes.
pub fn finish(pamh: &Pam, group: &str, result: Result<Report<'_>, Failure>) -> PamError {
    match result {
        Ok(Report::Answer(code)) => code,
        Ok(Report::Decided {
            decision,
            user,
            service,
            rhost,
            ruser,
            debug,
        }) => match decision {
            Decision::Accepted {
                id,
                label,
                recorded,
            } => {
                log(
                    pamh,
                    LogLvl::INFO,
                    &format!(
                        "accepted app password id={id} label={} for user={} service={} rhost={}",
                        log_value(&label),
                        loggable_user(user),
                        log_value(service.unwrap_or("")),
                        log_value(rhost.unwrap_or("")),
                    ),
                );
                if let Err(why) = recorded {
                    log(
                        pamh,
                        LogLvl::WARNING,
                        &format!("could not record last use of id={id}: {why}"),
                    );
                }
                PamError::SUCCESS
            }
            Decision::Rejected(reason) => {
                // pam_unix's layout, so fail2ban's pam-generic filter counts it (with
                // __pam_auth=pam_apppw); the host comes before anything a client controls.
                let mut line = format!(
                    "authentication failure; logname= uid={} euid={} tty= ruser={} rhost={}  user={}",
                    nix::unistd::getuid(),
                    nix::unistd::geteuid(),
                    bare_field(ruser),
                    bare_field(rhost),
                    loggable_user(user),
                );
                // When the code itself was right, say which limit refused it, so the owner
                // learns why their phone stopped working.
                match &reason {
                    Rejection::Limited { id, label, .. } => line.push_str(&format!(
                        " (app password id={id} label={} {})",
                        log_value(label),
                        reason.describe()
                    )),
                    Rejection::ServiceNotAllowed | Rejection::ServiceRefused => {
                        line.push_str(&format!(" ({})", reason.describe()))
                    }
                    Rejection::NotACode | Rejection::BadUser | Rejection::NoMatch => {}
                }
                log(pamh, LogLvl::NOTICE, &line);
                if debug {
                    log(
                        pamh,
                        LogLvl::DEBUG,
                        &format!(
                            "refused: {} (service={} rhost={})",
                            reason.describe(),
                            log_value(service.unwrap_or("")),
                            log_value(rhost.unwrap_or(""))
                        ),
                    );
                }
                PamError::AUTH_ERR
            }
        },
        Err(Failure::BadOptions(why)) => {
            log(
                pamh,
                LogLvl::ERR,
                &format!("{group}: refusing to run with a bad configuration: {why}"),
            );
            PamError::SERVICE_ERR
        }
        Err(Failure::Pam(code, what)) => {
            log(
                pamh,
                LogLvl::ERR,
                &format!("{group}: failed {what}: {code}"),
            );
            if code == PamError::SUCCESS {
                PamError::SERVICE_ERR
            } else {
                code
            }
        }
        Err(Failure::Store(err)) => {
            log(pamh, LogLvl::ERR, &format!("{group}: {err}"));
            PamError::AUTHINFO_UNAVAIL
        }
        Err(Failure::Panic(message)) => {
            log(
                pamh,
                LogLvl::CRIT,
                &format!(
                    "{group}: internal error ({}), login refused",
                    escape_text(&message)
                ),
            );
            PamError::SERVICE_ERR
        }
    }
}

/// A user name as it may appear in a log: quoted, and withheld entirely when a code might hide in
/// it (someone typed the code into the user field, whole or with a near miss around it).
fn loggable_user(user: &[u8]) -> String {
    if may_hide_a_code(user) {
        return log_value("(withheld: may contain an app password)");
    }
    log_value(&String::from_utf8_lossy(user))
}

/// A PAM item as one bare word for the fields of pam_unix's layout (`ruser=`, `rhost=`), which
/// fail2ban reads as `\S*`: escaped, with white space, quotes and `=` replaced by `_`, so the
/// field ends where a log parser expects and cannot start another.
fn bare_field(item: Option<&str>) -> String {
    escape_text(item.unwrap_or(""))
        .chars()
        .map(|c| {
            if c.is_whitespace() || c == '"' || c == '=' {
                '_'
            } else {
                c
            }
        })
        .collect()
}

fn log(pamh: &Pam, level: LogLvl, message: &str) {
    // pam_syslog only fails on an interior NUL, which escaping has already removed; a log line
    // that cannot be written must not change the verdict.
    let _ = pamh.syslog(level, message);
}
