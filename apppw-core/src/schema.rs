//! The store's schema, in one place, for both backends. SQLite: each entry of [`STEPS`] moves the
//! database one version up; `PRAGMA user_version` records how far it has gone and
//! `PRAGMA application_id` marks the file as an apppw store. PostgreSQL: [`PG_STEPS`], in the
//! schema `apppw`, with the version in `apppw.store_info` and the database roles that keep the
//! PAM module from minting or un-revoking codes. Never edit a released step: append a new one.
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

/// Version 6: which host saw a login. With one store shared by several mail hosts (PostgreSQL),
/// an incident needs to know which host accepted a code; the SQLite store records it too, so that
/// both backends keep the same facts and `migrate` loses nothing.
///
/// - `last_host`: the node name of the host whose PAM module recorded the last use.
/// - `code_uses` gains `host` in its key: the history holds (service, remote host, host) triples.
///   SQLite cannot change a primary key, so the table is rebuilt; rows from before get `''`
///   (not known).
const V6: &str = "
ALTER TABLE app_passwords ADD COLUMN last_host TEXT;
CREATE TABLE code_uses_v6 (
    code_id INTEGER NOT NULL,
    service TEXT    NOT NULL,
    rhost   TEXT    NOT NULL,
    host    TEXT    NOT NULL,
    first   INTEGER NOT NULL,
    last    INTEGER NOT NULL,
    count   INTEGER NOT NULL,
    PRIMARY KEY (code_id, service, rhost, host)
) STRICT, WITHOUT ROWID;
INSERT INTO code_uses_v6 (code_id, service, rhost, host, first, last, count)
    SELECT code_id, service, rhost, '', first, last, count FROM code_uses;
DROP TABLE code_uses;
ALTER TABLE code_uses_v6 RENAME TO code_uses;
";

/// `owner_uid` of a code whose owner's name resolved to no account when it was bound.
pub const NO_ACCOUNT: i64 = -1;

/// Most `code_uses` rows kept per code.
pub const USE_HISTORY_LIMIT: i64 = 20;

/// Every step, oldest first: step `n` (counting from 1) takes version `n - 1` to `n`.
const STEPS: &[&str] = &[V1, V2, V3, V4, V5, V6];

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

/// The PostgreSQL role that owns the schema `apppw` and everything in it. It cannot log in:
/// `apppw-ctl init` (as a superuser) acts as it to create and upgrade the schema.
pub const PG_OWNER_ROLE: &str = "apppw_owner";
/// The role the PAM module's database user must be a member of. It may call two functions,
/// [`PG_V1`]'s `apppw.login_candidates` and `apppw.record_use`, and read `apppw.store_info`;
/// it has no right on any table, so a compromised mail host can neither mint, change, revoke
/// nor un-revoke a code, nor read anything but the candidates of a (user, tag) it names.
pub const PG_LOGIN_ROLE: &str = "apppw_login";
/// The role apppw-ctl's database user must be a member of: every change apppw-ctl makes.
pub const PG_MANAGE_ROLE: &str = "apppw_manage";

