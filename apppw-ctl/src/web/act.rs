//! Running one command for the signed-in user. The helper starts a fresh apppw-ctl process
//! (`apppw-ctl web-act`, root only) for each request and hands it the request on a pipe (never
//! in argv, which every local user can read in `ps`); that process becomes the user exactly as
//! the setuid apppw-ctl becomes a user who runs it (`privilege::act_for`), and runs the same
//! command code with the same checks, caps, event rows and syslog lines, with the origin
//! `web from ADDRESS`. Its output goes straight onto the session's socket as one line
//! (`Output::flush`), so a new code counts as shown only once the front has it; if that fails,
//! the code is withdrawn as on a terminal. A fresh process, rather than a fork of the helper,
//! starts with nothing of the helper's memory (the password, PAM's state).
#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use clap::Parser;
use nix::unistd::{Uid, User, getuid};
use serde::{Deserialize, Serialize};

use super::protocol::{Reply, reply_line};
use super::{Channel, Session};
use crate::cli::{ManagingCommand, WebActArgs, WebRequest};
use crate::context::Context;
use crate::error::CtlError;

/// Most words one request may have (a code takes at most 32 services and 32 networks).
const MAX_WORDS: usize = 80;

/// How long one command may take. Its own store deadlines are far shorter; but until it becomes
/// the store account the user it acts for can stop it (as they can their own apppw-ctl at a
/// terminal), and a stopped command must not keep this root helper, and its socket slot, for
/// hours.
const COMMAND_LIMIT: Duration = Duration::from_secs(120);

/// What the helper hands `web-act` on its stdin.
#[derive(Serialize, Deserialize)]
struct Order {
    uid: u32,
    /// The name the helper signed in, checked against the uid: two names for one uid must not
    /// confuse whom the command acts for.
    user: String,
    address: String,
    confirmed_secs_ago: u64,
    words: Vec<String>,
}

/// In the helper: runs `words` for the session's user in a new process and waits for it.
pub fn run(channel: &Channel, session: &Session, words: &[String]) -> Result<(), CtlError> {
    if words.len() > MAX_WORDS || words.iter().any(|w| w.len() > 4096 || w.contains('\0')) {
        return channel.send(&Reply::Failed {
            message: "the request is too long",
            confirm_again: false,
        });
    }
    let order = Order {
        uid: session.user.uid.as_raw(),
        user: session.user.name.clone(),
        address: session.address.clone(),
        confirmed_secs_ago: session.confirmed.elapsed().as_secs(),
        words: words.to_vec(),
    };
    let status = crate::clean_exec::clean(&mut Command::new("/proc/self/exe"))
        .arg("web-act")
        .stdin(Stdio::piped())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
        .and_then(|mut child| {
            let mut line = serde_json::to_vec(&order).map_err(std::io::Error::other)?;
            line.push(b'\n');
            if let Some(mut stdin) = child.stdin.take() {
                // A child that died at once is reported by its status below.
                let _ = stdin.write_all(&line);
            }
            wait_within(&mut child, COMMAND_LIMIT)
        });
    match status {
        // The child answered (done or failed).
        Ok(status) if status.success() => Ok(()),
        Ok(status) => channel.send(&Reply::Failed {
            message: &format!("the command stopped unexpectedly ({status}); nothing is known to have changed, but check the list"),
            confirm_again: false,
        }),
        Err(e) => channel.send(&Reply::Failed {
            message: &format!("the command could not start ({e})"),
            confirm_again: false,
        }),
    }
}

/// Waits for `child`, killing it once `limit` has passed.
fn wait_within(
    child: &mut std::process::Child,
    limit: Duration,
) -> std::io::Result<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if std::time::Instant::now() >= deadline {
            // A command killed while it holds the store rolls back; it was the apppw account by
            // then, out of its user's reach, so only a stopped or stuck one is killed here.
            let _ = child.kill();
            return child.wait();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// In the child (`apppw-ctl web-act`): becomes the user, runs the command, and answers on stdout.
/// Exits 0 once an answer is written, 1 if none could be.
pub fn serve(_args: &WebActArgs) -> std::process::ExitCode {
    if !getuid().is_root() {
        let _ = fail(&CtlError::WebSession(
            "`apppw-ctl web-act` is started by `apppw-ctl web-session` as root; it is not a command to run by hand".into(),
        ));
        return std::process::ExitCode::from(1);
    }
    let mut input = Vec::new();
    let limit = u64::try_from(super::protocol::MAX_LINE).unwrap_or(u64::MAX);
    let order: Order = match std::io::stdin()
        .take(limit)
        .read_to_end(&mut input)
        .map_err(|e| e.to_string())
        .and_then(|_| serde_json::from_slice(&input).map_err(|e| e.to_string()))
    {
        Ok(order) => order,
        Err(e) => {
            return fail(&CtlError::WebSession(format!(
                "web-act read no request ({e})"
            )));
        }
    };
    let user = match User::from_uid(Uid::from_raw(order.uid)) {
        Ok(Some(user)) if user.name == order.user => user,
        Ok(_) => return fail(&CtlError::UnknownCaller(order.uid)),
        Err(e) => return fail(&CtlError::UserLookup(e.to_string())),
    };
    crate::privilege::act_for(&user);
    let result = Context::for_web(
        &user,
        &order.address,
        Duration::from_secs(order.confirmed_secs_ago),
    )
    .and_then(|ctx| {
        let request = WebRequest::try_parse_from(&order.words)
            .map_err(|e| CtlError::WebSession(e.render().to_string().trim().to_owned()))?;
        crate::run_managing(&ctx, &ManagingCommand::from(request.command))
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// Answers with the error; exit 0 if the answer was written.
fn fail(e: &CtlError) -> std::process::ExitCode {
    let message = e.to_string();
    let line = reply_line(&Reply::Failed {
        message: &message,
        confirm_again: matches!(e, CtlError::ConfirmAgain),
    });
    match crate::output::write_within(&std::io::stdout(), &line) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(_) => std::process::ExitCode::from(1),
    }
}
