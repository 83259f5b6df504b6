//! Codes follow the account (issue 14), through the installed setuid apppw-ctl, real accounts
//! made and deleted with useradd/userdel, real libpam and `passwd` on a pseudo-terminal: a
//! deleted account's codes never open an account that later gets its name, an upgraded store is
//! bound to the accounts its names have, and a password change can revoke a user's codes.

use std::path::Path;

use apppw_core::code::AppPassword;
use apppw_core::hash::{HashParams, hash_code};
use apppw_core::schema::{APPLICATION_ID, migrate};
use apppw_tests::system::{INSTALLED_CTL, SYSTEM_STORE, System, system};
use apppw_tests::*;

const ERIN: &str = "apppw-erin";
const ERIN_PASSWORD: &str = "erin's account password";
/// A name that never has an account.
const GHOST: &str = "apppw-ghost";

/// A libpam login against the system store, as a root service such as Dovecot would, with
/// pam_permit in the account group (what virtual-user setups use): only pam_apppw decides.
fn login(user: &str, code: &str) -> Login {
    let w = World::new();
    w.service("imap", &w.apppw_service_text(Path::new(SYSTEM_STORE), ""));
    w.login("imap", user, code).from("192.0.2.45").run()
}

/// Mints a code for `user` as root; returns (id, code).
fn mint(sys: &System, user: &str, label: &str) -> (i64, String) {
    let out = sys.root(&["--user", user, "--json", "new", label]);
    assert_success(&out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        v["id"].as_i64().unwrap(),
        v["code"].as_str().unwrap().to_string(),
    )
}

/// ERIN as a new account with no active codes under the name and no rows of other accounts
/// with that name (whatever an earlier run left: useradd hands out the same uids again).
fn fresh_erin(sys: &System, uid: Option<u32>) -> u32 {
    assert_success(&sys.root(&["lockdown", ERIN]));
    let uid = recreate_user(ERIN, uid);
    assert_success(&sys.root(&["prune", "--orphans"]));
    uid
}

/// A uid no account has and no earlier run used (the store keeps events of every uid it saw).
fn unused_uid() -> u32 {
    let start = 20_000
        + std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
            % 40_000;
    (start..u32::MAX)
        .find(|&uid| {
            nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
                .unwrap()
                .is_none()
        })
        .unwrap()
}

fn json(out: &std::process::Output) -> serde_json::Value {
    assert_success(out);
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
#[ignore = "changes the host: installs a setuid apppw-ctl, /etc/pam.d and /var/lib/apppw (CI runs it)"]
fn a_deleted_accounts_codes_never_open_a_new_account_with_its_name() {
    let sys = system();
    let first_uid = fresh_erin(&sys, None);
    let (old_id, old_code) = mint(&sys, ERIN, "Phone");
    assert_eq!(login(ERIN, &old_code).auth, PAM_SUCCESS);

    // userdel: the name resolves to nothing, and the code is refused (pam_permit would let the
    // account group through).
    delete_user(ERIN);
    let gone = login(ERIN, &old_code);
    assert_eq!(gone.auth, PAM_AUTH_ERR, "{}", gone.log);
    assert!(
        gone.log.contains(&format!(
            "(app password id={old_id} label=\"Phone\" belongs to a deleted account)"
        )),
        "{}",
        gone.log
    );

    // Lockdown works on a name that no longer exists.
    let locked = json(&sys.root(&["--json", "lockdown", ERIN]));
    assert_eq!(locked["revoked"].as_array().unwrap().len(), 1, "{locked}");
    assert_eq!(locked["revoked"][0]["id"], old_id);

    // useradd again with another uid: a new person with the old name.
    let second_uid = recreate_user(ERIN, Some(unused_uid()));
    assert_eq!(login(ERIN, &old_code).auth, PAM_AUTH_ERR);
    let listed = json(&sys.user(ERIN, &["--json", "list", "--revoked"]));
    assert_eq!(listed.as_array().unwrap().len(), 0, "{listed}");
    let events = json(&sys.user(ERIN, &["--json", "list", "--events"]));
    assert_eq!(events.as_array().unwrap().len(), 0, "{events}");
    let revoke = sys.user(ERIN, &["revoke", &old_id.to_string()]);
    assert_eq!(revoke.status.code(), Some(1), "{}", stderr(&revoke));
    // The old code does not block the new account's labels; the new code logs in.
    let (_, new_code) = mint(&sys, ERIN, "Phone");
    assert_eq!(login(ERIN, &new_code).auth, PAM_SUCCESS);

    // Root sees the leftover and removes it.
    let orphans = json(&sys.root(&["--json", "audit", "--orphans"]));
    // (Every row of the first account is an orphan now, earlier runs' included: useradd hands
    // out the same uids again.)
    let mine = orphans
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == old_id)
        .unwrap_or_else(|| panic!("{old_id} is not listed: {orphans}"));
    assert_eq!(mine["user"], ERIN);
    assert_eq!(mine["owner_uid"], i64::from(first_uid));
    assert_eq!(mine["uid_now"], second_uid);
    assert!(
        orphans
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["owner_uid"] != i64::from(second_uid)),
        "the new account's codes are not orphans: {orphans}"
    );
    assert_success(&sys.root(&["prune", "--orphans"]));
    let left = json(&sys.root(&["--json", "audit", "--orphans"]));
    assert!(
        !left.as_array().unwrap().iter().any(|o| o["user"] == ERIN),
        "{left}"
    );

    // Deleted and made again with the same uid: to NSS that is the same account, and its
    // codes work again (documented: reuse a uid only for the same person).
    recreate_user(ERIN, Some(second_uid));
    assert_eq!(login(ERIN, &new_code).auth, PAM_SUCCESS);
    assert_success(&sys.root(&["--user", ERIN, "revoke", "--all"]));
}

