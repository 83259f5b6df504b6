//! Where a store is (`sqlite:/path` or `postgresql://...`), and the connection to a PostgreSQL
//! store: TLS always on and verified, one deadline over connecting (TCP, TLS and authentication
//! together) and one over every statement, no thread, and errors a person can act on.
//!
//! The synchronous `postgres` crate cannot bound the TLS handshake and the authentication (its
//! `connect_timeout` covers TCP only: docs/POSTGRESQL.md), so this drives `tokio-postgres` on a
//! current-thread runtime of its own, inside `tokio::time::timeout`. The runtime runs only while
//! a call waits; it starts no thread (host names are the exception: tokio resolves them on a
//! thread, which is why the PAM module is given addresses, see [`PgTarget::parse`]).
#![forbid(unsafe_code)]

use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use tokio_postgres::config::{Host, SslMode, TargetSessionAttrs};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row};

use crate::error::Error;
use crate::postgres_tls::{TrustAnchors, connector};

/// The connect deadline unless the connection string says `connect_timeout=`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest `connect_timeout=` accepted: a login must not wait longer for an outage to show.
const MAX_CONNECT_TIMEOUT_SECS: u64 = 30;

/// Which store to open.
#[derive(Clone, Debug)]
pub enum StoreTarget {
    /// The SQLite file at this path.
    Sqlite(PathBuf),
    /// A PostgreSQL database.
    Postgres(Box<PgTarget>),
}

impl StoreTarget {
    /// Parses `sqlite:/absolute/path` or a `postgresql://` URL (see [`PgTarget::parse`]).
    /// `for_module`: the PAM module's target, which must name hosts by address.
    pub fn parse(text: &str, for_module: bool) -> Result<StoreTarget, Error> {
        let text = text.trim();
        if let Some(path) = text.strip_prefix("sqlite:") {
            let path = PathBuf::from(path);
            if !path.is_absolute() {
                return Err(Error::StoreTarget {
                    given: text.into(),
                    problem: "an SQLite store is named by an absolute path: sqlite:/var/lib/apppw/apppw.db".into(),
                });
            }
            return Ok(StoreTarget::Sqlite(path));
        }
        PgTarget::parse(text, for_module).map(|t| StoreTarget::Postgres(Box::new(t)))
    }
}

