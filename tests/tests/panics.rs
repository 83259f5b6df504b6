//! A panic inside the module becomes a refused login and a log line: the host process survives,
//! nothing is printed on its stderr, and the next login in the same process still works.

use apppw_tests::*;

#[test]
#[ignore = "needs root: mints with root's --db/--user and makes users (CI runs it)"]
fn a_panic_in_authenticate_is_contained() {
    let faulty = artifact_dir()
        .parent()
        .unwrap()
        .join("fault-injection/release/libpam_apppw.so");
    require(
        faulty.exists(),
        &format!(
            "{}, the fault-injection build of the module",
            faulty.display()
        ),
        "scripts/test.sh builds it (cargo build --release -p pam_apppw --features fault-injection --target-dir target/fault-injection)",
    );
    require_root("it mints with root's --db/--user and makes a user");
    ensure_user("apppw-alice");
    let w = World::new();
    let (_, code) = w.mint("apppw-alice", "Phone");
    std::fs::copy(&faulty, &w.module).unwrap();
    w.apppw_service("imap", "fault=panic");
    let login = w.login("imap", "apppw-alice", &code).run();
    assert_eq!(login.auth, PAM_SERVICE_ERR, "{}", login.log);
    assert!(
        login.log.contains("internal error (fault injected"),
        "{}",
        login.log
    );
    assert!(
        !login.stderr.contains("panicked"),
        "the panic reached stderr: {}",
        login.stderr
    );
    // The same build without the trigger works normally.
    w.apppw_service("imap", "");
    assert_eq!(
        w.login("imap", "apppw-alice", &code).run().auth,
        PAM_SUCCESS
    );
}

#[test]
#[ignore = "needs root: mints with root's --db/--user and makes users (CI runs it)"]
fn release_builds_do_not_know_the_fault_option() {
    require_root("it mints with root's --db/--user and makes a user");
    ensure_user("apppw-alice");
    let w = World::new();
    let (_, code) = w.mint("apppw-alice", "Phone");
    w.apppw_service("imap", "fault=panic");
    let login = w.login("imap", "apppw-alice", &code).run();
    assert_eq!(login.auth, PAM_SERVICE_ERR, "{}", login.log);
    assert!(login.log.contains("unknown option"), "{}", login.log);
}
