//! The application side of PAM: start a transaction for a service and user, answer the modules'
//! prompts through a [`Conversation`], authenticate, check the account, end. apppw-ctl uses it
//! to ask a user for their password again before minting; the tests and benchmarks use it to log
//! in the way Dovecot does.
//!
//! All `unsafe` is in `ffi`.
#![deny(unsafe_code)]

mod ffi;

pub use ffi::Transaction;
use zeroize::Zeroizing;

// PAM return codes (Linux-PAM's _pam_types.h, included by pam_appl.h): the workspace's one
// definition of each. apppw-ctl, the test client and the end-to-end tests all use these.
/// The step succeeded.
pub const PAM_SUCCESS: i32 = 0;
/// A module failed or is misconfigured.
pub const PAM_SERVICE_ERR: i32 = 3;
/// Permission denied (what libpam makes of an account group where no module decided).
pub const PAM_PERM_DENIED: i32 = 6;
/// Memory could not be allocated.
pub const PAM_BUF_ERR: i32 = 5;
/// pam_authenticate's flag: refuse an empty password even where the stack says `nullok`.
pub const PAM_DISALLOW_NULL_AUTHTOK: i32 = 0x0001;
/// pam_acct_mgmt's answer for an account whose password has expired and must be changed.
pub const PAM_NEW_AUTHTOK_REQD: i32 = 12;
/// Authentication failure.
pub const PAM_AUTH_ERR: i32 = 7;
/// The authentication information (for pam_apppw: the store) cannot be reached.
pub const PAM_AUTHINFO_UNAVAIL: i32 = 9;
/// The conversation failed.
pub const PAM_CONV_ERR: i32 = 19;
/// A critical error: the transaction must end.
pub const PAM_ABORT: i32 = 26;

/// Answers what the modules ask.
pub trait Conversation {
    /// A prompt; `echo` says whether the answer may be shown as typed. `None` aborts the
    /// conversation (PAM_CONV_ERR).
    fn prompt(&mut self, message: &str, echo: bool) -> Option<Zeroizing<Vec<u8>>>;
    /// A message to show; `error` for PAM_ERROR_MSG, else PAM_TEXT_INFO.
    fn show(&mut self, message: &str, error: bool);
}

/// Answers every prompt with the same secret and ignores messages, like a mail server relaying a
/// client's password.
pub struct FixedSecret(pub Zeroizing<Vec<u8>>);

impl Conversation for FixedSecret {
    fn prompt(&mut self, _message: &str, _echo: bool) -> Option<Zeroizing<Vec<u8>>> {
        Some(self.0.clone())
    }

    fn show(&mut self, _message: &str, _error: bool) {}
}
