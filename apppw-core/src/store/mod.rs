//! The store: what apppw keeps about app passwords, behind one type whichever database holds it.
//! [`Store`] is the SQLite file on this host (`sqlite.rs`, the default, no server) or a PostgreSQL
//! database shared by many hosts (`postgres.rs`). Commands and the login decision call `Store`
//! and never ask which; each backend keeps its SQL next to the rules it relies on, and the rules
//! that are not SQL (what a check's answer means, what an event says) live here, once. The
//! schemas are in `schema.rs`.
#![forbid(unsafe_code)]

mod pg_connection;
mod postgres;
mod sqlite;

use zeroize::Zeroizing;

use crate::accounts::Accounts;
use crate::error::Error;
use crate::label::Label;
use crate::login::LoginStore;
use crate::scope::Scope;

pub use pg_connection::{DEFAULT_CONNECT_TIMEOUT, PgTarget, StoreTarget};
pub use postgres::{PgInitReport, PgStore};
pub use sqlite::{DEFAULT_STORE_PATH, SqliteStore};

/// The window `max_changes_per_day` counts over.
const DAY_SECS: i64 = 86_400;

/// Who is opening the store, which decides durability and whether the schema may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// The PAM module: existing store of the current schema only; last-use writes may be lost
    /// on power failure (`synchronous=NORMAL`), never the codes themselves.
    Login,
    /// apppw-ctl: every commit is fsynced (`synchronous=FULL`) so that a revocation that returned
    /// can never come back. `create` makes a new store if none exists; `upgrade` migrates an
    /// older schema (root's runs only: an upgrade to schema 5 must be followed by binding codes to
    /// accounts, which only root does), and without it an older store is refused.
    Manage { create: bool, upgrade: bool },
}

/// The account a code belongs to: its user name and the uid that name had when the code was
/// made. Every query on one person's codes matches both, so a new account that got an old name
/// never sees or touches the old account's codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner<'a> {
    pub name: &'a str,
    pub uid: u32,
}

/// Whose events `events` reads.
#[derive(Clone, Copy, Debug)]
pub enum EventsAbout<'a> {
    Owner(Owner<'a>),
    Name(&'a str),
    Everyone,
}

/// Whose codes `revoke_all` revokes.
#[derive(Clone, Copy, Debug)]
pub enum RevokeScope<'a> {
    /// One account's own codes (`revoke --all`).
    Owner(Owner<'a>),
    /// Every code under a user name, whichever account made it (`lockdown`).
    Name(&'a str),
    /// Every code of every user (`revoke --all-users`).
    Everyone,
}

/// One app password as its owner and the administrator see it (never the code or hash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeInfo {
    pub id: i64,
    pub user: String,
    /// The uid its owner's name had when it was made; `None` until bound (a store from before
    /// schema 5), `NO_ACCOUNT` when the name named no account at binding.
    pub owner_uid: Option<i64>,
    pub label: String,
    pub created: i64,
    pub revoked: Option<i64>,
    pub last_used: Option<LastUse>,
    pub use_count: i64,
    /// Who created it (`name (uid N)`), when known.
    pub created_by: Option<String>,
    /// Who revoked it, when revoked and known.
    pub revoked_by: Option<String>,
    /// Its limits.
    pub scope: Scope,
}

/// Where and when a code was last used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastUse {
    pub time: i64,
    pub service: Option<String>,
    pub rhost: Option<String>,
    /// The host whose PAM module saw the login (its node name): with a store shared by several
    /// mail hosts, which of them. `None` for uses recorded before schema 6.
    pub host: Option<String>,
}

/// An active code whose lookup tag matched a login attempt.
pub struct Candidate {
    pub id: i64,
    pub label: String,
    pub hash: Zeroizing<String>,
    pub scope: Scope,
    pub created: i64,
    pub last_used: Option<i64>,
    /// See [`CodeInfo::owner_uid`].
    pub owner_uid: Option<i64>,
}

/// A code about to be stored.
pub struct NewCode<'a> {
    pub owner: Owner<'a>,
    pub label: &'a Label,
    pub lookup_tag: u32,
    pub hash: &'a str,
    pub scope: &'a Scope,
}

