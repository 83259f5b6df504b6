//! The web session's root helper, `apppw-ctl web-session`, driven over its socket as apppw-web
//! drives it: real PAM (pam_unix on /etc/shadow, pam_google_authenticator with TOTP codes from
//! oathtool), the installed setuid apppw-ctl, the system store, real users. These change the host
//! (/etc/pam.d/apppw-web, users, the store), so they run as system tests.
#![forbid(unsafe_code)]

use std::path::Path;
use std::process::Command;

use apppw_tests::syslog::SyslogListener;
use apppw_tests::system::{INSTALLED_CTL, SYSTEM_STORE, system};
use apppw_tests::web::{ALICE, ALICE_PASSWORD, BOB, HelperSocket, Totp, web_users};
use apppw_tests::{
    InstalledFile, World, as_user, assert_success, require, run_with_stdin, set_unix_password,
    stderr, stdout,
};
use serde_json::{Value, json};

const ADDRESS: &str = "192.0.2.10";
const PAM_FILE: &str = "/etc/pam.d/apppw-web";

/// The shipped /etc/pam.d/apppw-web.
fn shipped_stack() -> InstalledFile {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/pam.d/apppw-web"),
    )
    .unwrap();
    InstalledFile::write(PAM_FILE, &text)
}

fn helper(dir: &Path) -> HelperSocket {
    HelperSocket::start(dir, Path::new(INSTALLED_CTL))
}

fn tempdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    dir
}

/// The code as `new --json` shows it.
fn minted(output: &Value) -> (i64, String) {
    (
        output["id"].as_i64().unwrap(),
        output["code"].as_str().unwrap().to_owned(),
    )
}

