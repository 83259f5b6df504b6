//! The PostgreSQL test server (tests/src/postgres.rs) and the TLS the PostgreSQL store will use
//! (apppw_core::postgres_tls), against a real server: certificates are checked the way libpq's
//! `sslmode=verify-full` checks them, plaintext is refused, and an outage fails fast and ends
//! when the server is back. Each test starts a server of its own (about a second).

use std::error::Error as _;
use std::time::{Duration, Instant};

use apppw_core::postgres_tls::{TrustAnchors, connector};
use apppw_tests::postgres::{HOST, PgServer, SUPERUSER, TestCa};
use postgres::config::ChannelBinding;
use postgres::error::SqlState;
use postgres::{Client, Config, NoTls};

/// The connect timeout of these tests: an outage must be noticed well within it.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The superuser's configuration for `server`, reached at `host` (`host=... hostaddr=...` to
/// name one host and dial another), TLS required, channel binding required (so SCRAM is bound to
/// this TLS session: SCRAM-SHA-256-PLUS).
fn superuser_config(server: &PgServer, host: &str) -> Config {
    let mut config: Config = format!(
        "{host} port={} user={SUPERUSER} password={} dbname=postgres sslmode=require",
        server.port(),
        server.superuser_password()
    )
    .parse()
    .expect("a valid connection string");
    config
        .connect_timeout(CONNECT_TIMEOUT)
        .channel_binding(ChannelBinding::Require);
    config
}

fn connect(config: &Config, anchors: TrustAnchors<'_>) -> Result<Client, postgres::Error> {
    config.connect(connector(anchors).expect("a TLS connector"))
}

/// An error and all its causes, for assertions on what failed.
fn chain(error: &postgres::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}

fn refused(result: Result<Client, postgres::Error>, what: &str) -> String {
    match result {
        Ok(_) => panic!("{what}: the connection was accepted"),
        Err(e) => chain(&e),
    }
}

