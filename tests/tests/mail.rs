//! apppw behind real Dovecot (IMAP, POP3, ManageSieve, submission; 2.3 on Debian 12, 2.4 on
//! Debian 13 through scripts/debian13.sh) and Postfix (SMTP AUTH through Dovecot SASL), with real
//! client libraries, configured from packaging/examples. Installs
//! /etc/pam.d/{imap,pop3,sieve,submission,smtp} from the examples, so it runs as a system test.

use std::path::Path;

use apppw_tests::backend::Backend;
use apppw_tests::mail::{Dovecot, MailServers, lmtp_offers_auth, mail_login, mail_login_from};
use apppw_tests::system::{System, system};
use apppw_tests::*;

const ALICE: &str = "apppw-alice";
const BOB: &str = "apppw-bob";
const ALICE_UNIX_PASSWORD: &str = "alice's account password";

/// The PAM services of the examples: every protocol that authenticates, as Dovecot names them
/// (`args = %s` in 2.3, `service_name = %{protocol}` in 2.4); smtp is Postfix asking through
/// Dovecot SASL.
const SERVICES: [&str; 5] = ["imap", "pop3", "sieve", "submission", "smtp"];

struct Setup {
    _sys: System,
    world: World,
}

impl Drop for Setup {
    fn drop(&mut self) {
        for service in SERVICES {
            let _ = std::fs::remove_file(Path::new("/etc/pam.d").join(service));
        }
    }
}

/// Installs `example` as /etc/pam.d/{imap,pop3,sieve,submission,smtp}, pointing at this world's
/// module and store.
fn setup(example: &str) -> Setup {
    setup_on(example, Backend::Sqlite)
}

/// The same with the store on `backend` (PostgreSQL: found through a store.conf).
fn setup_on(example: &str, backend: Backend) -> Setup {
    let sys = system();
    for tool in ["/usr/sbin/dovecot", "/usr/sbin/postfix"] {
        assert!(
            Path::new(tool).exists(),
            "{tool} missing: scripts/packages.sh installs dovecot-imapd, dovecot-pop3d and postfix"
        );
    }
    ensure_user(ALICE);
    ensure_user(BOB);
    let world = World::on(backend);
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../packaging/examples/pam.d")
            .join(example),
    )
    .unwrap()
    .replace(
        "pam_apppw.so",
        &format!("{} {}", world.module.display(), world.store_option()),
    );
    for service in SERVICES {
        std::fs::write(Path::new("/etc/pam.d").join(service), &text).unwrap();
    }
    Setup { _sys: sys, world }
}

/// Dovecot's login cache on, for every database that uses it.
const CACHE_ON: &str = "auth_cache_size = 1M\nauth_cache_ttl = 1h\n";

/// The example's authentication settings with the login cache on: PAM's answers stay out of it
/// (2.3: no cache key; 2.4: `use_cache = no`).
fn cache_on_with_the_example(dovecot: Dovecot) -> String {
    format!("{CACHE_ON}!include {}\n", dovecot.auth_example().display())
}

/// Authentication settings that cache PAM's answers: on 2.3 with the cache key the example
/// documents for those who must (user, service and the client's address), on 2.4 as it caches
/// PAM whenever the cache is on (user and service).
fn caching_pam(dovecot: Dovecot) -> String {
    match dovecot {
        Dovecot::V2_3 => caching_pam_keyed("%u:%s:%r"),
        Dovecot::V2_4 => format!(
            "{CACHE_ON}auth_mechanisms = plain login\npassdb pam {{\n  service_name = %{{protocol}}\n}}\n"
        ),
    }
}

/// Dovecot 2.3's PAM passdb cached under `key`.
fn caching_pam_keyed(key: &str) -> String {
    format!(
        "{CACHE_ON}auth_mechanisms = plain login\npassdb {{\n  driver = pam\n  args = cache_key={key} %s\n}}\n"
    )
}

