//! A real PostgreSQL server for one test, from Debian's `postgresql` package: `initdb` into a
//! fresh temporary directory, TCP on 127.0.0.1 at a private port with TLS only (a CA and a server
//! certificate the test makes with the `openssl` command) and SCRAM passwords only, its Unix
//! socket in the same directory. [`PgServer::stop`] and [`PgServer::start_again`] make an outage;
//! dropping the server stops it and removes the directory.
//!
//! PostgreSQL refuses to run as root: a test running as root runs the server as the system user
//! [`PG_USER`] (made on first use); anyone else runs it as themselves, so the tests need no root.
#![forbid(unsafe_code)]

use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::{as_user, ensure_system_user, free_port, is_root, require};

/// The system account that runs the server when the tests run as root.
pub const PG_USER: &str = "apppw-pg";

/// The server's superuser (its password: [`PgServer::superuser_password`]).
pub const SUPERUSER: &str = "postgres";

/// Where the server listens for TCP, and the address its certificate names by default.
pub const HOST: &str = "127.0.0.1";

/// What the default server certificate names: [`HOST`] and `localhost`.
pub const DEFAULT_NAMES: [&str; 2] = [HOST, "localhost"];

const OPENSSL: &str = "/usr/bin/openssl";

/// How long `pg_ctl` waits for the server to start or stop.
const PG_CTL_WAIT_SECONDS: &str = "60";

pub struct PgServer {
    dir: tempfile::TempDir,
    /// The directory of initdb, pg_ctl and postgres.
    bin: PathBuf,
    /// Who runs the server: [`PG_USER`] when we are root, else ourselves (`None`).
    runner: Option<&'static str>,
    port: u16,
    ca: TestCa,
    password: String,
    running: bool,
}

impl PgServer {
    /// A server whose certificate names [`DEFAULT_NAMES`].
    pub fn start() -> PgServer {
        PgServer::start_with_certificate_for(&DEFAULT_NAMES)
    }

    /// A server whose certificate names `names` only (DNS names or IP addresses), signed by the
    /// server's own test CA.
    pub fn start_with_certificate_for(names: &[&str]) -> PgServer {
        let bin = server_programs();
        let runner = is_root().then(|| {
            ensure_system_user(PG_USER);
            PG_USER
        });
        let dir = tempfile::Builder::new()
            .prefix("apppw-pg")
            .tempdir()
            .expect("a temporary directory");
        let d = dir.path().to_path_buf();
        // The server writes its socket, log and lock files here (the socket's path must stay
        // under 108 bytes: /tmp/apppw-pgXXXXXX/.s.PGSQL.PORT is).
        give(runner, &d);

        let ca = TestCa::new(&d, "ca");
        let (certificate, key) = ca.issue(&d, "server", names);

        // Letters and digits only: nothing to quote in a connection string.
        let password: String = rand::Rng::sample_iter(rand::rng(), rand::distr::Alphanumeric)
            .take(24)
            .map(char::from)
            .collect();
        let password_file = d.join("superuser-password");
        std::fs::write(&password_file, &password).unwrap();
        give(runner, &password_file);
        let data = d.join("data");
        let mut server = PgServer {
            bin,
            runner,
            port: 0,
            ca,
            password,
            running: false,
            dir,
        };
        // No fsync: a test's cluster need not survive a power cut, only a crash of the server
        // (`stop` is one), which PostgreSQL recovers from without fsync.
        let initdb = output(
            server
                .server_program("initdb")
                .arg("-D")
                .arg(&data)
                .args(["--username", SUPERUSER, "--pwfile"])
                .arg(&password_file)
                .args(["--auth", "scram-sha-256", "--encoding", "UTF8"])
                .args(["--no-locale", "--no-sync"]),
        );
        assert!(initdb.status.success(), "initdb failed: {}", text(&initdb));
        std::fs::remove_file(&password_file).unwrap();

        // PostgreSQL wants the key owned by whoever runs it, readable by no one else.
        for (from, to, mode) in [
            (&certificate, "server.crt", 0o644),
            (&key, "server.key", 0o600),
        ] {
            let to = data.join(to);
            std::fs::copy(from, &to).unwrap();
            std::fs::set_permissions(&to, PermissionsExt::from_mode(mode)).unwrap();
            give(runner, &to);
        }
        let socket_dir = d.to_str().expect("a UTF-8 temporary directory");
        assert!(!socket_dir.contains('\''), "a quote in {socket_dir}");
        append(
            &data.join("postgresql.conf"),
            &format!(
                "\n# apppw's tests (tests/src/postgres.rs); the port is given on pg_ctl's command line.\n\
                 listen_addresses = '{HOST}'\n\
                 unix_socket_directories = '{socket_dir}'\n\
                 ssl = on\n\
                 ssl_cert_file = 'server.crt'\n\
                 ssl_key_file = 'server.key'\n\
                 password_encryption = 'scram-sha-256'\n\
                 fsync = off\n\
                 shared_buffers = 16MB\n"
            ),
        );
        // Only TLS with a SCRAM password over TCP: a plaintext connection finds no line that
        // matches it and is refused ("no pg_hba.conf entry ... no encryption").
        std::fs::write(
            data.join("pg_hba.conf"),
            "# apppw's tests (tests/src/postgres.rs)\n\
             # TYPE  DATABASE USER ADDRESS       METHOD\n\
             local   all      all                scram-sha-256\n\
             local   replication all             scram-sha-256\n\
             hostssl all      all  127.0.0.1/32  scram-sha-256\n",
        )
        .unwrap();

        server.start_on_a_free_port();
        server
    }

