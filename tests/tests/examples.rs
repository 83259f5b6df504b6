//! The example PAM service files in packaging/examples work as documented, through the real
//! libpam. Only the module's location and store are filled in; the rest is used verbatim.

use std::path::Path;

use apppw_tests::*;

const ALICE: &str = "apppw-alice";
const ALICE_UNIX_PASSWORD: &str = "unix password of alice";

fn example(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../packaging/examples/pam.d")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn world() -> World {
    require_root("example tests make users and read /etc/shadow");
    ensure_user(ALICE);
    World::new()
}

/// The example with `pam_apppw.so` pointing at this world's module and store.
fn install_example(w: &World, service: &str, name: &str) {
    let text = example(name).replace(
        "pam_apppw.so",
        &format!("{} db={}", w.module.display(), w.store.display()),
    );
    w.service(service, &text);
}

#[test]
#[ignore = "needs root: mints with root's --db/--user and makes users (CI runs it)"]
fn apppw_only_accepts_codes_and_refuses_the_account_password() {
    let w = world();
    install_example(&w, "dovecot", "mail-apppw-only");
    let (_, code) = w.mint(ALICE, "Phone");
    let ok = w.login("dovecot", ALICE, &code).from("127.0.0.1").run();
    assert_eq!(
        (ok.auth, ok.account),
        (PAM_SUCCESS, Some(PAM_SUCCESS)),
        "{}",
        ok.log
    );
    set_unix_password(ALICE, ALICE_UNIX_PASSWORD);
    let refused = w.login("dovecot", ALICE, ALICE_UNIX_PASSWORD).run();
    assert_eq!(refused.auth, PAM_AUTH_ERR);
}

/// The stack `password-auth` of Fedora and RHEL in the shape authselect writes it for local
/// accounts, less pam_faildelay: modules Debian has too.
const RHEL_PASSWORD_AUTH: &str = "auth     required   pam_env.so
auth     sufficient pam_unix.so nullok
auth     required   pam_deny.so
account  required   pam_unix.so
";

#[test]
#[ignore = "needs root: mints with root's --db/--user and makes users (CI runs it)"]
fn apppw_or_password_accepts_either() {
    let w = world();
    // The example includes Debian's common-auth and common-account, read from the host.
    for common in ["common-auth", "common-account"] {
        let text = std::fs::read_to_string(Path::new("/etc/pam.d").join(common)).unwrap();
        w.service(common, &text);
    }
    accepts_either(&w, "mail-apppw-or-password");
}

#[test]
#[ignore = "changes the host: installs a setuid apppw-ctl, /etc/pam.d and /var/lib/apppw (CI runs it)"]
fn apppw_or_password_accepts_either_on_rhel() {
    let w = world();
    // libpam resolves `include password-auth` under /etc/pam.d itself, not in pam_wrapper's
    // service directory (unlike `@include`), so the stand-in goes there for the test's length.
    // Debian has no such file; one that exists is not ours to replace.
    let real = Path::new("/etc/pam.d/password-auth");
    assert!(
        !real.exists(),
        "{} exists: this test installs a stand-in there (a Debian host has none)",
        real.display()
    );
    let _installed = InstalledFile::write(real, RHEL_PASSWORD_AUTH);
    accepts_either(&w, "mail-apppw-or-password.rhel");
}

/// Installs the "or password" `example` as the service dovecot: a code and the account password
/// both work, and with the store gone the account password still does.
fn accepts_either(w: &World, example: &str) {
    install_example(w, "dovecot", example);
    let (_, code) = w.mint(ALICE, "Phone");
    set_unix_password(ALICE, ALICE_UNIX_PASSWORD);
    let by_code = w.login("dovecot", ALICE, &code).run();
    assert_eq!(
        (by_code.auth, by_code.account),
        (PAM_SUCCESS, Some(PAM_SUCCESS)),
        "{}",
        by_code.log
    );
    let by_password = w.login("dovecot", ALICE, ALICE_UNIX_PASSWORD).run();
    assert_eq!(by_password.auth, PAM_SUCCESS, "{}", by_password.log);
    // With the store gone, the account password still works and a code does not.
    std::fs::remove_file(&w.store).unwrap();
    assert_eq!(
        w.login("dovecot", ALICE, ALICE_UNIX_PASSWORD).run().auth,
        PAM_SUCCESS
    );
    assert_ne!(w.login("dovecot", ALICE, &code).run().auth, PAM_SUCCESS);
}
