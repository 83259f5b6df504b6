//! A panic inside the module becomes a refused login and a log line: the host process survives,
//! nothing is printed on its stderr, and the next login in the same process still works.

use apppw_tests::*;

#[test]
fn a_panic_in_authenticate_is_contained() {
    let faulty = artifact_dir()
        .parent()
        .unwrap()
        .join("fault-injection/release/libpam_apppw.so");
    if !require(
        faulty.exists(),
        "the fault-injection build of the module (scripts/test.sh makes it)",
    ) || !require(is_root(), "mints with root's --db/--user")
        || !require(
            pam_wrapper_library().is_some(),
            "libpam-wrapper is not installed",
        )
    {
        return;
    }
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
fn release_builds_do_not_know_the_fault_option() {
    if !require(is_root(), "mints with root's --db/--user")
        || !require(
            pam_wrapper_library().is_some(),
            "libpam-wrapper is not installed",
        )
    {
        return;
    }
    ensure_user("apppw-alice");
    let w = World::new();
    let (_, code) = w.mint("apppw-alice", "Phone");
    w.apppw_service("imap", "fault=panic");
    let login = w.login("imap", "apppw-alice", &code).run();
    assert_eq!(login.auth, PAM_SERVICE_ERR, "{}", login.log);
    assert!(login.log.contains("unknown option"), "{}", login.log);
}
