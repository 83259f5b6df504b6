//! Helpers for the end-to-end tests: a scratch directory with its own store and PAM service
//! directory, a way to log in through the real libpam (pam_wrapper points it at our service
//! files, so the host's /etc/pam.d is never touched), and a way to run the real apppw-ctl,
//! as root or as a real unprivileged user.
//!
//! Tests that need root, or that change the host, are `#[ignore]`d with one of two reasons,
//! [`NEEDS_ROOT`] and [`CHANGES_THE_HOST`], so a plain `cargo test` reports them as ignored
//! rather than passed. `cargo test -- --include-ignored` runs them; scripts/test.sh does so under
//! `CI=true` or `APPPW_SYSTEM_TESTS=1`, as root. Once running, a test never skips itself: a
//! missing prerequisite (root, a package, a free /dev/log) fails it with a message naming what
//! is missing and what provides it ([`require`], [`require_root`]).
#![forbid(unsafe_code)]

pub mod backend;
pub mod journal;
pub mod mail;
pub mod postgres;
pub mod syslog;
pub mod system;
pub mod web;

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Where cargo put the binaries of the profile these tests were built with.
pub fn artifact_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("executable path");
    // Tests live in target/<profile>/deps/, binaries such as apppw-bench in target/<profile>/.
    let dir = exe.parent().expect("executable in a directory");
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().expect("target/<profile>").to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

pub fn ctl_binary() -> PathBuf {
    built("apppw-ctl")
}

pub fn module_library() -> PathBuf {
    built("libpam_apppw.so")
}

fn built(name: &str) -> PathBuf {
    let path = artifact_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace first (`cargo build --release --workspace`)",
        path.display()
    );
    path
}

/// The reason of `#[ignore = "..."]` on a test that needs root but leaves the host as it was
/// (apart from test users and their passwords). The attribute takes only a literal, so each
/// test repeats the text; tests/tests/ignore_reasons.rs checks that every ignored test gives
/// this reason or [`CHANGES_THE_HOST`], word for word.
pub const NEEDS_ROOT: &str =
    "needs root: mints with root's --db/--user and makes users (CI runs it)";

/// The reason of `#[ignore = "..."]` on a test that changes the host: the system tests
/// ([`system::system`]) and others that write to /etc or mount file systems.
pub const CHANGES_THE_HOST: &str =
    "changes the host: installs a setuid apppw-ctl, /etc/pam.d and /var/lib/apppw (CI runs it)";

/// A loopback port that is free now, for a test server to listen on.
///
/// Picked below the kernel's ephemeral range (32768-60999 on Linux), where no outgoing
/// connection ever takes a local port: asking the kernel for "any free port" returns one from
/// that range, which a burst of client connections in a test running beside can take before the
/// server binds it. Ports handed out once in this process are never handed out again, so tests
/// running side by side never get the same one. Another process may still bind it meanwhile;
/// servers that can say so ([`postgres::PgServer`]) retry on another port.
pub fn free_port() -> u16 {
    use rand::Rng;
    use std::collections::BTreeSet;
    use std::sync::Mutex;
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let mut handed_out = HANDED_OUT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut rng = rand::rng();
    for _ in 0..1000 {
        let port = rng.random_range(20_000..32_768);
        if !handed_out.contains(&port) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            handed_out.insert(port);
            return port;
        }
    }
    panic!("no free loopback port in 20000-32767 after 1000 tries");
}

/// True when running in CI.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Fails the test when a prerequisite is missing, naming it and what provides it.
pub fn require(available: bool, missing: &str, provided_by: &str) {
    assert!(available, "{missing} is missing: {provided_by}");
}

/// Fails the test unless it runs as root, saying why it needs root.
pub fn require_root(why: &str) {
    assert!(
        is_root(),
        "this test must run as root ({why}); run the ignored tests as root, as CI does: \
         sudo APPPW_SYSTEM_TESTS=1 scripts/test.sh"
    );
}

pub fn is_root() -> bool {
    nix::unistd::getuid().is_root()
}

/// pam_wrapper's preload library; fails the test if it is not installed.
pub fn pam_wrapper_library() -> PathBuf {
    let arch = std::env::consts::ARCH;
    let found = [
        format!("/usr/lib/{arch}-linux-gnu/libpam_wrapper.so"),
        "/usr/lib64/libpam_wrapper.so".to_string(),
        "/usr/lib/libpam_wrapper.so".to_string(),
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.exists());
    require(
        found.is_some(),
        "libpam_wrapper.so",
        "scripts/packages.sh installs it (Debian: libpam-wrapper)",
    );
    found.unwrap()
}

