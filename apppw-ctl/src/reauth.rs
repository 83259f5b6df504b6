//! "Verify your identity again": before a non-root caller mints a code or revokes all of theirs,
//! they authenticate through the PAM service `apppw-ctl` (/etc/pam.d/apppw-ctl: the account
//! password by default, MFA if the administrator adds it). pam_apppw itself never accepts an app
//! password in that service, so a leaked code cannot mint more. The prompts go to /dev/tty, with
//! echo off for secrets; without a terminal the command stops and says how to get one.
#![forbid(unsafe_code)]

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;

use apppw_core::escape_text;
use apppw_pam_client::{Conversation, PAM_SUCCESS, Transaction};
use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
use zeroize::Zeroizing;

use apppw_core::login::CTL_SERVICE;

use std::time::Duration;

use crate::context::{Confirmation, Context};
use crate::error::CtlError;

/// What the confirmation is for: on the web, each allows a different age of the last one.
#[derive(Clone, Copy)]
pub enum Purpose {
    /// `new`, or an `edit` that widens a code.
    Mint,
    /// `revoke --all`.
    RevokeAll,
}

impl Purpose {
    /// The oldest web sign-in or password confirmation that still counts: a few minutes for
    /// minting (a session left open on a shared computer cannot mint for long), and only the
    /// confirmation made for it for revoking all (the page asks each time).
    fn web_window(self) -> Duration {
        match self {
            Purpose::Mint => Duration::from_secs(5 * 60),
            Purpose::RevokeAll => Duration::from_secs(60),
        }
    }
}

/// Asks the caller to authenticate again, unless they are root or the policy says not to. On the
/// web the helper has done it already (`web::pam`): a confirmation older than the purpose allows
/// is refused with `ConfirmAgain`, and the page asks for the password.
pub fn confirm_identity(ctx: &Context, purpose: Purpose) -> Result<(), CtlError> {
    if ctx.caller.is_root() || !ctx.policy.reauthenticate {
        return Ok(());
    }
    if let Confirmation::Web { since } = ctx.confirmation {
        return if since <= purpose.web_window() {
            Ok(())
        } else {
            Err(CtlError::ConfirmAgain)
        };
    }
    let tty = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open("/dev/tty")
        .map_err(|_| CtlError::NoTerminal)?;
    let service =
        CString::new(CTL_SERVICE).map_err(|e| CtlError::Reauthentication(e.to_string()))?;
    let user =
        CString::new(ctx.caller.name.clone()).map_err(|e| CtlError::UserLookup(e.to_string()))?;
    let mut pam =
        Transaction::start(&service, &user, Box::new(Terminal::new(tty)?)).map_err(|code| {
            CtlError::Reauthentication(format!("PAM could not start (error {code})"))
        })?;
    let code = pam.authenticate(0);
    if code != PAM_SUCCESS {
        return Err(CtlError::Reauthentication(pam.describe(code)));
    }
    let code = pam.acct_mgmt(0);
    if code != PAM_SUCCESS {
        return Err(CtlError::Reauthentication(pam.describe(code)));
    }
    Ok(())
}

/// The caller's terminal, for PAM's prompts.
struct Terminal {
    reader: BufReader<File>,
    writer: File,
}

impl Terminal {
    fn new(tty: File) -> Result<Terminal, CtlError> {
        let writer = tty.try_clone().map_err(|_| CtlError::NoTerminal)?;
        Ok(Terminal {
            reader: BufReader::new(tty),
            writer,
        })
    }

    fn read_line(&mut self) -> Option<Zeroizing<Vec<u8>>> {
        let mut line = Zeroizing::new(Vec::new());
        match self.reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => {
                if line.last() == Some(&b'\n') {
                    line.pop();
                }
                Some(line)
            }
        }
    }
}

impl Conversation for Terminal {
    fn prompt(&mut self, message: &str, echo: bool) -> Option<Zeroizing<Vec<u8>>> {
        write!(self.writer, "{}", escape_text(message)).ok()?;
        self.writer.flush().ok()?;
        if echo {
            return self.read_line();
        }
        // Echo off while the secret is typed, restored whatever happens. TCSANOW keeps input that
        // is already waiting (TCSAFLUSH would throw away a password typed ahead).
        let saved = tcgetattr(&self.writer).ok()?;
        let mut quiet = saved.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        tcsetattr(&self.writer, SetArg::TCSANOW, &quiet).ok()?;
        let answer = self.read_line();
        let _ = tcsetattr(&self.writer, SetArg::TCSANOW, &saved);
        let _ = writeln!(self.writer);
        answer
    }

    fn show(&mut self, message: &str, _error: bool) {
        let _ = writeln!(self.writer, "{}", escape_text(message));
    }
}
