//! The store's schema, in one place. Each entry of [`STEPS`] moves the database one version up;
//! `PRAGMA user_version` records how far it has gone and `PRAGMA application_id` marks the file
//! as an apppw store. Never edit a released step: append a new one.
#![forbid(unsafe_code)]

use rusqlite::{Connection, TransactionBehavior};

/// `PRAGMA application_id` of an apppw store: "appw" in ASCII.
pub const APPLICATION_ID: i32 = 0x6170_7077;

/// Version 1: one row per app password, active or revoked.
///
/// - `id` is what users type in `rename`/`revoke`; AUTOINCREMENT so an id is never reused, even
///   after old rows are pruned, and a script's stale id cannot hit a newer code.
/// - `hash` is the Argon2id PHC string; it is wiped (NULL) when the code is revoked, and the row
///   is kept for the audit trail. The CHECK keeps the two states apart.
/// - `lookup_tag` is the 20-bit tag of the code (see `code.rs`); the partial index on
///   (user, lookup_tag) over active rows makes a login touch one row.
/// - Labels are unique among a user's active codes only, so a revoked label can be reused.
/// - Times are Unix seconds (UTC).
const V1: &str = "
CREATE TABLE app_passwords (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user         TEXT    NOT NULL,
    label        TEXT    NOT NULL,
    lookup_tag   INTEGER NOT NULL,
    hash         TEXT,
    created      INTEGER NOT NULL,
    revoked      INTEGER,
    last_used    INTEGER,
    last_service TEXT,
    last_rhost   TEXT,
    use_count    INTEGER NOT NULL DEFAULT 0,
    CHECK ((revoked IS NULL) = (hash IS NOT NULL))
) STRICT;
CREATE UNIQUE INDEX app_passwords_active_label
    ON app_passwords (user, label) WHERE revoked IS NULL;
CREATE INDEX app_passwords_login
    ON app_passwords (user, lookup_tag) WHERE revoked IS NULL;
PRAGMA application_id = 1634758775;
";

/// Version 2: who made each change, for the audit trail (`created_by`, `revoked_by`), written as
/// `name (uid N)` of the caller of apppw-ctl. Rows from version 1 show as unknown.
const V2: &str = "
ALTER TABLE app_passwords ADD COLUMN created_by TEXT;
ALTER TABLE app_passwords ADD COLUMN revoked_by TEXT;
";

/// Version 3: per-code limits. `services` and `networks` are space-separated lists (NULL: any),
/// `expires` Unix seconds (NULL: never). See `scope.rs`.
const V3: &str = "
ALTER TABLE app_passwords ADD COLUMN services TEXT;
ALTER TABLE app_passwords ADD COLUMN networks TEXT;
ALTER TABLE app_passwords ADD COLUMN expires INTEGER;
";

/// Version 4: the event trail. One row per change made through apppw-ctl, written in the same
/// transaction as the change, so a change that cannot be recorded is not made, and nothing the
/// caller does (closing the syslog socket, lowering `ulimit -n`) can leave a change untraced.
///
/// - `actor_uid`/`actor`: who made the change (the real uid of apppw-ctl's caller and its name).
/// - `origin`: where from, as the kernel and utmp tell it: the controlling terminal, and the
///   remote host sshd recorded for that terminal (`pts/3 from 203.0.113.5`), or `no terminal`.
/// - `user`: whose codes (NULL for store-wide changes such as prune); `code_id` and `label`:
///   which code, when one; `action`: created, renamed, edited, revoked, withdrawn, pruned;
///   `detail`: what changed, for edits.
/// - The (actor_uid, time) index counts a user's changes of the last 24 hours for
///   `max_changes_per_day`; the (user, time) index serves `list --events`.
const V4: &str = "
CREATE TABLE events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    time      INTEGER NOT NULL,
    actor_uid INTEGER NOT NULL,
    actor     TEXT    NOT NULL,
    origin    TEXT    NOT NULL,
    user      TEXT,
    action    TEXT    NOT NULL,
    code_id   INTEGER,
    label     TEXT,
    detail    TEXT
) STRICT;
CREATE INDEX events_by_actor ON events (actor_uid, time);
CREATE INDEX events_by_user ON events (user, time);
";

