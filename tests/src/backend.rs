//! One store for one test, on either backend, so that a test body runs unchanged against SQLite
//! and PostgreSQL ([`on_both_backends!`](crate::on_both_backends)).
//!
//! - SQLite: a file in a fresh 0700 directory, opened as scratch (the directory is not root's).
//! - PostgreSQL: a real server of its own ([`PgServer`]), the store made by
//!   `PgStore::initialize` as the superuser (as `apppw-ctl init` will), and two login roles as a
//!   site would make them: `apppw_test_ctl` in `apppw_manage` (what apppw-ctl connects as) and
//!   `apppw_test_mail` in `apppw_login` (what the PAM module connects as). A test's logins go
//!   through the module's role, so every login test also shows that role is enough, and its
//!   changes through apppw-ctl's.
//!
//! [`TestStore::raw`] runs SQL beside the store, to damage it or look under it: the SQLite file
//! directly, or the superuser with `search_path` set to the schema `apppw`, so one statement
//! serves both.

use std::path::{Path, PathBuf};

use apppw_core::store::{PgStore, PgTarget, StoreTarget};
use apppw_core::{Access, Store};

use crate::postgres::{HOST, PgServer, SUPERUSER};

/// Which database a test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The database role apppw-ctl connects as in these tests, and its password.
pub const CTL_ROLE: (&str, &str) = ("apppw_test_ctl", "ctl-password-for-tests");
/// The database role the PAM module connects as in these tests, and its password.
pub const MAIL_ROLE: (&str, &str) = ("apppw_test_mail", "mail-password-for-tests");

/// A store for one test.
pub struct TestStore {
    backend: Backend,
    _dir: tempfile::TempDir,
    /// The SQLite file (unused under PostgreSQL).
    path: PathBuf,
    postgres: Option<PgServer>,
}

impl TestStore {
    /// A new, empty store of the latest schema on `backend`.
    pub fn new(backend: Backend) -> TestStore {
        let store = TestStore::uncreated(backend);
        // Create it, as the first apppw-ctl run (SQLite) or `init` (PostgreSQL, done already)
        // does.
        drop(store.manage());
        store
    }

    /// An SQLite store whose file does not exist yet, for tests of what creates or opens it.
    pub fn sqlite_uncreated() -> TestStore {
        TestStore::uncreated(Backend::Sqlite)
    }