/// A signed-in session lists, mints, renames, edits and revokes the signed-in user's codes with
/// apppw-ctl's own code: the same event rows and syslog lines as on a terminal, with the origin
/// "web from ADDRESS", and no reach into another user's codes.
#[test]
#[ignore = "changes the host: installs a setuid apppw-ctl, /etc/pam.d and /var/lib/apppw (CI runs it)"]
fn a_session_manages_its_own_users_codes_as_apppw_ctl_does() {
    let sys = system();
    web_users(&sys);
    let _stack = shipped_stack();
    let log = SyslogListener::start();
    let dir = tempdir();
    let helper = helper(dir.path());
    let bob_code = {
        let out = sys.root(&["--user", BOB, "--json", "new", "Bob's phone"]);
        assert_success(&out);
        minted(&serde_json::from_slice(&out.stdout).unwrap()).0
    };

    let (mut session, reply) = helper.sign_in(ALICE, ALICE_PASSWORD, ADDRESS);
    assert_eq!(reply["signed_in"]["user"], ALICE, "{reply}");
    let before = session.done(&["list"]);
    let (id, code) = minted(&session.done(&["new", "Phone", "--service", "imap"]));
    assert_eq!(code.len(), 19, "four groups of four: {code}");
    let listed = session.done(&["list"]);
    assert_eq!(
        listed.as_array().unwrap().len(),
        before.as_array().unwrap().len() + 1
    );
    let phone = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap();
    assert_eq!(phone["services"], json!(["imap"]));
    assert_eq!(
        phone["created_by"].as_str().unwrap().split(' ').next(),
        Some(ALICE)
    );
    session.done(&["rename", &id.to_string(), "Work phone"]);
    session.done(&[
        "edit",
        &id.to_string(),
        "--service",
        "imap",
        "--service",
        "smtp",
    ]);

    // Bob's code is out of reach: by id, in every command that names one.
    for words in [
        vec!["rename".to_owned(), bob_code.to_string(), "Mine".to_owned()],
        vec!["revoke".to_owned(), bob_code.to_string()],
        vec![
            "edit".to_owned(),
            bob_code.to_string(),
            "--no-expiry".to_owned(),
        ],
        vec![
            "list".to_owned(),
            "--history".to_owned(),
            bob_code.to_string(),
        ],
    ] {
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        let reply = session.run(&words);
        assert!(reply["failed"].is_object(), "{words:?}: {reply}");
    }
    // Root's commands and options are not there to ask for.
    for words in [
        &["audit"][..],
        &["--user", BOB, "list"],
        &["revoke", "--all-users"],
        &["--db", "/tmp/x.db", "list"],
    ] {
        let reply = session.run(words);
        assert!(reply["failed"].is_object(), "{words:?}: {reply}");
    }
    let revoked = session.done(&["revoke", &id.to_string()]);
    assert_eq!(revoked["revoked"][0]["id"], id);

    // The event trail, as the user's own `list --events` shows it: every change from the web.
    let events = session.done(&["list", "--events"]);
    let ours: Vec<&Value> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["code_id"] == id)
        .collect();
    let actions: Vec<&str> = ours.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions.len(), 4, "{ours:#?}");
    for event in &ours {
        assert_eq!(event["origin"], format!("web from {ADDRESS}"), "{event}");
        assert_eq!(event["actor"], ALICE);
    }
    drop(session);
    let bob_after = sys.root(&["--user", BOB, "--json", "list"]);
    assert!(
        stdout(&bob_after).contains("Bob's phone"),
        "{}",
        stdout(&bob_after)
    );

    // The syslog lines are apppw-ctl's, sent by the apppw account as on a terminal.
    let apppw_uid = nix::unistd::User::from_name("apppw")
        .unwrap()
        .unwrap()
        .uid
        .as_raw();
    let alice_uid = nix::unistd::User::from_name(ALICE)
        .unwrap()
        .unwrap()
        .uid
        .as_raw();
    let lines: Vec<_> = log
        .datagrams()
        .into_iter()
        .filter(|d| d.text.contains(&format!("app password id={id} ")))
        .collect();
    assert_eq!(lines.len(), 4, "{lines:#?}");
    for line in &lines {
        assert_eq!(line.uid, apppw_uid, "{line:?}");
        assert!(
            line.text.contains(&format!(
                "apppw-ctl[{}]: uid={alice_uid} name={} origin={} ",
                line.pid,
                apppw_core::log_value(ALICE),
                apppw_core::log_value(&format!("web from {ADDRESS}")),
            )),
            "{}",
            line.text
        );
    }
    assert!(
        lines[0].text.contains("created app password"),
        "{}",
        lines[0].text
    );
    // The sign-in itself is logged by the helper, as root.
    assert!(
        log.datagrams().iter().any(|d| d.uid == 0
            && d.text
                .contains(&format!("apppw-web: {ALICE} signed in from {ADDRESS}"))),
        "no sign-in line"
    );
    // No code and no password in any line.
    for d in log.datagrams() {
        assert!(
            !d.text.contains(&code) && !d.text.contains(ALICE_PASSWORD),
            "{}",
            d.text
        );
    }
}

