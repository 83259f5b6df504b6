//! The SQLite store: opening it safely, and every query either side runs. The SQL lives here so
//! that a reader finds each statement next to the rules it relies on; the schema is in `schema.rs`.
#![forbid(unsafe_code)]

use std::fs::OpenOptions;
use std::io::ErrorKind;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior, params};
use zeroize::Zeroizing;

use super::{
    Access, BindOutcome, CAPPED_ACTIONS, CODE_INFO_COLUMNS, CODE_ROW_COLUMNS, Candidate, Changer,
    CodeInfo, CodeRef, CodeRow, DAY_SECS, EVENT_ROW_COLUMNS, Edit, Event, EventRecord, EventRow,
    EventsAbout, LastUse, NewCode, NewCodeCheck, Orphan, Owner, RevokeScope, StoreRows,
    USE_ROW_COLUMNS, UseEntry, UseRecord, UseRow, ask_about_unbound, binding_detail, bound,
    daily_cap_verdict, orphans_pruned_detail, prune_detail,
};
use crate::accounts::Accounts;
use crate::error::Error;
use crate::login::LoginStore;
use crate::schema::{APPLICATION_ID, LATEST_VERSION, USE_HISTORY_LIMIT, migrate};
use crate::scope::Scope;
use crate::secure_path::{
    UnsafePath, check_store_directory, check_store_file, not_a_regular_store, trusted_gids,
};

/// Where the store lives unless an administrator says otherwise.
pub const DEFAULT_STORE_PATH: &str = "/var/lib/apppw/apppw.db";

/// How long a writer waits for another writer's lock before giving up.
const MANAGE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// A login waits less: it only reads, and its bookkeeping write is optional.
const LOGIN_BUSY_TIMEOUT: Duration = Duration::from_millis(500);
/// After a checkpoint, SQLite truncates the -wal file back to this size. With every process that
/// holds the store out of its users' reach (see docs/SECURITY.md), checkpoints cannot be blocked
/// for long, so the WAL stays near its auto-checkpoint size (1000 pages) plus this.
const JOURNAL_SIZE_LIMIT_BYTES: i64 = 4 << 20;

/// Reads a scope from three columns starting at `first`; a value the store should never hold
/// is a conversion error (a damaged store), never "no limit".
fn scope_at(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Scope> {
    let services: Option<String> = row.get(first)?;
    let networks: Option<String> = row.get(first + 1)?;
    Scope::from_columns(
        services.as_deref(),
        networks.as_deref(),
        row.get(first + 2)?,
    )
    .map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(first + 1, rusqlite::types::Type::Text, e.into())
    })
}

fn code_info(row: &rusqlite::Row<'_>) -> rusqlite::Result<CodeInfo> {
    let last_time: Option<i64> = row.get(5)?;
    Ok(CodeInfo {
        id: row.get(0)?,
        user: row.get(1)?,
        label: row.get(2)?,
        created: row.get(3)?,
        revoked: row.get(4)?,
        last_used: match last_time {
            Some(time) => Some(LastUse {
                time,
                service: row.get(6)?,
                rhost: row.get(7)?,
                host: row.get(15)?,
            }),
            None => None,
        },
        use_count: row.get(8)?,
        created_by: row.get(9)?,
        revoked_by: row.get(10)?,
        scope: scope_at(row, 11)?,
        owner_uid: row.get(14)?,
    })
}

/// An open SQLite store.
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
}

/// How much of the trusted layout `SqliteStore::open_file` checks.
enum Checks {
    /// The store's directories, and the file's owner, group (one of `gids`) and mode.
    Trusted { gids: Vec<u32> },
    /// Only that the file is a regular, non-empty file: for scratch copies in a caller's own
    /// directory (tests, benchmarks, tools that inspect a copy).
    FileTypeOnly,
}

impl SqliteStore {
    /// Opens the store at `path` as the PAM module and apppw-ctl do: its directories must pass
    /// `secure_path::check_store_directory`, and the file, opened without following a symlink, must
    /// pass `secure_path::check_store_file` as opened.
    pub fn open(path: &Path, access: Access) -> Result<SqliteStore, Error> {
        let gids = trusted_gids();
        check_store_directory(path, &gids)?;
        SqliteStore::open_file(path, access, &Checks::Trusted { gids })
    }

    /// Opens a store without the ownership checks of [`SqliteStore::open`]: for stores in a directory
    /// of the caller's own (tests, benchmarks, copies being inspected). Never a symlink, never a
    /// file that is not a store.
    pub fn open_scratch(path: &Path, access: Access) -> Result<SqliteStore, Error> {
        SqliteStore::open_file(path, access, &Checks::FileTypeOnly)
    }