/// An apppw.conf in the world's directory whose revoke_hook flushes this Dovecot's auth cache,
/// as the shipped example does for the system's Dovecot.
fn hook_config(w: &World, servers: &MailServers) -> std::path::PathBuf {
    let conf = w.dir.path().join("apppw.conf");
    std::fs::write(
        &conf,
        format!(
            "revoke_hook = /usr/bin/doveadm -c {} auth cache flush %u\n",
            servers.dovecot_conf().display()
        ),
    )
    .unwrap();
    conf
}

/// Every way a mail client logs in: (protocol, mechanism).
const LOGINS: [(&str, &str); 8] = [
    ("imap", "login"),
    ("imap", "plain"),
    ("pop3", "user"),
    ("sieve", "plain"),
    ("submission", "plain"),
    ("submission", "login"),
    ("smtp", "plain"),
    ("smtp", "login"),
];

/// Alice mints a code with `limits` (apppw-ctl new's options); returns the code.
fn mint_limited(w: &World, label: &str, limits: &[&str]) -> String {
    let mut args = vec!["--user", ALICE, "--json", "new", label];
    args.extend(limits);
    let out = w.ctl(&args);
    assert_success(&out);
    serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["code"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The `n`th address a refused login comes from (127.0.1.1, 127.0.1.2, ...): one each, out of
/// reach of Dovecot 2.3's auth penalty, which answers repeated failures from one address ever
/// more slowly (up to 15 s) until Postfix gives up with a temporary error (454), which is not the
/// refusal under test. Successes come from 127.0.0.1, and 127.0.0.2 is "another network".
fn refusal_address(n: usize) -> String {
    format!("127.0.{}.{}", 1 + n / 250, n % 250 + 1)
}

/// The mechanism a test uses over `protocol` when any will do.
fn mechanism(protocol: &str) -> &'static str {
    if protocol == "pop3" { "user" } else { "plain" }
}

#[test]
#[ignore = "changes the host: installs a setuid apppw-ctl, /etc/pam.d and /var/lib/apppw (CI runs it)"]
fn a_fresh_code_logs_in_over_every_protocol() {
    let s = setup("mail-apppw-only");
    let servers = MailServers::start();
    let (_, code) = s.world.mint(ALICE, "Phone mail");
    for (protocol, mechanism) in LOGINS {
        assert!(
            mail_login(protocol, mechanism, servers.port(protocol), ALICE, &code),
            "{protocol}/{mechanism} refused a fresh code:\n{}",
            servers.dovecot_log()
        );
    }
    let listed: serde_json::Value =
        serde_json::from_slice(&s.world.ctl(&["--user", ALICE, "--json", "list"]).stdout).unwrap();
    assert_eq!(listed[0]["last_used"]["rhost"], "127.0.0.1");
    assert!(SERVICES.contains(&listed[0]["last_used"]["service"].as_str().unwrap()));
    // The account password is not an app password.
    set_unix_password(ALICE, ALICE_UNIX_PASSWORD);
    assert!(!mail_login(
        "imap",
        "login",
        servers.imap,
        ALICE,
        ALICE_UNIX_PASSWORD
    ));
}

#[test]
#[ignore = "changes the host: installs a setuid apppw-ctl, /etc/pam.d and /var/lib/apppw (CI runs it)"]
fn the_service_and_remote_host_of_each_protocol_reach_the_module() {
    let s = setup("mail-apppw-only");
    let servers = MailServers::start();
    for protocol in SERVICES {
        let (_, code) = s.world.mint(ALICE, &format!("Only {protocol}"));
        assert!(mail_login(
            protocol,
            mechanism(protocol),
            servers.port(protocol),
            ALICE,
            &code
        ));
    }
    let listed: serde_json::Value =
        serde_json::from_slice(&s.world.ctl(&["--user", ALICE, "--json", "list"]).stdout).unwrap();
    for (i, protocol) in SERVICES.iter().enumerate() {
        assert_eq!(listed[i]["last_used"]["service"], *protocol, "{listed}");
        assert_eq!(listed[i]["last_used"]["rhost"], "127.0.0.1");
    }
}

#[test]
#[ignore = "changes the host: installs a setuid apppw-ctl, /etc/pam.d and /var/lib/apppw (CI runs it)"]
fn wrong_foreign_revoked_expired_and_out_of_scope_codes_are_refused() {
    let s = setup("mail-apppw-only");
    let servers = MailServers::start();
    let w = &s.world;
    let (_, alices) = w.mint(ALICE, "Phone");
    let (_, bobs) = w.mint(BOB, "Phone");
    let (revoked_id, revoked) = w.mint(ALICE, "Old phone");
    assert_success(&w.ctl(&["--user", ALICE, "revoke", &revoked_id.to_string()]));
    let expiring = mint_limited(w, "Short", &["--expires", "1s"]);
    let imap_only = mint_limited(w, "IMAP only", &["--service", "imap"]);
    let elsewhere = mint_limited(w, "Other network", &["--from", "192.0.2.0/24"]);
    std::thread::sleep(std::time::Duration::from_secs(2));

    let mut wrong = alices.clone().into_bytes();
    wrong[0] = if wrong[0] == b'a' { b'b' } else { b'a' };
    let wrong = String::from_utf8(wrong).unwrap();
    for (n, (what, protocol, password)) in [
        ("a wrong code", "imap", wrong.as_str()),
        ("another user's code", "pop3", bobs.as_str()),
        ("a revoked code", "smtp", revoked.as_str()),
        ("an expired code", "imap", expiring.as_str()),
        ("a code for imap on smtp", "smtp", imap_only.as_str()),
        ("a code for another network", "imap", elsewhere.as_str()),
    ]
    .into_iter()
    .enumerate()
    {
        assert!(
            !mail_login_from(
                &refusal_address(n),
                protocol,
                mechanism(protocol),
                servers.port(protocol),
                ALICE,
                password
            ),
            "{what} was accepted"
        );
    }
    assert!(mail_login("imap", "plain", servers.imap, ALICE, &imap_only));
    assert!(mail_login(
        "smtp",
        "plain",
        servers.submission,
        ALICE,
        &alices
    ));
}

#[test]
#[ignore = "changes the host: installs a setuid apppw-ctl, /etc/pam.d and /var/lib/apppw (CI runs it)"]
fn a_burst_of_200_logins_from_8_clients_gets_every_answer_right() {
    let s = setup("mail-apppw-only");
    let servers = MailServers::start();
    let users = [ALICE, BOB];
    let codes: Vec<(String, String)> = users
        .iter()
        .flat_map(|u| (0..2).map(move |i| (u.to_string(), format!("Device {i}"))))
        .map(|(u, label)| {
            let (_, code) = s.world.mint(&u, &label);
            (u, code)
        })
        .collect();
    let mut cases = Vec::new();
    for i in 0..200 {
        let (user, code) = &codes[i % codes.len()];
        let (protocol, mechanism) = LOGINS[i % LOGINS.len()];
        let right = i % 4 != 0;
        // A wrong code: the right one with its last symbol changed to one it surely is not.
        let last = if code.ends_with('x') { 'y' } else { 'x' };
        let password = if right {
            code.clone()
        } else {
            format!("{}{last}", &code[..18])
        };
        let source = (!right).then(|| refusal_address(i));
        cases.push(serde_json::json!([
            protocol,
            mechanism,
            servers.port(protocol),
            user,
            password,
            right,
            source
        ]));
    }
    let file = s.world.dir.path().join("burst.json");
    std::fs::write(&file, serde_json::to_vec(&cases).unwrap()).unwrap();
    let out = std::process::Command::new("/usr/bin/python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("helpers/mail-client.py"))
        .arg("burst")
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{} {}", stdout(&out), stderr(&out));
    assert_eq!(stdout(&out).trim(), "200 right, 0 wrong");
}

#[test]
#[ignore = "changes the host: installs a setuid apppw-ctl, /etc/pam.d and /var/lib/apppw (CI runs it)"]
fn dovecots_auth_cache_keeps_a_revoked_code_until_flushed_or_the_hook_runs() {
    let s = setup("mail-apppw-only");
    // An administrator who caches PAM's answers against the example's advice.
    let servers = MailServers::start_with(&caching_pam(Dovecot::installed()));
    let w = &s.world;
    let (id, code) = w.mint(ALICE, "Cached");
    assert!(mail_login("imap", "plain", servers.imap, ALICE, &code));
    assert_success(&w.ctl(&["--user", ALICE, "revoke", &id.to_string()]));
    // What the documentation warns about: the cache still holds the success.
    assert!(
        mail_login("imap", "plain", servers.imap, ALICE, &code),
        "expected Dovecot's cache to answer"
    );
    servers.flush_auth_cache(ALICE);
    assert!(!mail_login("imap", "plain", servers.imap, ALICE, &code));

    // With revoke_hook, the revocation flushes the cache itself.
    let conf = hook_config(w, &servers);
    let (id, code) = w.mint(ALICE, "Hooked");
    assert!(mail_login("imap", "plain", servers.imap, ALICE, &code));
    let out = w.ctl(&[
        "--config",
        conf.to_str().unwrap(),
        "--user",
        ALICE,
        "revoke",
        &id.to_string(),
    ]);
    assert_success(&out);
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    assert!(
        !mail_login("imap", "plain", servers.imap, ALICE, &code),
        "the hook should have flushed the cache"
    );

    // A failing hook is reported and does not undo the revocation.
    std::fs::write(&conf, "revoke_hook = /bin/false %u\n").unwrap();
    let (id, _) = w.mint(ALICE, "Failing hook");
    let out = w.ctl(&[
        "--config",
        conf.to_str().unwrap(),
        "--user",
        ALICE,
        "revoke",
        &id.to_string(),
    ]);
    assert_success(&out);
    assert!(
        stderr(&out).contains("warning: the revocation is done, but revoke_hook"),
        "{}",
        stderr(&out)
    );
}

#[test]
#[ignore = "changes the host: installs a setuid apppw-ctl, /etc/pam.d and /var/lib/apppw (CI runs it)"]
fn lockdown_and_a_narrowing_edit_reach_dovecots_auth_cache_at_once() {
    let s = setup("mail-apppw-only");
    let servers = MailServers::start_with(&caching_pam(Dovecot::installed()));
    let w = &s.world;
    let conf = hook_config(w, &servers);
    let ctl = |args: &[&str]| {
        let mut all = vec!["--config", conf.to_str().unwrap()];
        all.extend_from_slice(args);
        let out = w.ctl(&all);
        assert_success(&out);
        assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
        out
    };

    // An edit that takes IMAP away from a code Dovecot has cached: refused over IMAP at once.
    let (id, phone) = w.mint(ALICE, "Phone");
    assert!(mail_login("imap", "plain", servers.imap, ALICE, &phone));
    ctl(&[
        "--user",
        ALICE,
        "edit",
        &id.to_string(),
        "--service",
        "pop3",
    ]);
    assert!(
        !mail_login("imap", "plain", servers.imap, ALICE, &phone),
        "the narrowing edit should have flushed the cache"
    );
    assert!(mail_login("pop3", "user", servers.pop3, ALICE, &phone));

    // Lockdown: every code refused right after it returns, and where each was used is shown.
    let (laptop_id, laptop) = w.mint(ALICE, "Laptop");
    let (_, tablet) = w.mint(ALICE, "Tablet");
    assert!(mail_login("imap", "plain", servers.imap, ALICE, &laptop));
    let smtp = servers.submission;
    assert!(mail_login("smtp", "plain", smtp, ALICE, &laptop));
    // The owner sees the same history.
    let history = stdout(&ctl(&[
        "--user",
        ALICE,
        "list",
        "--history",
        &laptop_id.to_string(),
    ]));
    assert!(
        history.contains("imap") && history.contains("smtp") && history.contains("127.0.0.1"),
        "{history}"
    );
    let out = ctl(&["--json", "lockdown", ALICE]);
    for (n, code) in [&phone, &laptop, &tablet].into_iter().enumerate() {
        let source = refusal_address(n);
        assert!(!mail_login_from(
            &source,
            "imap",
            "plain",
            servers.imap,
            ALICE,
            code
        ));
        assert!(!mail_login_from(
            &source,
            "pop3",
            "user",
            servers.pop3,
            ALICE,
            code
        ));
    }
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let revoked = report["revoked"].as_array().unwrap();
    assert_eq!(revoked.len(), 3, "{report}");
    let laptop_uses = &revoked.iter().find(|c| c["label"] == "Laptop").unwrap()["uses"];
    let mut services: Vec<&str> = laptop_uses
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["service"].as_str().unwrap())
        .collect();
    services.sort_unstable();
    assert_eq!(services, ["imap", "smtp"], "{report}");
    assert!(
        laptop_uses
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["rhost"] == "127.0.0.1" && u["count"] == 1),
        "{report}"
    );
    let tablet = revoked.iter().find(|c| c["label"] == "Tablet").unwrap();
    assert_eq!(tablet["uses"].as_array().unwrap().len(), 0, "{report}");
    // The text form says the same for people.
    let text = stdout(&w.ctl(&["--config", conf.to_str().unwrap(), "lockdown", ALICE]));
    assert!(
        text.contains("0 active app passwords revoked"),
        "a second lockdown finds nothing: {text}"
    );
}

