//! pam_apppw through the real libpam: codes minted by the real apppw-ctl, logins by a real PAM
//! application (pam-client, shaped like Dovecot's passdb), services from our own directory via
//! pam_wrapper.

use std::ffi::OsStr;

use apppw_tests::backend::Backend;
use apppw_tests::*;

on_both_backends!(
    needs_root: a_fresh_code_logs_in_however_it_is_typed,
    wrong_foreign_empty_and_huge_tokens_are_refused,
    a_revoked_code_is_refused_at_once,
    last_use_records_service_and_remote_host,
    apppws_own_sign_in_services_never_accept_an_app_password,
    a_user_name_that_looks_like_a_code_is_not_logged,
    hostile_user_names_are_plain_refusals_on_one_log_line
);

const ALICE: &str = "apppw-alice";
const BOB: &str = "apppw-bob";

/// A world with users alice and bob and a service "imap" that uses pam_apppw.
fn world() -> World {
    world_on(Backend::Sqlite)
}

/// The same on `backend`.
fn world_on(backend: Backend) -> World {
    require_root("module tests mint codes with root's --db/--user and make users");
    ensure_user(ALICE);
    ensure_user(BOB);
    let w = World::on(backend);
    w.apppw_service("imap", "");
    w
}

fn a_fresh_code_logs_in_however_it_is_typed(backend: Backend) {
    let w = world_on(backend);
    let (id, code) = w.mint(ALICE, "Phone mail");
    let compact: String = code.split_whitespace().collect();
    let dashed = code.replace(' ', "-");
    for typed in [code.clone(), compact.clone(), code.to_uppercase(), dashed] {
        let login = w.login("imap", ALICE, &typed).from("192.0.2.10").run();
        assert_eq!(login.auth, PAM_SUCCESS, "{typed:?}: {}", login.log);
        assert_eq!(login.account, Some(PAM_SUCCESS));
        assert!(
            login.log.contains(&format!("id={id} label=\"Phone mail\"")),
            "{}",
            login.log
        );
        assert!(
            !login.log.contains(&compact[..8]),
            "code leaked into the log: {}",
            login.log
        );
    }
}

fn wrong_foreign_empty_and_huge_tokens_are_refused(backend: Backend) {
    let w = world_on(backend);
    let (_, alices) = w.mint(ALICE, "Phone");
    let (_, bobs) = w.mint(BOB, "Phone");
    let mut wrong = alices.clone().into_bytes();
    wrong[0] = if wrong[0] == b'a' { b'b' } else { b'a' };
    let huge = vec![b'a'; 1 << 20];
    let cases: Vec<(&str, &[u8])> = vec![
        ("one symbol off", &wrong),
        ("another user's code", bobs.as_bytes()),
        ("empty", b""),
        ("account-password-like", b"correct horse battery staple"),
        ("1 MB", &huge),
        ("binary", b"\xff\xfe\x01\x02 kq7m"),
    ];
    for (what, token) in cases {
        let login = w.login("imap", ALICE, token).from("192.0.2.10").run();
        assert_eq!(login.auth, PAM_AUTH_ERR, "{what}: {}", login.log);
        assert!(
            login.log.contains("authentication failure;"),
            "{what}: {}",
            login.log
        );
        assert!(
            login.log.contains("rhost=192.0.2.10  user=\"apppw-alice\""),
            "{}",
            login.log
        );
    }
    // The right code still works for its owner only.
    assert_eq!(w.login("imap", ALICE, &alices).run().auth, PAM_SUCCESS);
    assert_eq!(w.login("imap", BOB, &alices).run().auth, PAM_AUTH_ERR);
}

fn a_revoked_code_is_refused_at_once(backend: Backend) {
    let w = world_on(backend);
    let (id, phone) = w.mint(ALICE, "Phone");
    let (_, laptop) = w.mint(ALICE, "Laptop");
    assert_eq!(w.login("imap", ALICE, &phone).run().auth, PAM_SUCCESS);
    assert_success(&w.ctl(&["--user", ALICE, "revoke", &id.to_string()]));
    assert_eq!(w.login("imap", ALICE, &phone).run().auth, PAM_AUTH_ERR);
    assert_eq!(w.login("imap", ALICE, &laptop).run().auth, PAM_SUCCESS);
    assert_success(&w.ctl(&["--user", ALICE, "revoke", "--all"]));
    assert_eq!(w.login("imap", ALICE, &laptop).run().auth, PAM_AUTH_ERR);
}