    fn open_file(path: &Path, access: Access, checks: &Checks) -> Result<SqliteStore, Error> {
        let created = match access {
            Access::Manage {
                create: true,
                upgrade: true,
            } => create_file_if_missing(path)?,
            _ => None,
        };
        // SQLite opens files by name (it derives the -wal and -shm names from it), so the file is
        // first opened here without following a symlink and checked as opened; SQLite's own
        // descriptor must then be that very file (`opened_by_sqlite`), before anything is read
        // or written through it.
        let meta = inspect_store_file(path, checks)?;
        let checked = FileId::of(&meta);
        if created.is_some_and(|made| made != checked) {
            return Err(replaced(path));
        }
        if created.is_none() && meta.len() == 0 {
            return Err(Error::NotAStore {
                path: path.into(),
                reason: "the file is empty".into(),
            });
        }
        let connect = || {
            opened_by_sqlite(path, checked, || {
                if on_read_only_file_system(path) {
                    match access {
                        // Nothing can change the store while its file system is read-only, so
                        // SQLite may read it as immutable: no locks, no -shm to create. Logins
                        // keep working; their last-use writes fail and are skipped.
                        Access::Login => open_immutable(path),
                        Access::Manage { .. } => Err(Error::ReadOnly {
                            path: path.into(),
                            hint: "The file system holding it is mounted read-only; remount it read-write to make changes",
                        }),
                    }
                } else {
                    open_read_write(path)
                }
            })
        };
        let mut store = SqliteStore {
            conn: connect()?,
            path: path.into(),
        };
        match store.configure(access, created.is_some()) {
            // A full disk cannot take the -shm file (the WAL index shared between connections)
            // that SQLite creates when the first connection opens. In exclusive locking mode it
            // keeps that index in its own memory instead, so a login can still read the store
            // (and its -wal) while other logins wait their turn behind the busy timeout.
            Err(Error::DiskFull { .. } | Error::WriteFailed { .. }) if access == Access::Login => {
                drop(store);
                let conn = connect()?;
                conn.pragma_update(None, "locking_mode", "EXCLUSIVE")
                    .map_err(|e| classify(path, &e))?;
                let mut store = SqliteStore {
                    conn,
                    path: path.into(),
                };
                store.configure(access, false)?;
                Ok(store)
            }
            configured => configured.map(|()| store),
        }
    }

    fn configure(&mut self, access: Access, fresh: bool) -> Result<(), Error> {
        let path = self.path.clone();
        let busy = match access {
            Access::Login => LOGIN_BUSY_TIMEOUT,
            Access::Manage { .. } => MANAGE_BUSY_TIMEOUT,
        };
        self.conn
            .busy_timeout(busy)
            .map_err(|e| classify(&path, &e))?;
        // Temporary tables and sorts stay in memory: the environment (SQLITE_TMPDIR) may be a
        // caller's, and a login runs inside another program whose environment is not ours.
        self.conn
            .pragma_update(None, "temp_store", "MEMORY")
            .map_err(|e| classify(&path, &e))?;
        self.conn
            .pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT_BYTES)
            .map_err(|e| classify(&path, &e))?;
        // Every writer takes the write lock up front, so the busy handler covers it.
        self.conn
            .set_transaction_behavior(TransactionBehavior::Immediate);