#[test]
#[ignore = "changes the host: installs a setuid apppw-ctl, /etc/pam.d and /var/lib/apppw (CI runs it)"]
fn the_or_password_flavour_accepts_codes_and_the_account_password() {
    let s = setup("mail-apppw-or-password");
    let servers = MailServers::start();
    let (_, code) = s.world.mint(ALICE, "Phone");
    set_unix_password(ALICE, ALICE_UNIX_PASSWORD);
    assert!(mail_login("imap", "login", servers.imap, ALICE, &code));
    assert!(mail_login(
        "imap",
        "login",
        servers.imap,
        ALICE,
        ALICE_UNIX_PASSWORD
    ));
    assert!(mail_login(
        "smtp",
        "plain",
        servers.submission,
        ALICE,
        ALICE_UNIX_PASSWORD
    ));
    assert!(!mail_login(
        "pop3",
        "user",
        servers.pop3,
        ALICE,
        "neither of them"
    ));
}

#[test]
#[ignore = "changes the host: installs a setuid apppw-ctl, /etc/pam.d and /var/lib/apppw (CI runs it)"]
fn in_app_passwords_only_mode_no_protocol_accepts_the_account_password() {
    let s = setup("mail-apppw-only");
    let servers = MailServers::start();
    set_unix_password(ALICE, ALICE_UNIX_PASSWORD);
    let (_, code) = s.world.mint(ALICE, "Phone");

    // The side door: a protocol without a PAM file of its own falls back to /etc/pam.d/other,
    // which on Debian is the account password (common-auth). Before the examples named sieve
    // and submission, both let the account password in.
    let sieve_file = Path::new("/etc/pam.d/sieve");
    let installed = std::fs::read_to_string(sieve_file).unwrap();
    std::fs::remove_file(sieve_file).unwrap();
    assert!(
        mail_login("sieve", "plain", servers.sieve, ALICE, ALICE_UNIX_PASSWORD),
        "expected /etc/pam.d/other to accept the account password for a service without a file"
    );
    std::fs::write(sieve_file, installed).unwrap();

    // With a file for every protocol the examples name: the code everywhere, the account
    // password nowhere.
    for (n, (protocol, mechanism)) in LOGINS.into_iter().enumerate() {
        let port = servers.port(protocol);
        let source = refusal_address(n);
        assert!(
            !mail_login_from(
                &source,
                protocol,
                mechanism,
                port,
                ALICE,
                ALICE_UNIX_PASSWORD
            ),
            "{protocol}/{mechanism} accepted the account password:\n{}",
            servers.dovecot_log()
        );
        assert!(
            mail_login(protocol, mechanism, port, ALICE, &code),
            "{protocol}/{mechanism} refused the code"
        );
    }
    // LMTP delivers mail and authenticates nobody: no AUTH to fall through.
    assert!(
        !lmtp_offers_auth(servers.lmtp),
        "LMTP offers AUTH: it needs a PAM file too"
    );
}