fn last_use_records_service_and_remote_host(backend: Backend) {
    let w = world_on(backend);
    let (_, code) = w.mint(ALICE, "Phone");
    w.apppw_service("smtp", "");
    assert_eq!(
        w.login("smtp", ALICE, &code)
            .from("2001:db8::25")
            .run()
            .auth,
        PAM_SUCCESS
    );
    let out = w.ctl(&["--user", ALICE, "--json", "list"]);
    assert_success(&out);
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let last = &listed[0]["last_used"];
    assert_eq!(last["service"], "smtp");
    assert_eq!(last["rhost"], "2001:db8::25");
    // The host that saw it: this one.
    let node = nix::sys::utsname::uname().unwrap();
    assert_eq!(last["host"], node.nodename().to_str().unwrap());
    assert_eq!(listed[0]["use_count"], 1);
    // A second login within the minute is not written again.
    assert_eq!(
        w.login("imap", ALICE, &code).from("192.0.2.1").run().auth,
        PAM_SUCCESS
    );
    let listed: serde_json::Value =
        serde_json::from_slice(&w.ctl(&["--user", ALICE, "--json", "list"]).stdout).unwrap();
    assert_eq!(listed[0]["last_used"]["service"], "smtp");
    assert_eq!(listed[0]["use_count"], 1);
}

#[test]
#[ignore = "needs root: mints with root's --db/--user and makes users (CI runs it)"]
fn missing_corrupt_and_foreign_stores_are_unavailable_never_success() {
    let w = world();
    let (_, code) = w.mint(ALICE, "Phone");
    let real = w.store.with_extension("real");
    std::fs::rename(&w.store, &real).unwrap();

    let check = |what: &str| {
        let login = w.login("imap", ALICE, &code).run();
        assert_eq!(login.auth, PAM_AUTHINFO_UNAVAIL, "{what}: {}", login.log);
        assert!(
            login.log.contains(&w.store.display().to_string()),
            "{what}: {}",
            login.log
        );
    };
    check("missing");
    std::fs::write(&w.store, vec![0x5a; 16384]).unwrap();
    check("garbage");
    std::fs::write(&w.store, b"").unwrap();
    check("empty");
    // A real store with its middle pages overwritten.
    let mut damaged = std::fs::read(&real).unwrap();
    let len = damaged.len();
    for b in &mut damaged[100..len.min(8192)] {
        *b = 0xa5;
    }
    std::fs::write(&w.store, &damaged).unwrap();
    check("damaged");
    std::fs::remove_file(&w.store).unwrap();
    std::os::unix::fs::symlink(&real, &w.store).unwrap();
    check("symlink");
    std::fs::remove_file(&w.store).unwrap();
    std::fs::create_dir(&w.store).unwrap();
    check("directory");
}

