//! Signing in to apppw-web, and confirming the password later, through the PAM service
//! `apppw-web` (/etc/pam.d/apppw-web). The helper runs PAM as root, as login and sshd do, so the
//! stack is the site's: pam_unix reads /etc/shadow here, never in the front. The password from
//! the sign-in form answers the first hidden prompt; any other prompt (a second factor) goes to
//! the front as a form step. pam_apppw never accepts an app password in this service
//! (`login::WEB_SERVICE`).
//!
//! A refused sign-in is logged for fail2ban in pam_unix's layout, by this root process, so that
//! the shipped filter's journal match on `_UID=0` holds: a line the front's account wrote could
//! be forged by that account.
#![forbid(unsafe_code)]

use std::ffi::CString;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use apppw_core::log_value;
use apppw_core::login::WEB_SERVICE;
use apppw_pam_client::{
    Conversation, PAM_DISALLOW_NULL_AUTHTOK, PAM_NEW_AUTHTOK_REQD, PAM_SUCCESS, Transaction,
};
use nix::unistd::User;
use syslog::{Facility, Formatter3164};
use zeroize::Zeroizing;

use super::protocol::{Reply, Request, Secret};
use super::{ANSWER_LIMIT, Channel, Session, is_plain};
use crate::error::CtlError;

/// Most prompts one conversation may show: a stack that keeps asking is broken.
const MAX_PROMPTS: usize = 8;

/// What a refused sign-in says, whatever the reason: it does not tell an unknown user from a
/// wrong password.
const REFUSED: &str = "The user name, password or verification code is not right. Check them and try again; after several failures, sign-in is slowed down.";

/// Signs `user` in. `Ok(None)` when refused (the reply is sent).
pub fn sign_in(
    channel: &mut Channel,
    user: &str,
    password: &Secret,
    address: &str,
) -> Result<Option<Session>, CtlError> {
    let started = Instant::now();
    let address = match address.parse::<IpAddr>() {
        // A dual-stack proxy reports IPv4 clients as ::ffff:a.b.c.d; fail2ban bans the IPv4.
        Ok(ip) => ip.to_canonical().to_string(),
        Err(_) => {
            return Err(CtlError::WebSession(
                "session ended: the front gave no valid client address".into(),
            ));
        }
    };
    // A name that is no account name is refused before PAM, and never reaches a log line raw.
    if !is_account_name(user) {
        log_failure(&address, "?");
        pace_refusal(started);
        return refuse(channel, REFUSED, &[]).map(|()| None);
    }
    // Root never signs in here; refused before PAM, so the answer tells nothing about the
    // password.
    if matches!(User::from_name(user), Ok(Some(account)) if account.uid.is_root()) {
        log_failure(&address, user);
        eprintln!("apppw-ctl: refused a web sign-in as {user}, which is uid 0");
        pace_refusal(started);
        return refuse(channel, REFUSED, &[]).map(|()| None);
    }
    let outcome = converse(channel, user, Some(password), &address)?;
    let messages = outcome.messages;
    // Every refusal gets the same answer and the same log line, whatever PAM said: an expired
    // password, a locked account or root told apart would tell a guesser that the password was
    // right. The reason goes to the helper's own log (the journal), for the administrator.
    let account = match outcome.verdict {
        Verdict::Authenticated(name) => match User::from_name(&name) {
            Ok(Some(account)) if !account.uid.is_root() => Some(account),
            Ok(Some(_)) => {
                eprintln!(
                    "apppw-ctl: refused a web sign-in that PAM mapped to {}, uid 0",
                    log_value(&name)
                );
                None
            }
            Ok(None) => {
                eprintln!(
                    "apppw-ctl: PAM signed in {}, which is no account on this host",
                    log_value(&name)
                );
                None
            }
            Err(e) => return Err(CtlError::UserLookup(e.to_string())),
        },
        Verdict::Refused => None,
        Verdict::Expired => {
            eprintln!(
                "apppw-ctl: refused a web sign-in of {user}: the password has expired and must be changed first"
            );
            None
        }
        Verdict::AccountRefused(why) => {
            eprintln!("apppw-ctl: refused a web sign-in of {user}: the account check said {why}");
            None
        }
    };
    let Some(account) = account else {
        log_failure(&address, user);
        pace_refusal(started);
        return refuse(channel, REFUSED, &messages).map(|()| None);
    };
    log_sign_in(&address, &account.name);
    let services = apppw_core::config::load_policy(std::path::Path::new(
        apppw_core::config::DEFAULT_CONFIG_PATH,
    ))
    .map(|policy| policy.allowed_services)
    .unwrap_or_default();
    channel.send(&Reply::SignedIn {
        user: &account.name,
        services: &services,
        messages: &messages,
    })?;
    let now = Instant::now();
    Ok(Some(Session {
        user: account,
        address,
        signed_in: now,
        confirmed: now,
    }))
}