#[test]
#[ignore = "changes the host: installs a setuid apppw-ctl, /etc/pam.d and /var/lib/apppw (CI runs it)"]
fn with_the_cache_on_the_example_keeps_from_expiry_and_revocation() {
    let s = setup("mail-apppw-only");
    let dovecot = Dovecot::installed();
    let servers = MailServers::start_with(&cache_on_with_the_example(dovecot));
    let w = &s.world;
    let printer = &mint_limited(
        w,
        "Office printer",
        &["--from", "127.0.0.1/32", "--expires", "4s"],
    );
    let (phone_id, phone) = w.mint(ALICE, "Phone");
    let minted = std::time::Instant::now();

    for _ in 0..2 {
        assert!(mail_login("imap", "plain", servers.imap, ALICE, printer));
        assert!(mail_login("imap", "plain", servers.imap, ALICE, &phone));
    }
    // The same user, service and code from another address: not the printer's network.
    assert!(
        !mail_login_from("127.0.0.2", "imap", "plain", servers.imap, ALICE, printer),
        "a cached success let a --from code in from another address ({dovecot:?})"
    );
    assert!(mail_login_from(
        "127.0.0.2",
        "imap",
        "plain",
        servers.imap,
        ALICE,
        &phone
    ));
    // Revoked: refused at once, with no hook and no flush.
    assert_success(&w.ctl(&["--user", ALICE, "revoke", &phone_id.to_string()]));
    assert!(!mail_login("imap", "plain", servers.imap, ALICE, &phone));
    // Expired: refused at once.
    std::thread::sleep(std::time::Duration::from_secs(5).saturating_sub(minted.elapsed()));
    assert!(
        !mail_login("imap", "plain", servers.imap, ALICE, printer),
        "an expired code was accepted ({dovecot:?})"
    );
}