/// The suite's store, moved aside while a test puts another in its place, and put back when the
/// test ends, however it ends.
struct SavedStore;

impl SavedStore {
    fn aside() -> SavedStore {
        std::fs::rename(SYSTEM_STORE, saved_store()).unwrap();
        SavedStore
    }
}

fn saved_store() -> std::path::PathBuf {
    Path::new(SYSTEM_STORE).with_extension("saved")
}

impl Drop for SavedStore {
    fn drop(&mut self) {
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{SYSTEM_STORE}{suffix}"));
        }
        let _ = std::fs::rename(saved_store(), SYSTEM_STORE);
    }
}

/// Writes a store of schema version 4 (the previous release's) at the system store's path, with
/// one code of ERIN's and one of a name with no account. Returns their codes.
fn write_version_4_store() -> (String, String) {
    let path = Path::new(SYSTEM_STORE);
    let _ = std::fs::remove_file(path);
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{SYSTEM_STORE}{suffix}"));
    }
    let mut conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_update(None, "application_id", APPLICATION_ID)
        .unwrap();
    migrate(&mut conn, 4).unwrap();
    let cheap = HashParams {
        memory_kib: 1024,
        iterations: 1,
        parallelism: 1,
    };
    let mut codes = Vec::new();
    for (user, seed) in [(ERIN, 1u8), (GHOST, 2)] {
        let code = AppPassword::generate(&mut rand::rng());
        let hash = hash_code(&code, &cheap, &[seed; 16]).unwrap();
        conn.execute(
            "INSERT INTO app_passwords (user, label, lookup_tag, hash, created, created_by)
             VALUES (?1, 'Old phone', ?2, ?3, 1800000000, 'root (uid 0)')",
            rusqlite::params![user, code.lookup_tag(), hash],
        )
        .unwrap();
        codes.push(code.display_grouped().to_string());
    }
    drop(conn);
    let status = std::process::Command::new("chown")
        .args(["root:apppw", SYSTEM_STORE])
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o660)).unwrap();
    (codes.swap_remove(0), codes.swap_remove(0))
}

#[test]
#[ignore = "changes the host: installs a setuid apppw-ctl, /etc/pam.d and /var/lib/apppw (CI runs it)"]
fn an_upgraded_store_is_bound_to_the_accounts_its_names_have_and_says_so() {
    let sys = system();
    let erin_uid = fresh_erin(&sys, None);
    delete_user(GHOST);
    let saved = SavedStore::aside();
    let (code, ghost_code) = write_version_4_store();
    // The module refuses a store it would have to upgrade: an outage, not a wrong password.
    assert_eq!(login(ERIN, &code).auth, PAM_AUTHINFO_UNAVAIL);
    // What the packages run after an upgrade.
    let out = sys.root(&["init"]);
    let upgrade_text = stderr(&out);
    let orphans = json(&sys.root(&["--json", "audit", "--orphans"]));
    let login_after = login(ERIN, &code);
    let ghost_login = login(GHOST, &ghost_code);
    drop(saved);
    assert_success(&out);
    assert_eq!(ghost_login.auth, PAM_AUTH_ERR, "{}", ghost_login.log);
    assert!(
        upgrade_text.contains(&format!(
            "upgraded: 1 app passwords of {ERIN} are now bound to uid {erin_uid}"
        )),
        "{upgrade_text}"
    );
    assert!(
        upgrade_text.contains(&format!(
            "upgraded: 1 app passwords of {GHOST} belong to no account"
        )),
        "{upgrade_text}"
    );
    assert_eq!(login_after.auth, PAM_SUCCESS, "{}", login_after.log);
    let ghosts: Vec<&serde_json::Value> = orphans
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["user"] == GHOST)
        .collect();
    assert_eq!(ghosts.len(), 1, "{orphans}");
    assert_eq!(ghosts[0]["owner_uid"], -1);
}