/// Minting needs a password confirmed within five minutes, revoking all within one: the helper
/// passes the age of the last confirmation to the command, which asks for it again when older.
#[test]
#[ignore = "changes the host: installs a setuid apppw-ctl, /etc/pam.d and /var/lib/apppw (CI runs it)"]
fn minting_and_revoking_all_ask_for_a_fresh_confirmation() {
    let sys = system();
    web_users(&sys);
    let _stack = shipped_stack();
    let alice_uid = nix::unistd::User::from_name(ALICE)
        .unwrap()
        .unwrap()
        .uid
        .as_raw();
    let act = |secs: u64, words: &[&str]| -> Value {
        let out = run_with_stdin(
            {
                let mut cmd = Command::new(INSTALLED_CTL);
                cmd.arg("web-act");
                cmd
            },
            &order(alice_uid, secs, words),
        );
        assert_success(&out);
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let stale = act(301, &["new", "Late"]);
    assert_eq!(stale["failed"]["confirm_again"], true, "{stale}");
    assert!(act(299, &["new", "In time"])["done"].is_object());
    let stale = act(61, &["revoke", "--all"]);
    assert_eq!(stale["failed"]["confirm_again"], true, "{stale}");
    // Listing needs none.
    assert!(act(100_000, &["list"])["done"].is_object());
    let revoked = act(59, &["revoke", "--all"]);
    assert!(revoked["done"].is_object(), "{revoked}");

    // Over a session: a wrong confirmation is refused and the session goes on; a right one is
    // accepted.
    let dir = tempdir();
    let helper = helper(dir.path());
    let (mut session, reply) = helper.sign_in(ALICE, ALICE_PASSWORD, ADDRESS);
    assert!(reply["signed_in"].is_object(), "{reply}");
    session.send(&json!({"confirm": "wrong"}));
    let refused = session.receive().unwrap();
    assert!(refused["refused"].is_object(), "{refused}");
    session.send(&json!({"confirm": ALICE_PASSWORD}));
    let confirmed = session.receive().unwrap();
    assert!(confirmed["confirmed"].is_object(), "{confirmed}");
    assert!(session.run(&["revoke", "--all"])["done"].is_object());
}

/// What the helper refuses: a wrong password (the session ends), an app password as the sign-in
/// even where the stack accepts app passwords for other services, root, a caller who is not
/// root, and a peer that is not the front's account.
#[test]
#[ignore = "changes the host: installs a setuid apppw-ctl, /etc/pam.d and /var/lib/apppw (CI runs it)"]
fn the_helper_refuses_what_it_must() {
    let sys = system();
    web_users(&sys);
    let dir = tempdir();
    let helper = helper(dir.path());

    // A stack that accepts app passwords before the account password, as a site may write one
    // for its mail services: pam_apppw still refuses them in apppw-web.
    let w = World::new();
    let module_line = w
        .apppw_service_text(Path::new(SYSTEM_STORE), "")
        .lines()
        .next()
        .unwrap()
        .replace("required", "sufficient");
    let _stack = InstalledFile::write(
        PAM_FILE,
        &format!("{module_line}\n@include common-auth\n@include common-account\n"),
    );
    let out = sys.root(&["--user", ALICE, "--json", "new", "Leaked"]);
    assert_success(&out);
    let (_, code) = minted(&serde_json::from_slice(&out.stdout).unwrap());
    let (mut session, reply) = helper.sign_in(ALICE, &code, ADDRESS);
    assert!(
        reply["refused"].is_object(),
        "an app password signed in: {reply}"
    );
    assert!(
        session.receive().is_none(),
        "the session must end after a refusal"
    );
    let (_, reply) = helper.sign_in(ALICE, "wrong password", ADDRESS);
    assert!(reply["refused"].is_object(), "{reply}");
    let (_, reply) = helper.sign_in(ALICE, ALICE_PASSWORD, ADDRESS);
    assert!(reply["signed_in"].is_object(), "{reply}");
    // A name that is no account name never reaches PAM, and gets the same answer.
    let (_, odd) = helper.sign_in("x rhost=198.51.100.1", ALICE_PASSWORD, ADDRESS);
    assert_eq!(odd["refused"]["message"], reply_refused_message(&helper));
    // Root does not sign in on the web, under any name: a second name for uid 0 with a
    // password PAM would accept is refused.
    remove_root_alias();
    let status = Command::new("useradd")
        .args([
            "--non-unique",
            "--uid",
            "0",
            "--gid",
            "0",
            "--no-create-home",
            ROOT_ALIAS,
        ])
        .status()
        .unwrap();
    assert!(status.success());
    set_unix_password(ROOT_ALIAS, ALICE_PASSWORD);
    let (_, root) = helper.sign_in(ROOT_ALIAS, ALICE_PASSWORD, ADDRESS);
    remove_root_alias();
    // The same answer as a wrong password, decided before PAM ran: it tells nothing about
    // the password.
    assert_eq!(
        root["refused"]["message"],
        reply_refused_message(&helper),
        "{root}"
    );

    // A user who runs the setuid apppw-ctl gets neither subcommand.
    let out = run_with_stdin(
        {
            let mut cmd = sys.user_command(BOB);
            cmd.arg("web-session");
            cmd
        },
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not a command to run by hand"),
        "{}",
        stderr(&out)
    );
    let alice_uid = nix::unistd::User::from_name(ALICE)
        .unwrap()
        .unwrap()
        .uid
        .as_raw();
    let out = run_with_stdin(
        {
            let mut cmd = sys.user_command(BOB);
            cmd.arg("web-act");
            cmd
        },
        &order(alice_uid, 0, &["list"]),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(!stdout(&out).contains("\"done\""), "{}", stdout(&out));

    // A peer other than root or the front's account: the helper reads nothing and says nothing
    // (the connection ends, or is reset with the request unread).
    require(
        Path::new("/usr/bin/python3").exists(),
        "/usr/bin/python3",
        "scripts/packages.sh installs it (Debian: python3)",
    );
    let script = r#"
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall((json.dumps({"sign_in": {"user": sys.argv[2], "password": sys.argv[3], "address": "192.0.2.10"}}) + "\n").encode())
s.settimeout(30)
try:
    print(repr(s.recv(4096)))
except ConnectionResetError:
    print("b''")
"#;
    let mut cmd = as_user(Some(BOB), Path::new("/usr/bin/python3"));
    cmd.args(["-c", script])
        .arg(&helper.path)
        .args([ALICE, ALICE_PASSWORD]);
    let out = cmd.output().unwrap();
    assert_success(&out);
    assert_eq!(stdout(&out).trim(), "b''", "a wrong peer got an answer");
}

/// The request a helper hands `apppw-ctl web-act` on its stdin.
fn order(uid: u32, confirmed_secs_ago: u64, words: &[&str]) -> Vec<u8> {
    let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .unwrap()
        .unwrap()
        .name;
    let mut line = serde_json::to_vec(&json!({
        "uid": uid,
        "user": user,
        "address": ADDRESS,
        "confirmed_secs_ago": confirmed_secs_ago,
        "words": words,
    }))
    .unwrap();
    line.push(b'\n');
    line
}

/// A second name for uid 0, made and removed by the test.
const ROOT_ALIAS: &str = "web-root-alias";

/// `userdel -f`: plain userdel refuses a name whose uid (0) has processes running.
fn remove_root_alias() {
    let _ = Command::new("userdel")
        .args(["--force", ROOT_ALIAS])
        .stderr(std::process::Stdio::null())
        .status();
}

/// The refusal every failed sign-in gets.
fn reply_refused_message(helper: &HelperSocket) -> Value {
    let (_, reply) = helper.sign_in(ALICE, "wrong password", ADDRESS);
    reply["refused"]["message"].clone()
}

/// A site that adds a second factor to /etc/pam.d/apppw-web gets it on the web: the helper
/// relays pam_google_authenticator's prompt, and the TOTP code from oathtool answers it.
#[test]
#[ignore = "changes the host: installs a setuid apppw-ctl, /etc/pam.d and /var/lib/apppw (CI runs it)"]
fn a_second_factor_in_the_stack_is_asked_as_a_form_step() {
    let sys = system();
    web_users(&sys);
    let totp = Totp::for_user(ALICE);
    let _stack = InstalledFile::write(PAM_FILE, &totp.stack());
    let dir = tempdir();
    let helper = helper(dir.path());
    let (mut session, reply) = helper.sign_in(ALICE, ALICE_PASSWORD, ADDRESS);
    assert_eq!(reply["prompt"]["text"], "Verification code: ", "{reply}");
    assert_eq!(reply["prompt"]["echo"], false);
    session.send(&json!({"answer": totp.code()}));
    let signed_in = session.receive().unwrap();
    assert_eq!(signed_in["signed_in"]["user"], ALICE, "{signed_in}");
    assert!(session.run(&["list"])["done"].is_object());

    // A wrong second factor is refused like a wrong password.
    let (mut session, reply) = helper.sign_in(ALICE, ALICE_PASSWORD, ADDRESS);
    assert!(reply["prompt"].is_object(), "{reply}");
    session.send(&json!({"answer": "000000"}));
    let refused = session.receive().unwrap();
    assert!(refused["refused"].is_object(), "{refused}");
}