fn tls_of_this_session(client: &mut Client) -> (bool, String) {
    let row = client
        .query_one(
            "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .expect("pg_stat_ssl");
    (row.get(0), row.get(1))
}

#[test]
fn the_test_ca_verifies_the_server_and_the_session_is_encrypted() {
    let server = PgServer::start();
    let config: Config = server
        .superuser_connection_string()
        .parse()
        .expect("the harness's connection string parses");
    assert_eq!(config.get_hosts().len(), 1);
    let mut client = connect(
        config.clone().channel_binding(ChannelBinding::Require),
        TrustAnchors::CaFile(server.ca_file()),
    )
    .unwrap_or_else(|e| panic!("{}\nserver log:\n{}", chain(&e), server.log()));
    let ssl = client.query_one("SHOW ssl", &[]).unwrap();
    assert_eq!(ssl.get::<_, String>(0), "on");
    // SHOW ssl says the server offers TLS; pg_stat_ssl says this session uses it.
    assert_eq!(
        tls_of_this_session(&mut client),
        (true, "TLSv1.3".to_owned())
    );
    // `localhost`, the certificate's other name, verifies too.
    let mut by_name = connect(
        &superuser_config(&server, &format!("host=localhost hostaddr={HOST}")),
        TrustAnchors::CaFile(server.ca_file()),
    )
    .unwrap_or_else(|e| panic!("{}", chain(&e)));
    assert!(tls_of_this_session(&mut by_name).0);
}

#[test]
fn a_certificate_from_another_ca_is_refused() {
    let server = PgServer::start();
    let other_dir = tempfile::tempdir().unwrap();
    let other = TestCa::new(other_dir.path(), "other");
    let config = superuser_config(&server, &format!("host={HOST}"));
    let error = refused(
        connect(&config, TrustAnchors::CaFile(other.certificate())),
        "trusting another CA",
    );
    assert!(
        error.contains("invalid peer certificate") && error.contains("UnknownIssuer"),
        "{error}"
    );
    // Nor does the system's CA store know the test CA.
    let error = refused(
        connect(&config, TrustAnchors::System),
        "trusting the system's CAs",
    );
    assert!(error.contains("UnknownIssuer"), "{error}");
    // The same configuration with the right CA is accepted: the CA was what was wrong.
    connect(&config, TrustAnchors::CaFile(server.ca_file()))
        .unwrap_or_else(|e| panic!("{}", chain(&e)));
}

#[test]
fn a_certificate_for_another_host_is_refused() {
    let server = PgServer::start_with_certificate_for(&["db.apppw.test"]);
    let anchors = TrustAnchors::CaFile(server.ca_file());
    for host in [HOST, "localhost"] {
        let error = refused(
            connect(
                &superuser_config(&server, &format!("host={host} hostaddr={HOST}")),
                anchors,
            ),
            &format!("connecting to {host}"),
        );
        assert!(
            error.contains("invalid peer certificate") && error.contains("not valid for name"),
            "{error}"
        );
    }
    // Asked for by the name it has, the same server at the same address is accepted.
    connect(
        &superuser_config(&server, &format!("host=db.apppw.test hostaddr={HOST}")),
        anchors,
    )
    .unwrap_or_else(|e| panic!("{}", chain(&e)));
}

#[test]
fn plaintext_is_refused_by_pg_hba() {
    let server = PgServer::start();
    let mut config = superuser_config(&server, &format!("host={HOST}"));
    config
        .ssl_mode(postgres::config::SslMode::Disable)
        .channel_binding(ChannelBinding::Disable);
    let error = config
        .connect(NoTls)
        .err()
        .expect("a plaintext connection was accepted");
    let db = error
        .as_db_error()
        .unwrap_or_else(|| panic!("not refused by the server: {}", chain(&error)));
    assert_eq!(
        db.code(),
        &SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
        "{db}"
    );
    assert!(
        db.message().contains("no pg_hba.conf entry") && db.message().contains("no encryption"),
        "{db}"
    );
}

#[test]
fn a_stopped_server_fails_fast_and_a_started_one_serves_again() {
    let mut server = PgServer::start();
    let config = superuser_config(&server, &format!("host={HOST}"));
    // Made once: the server is borrowed mutably below.
    let tls = connector(TrustAnchors::CaFile(server.ca_file())).unwrap();
    let mut before = config
        .connect(tls.clone())
        .unwrap_or_else(|e| panic!("{}", chain(&e)));
    before
        .batch_execute("CREATE TABLE survives (n int); INSERT INTO survives VALUES (42)")
        .unwrap();

    server.stop();

    // A connection that was open sees the outage at its next query, without waiting.
    let start = Instant::now();
    let broken = before.simple_query("SELECT 1");
    let noticed = start.elapsed();
    assert!(broken.is_err(), "a query on a stopped server succeeded");
    assert!(noticed < CONNECT_TIMEOUT, "took {noticed:?}");
    // A new one fails within the connect timeout.
    let start = Instant::now();
    let error = refused(config.connect(tls.clone()), "a stopped server");
    let failed_after = start.elapsed();
    assert!(failed_after <= CONNECT_TIMEOUT, "took {failed_after:?}");
    assert!(
        error.to_lowercase().contains("connection refused"),
        "{error}"
    );

    let start = Instant::now();
    server.start_again();
    let restarted_in = start.elapsed();
    let mut after = config
        .connect(tls)
        .unwrap_or_else(|e| panic!("{}\nserver log:\n{}", chain(&e), server.log()));
    // The same cluster came back (crash recovery), not a new one.
    let n: i32 = after
        .query_one("SELECT n FROM survives", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 42);
    println!(
        "outage: an open session noticed in {noticed:?}, a new connection failed in \
         {failed_after:?}, restarted in {restarted_in:?}"
    );
}

#[test]
fn dropping_the_server_stops_it_and_removes_its_directory() {
    let server = PgServer::start();
    let dir = server.socket_dir().to_path_buf();
    let pid: u32 = std::fs::read_to_string(server.data_dir().join("postmaster.pid"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let port = server.port();
    assert!(runs(pid));
    drop(server);
    assert!(!dir.exists(), "{} is still there", dir.display());
    // `pg_ctl stop -w` returns once the postmaster has removed its pid file, a moment before the
    // process is gone.
    let deadline = Instant::now() + Duration::from_secs(5);
    while runs(pid) {
        assert!(Instant::now() < deadline, "the postmaster {pid} still runs");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(std::net::TcpStream::connect((HOST, port)).is_err());
}

/// Whether process `pid` exists and is not a zombie.
fn runs(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // The state follows the parenthesised command name.
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
    })
}