/// /etc/pam.d/passwd with pam_apppw after Debian's common-password, as pam_apppw(8) shows;
/// the original comes back when the test ends, however it ends.
struct PasswdStack {
    original: String,
}

impl PasswdStack {
    fn install() -> PasswdStack {
        let original = std::fs::read_to_string("/etc/pam.d/passwd").unwrap();
        std::fs::write(
            "/etc/pam.d/passwd",
            format!(
                "@include common-password\npassword optional {} ctl={INSTALLED_CTL}\n",
                module_library().display()
            ),
        )
        .unwrap();
        PasswdStack { original }
    }
}

impl Drop for PasswdStack {
    fn drop(&mut self) {
        let _ = std::fs::write("/etc/pam.d/passwd", &self.original);
    }
}

/// `passwd` run by `user` at a terminal, from `old` to `new`.
fn change_password(user: &str, old: &str, new: &str) -> (Option<i32>, String) {
    at_terminal(user, Path::new("/usr/bin/passwd"), &[], &[old, new, new])
}

#[test]
#[ignore = "changes the host: installs a setuid apppw-ctl, /etc/pam.d and /var/lib/apppw (CI runs it)"]
fn a_password_change_revokes_the_codes_when_the_site_says_so() {
    let sys = system();
    fresh_erin(&sys, None);
    set_unix_password(ERIN, ERIN_PASSWORD);
    let _stack = PasswdStack::install();
    let new_password = "erin's brand new passphrase 7";

    // Without the policy nothing changes.
    let (kept_id, kept) = mint(&sys, ERIN, "Kept phone");
    let (status, shown) = change_password(ERIN, ERIN_PASSWORD, new_password);
    assert_eq!(status, Some(0), "{shown}");
    assert!(!shown.contains("app passwords"), "{shown}");
    assert_eq!(login(ERIN, &kept).auth, PAM_SUCCESS);
    let refused = sys.user(ERIN, &["password-changed", ERIN]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("revoke_on_password_change"),
        "{}",
        stderr(&refused)
    );

    // With it, the change revokes every active code and says how many.
    sys.configure("revoke_on_password_change = yes\n");
    let (second_id, second) = mint(&sys, ERIN, "Laptop");
    let (status, shown) = change_password(ERIN, new_password, ERIN_PASSWORD);
    assert_eq!(status, Some(0), "{shown}");
    assert!(
        shown.contains("Your password changed, so your 2 app passwords were revoked"),
        "{shown}"
    );
    for code in [&kept, &second] {
        assert_eq!(login(ERIN, code).auth, PAM_AUTH_ERR);
    }
    let listed = json(&sys.user(ERIN, &["--json", "list"]));
    assert_eq!(listed.as_array().unwrap().len(), 0, "{listed}");
    let events = json(&sys.root(&["--json", "--user", ERIN, "audit", "--events"]));
    let revoked_on_change = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["action"] == "revoked on password change"
                && (e["code_id"] == kept_id || e["code_id"] == second_id)
        })
        .count();
    assert_eq!(revoked_on_change, 2, "{events}");

    // A user cannot use it against someone else.
    let other = sys.user(ERIN, &["password-changed", "root"]);
    assert_eq!(other.status.code(), Some(1));
    assert!(
        stderr(&other).contains("is for root only"),
        "{}",
        stderr(&other)
    );
    // A failed change (wrong current password) revokes nothing.
    let (_, third) = mint(&sys, ERIN, "Tablet");
    let (status, shown) = change_password(ERIN, "not the password", new_password);
    assert_ne!(status, Some(0), "{shown}");
    assert_eq!(login(ERIN, &third).auth, PAM_SUCCESS);
    assert_success(&sys.root(&["--user", ERIN, "revoke", "--all"]));
}
