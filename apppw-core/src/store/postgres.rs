//! The PostgreSQL store: every query either side runs against a database shared by many hosts,
//! and `init`, which creates the schema and the roles. The same facts and rules as the SQLite
//! store (`sqlite.rs`); where SQLite relies on its single writer, this takes a transaction-level
//! advisory lock on the owner's name, so that two hosts changing one person's codes take turns
//! (the count and label checks of `insert` and `edit` read what the other wrote). Logins take
//! no lock and go through two functions (`schema.rs`, `PG_V1`), the only rights the module's
//! role has.
#![forbid(unsafe_code)]

use std::time::Duration;

use tokio_postgres::Row;
use zeroize::Zeroizing;

use super::pg_connection::{Failure, PgTarget, Session};
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
use crate::schema::{
    APPLICATION_ID, PG_LATEST_VERSION, PG_LOGIN_ROLE, PG_MANAGE_ROLE, PG_OWNER_ROLE, PG_STEPS,
};
use crate::scope::Scope;

/// A login's statements must answer within this; past it the login is unavailable, not wrong.
const LOGIN_STATEMENT_DEADLINE: Duration = Duration::from_secs(3);
/// apppw-ctl's statements (an audit of a million codes included).
const MANAGE_STATEMENT_DEADLINE: Duration = Duration::from_secs(60);

/// An open PostgreSQL store.
pub struct PgStore {
    session: Session,
}

/// What `PgStore::initialize` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PgInitReport {
    /// Roles it created (the others existed).
    pub created_roles: Vec<String>,
    /// The schema version before (0: none) and after.
    pub version_before: i32,
    pub version_after: i32,
}

impl PgStore {
    /// Connects to `target` and checks that it holds an apppw store of this build's schema. A
    /// login (and apppw-ctl) never creates or upgrades a PostgreSQL store: `initialize` does.
    pub fn open(target: &PgTarget, access: Access) -> Result<PgStore, Error> {
        let deadline = match access {
            Access::Login => LOGIN_STATEMENT_DEADLINE,
            Access::Manage { .. } => MANAGE_STATEMENT_DEADLINE,
        };
        let store = PgStore {
            session: Session::connect(target, deadline)?,
        };
        let row = store
            .session
            .query_opt("SELECT application_id, version FROM apppw.store_info", &[])?;
        let Some(row) = row else {
            return Err(Error::DatabaseNotAStore {
                store: store.location().into(),
                reason: "apppw.store_info is empty".into(),
            });
        };
        let (application_id, version): (i32, i32) =
            (get(&store.session, &row, 0)?, get(&store.session, &row, 1)?);
        if application_id != APPLICATION_ID {
            return Err(Error::DatabaseNotAStore {
                store: store.location().into(),
                reason: format!(
                    "its application id is {application_id:#x}, not {APPLICATION_ID:#x}"
                ),
            });
        }
        if version > PG_LATEST_VERSION {
            return Err(Error::DatabaseSchemaTooNew {
                store: store.location().into(),
                found: version.into(),
                supported: PG_LATEST_VERSION.into(),
            });
        }
        if version < PG_LATEST_VERSION {
            return Err(Error::DatabaseSchemaOutdated {
                store: store.location().into(),
                found: version.into(),
                current: PG_LATEST_VERSION.into(),
            });
        }
        Ok(store)
    }

