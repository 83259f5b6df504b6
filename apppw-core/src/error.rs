//! The one error type of the core library. Every message says what went wrong and, where a person
//! can do something about it, what to do; the PAM module maps variants to PAM codes in one place
//! and the CLI maps them to exit status 1.
#![forbid(unsafe_code)]

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "no app password store at {path}: create it by running `apppw-ctl new LABEL` (or `apppw-ctl init`) as root"
    )]
    StoreMissing { path: PathBuf },

    #[error("cannot open the app password store {path}: {reason}")]
    StoreUnreadable { path: PathBuf, reason: String },

    #[error(
        "{path} is not an apppw store ({reason}); move it aside, or point --db / db= at the right file"
    )]
    NotAStore { path: PathBuf, reason: String },

    #[error(
        "the app password store {path} is damaged ({reason}); restore it from a backup, or move it aside and mint new codes"
    )]
    Corrupt { path: PathBuf, reason: String },

    #[error(
        "the app password store {path} has schema version {found}, newer than this apppw understands ({supported}); upgrade apppw"
    )]
    SchemaTooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },

    #[error(
        "the app password store {path} has schema version {found} but this apppw needs {current}; run any `apppw-ctl` command as root to upgrade it"
    )]
    SchemaOutdated {
        path: PathBuf,
        found: i64,
        current: i64,
    },

    #[error(
        "the app password store {path} is busy (another program is using it); try again in a moment"
    )]
    Busy { path: PathBuf },

    #[error("the disk holding {path} is full; nothing was changed. Free some space and try again")]
    DiskFull { path: PathBuf },

    #[error("the app password store {path} is read-only; nothing was changed. {hint}")]
    ReadOnly { path: PathBuf, hint: &'static str },

    #[error(
        "could not write the app password store {path} ({reason}): the disk may be full, a file size limit (`ulimit -f`) may be in force, or the disk failed; nothing was changed"
    )]
    WriteFailed { path: PathBuf, reason: String },

    #[error("the app password store {path} failed: {reason}; nothing was changed")]
    Storage { path: PathBuf, reason: String },

    #[error("a stored password hash is damaged ({0}); revoke that code and mint a new one")]
    BadStoredHash(String),

    #[error("invalid Argon2id parameters: {0}")]
    HashParams(String),

    #[error("invalid label: {0}")]
    InvalidLabel(&'static str),

    #[error(
        "{user} already has an active app password labelled {label:?}; pick another label or revoke that one first"
    )]
    LabelTaken { user: String, label: String },

    #[error("{user} has no active app password {what}; `apppw-ctl list` shows the ids and labels")]
    NoSuchCode { user: String, what: String },

    #[error(
        "{user} already has {limit} active app passwords, the most allowed; revoke one you no longer use first"
    )]
    TooManyCodes { user: String, limit: u32 },

    #[error(
        "{user} has made {cap} changes (new, rename, edit) in the last 24 hours, the most this site allows (max_changes_per_day); nothing was changed. Try again after {}, or ask your administrator. Revoking always works",
        crate::timefmt::human(*again_at)
    )]
    DailyCapReached {
        user: String,
        cap: u32,
        again_at: i64,
    },

    #[error(
        "app password {id} of {user} was changed by someone else meanwhile; nothing was changed. Look at it with `apppw-ctl list` and try again"
    )]
    ChangedMeanwhile { user: String, id: i64 },

    #[error("{path}:{line}: {key}: {problem}")]
    Config {
        path: PathBuf,
        line: usize,
        key: String,
        problem: String,
    },

    #[error("{path}:{line}: expected `key = value`, found {found:?}")]
    ConfigSyntax {
        path: PathBuf,
        line: usize,
        found: String,
    },

    #[error("cannot read the configuration file {path} ({reason}); check the file and its disk")]
    ConfigUnreadable { path: PathBuf, reason: String },

    #[error("the configuration file {path} is larger than {limit} bytes; it cannot be apppw's")]
    ConfigTooLarge { path: PathBuf, limit: u64 },

    #[error(
        "the site policy does not allow app passwords for the service {service:?} (allowed: {allowed})"
    )]
    ServiceNotAllowed { service: String, allowed: String },

    #[error(
        "the site policy lets app passwords live at most {max_days} days; choose an earlier expiry"
    )]
    LifetimeTooLong { max_days: i64 },

    #[error(
        "cannot look up the account {user:?} in the user database ({reason}); check NSS (/etc/nsswitch.conf, LDAP or SSSD)"
    )]
    AccountLookup { user: String, reason: String },

    #[error(
        "cannot check PostgreSQL's server certificate against {anchors}: {reason}; it must hold the PEM certificate of the CA that signed the server's certificate"
    )]
    TlsTrust { anchors: String, reason: String },

    #[error(
        "cannot reach the PostgreSQL store {store} ({reason}); check that the server runs and this host can reach it. Nothing was changed"
    )]
    DatabaseUnavailable { store: String, reason: String },

    #[error(
        "the PostgreSQL store {store} refused apppw ({reason}); check the user and password in the connection string (in /etc/apppw/store.conf) and that the user is a member of apppw_login (the PAM module) or apppw_manage (apppw-ctl)"
    )]
    DatabaseRefused { store: String, reason: String },

    #[error(
        "{store} holds no apppw store ({reason}); create it with `apppw-ctl init --store URL` as root, with a database superuser's URL"
    )]
    DatabaseNotAStore { store: String, reason: String },

    #[error(
        "the PostgreSQL store {store} has schema version {found}, newer than this apppw understands ({supported}); upgrade apppw on this host"
    )]
    DatabaseSchemaTooNew {
        store: String,
        found: i64,
        supported: i64,
    },

    #[error(
        "the PostgreSQL store {store} has schema version {found} but this apppw needs {current}; upgrade it with `apppw-ctl init --store URL` as root, with a database superuser's URL"
    )]
    DatabaseSchemaOutdated {
        store: String,
        found: i64,
        current: i64,
    },

    #[error(
        "the PostgreSQL store {store} is busy ({reason}); nothing was changed. Try again in a moment"
    )]
    DatabaseBusy { store: String, reason: String },

    #[error(
        "the PostgreSQL store {store} did not confirm the change ({reason}); it may or may not have been made. Look with `apppw-ctl list` (or `audit`) before trying again"
    )]
    DatabaseOutcomeUnknown { store: String, reason: String },

    #[error("the PostgreSQL store {store} failed: {reason}; nothing was changed")]
    DatabaseFailed { store: String, reason: String },

    #[error(
        "{store} is not empty ({codes} app passwords, {events} events); `migrate` copies only into an empty store, so nothing was copied. Give a new store"
    )]
    MigrateTargetNotEmpty {
        store: String,
        codes: i64,
        events: i64,
    },

    #[error(
        "the copy in {store} differs from what was read ({what}); the copy is kept for inspection, but do not switch to it. Report this as a bug"
    )]
    MigrateMismatch { store: String, what: String },

    #[error("cannot use the store {given:?}: {problem}")]
    StoreTarget { given: String, problem: String },

    #[error(transparent)]
    UnsafePath(#[from] crate::secure_path::UnsafePath),

    #[error("could not draw a code with a free lookup tag after {0} tries; try again")]
    TagSpaceExhausted(u32),
}
