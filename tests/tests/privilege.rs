//! The installed, setuid apppw-ctl driven by real unprivileged users: each manages only their own
//! codes, proves who they are before minting, cannot redirect the program anywhere, and cannot
//! break it by how they start it. Root audits and manages everyone's.

use std::os::unix::fs::MetadataExt;
use std::process::Command;

use apppw_tests::system::{INSTALLED_CTL, SYSTEM_STORE, System, system};
use apppw_tests::*;

const CAROL: &str = "apppw-carol";
const DAVE: &str = "apppw-dave";
const CAROL_PASSWORD: &str = "carol's account password";
const DAVE_PASSWORD: &str = "dave's account password";

fn setup() -> System {
    let sys = system();
    for (user, password) in [(CAROL, CAROL_PASSWORD), (DAVE, DAVE_PASSWORD)] {
        ensure_user(user);
        set_unix_password(user, password);
    }
    assert_success(&sys.root(&["--user", CAROL, "revoke", "--all"]));
    assert_success(&sys.root(&["--user", DAVE, "revoke", "--all"]));
    sys
}

/// The code in what `new` printed: the line with four groups of four.
fn code_in(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|l| {
            let groups: Vec<&str> = l.split(' ').collect();
            groups.len() == 4
                && groups
                    .iter()
                    .all(|g| g.len() == 4 && g.bytes().all(|b| b.is_ascii_alphanumeric()))
        })
        .unwrap_or_else(|| panic!("no code in {text:?}"))
        .to_string()
}

/// Mints for `user` at a terminal, typing the right password.
fn mint_as(sys: &System, user: &str, password: &str, label: &str) -> String {
    let (status, shown) = sys.user_at_terminal(user, &["new", label], &[password]);
    assert_eq!(status, Some(0), "{shown}");
    code_in(&shown)
}

fn json_list(out: &std::process::Output) -> Vec<serde_json::Value> {
    assert_success(out);
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// A libpam login against the system store, as a root service such as Dovecot would.
fn login(user: &str, code: &str) -> Login {
    let w = World::new();
    w.service(
        "imap",
        &w.apppw_service_text(std::path::Path::new(SYSTEM_STORE), ""),
    );
    w.login("imap", user, code).from("192.0.2.44").run()
}

fn store_rows() -> String {
    dump_store(std::path::Path::new(SYSTEM_STORE))
}

#[test]
#[ignore = "changes the host: installs a setuid apppw-ctl, /etc/pam.d and /var/lib/apppw (CI runs it)"]
fn a_user_mints_after_proving_who_they_are_and_the_code_logs_in() {
    let sys = setup();
    let (status, shown) = sys.user_at_terminal(CAROL, &["new", "Phone mail"], &[CAROL_PASSWORD]);
    assert_eq!(status, Some(0), "{shown}");
    assert!(
        shown.contains("Password: "),
        "the PAM prompt is shown: {shown}"
    );
    assert!(
        !shown.contains(CAROL_PASSWORD),
        "the password must not echo: {shown}"
    );
    assert!(
        shown.contains("New app password for apppw-carol, label \"Phone mail\""),
        "{shown}"
    );
    let code = code_in(&shown);
    assert_eq!(login(CAROL, &code).auth, PAM_SUCCESS);
    assert_eq!(login(DAVE, &code).auth, PAM_AUTH_ERR);
    let listed = json_list(&sys.user(CAROL, &["--json", "list"]));
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0]["created_by"],
        format!("{CAROL} (uid {})", uid_of(CAROL))
    );
    assert_eq!(listed[0]["last_used"]["rhost"], "192.0.2.44");
}