/// Version 5: codes follow the account, and remember where they were used.
///
/// - `owner_uid`: the uid the owner's name had (from NSS) when the code was created. A login
///   whose user name now resolves to another uid, or to none, is refused: a deleted account's
///   codes never open a new account that got the same name. Rows from version 4 are NULL until
///   apppw-ctl binds them to the uid their name has at upgrade (`Store::bind_unowned`, which
///   writes -1, [`NO_ACCOUNT`], for names that resolve to no account then); a NULL or -1 owner
///   never logs in.
/// - `events.owner_uid`: the same for the trail, so `list --events` shows an account only its own
///   codes' history.
/// - The `_unbound` indexes hold only rows not yet bound: empty once apppw-ctl has bound them,
///   so checking for such rows (every root run does) costs nothing on a large store.
/// - Labels are unique among the active codes of one account, not of one name, so a new account
///   with an old name is not blocked by codes it cannot see.
/// - `code_uses`: the recent distinct (service, remote host) pairs a code was used from, with
///   first and last time and a count: at most `USE_HISTORY_LIMIT` rows per code, the least
///   recently used dropped first. It answers "where was this code used" during an incident.
const V5: &str = "
ALTER TABLE app_passwords ADD COLUMN owner_uid INTEGER;
ALTER TABLE events ADD COLUMN owner_uid INTEGER;
DROP INDEX app_passwords_active_label;
CREATE UNIQUE INDEX app_passwords_active_label
    ON app_passwords (user, owner_uid, label) WHERE revoked IS NULL;
CREATE INDEX app_passwords_unbound ON app_passwords (user) WHERE owner_uid IS NULL;
CREATE INDEX events_unbound ON events (user) WHERE owner_uid IS NULL;
CREATE TABLE code_uses (
    code_id INTEGER NOT NULL,
    service TEXT    NOT NULL,
    rhost   TEXT    NOT NULL,
    first   INTEGER NOT NULL,
    last    INTEGER NOT NULL,
    count   INTEGER NOT NULL,
    PRIMARY KEY (code_id, service, rhost)
) STRICT, WITHOUT ROWID;
";

/// `owner_uid` of a code whose owner's name resolved to no account when it was bound.
pub const NO_ACCOUNT: i64 = -1;

/// Most `code_uses` rows kept per code.
pub const USE_HISTORY_LIMIT: i64 = 20;

/// Every step, oldest first: step `n` (counting from 1) takes version `n - 1` to `n`.
const STEPS: &[&str] = &[V1, V2, V3, V4, V5];

/// The schema version this build reads and writes.
// A handful of steps: the cast cannot wrap.
#[allow(clippy::cast_possible_wrap)]
pub const LATEST_VERSION: i64 = STEPS.len() as i64;

/// Moves the database from its `user_version` up to `target` (at most [`LATEST_VERSION`]) in one
/// transaction that takes the write lock first: an upgrade is whole or not at all, and two
/// processes upgrading at once take turns, the second finding nothing left to do. Never goes
/// down: a database at or past `target` is left as it is (the caller refuses newer schemas).
///
/// # Errors
/// Whatever SQLite reports; the transaction is then rolled back.
pub fn migrate(conn: &mut Connection, target: i64) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let target = target.min(LATEST_VERSION);
    for version in current.max(0)..target {
        // version < LATEST_VERSION = STEPS.len(): in range and not negative.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        tx.execute_batch(STEPS[version as usize])?;
        tx.pragma_update(None, "user_version", version + 1)?;
    }
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_applies_in_order_and_a_second_run_changes_nothing() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, 2).unwrap();
        let version = |conn: &Connection| -> i64 {
            conn.pragma_query_value(None, "user_version", |r| r.get(0))
                .unwrap()
        };
        assert_eq!(version(&conn), 2);
        migrate(&mut conn, LATEST_VERSION).unwrap();
        assert_eq!(version(&conn), LATEST_VERSION);
        migrate(&mut conn, LATEST_VERSION).unwrap();
        migrate(&mut conn, 1).unwrap();
        assert_eq!(version(&conn), LATEST_VERSION, "never goes down");
        let id: i32 = conn
            .pragma_query_value(None, "application_id", |r| r.get(0))
            .unwrap();
        assert_eq!(id, APPLICATION_ID);
    }

    #[test]
    fn a_failing_step_leaves_the_database_as_it_was() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, 1).unwrap();
        // Make step 2 fail: it adds a column that already exists.
        conn.execute_batch("ALTER TABLE app_passwords ADD COLUMN created_by TEXT")
            .unwrap();
        assert!(migrate(&mut conn, LATEST_VERSION).is_err());
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, 1);
    }

    #[test]
    fn application_id_literal_matches_constant() {
        assert!(V1.contains(&format!("application_id = {APPLICATION_ID};")));
    }
}