    /// Creates the roles (if missing), the schema `apppw` and its tables, or upgrades them to
    /// this build's version, in one transaction: connected as a superuser (or a member of
    /// `apppw_owner` that may create roles). The schema objects belong to `apppw_owner`. A
    /// newer schema than this build's is refused and left alone. Running it again changes
    /// nothing.
    pub fn initialize(admin: &PgTarget) -> Result<PgInitReport, Error> {
        let session = Session::connect(admin, MANAGE_STATEMENT_DEADLINE)?;
        let tx = session.transaction()?;
        // Two inits at once take turns; the second finds nothing to do.
        tx.batch("SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('apppw init', 0::bigint))")?;
        let mut created_roles = Vec::new();
        for role in [PG_OWNER_ROLE, PG_LOGIN_ROLE, PG_MANAGE_ROLE] {
            let found = tx.query_opt(
                "SELECT rolsuper OR rolcanlogin OR rolcreaterole OR rolcreatedb OR rolbypassrls
                        OR rolreplication
                 FROM pg_catalog.pg_roles WHERE rolname = $1",
                &[&role],
            )?;
            match found {
                None => {
                    // Role names are this crate's constants, never input.
                    tx.batch(&format!("CREATE ROLE {role} NOLOGIN"))?;
                    created_roles.push(role.to_owned());
                }
                Some(row) if get(&tx, &row, 0)? => {
                    return Err(Error::DatabaseRefused {
                        store: tx.location().into(),
                        reason: format!(
                            "the role {role} exists with more than a group role's rights (LOGIN, SUPERUSER, CREATEROLE, CREATEDB, BYPASSRLS or REPLICATION); apppw's roles hold rights, the users that log in are their members. Fix it with ALTER ROLE {role} NOLOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB NOBYPASSRLS NOREPLICATION"
                        ),
                    });
                }
                Some(_) => {}
            }
        }
        // The module's role must not reach apppw-ctl's rights, nor either the owner's, through
        // membership (direct or not).
        for (member, of) in [
            (PG_LOGIN_ROLE, PG_MANAGE_ROLE),
            (PG_LOGIN_ROLE, PG_OWNER_ROLE),
            (PG_MANAGE_ROLE, PG_OWNER_ROLE),
        ] {
            let row = tx.query_one(
                "SELECT pg_catalog.pg_has_role($1, $2, 'USAGE')",
                &[&member, &of],
            )?;
            if get::<bool>(&tx, &row, 0)? {
                return Err(Error::DatabaseRefused {
                    store: tx.location().into(),
                    reason: format!(
                        "{member} has the rights of {of} (it is a member); revoke that: REVOKE {of} FROM {member}"
                    ),
                });
            }
        }
        let schema_owner = tx.query_opt(
            "SELECT pg_catalog.pg_get_userbyid(nspowner)::text FROM pg_catalog.pg_namespace
             WHERE nspname = 'apppw'",
            &[],
        )?;
        if let Some(row) = schema_owner {
            let owner: String = get(&tx, &row, 0)?;
            if owner != PG_OWNER_ROLE {
                return Err(Error::DatabaseNotAStore {
                    store: tx.location().into(),
                    reason: format!(
                        "the schema apppw belongs to {owner}, not {PG_OWNER_ROLE}: it is not apppw's, or someone else could replace its tables"
                    ),
                });
            }
        }
        tx.batch(&format!(
            "CREATE SCHEMA IF NOT EXISTS apppw AUTHORIZATION {PG_OWNER_ROLE};
             SET LOCAL ROLE {PG_OWNER_ROLE}"
        ))?;
        let has_info = tx
            .query_one(
                "SELECT pg_catalog.to_regclass('apppw.store_info') IS NOT NULL",
                &[],
            )?
            .try_get::<_, bool>(0)
            .map_err(|e| tx.classify(&Failure::Decode(e)))?;
        let version_before: i32 = if has_info {
            match tx.query_opt("SELECT application_id, version FROM apppw.store_info", &[])? {
                Some(row) => {
                    let id: i32 = row
                        .try_get(0)
                        .map_err(|e| tx.classify(&Failure::Decode(e)))?;
                    if id != APPLICATION_ID {
                        return Err(Error::DatabaseNotAStore {
                            store: tx.location().into(),
                            reason: format!(
                                "its schema apppw belongs to something else (application id {id:#x})"
                            ),
                        });
                    }
                    row.try_get(1)
                        .map_err(|e| tx.classify(&Failure::Decode(e)))?
                }
                None => 0,
            }
        } else {
            0
        };
        if version_before > PG_LATEST_VERSION {
            return Err(Error::DatabaseSchemaTooNew {
                store: tx.location().into(),
                found: version_before.into(),
                supported: PG_LATEST_VERSION.into(),
            });
        }
        for step in PG_STEPS
            .iter()
            .skip(usize::try_from(version_before).unwrap_or(0))
        {
            tx.batch(step)?;
        }
        tx.execute(
            "INSERT INTO apppw.store_info (application_id, version) VALUES ($1, $2)
             ON CONFLICT (singleton) DO UPDATE SET version = excluded.version",
            &[&APPLICATION_ID, &PG_LATEST_VERSION],
        )?;
        tx.commit()?;
        Ok(PgInitReport {
            created_roles,
            version_before,
            version_after: PG_LATEST_VERSION,
        })
    }

    /// Opens the store as its owner, through a superuser's URL (or a member of apppw_owner's):
    /// for `migrate`, whose copy writes ids and the history, which apppw-ctl's role may not.
    pub fn open_as_owner(admin: &PgTarget) -> Result<PgStore, Error> {
        let store = PgStore {
            session: Session::connect(admin, MANAGE_STATEMENT_DEADLINE)?,
        };
        store.session.batch(&format!("SET ROLE {PG_OWNER_ROLE}"))?;
        let row = store
            .session
            .query_opt("SELECT application_id, version FROM apppw.store_info", &[])?;
        match row {
            Some(row)
                if get::<i32>(&store.session, &row, 0)? == APPLICATION_ID
                    && get::<i32>(&store.session, &row, 1)? == PG_LATEST_VERSION =>
            {
                Ok(store)
            }
            _ => Err(Error::DatabaseNotAStore {
                store: store.location().into(),
                reason: "no apppw store of this version: run `apppw-ctl init --admin-url` first"
                    .into(),
            }),
        }
    }