#[test]
#[ignore = "changes the host: installs a setuid apppw-ctl, /etc/pam.d and /var/lib/apppw (CI runs it)"]
fn a_wrong_password_or_no_terminal_mints_nothing() {
    let sys = setup();
    let before = store_rows();
    let (status, shown) = sys.user_at_terminal(CAROL, &["new", "Phone"], &["not my password"]);
    assert_eq!(status, Some(1), "{shown}");
    assert!(
        shown.contains("your identity could not be confirmed"),
        "{shown}"
    );
    let out = sys.user(CAROL, &["new", "Phone"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("ssh -t"), "{}", stderr(&out));
    // revoke --all asks too.
    let out = sys.user(CAROL, &["revoke", "--all"]);
    assert!(stderr(&out).contains("ssh -t"), "{}", stderr(&out));
    assert_eq!(store_rows(), before);
}

#[test]
#[ignore = "changes the host: installs a setuid apppw-ctl, /etc/pam.d and /var/lib/apppw (CI runs it)"]
fn an_app_password_cannot_confirm_identity_for_minting_more() {
    let sys = setup();
    let code = mint_as(&sys, CAROL, CAROL_PASSWORD, "Phone");
    // Even if an administrator stacks pam_apppw into the apppw-ctl service, it refuses there.
    let original = std::fs::read_to_string("/etc/pam.d/apppw-ctl").unwrap();
    std::fs::write(
        "/etc/pam.d/apppw-ctl",
        format!("auth sufficient {}\n{original}", module_library().display()),
    )
    .unwrap();
    let attempt = sys.user_at_terminal(CAROL, &["new", "Laptop"], &[&code]);
    std::fs::write("/etc/pam.d/apppw-ctl", original).unwrap();
    assert_eq!(attempt.0, Some(1), "{}", attempt.1);
    assert_eq!(json_list(&sys.user(CAROL, &["--json", "list"])).len(), 1);
}

#[test]
#[ignore = "changes the host: installs a setuid apppw-ctl, /etc/pam.d and /var/lib/apppw (CI runs it)"]
fn users_see_and_touch_only_their_own_codes() {
    let sys = setup();
    let carols = mint_as(&sys, CAROL, CAROL_PASSWORD, "Carol phone");
    let daves = mint_as(&sys, DAVE, DAVE_PASSWORD, "Dave phone");
    let dave_id = json_list(&sys.user(DAVE, &["--json", "list"]))[0]["id"]
        .as_i64()
        .unwrap()
        .to_string();
    let carol_list = stdout(&sys.user(CAROL, &["list"]));
    assert!(
        carol_list.contains("Carol phone") && !carol_list.contains("Dave phone"),
        "{carol_list}"
    );
    let before = store_rows();
    for args in [
        vec!["revoke", dave_id.as_str()],
        vec!["revoke", "Dave phone"],
        vec!["rename", dave_id.as_str(), "mine now"],
    ] {
        let out = sys.user(CAROL, &args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&out).contains("has no active app password"),
            "{}",
            stderr(&out)
        );
    }
    // Guessing ids: every id but her own answers exactly like a missing one.
    let carol_id = json_list(&sys.user(CAROL, &["--json", "list"]))[0]["id"]
        .as_i64()
        .unwrap();
    for id in 1..=carol_id + 5 {
        let out = sys.user(CAROL, &["rename", &id.to_string(), "x"]);
        if id == carol_id {
            assert_success(&out);
        } else {
            let expected = format!("apppw-carol has no active app password with id {id};");
            assert!(stderr(&out).contains(&expected), "{id}: {}", stderr(&out));
        }
    }
    assert_success(&sys.user(CAROL, &["rename", "x", "Carol phone"]));
    assert_eq!(store_rows(), before);
    assert_eq!(login(DAVE, &daves).auth, PAM_SUCCESS);
    assert_eq!(login(CAROL, &carols).auth, PAM_SUCCESS);
}