/// A command with pam_wrapper preloaded, so that libpam in it reads its service files from a
/// directory of ours instead of /etc/pam.d: the one place that sets pam_wrapper's environment.
/// What the modules log with pam_syslog goes to the command's stderr as
/// `PWRAP_DEBUG[...] - SYSLOG(<priority>): <message>` lines, beside pam_wrapper's own
/// `PWRAP_...` lines.
pub struct PamWrapped {
    cmd: Command,
    preload: OsString,
}

impl PamWrapped {
    /// `cmd` with libpam reading its services from `services`.
    pub fn new(mut cmd: Command, services: &Path) -> PamWrapped {
        cmd.env("PAM_WRAPPER", "1")
            .env("PAM_WRAPPER_SERVICE_DIR", services)
            .env("PAM_WRAPPER_DEBUGLEVEL", "2");
        PamWrapped {
            cmd,
            preload: pam_wrapper_library().into_os_string(),
        }
    }

    /// Preloads `library` too, after pam_wrapper (libfaketime, to move the clock).
    #[must_use]
    pub fn preload(mut self, library: &Path) -> PamWrapped {
        self.preload.push(" ");
        self.preload.push(library);
        self
    }

    /// Sets an environment variable of the command (FAKETIME for libfaketime, say).
    #[must_use]
    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> PamWrapped {
        self.cmd.env(key, value);
        self
    }

    /// Leaves the module's log lines out of stderr (pam_wrapper writes only its errors).
    #[must_use]
    pub fn quiet(self) -> PamWrapped {
        self.env("PAM_WRAPPER_DEBUGLEVEL", "0")
    }

    /// Runs the command with `stdin`, taking turns with every other wrapped run on this machine
    /// (see [`exclusively`] for why they must).
    pub fn run(self, stdin: &[u8]) -> Output {
        let cmd = self.into_command();
        exclusively(|| run_with_stdin(cmd, stdin))
    }

    /// The command, for a caller that must start several wrapped processes at once and so cannot
    /// take turns: only the benchmark, whose workers all read one service directory.
    pub fn without_turns(self) -> Command {
        self.into_command()
    }

    fn into_command(mut self) -> Command {
        self.cmd.env("LD_PRELOAD", &self.preload);
        self.cmd
    }
}

/// Holds an exclusive lock shared by every test process on this machine while `f` runs.
///
/// pam_wrapper picks its private copy of the service directory by probing /tmp/pam.X with lstat
/// and then mkdir, so two wrapped processes starting together can share one directory and read
/// each other's services, and the first to exit removes it under the other. Wrapped runs
/// ([`PamWrapped::run`]) therefore take turns. useradd also takes turns.
fn exclusively<T>(f: impl FnOnce() -> T) -> T {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(std::env::temp_dir().join("apppw-tests.lock"))
        .expect("open the test lock file");
    let _lock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .expect("lock the test lock file");
    f()
}

/// libfaketime, which moves the clock of the processes that preload it; fails the test if it is
/// not installed.
fn faketime_library() -> PathBuf {
    let path = PathBuf::from(format!(
        "/usr/lib/{}-linux-gnu/faketime/libfaketime.so.1",
        std::env::consts::ARCH
    ));
    require(
        path.exists(),
        &path.display().to_string(),
        "scripts/packages.sh installs it (Debian: faketime)",
    );
    path
}

/// A temporary directory that every user may enter and read (mode 0755), for servers and
/// sockets that accounts other than root use.
pub fn open_tempdir(prefix: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix(prefix).tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    dir
}

/// Creates a real system user for privilege tests (idempotent). Needs root.
pub fn ensure_user(name: &str) {
    exclusively(|| create_user_unless_present(name, &[]));
}

/// Creates a system account (`useradd --system`: a uid below 1000, no home) for a daemon the
/// tests start as someone other than root (idempotent). Needs root.
pub fn ensure_system_user(name: &str) {
    exclusively(|| create_user_unless_present(name, &["--system"]));
}

/// Sets a user's Unix password with chpasswd (root only; takes turns on /etc/shadow).
pub fn set_unix_password(user: &str, password: &str) {
    let out = exclusively(|| {
        run_with_stdin(
            Command::new("chpasswd"),
            format!("{user}:{password}\n").as_bytes(),
        )
    });
    assert_success(&out);
}