    /// See [`super::Store::export`]: one REPEATABLE READ snapshot.
    pub fn export(&mut self) -> Result<StoreRows, Error> {
        let tx = self.session.transaction()?;
        tx.batch("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")?;
        let codes = tx
            .query(
                &format!("SELECT {CODE_ROW_COLUMNS} FROM apppw.app_passwords ORDER BY id"),
                &[],
            )?
            .iter()
            .map(|r| {
                let tag: i32 = get(&tx, r, 3)?;
                Ok(CodeRow {
                    id: get(&tx, r, 0)?,
                    user: get(&tx, r, 1)?,
                    label: get(&tx, r, 2)?,
                    lookup_tag: i64::from(tag),
                    hash: get::<Option<String>>(&tx, r, 4)?.map(Zeroizing::new),
                    created: get(&tx, r, 5)?,
                    revoked: get(&tx, r, 6)?,
                    last_used: get(&tx, r, 7)?,
                    last_service: get(&tx, r, 8)?,
                    last_rhost: get(&tx, r, 9)?,
                    last_host: get(&tx, r, 10)?,
                    use_count: get(&tx, r, 11)?,
                    created_by: get(&tx, r, 12)?,
                    revoked_by: get(&tx, r, 13)?,
                    services: get(&tx, r, 14)?,
                    networks: get(&tx, r, 15)?,
                    expires: get(&tx, r, 16)?,
                    owner_uid: get(&tx, r, 17)?,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let events = tx
            .query(
                &format!("SELECT {EVENT_ROW_COLUMNS} FROM apppw.events ORDER BY id"),
                &[],
            )?
            .iter()
            .map(|r| {
                let actor_uid: i64 = get(&tx, r, 2)?;
                Ok(EventRow {
                    event: Event {
                        id: get(&tx, r, 0)?,
                        time: get(&tx, r, 1)?,
                        actor_uid: u32::try_from(actor_uid).map_err(|_| Error::DatabaseFailed {
                            store: tx.location().into(),
                            reason: format!("an event has actor uid {actor_uid}"),
                        })?,
                        actor: get(&tx, r, 3)?,
                        origin: get(&tx, r, 4)?,
                        user: get(&tx, r, 5)?,
                        action: get(&tx, r, 6)?,
                        code_id: get(&tx, r, 7)?,
                        label: get(&tx, r, 8)?,
                        detail: get(&tx, r, 9)?,
                    },
                    owner_uid: get(&tx, r, 10)?,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        // Byte order (COLLATE "C"), as SQLite sorts text.
        let uses = tx
            .query(
                &format!(
                    "SELECT {USE_ROW_COLUMNS} FROM apppw.code_uses
                     ORDER BY code_id, service COLLATE \"C\", rhost COLLATE \"C\", host COLLATE \"C\""
                ),
                &[],
            )?
            .iter()
            .map(|r| {
                Ok(UseRow {
                    code_id: get(&tx, r, 0)?,
                    entry: UseEntry {
                        service: get(&tx, r, 1)?,
                        rhost: get(&tx, r, 2)?,
                        host: get(&tx, r, 3)?,
                        first: get(&tx, r, 4)?,
                        last: get(&tx, r, 5)?,
                        count: get(&tx, r, 6)?,
                    },
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        tx.commit()?;
        Ok(StoreRows {
            codes,
            events,
            uses,
        })
    }

    /// See [`super::Store::import`]: needs the owner's rights ([`PgStore::open_as_owner`]).
    /// The identity sequences are moved past the copied ids.
    pub fn import(&mut self, rows: &StoreRows) -> Result<(), Error> {
        let tx = self.session.transaction()?;
        tx.batch(
            "LOCK TABLE apppw.app_passwords, apppw.events, apppw.code_uses IN EXCLUSIVE MODE",
        )?;
        let row = tx.query_one(
            "SELECT (SELECT count(*) FROM apppw.app_passwords),
                    (SELECT count(*) FROM apppw.events),
                    (SELECT count(*) FROM apppw.code_uses)",
            &[],
        )?;
        let (codes, events, uses): (i64, i64, i64) =
            (get(&tx, &row, 0)?, get(&tx, &row, 1)?, get(&tx, &row, 2)?);
        if codes + events + uses > 0 {
            return Err(Error::MigrateTargetNotEmpty {
                store: tx.location().into(),
                codes,
                events,
            });
        }
        for c in &rows.codes {
            let tag = i32::try_from(c.lookup_tag).map_err(|_| Error::DatabaseFailed {
                store: tx.location().into(),
                reason: format!("code {} has lookup tag {} out of range", c.id, c.lookup_tag),
            })?;
            tx.execute(
                &format!(
                    "INSERT INTO apppw.app_passwords ({CODE_ROW_COLUMNS}) OVERRIDING SYSTEM VALUE
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                             $16, $17, $18)"
                ),
                &[
                    &c.id,
                    &c.user,
                    &c.label,
                    &tag,
                    &c.hash.as_deref().map(String::as_str),
                    &c.created,
                    &c.revoked,
                    &c.last_used,
                    &c.last_service,
                    &c.last_rhost,
                    &c.last_host,
                    &c.use_count,
                    &c.created_by,
                    &c.revoked_by,
                    &c.services,
                    &c.networks,
                    &c.expires,
                    &c.owner_uid,
                ],
            )?;
        }
        for e in &rows.events {
            let ev = &e.event;
            tx.execute(
                &format!(
                    "INSERT INTO apppw.events ({EVENT_ROW_COLUMNS}) OVERRIDING SYSTEM VALUE
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
                ),
                &[
                    &ev.id,
                    &ev.time,
                    &i64::from(ev.actor_uid),
                    &ev.actor,
                    &ev.origin,
                    &ev.user,
                    &ev.action,
                    &ev.code_id,
                    &ev.label,
                    &ev.detail,
                    &e.owner_uid,
                ],
            )?;
        }
        for u in &rows.uses {
            let en = &u.entry;
            tx.execute(
                &format!(
                    "INSERT INTO apppw.code_uses ({USE_ROW_COLUMNS})
                     VALUES ($1, $2, $3, $4, $5, $6, $7)"
                ),
                &[
                    &u.code_id,
                    &en.service,
                    &en.rhost,
                    &en.host,
                    &en.first,
                    &en.last,
                    &en.count,
                ],
            )?;
        }
        for table in ["app_passwords", "events"] {
            tx.query_one(
                &format!(
                    "SELECT pg_catalog.setval(
                         pg_catalog.pg_get_serial_sequence('apppw.{table}', 'id'),
                         coalesce(max(id), 1), max(id) IS NOT NULL)
                     FROM apppw.{table}"
                ),
                &[],
            )?;
        }
        tx.commit()
    }

    /// The store's URL without its password.
    pub fn location(&self) -> &str {
        self.session.location()
    }

    /// Asks the server whether this connection still works (one round trip): a kept connection
    /// is checked before each login, so that during an outage every attempt, whatever its
    /// token, is answered as an outage, never as a wrong password.
    pub fn ping(&self) -> Result<(), Error> {
        self.session.batch("SELECT 1")
    }

    /// Whether the connection can still be used (see `Session::is_usable`).
    pub fn is_usable(&self) -> bool {
        self.session.is_usable()
    }

    fn failed(&self, reason: String) -> Error {
        Error::DatabaseFailed {
            store: self.location().into(),
            reason,
        }
    }

    /// See [`super::SqliteStore::insert`]; here under the owner's advisory lock.
    pub fn insert(
        &mut self,
        code: &NewCode<'_>,
        max_active: u32,
        by: &Changer<'_>,
    ) -> Result<Option<i64>, Error> {
        let tx = self.session.transaction()?;
        lock_owner(&tx, code.owner.name)?;
        check_daily_cap(&tx, by)?;
        let uid = i64::from(code.owner.uid);
        let tag = i32::try_from(code.lookup_tag)
            .map_err(|_| self.failed(format!("lookup tag {} out of range", code.lookup_tag)))?;
        let row = tx.query_one(
            "SELECT count(*) FILTER (WHERE owner_uid = $4),
                    count(*) FILTER (WHERE (owner_uid = $4 OR owner_uid IS NULL) AND label = $2) > 0,
                    count(*) FILTER (WHERE lookup_tag = $3) > 0
             FROM apppw.app_passwords WHERE \"user\" = $1 AND revoked IS NULL",
            &[&code.owner.name, &code.label.as_str(), &tag, &uid],
        )?;
        let check = NewCodeCheck {
            active: get(&self.session, &row, 0)?,
            label_taken: get(&self.session, &row, 1)?,
            tag_taken: get(&self.session, &row, 2)?,
        };
        if !check.verdict(code, max_active)? {
            return Ok(None);
        }
        let row = tx.query_one(
            "INSERT INTO apppw.app_passwords
                 (\"user\", label, lookup_tag, hash, created, created_by, services, networks,
                  expires, owner_uid)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
            &[
                &code.owner.name,
                &code.label.as_str(),
                &tag,
                &code.hash,
                &by.now,
                &by.actor(),
                &code.scope.services_column(),
                &code.scope.networks_column(),
                &code.scope.expires,
                &uid,
            ],
        )?;
        let id: i64 = get(&self.session, &row, 0)?;
        record_event(
            &tx,
            by,
            EventRecord::about_code(code.owner, "created", id, code.label.as_str()),
        )?;
        tx.commit()?;
        Ok(Some(id))
    }

    pub(super) fn revoke_as(
        &mut self,
        owner: Owner<'_>,
        which: &CodeRef,
        by: &Changer<'_>,
        action: &str,
    ) -> Result<CodeInfo, Error> {
        let tx = self.session.transaction()?;
        lock_owner(&tx, owner.name)?;
        let current = find_active(&tx, owner, which)?;
        let actor = by.actor();
        // `revoked IS NULL` again: a store-wide change (revoke --all-users, prune) takes no
        // owner lock and may have come first.
        let changed = tx.execute(
            "UPDATE apppw.app_passwords SET revoked = $2, revoked_by = $3, hash = NULL
             WHERE id = $1 AND revoked IS NULL",
            &[&current.id, &by.now, &actor],
        )?;
        if changed != 1 {
            return Err(Error::ChangedMeanwhile {
                user: owner.name.into(),
                id: current.id,
            });
        }
        record_event(
            &tx,
            by,
            EventRecord::about_code(owner, action, current.id, &current.label),
        )?;
        tx.commit()?;
        Ok(CodeInfo {
            revoked: Some(by.now),
            revoked_by: Some(actor),
            ..current
        })
    }

    pub fn list(&self, owner: Owner<'_>, include_revoked: bool) -> Result<Vec<CodeInfo>, Error> {
        let rows = self.session.query(
            &format!(
                "SELECT {CODE_INFO_COLUMNS} FROM apppw.app_passwords
                 WHERE \"user\" = $1 AND owner_uid = $3 AND ($2 OR revoked IS NULL) ORDER BY id"
            ),
            &[&owner.name, &include_revoked, &i64::from(owner.uid)],
        )?;
        code_infos(&self.session, &rows)
    }

    pub fn find(&self, owner: Owner<'_>, which: &CodeRef) -> Result<CodeInfo, Error> {
        find_active(&self.session, owner, which)
    }

    pub fn edit(
        &mut self,
        owner: Owner<'_>,
        which: &CodeRef,
        change: &Edit<'_>,
        by: &Changer<'_>,
    ) -> Result<CodeInfo, Error> {
        let tx = self.session.transaction()?;
        lock_owner(&tx, owner.name)?;
        let mut code = find_active(&tx, owner, which)?;
        change.check_still_current(owner, &code)?;
        check_daily_cap(&tx, by)?;
        if let Some(label) = change.new_label(&code) {
            let taken = tx
                .query_opt(
                    "SELECT 1 FROM apppw.app_passwords
                     WHERE \"user\" = $1 AND (owner_uid = $3 OR owner_uid IS NULL) AND label = $2
                       AND revoked IS NULL",
                    &[&owner.name, &label.as_str(), &i64::from(owner.uid)],
                )?
                .is_some();
            if taken {
                return Err(Error::LabelTaken {
                    user: owner.name.into(),
                    label: label.as_str().into(),
                });
            }
            still_active(
                tx.execute(
                    "UPDATE apppw.app_passwords SET label = $2 WHERE id = $1 AND revoked IS NULL",
                    &[&code.id, &label.as_str()],
                )?,
                owner,
                code.id,
            )?;
        }
        if let Some(scope) = change.scope {
            still_active(
                tx.execute(
                    "UPDATE apppw.app_passwords SET services = $2, networks = $3, expires = $4
                     WHERE id = $1 AND revoked IS NULL",
                    &[
                        &code.id,
                        &scope.services_column(),
                        &scope.networks_column(),
                        &scope.expires,
                    ],
                )?,
                owner,
                code.id,
            )?;
        }
        let (action, detail) = change.apply(&mut code);
        record_event(&tx, by, EventRecord::edit(owner, &code, action, &detail))?;
        tx.commit()?;
        Ok(code)
    }

    pub fn revoke_all(
        &mut self,
        scope: RevokeScope<'_>,
        action: &str,
        by: &Changer<'_>,
    ) -> Result<Vec<CodeInfo>, Error> {
        let (name, uid) = match scope {
            RevokeScope::Owner(owner) => (Some(owner.name), Some(i64::from(owner.uid))),
            RevokeScope::Name(name) => (Some(name), None),
            RevokeScope::Everyone => (None, None),
        };
        let tx = self.session.transaction()?;
        if let Some(name) = name {
            lock_owner(&tx, name)?;
        }
        let rows = tx.query(
            &format!(
                "UPDATE apppw.app_passwords SET revoked = $2, revoked_by = $3, hash = NULL
                 WHERE ($1::text IS NULL OR \"user\" = $1) AND ($4::bigint IS NULL OR owner_uid = $4)
                   AND revoked IS NULL
                 RETURNING {CODE_INFO_COLUMNS}"
            ),
            &[&name, &by.now, &by.actor(), &uid],
        )?;
        let mut revoked = code_infos(&self.session, &rows)?;
        revoked.sort_by_key(|c| c.id);
        for code in &revoked {
            record_event(&tx, by, EventRecord::about_row(code, action))?;
        }
        tx.commit()?;
        Ok(revoked)
    }

    pub fn audit_each<E: From<Error>>(
        &self,
        user: Option<&str>,
        mut each: impl FnMut(CodeInfo) -> Result<(), E>,
    ) -> Result<(), E> {
        self.session.for_each_row(
            &format!(
                "SELECT {CODE_INFO_COLUMNS} FROM apppw.app_passwords
                 WHERE ($1::text IS NULL OR \"user\" = $1)
                 ORDER BY revoked IS NOT NULL, last_used IS NOT NULL, last_used, created, id"
            ),
            &[&user],
            |row| each(code_info(&self.session, row)?),
        )
    }

    pub fn prune(&mut self, revoked_before: i64, by: &Changer<'_>) -> Result<usize, Error> {
        let tx = self.session.transaction()?;
        let removed = tx.execute(
            "DELETE FROM apppw.app_passwords WHERE revoked IS NOT NULL AND revoked <= $1",
            &[&revoked_before],
        )?;
        tx.execute(
            "DELETE FROM apppw.code_uses u
             WHERE NOT EXISTS (SELECT 1 FROM apppw.app_passwords p WHERE p.id = u.code_id)",
            &[],
        )?;
        let removed = usize::try_from(removed).unwrap_or(usize::MAX);
        let detail = prune_detail(removed, revoked_before);
        record_event(&tx, by, EventRecord::store_wide("pruned", &detail))?;
        tx.commit()?;
        Ok(removed)
    }

    pub fn events(&self, about: EventsAbout<'_>, limit: u32) -> Result<Vec<Event>, Error> {
        let (name, uid) = match about {
            EventsAbout::Owner(owner) => (Some(owner.name), Some(i64::from(owner.uid))),
            EventsAbout::Name(name) => (Some(name), None),
            EventsAbout::Everyone => (None, None),
        };
        let rows = self.session.query(
            "SELECT id, time, actor_uid, actor, origin, \"user\", action, code_id, label, detail
             FROM (SELECT * FROM apppw.events
                   WHERE ($1::text IS NULL OR \"user\" = $1)
                     AND ($3::bigint IS NULL OR owner_uid = $3)
                   ORDER BY id DESC LIMIT $2) AS newest
             ORDER BY id",
            &[&name, &i64::from(limit), &uid],
        )?;
        rows.iter()
            .map(|row| {
                let actor_uid: i64 = get(&self.session, row, 2)?;
                Ok(Event {
                    id: get(&self.session, row, 0)?,
                    time: get(&self.session, row, 1)?,
                    actor_uid: u32::try_from(actor_uid)
                        .map_err(|_| self.failed(format!("an event has actor uid {actor_uid}")))?,
                    actor: get(&self.session, row, 3)?,
                    origin: get(&self.session, row, 4)?,
                    user: get(&self.session, row, 5)?,
                    action: get(&self.session, row, 6)?,
                    code_id: get(&self.session, row, 7)?,
                    label: get(&self.session, row, 8)?,
                    detail: get(&self.session, row, 9)?,
                })
            })
            .collect()
    }

    /// See [`super::Store::bind_unowned`]. A PostgreSQL store is made at schema 1 with every
    /// code bound; unbound rows arrive only if `migrate` copied them from an SQLite store that
    /// was never bound.
    pub fn bind_unowned(
        &mut self,
        accounts: &impl Accounts,
        by: &Changer<'_>,
    ) -> Result<BindOutcome, Error> {
        let rows = self.session.query(
            "SELECT \"user\", sum(codes)::bigint FROM (
                 SELECT \"user\", 1 AS codes FROM apppw.app_passwords WHERE owner_uid IS NULL
                 UNION ALL
                 SELECT \"user\", 0 FROM apppw.events WHERE owner_uid IS NULL AND \"user\" IS NOT NULL
             ) AS unbound GROUP BY \"user\" ORDER BY \"user\"",
            &[],
        )?;
        let unbound = rows
            .iter()
            .map(|row| Ok((get(&self.session, row, 0)?, get(&self.session, row, 1)?)))
            .collect::<Result<Vec<(String, i64)>, Error>>()?;
        let (answers, outcome) = ask_about_unbound(unbound, accounts);
        if answers.is_empty() {
            return Ok(outcome);
        }
        let tx = self.session.transaction()?;
        for answer in &answers {
            for table in ["app_passwords", "events"] {
                tx.execute(
                    &format!(
                        "UPDATE apppw.{table} SET owner_uid = $2
                         WHERE \"user\" = $1 AND owner_uid IS NULL"
                    ),
                    &[&answer.user, &answer.owner_uid()],
                )?;
            }
            let detail = binding_detail(answer.codes, answer.uid);
            record_event(
                &tx,
                by,
                EventRecord::binding(&answer.user, answer.owner_uid(), &detail),
            )?;
        }
        tx.commit()?;
        Ok(bound(answers, outcome))
    }

    pub(super) fn every_code_by_user(&self) -> Result<Vec<CodeInfo>, Error> {
        let rows = self.session.query(
            &format!("SELECT {CODE_INFO_COLUMNS} FROM apppw.app_passwords ORDER BY \"user\", id"),
            &[],
        )?;
        code_infos(&self.session, &rows)
    }

    pub(super) fn delete_orphans(
        &mut self,
        orphans: Vec<Orphan>,
        by: &Changer<'_>,
    ) -> Result<Vec<Orphan>, Error> {
        let tx = self.session.transaction()?;
        let mut deleted = Vec::new();
        for orphan in orphans {
            // Only if the row is still as it was read: a row bound or changed meanwhile stays.
            let gone = tx.execute(
                "DELETE FROM apppw.app_passwords WHERE id = $1 AND owner_uid IS NOT DISTINCT FROM $2",
                &[&orphan.code.id, &orphan.code.owner_uid],
            )?;
            if gone == 1 {
                tx.execute(
                    "DELETE FROM apppw.code_uses WHERE code_id = $1",
                    &[&orphan.code.id],
                )?;
                deleted.push(orphan);
            }
        }
        let detail = orphans_pruned_detail(deleted.len());
        record_event(&tx, by, EventRecord::store_wide("pruned", &detail))?;
        tx.commit()?;
        Ok(deleted)
    }

    pub fn uses(&self, id: i64) -> Result<Vec<UseEntry>, Error> {
        let rows = self.session.query(
            "SELECT service, rhost, host, first, last, count FROM apppw.code_uses
             WHERE code_id = $1 ORDER BY last DESC, first DESC",
            &[&id],
        )?;
        rows.iter()
            .map(|row| {
                Ok(UseEntry {
                    service: get(&self.session, row, 0)?,
                    rhost: get(&self.session, row, 1)?,
                    host: get(&self.session, row, 2)?,
                    first: get(&self.session, row, 3)?,
                    last: get(&self.session, row, 4)?,
                    count: get(&self.session, row, 5)?,
                })
            })
            .collect()
    }

    pub fn find_any(&self, owner: Owner<'_>, id: i64) -> Result<CodeInfo, Error> {
        let row = self.session.query_opt(
            &format!(
                "SELECT {CODE_INFO_COLUMNS} FROM apppw.app_passwords
                 WHERE id = $1 AND \"user\" = $2 AND owner_uid = $3"
            ),
            &[&id, &owner.name, &i64::from(owner.uid)],
        )?;
        match row {
            Some(row) => code_info(&self.session, &row),
            None => Err(Error::NoSuchCode {
                user: owner.name.into(),
                what: CodeRef::Id(id).describe(),
            }),
        }
    }
}

/// The login's two calls: the only two things the module's role may do.
impl LoginStore for PgStore {
    fn candidates(&self, user: &str, lookup_tag: u32) -> Result<Vec<Candidate>, Error> {
        let rows = self.session.query(
            "SELECT id, label, hash, created, last_used, services, networks, expires, owner_uid
             FROM apppw.login_candidates($1, $2)",
            &[&user, &tag_column(lookup_tag)],
        )?;
        rows.iter()
            .map(|row| {
                Ok(Candidate {
                    id: get(&self.session, row, 0)?,
                    label: get(&self.session, row, 1)?,
                    hash: Zeroizing::new(get(&self.session, row, 2)?),
                    created: get(&self.session, row, 3)?,
                    last_used: get(&self.session, row, 4)?,
                    scope: scope_at(&self.session, row, 5)?,
                    owner_uid: get(&self.session, row, 8)?,
                })
            })
            .collect()
    }

    fn record_use(&self, id: i64, record: &UseRecord<'_>) -> Result<bool, Error> {
        let (service, rhost, host) = record.bounded_items();
        let row = self.session.query_one(
            "SELECT apppw.record_use($1, $2, $3, $4, $5, $6)",
            &[
                &id,
                &record.now,
                &service,
                &rhost,
                &host,
                &record.min_interval,
            ],
        )?;
        get(&self.session, &row, 0)
    }
}

/// Lookup tags are 20 bits (`code.rs`): they fit PostgreSQL's `integer` as they are. (-1, which
/// no code has, for a value that cannot be a tag: it finds nothing.)
fn tag_column(tag: u32) -> i32 {
    i32::try_from(tag).unwrap_or(-1)
}

/// An edit's UPDATE found the code no longer active (revoked or pruned by a store-wide change
/// since it was read): nothing is written.
fn still_active(changed: u64, owner: Owner<'_>, id: i64) -> Result<(), Error> {
    if changed == 1 {
        Ok(())
    } else {
        Err(Error::ChangedMeanwhile {
            user: owner.name.into(),
            id,
        })
    }
}

/// Takes the transaction-level lock on `name`'s codes: the PostgreSQL store's counterpart of
/// SQLite's one writer at a time, per person.
fn lock_owner(tx: &Session, name: &str) -> Result<(), Error> {
    tx.query_one(
        "SELECT pg_catalog.pg_advisory_xact_lock(
             pg_catalog.hashtextextended('apppw owner ' || $1::text, 0::bigint))",
        &[&name],
    )?;
    Ok(())
}

fn check_daily_cap(tx: &Session, by: &Changer<'_>) -> Result<(), Error> {
    if by.daily_cap.is_none() {
        return Ok(());
    }
    let row = tx.query_one(
        &format!(
            "SELECT count(*), min(time) FROM apppw.events
             WHERE actor_uid = $1 AND time > $2 AND action IN {CAPPED_ACTIONS}"
        ),
        &[&i64::from(by.uid), &(by.now - DAY_SECS)],
    )?;
    let count: i64 = row
        .try_get(0)
        .map_err(|e| tx.classify(&Failure::Decode(e)))?;
    let oldest: Option<i64> = row
        .try_get(1)
        .map_err(|e| tx.classify(&Failure::Decode(e)))?;
    daily_cap_verdict(by, count, oldest)
}

fn record_event(tx: &Session, by: &Changer<'_>, event: EventRecord<'_>) -> Result<(), Error> {
    tx.execute(
        "INSERT INTO apppw.events
             (time, actor_uid, actor, origin, \"user\", action, code_id, label, detail, owner_uid)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[
            &by.now,
            &i64::from(by.uid),
            &by.name,
            &by.origin,
            &event.user,
            &event.action,
            &event.code_id,
            &event.label,
            &event.detail,
            &event.owner_uid,
        ],
    )?;
    Ok(())
}

fn find_active(session: &Session, owner: Owner<'_>, which: &CodeRef) -> Result<CodeInfo, Error> {
    let sql = |filter: &str| {
        format!(
            "SELECT {CODE_INFO_COLUMNS} FROM apppw.app_passwords
             WHERE \"user\" = $1 AND owner_uid = $3 AND revoked IS NULL AND {filter}"
        )
    };
    let uid = i64::from(owner.uid);
    let row = match which {
        CodeRef::Id(id) => session.query_opt(&sql("id = $2"), &[&owner.name, id, &uid])?,
        CodeRef::Label(label) => {
            session.query_opt(&sql("label = $2"), &[&owner.name, &label.as_str(), &uid])?
        }
    };
    match row {
        Some(row) => code_info(session, &row),
        None => Err(Error::NoSuchCode {
            user: owner.name.into(),
            what: which.describe(),
        }),
    }
}

/// Column `i` of `row`, or an error naming the store.
fn get<'a, T: tokio_postgres::types::FromSql<'a>>(
    session: &Session,
    row: &'a Row,
    i: usize,
) -> Result<T, Error> {
    row.try_get(i)
        .map_err(|e| session.classify(&Failure::Decode(e)))
}

/// A scope from three columns starting at `first`; a value the store should never hold is an
/// error (a damaged store), never "no limit".
fn scope_at(session: &Session, row: &Row, first: usize) -> Result<Scope, Error> {
    let services: Option<String> = get(session, row, first)?;
    let networks: Option<String> = get(session, row, first + 1)?;
    let expires: Option<i64> = get(session, row, first + 2)?;
    Scope::from_columns(services.as_deref(), networks.as_deref(), expires).map_err(|e| {
        Error::DatabaseFailed {
            store: session.location().into(),
            reason: format!("a code's limits cannot be read ({e})"),
        }
    })
}

/// A [`CodeInfo`] from [`CODE_INFO_COLUMNS`].
fn code_info(session: &Session, row: &Row) -> Result<CodeInfo, Error> {
    let last_time: Option<i64> = get(session, row, 5)?;
    Ok(CodeInfo {
        id: get(session, row, 0)?,
        user: get(session, row, 1)?,
        label: get(session, row, 2)?,
        created: get(session, row, 3)?,
        revoked: get(session, row, 4)?,
        last_used: match last_time {
            Some(time) => Some(LastUse {
                time,
                service: get(session, row, 6)?,
                rhost: get(session, row, 7)?,
                host: get(session, row, 15)?,
            }),
            None => None,
        },
        use_count: get(session, row, 8)?,
        created_by: get(session, row, 9)?,
        revoked_by: get(session, row, 10)?,
        scope: scope_at(session, row, 11)?,
        owner_uid: get(session, row, 14)?,
    })
}

fn code_infos(session: &Session, rows: &[Row]) -> Result<Vec<CodeInfo>, Error> {
    rows.iter().map(|row| code_info(session, row)).collect()
}
