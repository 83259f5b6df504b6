//! `apppw-ctl web-session`: the root helper of one apppw-web session (docs/WEB.md). systemd
//! starts one per connection to apppw-web's session socket (`Accept=yes`), with the connection
//! as stdin and stdout. It signs the user in through PAM (`pam.rs`), then runs each command the
//! front asks for in a fresh apppw-ctl process that has become that user (`act.rs`), and exits
//! when the front closes the session or a time limit passes. The front never names a user after
//! the sign-in, so a compromised front can act only for someone who signed in through it.
#![forbid(unsafe_code)]

pub mod act;
mod pam;
pub mod protocol;

use std::io::{StdinLock, Stdout};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::sys::socket::{getsockopt, setsockopt, sockopt};
use nix::sys::time::TimeVal;
use nix::unistd::{User, getuid};

use crate::cli::{GlobalArgs, WebSessionArgs};
use crate::error::CtlError;
use protocol::{Reply, Request, read_request, reply_line};

/// The account apppw-web's front runs as: the only one (besides root) that may talk to a helper.
pub const FRONT_ACCOUNT: &str = "apppw-web";

/// A session with no request for this long ends (the front's idle expiry is the same).
const IDLE_LIMIT: Duration = Duration::from_secs(15 * 60);
/// A session ends this long after the sign-in, however busy.
const ABSOLUTE_LIMIT: Duration = Duration::from_secs(8 * 60 * 60);
/// How long a PAM prompt waits for its answer before the conversation fails.
const ANSWER_LIMIT: Duration = Duration::from_secs(120);
/// How long one reply may take to be sent (a front that stops reading holds nothing of ours,
/// but the helper should not wait on it for ever).
const SEND_LIMIT: Duration = Duration::from_secs(10);

/// The socket to the front: requests in on stdin, replies out on stdout (the same socket).
pub struct Channel {
    input: StdinLock<'static>,
    output: Stdout,
}

impl Channel {
    /// Reads the next request, waiting at most `limit`.
    fn read(&mut self, limit: Duration) -> Result<Option<Request>, CtlError> {
        set_timeout(sockopt::ReceiveTimeout, limit)?;
        read_request(&mut self.input)
    }

    /// Sends one reply.
    fn send(&self, reply: &Reply<'_>) -> Result<(), CtlError> {
        crate::output::write_within(&self.output, &reply_line(reply)).map_err(|e| {
            CtlError::WebSession(format!(
                "session ended: the front did not take a reply ({e})"
            ))
        })
    }
}

/// Who is signed in to this session.
pub struct Session {
    pub user: User,
    pub address: String,
    pub signed_in: Instant,
    /// The last time PAM confirmed the password (the sign-in, or a `confirm`).
    pub confirmed: Instant,
}

pub fn serve(global: &GlobalArgs, _args: &WebSessionArgs) -> Result<(), CtlError> {
    if !getuid().is_root() {
        return Err(not_by_hand());
    }
    if global.db.is_some()
        || global.store_conf.is_some()
        || global.user.is_some()
        || global.config.is_some()
        || global.json
    {
        return Err(CtlError::WebSession(
            "web-session takes no options: the signed-in user decides whose app passwords it manages".into(),
        ));
    }
    check_peer()?;
    set_timeout(sockopt::SendTimeout, SEND_LIMIT)?;
    let mut channel = Channel {
        input: std::io::stdin().lock(),
        output: std::io::stdout(),
    };
    let Some(Request::SignIn {
        user,
        password,
        address,
    }) = channel.read(ANSWER_LIMIT)?
    else {
        return Err(CtlError::WebSession(
            "session ended: the first message must be sign_in".into(),
        ));
    };
    let Some(mut session) = pam::sign_in(&mut channel, &user, &password, &address)? else {
        // Refused: the reply is sent and the failure logged. A new try is a new session.
        return Ok(());
    };
    drop(password);
    loop {
        let left = ABSOLUTE_LIMIT.saturating_sub(session.signed_in.elapsed());
        if left.is_zero() {
            return Ok(());
        }
        // Otherwise the front closed the session (sign-out or its own expiry), or went quiet.
        let Ok(Some(request)) = channel.read(IDLE_LIMIT.min(left)) else {
            return Ok(());
        };
        match request {
            Request::Confirm(password) => {
                if pam::confirm(&mut channel, &session, &password)? {
                    session.confirmed = Instant::now();
                }
            }
            Request::Run(words) => act::run(&channel, &session, &words)?,
            Request::SignIn { .. } | Request::Answer(_) => {
                return Err(CtlError::WebSession(
                    "session ended: sign_in or answer out of turn".into(),
                ));
            }
        }
    }
}

fn not_by_hand() -> CtlError {
    CtlError::WebSession(
        "`apppw-ctl web-session` is started by systemd for apppw-web (apppw-web(8)) and runs as root; it is not a command to run by hand".into(),
    )
}

/// Only the front's account (or root) may drive a helper: the socket's peer, as the kernel
/// recorded it when the front connected.
fn check_peer() -> Result<(), CtlError> {
    let stdin = std::io::stdin();
    let peer = getsockopt(&stdin.as_fd(), sockopt::PeerCredentials).map_err(|e| {
        CtlError::WebSession(format!(
            "stdin is not the session socket systemd hands over ({e}); it is not a command to run by hand"
        ))
    })?;
    if peer.uid() == 0 {
        return Ok(());
    }
    let front = User::from_name(FRONT_ACCOUNT).map_err(|e| CtlError::UserLookup(e.to_string()))?;
    match front {
        Some(front) if front.uid.as_raw() == peer.uid() => Ok(()),
        _ => Err(CtlError::WebSession(format!(
            "refused a session from uid {}: only the {FRONT_ACCOUNT} account may connect (check the session socket's owner and mode)",
            peer.uid()
        ))),
    }
}

fn set_timeout<O>(option: O, limit: Duration) -> Result<(), CtlError>
where
    O: nix::sys::socket::SetSockOpt<Val = TimeVal>,
{
    // Zero would mean no limit at all.
    let limit = limit.max(Duration::from_secs(1));
    let limit = TimeVal::new(i64::try_from(limit.as_secs()).unwrap_or(i64::MAX), 0);
    setsockopt(&std::io::stdin().as_fd(), option, &limit).map_err(|e| {
        CtlError::WebSession(format!("cannot set the session socket's time limit: {e}"))
    })
}

/// A word from the front that will be shown or logged: printable, bounded.
fn is_plain(text: &str, max: usize) -> bool {
    !text.is_empty() && text.len() <= max && text.chars().all(|c| !c.is_control())
}

#[cfg(test)]
mod tests {
    #[test]
    fn plain_words_are_bounded_and_printable() {
        assert!(super::is_plain("alice", 64));
        assert!(!super::is_plain("", 64));
        assert!(!super::is_plain("a\nb", 64));
        assert!(!super::is_plain(&"a".repeat(65), 64));
    }
}