#[test]
#[ignore = "changes the host: installs a setuid apppw-ctl, /etc/pam.d and /var/lib/apppw (CI runs it)"]
fn identity_comes_from_the_uid_not_the_environment() {
    let sys = setup();
    // No password prompt: nothing but the caller's uid can tell apppw-ctl who is calling.
    sys.configure("reauthenticate = no\n");
    let out = sys.root(&["--user", CAROL, "--json", "new", "Carol phone"]);
    assert_success(&out);
    let carols_id = serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["id"]
        .as_i64()
        .unwrap();
    let carol = nix::unistd::User::from_name(CAROL).unwrap().unwrap();
    // Dave runs apppw-ctl with every variable that could name a user naming carol.
    let as_dave_saying_he_is_carol = |args: &[&str]| {
        let mut cmd = sys.user_command(DAVE);
        cmd.args(args)
            .env("USER", CAROL)
            .env("LOGNAME", CAROL)
            .env("USERNAME", CAROL)
            .env("HOME", &carol.dir)
            .env("MAIL", format!("/var/mail/{CAROL}"))
            .env("SUDO_USER", CAROL)
            .env("SUDO_UID", carol.uid.to_string())
            .env("SUDO_GID", carol.gid.to_string())
            .env("DOAS_USER", CAROL)
            .env("PAM_USER", CAROL);
        run_with_stdin(cmd, b"")
    };

    // He sees none of her codes.
    let listed = json_list(&as_dave_saying_he_is_carol(&["--json", "list"]));
    assert!(listed.is_empty(), "dave sees {listed:?}");

    // What he creates is his.
    let out = as_dave_saying_he_is_carol(&["--json", "new", "Whose phone"]);
    assert_success(&out);
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(created["user"], DAVE, "{created}");
    let audit = json_list(&sys.root(&["--json", "audit"]));
    let whose: Vec<_> = audit.iter().filter(|c| c["id"] == created["id"]).collect();
    assert_eq!(whose.len(), 1, "{audit:?}");
    assert_eq!(whose[0]["user"], DAVE, "{whose:?}");
    assert_eq!(
        whose[0]["created_by"],
        format!("{DAVE} (uid {})", uid_of(DAVE))
    );

    // Her code is out of his reach, by id and by revoking "all of his".
    let out = as_dave_saying_he_is_carol(&["revoke", &carols_id.to_string()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "{DAVE} has no active app password with id {carols_id};"
        )),
        "{}",
        stderr(&out)
    );
    assert_success(&as_dave_saying_he_is_carol(&["revoke", "--all"]));
    let active = |user: &str| -> Vec<serde_json::Value> {
        json_list(&sys.root(&["--json", "audit", "--user", user]))
            .into_iter()
            .filter(|c| c["revoked"].is_null())
            .map(|c| c["id"].clone())
            .collect()
    };
    assert_eq!(active(CAROL), [carols_id]);
    assert!(active(DAVE).is_empty(), "{:?}", active(DAVE));
}