#[test]
#[ignore = "needs root: mints with root's --db/--user and makes users (CI runs it)"]
fn a_store_the_service_cannot_read_is_unavailable() {
    let w = world();
    let (_, code) = w.mint(ALICE, "Phone");
    // The store is root's, mode 0600; a service running as bob cannot open it.
    std::fs::set_permissions(
        w.dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let login = w.login("imap", ALICE, &code).client_as(BOB).run();
    assert_eq!(login.auth, PAM_AUTHINFO_UNAVAIL, "{}", login.log);
}

#[test]
#[ignore = "needs root: mints with root's --db/--user and makes users (CI runs it)"]
fn bad_module_options_fail_closed_in_every_group() {
    let w = world();
    let (_, code) = w.mint(ALICE, "Phone");
    for options in ["bogus", "db=relative.db", "debug=yes"] {
        w.service(
            "bad",
            &format!(
                "auth required {m} db={db} {options}\naccount required {m} {options}\n",
                m = w.module.display(),
                db = w.store.display()
            ),
        );
        let login = w.login("bad", ALICE, &code).run();
        assert_eq!(login.auth, PAM_SERVICE_ERR, "{options}: {}", login.log);
        assert!(login.log.contains("bad configuration"), "{}", login.log);
    }
    // Account group alone with a bad option also fails.
    w.service(
        "bad-account",
        &format!(
            "auth required pam_permit.so\naccount required {} nope\n",
            w.module.display()
        ),
    );
    let login = w.login("bad-account", ALICE, b"x").run();
    assert_eq!(login.auth, PAM_SUCCESS);
    assert_eq!(login.account, Some(PAM_SERVICE_ERR));
}

#[test]
#[ignore = "needs root: mints with root's --db/--user and makes users (CI runs it)"]
fn account_management_defers_to_the_other_modules() {
    let w = world();
    let (_, code) = w.mint(ALICE, "Phone");
    let m = w.module.display();
    let db = w.store.display();
    // pam_apppw answers PAM_IGNORE: with pam_permit beside it the account is fine...
    w.service(
        "with-permit",
        &format!(
            "auth required {m} db={db}\naccount required {m}\naccount required pam_permit.so\n"
        ),
    );
    assert_eq!(
        w.login("with-permit", ALICE, &code).run().account,
        Some(PAM_SUCCESS)
    );
    // ...alone it decides nothing, which libpam turns into a refusal (documented in the README).
    w.service(
        "alone",
        &format!("auth required {m} db={db}\naccount required {m}\n"),
    );
    assert_eq!(
        w.login("alone", ALICE, &code).run().account,
        Some(PAM_PERM_DENIED)
    );
}

fn apppws_own_sign_in_services_never_accept_an_app_password(backend: Backend) {
    let w = world_on(backend);
    let (_, code) = w.mint(ALICE, "Phone");
    // apppw-ctl's own re-authentication, and the web page's sign-in (docs/WEB.md): a leaked code
    // must never open what mints more codes, even if a site stacks pam_apppw there.
    for service in ["apppw-ctl", "apppw-web"] {
        w.apppw_service(service, "debug");
        let login = w.login(service, ALICE, &code).run();
        assert_eq!(login.auth, PAM_AUTH_ERR, "{service}: {}", login.log);
        assert!(
            login
                .log
                .contains("never accepted where apppw asks for the account password"),
            "{}",
            login.log
        );
    }
    // The same code still works where it should.
    w.apppw_service("imap", "");
    assert_eq!(w.login("imap", ALICE, &code).run().auth, PAM_SUCCESS);
}

fn a_user_name_that_looks_like_a_code_is_not_logged(backend: Backend) {
    let w = world_on(backend);
    w.mint(ALICE, "Phone");
    // The code itself, and near misses around it (issue 12): the user field is withheld whole.
    for code_like in [
        "kq7m vz2c 9hxt p4we",
        "kq7mvz2c9hxtp4we@example.org",
        "kq7m vz2c.9hxt p4we",
        "user kq7mvz2c9hxtp4we",
    ] {
        let login = w.login("imap", code_like, b"kq7m vz2c 9hxt p4we").run();
        assert_eq!(login.auth, PAM_AUTH_ERR);
        assert!(
            !login.log.contains("kq7m") && !login.log.contains("9hxt"),
            "{}",
            login.log
        );
        assert!(login.log.contains("withheld"), "{}", login.log);
    }
}

fn hostile_user_names_are_plain_refusals_on_one_log_line(backend: Backend) {
    let w = world_on(backend);
    let (_, code) = w.mint(ALICE, "Phone");
    let long = "a".repeat(10_000);
    let withheld = "(withheld: may contain an app password)";
    // (what, the user name, the user= value its refusal must log)
    let cases: [(&str, &OsStr, &str); 7] = [
        ("empty", OsStr::new(""), ""),
        ("10 kB", OsStr::new(&long), withheld),
        (
            "newlines",
            OsStr::new("apppw-alice\nrhost=203.0.113.1"),
            withheld,
        ),
        // Fewer than 16 code symbols, so it is logged, not withheld: the newline reaches the log.
        (
            "a newline that is logged",
            OsStr::new("bo\nrhost=203.0.113.1"),
            "bo\\u{a}rhost=203.0.113.1",
        ),
        (
            "escape sequence",
            OsStr::new("\x1b[2Japppw-alice"),
            "\\u{1b}[2Japppw-alice",
        ),
        (
            "right-to-left mark",
            OsStr::new("apppw-\u{202e}alice"),
            "apppw-\\u{202e}alice",
        ),
        // Not UTF-8: passed as raw bytes through libpam.
        ("not UTF-8", non_utf8_user(), "apppw-\u{fffd}\u{fffd}alice"),
    ];
    for (what, user, logged_user) in cases {
        let login = w.login("imap", user, &code).from("192.0.2.8").run();
        assert_eq!(login.auth, PAM_AUTH_ERR, "{what}: {}", login.log);
        for line in login.log.lines() {
            assert!(
                !line.contains('\x1b') && !line.contains('\u{202e}'),
                "{what}: {line:?}"
            );
        }
        // A log line split by the name would leave its tail among the other stderr lines, which
        // are pam_wrapper's own (`PWRAP_...`, and blank lines after some of them).
        for line in login.stderr.lines() {
            assert!(
                line.is_empty() || line.starts_with("PWRAP_"),
                "{what}: a log line was split: {line:?} in\n{}",
                login.stderr
            );
        }
        let name = user.to_string_lossy();
        for piece in name.split('\n').filter(|p| p.chars().count() >= 5) {
            assert!(
                !login.stderr.contains(piece),
                "{what}: {piece:?} outside the log:\n{}",
                login.stderr
            );
        }
        // Exactly one refusal, at LOG_NOTICE, in pam_unix's layout with each field once: the
        // host from PAM_RHOST, and the name (or the note that it was withheld) inside one
        // quoted user= value, whatever it tried to inject.
        let refusals: Vec<&str> = login
            .log
            .lines()
            .filter(|l| l.contains("authentication failure;"))
            .collect();
        assert_eq!(refusals.len(), 1, "{what}: {}", login.log);
        let (_, message) = refusals[0]
            .split_once(" - SYSLOG(5): ")
            .unwrap_or_else(|| panic!("{what}: not at LOG_NOTICE: {}", refusals[0]));
        let fields = log_fields(message);
        let keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            ["logname", "uid", "euid", "tty", "ruser", "rhost", "user"],
            "{what}: {message}"
        );
        assert_eq!(fields[5].1, "192.0.2.8", "{what}: {message}");
        assert_eq!(fields[6].1, logged_user, "{what}: {message}");
    }
}