#[test]
#[ignore = "changes the host: installs a setuid apppw-ctl, /etc/pam.d and /var/lib/apppw (CI runs it)"]
fn caching_pam_without_the_clients_address_in_the_key_loses_from_limits() {
    // Why the examples keep PAM out of the cache (and why 2.3's documented key has %r).
    let s = setup("mail-apppw-only");
    let dovecot = Dovecot::installed();
    let w = &s.world;
    let limited = |label: &str| mint_limited(w, label, &["--from", "127.0.0.1/32"]);
    let cached_then_elsewhere = |servers: &MailServers, code: &str| {
        assert!(mail_login("imap", "plain", servers.imap, ALICE, code));
        mail_login_from("127.0.0.2", "imap", "plain", servers.imap, ALICE, code)
    };
    match dovecot {
        Dovecot::V2_3 => {
            let servers = MailServers::start_with(&caching_pam_keyed("%u%s"));
            assert!(
                cached_then_elsewhere(&servers, &limited("Keyed by user and service")),
                "expected a key without %r to answer from the cache for any address"
            );
            drop(servers);
            let servers = MailServers::start_with(&caching_pam_keyed("%u:%s:%r"));
            assert!(
                !cached_then_elsewhere(&servers, &limited("Keyed with the address")),
                "the documented key let a --from code in from another address"
            );
        }
        Dovecot::V2_4 => {
            let servers = MailServers::start_with(&caching_pam(dovecot));
            assert!(
                cached_then_elsewhere(&servers, &limited("Cached by 2.4")),
                "expected Dovecot 2.4 to cache PAM by user and service: if it no longer does, \
                 the example's `use_cache = no` note is out of date"
            );
        }
    }
}