#[test]
#[ignore = "changes the host: installs a setuid apppw-ctl, /etc/pam.d and /var/lib/apppw (CI runs it)"]
fn every_override_is_root_only() {
    let sys = setup();
    let before = store_rows();
    for args in [
        &["--db", "/tmp/x.db", "list"][..],
        &["--user", DAVE, "list"],
        &["--config", "/tmp/apppw.conf", "list"],
        &["audit"],
        &["prune"],
        &["init"],
        &["revoke", "--all-users"],
    ] {
        let out = sys.user(CAROL, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&out).contains("for root only"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    assert_eq!(store_rows(), before);
}

#[test]
#[ignore = "changes the host: installs a setuid apppw-ctl, /etc/pam.d and /var/lib/apppw (CI runs it)"]
fn a_hostile_start_changes_nothing() {
    let sys = setup();
    mint_as(&sys, CAROL, CAROL_PASSWORD, "Phone");
    let before = store_rows();
    let ctl = INSTALLED_CTL;
    let cases = [
        // Environment that libraries would honour.
        format!(
            "SQLITE_TMPDIR=/nonexistent TMPDIR=/nonexistent LANG=xx_YY.UTF-8 RUST_BACKTRACE=full RUST_MIN_STACK=1 {ctl} list"
        ),
        // Closed standard descriptors: the store must not be opened on fd 0-2 and written to.
        format!("{ctl} list <&- >&- 2>&-"),
        format!("{ctl} rename Phone Phone2 <&- >&- 2>&-; {ctl} rename Phone2 Phone <&- >&- 2>&-"),
        // A file size limit: writes fail with EFBIG instead of killing the process mid-write.
        format!("ulimit -f 0; {ctl} rename Phone Other"),
    ];
    for script in &cases {
        let mut cmd = as_user(Some(CAROL), std::path::Path::new("/bin/bash"));
        cmd.arg("-c").arg(script);
        let out = run_with_stdin(cmd, b"");
        assert!(
            !stderr(&out).contains("panicked"),
            "{script}: {}",
            stderr(&out)
        );
        assert!(out.status.code().is_some(), "{script}: killed by a signal");
    }
    let mut limited = as_user(Some(CAROL), std::path::Path::new("/bin/bash"));
    limited
        .arg("-c")
        .arg(format!("ulimit -f 0; {ctl} rename Phone Other"));
    let out = run_with_stdin(limited, b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("`ulimit -f`") && stderr(&out).contains("nothing was changed"),
        "{}",
        stderr(&out)
    );
    assert_eq!(store_rows(), before);
    let conn = rusqlite::Connection::open(sys.store()).unwrap();
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    // An empty argv (argv[0] missing) is a usage error, not a crash.
    let out = run_with_stdin(
        {
            let mut c = as_user(Some(CAROL), std::path::Path::new("/usr/bin/perl"));
            c.args(["-e", &format!("exec {{ '{ctl}' }} (); die")]);
            c
        },
        b"",
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
#[ignore = "changes the host: installs a setuid apppw-ctl, /etc/pam.d and /var/lib/apppw (CI runs it)"]
fn store_files_are_closed_to_everyone_but_root_and_the_group() {
    let sys = setup();
    mint_as(&sys, CAROL, CAROL_PASSWORD, "Phone");
    let apppw_gid = apppw_core::secure_path::store_gid().unwrap();
    let dir = std::fs::metadata("/var/lib/apppw").unwrap();
    assert_eq!(dir.mode() & 0o7777, 0o2770);
    assert_eq!((dir.uid(), dir.gid()), (0, apppw_gid));
    for entry in std::fs::read_dir("/var/lib/apppw").unwrap() {
        let meta = entry.as_ref().unwrap().metadata().unwrap();
        assert_eq!(
            meta.mode() & 0o007,
            0,
            "{:?} is open to others",
            entry.unwrap().path()
        );
        assert_eq!(meta.gid(), apppw_gid);
    }
    let ctl = std::fs::metadata(INSTALLED_CTL).unwrap();
    assert_eq!(ctl.mode() & 0o7777, 0o4755);
    assert_eq!((ctl.uid(), ctl.gid()), (0, 0));
    // Carol herself cannot read the store directly.
    let mut cat = as_user(Some(CAROL), std::path::Path::new("/bin/cat"));
    cat.arg("/var/lib/apppw/apppw.db");
    assert!(!run_with_stdin(cat, b"").status.success());
}

#[test]
#[ignore = "changes the host: installs a setuid apppw-ctl, /etc/pam.d and /var/lib/apppw (CI runs it)"]
fn an_unsafe_store_path_is_refused_with_the_fix() {
    let sys = setup();
    let code = mint_as(&sys, CAROL, CAROL_PASSWORD, "Phone");
    let real = "/var/lib/apppw/apppw.db.real";
    std::fs::rename("/var/lib/apppw/apppw.db", real).unwrap();
    std::os::unix::fs::symlink(real, "/var/lib/apppw/apppw.db").unwrap();
    let out = sys.user(CAROL, &["list"]);
    let symlink_login = login(CAROL, &code);
    std::fs::remove_file("/var/lib/apppw/apppw.db").unwrap();
    std::fs::rename(real, "/var/lib/apppw/apppw.db").unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("/var/lib/apppw/apppw.db is not safe to use"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        symlink_login.auth, PAM_AUTHINFO_UNAVAIL,
        "{}",
        symlink_login.log
    );

    run_cmd(&["chmod", "0777", "/var/lib/apppw"]);
    let out = sys.user(CAROL, &["list"]);
    let open_dir_login = login(CAROL, &code);
    run_cmd(&["chmod", "2770", "/var/lib/apppw"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("apppw-ctl init"), "{}", stderr(&out));
    assert_eq!(open_dir_login.auth, PAM_AUTHINFO_UNAVAIL);
    assert_eq!(login(CAROL, &code).auth, PAM_SUCCESS);
}

#[test]
#[ignore = "changes the host: installs a setuid apppw-ctl, /etc/pam.d and /var/lib/apppw (CI runs it)"]
fn root_audits_and_manages_everyone() {
    let sys = setup();
    let code = mint_as(&sys, CAROL, CAROL_PASSWORD, "Carol phone");
    mint_as(&sys, DAVE, DAVE_PASSWORD, "Dave phone");
    // Root is never asked for a password, even without a terminal.
    assert_success(&sys.root(&["--user", CAROL, "new", "Carol printer"]));
    assert_eq!(login(CAROL, &code).auth, PAM_SUCCESS);

    let audit = json_list(&sys.root(&["--json", "audit"]));
    let users: Vec<&str> = audit
        .iter()
        .filter(|c| c["revoked"].is_null())
        .map(|c| c["user"].as_str().unwrap())
        .collect();
    assert!(users.contains(&CAROL) && users.contains(&DAVE), "{users:?}");
    let never = json_list(&sys.root(&["--json", "audit", "--never-used", "--user", CAROL]));
    assert_eq!(never.len(), 1);
    assert_eq!(never[0]["label"], "Carol printer");
    assert_eq!(never[0]["created_by"], "root (uid 0)");
    let stale = json_list(&sys.root(&["--json", "audit", "--unused-for", "1d", "--user", CAROL]));
    assert_eq!(
        stale.len(),
        1,
        "the phone was used just now, the printer never: {stale:?}"
    );
    let text = stdout(&sys.root(&["audit"]));
    assert!(text.starts_with("USER"), "{text}");

    assert_success(&sys.root(&["--user", CAROL, "revoke", "--all"]));
    assert_eq!(login(CAROL, &code).auth, PAM_AUTH_ERR);
    let revoked = json_list(&sys.root(&["--json", "audit", "--user", CAROL]));
    assert!(
        revoked.iter().all(|c| c["revoked_by"] == "root (uid 0)"),
        "{revoked:?}"
    );

    let out = sys.root(&["--json", "revoke", "--all-users"]);
    assert_success(&out);
    let active = json_list(&sys.root(&["--json", "audit"]));
    assert!(active.iter().all(|c| !c["revoked"].is_null()));

    let out = sys.root(&["--json", "prune"]);
    assert_success(&out);
    assert!(json_list(&sys.root(&["--json", "audit"])).is_empty());
}

#[test]
#[ignore = "changes the host: installs a setuid apppw-ctl, /etc/pam.d and /var/lib/apppw (CI runs it)"]
fn policy_limits_who_and_how_many() {
    let sys = setup();
    sys.configure("max_active_codes = 1\n");
    mint_as(&sys, CAROL, CAROL_PASSWORD, "One");
    let (status, shown) = sys.user_at_terminal(CAROL, &["new", "Two"], &[CAROL_PASSWORD]);
    assert_eq!(status, Some(1));
    assert!(
        shown.contains("already has 1 active app passwords"),
        "{shown}"
    );

    sys.configure("allowed_groups = apppw-nobody-is-in-this-group\n");
    let out = sys.user(DAVE, &["new", "Phone"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("may not create app passwords"),
        "{}",
        stderr(&out)
    );

    sys.configure("reauthenticate = no\n");
    let out = sys.user(DAVE, &["new", "No prompt"]);
    assert_success(&out);
}

#[test]
#[ignore = "changes the host: installs a setuid apppw-ctl, /etc/pam.d and /var/lib/apppw (CI runs it)"]
fn a_bad_configuration_is_named_and_fails_closed() {
    let sys = setup();
    let code = mint_as(&sys, CAROL, CAROL_PASSWORD, "Phone");
    sys.configure("# comment\nmax_active_codez = 3\n");
    let out = sys.user(CAROL, &["list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("/etc/apppw/apppw.conf:2: max_active_codez:"),
        "{}",
        stderr(&out)
    );
    let refused = login(CAROL, &code);
    assert_eq!(refused.auth, PAM_SERVICE_ERR, "{}", refused.log);
    assert!(refused.log.contains("apppw.conf:2"), "{}", refused.log);

    sys.configure("");
    run_cmd(&["chmod", "0666", "/etc/apppw/apppw.conf"]);
    let out = sys.user(CAROL, &["list"]);
    run_cmd(&["chmod", "0644", "/etc/apppw/apppw.conf"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("only root may be able to change it"),
        "{}",
        stderr(&out)
    );
}

fn run_cmd(args: &[&str]) {
    assert!(
        Command::new(args[0])
            .args(&args[1..])
            .status()
            .unwrap()
            .success(),
        "{args:?}"
    );
}

fn uid_of(user: &str) -> u32 {
    nix::unistd::User::from_name(user)
        .unwrap()
        .unwrap()
        .uid
        .as_raw()
}

#[test]
#[ignore = "changes the host: installs a setuid apppw-ctl, /etc/pam.d and /var/lib/apppw (CI runs it)"]
fn every_change_is_logged_with_who_made_it_and_never_the_code() {
    let sys = setup();
    let log = syslog::SyslogListener::start();
    let out = sys.root(&["--user", CAROL, "--json", "new", "Logged phone"]);
    assert_success(&out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (id, code) = (
        v["id"].as_i64().unwrap(),
        v["code"].as_str().unwrap().to_string(),
    );
    assert_success(&sys.user(CAROL, &["rename", &id.to_string(), "Renamed phone"]));
    assert_success(&sys.root(&["--user", CAROL, "revoke", &id.to_string()]));
    let lines = log.lines();
    let carol_uid = uid_of(CAROL);
    for expected in [
        format!(
            "uid=0 name=\"root\" origin=\"no terminal\" created app password id={id} label=\"Logged phone\" of user=\"{CAROL}\""
        ),
        format!(
            "uid={carol_uid} name=\"{CAROL}\" origin=\"no terminal\" renamed app password id={id} label=\"Renamed phone\" of user=\"{CAROL}\""
        ),
        format!(
            "uid=0 name=\"root\" origin=\"no terminal\" revoked app password id={id} label=\"Renamed phone\" of user=\"{CAROL}\""
        ),
    ] {
        let line = lines
            .iter()
            .find(|l| l.contains(&expected))
            .unwrap_or_else(|| panic!("no log line {expected:?} in {lines:#?}"));
        // LOG_AUTHPRIV (10) * 8 + LOG_NOTICE (5), ident apppw-ctl.
        assert!(
            line.starts_with("<85>") && line.contains("apppw-ctl["),
            "{line}"
        );
    }
    let compact: String = code.split_whitespace().collect();
    assert!(
        lines
            .iter()
            .all(|l| !l.contains(&code) && !l.contains(&compact[..8]))
    );
}

/// A member of the apppw group (a webmail's account, say) may write in /var/lib/apppw. Root's
/// `apppw-ctl init` (run by every package install and upgrade) repairs owners and modes there:
/// it must never follow a link the member swaps in for a store file. The member flips -wal and
/// -shm between absent and a symbolic link to a file of root's while root runs init over and
/// over; the file keeps its owner and mode. (init used to check by name and then chown and chmod
/// by name, which follows links: the victim became root:apppw 0660.)
#[test]
#[ignore = "changes the host: installs a setuid apppw-ctl, /etc/pam.d and /var/lib/apppw (CI runs it)"]
fn init_never_follows_a_link_a_group_member_swaps_into_the_store_directory() {
    const MEMBER: &str = "apppw-member";
    let sys = setup();
    ensure_user(MEMBER);
    run_cmd(&["usermod", "-aG", "apppw", MEMBER]);
    let victim = tempfile::Builder::new()
        .prefix("apppw-victim")
        .tempfile_in("/var/tmp")
        .unwrap();
    std::fs::set_permissions(
        victim.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let store_dir = std::path::Path::new(SYSTEM_STORE).parent().unwrap();
    let script = format!(
        "cd {dir} || exit 1\nend=$((SECONDS + 4))\nwhile [ $SECONDS -lt $end ]; do\n  \
         for side in apppw.db-wal apppw.db-shm; do\n    \
         ln -sfn {victim} .swap-$$ && mv -fT .swap-$$ $side\n    rm -f $side\n  done\ndone\n",
        dir = store_dir.display(),
        victim = victim.path().display()
    );
    // as_user keeps the member's supplementary groups, apppw among them.
    let mut attacker = as_user(Some(MEMBER), std::path::Path::new("/bin/bash"))
        .args(["-c", &script])
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let mut runs = 0;
    while started.elapsed() < std::time::Duration::from_secs(3) {
        // Some runs fail (SQLite refuses a linked -wal or -shm, init a linked file): the point is
        // what happens to the victim.
        let _ = sys.root(&["init"]);
        runs += 1;
    }
    assert!(
        attacker.wait().unwrap().success(),
        "the attacker's loop failed to run"
    );
    let meta = std::fs::metadata(victim.path()).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o7777),
        (0, 0, 0o600),
        "init followed a swapped-in link ({runs} runs)"
    );
    // What the member left behind is cleared, and init repairs the store as before.
    for side in ["apppw.db-wal", "apppw.db-shm"] {
        let path = store_dir.join(side);
        if path
            .symlink_metadata()
            .is_ok_and(|m| m.file_type().is_symlink())
        {
            std::fs::remove_file(path).unwrap();
        }
    }
    assert_success(&sys.root(&["init"]));
    run_cmd(&["gpasswd", "-d", MEMBER, "apppw"]);
}

/// With a PostgreSQL store, /etc/apppw/store.conf holds database passwords. A real user cannot
/// read it, yet their apppw-ctl (which reads it only once it is the `apppw` account) manages
/// their codes in the database; no output, not even of an outage, shows a password; a user
/// cannot point apppw-ctl at a store.conf of their own; and a store.conf that everyone can read
/// is refused by apppw-ctl and by the module rather than used.
#[test]
#[ignore = "changes the host: installs a setuid apppw-ctl, /etc/pam.d and /var/lib/apppw (CI runs it)"]
fn the_database_password_in_store_conf_reaches_apppw_ctl_and_never_its_caller() {
    use apppw_tests::backend::{Backend, CTL_ROLE, MAIL_ROLE, TestStore};
    const STORE_CONF: &str = "/etc/apppw/store.conf";
    let sys = setup();
    sys.configure("reauthenticate = no\n");
    let mut store = TestStore::new(Backend::Postgres);
    let conf = InstalledFile::write(
        STORE_CONF,
        &format!(
            "login_store = {}\nmanage_store = {}\n",
            store.url_for(MAIL_ROLE),
            store.url_for(CTL_ROLE)
        ),
    );
    let gid = apppw_core::secure_path::store_gid().expect("the apppw group");
    std::os::unix::fs::chown(STORE_CONF, Some(0), Some(gid)).unwrap();
    std::fs::set_permissions(
        STORE_CONF,
        std::os::unix::fs::PermissionsExt::from_mode(0o640),
    )
    .unwrap();
    let secrets = [CTL_ROLE.1, MAIL_ROLE.1];
    let shows_no_secret = |out: &std::process::Output| {
        let text = format!("{}{}", stdout(out), stderr(out));
        assert!(
            secrets.iter().all(|s| !text.contains(s)),
            "a password in: {text}"
        );
        text
    };

    // The caller cannot read the file...
    let cat = as_user(Some(CAROL), std::path::Path::new("/bin/cat"))
        .arg(STORE_CONF)
        .output()
        .unwrap();
    assert!(!cat.status.success());
    shows_no_secret(&cat);
    // ...yet their apppw-ctl works on the database, and the code logs in through the module,
    // which finds the store through the same file.
    let sqlite_before = store_rows();
    let out = sys.user(CAROL, &["--json", "new", "Phone"]);
    assert_success(&out);
    shows_no_secret(&out);
    let code = serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["code"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        store_rows(),
        sqlite_before,
        "the code went to the database, not the file"
    );
    let w = World::new();
    w.service(
        "imap",
        &format!(
            "auth required {} store_conf={STORE_CONF}\naccount required pam_permit.so\n",
            w.module.display()
        ),
    );
    assert_eq!(w.login("imap", CAROL, &code).run().auth, PAM_SUCCESS);
    assert_eq!(json_list(&sys.user(CAROL, &["--json", "list"])).len(), 1);

    // An outage names the store, never its password; the module answers "unavailable".
    store.server().stop();
    let out = sys.user(CAROL, &["list"]);
    assert_eq!(out.status.code(), Some(1));
    let text = shows_no_secret(&out);
    assert!(text.contains("127.0.0.1"), "{text}");
    let during = w.login("imap", CAROL, &code).run();
    assert_eq!(during.auth, PAM_AUTHINFO_UNAVAIL, "{}", during.log);
    assert!(
        secrets.iter().all(|s| !during.log.contains(s)),
        "{}",
        during.log
    );
    store.server().start_again();
    assert_eq!(w.login("imap", CAROL, &code).run().auth, PAM_SUCCESS);

    // A store.conf of the caller's own is root's to give.
    let mine = std::env::temp_dir().join("apppw-carols-store.conf");
    std::fs::write(&mine, "manage_store = sqlite:/tmp/carol.db\n").unwrap();
    let out = sys.user(CAROL, &["--store-conf", mine.to_str().unwrap(), "list"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("--store-conf"), "{}", stderr(&out));
    std::fs::remove_file(&mine).unwrap();

    // A store.conf everyone can read is refused, not used.
    std::fs::set_permissions(
        STORE_CONF,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let out = sys.user(CAROL, &["list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("everyone can read it"),
        "{}",
        stderr(&out)
    );
    shows_no_secret(&out);
    let refused = w.login("imap", CAROL, &code).run();
    assert_eq!(refused.auth, PAM_SERVICE_ERR, "{}", refused.log);
    assert!(
        refused.log.contains("everyone can read it"),
        "{}",
        refused.log
    );
    drop(conf);
}