/// Who makes a change, from where and when. Every changing method records it as an event in the
/// change's own transaction.
#[derive(Clone, Debug)]
pub struct Changer<'a> {
    /// The real uid of the person (apppw-ctl's caller).
    pub uid: u32,
    pub name: &'a str,
    /// The controlling terminal and the remote host recorded for it, or `no terminal`.
    pub origin: &'a str,
    /// Unix seconds.
    pub now: i64,
    /// Most codes this person may create, rename or edit in 24 hours; `None` for root.
    pub daily_cap: Option<u32>,
}

impl Changer<'static> {
    /// Root at `now`, with no terminal and no cap: for tools and tests that act as the
    /// administrator.
    pub fn root(now: i64) -> Changer<'static> {
        Changer {
            uid: 0,
            name: "root",
            origin: "no terminal",
            now,
            daily_cap: None,
        }
    }
}

impl Changer<'_> {
    /// How the code rows name who created or revoked them: `alice (uid 1001)`.
    pub fn actor(&self) -> String {
        format!("{} (uid {})", self.name, self.uid)
    }
}

/// One recorded change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub id: i64,
    pub time: i64,
    pub actor_uid: u32,
    pub actor: String,
    pub origin: String,
    pub user: Option<String>,
    pub action: String,
    pub code_id: Option<i64>,
    pub label: Option<String>,
    pub detail: Option<String>,
}

/// What a login records about a successful use.
pub struct UseRecord<'a> {
    pub now: i64,
    pub service: Option<&'a str>,
    pub rhost: Option<&'a str>,
    /// This host's node name (`uname -n`).
    pub host: Option<&'a str>,
    /// A use within this many seconds of the recorded one is not written again.
    pub min_interval: i64,
}

impl UseRecord<'_> {
    /// Service, remote host and host, each cut to `MAX_ITEM_BYTES`: PAM items are whatever the
    /// application passed, and a row stays small whatever they are.
    fn bounded_items(&self) -> (Option<&str>, Option<&str>, Option<&str>) {
        fn cut(item: Option<&str>) -> Option<&str> {
            item.map(|s| bounded(s, MAX_ITEM_BYTES))
        }
        (cut(self.service), cut(self.rhost), cut(self.host))
    }
}

/// Which code a command means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodeRef {
    Id(i64),
    Label(Label),
}

impl CodeRef {
    /// Digits name an id; anything else a label.
    pub fn parse(text: &str) -> Result<CodeRef, Error> {
        match text.trim().parse::<i64>() {
            Ok(id) if id > 0 => Ok(CodeRef::Id(id)),
            _ => Ok(CodeRef::Label(Label::new(text)?)),
        }
    }

    fn describe(&self) -> String {
        match self {
            CodeRef::Id(id) => format!("with id {id}"),
            CodeRef::Label(label) => format!("labelled {:?}", label.as_str()),
        }
    }
}

/// Longest PAM item (service, remote host) a use record keeps, in bytes.
const MAX_ITEM_BYTES: usize = 255;

/// `text` cut to at most `max` bytes, on a character boundary.
fn bounded(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// What `bind_unowned` did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BindOutcome {
    /// Names whose codes were bound.
    pub bound: Vec<Binding>,
    /// Names the user database could not answer for, and why.
    pub postponed: Vec<(String, String)>,
}

/// What `bind_unowned` did for one name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    pub user: String,
    /// The uid the name resolved to; `None`: no account.
    pub uid: Option<u32>,
    pub codes: usize,
}

/// A code whose owner is gone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Orphan {
    pub code: CodeInfo,
    /// What its owner's name resolves to now (`None`: no account).
    pub now_uid: Option<u32>,
}

/// One (service, remote host, host) triple a code was used with: the PAM service, the client's
/// address and the host that saw it. Empty text: not known (not set, or recorded before schema 6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UseEntry {
    pub service: String,
    pub rhost: String,
    pub host: String,
    pub first: i64,
    pub last: i64,
    pub count: i64,
}

/// What an [`Edit`] changes; `None` leaves a part as it is.
#[derive(Default)]
pub struct Edit<'a> {
    pub label: Option<&'a Label>,
    pub scope: Option<&'a Scope>,
    /// The limits the caller saw when it decided on this change (and on whether to ask for the
    /// account password): if they changed since, the edit is refused rather than applied on top.
    pub expected_scope: Option<&'a Scope>,
}

