//! apppw-ctl as its users run it: every command, every usage error, and the rule that a failed
//! command changes nothing.

use std::process::Command;

use apppw_tests::backend::Backend;
use apppw_tests::*;

on_both_backends!(
    needs_root: new_shows_the_code_once_in_four_groups,
    new_json_has_the_contracted_fields,
    list_rename_and_revoke_work_by_id_and_by_label,
    usage_errors_exit_2_and_change_nothing,
    errors_exit_1_say_what_to_do_and_change_nothing
);

const ALICE: &str = "apppw-alice";
const BOB: &str = "apppw-bob";

fn world() -> World {
    world_on(Backend::Sqlite)
}

fn world_on(backend: Backend) -> World {
    require_root("CLI tests use root's --db/--user and make users");
    ensure_user(ALICE);
    ensure_user(BOB);
    World::on(backend)
}

fn code(out: &std::process::Output) -> Option<i32> {
    out.status.code()
}

fn snapshot(w: &World) -> String {
    w.snapshot()
}

fn new_shows_the_code_once_in_four_groups(backend: Backend) {
    let w = world_on(backend);
    let out = w.ctl(&["--user", ALICE, "new", "Work Email Desktop"]);
    assert_success(&out);
    let text = stdout(&out);
    assert!(
        text.starts_with(
            "New app password for apppw-alice, label \"Work Email Desktop\" (id 1):\n\n    "
        ),
        "{text}"
    );
    let shown = text.lines().nth(2).unwrap().trim();
    assert_eq!(shown.len(), 19);
    assert!(
        shown
            .split(' ')
            .all(|g| g.len() == 4 && g.bytes().all(|b| b.is_ascii_alphanumeric()))
    );
    assert!(text.contains("It will not be shown again."));
    // Nothing afterwards ever shows it again.
    let listed = stdout(&w.ctl(&["--user", ALICE, "list"]));
    let listed_json = stdout(&w.ctl(&["--user", ALICE, "--json", "list"]));
    for group in shown.split(' ') {
        assert!(!listed.contains(group) && !listed_json.contains(group));
    }
}

fn new_json_has_the_contracted_fields(backend: Backend) {
    let w = world_on(backend);
    let out = w.ctl(&["--user", ALICE, "--json", "new", "Phone mail"]);
    assert_success(&out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["id"], 1);
    assert_eq!(v["user"], ALICE);
    assert_eq!(v["label"], "Phone mail");
    assert_eq!(v["code"].as_str().unwrap().len(), 19);
    assert!(v["created"].as_str().unwrap().ends_with('Z'));
    // Global options may also follow the subcommand.
    let out = w.ctl(&["new", "Tablet", "--json", "--user", ALICE]);
    assert_success(&out);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["id"],
        2
    );
}

fn list_rename_and_revoke_work_by_id_and_by_label(backend: Backend) {
    let w = world_on(backend);
    let (phone, _) = w.mint(ALICE, "Phone");
    let (laptop, _) = w.mint(ALICE, "Laptop");
    w.mint(BOB, "Bob's phone");

    let listed = stdout(&w.ctl(&["--user", ALICE, "list"]));
    assert!(
        listed.contains("Phone") && listed.contains("Laptop"),
        "{listed}"
    );
    assert!(!listed.contains("Bob's phone"), "{listed}");

    let out = w.ctl(&[
        "--user",
        ALICE,
        "rename",
        &phone.to_string(),
        "Desktop Outlook",
    ]);
    assert_success(&out);
    assert_eq!(
        stdout(&out),
        format!("Renamed app password {phone} to \"Desktop Outlook\".\n")
    );
    assert_success(&w.ctl(&["--user", ALICE, "rename", "Laptop", "Old laptop"]));

    let out = w.ctl(&["--user", ALICE, "revoke", "Old laptop"]);
    assert_success(&out);
    assert!(stdout(&out).contains(&format!("Revoked app password {laptop} (\"Old laptop\")")));

    let v: serde_json::Value =
        serde_json::from_slice(&w.ctl(&["--user", ALICE, "--json", "list"]).stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["label"], "Desktop Outlook");
    let v: serde_json::Value = serde_json::from_slice(
        &w.ctl(&["--user", ALICE, "--json", "list", "--revoked"])
            .stdout,
    )
    .unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert!(v[1]["revoked"].is_string());

    let out = w.ctl(&["--user", ALICE, "--json", "revoke", "--all"]);
    assert_success(&out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["revoked"].as_array().unwrap().len(), 1);
    let listed = stdout(&w.ctl(&["--user", ALICE, "list"]));
    assert!(listed.contains("no active app passwords"), "{listed}");
    // Bob's code was not touched.
    assert!(stdout(&w.ctl(&["--user", BOB, "list"])).contains("Bob's phone"));
}