/// A PostgreSQL store: where it is, whom to trust for its certificate, how long to wait.
#[derive(Clone)]
pub struct PgTarget {
    config: tokio_postgres::Config,
    /// `None`: the system's CA store.
    ca_file: Option<PathBuf>,
    connect_timeout: Duration,
    /// The URL without its password, for messages.
    location: String,
    /// The URL as given, to tell whether a kept connection is still to the configured store
    /// (a changed password included).
    source: zeroize::Zeroizing<String>,
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        f.debug_struct("PgTarget")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl PgTarget {
    /// Parses a `postgresql://user:password@host:port[,host2:port2]/dbname?key=value&...` URL.
    /// apppw reads three keys itself: `sslrootcert` (a PEM file of the CA to trust, or `system`,
    /// the default: the host's CA store), `sslmode` (only `verify-full`, which is what apppw always
    /// does, may be given) and `connect_timeout` (seconds, 1 to 30, default 3). The rest go to
    /// the client as libpq would read them (`target_session_attrs=read-write`, `hostaddr`,
    /// `channel_binding`, `application_name`, ...). TLS is always required.
    ///
    /// `for_module`: every host must be an IP address or come with a `hostaddr`, because
    /// resolving a name would start a thread inside the host process and wait on DNS.
    pub fn parse(text: &str, for_module: bool) -> Result<PgTarget, Error> {
        // Until it parses, messages name no part of the URL: any part may hold the password.
        let bad = |problem: String| Error::StoreTarget {
            given: "the postgresql:// URL".into(),
            problem,
        };
        let Some(rest) = text
            .strip_prefix("postgresql://")
            .or_else(|| text.strip_prefix("postgres://"))
        else {
            return Err(bad(
                "a store is `sqlite:/path` or a `postgresql://` URL".into()
            ));
        };
        let (base, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut ca_file = None;
        let mut connect_timeout = DEFAULT_CONNECT_TIMEOUT;
        let mut passed_on = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "sslrootcert" if value == "system" => ca_file = None,
                "sslrootcert" => {
                    let path = PathBuf::from(percent_decoded(value).ok_or_else(|| {
                        bad("sslrootcert is not a valid percent-encoded UTF-8 path".into())
                    })?);
                    if !path.is_absolute() {
                        return Err(bad(
                            "sslrootcert must be an absolute path or `system`".into()
                        ));
                    }
                    ca_file = Some(path);
                }
                "sslmode" if value == "verify-full" => {}
                "sslmode" => {
                    return Err(bad(
                        "apppw always requires TLS and checks the server's certificate and name (sslmode=verify-full); leave sslmode out or write verify-full".into(),
                    ));
                }
                "connect_timeout" => {
                    connect_timeout = value
                        .parse::<u64>()
                        .ok()
                        .filter(|s| (1..=MAX_CONNECT_TIMEOUT_SECS).contains(s))
                        .map(Duration::from_secs)
                        .ok_or_else(|| {
                            bad(format!(
                                "connect_timeout must be whole seconds from 1 to {MAX_CONNECT_TIMEOUT_SECS}"
                            ))
                        })?;
                }
                _ => passed_on.push(pair),
            }
        }
        let url = if passed_on.is_empty() {
            format!("postgresql://{base}")
        } else {
            format!("postgresql://{base}?{}", passed_on.join("&"))
        };
        let mut config = tokio_postgres::Config::from_str(&url)
            // tokio-postgres's message may quote a part of the URL: not repeated.
            .map_err(|_| {
                bad("it does not parse: write postgresql://user:password@host:port/dbname, with special characters in the password percent-encoded".into())
            })?;
        if config.get_hosts().is_empty() {
            return Err(bad("the URL names no host".into()));
        }
        for host in config.get_hosts() {
            if let Host::Unix(_) = host {
                return Err(bad(
                    "apppw reaches PostgreSQL over TCP with TLS; give a host name or address"
                        .into(),
                ));
            }
        }
        if for_module {
            let addressed = config.get_hostaddrs().len() == config.get_hosts().len()
                || config.get_hosts().iter().all(|host| match host {
                    Host::Tcp(name) => name.trim_matches(['[', ']']).parse::<IpAddr>().is_ok(),
                    Host::Unix(_) => false,
                });
            if !addressed {
                return Err(bad(
                    "the PAM module must not resolve host names (it would wait on DNS inside the mail server's process); give addresses, or add hostaddr= with one address per host".into(),
                ));
            }
        }
        config
            .ssl_mode(SslMode::Require)
            .connect_timeout(connect_timeout)
            // Logins must see every revocation at once: never a standby, which may lag.
            .target_session_attrs(TargetSessionAttrs::ReadWrite);
        let location = location_of(&config);
        Ok(PgTarget {
            config,
            ca_file,
            connect_timeout,
            location,
            source: zeroize::Zeroizing::new(text.to_owned()),
        })
    }

    /// The URL without its password, for messages and logs.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Whether `other` was made from the same URL.
    pub fn same_as(&self, other: &PgTarget) -> bool {
        *self.source == *other.source
    }

    /// The deadline over connecting: `connect_timeout` for each host the URL names.
    pub fn connect_deadline(&self) -> Duration {
        let hosts = u32::try_from(self.config.get_hosts().len()).unwrap_or(u32::MAX);
        self.connect_timeout.saturating_mul(hosts.max(1))
    }
}

/// The store as messages name it, built from the parsed URL: user, hosts and ports, database.
/// Never from the text, whose password tokio-postgres may find where a simple scan would not.
fn location_of(config: &tokio_postgres::Config) -> String {
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let name = match host {
                Host::Tcp(name) => name.clone(),
                Host::Unix(path) => path.display().to_string(),
            };
            let port = ports
                .get(i)
                .or_else(|| ports.first())
                .copied()
                .unwrap_or(5432);
            format!("{name}:{port}")
        })
        .collect();
    let user = config
        .get_user()
        .map(|u| format!("{u}@"))
        .unwrap_or_default();
    let dbname = config.get_dbname().unwrap_or("");
    format!("postgresql://{user}{}/{dbname}", hosts.join(","))
}