impl Edit<'_> {
    /// Refuses an edit decided on limits that changed since they were read.
    fn check_still_current(&self, owner: Owner<'_>, code: &CodeInfo) -> Result<(), Error> {
        if self
            .expected_scope
            .is_some_and(|expected| *expected != code.scope)
        {
            return Err(Error::ChangedMeanwhile {
                user: owner.name.into(),
                id: code.id,
            });
        }
        Ok(())
    }

    /// The label it sets, if that is not the code's label already.
    fn new_label(&self, code: &CodeInfo) -> Option<&Label> {
        self.label.filter(|l| l.as_str() != code.label)
    }

    /// Applies the change to `code` as read (once the backend has written it) and returns what
    /// the event records: the action (`edited` when limits were set, else `renamed`) and the
    /// detail (the old label, the new limits).
    fn apply(&self, code: &mut CodeInfo) -> (&'static str, String) {
        let mut details = Vec::new();
        if let Some(label) = self.new_label(code) {
            details.push(format!("label was {:?}", code.label));
            code.label = label.as_str().into();
        }
        if let Some(scope) = self.scope {
            details.push(scope_detail(scope));
            code.scope = scope.clone();
        }
        let action = if self.scope.is_some() {
            "edited"
        } else {
            "renamed"
        };
        (action, details.join("; "))
    }
}

/// The parts of an event that are not the changer.
#[derive(Clone, Copy)]
struct EventRecord<'a> {
    user: Option<&'a str>,
    owner_uid: Option<i64>,
    action: &'a str,
    code_id: Option<i64>,
    label: Option<&'a str>,
    detail: Option<&'a str>,
}

impl<'a> EventRecord<'a> {
    /// `action` on code `code_id` (labelled `label`) of `owner`, with nothing more to say.
    fn about_code(owner: Owner<'a>, action: &'a str, code_id: i64, label: &'a str) -> Self {
        EventRecord {
            user: Some(owner.name),
            owner_uid: Some(i64::from(owner.uid)),
            action,
            code_id: Some(code_id),
            label: Some(label),
            detail: None,
        }
    }

    /// `action` on the store as a whole (no user, no code), with `detail`.
    fn store_wide(action: &'a str, detail: &'a str) -> Self {
        EventRecord {
            user: None,
            owner_uid: None,
            action,
            code_id: None,
            label: None,
            detail: Some(detail),
        }
    }

    /// An edit of `owner`'s `code` (as changed), `action` and `detail` from [`Edit::apply`].
    fn edit(owner: Owner<'a>, code: &'a CodeInfo, action: &'a str, detail: &'a str) -> Self {
        EventRecord {
            user: Some(owner.name),
            owner_uid: Some(i64::from(owner.uid)),
            action,
            code_id: Some(code.id),
            label: Some(&code.label),
            detail: (!detail.is_empty()).then_some(detail),
        }
    }

    /// The binding of every code under `user` to `owner_uid`, at upgrade.
    fn binding(user: &'a str, owner_uid: i64, detail: &'a str) -> Self {
        EventRecord {
            user: Some(user),
            owner_uid: Some(owner_uid),
            action: "bound",
            code_id: None,
            label: None,
            detail: Some(detail),
        }
    }

    /// `action` on the code `code`, as its row says whose it is.
    fn about_row(code: &'a CodeInfo, action: &'a str) -> Self {
        EventRecord {
            user: Some(&code.user),
            owner_uid: code.owner_uid,
            action,
            code_id: Some(code.id),
            label: Some(&code.label),
            detail: None,
        }
    }
}

/// The columns of [`CodeInfo`], in the order both backends read them (`"user"` is quoted: it is
/// a reserved word in PostgreSQL, and a plain identifier to SQLite).
const CODE_INFO_COLUMNS: &str = "id, \"user\", label, created, revoked, last_used, last_service, \
     last_rhost, use_count, created_by, revoked_by, services, networks, expires, owner_uid, last_host";