fn usage_errors_exit_2_and_change_nothing(backend: Backend) {
    let w = world_on(backend);
    w.mint(ALICE, "Phone");
    let before = snapshot(&w);
    for args in [
        &[][..],
        &["frobnicate"],
        &["new"],
        &["new", "a", "b"],
        &["rename", "1"],
        &["revoke"],
        &["revoke", "1", "--all"],
        &["list", "--bogus"],
    ] {
        let out = w.ctl(args);
        assert_eq!(code(&out), Some(2), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).is_empty(), "{args:?}");
    }
    assert_eq!(snapshot(&w), before);
}

fn errors_exit_1_say_what_to_do_and_change_nothing(backend: Backend) {
    let w = world_on(backend);
    let (phone, _) = w.mint(ALICE, "Phone");
    w.mint(ALICE, "Laptop");
    let before = snapshot(&w);
    let long = "x".repeat(65);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["new", "Phone"],
            "already has an active app password labelled \"Phone\"",
        ),
        (vec!["new", "bad\x1b[31mlabel"], "invalid label: control"),
        (vec!["new", "  "], "at least one visible character"),
        (vec!["new", &long], "at most 64 characters"),
        (
            vec!["rename", "999", "Tablet"],
            "no active app password with id 999",
        ),
        (
            vec!["rename", "Laptop", "Phone"],
            "already has an active app password labelled",
        ),
        (vec!["revoke", "999"], "`apppw-ctl list` shows the ids"),
        (
            vec!["revoke", "No such label"],
            "no active app password labelled",
        ),
    ];
    for (args, message) in cases {
        let mut full = vec!["--user", ALICE];
        full.extend(args.iter());
        let out = w.ctl(&full);
        assert_eq!(code(&out), Some(1), "{args:?}");
        assert!(stderr(&out).contains(message), "{args:?}: {}", stderr(&out));
        assert!(stdout(&out).is_empty(), "{args:?}");
    }
    let out = w.ctl(&["--user", "no-such-user-here", "list"]);
    assert_eq!(code(&out), Some(1));
    assert!(stderr(&out).contains("there is no user named"));
    // Another user's id is "not found", exactly like an id that does not exist.
    let out = w.ctl(&["--user", BOB, "revoke", &phone.to_string()]);
    assert_eq!(code(&out), Some(1));
    assert!(stderr(&out).contains(&format!("no active app password with id {phone}")));
    assert_eq!(snapshot(&w), before);
}

#[test]
#[ignore = "needs root: mints with root's --db/--user and makes users (CI runs it)"]
fn a_missing_store_is_explained_and_not_created_by_readers() {
    let w = world();
    for args in [&["list"][..], &["revoke", "--all"], &["rename", "1", "x"]] {
        let out = w.ctl(args);
        assert_eq!(code(&out), Some(1));
        assert!(
            stderr(&out).contains("no app password store at"),
            "{}",
            stderr(&out)
        );
    }
    assert!(!w.store.exists());
    assert_success(&w.ctl(&["--user", ALICE, "new", "First"]));
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&w.store).unwrap().permissions(),
    );
    assert_eq!(
        mode & 0o777,
        0o660,
        "store is for root and the apppw group only: {mode:o}"
    );
}