/// Asks PAM again for the signed-in user. Whether it said yes (the reply is sent either way).
pub fn confirm(
    channel: &mut Channel,
    session: &Session,
    password: &Secret,
) -> Result<bool, CtlError> {
    let started = Instant::now();
    let outcome = converse(
        channel,
        &session.user.name,
        Some(password),
        &session.address,
    )?;
    match outcome.verdict {
        Verdict::Authenticated(name) if name == session.user.name => {
            channel.send(&Reply::Confirmed {
                messages: &outcome.messages,
            })?;
            Ok(true)
        }
        _ => {
            pace_refusal(started);
            log_failure(&session.address, &session.user.name);
            refuse(channel, REFUSED, &outcome.messages)?;
            Ok(false)
        }
    }
}

enum Verdict {
    /// PAM_USER at the end: a module may map the name given to another.
    Authenticated(String),
    Refused,
    Expired,
    AccountRefused(String),
}

struct Outcome {
    verdict: Verdict,
    messages: Vec<String>,
}

/// pam_authenticate (empty passwords refused whatever the stack's `nullok`), then pam_acct_mgmt.
/// No session is opened: this is not a login.
fn converse(
    channel: &mut Channel,
    user: &str,
    password: Option<&Secret>,
    address: &str,
) -> Result<Outcome, CtlError> {
    let service = CString::new(WEB_SERVICE).map_err(|e| CtlError::WebSession(e.to_string()))?;
    let name = CString::new(user).map_err(|e| CtlError::WebSession(e.to_string()))?;
    let mut relay = Relay {
        channel,
        password: password.map(Secret::bytes),
        messages: Vec::new(),
        prompts: 0,
        broken: None,
    };
    let verdict = {
        let mut pam = Transaction::start(&service, &name, Box::new(&mut relay)).map_err(|code| {
            CtlError::WebSession(format!(
                "PAM could not start the apppw-web service (error {code}); check /etc/pam.d/apppw-web"
            ))
        })?;
        if pam.set_rhost(address) != PAM_SUCCESS {
            return Err(CtlError::WebSession(
                "PAM refused the client address".into(),
            ));
        }
        let code = pam.authenticate(PAM_DISALLOW_NULL_AUTHTOK);
        if code == PAM_SUCCESS {
            match pam.acct_mgmt(PAM_DISALLOW_NULL_AUTHTOK) {
                // PAM_USER unreadable: nobody known signed in.
                PAM_SUCCESS => pam.user().map_or(Verdict::Refused, Verdict::Authenticated),
                PAM_NEW_AUTHTOK_REQD => Verdict::Expired,
                code => Verdict::AccountRefused(pam.describe(code)),
            }
        } else {
            Verdict::Refused
        }
    };
    if let Some(broken) = relay.broken {
        return Err(broken);
    }
    Ok(Outcome {
        verdict,
        messages: relay.messages,
    })
}

