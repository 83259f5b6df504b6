//! The one place where results become PAM return codes and syslog lines. Log lines name the user,
//! the code's id and label, the service and the remote host; never any part of a password. Every
//! value a client or user chose is quoted (`log_value`) or, where fail2ban's pam_unix layout
//! wants a bare word, reduced to one (`bare_field`), so that a line always parses to the same
//! fields. `verdict` is pure (tested below without libpam); `finish` writes what it returns.
#![forbid(unsafe_code)]

use apppw_core::code::may_hide_a_code;
use apppw_core::login::{Decision, Rejection};
use apppw_core::module_options::OptionError;
use apppw_core::{escape_text, log_value};
use pamsm::{LogLvl, Pam, PamError, PamLibExt, PamMsgStyle};

/// What an entry point found, for `finish` to answer and log.
pub enum Report<'a> {
    /// `authenticate` reached a verdict.
    Decided {
        decision: Decision,
        items: Items<'a>,
        debug: bool,
    },
    /// A password change revoked `revoked` codes of `user`.
    PasswordChanged {
        user: &'a str,
        revoked: usize,
        /// PAM_SILENT: nothing for the user to read.
        silent: bool,
    },
    /// A fixed answer.
    Answer(PamError),
}

/// The PAM items of an attempt, as the log lines name them.
#[derive(Clone, Copy, Default)]
pub struct Items<'a> {
    pub user: &'a [u8],
    pub service: Option<&'a str>,
    pub rhost: Option<&'a str>,
    pub ruser: Option<&'a str>,
}

/// Why an entry point could not reach a verdict. Every one of these fails the login.
pub enum Failure {
    BadOptions(OptionError),
    BadConfig(apppw_core::Error),
    Pam(PamError, &'static str),
    Store(apppw_core::Error),
    /// apppw-ctl could not revoke the codes after a password change.
    Ctl(String),
    Panic(String),
}

/// Syslog levels the module uses (pamsm's `LogLvl` cannot be compared or copied).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Crit,
    Err,
    Warning,
    Notice,
    Info,
    Debug,
}

/// The PAM code for a result, the lines to log about it, and what to tell the user.
pub struct Verdict {
    pub code: PamError,
    pub lines: Vec<(Level, String)>,
    pub tell: Option<String>,
}

/// Answers the result of an entry point: logs and returns its PAM code.
pub fn finish(pamh: &Pam, group: &str, result: Result<Report<'_>, Failure>) -> PamError {
    let verdict = verdict(group, result);
    for (level, line) in &verdict.lines {
        // pam_syslog only fails on an interior NUL, which escaping has already removed; a log
        // line that cannot be written must not change the verdict.
        let _ = pamh.syslog(syslog_level(*level), line);
    }
    if let Some(text) = &verdict.tell {
        // A conversation that cannot show it changes nothing either.
        let _ = pamh.conv(Some(text), PamMsgStyle::TEXT_INFO);
    }
    verdict.code
}

/// Maps the result of an entry point to its PAM code and log lines.
pub fn verdict(group: &str, result: Result<Report<'_>, Failure>) -> Verdict {
    match result {
        Ok(report) => reported(report),
        Err(failure) => failed(group, failure),
    }
}

fn answer(code: PamError, lines: Vec<(Level, String)>) -> Verdict {
    Verdict {
        code,
        lines,
        tell: None,
    }
}