/// What a new code's check found among the active codes under its owner's name.
struct NewCodeCheck {
    /// The owner account's active codes.
    active: i64,
    /// Whether the account (or a code not yet bound) already uses the label.
    label_taken: bool,
    /// Whether any active code under the name has the lookup tag.
    tag_taken: bool,
}

impl NewCodeCheck {
    /// Whether to insert (`Ok(true)`), draw another code (`Ok(false)`: the tag is taken, so a
    /// login would have two hashes to try), or refuse.
    fn verdict(&self, code: &NewCode<'_>, max_active: u32) -> Result<bool, Error> {
        if self.label_taken {
            return Err(Error::LabelTaken {
                user: code.owner.name.into(),
                label: code.label.as_str().into(),
            });
        }
        if self.active >= i64::from(max_active) {
            return Err(Error::TooManyCodes {
                user: code.owner.name.into(),
                limit: max_active,
            });
        }
        Ok(!self.tag_taken)
    }
}

/// Refuses a creation or change once the changer made `daily_cap` of them in the last 24 hours
/// (`count` of them, the oldest at `oldest`), saying when the oldest falls out of the window.
fn daily_cap_verdict(by: &Changer<'_>, count: i64, oldest: Option<i64>) -> Result<(), Error> {
    match by.daily_cap {
        Some(cap) if count >= i64::from(cap) => Err(Error::DailyCapReached {
            user: by.name.into(),
            cap,
            again_at: oldest.unwrap_or(by.now) + DAY_SECS,
        }),
        _ => Ok(()),
    }
}

/// The actions `max_changes_per_day` counts, as the event trail names them.
const CAPPED_ACTIONS: &str = "('created', 'renamed', 'edited')";

/// The event detail of an edit that set `scope`.
fn scope_detail(scope: &Scope) -> String {
    format!(
        "services={} networks={} expires={}",
        scope.services_column().as_deref().unwrap_or("any"),
        scope.networks_column().as_deref().unwrap_or("any"),
        scope
            .expires
            .map_or("never".to_string(), crate::timefmt::rfc3339),
    )
}

/// The event detail of `prune`.
fn prune_detail(removed: usize, revoked_before: i64) -> String {
    format!(
        "{removed} revoked app passwords, revoked up to {}",
        crate::timefmt::rfc3339(revoked_before)
    )
}

/// The event detail of `prune --orphans`.
fn orphans_pruned_detail(deleted: usize) -> String {
    format!("{deleted} app passwords of deleted or replaced accounts")
}

/// What binding a name's codes to `uid` records.
fn binding_detail(codes: i64, uid: Option<u32>) -> String {
    match uid {
        Some(uid) => format!("{codes} app passwords bound to uid {uid} at upgrade"),
        None => {
            format!("{codes} app passwords of a name with no account at upgrade; they never log in")
        }
    }
}

/// One name's answer from the user database, for `bind_unowned`.
struct BindingAnswer {
    user: String,
    uid: Option<u32>,
    /// How many codes carry the name (its events are bound too).
    codes: i64,
}

impl BindingAnswer {
    fn owner_uid(&self) -> i64 {
        self.uid.map_or(crate::schema::NO_ACCOUNT, i64::from)
    }
}

/// Asks the user database about each unbound name (with the number of codes under it), with no
/// transaction open: the answers, and the names it could not answer for (postponed).
fn ask_about_unbound(
    unbound: Vec<(String, i64)>,
    accounts: &impl Accounts,
) -> (Vec<BindingAnswer>, BindOutcome) {
    let mut outcome = BindOutcome::default();
    let mut answers = Vec::new();
    for (user, codes) in unbound {
        match accounts.uid_of(&user) {
            Ok(uid) => answers.push(BindingAnswer { user, uid, codes }),
            Err(e) => outcome.postponed.push((user, e.to_string())),
        }
    }
    (answers, outcome)
}

/// Records the written `answers` in `outcome`: names that had codes.
fn bound(answers: Vec<BindingAnswer>, mut outcome: BindOutcome) -> BindOutcome {
    for answer in answers {
        if answer.codes > 0 {
            outcome.bound.push(Binding {
                user: answer.user,
                uid: answer.uid,
                codes: usize::try_from(answer.codes).unwrap_or(usize::MAX),
            });
        }
    }
    outcome
}