/// Deletes user `name` if present (`userdel`, not its files: the tests' users have none).
pub fn delete_user(name: &str) {
    exclusively(|| {
        let _ = Command::new("userdel")
            .arg(name)
            .stderr(Stdio::null())
            .status();
    });
}

/// Makes `name` a new account: deletes any account of that name, then `useradd`, with `uid` if
/// given. Returns the new account's uid.
pub fn recreate_user(name: &str, uid: Option<u32>) -> u32 {
    delete_user(name);
    exclusively(|| {
        let mut cmd = Command::new("useradd");
        cmd.args(["--no-create-home", "--shell", "/usr/sbin/nologin"]);
        if let Some(uid) = uid {
            cmd.arg("--uid").arg(uid.to_string());
        }
        let status = cmd.arg(name).status().expect("run useradd");
        assert!(status.success(), "useradd {name} failed");
    });
    nix::unistd::User::from_name(name)
        .unwrap()
        .expect("the user just made")
        .uid
        .as_raw()
}

/// Runs `program` with `args` as `user` on a pseudo-terminal (tests/helpers/run-in-pty.py);
/// `answers` are typed at its prompts. Returns the exit status and what the terminal showed.
pub fn at_terminal(
    user: &str,
    program: &Path,
    args: &[&str],
    answers: &[&str],
) -> (Option<i32>, String) {
    let helper = Path::new(env!("CARGO_MANIFEST_DIR")).join("helpers/run-in-pty.py");
    let mut cmd = as_user(Some(user), Path::new("/usr/bin/python3"));
    cmd.arg(helper).arg(program).args(args);
    let input: String = answers.iter().flat_map(|a| [*a, "\n"]).collect();
    let out = run_with_stdin(cmd, input.as_bytes());
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn create_user_unless_present(name: &str, options: &[&str]) {
    let exists = Command::new("getent")
        .args(["passwd", name])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !exists {
        let status = Command::new("useradd")
            .args(["--no-create-home", "--shell", "/usr/sbin/nologin"])
            .args(options)
            .arg(name)
            .status()
            .expect("run useradd");
        assert!(status.success(), "useradd {name} failed");
    }
}

/// The outcome of one login through libpam.
#[derive(Debug)]
pub struct Login {
    /// pam_authenticate's return code.
    pub auth: i32,
    /// pam_acct_mgmt's, when authentication succeeded.
    pub account: Option<i32>,
    /// What the module logged (pam_wrapper routes pam_syslog to stderr).
    pub log: String,
    /// Everything else the client process wrote to stderr.
    pub stderr: String,
}

/// The PAM result codes the tests compare with, from their one definition.
pub use apppw_pam_client::{
    PAM_AUTH_ERR, PAM_AUTHINFO_UNAVAIL, PAM_PERM_DENIED, PAM_SERVICE_ERR, PAM_SUCCESS,
};

/// A step of a PAM transaction that pam-client reports on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// pam_authenticate, printed as `authenticate=<code> <text>`.
    Authenticate,
    /// pam_acct_mgmt, printed as `acct_mgmt=<code> <text>`.
    AcctMgmt,
}

/// One line of pam-client's verdicts: the step, its PAM result code, and libpam's text for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub step: Step,
    pub code: i32,
    pub text: String,
}

impl Verdict {
    /// Parses `authenticate=<code> <text>` or `acct_mgmt=<code> <text>`; `None` for any other
    /// line. A line that names a step but has no number after `=` fails the test.
    pub fn parse(line: &str) -> Option<Verdict> {
        let (step, rest) = if let Some(rest) = line.strip_prefix("authenticate=") {
            (Step::Authenticate, rest)
        } else if let Some(rest) = line.strip_prefix("acct_mgmt=") {
            (Step::AcctMgmt, rest)
        } else {
            return None;
        };
        let (code, text) = rest.split_once(' ').unwrap_or((rest, ""));
        let code = code
            .parse()
            .unwrap_or_else(|_| panic!("a pam-client verdict without a code: {line:?}"));
        Some(Verdict {
            step,
            code,
            text: text.to_owned(),
        })
    }
}

/// Every verdict pam-client printed, in order. Its only other lines, `resources ...` (from
/// `--resources`), are left out; anything else fails the test.
pub fn verdicts(stdout: &str) -> Vec<Verdict> {
    stdout
        .lines()
        .filter(|l| !l.starts_with("resources "))
        .map(|l| {
            Verdict::parse(l)
                .unwrap_or_else(|| panic!("not a pam-client verdict: {l:?} in {stdout:?}"))
        })
        .collect()
}