    /// The address to connect to over TCP ([`HOST`]).
    pub fn host(&self) -> &'static str {
        HOST
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The test CA's certificate (PEM), the one trust anchor that verifies this server.
    pub fn ca_file(&self) -> &Path {
        self.ca.certificate()
    }

    /// The server's test CA, to issue more certificates with.
    pub fn ca(&self) -> &TestCa {
        &self.ca
    }

    /// The directory of the server's Unix socket (`host=` this, for libpq and `postgres`).
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The cluster's data directory (postgresql.conf, pg_hba.conf, server.crt).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn superuser_password(&self) -> &str {
        &self.password
    }

    /// The superuser's connection string for TCP with TLS required (`sslmode=require`: the
    /// `postgres` crate's default, `prefer`, would fall back to plaintext). Which certificates
    /// are trusted is the TLS connector's to say: pass one trusting [`ca_file`](Self::ca_file).
    pub fn superuser_connection_string(&self) -> String {
        format!(
            "host={HOST} port={} user={SUPERUSER} password={} dbname=postgres sslmode=require",
            self.port, self.password
        )
    }

    /// What the server logged (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_file()).unwrap_or_default()
    }

    /// Stops the server at once, as a crash or a pulled cable would (`pg_ctl stop -m
    /// immediate`: no goodbye to clients, crash recovery at the next start).
    pub fn stop(&mut self) {
        assert!(self.running, "the server is already stopped");
        let out = self.pg_ctl_stop();
        assert!(out.status.success(), "pg_ctl stop failed: {}", text(&out));
        self.running = false;
    }

    /// Starts the stopped server again, on the same port with the same data.
    pub fn start_again(&mut self) {
        assert!(!self.running, "the server is already running");
        let out = self.pg_ctl_start();
        assert!(
            out.status.success(),
            "pg_ctl start (port {}) failed: {}\nserver log:\n{}",
            self.port,
            text(&out),
            self.log()
        );
        self.running = true;
    }

    /// A hot standby of this server: a base backup taken over the Unix socket
    /// (`pg_basebackup -R`, streaming from this server as its primary), started on a port of its
    /// own with the same certificate, CA and superuser password. Read-only until
    /// [`promote`](Self::promote)d.
    #[must_use]
    pub fn start_standby(&self) -> PgServer {
        assert!(self.running, "a standby needs its primary running");
        let dir = tempfile::Builder::new()
            .prefix("apppw-pg")
            .tempdir()
            .expect("a temporary directory");
        give(self.runner, dir.path());
        let mut standby = PgServer {
            bin: self.bin.clone(),
            runner: self.runner,
            port: 0,
            ca: self.ca.clone(),
            password: self.password.clone(),
            running: false,
            dir,
        };
        let data = standby.data_dir();
        // A fast checkpoint: the default spreads it over minutes before the copy starts.
        let backup = output(
            standby
                .server_program("pg_basebackup")
                .env("PGPASSWORD", &self.password)
                .arg("-D")
                .arg(&data)
                .args([
                    "-R",
                    "-X",
                    "stream",
                    "--checkpoint=fast",
                    "--no-sync",
                    "-w",
                    "-U",
                    SUPERUSER,
                ])
                .arg("-h")
                .arg(self.socket_dir())
                .arg("-p")
                .arg(self.port.to_string()),
        );
        assert!(
            backup.status.success(),
            "pg_basebackup failed: {}",
            text(&backup)
        );
        let socket_dir = standby
            .dir
            .path()
            .to_str()
            .expect("a UTF-8 temporary directory");
        // The copied postgresql.conf names the primary's socket directory; the last line wins.
        append(
            &data.join("postgresql.conf"),
            &format!("\n# the standby's own socket\nunix_socket_directories = '{socket_dir}'\n"),
        );
        standby.start_on_a_free_port();
        standby
    }

    /// Promotes a standby to a primary that accepts writes (`pg_ctl promote`, waiting until
    /// it does).
    pub fn promote(&mut self) {
        let out = output(self.pg_ctl().arg("promote"));
        assert!(
            out.status.success(),
            "pg_ctl promote failed: {}\nserver log:\n{}",
            text(&out),
            self.log()
        );
    }

    /// Starts the server on a port that was free; tries another if it was taken meanwhile.
    fn start_on_a_free_port(&mut self) {
        for _ in 0..5 {
            self.port = free_port();
            let out = self.pg_ctl_start();
            if out.status.success() {
                self.running = true;
                return;
            }
            let log = self.log();
            assert!(
                log.contains("could not bind"),
                "pg_ctl start failed: {}\nserver log:\n{log}",
                text(&out)
            );
        }
        panic!("no free port after 5 tries; server log:\n{}", self.log());
    }

    fn pg_ctl_start(&self) -> Output {
        // pg_ctl starts postgres with its output redirected to the log file, so nothing holds
        // the pipes of this command once pg_ctl has returned.
        output(
            self.pg_ctl()
                .arg("-l")
                .arg(self.log_file())
                .arg("-o")
                .arg(format!("-p {}", self.port))
                .arg("start"),
        )
    }

    fn pg_ctl_stop(&self) -> Output {
        output(self.pg_ctl().args(["-m", "immediate", "stop"]))
    }

    /// pg_ctl for this cluster, waiting until the server has started or stopped.
    fn pg_ctl(&self) -> Command {
        let mut cmd = self.server_program("pg_ctl");
        cmd.arg("-D")
            .arg(self.data_dir())
            .args(["-w", "-t", PG_CTL_WAIT_SECONDS]);
        cmd
    }

    fn log_file(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// One of PostgreSQL's programs, to run as the server's user with an environment of its own
    /// (no PG* variables or locale of the test's).
    fn server_program(&self, program: &str) -> Command {
        let mut cmd = as_user(self.runner, &self.bin.join(program));
        cmd.env_clear()
            .env("PATH", "/usr/bin:/bin")
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        cmd
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if !self.running {
            return;
        }
        if self.pg_ctl_stop().status.success() {
            return;
        }
        // pg_ctl failed (its files damaged by the test?): kill the postmaster it started, by
        // the pid it recorded, before its directory goes. Its children exit when it does.
        let pid = std::fs::read_to_string(self.data_dir().join("postmaster.pid"))
            .ok()
            .and_then(|text| text.lines().next()?.trim().parse::<i32>().ok());
        if let Some(pid) = pid {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// A certificate authority made for a test with the `openssl` command: the commands an
/// administrator would type, and an implementation other than the rustls that checks the
/// certificates. EC P-256 keys (fast to make), valid for 800 days: tests move a login's clock up
/// to a year ahead with libfaketime, and the store's TLS checks the certificate against it.
#[derive(Clone)]
pub struct TestCa {
    certificate: PathBuf,
    key: PathBuf,
    serial: PathBuf,
}

impl TestCa {
    /// A new CA whose files in `dir` are named after `name` (`{name}.crt`, `{name}.key`).
    pub fn new(dir: &Path, name: &str) -> TestCa {
        let config = dir.join(format!("{name}.cnf"));
        std::fs::write(
            &config,
            format!(
                "[req]\ndistinguished_name = dn\nprompt = no\nx509_extensions = ext\n\
                 [dn]\nCN = apppw test CA {name}\n\
                 [ext]\nbasicConstraints = critical, CA:TRUE\n\
                 keyUsage = critical, keyCertSign, cRLSign\nsubjectKeyIdentifier = hash\n"
            ),
        )
        .unwrap();
        let ca = TestCa {
            certificate: dir.join(format!("{name}.crt")),
            key: dir.join(format!("{name}.key")),
            serial: dir.join(format!("{name}.srl")),
        };
        openssl(
            openssl_command()
                .args(["req", "-x509"])
                .args(NEW_KEY)
                .args(VALIDITY)
                .arg("-config")
                .arg(&config)
                .arg("-keyout")
                .arg(&ca.key)
                .arg("-out")
                .arg(&ca.certificate),
        );
        ca
    }

    /// The CA's certificate (PEM).
    pub fn certificate(&self) -> &Path {
        &self.certificate
    }

    /// A server certificate for `names` (DNS names or IP addresses) and its key, as
    /// `{name}.crt` and `{name}.key` in `dir`.
    pub fn issue(&self, dir: &Path, name: &str, names: &[&str]) -> (PathBuf, PathBuf) {
        assert!(!names.is_empty(), "a certificate must name a host");
        let alt_names: Vec<String> = names
            .iter()
            .map(|n| match n.parse::<IpAddr>() {
                Ok(_) => format!("IP:{n}"),
                Err(_) => format!("DNS:{n}"),
            })
            .collect();
        let config = dir.join(format!("{name}.cnf"));
        std::fs::write(
            &config,
            format!(
                "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = {}\n\
                 [ext]\nbasicConstraints = critical, CA:FALSE\n\
                 keyUsage = critical, digitalSignature\nextendedKeyUsage = serverAuth\n\
                 subjectAltName = {}\nsubjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n",
                names[0],
                alt_names.join(", ")
            ),
        )
        .unwrap();
        let (request, certificate, key) = (
            dir.join(format!("{name}.csr")),
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
        );
        openssl(
            openssl_command()
                .arg("req")
                .args(NEW_KEY)
                .arg("-config")
                .arg(&config)
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&request),
        );
        openssl(
            openssl_command()
                .args(["x509", "-req", "-in"])
                .arg(&request)
                .arg("-CA")
                .arg(&self.certificate)
                .arg("-CAkey")
                .arg(&self.key)
                .arg("-CAserial")
                .arg(&self.serial)
                .arg("-CAcreateserial")
                .args(VALIDITY)
                .arg("-extfile")
                .arg(&config)
                .args(["-extensions", "ext", "-out"])
                .arg(&certificate),
        );
        (certificate, key)
    }
}

/// The newest installed PostgreSQL's server programs (Debian: /usr/lib/postgresql/N/bin; 15 on
/// Debian 12, 17 on Debian 13).
fn server_programs() -> PathBuf {
    let newest = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            (bin.join("initdb").exists() && bin.join("pg_ctl").exists()).then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version);
    require(
        newest.is_some(),
        "/usr/lib/postgresql/VERSION/bin/initdb (PostgreSQL's server programs)",
        "scripts/packages.sh installs them (Debian: postgresql)",
    );
    newest.unwrap().1
}

/// A new key pair for `openssl req`: EC P-256, written unencrypted.
const NEW_KEY: [&str; 6] = [
    "-new",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
];

/// How long the test certificates are valid.
const VALIDITY: [&str; 2] = ["-days", "800"];

fn openssl_command() -> Command {
    require(
        Path::new(OPENSSL).exists(),
        OPENSSL,
        "scripts/packages.sh installs it (Debian: openssl)",
    );
    Command::new(OPENSSL)
}

fn openssl(cmd: &mut Command) {
    let out = output(cmd);
    assert!(out.status.success(), "{cmd:?} failed: {}", text(&out));
}

fn output(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

/// Makes `path` the runner's, when the server runs as [`PG_USER`].
fn give(runner: Option<&str>, path: &Path) {
    if let Some(name) = runner {
        let user = nix::unistd::User::from_name(name)
            .unwrap()
            .unwrap_or_else(|| panic!("no user {name}"));
        nix::unistd::chown(path, Some(user.uid), Some(user.gid))
            .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
    }
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