#[test]
#[ignore = "needs root: mints with root's --db/--user and makes users (CI runs it)"]
fn overrides_are_root_only() {
    let w = world();
    w.mint(ALICE, "Phone");
    let before = snapshot(&w);
    let db = w.store.display().to_string();
    for args in [
        vec!["--db", db.as_str(), "list"],
        vec!["--user", BOB, "list"],
        vec!["--db", db.as_str(), "--user", ALICE, "revoke", "--all"],
        vec!["new", "x", "--db", db.as_str()],
    ] {
        let mut cmd = as_user(Some(BOB), &ctl_binary());
        cmd.args(&args);
        let out = run_with_stdin(cmd, b"");
        assert_eq!(code(&out), Some(1), "{args:?}");
        assert!(
            stderr(&out).contains("is for root only"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    assert_eq!(snapshot(&w), before);
}

#[test]
#[ignore = "needs root: mints with root's --db/--user and makes users (CI runs it)"]
fn stored_text_is_escaped_when_printed() {
    let w = world();
    w.mint(ALICE, "Phone");
    // A label written by something other than apppw-ctl (an older version, a hand edit).
    let conn = rusqlite::Connection::open(&w.store).unwrap();
    conn.execute(
        "UPDATE app_passwords SET label = 'evil\x1b]0;pwned\x07\u{202e}'",
        [],
    )
    .unwrap();
    let listed = stdout(&w.ctl(&["--user", ALICE, "list"]));
    assert!(
        !listed.contains('\x1b') && !listed.contains('\u{202e}'),
        "{listed:?}"
    );
    assert!(
        listed.contains("evil\\u{1b}]0;pwned\\u{7}\\u{202e}"),
        "{listed}"
    );
    let json = stdout(&w.ctl(&["--user", ALICE, "--json", "list"]));
    assert!(!json.contains('\x1b'), "{json:?}");
}

#[test]
#[ignore = "needs root: mints with root's --db/--user and makes users (CI runs it)"]
fn a_closed_pipe_is_not_an_error() {
    let w = world();
    w.mint(ALICE, "Phone");
    // stdout is a pipe whose reading end is already closed, as after `| head` has exited.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(ctl_binary())
        .args(["--db", w.store.to_str().unwrap(), "--user", ALICE, "list"])
        .stdout(writer)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
}

/// `migrate` copies an SQLite store into an empty PostgreSQL store: every code logs in through
/// the new store with the same id, the revoked one stays refused, labels, limits, last use, the
/// trail and the history come along, and the copy is compared row by row. A non-empty target
/// and a URL on the command line are refused, and change nothing.
#[test]
#[ignore = "needs root: mints with root's --db/--user and makes users (CI runs it)"]
fn migrate_moves_every_code_to_postgresql_and_users_keep_them() {
    use apppw_tests::backend::{CTL_ROLE, MAIL_ROLE, TestStore};
    let w = world();
    w.apppw_service("imap", "");
    let (phone, phone_code) = w.mint(ALICE, "Phone");
    let (old, old_code) = w.mint(ALICE, "Old laptop");
    assert_success(&w.ctl(&["--user", ALICE, "edit", "Phone", "--service", "imap"]));
    let (_, bobs) = w.mint(BOB, "Tablet");
    assert_eq!(
        w.login("imap", ALICE, &phone_code)
            .from("192.0.2.7")
            .run()
            .auth,
        PAM_SUCCESS
    );
    assert_success(&w.ctl(&["--user", ALICE, "revoke", &old.to_string()]));
    let sqlite_before = w.snapshot();
    let listed_before = stdout(&w.ctl(&["--json", "audit"]));

    let pg = TestStore::new(Backend::Postgres);
    let admin_file = w.dir.path().join("admin-url");
    std::fs::write(&admin_file, pg.superuser_url()).unwrap();
    // A file others can read is refused: it holds a superuser's password.
    let out = w.ctl(&["migrate", "--to", admin_file.to_str().unwrap()]);
    assert_eq!(code(&out), Some(1));
    assert!(
        stderr(&out).contains("others than root can read it"),
        "{}",
        stderr(&out)
    );
    std::fs::set_permissions(
        &admin_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    // A URL on the command line is refused before anything is read.
    let out = w.ctl(&["migrate", "--to", &pg.superuser_url()]);
    assert_eq!(code(&out), Some(1));
    assert!(stderr(&out).contains("command line"), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains(
            pg.superuser_url()
                .split('@')
                .next()
                .unwrap()
                .rsplit(':')
                .next()
                .unwrap()
        )
    );

    let out = w.ctl(&["--json", "migrate", "--to", admin_file.to_str().unwrap()]);
    assert_success(&out);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (report["codes"].as_i64(), report["active"].as_i64()),
        (Some(3), Some(2))
    );
    assert!(report["events"].as_i64().unwrap() >= 5, "{report}");
    assert_eq!(report["uses"], 1);
    assert_eq!(w.snapshot(), sqlite_before, "the old store is unchanged");

    // The hosts switch: store.conf names the database.
    let conf = w.dir.path().join("store.conf");
    std::fs::write(
        &conf,
        format!(
            "login_store = {}\nmanage_store = {}\n",
            pg.url_for(MAIL_ROLE),
            pg.url_for(CTL_ROLE)
        ),
    )
    .unwrap();
    std::fs::set_permissions(&conf, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
    let pg_ctl = |args: &[&str]| {
        let mut cmd = Command::new(ctl_binary());
        cmd.arg("--store-conf").arg(&conf).args(args);
        run_with_stdin(cmd, b"")
    };
    assert_eq!(stdout(&pg_ctl(&["--json", "audit"])), listed_before);
    let services = w.dir.path().join("pam.d");
    std::fs::write(
        services.join("imap"),
        format!(
            "auth required {} store_conf={}\naccount required pam_permit.so\n",
            w.module.display(),
            conf.display()
        ),
    )
    .unwrap();
    assert_eq!(w.login("imap", ALICE, &phone_code).run().auth, PAM_SUCCESS);
    assert_eq!(w.login("imap", BOB, &bobs).run().auth, PAM_SUCCESS);
    assert_eq!(w.login("imap", ALICE, &old_code).run().auth, PAM_AUTH_ERR);
    // The limits came along: the phone's code is for imap only.
    std::fs::copy(services.join("imap"), services.join("pop3")).unwrap();
    assert_eq!(w.login("pop3", ALICE, &phone_code).run().auth, PAM_AUTH_ERR);
    // New codes continue after the copied ids.
    let out = pg_ctl(&["--user", ALICE, "--json", "new", "Watch"]);
    assert_success(&out);
    let new_id = serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["id"]
        .as_i64()
        .unwrap();
    assert!(new_id > phone.max(old), "{new_id}");

    // Into a store that is no longer empty: refused, nothing changes.
    let before = pg.dump();
    let out = w.ctl(&["migrate", "--to", admin_file.to_str().unwrap()]);
    assert_eq!(code(&out), Some(1));
    assert!(stderr(&out).contains("not empty"), "{}", stderr(&out));
    assert_eq!(pg.dump(), before);
}