/// A scratch world: a store path, a PAM service directory, and a copy of the module under its
/// installed name (so log lines say `pam_apppw(...)`). A world on PostgreSQL
/// ([`World::on`]) has a real server and a store.conf naming it: the module is given
/// `store_conf=` and apppw-ctl `--store-conf` instead of the SQLite file.
pub struct World {
    pub dir: tempfile::TempDir,
    pub store: PathBuf,
    pub module: PathBuf,
    pub services: PathBuf,
    /// The PostgreSQL store and its store.conf, on that backend.
    pub postgres: Option<(backend::TestStore, PathBuf)>,
}

impl World {
    /// A world on `backend`. On PostgreSQL the module and apppw-ctl find the store through a
    /// store.conf (root's, 0640), as an installed host does; it must then run as root.
    pub fn on(backend: backend::Backend) -> World {
        let mut world = World::new();
        if backend == backend::Backend::Postgres {
            require_root("store.conf must be root's, as the module and apppw-ctl check");
            let store = backend::TestStore::new(backend);
            let conf = world.dir.path().join("store.conf");
            std::fs::write(
                &conf,
                format!(
                    "login_store = {}\nmanage_store = {}\n",
                    store.url_for(backend::MAIL_ROLE),
                    store.url_for(backend::CTL_ROLE)
                ),
            )
            .unwrap();
            std::fs::set_permissions(&conf, std::os::unix::fs::PermissionsExt::from_mode(0o640))
                .unwrap();
            world.postgres = Some((store, conf));
        }
        world
    }

    /// Every row of the store, as text: to show that a failed command changed nothing.
    pub fn snapshot(&self) -> String {
        match &self.postgres {
            Some((store, _)) => store.dump(),
            None => dump_store(&self.store),
        }
    }

    /// The argument that points the module at this world's store: `db=` or `store_conf=`.
    pub fn store_option(&self) -> String {
        match &self.postgres {
            Some((_, conf)) => format!("store_conf={}", conf.display()),
            None => format!("db={}", self.store.display()),
        }
    }

    pub fn new() -> World {
        let dir = tempfile::Builder::new()
            .prefix("apppw-test")
            .tempdir()
            .expect("temp dir");
        // Stores live in directories nobody else can enter (pam_apppw checks).
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        let services = dir.path().join("pam.d");
        std::fs::create_dir(&services).unwrap();
        let module = dir.path().join("pam_apppw.so");
        std::fs::copy(module_library(), &module).unwrap();
        World {
            store: dir.path().join("apppw.db"),
            module,
            services,
            dir,
            postgres: None,
        }
    }

    /// Writes /etc/pam.d-style file `name` for our private libpam.
    pub fn service(&self, name: &str, contents: &str) {
        std::fs::write(self.services.join(name), contents).unwrap();
    }

    /// A service that authenticates with pam_apppw only (with `options` after db= or
    /// store_conf=).
    pub fn apppw_service(&self, name: &str, options: &str) {
        self.service(
            name,
            &format!(
                "auth    required {} {} {options}\naccount required pam_permit.so\n",
                self.module.display(),
                self.store_option()
            ),
        );
    }

    /// The text of a PAM service file that authenticates with this world's module against
    /// `store` (with `options` after db=) and lets pam_permit answer the account group.
    pub fn apppw_service_text(&self, store: &Path, options: &str) -> String {
        format!(
            "auth    required {} db={} {options}\naccount required pam_permit.so\n",
            self.module.display(),
            store.display()
        )
    }