/// PostgreSQL version 1: the same facts as SQLite version 6, in the schema `apppw`, created by
/// `apppw-ctl init` acting as [`PG_OWNER_ROLE`].
///
/// - `store_info` holds one row: the application id (as SQLite's `application_id`) and the
///   schema version (as `user_version`). A store whose version is newer than the binary's is
///   refused; an older one is upgraded by `apppw-ctl init`, never by a login.
/// - Tables and columns are SQLite's (see V1 to V6 above), with `bigint` for times and ids.
///   `id`s are identity columns that never reuse a value; `migrate` copies ids as they were and
///   moves the sequence past them. `"user"` is quoted: it is a reserved word here.
/// - The module gets no table rights. `login_candidates` returns what a login needs to verify a
///   code (active rows of one user and tag); `record_use` writes the last-use columns and the
///   use history, exactly as the SQLite store's `record_use` does, and nothing else. Both are
///   `SECURITY DEFINER` with a fixed `search_path`, so they run with the owner's rights but only
///   do what they say. `EXECUTE` is revoked from PUBLIC (PostgreSQL grants it by default).
/// - `apppw_manage` may do what apppw-ctl's commands do and no more: read and change codes; add
///   to the event trail (and bind its rows to an account), never rewrite or delete it; read and
///   prune the use history, which only `record_use` writes. Not the schema.
/// - `record_use` first checks, by reading alone, whether there is anything to write: a code
///   used again within the interval from the same service, address and host (a phone's mail app
///   reconnecting) takes no row lock and no transaction id, so the logins of a busy code on many
///   hosts do not queue on its row. When it writes, it cuts its texts to 255 bytes and takes a
///   row lock on the code first, whoever calls it. It takes the time from its caller, as the
///   SQLite store does, so a compromised mail host can write false last-use times (as it can
///   record false logins): it cannot change whether a code is valid.
pub const PG_V1: &str = "
CREATE TABLE apppw.store_info (
    singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    application_id integer NOT NULL,
    version        integer NOT NULL
);
CREATE TABLE apppw.app_passwords (
    id           bigint  GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    \"user\"       text    NOT NULL,
    label        text    NOT NULL,
    lookup_tag   integer NOT NULL,
    hash         text,
    created      bigint  NOT NULL,
    revoked      bigint,
    last_used    bigint,
    last_service text,
    last_rhost   text,
    use_count    bigint  NOT NULL DEFAULT 0,
    created_by   text,
    revoked_by   text,
    services     text,
    networks     text,
    expires      bigint,
    owner_uid    bigint,
    last_host    text,
    CHECK ((revoked IS NULL) = (hash IS NOT NULL))
);
CREATE UNIQUE INDEX app_passwords_active_label
    ON apppw.app_passwords (\"user\", owner_uid, label) WHERE revoked IS NULL;
CREATE INDEX app_passwords_login
    ON apppw.app_passwords (\"user\", lookup_tag) WHERE revoked IS NULL;
CREATE INDEX app_passwords_unbound ON apppw.app_passwords (\"user\") WHERE owner_uid IS NULL;
CREATE TABLE apppw.events (
    id        bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    time      bigint NOT NULL,
    actor_uid bigint NOT NULL,
    actor     text   NOT NULL,
    origin    text   NOT NULL,
    \"user\"    text,
    action    text   NOT NULL,
    code_id   bigint,
    label     text,
    detail    text,
    owner_uid bigint
);
CREATE INDEX events_by_actor ON apppw.events (actor_uid, time);
CREATE INDEX events_by_user ON apppw.events (\"user\", time);
CREATE INDEX events_unbound ON apppw.events (\"user\") WHERE owner_uid IS NULL;
CREATE TABLE apppw.code_uses (
    code_id bigint NOT NULL,
    service text   NOT NULL,
    rhost   text   NOT NULL,
    host    text   NOT NULL,
    first   bigint NOT NULL,
    last    bigint NOT NULL,
    count   bigint NOT NULL,
    PRIMARY KEY (code_id, service, rhost, host)
);

CREATE FUNCTION apppw.login_candidates(p_user text, p_tag integer)
RETURNS TABLE (id bigint, label text, hash text, created bigint, last_used bigint,
               services text, networks text, expires bigint, owner_uid bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT id, label, hash, created, last_used, services, networks, expires, owner_uid
    FROM apppw.app_passwords
    WHERE \"user\" = p_user AND lookup_tag = p_tag AND revoked IS NULL
$$;

CREATE FUNCTION apppw.record_use(p_id bigint, p_now bigint, p_service text, p_rhost text,
                                 p_host text, p_min_interval bigint)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    changed integer;
    new_triple integer;
    v_service text := left(coalesce(p_service, ''), 255);
    v_rhost text := left(coalesce(p_rhost, ''), 255);
    v_host text := left(coalesce(p_host, ''), 255);
    v_min_interval bigint := greatest(coalesce(p_min_interval, 0), 0);
BEGIN
    -- Nothing to write: this code's last use, and this (service, rhost, host)'s, were recorded
    -- less than the interval ago. Answered by reading alone, with no row lock and no
    -- transaction id, so that the logins of a busy code on many hosts do not queue on its row.
    IF EXISTS (SELECT 1 FROM apppw.app_passwords
               WHERE id = p_id AND revoked IS NULL
                 AND last_used > p_now - v_min_interval AND last_used <= p_now)
       AND EXISTS (SELECT 1 FROM apppw.code_uses
                   WHERE code_id = p_id AND service = v_service AND rhost = v_rhost
                     AND host = v_host AND last > p_now - v_min_interval AND last <= p_now) THEN
        RETURN false;
    END IF;
    -- One use of a code at a time, so that two hosts recording at once cannot both add a triple
    -- and leave the history longer than its bound.
    PERFORM 1 FROM apppw.app_passwords WHERE id = p_id FOR UPDATE;
    UPDATE apppw.app_passwords
    SET last_used = p_now, last_service = nullif(v_service, ''), last_rhost = nullif(v_rhost, ''),
        last_host = nullif(v_host, ''), use_count = use_count + 1
    WHERE id = p_id AND revoked IS NULL
      AND (last_used IS NULL OR last_used <= p_now - v_min_interval OR last_used > p_now);
    GET DIAGNOSTICS changed = ROW_COUNT;
    INSERT INTO apppw.code_uses AS u (code_id, service, rhost, host, first, last, count)
        SELECT p_id, v_service, v_rhost, v_host, p_now, p_now, 1
        WHERE EXISTS (SELECT 1 FROM apppw.app_passwords WHERE id = p_id AND revoked IS NULL)
    ON CONFLICT (code_id, service, rhost, host) DO UPDATE
        SET last = excluded.last, count = u.count + 1
        WHERE u.last <= excluded.last - v_min_interval OR u.last > excluded.last;
    GET DIAGNOSTICS new_triple = ROW_COUNT;
    IF new_triple = 1 THEN
        DELETE FROM apppw.code_uses
        WHERE code_id = p_id AND (service, rhost, host) NOT IN
            (SELECT service, rhost, host FROM apppw.code_uses WHERE code_id = p_id
             ORDER BY last DESC, first DESC LIMIT 20);
    END IF;
    RETURN changed = 1;
END
$$;

REVOKE ALL ON SCHEMA apppw FROM PUBLIC;
REVOKE ALL ON FUNCTION apppw.login_candidates(text, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION apppw.record_use(bigint, bigint, text, text, text, bigint) FROM PUBLIC;
GRANT USAGE ON SCHEMA apppw TO apppw_login, apppw_manage;
GRANT SELECT ON apppw.store_info TO apppw_login, apppw_manage;
GRANT EXECUTE ON FUNCTION apppw.login_candidates(text, integer) TO apppw_login, apppw_manage;
GRANT EXECUTE ON FUNCTION apppw.record_use(bigint, bigint, text, text, text, bigint)
    TO apppw_login, apppw_manage;
GRANT SELECT, INSERT, UPDATE, DELETE ON apppw.app_passwords TO apppw_manage;
GRANT SELECT, INSERT, UPDATE (owner_uid) ON apppw.events TO apppw_manage;
GRANT SELECT, DELETE ON apppw.code_uses TO apppw_manage;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA apppw TO apppw_manage;
";

/// Every PostgreSQL step, oldest first, as [`STEPS`].
pub const PG_STEPS: &[&str] = &[PG_V1];

/// The PostgreSQL schema version this build reads and writes.
#[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]
pub const PG_LATEST_VERSION: i32 = PG_STEPS.len() as i32;

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
    fn the_postgresql_history_is_as_long_as_sqlites() {
        // record_use keeps USE_HISTORY_LIMIT triples in both backends; the function's LIMIT is a
        // literal, so this keeps the two in step.
        assert!(PG_V1.contains(&format!("LIMIT {USE_HISTORY_LIMIT})")));
        for role in [PG_LOGIN_ROLE, PG_MANAGE_ROLE] {
            assert!(PG_V1.contains(role));
        }
    }

    #[test]
    fn application_id_literal_matches_constant() {
        assert!(V1.contains(&format!("application_id = {APPLICATION_ID};")));
    }
}