/// Decodes `%XX` escapes, as URLs carry paths with unusual characters.
fn percent_decoded(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// What every session sets at connect time.
///
/// `search_path` names only pg_catalog (and pg_temp, last): every statement names apppw's schema
/// itself, and no function or operator can be shadowed by one planted in `public` or a `$user`
/// schema (CVE-2018-1058), not even while `init` runs as a superuser. `synchronous_commit=on`: a
/// change apppw-ctl reported is on disk, whatever the server's default. No transaction is left
/// open for long, whatever happens to the client. The statement and lock limits follow
/// ([`server_limits`]).
const SESSION_OPTIONS: &str = "-c search_path=pg_catalog,pg_temp -c synchronous_commit=on \
     -c idle_in_transaction_session_timeout=30s";

/// The server's own statement and lock limits for a session whose client waits
/// `statement_deadline` for each statement: two thirds of the client's wait (at most 20 s), and
/// half of that for a lock (at most 5 s), so that the server cancels a statement the client is
/// about to give up on rather than letting it wait on for a lock and write later. A login's
/// client waits 3 s: 2 s and 1 s. apppw-ctl's waits 60 s: 20 s and 5 s.
fn server_limits(statement_deadline: Duration) -> String {
    let statement = (statement_deadline * 2 / 3).min(Duration::from_secs(20));
    let lock = (statement / 2).min(Duration::from_secs(5));
    format!(
        "-c statement_timeout={}ms -c lock_timeout={}ms",
        statement.as_millis().max(1),
        lock.as_millis().max(1)
    )
}

/// One open connection to a PostgreSQL store.
pub(super) struct Session {
    /// Dropped before the runtime (fields drop in order), so the connection task sees the
    /// client gone and can say goodbye to the server in `Drop`.
    client: Option<Client>,
    connection: Option<tokio::task::JoinHandle<()>>,
    /// Taken only by `Drop`.
    runtime: Option<tokio::runtime::Runtime>,
    statement_deadline: Duration,
    location: String,
    /// Set once a call timed out or the connection failed: its state is unknown, so nothing more
    /// is sent on it.
    broken: std::cell::Cell<bool>,
}

/// What went wrong in one call, before it is turned into an [`Error`].
pub(super) enum Failure {
    Db(tokio_postgres::Error),
    /// A value the store returned could not be read as the column's type: a damaged or foreign
    /// schema, not an outage.
    Decode(tokio_postgres::Error),
    TimedOut(Duration),
    Broken,
}

impl Session {
    /// Connects to `target` within its deadline; each later statement gets `statement_deadline`.
    pub(super) fn connect(
        target: &PgTarget,
        statement_deadline: Duration,
    ) -> Result<Session, Error> {
        let location = target.location.clone();
        let unavailable = |reason: String| Error::DatabaseUnavailable {
            store: location.clone(),
            reason,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| unavailable(format!("cannot start the client ({e})")))?;
        let anchors = match &target.ca_file {
            Some(path) => TrustAnchors::CaFile(path),
            None => TrustAnchors::System,
        };
        let tls = connector(anchors)?;
        let mut config = target.config.clone();
        let ours = format!("{SESSION_OPTIONS} {}", server_limits(statement_deadline));
        let options = match config.get_options() {
            // Ours last, so that they win.
            Some(theirs) => format!("{theirs} {ours}"),
            None => ours,
        };
        config.options(options);
        let deadline = target.connect_deadline();
        let connected =
            runtime.block_on(async { tokio::time::timeout(deadline, config.connect(tls)).await });
        let (client, connection) = match connected {
            Err(_) => {
                return Err(unavailable(format!(
                    "no answer within {} s",
                    deadline.as_secs()
                )));
            }
            Ok(Err(e)) => return Err(classify(&location, &Failure::Db(e))),
            Ok(Ok(pair)) => pair,
        };
        let connection = runtime.spawn(async move {
            // Ends when the client is dropped or the server goes away; either way there is
            // nobody to tell.
            let _ = connection.await;
        });
        Ok(Session {
            client: Some(client),
            connection: Some(connection),
            runtime: Some(runtime),
            statement_deadline,
            location,
            broken: std::cell::Cell::new(false),
        })
    }

    pub(super) fn location(&self) -> &str {
        &self.location
    }

    /// Whether calls can still be made: not timed out, not failed, not closed by the server
    /// (as far as the client has noticed).
    pub(super) fn is_usable(&self) -> bool {
        self.client().is_ok()
    }

    /// The client, unless the connection is known to be unusable.
    fn client(&self) -> Result<&Client, Failure> {
        match &self.client {
            Some(client) if !self.broken.get() && !client.is_closed() => Ok(client),
            _ => Err(Failure::Broken),
        }
    }

    /// Waits for one call on the client, within the statement deadline.
    fn wait<T>(
        &self,
        call: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, Failure> {
        let deadline = self.statement_deadline;
        let Some(runtime) = &self.runtime else {
            return Err(Failure::Broken);
        };
        let result = runtime.block_on(async { tokio::time::timeout(deadline, call).await });
        match result {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                // Without an SQLSTATE the failure was the connection's, not the statement's.
                if e.code().is_none() {
                    self.broken.set(true);
                }
                Err(Failure::Db(e))
            }
            Err(_) => {
                self.broken.set(true);
                Err(Failure::TimedOut(deadline))
            }
        }
    }

    pub(super) fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, Error> {
        self.client()
            .and_then(|c| self.wait(c.query(sql, params)))
            .map_err(|f| classify(&self.location, &f))
    }

    /// Runs a query and hands each row to `each` as it arrives, so that a million rows are
    /// never all held at once. One statement deadline covers the whole read. If `each` stops
    /// early, the rest of the answer is still on the wire: the session is not used again.
    pub(super) fn for_each_row<E: From<Error>>(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        mut each: impl FnMut(&Row) -> Result<(), E>,
    ) -> Result<(), E> {
        use futures_util::StreamExt;
        let client = self.client().map_err(|f| classify(&self.location, &f))?;
        let mut stopped = None;
        let read = async {
            let rows = client.query_raw(sql, params.iter().copied()).await?;
            let mut rows = std::pin::pin!(rows);
            while let Some(row) = rows.next().await {
                if let Err(e) = each(&row?) {
                    stopped = Some(e);
                    break;
                }
            }
            Ok(())
        };
        self.wait(read).map_err(|f| classify(&self.location, &f))?;
        match stopped {
            Some(e) => {
                self.broken.set(true);
                Err(e)
            }
            None => Ok(()),
        }
    }

    pub(super) fn query_opt(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, Error> {
        self.client()
            .and_then(|c| self.wait(c.query_opt(sql, params)))
            .map_err(|f| classify(&self.location, &f))
    }

    pub(super) fn query_one(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, Error> {
        self.client()
            .and_then(|c| self.wait(c.query_one(sql, params)))
            .map_err(|f| classify(&self.location, &f))
    }

    pub(super) fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, Error> {
        self.client()
            .and_then(|c| self.wait(c.execute(sql, params)))
            .map_err(|f| classify(&self.location, &f))
    }

    /// Runs statements without parameters (DDL, BEGIN, COMMIT).
    pub(super) fn batch(&self, sql: &str) -> Result<(), Error> {
        self.client()
            .and_then(|c| self.wait(c.batch_execute(sql)))
            .map_err(|f| classify(&self.location, &f))
    }

    /// Begins a transaction, ended by [`Transaction::commit`] or rolled back when dropped.
    pub(super) fn transaction(&self) -> Result<Transaction<'_>, Error> {
        self.batch("BEGIN")?;
        Ok(Transaction {
            session: self,
            done: false,
        })
    }

    pub(super) fn classify(&self, failure: &Failure) -> Error {
        classify(&self.location, failure)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Dropping the client lets the connection task send Terminate and end; give it a moment
        // so the server sees a goodbye rather than a dropped socket.
        drop(self.client.take());
        let Some(runtime) = self.runtime.take() else {
            return;
        };
        if let Some(connection) = self.connection.take() {
            let _ = runtime.block_on(async {
                tokio::time::timeout(Duration::from_millis(200), connection).await
            });
        }
        // A thread resolving a host name (apppw-ctl only) is not waited for beyond this.
        runtime.shutdown_timeout(Duration::from_millis(200));
    }
}

/// An open transaction: rolled back unless committed.
pub(super) struct Transaction<'a> {
    session: &'a Session,
    done: bool,
}

impl Transaction<'_> {
    /// Commits. If the answer to COMMIT is lost (timeout, connection gone), the change may or
    /// may not have been made, and the error says so rather than "nothing was changed".
    pub(super) fn commit(mut self) -> Result<(), Error> {
        self.done = true;
        let session = self.session;
        match session
            .client()
            .and_then(|c| session.wait(c.batch_execute("COMMIT")))
        {
            Ok(()) => Ok(()),
            Err(Failure::Db(e)) if e.code().is_some() => {
                Err(classify(&session.location, &Failure::Db(e)))
            }
            Err(failure) => Err(Error::DatabaseOutcomeUnknown {
                store: session.location.clone(),
                reason: match classify(&session.location, &failure) {
                    Error::DatabaseUnavailable { reason, .. } => reason,
                    other => other.to_string(),
                },
            }),
        }
    }
}