    /// Turns on PostgreSQL's connection log for this world's store and returns a count of the
    /// sessions the module's role has opened since. PostgreSQL stores only.
    pub fn module_sessions(&self) -> impl Fn() -> usize + '_ {
        let store = &self.postgres.as_ref().expect("a PostgreSQL store").0;
        store.raw("ALTER SYSTEM SET log_connections = on");
        store.raw("SELECT pg_reload_conf()");
        // The reload is asynchronous: a new session shows when the server has it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while store.raw_i64(
            "SELECT count(*) FROM pg_settings WHERE name = 'log_connections' AND setting = 'on'",
        ) == 0
        {
            assert!(
                std::time::Instant::now() < deadline,
                "log_connections never took effect:\n{}",
                store.server_log()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        move || {
            store
                .server_log()
                .matches(&format!(
                    "connection authorized: user={}",
                    backend::MAIL_ROLE.0
                ))
                .count()
        }
    }

    /// A login through the real libpam as Dovecot makes one: `user` gives `password` to
    /// `service`. Say more with [`LoginAttempt`]'s methods, then [`run`](LoginAttempt::run) it.
    pub fn login(
        &self,
        service: &str,
        user: impl AsRef<OsStr>,
        password: impl AsRef<[u8]>,
    ) -> LoginAttempt<'_> {
        LoginAttempt {
            world: self,
            service: service.to_owned(),
            user: user.as_ref().to_owned(),
            password: password.as_ref().to_vec(),
            rhost: None,
            client_user: None,
            clock: None,
        }
    }

    /// `repeat` logins of `user` to `service` in one process (pam-client `--repeat`, no account
    /// step, with `--resources` lines), as a long-lived auth worker makes them; `extra` goes to
    /// pam-client too.
    pub fn rounds(
        &self,
        service: &str,
        user: &str,
        password: &[u8],
        repeat: u32,
        extra: &[&str],
    ) -> Output {
        let mut cmd = Command::new(built("pam-client"));
        cmd.args([service, user, "--no-account", "--resources", "--repeat"])
            .arg(repeat.to_string())
            .args(extra);
        PamWrapped::new(cmd, &self.services).run(password)
    }

    /// Runs apppw-ctl as root with `--db` (or, on PostgreSQL, `--store-conf`) pointing at this
    /// world's store.
    pub fn ctl(&self, args: &[&str]) -> Output {
        let mut cmd = self.ctl_command();
        cmd.args(args);
        run_with_stdin(cmd, b"")
    }

    /// apppw-ctl as root with this world's store given, to add arguments to and run as needed.
    pub fn ctl_command(&self) -> Command {
        let mut cmd = Command::new(ctl_binary());
        match &self.postgres {
            Some((_, conf)) => cmd.arg("--store-conf").arg(conf),
            None => cmd.arg("--db").arg(&self.store),
        };
        cmd
    }

    /// Mints a code as root for `user` and returns (id, code as shown).
    pub fn mint(&self, user: &str, label: &str) -> (i64, String) {
        let out = self.ctl(&["--user", user, "--json", "new", label]);
        assert_success(&out);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json from new");
        (
            v["id"].as_i64().expect("id"),
            v["code"].as_str().expect("code").to_string(),
        )
    }
}

/// A login to be made through the real libpam: pam-client (a PAM application shaped like
/// Dovecot's passdb) under pam_wrapper, with its world's service files.
#[must_use = "nothing happens until the login is run"]
pub struct LoginAttempt<'w> {
    world: &'w World,
    service: String,
    user: OsString,
    password: Vec<u8>,
    rhost: Option<String>,
    client_user: Option<String>,
    clock: Option<String>,
}

impl LoginAttempt<'_> {
    /// The client's address, set as PAM_RHOST.
    pub fn from(mut self, rhost: &str) -> Self {
        self.rhost = Some(rhost.to_owned());
        self
    }

    /// Runs the PAM application as the real unprivileged user `user`, as a service that does
    /// not run as root would.
    pub fn client_as(mut self, user: &str) -> Self {
        self.client_user = Some(user.to_owned());
        self
    }

    /// Moves the clock of the login process by `offset`, in libfaketime's FAKETIME syntax
    /// (`"+31d"`): how expiry is tested through the real module.
    pub fn at_offset(mut self, offset: &str) -> Self {
        self.clock = Some(offset.to_owned());
        self
    }

    /// Logs in (taking turns with every other wrapped run) and reports what libpam answered and
    /// what was logged.
    pub fn run(self) -> Login {
        let client = built("pam-client");
        let mut cmd = as_user(self.client_user.as_deref(), &client);
        cmd.arg(&self.service).arg(&self.user);
        if let Some(rhost) = &self.rhost {
            cmd.args(["--rhost", rhost]);
        }
        let mut wrapped = PamWrapped::new(cmd, &self.world.services);
        if let Some(offset) = &self.clock {
            wrapped = wrapped
                .preload(&faketime_library())
                .env("FAKETIME", offset)
                .env("DONT_FAKE_MONOTONIC", "1");
        }
        let out = wrapped.run(&self.password);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let all_stderr = String::from_utf8_lossy(&out.stderr);
        let verdicts = verdicts(&stdout);
        let code = |step: Step| {
            let mut codes = verdicts.iter().filter(|v| v.step == step).map(|v| v.code);
            let code = codes.next();
            assert!(
                codes.next().is_none(),
                "one login, two {step:?} verdicts: {stdout}"
            );
            code
        };
        let (log, other): (Vec<&str>, Vec<&str>) =
            all_stderr.lines().partition(|l| l.contains("SYSLOG("));
        Login {
            auth: code(Step::Authenticate)
                .unwrap_or_else(|| panic!("pam-client gave no verdict: {stdout} {all_stderr}")),
            account: code(Step::AcctMgmt),
            log: log.join("\n"),
            stderr: other.join("\n"),
        }
    }
}

