//! What can go wrong in apppw-ctl beyond the core's own errors. `main` prints these on stderr and
//! exits 1.
#![forbid(unsafe_code)]

#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    #[error(transparent)]
    Core(#[from] apppw_core::Error),

    #[error(
        "{option} is for root only: it would let you act on a store, user or configuration other than your own. Run it as root (e.g. with sudo), or leave it out to manage your own app passwords"
    )]
    RootOnly { option: &'static str },

    #[error(
        "this site does not set {setting} in {config}, so there is nothing to do; revoke codes with `apppw-ctl revoke`"
    )]
    PolicyOff {
        setting: &'static str,
        config: String,
    },

    #[error("`apppw-ctl {command}` is for root only; run it with sudo")]
    RootOnlyCommand { command: &'static str },

    #[error("there is no user named {0:?} on this host; check the name with `getent passwd`")]
    NoSuchUser(String),

    #[error("cannot find your own account (uid {0}) in the user database; ask your administrator")]
    UnknownCaller(u32),

    #[error("cannot read the user database: {0}")]
    UserLookup(String),

    #[error(
        "{user} may not create app passwords on this host (allowed_users / allowed_groups in {config}); ask your administrator"
    )]
    NotAllowed { user: String, config: String },

    #[error(
        "apppw-ctl needs a terminal to ask for your password again; connect with `ssh -t` (or run it in an interactive session)"
    )]
    NoTerminal,

    #[error(
        "confirm your password again first: you signed in or last confirmed it too long ago; nothing was changed"
    )]
    ConfirmAgain,

    #[error("your identity could not be confirmed ({0}); nothing was changed")]
    Reauthentication(String),

    #[error("the operating system's random number generator failed ({0}); nothing was created")]
    Random(String),

    #[error("a code takes at most {max} services and {max} networks")]
    TooManyLimits { max: usize },

    /// `--expires` that does not parse; the parser's message says why.
    #[error("--expires: {0}")]
    BadExpiry(String),

    /// A helper process's error, already in words.
    #[error("{0}")]
    Helper(String),

    #[error(
        "the apppw system account is missing, so apppw-ctl cannot act for you safely; ask your administrator to run `apppw-ctl init`"
    )]
    NoStoreAccount,

    #[error("apppw-ctl will not touch the store: {0}. Nothing was changed")]
    Hindered(String),

    #[error(
        "standard output is closed or /dev/null, so a new app password would be shown to nobody; nothing was created. Run `apppw-ctl new` where its output can be seen"
    )]
    StdoutClosed,

    #[error(
        "the new app password could not be shown ({0}), so it was withdrawn (revoked) and nothing is left active. Run `apppw-ctl new` again where its output can be seen"
    )]
    CodeNotShown(std::io::Error),

    /// The web session's helper: what ended the session or refused the request.
    #[error("{0}")]
    WebSession(String),

    #[error("{action} failed: {reason}")]
    Setup { action: String, reason: String },

    #[error("could not write the output: {0}")]
    Output(std::io::Error),
}