impl std::ops::Deref for Transaction<'_> {
    type Target = Session;
    fn deref(&self) -> &Session {
        self.session
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if !self.done {
            // On a broken session this does nothing; the server rolls back when it goes.
            let _ = self.session.batch("ROLLBACK");
        }
    }
}

/// Turns a failed call into an error a person can act on. Never includes the password: only
/// the redacted location and the server's or client's message.
pub(super) fn classify(location: &str, failure: &Failure) -> Error {
    let store = location.to_owned();
    let e = match failure {
        Failure::TimedOut(deadline) => {
            return Error::DatabaseUnavailable {
                store,
                reason: format!("no answer within {} s", deadline.as_secs()),
            };
        }
        Failure::Broken => {
            return Error::DatabaseUnavailable {
                store,
                reason: "the connection was lost".into(),
            };
        }
        Failure::Decode(e) => {
            return Error::DatabaseFailed {
                store,
                reason: format!("a value could not be read ({e})"),
            };
        }
        Failure::Db(e) => e,
    };
    let reason = describe(e);
    let Some(code) = e.code() else {
        return Error::DatabaseUnavailable { store, reason };
    };
    match code {
        c if *c == SqlState::INVALID_PASSWORD
            || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
            || *c == SqlState::INSUFFICIENT_PRIVILEGE
            || *c == SqlState::INVALID_CATALOG_NAME =>
        {
            Error::DatabaseRefused { store, reason }
        }
        c if *c == SqlState::UNDEFINED_TABLE
            || *c == SqlState::UNDEFINED_FUNCTION
            || *c == SqlState::INVALID_SCHEMA_NAME =>
        {
            Error::DatabaseNotAStore { store, reason }
        }
        c if *c == SqlState::LOCK_NOT_AVAILABLE
            || *c == SqlState::T_R_SERIALIZATION_FAILURE
            || *c == SqlState::T_R_DEADLOCK_DETECTED
            || *c == SqlState::QUERY_CANCELED =>
        {
            Error::DatabaseBusy { store, reason }
        }
        c if *c == SqlState::ADMIN_SHUTDOWN
            || *c == SqlState::CRASH_SHUTDOWN
            || *c == SqlState::CANNOT_CONNECT_NOW
            || *c == SqlState::TOO_MANY_CONNECTIONS
            || *c == SqlState::READ_ONLY_SQL_TRANSACTION
            || *c == SqlState::IDLE_IN_TRANSACTION_SESSION_TIMEOUT =>
        {
            Error::DatabaseUnavailable { store, reason }
        }
        _ => Error::DatabaseFailed { store, reason },
    }
}

