//! The store's schema, in one place. Each entry of [`MIGRATIONS`] moves the database one version
//! up; `PRAGMA user_version` records how far it has gone and `PRAGMA application_id` marks the
//! file as an apppw store. Never edit a released migration: append a new one.
#![forbid(unsafe_code)]

use rusqlite_migration::{M, Migrations};

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

const STEPS: &[M<'static>] = &[M::up(V1), M::up(V2), M::up(V3)];

/// All migrations, oldest first.
pub const MIGRATIONS: Migrations<'static> = Migrations::from_slice(STEPS);

/// The schema version this build reads and writes.
pub const LATEST_VERSION: i64 = STEPS.len() as i64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_validate() {
        MIGRATIONS.validate().unwrap();
    }

    #[test]
    fn application_id_literal_matches_constant() {
        assert!(V1.contains(&format!("application_id = {APPLICATION_ID};")));
    }
}