/// docs/INTEGRATION.md, step 3, on Dovecot 2.3: the stock passdb (`passdb { driver = pam }`,
/// service `dovecot`, in conf.d/auth-system.conf.ext) is commented out, or Dovecot would try it
/// first and accept the account password through /etc/pam.d/dovecot.
const COMMENT_OUT_THE_STOCK_PASSDB: &str = r"/^passdb {/,/^}/ s/^/#/";

#[test]
#[ignore = "changes the host: installs a setuid apppw-ctl, /etc/pam.d and /var/lib/apppw (CI runs it)"]
fn the_documented_edit_of_the_distributions_dovecot_config_leaves_one_pam_passdb() {
    // A copy of this distribution's own /etc/dovecot (Debian 12's 2.3, or Debian 13's 2.4 in
    // scripts/debian13.sh), edited as docs/INTEGRATION.md says, read back with doveconf. Root:
    // the stock configuration names key files only root may read.
    require_root("doveconf reads the stock configuration's root-only key files");
    let dovecot = Dovecot::installed();
    let copy = tempfile::tempdir().unwrap();
    let config = copy.path().join("dovecot");
    let status = std::process::Command::new("cp")
        .args(["-a", "/etc/dovecot"])
        .arg(&config)
        .status()
        .unwrap();
    assert!(status.success());
    let passdbs = |config: &Path| -> Vec<String> {
        let out = std::process::Command::new("doveconf")
            .arg("-c")
            .arg(config.join("dovecot.conf"))
            .arg("-n")
            .output()
            .unwrap();
        assert!(out.status.success(), "doveconf: {}", stderr(&out));
        // Each top-level passdb section, as one line.
        let text = stdout(&out);
        let mut sections = Vec::new();
        let mut current: Option<String> = None;
        for line in text.lines() {
            if line.starts_with("passdb") {
                current = Some(line.to_string());
            } else if let Some(section) = current.as_mut() {
                if line == "}" {
                    sections.push(current.take().unwrap());
                } else {
                    section.push_str(line.trim_start());
                    section.push(';');
                }
            }
        }
        assert!(
            text.lines().any(|l| l.starts_with("userdb")),
            "the edit lost the userdb:\n{text}"
        );
        sections
    };
    let example = dovecot.auth_example();
    std::fs::copy(&example, config.join("conf.d/99-apppw.conf")).unwrap();
    match dovecot {
        Dovecot::V2_3 => {
            // The example alone adds a second passdb behind the stock one: the trap.
            assert_eq!(
                passdbs(&config),
                ["passdb {driver = pam;", "passdb {args = %s;driver = pam;"],
                "expected the stock passdb before the example's"
            );
            let status = std::process::Command::new("sed")
                .args(["-i", COMMENT_OUT_THE_STOCK_PASSDB])
                .arg(config.join("conf.d/auth-system.conf.ext"))
                .status()
                .unwrap();
            assert!(status.success());
            assert_eq!(passdbs(&config), ["passdb {args = %s;driver = pam;"]);
        }
        // 2.4: passdb blocks with one name are one passdb; the example's settings win.
        Dovecot::V2_4 => assert_eq!(
            passdbs(&config),
            ["passdb pam {service_name = %{protocol};use_cache = no;"]
        ),
    }
}