    fn uncreated(backend: Backend) -> TestStore {
        let dir = tempfile::tempdir().unwrap();
        // Stores live in directories nobody else can enter.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        let path = dir.path().join("apppw.db");
        let postgres = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(postgres_store()),
        };
        TestStore {
            backend,
            _dir: dir,
            path,
            postgres,
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The SQLite file; panics under PostgreSQL.
    pub fn sqlite_path(&self) -> &Path {
        assert_eq!(
            self.backend,
            Backend::Sqlite,
            "only SQLite stores have a path"
        );
        &self.path
    }

    /// The PostgreSQL server, to read from; panics under SQLite.
    pub fn server_ref(&self) -> &PgServer {
        self.postgres.as_ref().expect("a PostgreSQL store")
    }

    /// The PostgreSQL server; panics under SQLite.
    pub fn server(&mut self) -> &mut PgServer {
        self.postgres.as_mut().expect("a PostgreSQL store")
    }

    /// Where the store is, as `store.conf` would name it, for `role` (PostgreSQL) or the file.
    pub fn target_for(&self, role: (&str, &str)) -> StoreTarget {
        match &self.postgres {
            None => StoreTarget::Sqlite(self.path.clone()),
            Some(server) => StoreTarget::Postgres(Box::new(pg_target(server, role, "apppw"))),
        }
    }

    /// The store as apppw-ctl opens it.
    pub fn manage(&self) -> Store {
        match &self.postgres {
            None => Store::open_scratch(
                &self.path,
                Access::Manage {
                    create: true,
                    upgrade: true,
                },
            )
            .unwrap(),
            Some(server) => Store::open_target(
                &StoreTarget::Postgres(Box::new(pg_target(server, CTL_ROLE, "apppw"))),
                Access::Manage {
                    create: false,
                    upgrade: false,
                },
            )
            .unwrap_or_else(|e| panic!("opening the store as apppw-ctl: {e}")),
        }
    }

    /// The store as the PAM module opens it.
    pub fn login_store(&self) -> Store {
        match &self.postgres {
            None => Store::open_scratch(&self.path, Access::Login).unwrap(),
            Some(server) => Store::open_target(
                &StoreTarget::Postgres(Box::new(pg_target(server, MAIL_ROLE, "apppw"))),
                Access::Login,
            )
            .unwrap_or_else(|e| panic!("opening the store as the module: {e}")),
        }
    }

    /// Runs `sql` beside the store (see the module's notes); returns the rows changed.
    pub fn raw(&self, sql: &str) -> u64 {
        match &self.postgres {
            None => {
                let conn = rusqlite::Connection::open(&self.path).unwrap();
                conn.execute(sql, []).unwrap() as u64
            }
            Some(server) => superuser(server, "apppw")
                .execute(sql, &[])
                .unwrap_or_else(|e| panic!("{sql}: {e}")),
        }
    }

    /// The single integer `sql` selects, read beside the store.
    pub fn raw_i64(&self, sql: &str) -> i64 {
        match &self.postgres {
            None => rusqlite::Connection::open(&self.path)
                .unwrap()
                .query_row(sql, [], |r| r.get(0))
                .unwrap(),
            Some(server) => superuser(server, "apppw")
                .query_one(sql, &[])
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
                .get(0),
        }
    }

    /// Runs statements beside the store, in one batch (triggers, DDL).
    pub fn raw_batch(&self, sql: &str) {
        match &self.postgres {
            None => rusqlite::Connection::open(&self.path)
                .unwrap()
                .execute_batch(sql)
                .unwrap(),
            Some(server) => superuser(server, "apppw")
                .batch_execute(sql)
                .unwrap_or_else(|e| panic!("{sql}: {e}")),
        }
    }
}

impl TestStore {
    /// A plain client session on the store's database as `role` (PostgreSQL only), with the
    /// schema `apppw` on its search path: to try what a role may and may not do.
    pub fn connect_as(&self, role: (&str, &str)) -> postgres::Client {
        let server = self.postgres.as_ref().expect("a PostgreSQL store");
        let mut config: postgres::Config = pg_url(server, role, "apppw")
            .replace(&format!("?sslrootcert={}", server.ca_file().display()), "")
            .parse()
            .expect("a valid URL");
        config.ssl_mode(postgres::config::SslMode::Require);
        let mut client = config
            .connect(
                apppw_core::postgres_tls::connector(
                    apppw_core::postgres_tls::TrustAnchors::CaFile(server.ca_file()),
                )
                .unwrap(),
            )
            .unwrap_or_else(|e| panic!("connecting as {}: {e}", role.0));
        client.batch_execute("SET search_path = apppw").unwrap();
        client
    }

    /// Every row of every table, as text (PostgreSQL only; SQLite: `dump_store`): to show that a
    /// failed command changed nothing.
    pub fn dump(&self) -> String {
        let server = self.postgres.as_ref().expect("a PostgreSQL store");
        let mut client = superuser(server, "apppw");
        let mut text = String::new();
        for table in ["store_info", "app_passwords", "events", "code_uses"] {
            let row = client
                .query_one(
                    &format!(
                        "SELECT coalesce(string_agg(t::text, chr(10) ORDER BY t::text), '')
                         FROM apppw.{table} AS t"
                    ),
                    &[],
                )
                .unwrap();
            text.push_str(&format!("== {table}\n{}\n", row.get::<_, String>(0)));
        }
        text
    }

    /// What the PostgreSQL server logged.
    pub fn server_log(&self) -> String {
        self.postgres.as_ref().expect("a PostgreSQL store").log()
    }

    /// The URL for `role` on the store's database, as store.conf holds it.
    pub fn url_for(&self, role: (&str, &str)) -> String {
        pg_url(
            self.postgres.as_ref().expect("a PostgreSQL store"),
            role,
            "apppw",
        )
    }