/// The codes among `codes` (ordered by user name) whose owner's name now resolves to another
/// uid or to no account. Unbound codes (no owner yet) are not orphans: their owner is not known.
fn orphans_among(codes: Vec<CodeInfo>, accounts: &impl Accounts) -> Result<Vec<Orphan>, Error> {
    let mut orphans = Vec::new();
    let mut looked_up: Option<(String, Option<u32>)> = None;
    for code in codes {
        // Rows come ordered by name: one lookup per name.
        let now_uid = match &looked_up {
            Some((name, uid)) if *name == code.user => *uid,
            _ => {
                let uid = accounts.uid_of(&code.user)?;
                looked_up = Some((code.user.clone(), uid));
                uid
            }
        };
        if code.owner_uid.is_some() && code.owner_uid != now_uid.map(i64::from) {
            orphans.push(Orphan { code, now_uid });
        }
    }
    Ok(orphans)
}

/// Every column of one `app_passwords` row, as stored (limits as their column text, the hash as
/// is): what `migrate` copies and compares. Its `Debug` leaves the hash out.
#[derive(Clone, PartialEq, Eq)]
pub struct CodeRow {
    pub id: i64,
    pub user: String,
    pub label: String,
    pub lookup_tag: i64,
    pub hash: Option<Zeroizing<String>>,
    pub created: i64,
    pub revoked: Option<i64>,
    pub last_used: Option<i64>,
    pub last_service: Option<String>,
    pub last_rhost: Option<String>,
    pub last_host: Option<String>,
    pub use_count: i64,
    pub created_by: Option<String>,
    pub revoked_by: Option<String>,
    pub services: Option<String>,
    pub networks: Option<String>,
    pub expires: Option<i64>,
    pub owner_uid: Option<i64>,
}

impl std::fmt::Debug for CodeRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeRow")
            .field("id", &self.id)
            .field("user", &self.user)
            .field("label", &self.label)
            .field("has_hash", &self.hash.is_some())
            .finish_non_exhaustive()
    }
}

/// The columns of [`CodeRow`], in its order.
const CODE_ROW_COLUMNS: &str = "id, \"user\", label, lookup_tag, hash, created, revoked, last_used, \
     last_service, last_rhost, last_host, use_count, created_by, revoked_by, services, networks, \
     expires, owner_uid";

/// One `events` row, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRow {
    pub event: Event,
    pub owner_uid: Option<i64>,
}

/// The columns of [`EventRow`], in its order.
const EVENT_ROW_COLUMNS: &str =
    "id, time, actor_uid, actor, origin, \"user\", action, code_id, label, detail, owner_uid";

/// The columns of [`UseRow`], in its order.
const USE_ROW_COLUMNS: &str = "code_id, service, rhost, host, first, last, count";

/// One `code_uses` row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UseRow {
    pub code_id: i64,
    pub entry: UseEntry,
}

/// Every row of a store, ordered by key: what `migrate` copies, and compares after copying.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreRows {
    pub codes: Vec<CodeRow>,
    pub events: Vec<EventRow>,
    pub uses: Vec<UseRow>,
}

/// An open store, whichever database holds it.
pub enum Store {
    /// The SQLite file on this host.
    Sqlite(SqliteStore),
    /// A PostgreSQL database, possibly shared by many hosts.
    Postgres(PgStore),
}

/// Calls the same method on whichever backend `$store` is.
macro_rules! on_backend {
    ($store:expr, $backend:ident => $call:expr) => {
        match $store {
            Store::Sqlite($backend) => $call,
            Store::Postgres($backend) => $call,
        }
    };
}

impl Store {
    /// Opens the SQLite store at `path` with the checks the module and apppw-ctl make
    /// ([`SqliteStore::open`]).
    pub fn open(path: &std::path::Path, access: Access) -> Result<Store, Error> {
        SqliteStore::open(path, access).map(Store::Sqlite)
    }

    /// Opens an SQLite store in a directory of the caller's own ([`SqliteStore::open_scratch`]).
    pub fn open_scratch(path: &std::path::Path, access: Access) -> Result<Store, Error> {
        SqliteStore::open_scratch(path, access).map(Store::Sqlite)
    }