/// The error in one line: for the server's errors, the SQLSTATE and the primary message only
/// (DETAIL may quote a row, hash included); for the client's, the error and its causes.
fn describe(e: &tokio_postgres::Error) -> String {
    use std::error::Error as _;
    if let Some(db) = e.as_db_error() {
        return one_line(&format!("{}: {}", db.code().code(), db.message()));
    }
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    one_line(&text)
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_spelling_of_a_password_reaches_a_message() {
        for url in [
            "postgresql://u:ab/cd@10.0.0.5/db",
            "postgresql://u:ab?cd@10.0.0.5/db",
            "postgresql://u:ab@cd@10.0.0.5/db",
            "postgresql://u@10.0.0.5/db?password=ab%26cd",
            "postgresql://u@10.0.0.5/db?pass%77ord=abcd",
            "postgresql://u:ab%2Fcd@10.0.0.5/db",
        ] {
            match PgTarget::parse(url, true) {
                Ok(t) => {
                    for part in ["ab", "cd"] {
                        assert!(!t.location().contains(part), "{url} -> {}", t.location());
                    }
                    assert!(t.location().contains("10.0.0.5"), "{}", t.location());
                }
                Err(e) => {
                    let text = e.to_string();
                    assert!(
                        !text.contains("ab") && !text.contains("cd"),
                        "{url} -> {text}"
                    );
                }
            }
        }
        for bad in [
            "host=10.0.0.5 password=abcd",
            "postgresql://u:abcd@[bad/db",
            "pg://u:abcd@h/db",
        ] {
            let text = PgTarget::parse(bad, false).err().unwrap().to_string();
            assert!(!text.contains("abcd"), "{bad} -> {text}");
        }
    }

    #[test]
    fn passwords_never_reach_the_location() {
        let target = PgTarget::parse(
            "postgresql://apppw_mail:s3cret@10.0.0.5:5432/apppw?application_name=x&password=other",
            true,
        )
        .unwrap();
        assert!(
            !target.location().contains("s3cret"),
            "{}",
            target.location()
        );
        assert!(
            !target.location().contains("other"),
            "{}",
            target.location()
        );
        assert!(!format!("{target:?}").contains("s3cret"));
        let refused = PgTarget::parse("postgresql://u:s3cret@10.0.0.5/db?sslmode=prefer", false)
            .err()
            .unwrap();
        assert!(!refused.to_string().contains("s3cret"), "{refused}");
        assert!(refused.to_string().contains("verify-full"), "{refused}");
    }

    #[test]
    fn the_module_is_given_addresses_and_apppw_ctl_may_use_names() {
        let named = "postgresql://u@db.example.org/apppw";
        let err = PgTarget::parse(named, true).err().unwrap();
        assert!(err.to_string().contains("hostaddr"), "{err}");
        assert!(PgTarget::parse(named, false).is_ok());
        assert!(
            PgTarget::parse(
                "postgresql://u@db.example.org/apppw?hostaddr=10.0.0.5",
                true
            )
            .is_ok()
        );
        assert!(PgTarget::parse("postgresql://u@10.0.0.5,10.0.0.6/apppw", true).is_ok());
    }

    #[test]
    fn the_keys_apppw_reads_are_checked() {
        let t = PgTarget::parse(
            "postgresql://u@10.0.0.5/db?connect_timeout=2&sslrootcert=/etc/apppw/ca.pem",
            true,
        )
        .unwrap();
        assert_eq!(t.connect_timeout, Duration::from_secs(2));
        assert_eq!(
            t.ca_file.as_deref(),
            Some(std::path::Path::new("/etc/apppw/ca.pem"))
        );
        for bad in [
            "connect_timeout=0",
            "connect_timeout=31",
            "connect_timeout=x",
            "sslrootcert=ca.pem",
            "sslmode=disable",
        ] {
            assert!(
                PgTarget::parse(&format!("postgresql://u@10.0.0.5/db?{bad}"), true).is_err(),
                "{bad}"
            );
        }
        let two = PgTarget::parse(
            "postgresql://u@10.0.0.5,10.0.0.6/db?target_session_attrs=read-write",
            true,
        )
        .unwrap();
        assert_eq!(two.connect_deadline(), 2 * DEFAULT_CONNECT_TIMEOUT);
        assert!(matches!(
            StoreTarget::parse("sqlite:/var/lib/apppw/apppw.db", true),
            Ok(StoreTarget::Sqlite(_))
        ));
        assert!(StoreTarget::parse("sqlite:apppw.db", true).is_err());
        assert!(StoreTarget::parse("mysql://x", true).is_err());
    }

    #[test]
    fn the_server_gives_up_before_the_client() {
        assert_eq!(
            server_limits(Duration::from_secs(3)),
            "-c statement_timeout=2000ms -c lock_timeout=1000ms"
        );
        assert_eq!(
            server_limits(Duration::from_secs(60)),
            "-c statement_timeout=20000ms -c lock_timeout=5000ms"
        );
        assert_eq!(
            server_limits(Duration::from_millis(600)),
            "-c statement_timeout=400ms -c lock_timeout=200ms"
        );
    }
}