impl Default for World {
    fn default() -> Self {
        World::new()
    }
}

/// A command that runs `program` as `user` (or as ourselves), with no supplementary groups.
pub fn as_user(user: Option<&str>, program: &Path) -> Command {
    match user {
        None => Command::new(program),
        Some(user) => {
            let mut cmd = Command::new("setpriv");
            cmd.arg(format!("--reuid={user}"))
                .arg(format!("--regid={user}"))
                .arg("--init-groups")
                .arg("--")
                .arg(program);
            cmd
        }
    }
}

pub fn run_with_stdin(cmd: Command, input: &[u8]) -> Output {
    run_with_stdin_noting_pid(cmd, input).0
}

/// [`run_with_stdin`], giving the child's pid too: the kernel's `_PID` of what it logged.
pub fn run_with_stdin_noting_pid(mut cmd: Command, input: &[u8]) -> (Output, u32) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().expect("wait");
    writer.join().unwrap();
    (out, pid)
}

/// A file this test wrote into the system (a PAM service file, say); removed when dropped.
pub struct InstalledFile(PathBuf);

impl InstalledFile {
    pub fn write(path: impl Into<PathBuf>, contents: &str) -> InstalledFile {
        let path = path.into();
        std::fs::write(&path, contents)
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        InstalledFile(path)
    }
}

impl Drop for InstalledFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Every row of a store, one line each, to show that a failed command changed nothing.
pub fn dump_store(path: &Path) -> String {
    if !path.exists() {
        return String::new();
    }
    let conn = rusqlite::Connection::open(path).expect("open the store");
    let mut stmt = conn
        .prepare(
            "SELECT id, user, label, coalesce(hash, ''), created, coalesce(revoked, 0),
                    coalesce(last_used, 0), use_count FROM app_passwords ORDER BY id",
        )
        .expect("query the store");
    stmt.query_map([], |r| {
        Ok(format!(
            "{}|{}|{}|{}|{}|{}|{}|{}\n",
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, i64>(4)?,
            r.get::<_, i64>(5)?,
            r.get::<_, i64>(6)?,
            r.get::<_, i64>(7)?
        ))
    })
    .expect("read the store")
    .collect::<Result<String, _>>()
    .expect("read a row")
}

pub fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "command failed ({:?}): stdout={} stderr={}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The `key=value` fields of a log line, strictly: a value is either a double-quoted string (in
/// which `\"` and `\\` are escapes) or a run of non-space characters; words without `=` are
/// free text. Panics on an unterminated quote, so a test fails on a line that does not parse.
pub fn log_fields(line: &str) -> Vec<(String, String)> {
    let chars: Vec<char> = line.chars().collect();
    let mut fields = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == ' ' {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
            i += 1;
        }
        if i > start && i < chars.len() && chars[i] == '=' {
            let key: String = chars[start..i].iter().collect();
            i += 1;
            let mut value = String::new();
            if i < chars.len() && chars[i] == '"' {
                i += 1;
                loop {
                    assert!(i < chars.len(), "unterminated quote in {line:?}");
                    match chars[i] {
                        '\\' if i + 1 < chars.len() && matches!(chars[i + 1], '"' | '\\') => {
                            value.push(chars[i + 1]);
                            i += 2;
                        }
                        '"' => {
                            i += 1;
                            break;
                        }
                        c => {
                            value.push(c);
                            i += 1;
                        }
                    }
                }
            } else {
                while i < chars.len() && chars[i] != ' ' {
                    value.push(chars[i]);
                    i += 1;
                }
            }
            fields.push((key, value));
        } else {
            // Free text: skip the word (a stray quote here would be a parse error).
            while i < chars.len() && chars[i] != ' ' {
                assert!(chars[i] != '"', "a quote outside a value in {line:?}");
                i += 1;
            }
        }
    }
    fields
}