/// What an entry point that reached an answer logs and says.
fn reported(report: Report<'_>) -> Verdict {
    match report {
        Report::Answer(code) => answer(code, Vec::new()),
        Report::PasswordChanged {
            user,
            revoked,
            silent,
        } => Verdict {
            code: PamError::SUCCESS,
            lines: vec![(
                Level::Notice,
                format!(
                    "revoked {revoked} app passwords of user={} after a password change",
                    log_value(user)
                ),
            )],
            tell: (revoked > 0 && !silent).then(|| {
                format!(
                    "Your password changed, so your {revoked} app passwords were revoked. Create new ones with: apppw-ctl new LABEL"
                )
            }),
        },
        Report::Decided {
            decision:
                Decision::Accepted {
                    id,
                    label,
                    recorded,
                },
            items,
            ..
        } => {
            let mut lines = vec![(
                Level::Info,
                format!(
                    "accepted app password id={id} label={} for user={} service={} rhost={}",
                    log_value(&label),
                    loggable_user(items.user),
                    log_value(items.service.unwrap_or("")),
                    log_value(items.rhost.unwrap_or("")),
                ),
            )];
            if let Err(why) = recorded {
                lines.push((
                    Level::Warning,
                    format!("could not record last use of id={id}: {why}"),
                ));
            }
            answer(PamError::SUCCESS, lines)
        }
        Report::Decided {
            decision: Decision::Rejected(reason),
            items,
            debug,
        } => {
            let mut lines = vec![(Level::Notice, failure_line(&reason, &items))];
            if debug {
                lines.push((
                    Level::Debug,
                    format!(
                        "refused: {} (service={} rhost={})",
                        reason.describe(),
                        log_value(items.service.unwrap_or("")),
                        log_value(items.rhost.unwrap_or(""))
                    ),
                ));
            }
            answer(PamError::AUTH_ERR, lines)
        }
    }
}

/// Why an entry point could not answer, logged, and the PAM code that says so.
fn failed(group: &str, failure: Failure) -> Verdict {
    match failure {
        Failure::BadOptions(why) => answer(
            PamError::SERVICE_ERR,
            vec![(Level::Err, bad_configuration(group, &why))],
        ),
        Failure::BadConfig(why) => answer(
            PamError::SERVICE_ERR,
            vec![(Level::Err, bad_configuration(group, &why))],
        ),
        Failure::Pam(code, what) => answer(
            // A PAM call that "failed" with PAM_SUCCESS must still not let anyone in.
            if code == PamError::SUCCESS {
                PamError::SERVICE_ERR
            } else {
                code
            },
            vec![(Level::Err, format!("{group}: failed {what}: {code}"))],
        ),
        Failure::Ctl(why) => Verdict {
            code: PamError::SERVICE_ERR,
            lines: vec![(
                Level::Err,
                format!("{group}: the password changed, but the app passwords could not be revoked: {why}"),
            )],
            tell: Some(
                "Your password changed, but your app passwords could not be revoked; ask your administrator (apppw-ctl lockdown)".into(),
            ),
        },
        Failure::Store(err) => answer(
            PamError::AUTHINFO_UNAVAIL,
            vec![(Level::Err, format!("{group}: {err}"))],
        ),
        Failure::Panic(message) => answer(
            PamError::SERVICE_ERR,
            vec![(
                Level::Crit,
                format!(
                    "{group}: internal error ({}), login refused",
                    escape_text(&message)
                ),
            )],
        ),
    }
}

fn bad_configuration(group: &str, why: &dyn std::fmt::Display) -> String {
    format!("{group}: refusing to run with a bad configuration: {why}")
}