    /// The superuser's URL for the store's database (what `apppw-ctl init` is given).
    pub fn superuser_url(&self) -> String {
        let server = self.postgres.as_ref().expect("a PostgreSQL store");
        pg_url(server, (SUPERUSER, server.superuser_password()), "apppw")
    }
}

/// A URL for `role` on `server`'s database `dbname`, trusting the server's test CA.
pub fn pg_url(server: &PgServer, role: (&str, &str), dbname: &str) -> String {
    format!(
        "postgresql://{}:{}@{HOST}:{}/{dbname}?sslrootcert={}",
        role.0,
        role.1,
        server.port(),
        server.ca_file().display()
    )
}

/// A URL for `role` on the database `apppw` of each of `servers` in turn (`host:port,host:port`),
/// as a store.conf names a primary and its standbys.
pub fn pg_url_of_servers(servers: &[&PgServer], role: (&str, &str)) -> String {
    let hosts: Vec<String> = servers
        .iter()
        .map(|s| format!("{HOST}:{}", s.port()))
        .collect();
    format!(
        "postgresql://{}:{}@{}/apppw?sslrootcert={}",
        role.0,
        role.1,
        hosts.join(","),
        servers[0].ca_file().display()
    )
}

fn pg_target(server: &PgServer, role: (&str, &str), dbname: &str) -> PgTarget {
    PgTarget::parse(&pg_url(server, role, dbname), true).expect("a valid test URL")
}

/// The superuser on `dbname`, with the schema `apppw` first on its search path.
pub fn superuser(server: &PgServer, dbname: &str) -> postgres::Client {
    let mut config: postgres::Config = server
        .superuser_connection_string()
        .parse()
        .expect("the test server's connection string");
    config.dbname(dbname);
    let mut client = config
        .connect(
            apppw_core::postgres_tls::connector(apppw_core::postgres_tls::TrustAnchors::CaFile(
                server.ca_file(),
            ))
            .unwrap(),
        )
        .unwrap_or_else(|e| panic!("the superuser's connection: {e}"));
    client
        .batch_execute("SET search_path = apppw, public")
        .unwrap();
    client
}

/// A server with the database `apppw`, initialized as `apppw-ctl init` does, and the test roles.
fn postgres_store() -> PgServer {
    let server = PgServer::start();
    superuser(&server, "postgres")
        .batch_execute("CREATE DATABASE apppw")
        .unwrap();
    let admin = PgTarget::parse(
        &pg_url(&server, (SUPERUSER, server.superuser_password()), "apppw"),
        false,
    )
    .unwrap();
    PgStore::initialize(&admin).unwrap_or_else(|e| panic!("init: {e}"));
    superuser(&server, "apppw")
        .batch_execute(&format!(
            "CREATE ROLE {} LOGIN PASSWORD '{}' IN ROLE apppw_manage;
             CREATE ROLE {} LOGIN PASSWORD '{}' IN ROLE apppw_login;",
            CTL_ROLE.0, CTL_ROLE.1, MAIL_ROLE.0, MAIL_ROLE.1
        ))
        .unwrap();
    server
}

/// Defines each test body `fn name(backend: Backend)` as two tests, `name::sqlite` and
/// `name::postgresql`. `on_both_backends!(needs_root: a, b)` marks both ignored with the
/// `NEEDS_ROOT` reason, `changes_host: a, b` with the `CHANGES_THE_HOST` one (both checked by
/// tests/tests/ignore_reasons.rs, which reads this file too).
#[macro_export]
macro_rules! on_both_backends {
    (needs_root: $($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                #[ignore = "needs root: mints with root's --db/--user and makes users (CI runs it)"]
                fn sqlite() {
                    super::$name($crate::backend::Backend::Sqlite);
                }
                #[test]
                #[ignore = "needs root: mints with root's --db/--user and makes users (CI runs it)"]
                fn postgresql() {
                    super::$name($crate::backend::Backend::Postgres);
                }
            }
        )*
    };
    (changes_host: $($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                #[ignore = "changes the host: installs a setuid apppw-ctl, /etc/pam.d and /var/lib/apppw (CI runs it)"]
                fn sqlite() {
                    super::$name($crate::backend::Backend::Sqlite);
                }
                #[test]
                #[ignore = "changes the host: installs a setuid apppw-ctl, /etc/pam.d and /var/lib/apppw (CI runs it)"]
                fn postgresql() {
                    super::$name($crate::backend::Backend::Postgres);
                }
            }
        )*
    };
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn sqlite() {
                    super::$name($crate::backend::Backend::Sqlite);
                }
                #[test]
                fn postgresql() {
                    super::$name($crate::backend::Backend::Postgres);
                }
            }
        )*
    };
}
