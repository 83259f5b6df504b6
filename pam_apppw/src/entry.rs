//! The C entry points. pamsm's `pam_module!` generates all six `pam_sm_*` functions (the only
//! symbols this library exports) and calls the trait methods below. Every one of them is defined
//! here (pamsm's defaults would answer outside the guard) and runs its body inside `guard`, so no
//! panic ever unwinds into libpam or its host.
#![allow(unsafe_code)]

use std::panic::{AssertUnwindSafe, catch_unwind};

use pamsm::{Pam, PamError, PamFlags, PamServiceModule, pam_module};

use crate::outcome::{Failure, Report, finish};

struct PamApppw;

impl PamServiceModule for PamApppw {
    fn authenticate(pamh: Pam, _flags: PamFlags, args: Vec<String>) -> PamError {
        guard(&pamh, "auth", || crate::auth::authenticate(&pamh, &args))
    }

    /// Nothing to establish: an app password carries no credentials beyond the login itself.
    fn setcred(pamh: Pam, _flags: PamFlags, args: Vec<String>) -> PamError {
        fixed_answer(&pamh, "setcred", &args, PamError::SUCCESS)
    }

    /// apppw has no account policy of its own (an expired or locked Unix account is pam_unix's
    /// to refuse, which is why the examples keep it in the account stack): PAM_IGNORE lets the
    /// other account modules decide. Dovecot always calls this.
    fn acct_mgmt(pamh: Pam, _flags: PamFlags, args: Vec<String>) -> PamError {
        fixed_answer(&pamh, "account", &args, PamError::IGNORE)
    }

    /// apppw changes no password. With `revoke_on_password_change`, a change that reached it
    /// revokes the user's codes (`password.rs`); otherwise PAM_IGNORE.
    fn chauthtok(pamh: Pam, flags: PamFlags, args: Vec<String>) -> PamError {
        guard(&pamh, "password", || {
            crate::password::chauthtok(&pamh, flags, &args)
        })
    }

    /// No session to open or close: PAM_IGNORE.
    fn open_session(pamh: Pam, _flags: PamFlags, args: Vec<String>) -> PamError {
        fixed_answer(&pamh, "session", &args, PamError::IGNORE)
    }

    fn close_session(pamh: Pam, _flags: PamFlags, args: Vec<String>) -> PamError {
        fixed_answer(&pamh, "session", &args, PamError::IGNORE)
    }
}

/// An entry point with nothing to decide: checks the options (a bad line fails closed in every
/// group), then gives `answer`, inside the guard like every other.
fn fixed_answer(pamh: &Pam, group: &str, args: &[String], answer: PamError) -> PamError {
    guard(pamh, group, || crate::auth::no_op(args, answer))
}

/// Runs one entry point's body; a panic becomes a logged PAM_SERVICE_ERR, never an unwind into C
/// and never a message on the host's stderr.
fn guard<'a>(
    pamh: &'a Pam,
    group: &str,
    body: impl FnOnce() -> Result<Report<'a>, Failure>,
) -> PamError {
    // This library has its own copy of std, so the hook is ours alone: silence the default one,
    // which would print to the host's stderr.
    std::panic::set_hook(Box::new(|_| {}));
    let result = catch_unwind(AssertUnwindSafe(body))
        .unwrap_or_else(|panic| Err(Failure::Panic(panic_message(&*panic))));
    finish(pamh, group, result)
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_owned()
    }
}

// SAFETY: the macro defines `extern "C" fn pam_sm_*(pamh, flags, argc, argv)` that libpam calls
// with a valid handle and `argc` valid C strings, as pam_sm_authenticate(3) specifies; it checks
// `argc >= 0`, copies the arguments into owned Strings, and calls the safe trait methods above.
pam_module!(PamApppw);