/// PAM's conversation, relayed to the front: the password for the first hidden prompt, a form
/// step for every other.
struct Relay<'a> {
    channel: &'a mut Channel,
    password: Option<Zeroizing<Vec<u8>>>,
    /// What PAM said since the last reply, to show with the next one.
    messages: Vec<String>,
    prompts: usize,
    /// The session cannot go on (the front went away or broke the protocol).
    broken: Option<CtlError>,
}

impl Conversation for &mut Relay<'_> {
    fn prompt(&mut self, message: &str, echo: bool) -> Option<Zeroizing<Vec<u8>>> {
        if !echo {
            if let Some(password) = self.password.take() {
                return Some(password);
            }
        }
        self.prompts += 1;
        if self.prompts > MAX_PROMPTS || self.broken.is_some() {
            return None;
        }
        let messages = std::mem::take(&mut self.messages);
        let asked = self.channel.send(&Reply::Prompt {
            text: message,
            echo,
            messages: &messages,
        });
        let answer = asked.and_then(|()| self.channel.read(ANSWER_LIMIT));
        match answer {
            Ok(Some(Request::Answer(answer))) => Some(answer.bytes()),
            Ok(_) => {
                self.broken = Some(CtlError::WebSession(
                    "session ended: a prompt was not answered".into(),
                ));
                None
            }
            Err(e) => {
                self.broken = Some(e);
                None
            }
        }
    }

    fn show(&mut self, message: &str, _error: bool) {
        if self.messages.len() < MAX_PROMPTS && is_plain(message, 512) {
            self.messages.push(message.to_owned());
        }
    }
}

fn refuse(channel: &Channel, message: &str, messages: &[String]) -> Result<(), CtlError> {
    channel.send(&Reply::Refused { message, messages })
}

/// Every refusal of a sign-in takes at least this long from the start: a wrong password costs
/// PAM's own delay (pam_unix's is about two seconds), and an answer that came sooner (root
/// refused before PAM, an expired or locked account refused after a right password) would tell
/// a guesser which it was.
const REFUSAL_TIME: Duration = Duration::from_secs(3);

/// Waits out what is left of `REFUSAL_TIME` since `started`.
fn pace_refusal(started: Instant) {
    std::thread::sleep(REFUSAL_TIME.saturating_sub(started.elapsed()));
}

/// What an account name may hold here: the POSIX portable set and `@` (for directories that use
/// mail addresses), as useradd's default NAME_REGEX allows and more, but no space, quote or
/// control character that could bend a log line.
fn is_account_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@' | b'$'))
}

/// The line fail2ban counts (filter.d/apppw.conf), in pam_unix's layout.
fn log_failure(address: &str, user: &str) {
    log(&format!(
        "{WEB_SERVICE}({WEB_SERVICE}:auth): authentication failure; logname= uid=0 euid=0 tty= ruser= rhost={address}  user={user}"
    ));
}

fn log_sign_in(address: &str, user: &str) {
    log(&format!("{WEB_SERVICE}: {user} signed in from {address}"));
}

/// LOG_AUTHPRIV, as PAM modules log; ident apppw-web.
fn log(message: &str) {
    let formatter = Formatter3164 {
        facility: Facility::LOG_AUTHPRIV,
        hostname: None,
        process: WEB_SERVICE.into(),
        pid: std::process::id(),
    };
    if let Ok(mut logger) = syslog::unix(formatter) {
        let _ = logger.notice(message);
    }
}

#[cfg(test)]
mod tests {
    use super::is_account_name;

    #[test]
    fn only_plain_account_names_reach_pam_and_the_log() {
        for good in [
            "alice",
            "bob.smith",
            "mail_user-2",
            "a@example.org",
            "machine$",
        ] {
            assert!(is_account_name(good), "{good}");
        }
        for bad in [
            "",
            "-rf",
            "a b",
            "x rhost=192.0.2.1",
            "a\nb",
            "ä",
            &"a".repeat(257),
        ] {
            assert!(!is_account_name(bad), "{bad:?}");
        }
    }
}