/// Two mail hosts, each a real Dovecot with the shipped example and a host name of its own
/// (mx-a, mx-b), share one PostgreSQL store through store.conf: a code minted once logs in on
/// both at once, each use is recorded with the host that saw it, and a revocation is refused by
/// both at the next login, with no cache of the answer anywhere.
#[test]
#[ignore = "changes the host: installs a setuid apppw-ctl, /etc/pam.d and /var/lib/apppw (CI runs it)"]
fn two_mail_hosts_sharing_postgresql_see_the_same_codes_at_once() {
    let s = setup_on("mail-apppw-only", Backend::Postgres);
    let a = MailServers::start_as_host("mx-a");
    let b = MailServers::start_as_host("mx-b");
    let (id, code) = s.world.mint(ALICE, "Phone mail");
    for (host, servers) in [("mx-a", &a), ("mx-b", &b)] {
        assert!(
            mail_login("imap", "plain", servers.imap, ALICE, &code),
            "{host} refused a code minted a moment ago:\n{}",
            servers.dovecot_log()
        );
    }
    let out = s.world.ctl(&[
        "--user",
        ALICE,
        "--json",
        "list",
        "--history",
        &id.to_string(),
    ]);
    assert_success(&out);
    let uses: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut hosts: Vec<&str> = uses
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["host"].as_str().unwrap())
        .collect();
    hosts.sort_unstable();
    assert_eq!(hosts, ["mx-a", "mx-b"], "{uses}");
    assert_success(&s.world.ctl(&["--user", ALICE, "revoke", &id.to_string()]));
    for (host, servers) in [("mx-b", &b), ("mx-a", &a)] {
        assert!(
            !mail_login("imap", "plain", servers.imap, ALICE, &code),
            "{host} still accepts a revoked code"
        );
    }
    // A new code works on the other host at its first login.
    let (_, second) = s.world.mint(ALICE, "Laptop");
    assert!(mail_login("imap", "login", b.imap, ALICE, &second));
}