    /// Opens the store `target` names: an SQLite file (with [`Store::open`]'s checks) or a
    /// PostgreSQL database.
    pub fn open_target(target: &StoreTarget, access: Access) -> Result<Store, Error> {
        match target {
            StoreTarget::Sqlite(path) => Store::open(path, access),
            StoreTarget::Postgres(target) => PgStore::open(target, access).map(Store::Postgres),
        }
    }

    /// Whether the store can still be used: always for SQLite; for PostgreSQL, unless its
    /// connection failed, timed out or was closed.
    pub fn is_usable(&self) -> bool {
        match self {
            Store::Sqlite(_) => true,
            Store::Postgres(store) => store.is_usable(),
        }
    }

    /// Where the store is, for messages: a path, or a PostgreSQL address (never a password).
    pub fn location(&self) -> String {
        match self {
            Store::Sqlite(store) => store.path().display().to_string(),
            Store::Postgres(store) => store.location().to_owned(),
        }
    }

    /// See [`SqliteStore::insert`].
    pub fn insert(
        &mut self,
        code: &NewCode<'_>,
        max_active: u32,
        by: &Changer<'_>,
    ) -> Result<Option<i64>, Error> {
        on_backend!(self, s => s.insert(code, max_active, by))
    }

    /// Takes back a code that was just created but could not be shown to anyone (`new` whose
    /// output failed): revoked like any other, recorded as `withdrawn`.
    pub fn withdraw(
        &mut self,
        owner: Owner<'_>,
        id: i64,
        by: &Changer<'_>,
    ) -> Result<CodeInfo, Error> {
        on_backend!(self, s => s.revoke_as(owner, &CodeRef::Id(id), by, "withdrawn"))
    }

    /// Codes of `owner`, oldest first; revoked ones only when asked.
    pub fn list(&self, owner: Owner<'_>, include_revoked: bool) -> Result<Vec<CodeInfo>, Error> {
        on_backend!(self, s => s.list(owner, include_revoked))
    }

    /// One of `owner`'s active codes, as it is now.
    pub fn find(&self, owner: Owner<'_>, which: &CodeRef) -> Result<CodeInfo, Error> {
        on_backend!(self, s => s.find(owner, which))
    }

    /// Renames one of `owner`'s active codes.
    pub fn rename(
        &mut self,
        owner: Owner<'_>,
        which: &CodeRef,
        new_label: &Label,
        by: &Changer<'_>,
    ) -> Result<CodeInfo, Error> {
        let change = Edit {
            label: Some(new_label),
            ..Edit::default()
        };
        self.edit(owner, which, &change, by)
    }

    /// Changes the label and/or the limits of one of `owner`'s active codes: the read, the checks
    /// and the write in one transaction, so a concurrent change is never lost. Narrowed limits
    /// apply from the next login on.
    pub fn edit(
        &mut self,
        owner: Owner<'_>,
        which: &CodeRef,
        change: &Edit<'_>,
        by: &Changer<'_>,
    ) -> Result<CodeInfo, Error> {
        on_backend!(self, s => s.edit(owner, which, change, by))
    }

    /// Revokes one of `owner`'s active codes: the hash is wiped, the row stays for the audit
    /// trail. Revoking is never refused by the daily cap.
    pub fn revoke(
        &mut self,
        owner: Owner<'_>,
        which: &CodeRef,
        by: &Changer<'_>,
    ) -> Result<CodeInfo, Error> {
        on_backend!(self, s => s.revoke_as(owner, which, by, "revoked"))
    }

    /// Revokes every active code in `scope`; returns what was revoked (possibly nothing), and
    /// records `action` (`revoked`, or `locked down`) for each.
    pub fn revoke_all(
        &mut self,
        scope: RevokeScope<'_>,
        action: &str,
        by: &Changer<'_>,
    ) -> Result<Vec<CodeInfo>, Error> {
        on_backend!(self, s => s.revoke_all(scope, action, by))
    }

    /// Every code, or one user's, revoked ones included, for `audit`: never-used codes first,
    /// then by last use, oldest first, so that stale codes stand out.
    pub fn audit(&self, user: Option<&str>) -> Result<Vec<CodeInfo>, Error> {
        let mut codes = Vec::new();
        self.audit_each(user, |code| {
            codes.push(code);
            Ok::<(), Error>(())
        })?;
        Ok(codes)
    }

