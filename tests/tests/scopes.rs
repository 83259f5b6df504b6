//! Per-code limits through the real libpam: services, networks (IPv4, IPv6, IPv4-mapped,
//! malformed PAM_RHOST) and expiry (with the login process's clock moved by libfaketime), and the
//! log lines that tell users why a right code was refused.

use apppw_tests::backend::Backend;
use apppw_tests::*;

on_both_backends!(needs_root: a_code_scoped_to_services_works_only_there, a_code_scoped_to_networks_checks_pam_rhost, an_expired_code_stops_working_at_its_moment, the_policy_retires_unused_codes_and_caps_lifetimes, editing_narrows_at_once_and_widening_respects_the_policy, log_lines_name_the_code_never_contain_it_and_stay_on_one_line);

const ALICE: &str = "apppw-alice";

fn world(backend: Backend) -> World {
    require_root("scope tests mint codes with root's --db/--user and make users");
    ensure_user(ALICE);
    let w = World::on(backend);
    for service in ["imap", "pop3", "smtp"] {
        w.apppw_service(service, "");
    }
    w
}

/// Mints with limits and returns the code.
fn mint_limited(w: &World, label: &str, limits: &[&str]) -> String {
    let mut args = vec!["--user", ALICE, "--json", "new", label];
    args.extend(limits);
    let out = w.ctl(&args);
    assert_success(&out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["code"].as_str().unwrap().to_string()
}

fn a_code_scoped_to_services_works_only_there(backend: Backend) {
    let w = world(backend);
    let code = mint_limited(&w, "Mail only", &["--service", "imap", "--service", "smtp"]);
    assert_eq!(w.login("imap", ALICE, &code).run().auth, PAM_SUCCESS);
    assert_eq!(w.login("smtp", ALICE, &code).run().auth, PAM_SUCCESS);
    let refused = w.login("pop3", ALICE, &code).from("192.0.2.1").run();
    assert_eq!(refused.auth, PAM_AUTH_ERR);
    assert!(
        refused.log.contains("rhost=192.0.2.1  user=\"apppw-alice\" (app password id=1 label=\"Mail only\" not valid for this service)"),
        "{}",
        refused.log
    );
}

fn a_code_scoped_to_networks_checks_pam_rhost(backend: Backend) {
    let w = world(backend);
    let code = mint_limited(
        &w,
        "Office",
        &["--from", "192.0.2.0/24", "--from", "2001:db8::/48"],
    );
    for (rhost, admitted) in [
        (Some("192.0.2.77"), true),
        (Some("2001:db8:0:1::25"), true),
        (Some("::ffff:192.0.2.77"), true),
        (Some("198.51.100.1"), false),
        (Some("2001:db9::1"), false),
        (Some("::ffff:198.51.100.1"), false),
        (Some("mail.example.org"), false),
        (Some("192.0.2.77 extra"), false),
        (Some("192.0.2"), false),
        (Some(""), false),
        (None, false),
    ] {
        let attempt = w.login("imap", ALICE, &code);
        let login = match rhost {
            Some(rhost) => attempt.from(rhost),
            None => attempt,
        }
        .run();
        let expected = if admitted { PAM_SUCCESS } else { PAM_AUTH_ERR };
        assert_eq!(login.auth, expected, "{rhost:?}: {}", login.log);
        if !admitted {
            assert!(
                login.log.contains("used from outside its networks"),
                "{rhost:?}: {}",
                login.log
            );
        }
    }
}

fn an_expired_code_stops_working_at_its_moment(backend: Backend) {
    let w = world(backend);
    let code = mint_limited(&w, "Trip", &["--expires", "30d"]);
    assert_eq!(
        w.login("imap", ALICE, &code).at_offset("+29d").run().auth,
        PAM_SUCCESS
    );
    let expired = w.login("imap", ALICE, &code).at_offset("+31d").run();
    assert_eq!(expired.auth, PAM_AUTH_ERR);
    assert!(
        expired.log.contains("label=\"Trip\" expired)"),
        "{}",
        expired.log
    );
    // The clock really moved in the module: a code without expiry still works then.
    let plain = mint_limited(&w, "Plain", &[]);
    assert_eq!(
        w.login("imap", ALICE, &plain).at_offset("+31d").run().auth,
        PAM_SUCCESS
    );
}

fn the_policy_retires_unused_codes_and_caps_lifetimes(backend: Backend) {
    let w = world(backend);
    let conf = w.dir.path().join("apppw.conf");
    std::fs::write(
        &conf,
        "expire_unused = 10d\nmax_lifetime = 60d\nallowed_services = imap smtp\n",
    )
    .unwrap();
    for service in ["imap", "pop3"] {
        w.apppw_service(service, &format!("conf={}", conf.display()));
    }
    let conf_arg = conf.to_str().unwrap();
    let out = w.ctl(&[
        "--config",
        conf_arg,
        "--user",
        ALICE,
        "new",
        "Too long",
        "--expires",
        "90d",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("at most 60 days"), "{}", stderr(&out));
    let out = w.ctl(&[
        "--config",
        conf_arg,
        "--user",
        ALICE,
        "new",
        "Pop",
        "--service",
        "pop3",
    ]);
    assert!(
        stderr(&out).contains("does not allow app passwords for the service \"pop3\""),
        "{}",
        stderr(&out)
    );
    let out = w.ctl(&[
        "--config", conf_arg, "--user", ALICE, "--json", "new", "Capped",
    ]);
    assert_success(&out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["code"].is_string());
    let code = v["code"].as_str().unwrap();
    let listed: serde_json::Value =
        serde_json::from_slice(&w.ctl(&["--user", ALICE, "--json", "list"]).stdout).unwrap();
    assert!(
        listed[0]["expires"].is_string(),
        "max_lifetime gives every new code an expiry"
    );

    assert_eq!(
        w.login("imap", ALICE, code).at_offset("+9d").run().auth,
        PAM_SUCCESS
    );
    // Last used at +9d: still fine at +18d, retired at +30d.
    assert_eq!(
        w.login("imap", ALICE, code).at_offset("+18d").run().auth,
        PAM_SUCCESS
    );
    let unused = w.login("imap", ALICE, code).at_offset("+30d").run();
    assert_eq!(unused.auth, PAM_AUTH_ERR);
    assert!(
        unused.log.contains("expired after going unused too long"),
        "{}",
        unused.log
    );
    let closed = w.login("pop3", ALICE, code).run();
    assert_eq!(closed.auth, PAM_AUTH_ERR);
    assert!(
        closed
            .log
            .contains("not allowed for this service by the site policy"),
        "{}",
        closed.log
    );
}

fn editing_narrows_at_once_and_widening_respects_the_policy(backend: Backend) {
    let w = world(backend);
    let code = mint_limited(&w, "Phone", &[]);
    assert_eq!(w.login("pop3", ALICE, &code).run().auth, PAM_SUCCESS);
    assert_success(&w.ctl(&["--user", ALICE, "edit", "Phone", "--service", "imap"]));
    assert_eq!(w.login("pop3", ALICE, &code).run().auth, PAM_AUTH_ERR);
    assert_eq!(w.login("imap", ALICE, &code).run().auth, PAM_SUCCESS);
    assert_success(&w.ctl(&[
        "--user",
        ALICE,
        "edit",
        "Phone",
        "--from",
        "203.0.113.0/24",
        "--label",
        "Phone (office)",
    ]));
    assert_eq!(
        w.login("imap", ALICE, &code).from("192.0.2.1").run().auth,
        PAM_AUTH_ERR
    );
    assert_success(&w.ctl(&[
        "--user",
        ALICE,
        "edit",
        "Phone (office)",
        "--any-network",
        "--any-service",
    ]));
    assert_eq!(
        w.login("pop3", ALICE, &code).from("192.0.2.1").run().auth,
        PAM_SUCCESS
    );
    let out = w.ctl(&[
        "--user",
        ALICE,
        "edit",
        "Phone (office)",
        "--service",
        "imap",
        "--any-service",
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "conflicting flags are a usage error"
    );
    let out = w.ctl(&["--user", ALICE, "edit", "99", "--service", "imap"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no active app password with id 99"));
}

fn log_lines_name_the_code_never_contain_it_and_stay_on_one_line(backend: Backend) {
    let w = world(backend);
    let code = mint_limited(&w, "Phone", &["--service", "imap"]);
    let compact: String = code.split_whitespace().collect();
    w.apppw_service("imap", "debug");
    let ok = w.login("imap", ALICE, &code).from("192.0.2.5").run();
    assert!(ok.log.contains("accepted app password id=1 label=\"Phone\" for user=\"apppw-alice\" service=\"imap\" rhost=\"192.0.2.5\""), "{}", ok.log);
    let hostile_rhost = "192.0.2.5\nFAKE LINE rhost=203.0.113.9";
    let wrong = w
        .login("imap", "alice\nforged", b"0000 0000 0000 0000")
        .from(hostile_rhost)
        .run();
    assert_eq!(wrong.auth, PAM_AUTH_ERR);
    let failure = wrong
        .log
        .lines()
        .find(|l| l.contains("authentication failure;"))
        .unwrap();
    assert!(
        failure.contains(
            "rhost=192.0.2.5\\u{a}FAKE_LINE_rhost_203.0.113.9  user=\"alice\\u{a}forged\""
        ),
        "{failure}"
    );
    assert_eq!(
        wrong.log.lines().filter(|l| l.contains("FAKE")).count(),
        2,
        "one failure line and one debug line, no forged line: {}",
        wrong.log
    );
    assert!(
        wrong
            .log
            .contains("refused: no active app password of the user matches"),
        "{}",
        wrong.log
    );
    for login in [&ok, &wrong] {
        assert!(
            !login.log.contains(&compact[..8]) && !login.log.contains(&code[..9]),
            "{}",
            login.log
        );
    }
}