/// The refusal in pam_unix's layout, so fail2ban's pam-generic filter counts it (with
/// __pam_auth=pam_apppw); the host comes before anything a client controls. When the code itself
/// was right, the line says which limit refused it, so the owner learns why their phone stopped
/// working.
fn failure_line(reason: &Rejection, items: &Items<'_>) -> String {
    let mut line = format!(
        "authentication failure; logname= uid={} euid={} tty= ruser={} rhost={}  user={}",
        nix::unistd::getuid(),
        nix::unistd::geteuid(),
        bare_field(items.ruser),
        bare_field(items.rhost),
        loggable_user(items.user),
    );
    match reason {
        Rejection::Limited { id, label, .. } | Rejection::AccountGone { id, label } => line
            .push_str(&format!(
                " (app password id={id} label={} {})",
                log_value(label),
                reason.describe()
            )),
        Rejection::ServiceNotAllowed | Rejection::ServiceRefused => {
            line.push_str(&format!(" ({})", reason.describe()));
        }
        Rejection::NotACode | Rejection::BadUser | Rejection::NoMatch => {}
    }
    line
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

fn syslog_level(level: Level) -> LogLvl {
    match level {
        Level::Crit => LogLvl::CRIT,
        Level::Err => LogLvl::ERR,
        Level::Warning => LogLvl::WARNING,
        Level::Notice => LogLvl::NOTICE,
        Level::Info => LogLvl::INFO,
        Level::Debug => LogLvl::DEBUG,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apppw_core::scope::Limit;

    fn decided(decision: Decision, items: Items<'_>) -> Verdict {
        verdict(
            "auth",
            Ok(Report::Decided {
                decision,
                items,
                debug: false,
            }),
        )
    }

    const ITEMS: Items<'static> = Items {
        user: b"alice",
        service: Some("imap"),
        rhost: Some("192.0.2.7"),
        ruser: None,
    };

    /// fail2ban's pam-generic failregex (filter.d/pam-generic.conf, Debian 12), with
    /// `__pam_auth = pam_apppw` as the shipped jail sets it, applied after the syslog prefix.
    fn fail2ban_host(line: &str) -> Option<&str> {
        let rest = line.strip_prefix("authentication failure; logname=")?;
        let rest = rest.split_once(" uid=")?.1;
        let rest = rest.split_once(" euid=")?.1;
        let rest = rest.split_once(" tty=")?.1;
        let rest = rest.split_once(" ruser=")?.1;
        let (_ruser, rest) = rest.split_once(" rhost=")?;
        let host = rest.split_whitespace().next()?;
        rest[host.len()..].starts_with("  user=").then_some(host)
    }

    #[test]
    fn a_refusal_is_one_notice_in_pam_unix_layout_with_the_host_first() {
        let v = decided(Decision::Rejected(Rejection::NoMatch), ITEMS);
        assert_eq!(v.code, PamError::AUTH_ERR);
        assert_eq!(v.lines.len(), 1);
        let (level, line) = &v.lines[0];
        assert_eq!(*level, Level::Notice);
        assert_eq!(fail2ban_host(line), Some("192.0.2.7"), "{line}");
        assert!(line.ends_with("  user=\"alice\""), "{line}");
    }

    #[test]
    fn hostile_items_cannot_move_the_host_or_add_fields() {
        let items = Items {
            user: b"bob rhost=9.9.9.9\n\x1b[2J",
            service: Some("imap"),
            rhost: Some("192.0.2.7 user=root"),
            ruser: Some("x rhost=203.0.113.2"),
        };
        let v = decided(Decision::Rejected(Rejection::NoMatch), items);
        let line = &v.lines[0].1;
        assert_eq!(fail2ban_host(line), Some("192.0.2.7_user_root"), "{line}");
        assert!(!line.contains('\n') && !line.contains('\x1b'), "{line:?}");
        let (pam_unix_fields, user) = line.split_once("  user=").unwrap();
        assert_eq!(pam_unix_fields.matches(" rhost=").count(), 1, "{line}");
        assert!(
            pam_unix_fields.contains(" ruser=x_rhost_203.0.113.2 "),
            "{line}"
        );
        assert_eq!(user, r#""bob rhost=9.9.9.9\u{a}\u{1b}[2J""#, "{line}");
    }

    #[test]
    fn a_refused_but_right_code_names_its_limit() {
        let limited = Rejection::Limited {
            id: 4,
            label: "Phone \"mail\"".into(),
            limit: Limit::Network,
        };
        let line = &decided(Decision::Rejected(limited), ITEMS).lines[0].1;
        assert_eq!(fail2ban_host(line), Some("192.0.2.7"));
        assert!(
            line.ends_with(
                "(app password id=4 label=\"Phone \\\"mail\\\"\" used from outside its networks)"
            ),
            "{line}"
        );
    }

    #[test]
    fn code_shaped_user_names_are_withheld_from_every_line() {
        for user in [
            &b"kq7m9hxt4pw2ad3f"[..],
            b"kq7m 9hxt 4pw2 ad3f",
            b"alice:kq7m9hxt4pw2ad3f",
        ] {
            let items = Items { user, ..ITEMS };
            for decision in [
                Decision::Rejected(Rejection::NoMatch),
                Decision::Accepted {
                    id: 1,
                    label: "Phone".into(),
                    recorded: Ok(true),
                },
            ] {
                let v = decided(decision, items);
                for (_, line) in &v.lines {
                    assert!(!line.contains("kq7m") && !line.contains("ad3f"), "{line}");
                    assert!(line.contains("withheld"), "{line}");
                }
            }
        }
        let line = &decided(Decision::Rejected(Rejection::NoMatch), ITEMS).lines[0].1;
        assert!(!line.contains("withheld"), "{line}");
    }

    #[test]
    fn acceptance_is_one_info_line_and_a_lost_record_a_warning() {
        let v = decided(
            Decision::Accepted {
                id: 3,
                label: "Phone".into(),
                recorded: Err("disk full".into()),
            },
            ITEMS,
        );
        assert_eq!(v.code, PamError::SUCCESS);
        assert_eq!(v.lines[0].0, Level::Info);
        assert_eq!(
            v.lines[0].1,
            "accepted app password id=3 label=\"Phone\" for user=\"alice\" service=\"imap\" rhost=\"192.0.2.7\""
        );
        assert_eq!(v.lines[1].0, Level::Warning);
    }

    #[test]
    fn no_failure_is_ever_success() {
        let failures = [
            Failure::BadOptions(OptionError::Unknown("nullok".into())),
            Failure::BadConfig(apppw_core::Error::ConfigSyntax {
                path: "/etc/apppw/apppw.conf".into(),
                line: 1,
                found: "x".into(),
            }),
            Failure::Pam(PamError::SUCCESS, "reading the user name"),
            Failure::Pam(PamError::CONV_ERR, "reading the password"),
            Failure::Store(apppw_core::Error::StoreMissing {
                path: "/var/lib/apppw/apppw.db".into(),
            }),
            Failure::Panic("boom\n".into()),
        ];
        let expected = [
            PamError::SERVICE_ERR,
            PamError::SERVICE_ERR,
            PamError::SERVICE_ERR,
            PamError::CONV_ERR,
            PamError::AUTHINFO_UNAVAIL,
            PamError::SERVICE_ERR,
        ];
        for (failure, code) in failures.into_iter().zip(expected) {
            let v = verdict("auth", Err(failure));
            assert_eq!(v.code, code);
            assert_eq!(v.lines.len(), 1);
            assert!(v.lines[0].1.starts_with("auth: "), "{}", v.lines[0].1);
            assert!(!v.lines[0].1.contains('\n'), "{:?}", v.lines[0].1);
        }
    }

    #[test]
    fn a_code_of_a_gone_account_is_a_counted_failure_that_says_so() {
        let gone = Rejection::AccountGone {
            id: 9,
            label: "Phone".into(),
        };
        let v = decided(Decision::Rejected(gone), ITEMS);
        assert_eq!(v.code, PamError::AUTH_ERR);
        let line = &v.lines[0].1;
        assert_eq!(fail2ban_host(line), Some("192.0.2.7"), "{line}");
        assert!(
            line.ends_with("(app password id=9 label=\"Phone\" belongs to a deleted account)"),
            "{line}"
        );
    }

    #[test]
    fn a_password_change_says_what_it_revoked_unless_silent() {
        for (revoked, silent, told) in [(2, false, true), (2, true, false), (0, false, false)] {
            let v = verdict(
                "password",
                Ok(Report::PasswordChanged {
                    user: "alice",
                    revoked,
                    silent,
                }),
            );
            assert_eq!(v.code, PamError::SUCCESS);
            assert_eq!(
                v.lines[0].1,
                format!(
                    "revoked {revoked} app passwords of user=\"alice\" after a password change"
                )
            );
            assert_eq!(v.tell.is_some(), told, "{revoked} {silent}");
        }
        let failed = verdict("password", Err(Failure::Ctl("exit status: 1".into())));
        assert_eq!(failed.code, PamError::SERVICE_ERR);
        assert!(failed.tell.unwrap().contains("could not be revoked"));
    }
}