/// Dovecot runs PAM in auth worker processes that serve many logins each (100 with PAM, then
/// Dovecot replaces the worker: passdb pam's `max_requests`), and the module keeps one
/// PostgreSQL connection per process. 10,000 logins through Dovecot's own authentication
/// service, from 8 clients at once (more than the workers, so every worker stays busy), are all
/// accepted; the module's role never holds more sessions at once than Dovecot may
/// run workers, and opens one per worker it starts, not one per login.
#[test]
#[ignore = "changes the host: installs a setuid apppw-ctl, /etc/pam.d and /var/lib/apppw (CI runs it)"]
fn ten_thousand_logins_through_dovecot_keep_one_database_session_per_auth_worker() {
    const WORKERS: usize = 3;
    const LOGINS: usize = 10_000;
    // Dovecot's default for PAM (`max_requests` in 2.3's passdb args): a worker is replaced
    // after this many logins, and its successor connects anew.
    const LOGINS_PER_WORKER: usize = 100;
    let s = setup_on("mail-apppw-only", Backend::Postgres);
    let (_, code) = s.world.mint(ALICE, "Phone");
    let sessions = s.world.module_sessions();
    let before = sessions();
    let store = &s.world.postgres.as_ref().unwrap().0;
    let servers = MailServers::start_with(&format!(
        "!include {}\nservice auth-worker {{\n  process_limit = {WORKERS}\n}}\n",
        Dovecot::installed().auth_example().display()
    ));
    let done = std::sync::atomic::AtomicBool::new(false);
    let (out, most_at_once) = std::thread::scope(|scope| {
        // The module role's sessions, counted every 20 ms while the logins run.
        let sampler = scope.spawn(|| {
            let mut client = backend::superuser(store.server_ref(), "postgres");
            let mut most = 0_i64;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let now: i64 = client
                    .query_one(
                        "SELECT count(*) FROM pg_stat_activity WHERE usename = $1",
                        &[&backend::MAIL_ROLE.0],
                    )
                    .unwrap()
                    .get(0);
                most = most.max(now);
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            most
        });
        let out = std::process::Command::new("/usr/bin/python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("helpers/mail-client.py"))
            .arg("auth-burst")
            .arg(servers.dir.path().join("run/auth-client"))
            .args(["imap", ALICE, &code, &LOGINS.to_string(), "8"])
            .output()
            .unwrap();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        (out, sampler.join().unwrap())
    });
    // Every code accepted. A temporary failure (Dovecot aborting a request it had handed to an
    // auth worker that was exiting at its request limit, "Worker process died unexpectedly") is
    // retried by the client, as a mail client does; there can be at most one per worker replaced.
    let said = stdout(&out);
    let logins = u64::try_from(LOGINS).unwrap();
    let counts: Vec<u64> = said
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    assert!(
        matches!(counts.as_slice(), [accepted, 0, retried] if *accepted == logins && *retried <= logins / 100),
        "{said}\n{}\n{}",
        stderr(&out),
        servers.dovecot_log()
    );
    // One more than the workers at most: a replaced worker's session may still be listed for a
    // moment after its successor has connected.
    assert!(
        (1..=i64::try_from(WORKERS + 1).unwrap()).contains(&most_at_once),
        "{most_at_once} sessions at once through {WORKERS} auth workers"
    );
    // One per worker Dovecot started, with room for a few reconnections after a timeout under
    // load; a session per login would be 10,000.
    let opened = sessions() - before;
    assert!(
        opened <= LOGINS / LOGINS_PER_WORKER + WORKERS + 10,
        "{opened} database sessions for {LOGINS} logins:\n{}",
        store.server_log()
    );
    eprintln!(
        "{LOGINS} logins through Dovecot: at most {most_at_once} sessions at once, {opened} opened"
    );
}