        let application_id: i32 = self
            .conn
            .pragma_query_value(None, "application_id", |r| r.get(0))
            .map_err(|e| classify(&path, &e))?;
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| classify(&path, &e))?;
        if !(fresh || application_id == APPLICATION_ID) {
            return Err(Error::NotAStore {
                path,
                reason: format!(
                    "its application id is {application_id:#x}, not {APPLICATION_ID:#x}"
                ),
            });
        }
        if version > LATEST_VERSION {
            return Err(Error::SchemaTooNew {
                path,
                found: version,
                supported: LATEST_VERSION,
            });
        }
        match access {
            Access::Login => {
                if version < LATEST_VERSION {
                    return Err(Error::SchemaOutdated {
                        path,
                        found: version,
                        current: LATEST_VERSION,
                    });
                }
                self.conn
                    .pragma_update(None, "synchronous", "NORMAL")
                    .map_err(|e| classify(&path, &e))?;
            }
            Access::Manage { upgrade, .. } => {
                if version < LATEST_VERSION && !upgrade && !fresh {
                    return Err(Error::SchemaOutdated {
                        path,
                        found: version,
                        current: LATEST_VERSION,
                    });
                }
                if fresh {
                    self.conn
                        .pragma_update(None, "journal_mode", "WAL")
                        .map_err(|e| classify(&path, &e))?;
                }
                self.conn
                    .pragma_update(None, "synchronous", "FULL")
                    .map_err(|e| classify(&path, &e))?;
                migrate(&mut self.conn, LATEST_VERSION).map_err(|e| classify(&path, &e))?;
            }
        }
        Ok(())
    }

    /// Stores a new code in one transaction that also enforces the per-user limit, the daily cap,
    /// the label's uniqueness and the lookup tag's uniqueness among the user's active codes, and
    /// records the event. Returns the new id, or `Ok(None)` when the tag is taken (the caller
    /// draws another code).
    pub fn insert(
        &mut self,
        code: &NewCode<'_>,
        max_active: u32,
        by: &Changer<'_>,
    ) -> Result<Option<i64>, Error> {
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(|e| classify(&path, &e))?;
        check_daily_cap(&tx, &path, by)?;
        // The count and the label are the account's (a label of a code not yet bound to an
        // account counts too, so that binding it later cannot clash); the tag is checked among
        // every active code under the name, so that a login never has two hashes to try.
        let check = tx
            .query_row(
                "SELECT coalesce(sum(owner_uid = ?4), 0),
                        coalesce(sum((owner_uid = ?4 OR owner_uid IS NULL) AND label = ?2), 0) > 0,
                        coalesce(sum(lookup_tag = ?3), 0) > 0
                 FROM app_passwords WHERE user = ?1 AND revoked IS NULL",
                params![
                    code.owner.name,
                    code.label.as_str(),
                    code.lookup_tag,
                    code.owner.uid
                ],
                |r| {
                    Ok(NewCodeCheck {
                        active: r.get(0)?,
                        label_taken: r.get(1)?,
                        tag_taken: r.get(2)?,
                    })
                },
            )
            .map_err(|e| classify(&path, &e))?;
        if !check.verdict(code, max_active)? {
            return Ok(None);
        }
        tx.execute(
            "INSERT INTO app_passwords
                 (user, label, lookup_tag, hash, created, created_by, services, networks, expires,
                  owner_uid)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                code.owner.name,
                code.label.as_str(),
                code.lookup_tag,
                code.hash,
                by.now,
                by.actor(),
                code.scope.services_column(),
                code.scope.networks_column(),
                code.scope.expires,
                code.owner.uid,
            ],
        )
        .map_err(|e| classify(&path, &e))?;
        let id = tx.last_insert_rowid();
        record_event(
            &tx,
            &path,
            by,
            EventRecord::about_code(code.owner, "created", id, code.label.as_str()),
        )?;
        tx.commit().map_err(|e| classify(&path, &e))?;
        Ok(Some(id))
    }

    /// Codes of `owner`, oldest first; revoked ones only when asked.
    pub fn list(&self, owner: Owner<'_>, include_revoked: bool) -> Result<Vec<CodeInfo>, Error> {
        let sql = format!(
            "SELECT {CODE_INFO_COLUMNS} FROM app_passwords
             WHERE user = ?1 AND owner_uid = ?3 AND (?2 OR revoked IS NULL) ORDER BY id"
        );
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(&e))?;
        let rows = stmt
            .query_map(params![owner.name, include_revoked, owner.uid], code_info)
            .map_err(|e| self.err(&e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(&e))
    }

    /// One of `owner`'s active codes, as it is now.
    pub fn find(&self, owner: Owner<'_>, which: &CodeRef) -> Result<CodeInfo, Error> {
        find_active(&self.conn, &self.path, owner, which)
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
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(|e| classify(&path, &e))?;
        let mut code = find_active(&tx, &path, owner, which)?;
        change.check_still_current(owner, &code)?;
        check_daily_cap(&tx, &path, by)?;
        if let Some(label) = change.new_label(&code) {
            let taken: bool = tx
                .query_row(
                    "SELECT count(*) > 0 FROM app_passwords
                     WHERE user = ?1 AND (owner_uid = ?3 OR owner_uid IS NULL) AND label = ?2
                       AND revoked IS NULL",
                    params![owner.name, label.as_str(), owner.uid],
                    |r| r.get(0),
                )
                .map_err(|e| classify(&path, &e))?;
            if taken {
                return Err(Error::LabelTaken {
                    user: owner.name.into(),
                    label: label.as_str().into(),
                });
            }
            tx.execute(
                "UPDATE app_passwords SET label = ?2 WHERE id = ?1",
                params![code.id, label.as_str()],
            )
            .map_err(|e| classify(&path, &e))?;
        }
        if let Some(scope) = change.scope {
            tx.execute(
                "UPDATE app_passwords SET services = ?2, networks = ?3, expires = ?4 WHERE id = ?1",
                params![
                    code.id,
                    scope.services_column(),
                    scope.networks_column(),
                    scope.expires
                ],
            )
            .map_err(|e| classify(&path, &e))?;
        }
        let (action, detail) = change.apply(&mut code);
        record_event(
            &tx,
            &path,
            by,
            EventRecord::edit(owner, &code, action, &detail),
        )?;
        tx.commit().map_err(|e| classify(&path, &e))?;
        Ok(code)
    }

    /// Revokes one of `owner`'s active codes, recording `action` (revoked, withdrawn): the hash
    /// is wiped, the row stays for the audit trail. Never refused by the daily cap.
    pub(super) fn revoke_as(
        &mut self,
        owner: Owner<'_>,
        which: &CodeRef,
        by: &Changer<'_>,
        action: &str,
    ) -> Result<CodeInfo, Error> {
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(|e| classify(&path, &e))?;
        let current = find_active(&tx, &path, owner, which)?;
        let actor = by.actor();
        tx.execute(
            "UPDATE app_passwords SET revoked = ?2, revoked_by = ?3, hash = NULL WHERE id = ?1",
            params![current.id, by.now, actor],
        )
        .map_err(|e| classify(&path, &e))?;
        record_event(
            &tx,
            &path,
            by,
            EventRecord::about_code(owner, action, current.id, &current.label),
        )?;
        tx.commit().map_err(|e| classify(&path, &e))?;
        Ok(CodeInfo {
            revoked: Some(by.now),
            revoked_by: Some(actor),
            ..current
        })
    }

    /// Revokes every active code in `scope`; returns what was revoked (possibly nothing), and
    /// records `action` (`revoked`, or `locked down`) for each.
    pub fn revoke_all(
        &mut self,
        scope: RevokeScope<'_>,
        action: &str,
        by: &Changer<'_>,
    ) -> Result<Vec<CodeInfo>, Error> {
        let (name, uid) = match scope {
            RevokeScope::Owner(owner) => (Some(owner.name), Some(owner.uid)),
            RevokeScope::Name(name) => (Some(name), None),
            RevokeScope::Everyone => (None, None),
        };
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(|e| classify(&path, &e))?;
        let mut revoked = {
            let sql = format!(
                "UPDATE app_passwords SET revoked = ?2, revoked_by = ?3, hash = NULL
                 WHERE (?1 IS NULL OR user = ?1) AND (?4 IS NULL OR owner_uid = ?4)
                   AND revoked IS NULL
                 RETURNING {CODE_INFO_COLUMNS}"
            );
            let mut stmt = tx.prepare(&sql).map_err(|e| classify(&path, &e))?;
            let rows = stmt
                .query_map(params![name, by.now, by.actor(), uid], code_info)
                .map_err(|e| classify(&path, &e))?;
            rows.collect::<Result<Vec<_>, _>>()
                .map_err(|e| classify(&path, &e))?
        };
        revoked.sort_by_key(|c| c.id);
        for code in &revoked {
            record_event(&tx, &path, by, EventRecord::about_row(code, action))?;
        }
        tx.commit().map_err(|e| classify(&path, &e))?;
        Ok(revoked)
    }

    /// Every code, or one user's, revoked ones included, in `audit`'s order, handed to `each`
    /// as it is read.
    pub fn audit_each<E: From<Error>>(
        &self,
        user: Option<&str>,
        mut each: impl FnMut(CodeInfo) -> Result<(), E>,
    ) -> Result<(), E> {
        let sql = format!(
            "SELECT {CODE_INFO_COLUMNS} FROM app_passwords WHERE (?1 IS NULL OR user = ?1)
             ORDER BY revoked IS NOT NULL, last_used IS NOT NULL, last_used, created, id"
        );
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(&e))?;
        let mut rows = stmt.query(params![user]).map_err(|e| self.err(&e))?;
        while let Some(row) = rows.next().map_err(|e| self.err(&e))? {
            each(code_info(row).map_err(|e| self.err(&e))?)?;
        }
        Ok(())
    }

    /// Deletes the rows of codes revoked at or before `revoked_before`; returns how many. The
    /// event trail is kept.
    pub fn prune(&mut self, revoked_before: i64, by: &Changer<'_>) -> Result<usize, Error> {
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(|e| classify(&path, &e))?;
        let removed = tx
            .execute(
                "DELETE FROM app_passwords WHERE revoked IS NOT NULL AND revoked <= ?1",
                params![revoked_before],
            )
            .map_err(|e| classify(&path, &e))?;
        tx.execute(
            "DELETE FROM code_uses WHERE code_id NOT IN (SELECT id FROM app_passwords)",
            [],
        )
        .map_err(|e| classify(&path, &e))?;
        let detail = prune_detail(removed, revoked_before);
        record_event(&tx, &path, by, EventRecord::store_wide("pruned", &detail))?;
        tx.commit().map_err(|e| classify(&path, &e))?;
        Ok(removed)
    }

    /// The event trail, oldest first, at most the `limit` newest: about one account's codes
    /// (`list --events`), everything under one name (root's `audit --events --user`), or all.
    pub fn events(&self, about: EventsAbout<'_>, limit: u32) -> Result<Vec<Event>, Error> {
        let (name, uid) = match about {
            EventsAbout::Owner(owner) => (Some(owner.name), Some(owner.uid)),
            EventsAbout::Name(name) => (Some(name), None),
            EventsAbout::Everyone => (None, None),
        };
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, time, actor_uid, actor, origin, user, action, code_id, label, detail
                 FROM (SELECT * FROM events
                       WHERE (?1 IS NULL OR user = ?1) AND (?3 IS NULL OR owner_uid = ?3)
                       ORDER BY id DESC LIMIT ?2)
                 ORDER BY id",
            )
            .map_err(|e| self.err(&e))?;
        let rows = stmt
            .query_map(params![name, limit, uid], |row| {
                Ok(Event {
                    id: row.get(0)?,
                    time: row.get(1)?,
                    actor_uid: row.get(2)?,
                    actor: row.get(3)?,
                    origin: row.get(4)?,
                    user: row.get(5)?,
                    action: row.get(6)?,
                    code_id: row.get(7)?,
                    label: row.get(8)?,
                    detail: row.get(9)?,
                })
            })
            .map_err(|e| self.err(&e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(&e))
    }

    /// See [`super::Store::bind_unowned`]: the write goes through a temporary table, one pass
    /// over each table however many names.
    pub fn bind_unowned(
        &mut self,
        accounts: &impl Accounts,
        by: &Changer<'_>,
    ) -> Result<BindOutcome, Error> {
        let path = self.path.clone();
        let unbound: Vec<(String, i64)> = {
            let mut stmt = self
                .conn
                .prepare(
                    "SELECT user, sum(codes) FROM (
                         SELECT user, 1 AS codes FROM app_passwords WHERE owner_uid IS NULL
                         UNION ALL
                         SELECT user, 0 FROM events WHERE owner_uid IS NULL AND user IS NOT NULL)
                     GROUP BY user ORDER BY user",
                )
                .map_err(|e| classify(&path, &e))?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(|e| classify(&path, &e))?;
            rows.collect::<Result<_, _>>()
                .map_err(|e| classify(&path, &e))?
        };
        let (answers, outcome) = ask_about_unbound(unbound, accounts);
        if answers.is_empty() {
            return Ok(outcome);
        }
        let tx = self.conn.transaction().map_err(|e| classify(&path, &e))?;
        tx.execute_batch(
            "CREATE TEMP TABLE IF NOT EXISTS binding (user TEXT PRIMARY KEY, uid INTEGER NOT NULL);
             DELETE FROM temp.binding;",
        )
        .map_err(|e| classify(&path, &e))?;
        for answer in &answers {
            tx.execute(
                "INSERT INTO temp.binding (user, uid) VALUES (?1, ?2)",
                params![answer.user, answer.owner_uid()],
            )
            .map_err(|e| classify(&path, &e))?;
            let detail = binding_detail(answer.codes, answer.uid);
            record_event(
                &tx,
                &path,
                by,
                EventRecord::binding(&answer.user, answer.owner_uid(), &detail),
            )?;
        }
        for table in ["app_passwords", "events"] {
            tx.execute(
                &format!(
                    "UPDATE {table} SET owner_uid = b.uid FROM temp.binding AS b
                     WHERE {table}.user = b.user AND {table}.owner_uid IS NULL"
                ),
                [],
            )
            .map_err(|e| classify(&path, &e))?;
        }
        tx.execute("DELETE FROM temp.binding", [])
            .map_err(|e| classify(&path, &e))?;
        tx.commit().map_err(|e| classify(&path, &e))?;
        Ok(bound(answers, outcome))
    }

    /// Every code, active and revoked, ordered by user name (for the orphan check).
    pub(super) fn every_code_by_user(&self) -> Result<Vec<CodeInfo>, Error> {
        let sql = format!("SELECT {CODE_INFO_COLUMNS} FROM app_passwords ORDER BY user, id");
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(&e))?;
        let codes = stmt
            .query_map([], code_info)
            .map_err(|e| self.err(&e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.err(&e))?;
        Ok(codes)
    }

    /// Deletes `orphans` with their use history in one transaction, each only if its row is
    /// still as it was read (a row bound or changed meanwhile stays); returns what was deleted.
    pub(super) fn delete_orphans(
        &mut self,
        orphans: Vec<Orphan>,
        by: &Changer<'_>,
    ) -> Result<Vec<Orphan>, Error> {
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(|e| classify(&path, &e))?;
        let mut deleted = Vec::new();
        for orphan in orphans {
            let gone = tx
                .query_row(
                    "DELETE FROM app_passwords WHERE id = ?1 AND owner_uid IS ?2 RETURNING id",
                    params![orphan.code.id, orphan.code.owner_uid],
                    |r| r.get::<_, i64>(0),
                )
                .optional()
                .map_err(|e| classify(&path, &e))?;
            if gone.is_some() {
                tx.execute(
                    "DELETE FROM code_uses WHERE code_id = ?1",
                    params![orphan.code.id],
                )
                .map_err(|e| classify(&path, &e))?;
                deleted.push(orphan);
            }
        }
        let detail = orphans_pruned_detail(deleted.len());
        record_event(&tx, &path, by, EventRecord::store_wide("pruned", &detail))?;
        tx.commit().map_err(|e| classify(&path, &e))?;
        Ok(deleted)
    }

    /// Where code `id` was used recently: its distinct (service, remote host) pairs, most
    /// recent first (at most `USE_HISTORY_LIMIT`).
    pub fn uses(&self, id: i64) -> Result<Vec<UseEntry>, Error> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT service, rhost, host, first, last, count FROM code_uses WHERE code_id = ?1
                 ORDER BY last DESC, first DESC",
            )
            .map_err(|e| self.err(&e))?;
        let rows = stmt
            .query_map(params![id], |r| {
                Ok(UseEntry {
                    service: r.get(0)?,
                    rhost: r.get(1)?,
                    host: r.get(2)?,
                    first: r.get(3)?,
                    last: r.get(4)?,
                    count: r.get(5)?,
                })
            })
            .map_err(|e| self.err(&e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(&e))
    }

    /// One of `owner`'s codes, active or revoked, by id (for `list --history`).
    pub fn find_any(&self, owner: Owner<'_>, id: i64) -> Result<CodeInfo, Error> {
        let sql = format!(
            "SELECT {CODE_INFO_COLUMNS} FROM app_passwords
             WHERE id = ?1 AND user = ?2 AND owner_uid = ?3"
        );
        self.conn
            .query_row(&sql, params![id, owner.name, owner.uid], code_info)
            .optional()
            .map_err(|e| self.err(&e))?
            .ok_or_else(|| Error::NoSuchCode {
                user: owner.name.into(),
                what: CodeRef::Id(id).describe(),
            })
    }

    /// See [`super::Store::export`].
    pub fn export(&mut self) -> Result<StoreRows, Error> {
        let path = self.path.clone();
        let err = |e: rusqlite::Error| classify(&path, &e);
        // A read transaction: one snapshot of all three tables.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Deferred)
            .map_err(err)?;
        let codes = {
            let mut stmt = tx
                .prepare(&format!(
                    "SELECT {CODE_ROW_COLUMNS} FROM app_passwords ORDER BY id"
                ))
                .map_err(err)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(CodeRow {
                        id: r.get(0)?,
                        user: r.get(1)?,
                        label: r.get(2)?,
                        lookup_tag: r.get(3)?,
                        hash: r.get::<_, Option<String>>(4)?.map(Zeroizing::new),
                        created: r.get(5)?,
                        revoked: r.get(6)?,
                        last_used: r.get(7)?,
                        last_service: r.get(8)?,
                        last_rhost: r.get(9)?,
                        last_host: r.get(10)?,
                        use_count: r.get(11)?,
                        created_by: r.get(12)?,
                        revoked_by: r.get(13)?,
                        services: r.get(14)?,
                        networks: r.get(15)?,
                        expires: r.get(16)?,
                        owner_uid: r.get(17)?,
                    })
                })
                .map_err(err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(err)?
        };
        let events = {
            let mut stmt = tx
                .prepare(&format!(
                    "SELECT {EVENT_ROW_COLUMNS} FROM events ORDER BY id"
                ))
                .map_err(err)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(EventRow {
                        event: Event {
                            id: r.get(0)?,
                            time: r.get(1)?,
                            actor_uid: r.get(2)?,
                            actor: r.get(3)?,
                            origin: r.get(4)?,
                            user: r.get(5)?,
                            action: r.get(6)?,
                            code_id: r.get(7)?,
                            label: r.get(8)?,
                            detail: r.get(9)?,
                        },
                        owner_uid: r.get(10)?,
                    })
                })
                .map_err(err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(err)?
        };
        let uses = {
            let mut stmt = tx
                .prepare(&format!(
                    "SELECT {USE_ROW_COLUMNS} FROM code_uses ORDER BY code_id, service, rhost, host"
                ))
                .map_err(err)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(UseRow {
                        code_id: r.get(0)?,
                        entry: UseEntry {
                            service: r.get(1)?,
                            rhost: r.get(2)?,
                            host: r.get(3)?,
                            first: r.get(4)?,
                            last: r.get(5)?,
                            count: r.get(6)?,
                        },
                    })
                })
                .map_err(err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(err)?
        };
        tx.commit().map_err(err)?;
        Ok(StoreRows {
            codes,
            events,
            uses,
        })
    }

    /// See [`super::Store::import`]. AUTOINCREMENT remembers the highest id inserted, so new
    /// ids continue after the copied ones.
    pub fn import(&mut self, rows: &StoreRows) -> Result<(), Error> {
        let path = self.path.clone();
        let err = |e: rusqlite::Error| classify(&path, &e);
        let tx = self.conn.transaction().map_err(err)?;
        let (codes, events): (i64, i64) = tx
            .query_row(
                "SELECT (SELECT count(*) FROM app_passwords), (SELECT count(*) FROM events)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(err)?;
        let uses: i64 = tx
            .query_row("SELECT count(*) FROM code_uses", [], |r| r.get(0))
            .map_err(err)?;
        if codes + events + uses > 0 {
            return Err(Error::MigrateTargetNotEmpty {
                store: path.display().to_string(),
                codes,
                events,
            });
        }
        for c in &rows.codes {
            tx.execute(
                &format!(
                    "INSERT INTO app_passwords ({CODE_ROW_COLUMNS}) VALUES
                     (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)"
                ),
                params![
                    c.id,
                    c.user,
                    c.label,
                    c.lookup_tag,
                    c.hash.as_deref(),
                    c.created,
                    c.revoked,
                    c.last_used,
                    c.last_service,
                    c.last_rhost,
                    c.last_host,
                    c.use_count,
                    c.created_by,
                    c.revoked_by,
                    c.services,
                    c.networks,
                    c.expires,
                    c.owner_uid
                ],
            )
            .map_err(err)?;
        }
        for e in &rows.events {
            let ev = &e.event;
            tx.execute(
                &format!(
                    "INSERT INTO events ({EVENT_ROW_COLUMNS}) VALUES
                     (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
                ),
                params![
                    ev.id,
                    ev.time,
                    ev.actor_uid,
                    ev.actor,
                    ev.origin,
                    ev.user,
                    ev.action,
                    ev.code_id,
                    ev.label,
                    ev.detail,
                    e.owner_uid
                ],
            )
            .map_err(err)?;
        }
        for u in &rows.uses {
            let en = &u.entry;
            tx.execute(
                &format!(
                    "INSERT INTO code_uses ({USE_ROW_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                ),
                params![
                    u.code_id, en.service, en.rhost, en.host, en.first, en.last, en.count
                ],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, e: &rusqlite::Error) -> Error {
        classify(&self.path, e)
    }
}

/// The login's two statements.
impl LoginStore for SqliteStore {
    fn candidates(&self, user: &str, lookup_tag: u32) -> Result<Vec<Candidate>, Error> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, label, hash, created, last_used, services, networks, expires, owner_uid
                 FROM app_passwords WHERE user = ?1 AND lookup_tag = ?2 AND revoked IS NULL",
            )
            .map_err(|e| self.err(&e))?;
        let rows = stmt
            .query_map(params![user, lookup_tag], |row| {
                Ok(Candidate {
                    id: row.get(0)?,
                    label: row.get(1)?,
                    hash: Zeroizing::new(row.get(2)?),
                    created: row.get(3)?,
                    last_used: row.get(4)?,
                    scope: scope_at(row, 5)?,
                    owner_uid: row.get(8)?,
                })
            })
            .map_err(|e| self.err(&e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(&e))
    }

    /// The code's last use, and its row in the history of (service, host) pairs, each written
    /// at most once per `min_interval`; the history keeps the `USE_HISTORY_LIMIT` pairs used
    /// most recently. One transaction, so a history never outgrows its bound.
    fn record_use(&self, id: i64, record: &UseRecord<'_>) -> Result<bool, Error> {
        let (service, rhost, host) = record.bounded_items();
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(|e| self.err(&e))?;
        let changed = tx
            .execute(
                "UPDATE app_passwords
                 SET last_used = ?2, last_service = ?3, last_rhost = ?4, last_host = ?6,
                     use_count = use_count + 1
                 WHERE id = ?1 AND revoked IS NULL
                   AND (last_used IS NULL OR last_used <= ?2 - ?5 OR last_used > ?2)",
                params![id, record.now, service, rhost, record.min_interval, host],
            )
            .map_err(|e| self.err(&e))?;
        let (service, rhost, host) = (
            service.unwrap_or(""),
            rhost.unwrap_or(""),
            host.unwrap_or(""),
        );
        // Only for a code still active (the UPDATE above may also have been skipped by the
        // interval alone).
        let new_triple = tx
            .execute(
                "INSERT INTO code_uses (code_id, service, rhost, host, first, last, count)
                 SELECT ?1, ?2, ?3, ?6, ?4, ?4, 1
                 WHERE EXISTS (SELECT 1 FROM app_passwords WHERE id = ?1 AND revoked IS NULL)
                 ON CONFLICT (code_id, service, rhost, host) DO UPDATE
                 SET last = excluded.last, count = count + 1
                 WHERE last <= excluded.last - ?5 OR last > excluded.last",
                params![id, service, rhost, record.now, record.min_interval, host],
            )
            .map_err(|e| self.err(&e))?;
        if new_triple == 1 {
            tx.execute(
                "DELETE FROM code_uses WHERE code_id = ?1 AND (service, rhost, host) NOT IN
                     (SELECT service, rhost, host FROM code_uses WHERE code_id = ?1
                      ORDER BY last DESC, first DESC LIMIT ?2)",
                params![id, USE_HISTORY_LIMIT],
            )
            .map_err(|e| self.err(&e))?;
        }
        tx.commit().map_err(|e| self.err(&e))?;
        Ok(changed == 1)
    }
}

fn find_active(
    conn: &Connection,
    path: &Path,
    owner: Owner<'_>,
    which: &CodeRef,
) -> Result<CodeInfo, Error> {
    let filter = match which {
        CodeRef::Id(_) => "id = ?2",
        CodeRef::Label(_) => "label = ?2",
    };
    let sql = format!(
        "SELECT {CODE_INFO_COLUMNS} FROM app_passwords
         WHERE user = ?1 AND owner_uid = ?3 AND revoked IS NULL AND {filter}"
    );
    let found = match which {
        CodeRef::Id(id) => conn.query_row(&sql, params![owner.name, id, owner.uid], code_info),
        CodeRef::Label(label) => conn.query_row(
            &sql,
            params![owner.name, label.as_str(), owner.uid],
            code_info,
        ),
    }
    .optional()
    .map_err(|e| classify(path, &e))?;
    found.ok_or_else(|| Error::NoSuchCode {
        user: owner.name.into(),
        what: which.describe(),
    })
}

fn record_event(
    conn: &Connection,
    path: &Path,
    by: &Changer<'_>,
    event: EventRecord<'_>,
) -> Result<(), Error> {
    conn.execute(
        "INSERT INTO events
             (time, actor_uid, actor, origin, user, action, code_id, label, detail, owner_uid)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            by.now,
            by.uid,
            by.name,
            by.origin,
            event.user,
            event.action,
            event.code_id,
            event.label,
            event.detail,
            event.owner_uid
        ],
    )
    .map_err(|e| classify(path, &e))?;
    Ok(())
}

/// Refuses a creation or change once the changer reached their daily cap
/// ([`daily_cap_verdict`]).
fn check_daily_cap(conn: &Connection, path: &Path, by: &Changer<'_>) -> Result<(), Error> {
    if by.daily_cap.is_none() {
        return Ok(());
    }
    let (count, oldest): (i64, Option<i64>) = conn
        .query_row(
            &format!(
                "SELECT count(*), min(time) FROM events
                 WHERE actor_uid = ?1 AND time > ?2 AND action IN {CAPPED_ACTIONS}"
            ),
            params![by.uid, by.now - DAY_SECS],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(|e| classify(path, &e))?;
    daily_cap_verdict(by, count, oldest)
}

/// Opens `path` without following a symlink or opening a device (`O_PATH`) and returns what it
/// is as opened. A symlink, directory, device or FIFO is refused; under `Checks::Trusted`, so is a
/// file with the wrong owner, group or mode.
fn inspect_store_file(path: &Path, checks: &Checks) -> Result<std::fs::Metadata, Error> {
    let opened = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| match e.kind() {
            ErrorKind::NotFound => Error::StoreMissing { path: path.into() },
            _ => unreadable(path, e.to_string()),
        })?;
    let meta = opened
        .metadata()
        .map_err(|e| unreadable(path, e.to_string()))?;
    match checks {
        Checks::Trusted { gids } => check_store_file(path, &meta, gids)?,
        Checks::FileTypeOnly if !meta.file_type().is_file() => {
            return Err(Error::NotAStore {
                path: path.into(),
                reason: not_a_regular_store(path).problem,
            });
        }
        Checks::FileTypeOnly => {}
    }
    Ok(meta)
}

/// The usual connection: read-write, never through a symlink, one thread.
fn open_read_write(path: &Path) -> Result<Connection, Error> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_NOFOLLOW
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    Connection::open_with_flags(path, flags).map_err(|e| classify(path, &e))
}

/// Whether the file system holding `path` is mounted read-only.
fn on_read_only_file_system(path: &Path) -> bool {
    nix::sys::statvfs::statvfs(path)
        .is_ok_and(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
}

/// Opens the store read-only and immutable through an SQLite URI (the path percent-encoded).
/// Immutable readers ignore the -wal file, so a store with committed changes still waiting in
/// it (a revocation, perhaps) is refused rather than read without them.
fn open_immutable(path: &Path) -> Result<Connection, Error> {
    use std::os::unix::ffi::OsStrExt;
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    if std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
        return Err(Error::ReadOnly {
            path: path.into(),
            hint: "Its file system is read-only and recent changes wait in its -wal file, which cannot be applied; remount it read-write",
        });
    }
    let mut uri = String::from("file:");
    for &byte in path.as_os_str().as_bytes() {
        if byte.is_ascii_alphanumeric() || b"/-._~".contains(&byte) {
            uri.push(char::from(byte));
        } else {
            uri.push_str(&format!("%{byte:02X}"));
        }
    }
    uri.push_str("?immutable=1");
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NOFOLLOW
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    Connection::open_with_flags(uri, flags).map_err(|e| classify(path, &e))
}

/// Creates an empty store file, mode 0660 whatever the umask (group: the directory's, the store
/// group), if none exists. Returns the file it created, if it did. The file is created here, not
/// by SQLite, so that `O_EXCL|O_NOFOLLOW` and the mode are ours.
fn create_file_if_missing(path: &Path) -> Result<Option<FileId>, Error> {
    let cannot = |e: std::io::Error| unreadable(path, format!("cannot create it: {e}"));
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o660)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(file) => {
            file.set_permissions(std::fs::Permissions::from_mode(0o660))
                .map_err(cannot)?;
            Ok(Some(FileId::of(&file.metadata().map_err(cannot)?)))
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(None),
        Err(e) => Err(cannot(e)),
    }
}