/// A user name that is not UTF-8.
fn non_utf8_user() -> &'static OsStr {
    use std::os::unix::ffi::OsStrExt;
    OsStr::from_bytes(b"apppw-\xff\xfealice")
}

/// The module keeps one connection to a PostgreSQL store per process: a process that logs in
/// 200 times (each a full pam_start, authenticate, pam_end, as Dovecot's auth workers do) opens
/// one database session, not 200, and its descriptors stay as they were after the first login.
#[test]
#[ignore = "needs root: mints with root's --db/--user and makes users (CI runs it)"]
fn one_postgresql_connection_serves_every_login_of_a_process() {
    let w = world_on(Backend::Postgres);
    let (_, code) = w.mint(ALICE, "Phone");
    let sessions = w.module_sessions();
    let store = &w.postgres.as_ref().unwrap().0;
    let before = sessions();
    let out = w.rounds("imap", ALICE, code.as_bytes(), 200, &[]);
    let text = stdout(&out);
    let accepted = verdicts(&text)
        .iter()
        .filter(|v| v.step == Step::Authenticate && v.code == PAM_SUCCESS)
        .count();
    assert_eq!(accepted, 200, "{text}{}", stderr(&out));
    assert_eq!(sessions() - before, 1, "{}", store.server_log());
    let fds = |which: &str| -> String {
        text.lines()
            .find(|l| l.starts_with(&format!("resources {which} ")))
            .and_then(|l| l.split_whitespace().nth(2))
            .unwrap()
            .to_owned()
    };
    assert_eq!(fds("first"), fds("last"), "{text}");
}

/// A process that served a login and then forks (as servers fork workers): the child neither
/// uses nor closes the parent's kept connection but opens its own, and the parent's connection
/// still serves it afterwards. One session for each process, every login accepted.
#[test]
#[ignore = "needs root: mints with root's --db/--user and makes users (CI runs it)"]
fn a_forked_child_opens_its_own_connection_and_leaves_the_parents_alone() {
    let w = world_on(Backend::Postgres);
    let (_, code) = w.mint(ALICE, "Phone");
    let sessions = w.module_sessions();
    let store = &w.postgres.as_ref().unwrap().0;
    let before = sessions();
    let out = w.rounds("imap", ALICE, code.as_bytes(), 3, &["--fork-between"]);
    let text = stdout(&out);
    let accepted = verdicts(&text)
        .iter()
        .filter(|v| v.step == Step::Authenticate && v.code == PAM_SUCCESS)
        .count();
    assert_eq!(accepted, 5, "{text}{}", stderr(&out));
    assert!(out.status.success(), "{text}{}", stderr(&out));
    // The parent's and the child's: the parent's last login reused its own.
    assert_eq!(sessions() - before, 2, "{}", store.server_log());
}
