//! The one place where results become PAM return codes and syslog lines. Log lines name the user,
//! the code's id and label, the service and the remote host; never any part of a password.
#![forbid(unsafe_code)]

use apppw_core::AppPassword;
use apppw_core::escape_text;
use apppw_core::login::{Decision, Rejection};
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
                        "accepted app password id={id} label=\"{}\" for user={} service={} rhost={}",
                        escape_text(&label),
                        loggable_user(user),
                        log_field(service),
                        log_field(rhost),
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
                    log_field(ruser),
                    log_field(rhost),
                    loggable_user(user),
                );
                // When the code itself was right, say which limit refused it, so the owner
                // learns why their phone stopped working.
                match &reason {
                    Rejection::Limited { id, label, .. } => line.push_str(&format!(
                        " (app password id={id} label=\"{}\" {})",
                        escape_text(label),
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
                            log_field(service),
                            log_field(rhost)
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

/// A user name as it may appear in a log: escaped, and withheld entirely when it looks like an
/// app password (someone typed the code into the user field).
fn loggable_user(user: &[u8]) -> String {
    if AppPassword::parse(user).is_some() {
        return "(withheld: looks like an app password)".into();
    }
    escape_text(&String::from_utf8_lossy(user)).into_owned()
}

/// A PAM item for a `key=value` log field: escaped, and with no white space, so the field ends
/// where a log parser expects.
fn log_field(item: Option<&str>) -> String {
    escape_text(item.unwrap_or(""))
        .chars()
        .map(|c| if c.is_whitespace() { '_' } else { c })
        .collect()
}

fn log(pamh: &Pam, level: LogLvl, message: &str) {
    // pam_syslog only fails on an interior NUL, which escaping has already removed; a log line
    // that cannot be written must not change the verdict.
    let _ = pamh.syslog(level, message);
}