/// A file as the kernel knows it, whatever its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    fn of(meta: &std::fs::Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

fn replaced(path: &Path) -> Error {
    Error::UnsafePath(UnsafePath {
        path: path.into(),
        problem: "it was replaced while it was being opened".into(),
        fix: "Find out who else changes the store's directory".into(),
    })
}

/// This process's open descriptors and the files they are, from /proc/self/fd.
fn open_files() -> Option<Vec<(String, Option<FileId>)>> {
    let entries = std::fs::read_dir("/proc/self/fd").ok()?;
    Some(
        entries
            .filter_map(Result::ok)
            .map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                // Following the magic link gives the open file itself, renamed or not.
                let id = std::fs::metadata(entry.path()).ok().map(|m| FileId::of(&m));
                (name, id)
            })
            .collect(),
    )
}

/// Runs `open` (which opens an SQLite connection by name) and makes sure SQLite is reading the
/// `checked` file, so that a name swapped between the check and SQLite's open is refused:
/// either a descriptor the open added is that file, or SQLite reused one this process already
/// had on it (it does, for a file it has open elsewhere) and the name still leads there. Without
/// /proc (a bare chroot) only the name is checked again.
fn opened_by_sqlite(
    path: &Path,
    checked: FileId,
    open: impl FnOnce() -> Result<Connection, Error>,
) -> Result<Connection, Error> {
    let before = open_files();
    let conn = open()?;
    let name_still_leads_there =
        || std::fs::symlink_metadata(path).is_ok_and(|m| FileId::of(&m) == checked);
    let verified = match (before, open_files()) {
        (Some(before), Some(after)) => {
            let added = |(fd, id): &&(String, Option<FileId>)| {
                !before.iter().any(|(old, old_id)| old == fd && old_id == id)
            };
            let ours = |(_, id): &&(String, Option<FileId>)| *id == Some(checked);
            after.iter().filter(added).any(|f| ours(&f))
                || (after.iter().any(|f| ours(&f)) && name_still_leads_there())
        }
        _ => name_still_leads_there(),
    };
    if verified {
        Ok(conn)
    } else {
        Err(replaced(path))
    }
}

fn unreadable(path: &Path, reason: String) -> Error {
    Error::StoreUnreadable {
        path: path.into(),
        reason,
    }
}

/// Turns an SQLite error into one a person can act on.
fn classify(path: &Path, e: &rusqlite::Error) -> Error {
    let path = path.to_path_buf();
    let code = match &e {
        rusqlite::Error::SqliteFailure(f, _) => Some(f.code),
        _ => None,
    };
    match code {
        Some(ErrorCode::NotADatabase) => Error::NotAStore {
            path,
            reason: "it is not an SQLite database".into(),
        },
        Some(ErrorCode::DatabaseCorrupt) => Error::Corrupt {
            path,
            reason: e.to_string(),
        },
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => Error::Busy { path },
        Some(ErrorCode::DiskFull) => Error::DiskFull { path },
        Some(ErrorCode::SystemIoFailure) => Error::WriteFailed {
            path,
            reason: e.to_string(),
        },
        Some(ErrorCode::ReadOnly) => Error::ReadOnly {
            path,
            hint: "Check the file system and the permissions of the store and its directory",
        },
        Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => Error::StoreUnreadable {
            path,
            reason: e.to_string(),
        },
        _ => Error::Storage {
            path,
            reason: e.to_string(),
        },
    }
}