    /// The same codes in the same order, each handed to `each` as it is read rather than all
    /// held at once: `audit --json` of a million codes writes them out as they come.
    pub fn audit_each<E: From<Error>>(
        &self,
        user: Option<&str>,
        each: impl FnMut(CodeInfo) -> Result<(), E>,
    ) -> Result<(), E> {
        on_backend!(self, s => s.audit_each(user, each))
    }

    /// Deletes the rows of codes revoked at or before `revoked_before`; returns how many. The
    /// event trail is kept.
    pub fn prune(&mut self, revoked_before: i64, by: &Changer<'_>) -> Result<usize, Error> {
        on_backend!(self, s => s.prune(revoked_before, by))
    }

    /// The event trail, oldest first, at most the `limit` newest: about one account's codes
    /// (`list --events`), everything under one name (root's `audit --events --user`), or all.
    pub fn events(&self, about: EventsAbout<'_>, limit: u32) -> Result<Vec<Event>, Error> {
        on_backend!(self, s => s.events(about, limit))
    }

    /// Binds codes from before schema 5 (no owner uid) to the uid their owner's name has now,
    /// or to `NO_ACCOUNT` when it names none, with their events: the user database is asked
    /// first, with no transaction open, then one short transaction writes every answer and a
    /// `bound` event per name. A name the database cannot answer for is postponed: its codes
    /// stay unbound, and refused. apppw-ctl runs this in root's runs only.
    pub fn bind_unowned(
        &mut self,
        accounts: &impl Accounts,
        by: &Changer<'_>,
    ) -> Result<BindOutcome, Error> {
        on_backend!(self, s => s.bind_unowned(accounts, by))
    }

    /// Codes (active and revoked) whose owner's name now resolves to another uid or to no
    /// account: what `audit --orphans` shows and `prune --orphans` deletes.
    pub fn orphans(&self, accounts: &impl Accounts) -> Result<Vec<Orphan>, Error> {
        on_backend!(self, s => orphans_among(s.every_code_by_user()?, accounts))
    }

    /// Deletes every row `orphans` lists, with its use history, in one transaction, each only
    /// if it is still as it was read; the event trail is kept. Returns what was deleted.
    pub fn prune_orphans(
        &mut self,
        accounts: &impl Accounts,
        by: &Changer<'_>,
    ) -> Result<Vec<Orphan>, Error> {
        let orphans = self.orphans(accounts)?;
        on_backend!(self, s => s.delete_orphans(orphans, by))
    }

    /// Where code `id` was used recently: its distinct (service, remote host, host) triples,
    /// most recent first (at most `USE_HISTORY_LIMIT`).
    pub fn uses(&self, id: i64) -> Result<Vec<UseEntry>, Error> {
        on_backend!(self, s => s.uses(id))
    }

    /// One of `owner`'s codes, active or revoked, by id (for `list --history`).
    pub fn find_any(&self, owner: Owner<'_>, id: i64) -> Result<CodeInfo, Error> {
        on_backend!(self, s => s.find_any(owner, id))
    }

    /// Every row, for `migrate`: codes by id, events by id, uses by (code, service, host...).
    /// One read transaction, so the rows are one moment's.
    pub fn export(&mut self) -> Result<StoreRows, Error> {
        on_backend!(self, s => s.export())
    }

    /// Writes `rows` into this store, which must hold no code and no event (else
    /// `MigrateTargetNotEmpty`, and nothing is written), in one transaction, ids as they are;
    /// new ids continue after the highest copied.
    pub fn import(&mut self, rows: &StoreRows) -> Result<(), Error> {
        on_backend!(self, s => s.import(rows))
    }
}

impl LoginStore for Store {
    fn candidates(&self, user: &str, lookup_tag: u32) -> Result<Vec<Candidate>, Error> {
        on_backend!(self, s => s.candidates(user, lookup_tag))
    }

    fn record_use(&self, id: i64, record: &UseRecord<'_>) -> Result<bool, Error> {
        on_backend!(self, s => s.record_use(id, record))
    }
}
