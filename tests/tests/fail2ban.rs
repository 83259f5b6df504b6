//! The shipped fail2ban filter and jail against the lines pam_apppw really writes: logins through
//! the real libpam and a real /etc/pam.d service (no pam_wrapper, so pam_syslog formats them as on
//! a host), received on /dev/log, then read by fail2ban in both places a host keeps them: a file,
//! as rsyslog writes /var/log/auth.log, and the systemd journal, where Debian 12 and 13 (which
//! install no syslog daemon) keep them. The logins change /etc, so they run as a system test.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use apppw_tests::journal::{self, SyslogFields};
use apppw_tests::syslog::{Datagram, SyslogListener};
use apppw_tests::system::{self, system};
use apppw_tests::web;
use apppw_tests::*;

const SERVICE: &str = "apppw-f2b-test";
const ALICE: &str = "apppw-alice";
/// A label that tries to forge fields (issue 12): it must stay inside its own quoted value.
const FORGED: &str = r#"x" for user=root service=sshd rhost=203.0.113.66 id="1"#;
/// The host name the test gives its log lines, in the file and in the journal.
const HOST: &str = "testhost";
/// LOG_AUTH and LOG_AUTHPRIV: what Debian's rsyslog.conf writes to /var/log/auth.log
/// (`auth,authpriv.*`), and LOG_AUTHPRIV alone what the filter's journalmatch selects.
const AUTH: u32 = 4;
const AUTHPRIV: u32 = 10;
/// A failure another module logs under LOG_AUTHPRIV: the filter must leave it alone.
const PAM_UNIX_FAILURE: &str = "pam_unix(sshd:auth): authentication failure; logname= uid=0 \
                                euid=0 tty=ssh ruser= rhost=198.51.100.77  user=root";
/// How README.md and docs/INTEGRATION.md tell to read pam_apppw's lines from the journal; the
/// test runs it on its journal file, as [`JOURNALCTL_ARGS`].
const JOURNALCTL_DOCUMENTED: &str = r"journalctl SYSLOG_FACILITY=10 --grep '^pam_apppw\('";
const JOURNALCTL_ARGS: [&str; 3] = ["SYSLOG_FACILITY=10", "--grep", r"^pam_apppw\("];
/// The address of a pam_apppw-shaped failure logged under LOG_DAEMON: on a host it would not be
/// in auth.log, and the journal jail must not read it either.
const OTHER_FACILITY_RHOST: &str = "198.51.100.66";
/// The address of a pam_apppw failure that an unprivileged local user forges with logger(1),
/// under LOG_AUTHPRIV and with Dovecot's identifier, to have it banned (the administrator's,
/// say). Only journald's `_UID`, from the kernel, tells it from a real one.
const FORGED_RHOST: &str = "198.51.100.10";
/// The ports the shipped jail closes to a banned address: the mail protocols, not jail.conf's
/// default 0:65535, which would lock the address out of SSH too.
const JAIL_PORTS: &str = "imap,imaps,pop3,pop3s,submission,465,sieve,smtp";

/// A real login (no pam_wrapper) with the service file in /etc/pam.d: pam_authenticate's code,
/// and the pid of the process that logged, to tell its lines from others on /dev/log.
fn login(user: &str, password: &str, rhost: &str) -> (i32, u32) {
    let mut cmd = Command::new(artifact_dir().join("pam-client"));
    cmd.args([SERVICE, user, "--rhost", rhost]);
    let (out, pid) = run_with_stdin_noting_pid(cmd, password.as_bytes());
    let verdicts = verdicts(&stdout(&out));
    match verdicts.as_slice() {
        [first, ..] if first.step == Step::Authenticate => (first.code, pid),
        _ => panic!("no authenticate verdict: {verdicts:?} {}", stderr(&out)),
    }
}

/// A fail2ban configuration directory in `dir`: fail2ban's own files from /etc/fail2ban without
/// the jails the host enabled or its local changes, with the shipped filter and jail added.
fn fail2ban_config(dir: &Path) -> PathBuf {
    require(
        Path::new("/etc/fail2ban/jail.conf").exists(),
        "/etc/fail2ban/jail.conf",
        "scripts/packages.sh installs it (Debian: fail2ban)",
    );
    let conf = dir.join("fail2ban");
    let copy = Command::new("cp")
        .arg("-r")
        .arg("/etc/fail2ban")
        .arg(&conf)
        .output()
        .unwrap();
    assert_success(&copy);
    let find = Command::new("find")
        .arg(&conf)
        .args([
            "(",
            "-path",
            "*/jail.d/*",
            "-o",
            "-name",
            "*.local",
            ")",
            "-delete",
        ])
        .output()
        .unwrap();
    assert_success(&find);
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/fail2ban");
    for file in [
        "filter.d/apppw.conf",
        "filter.d/apppw-web.conf",
        "jail.d/apppw.conf",
    ] {
        std::fs::copy(shipped.join(file), conf.join(file)).unwrap();
    }
    conf
}

fn fail2ban_client(conf: &Path, arg: &str) -> Output {
    require(
        Path::new("/usr/bin/fail2ban-client").exists(),
        "/usr/bin/fail2ban-client",
        "scripts/packages.sh installs it (Debian: fail2ban)",
    );
    Command::new("fail2ban-client")
        .arg("--conf")
        .arg(conf)
        .arg(arg)
        .output()
        .unwrap()
}

/// What fail2ban-regex finds in `log` with the shipped filter: the address of each match.
fn fail2ban_regex(conf: &Path, log: &str, extra: &[&str]) -> Vec<String> {
    fail2ban_regex_with(conf, log, "apppw", extra)
}

/// The same with the shipped filter `filter`.
fn fail2ban_regex_with(conf: &Path, log: &str, filter: &str, extra: &[&str]) -> Vec<String> {
    let out = Command::new("fail2ban-regex")
        .arg("--config")
        .arg(conf)
        .args(["--out", "ip"])
        .args(extra)
        .arg(log)
        .arg(filter)
        .output()
        .unwrap();
    assert_success(&out);
    stdout(&out).lines().map(str::to_owned).collect()
}

/// The shipped jail reads the journal, with the filter's journalmatch, and passes fail2ban's own
/// configuration test whether or not /var/log/auth.log exists (Debian 12 and 13 install nothing
/// that writes it). A jail with that logpath makes fail2ban refuse to start there: "Have not
/// found any log file for apppw jail".
#[test]
fn the_shipped_jail_reads_authpriv_from_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let conf = fail2ban_config(dir.path());
    let test = fail2ban_client(&conf, "--test");
    assert_success(&test);
    let dump = fail2ban_client(&conf, "--dump");
    assert_success(&dump);
    let dump = stdout(&dump);
    // The mail jail, and the web page's, each with its own filter and ports.
    for (jail, jail_ports) in [("apppw", JAIL_PORTS), ("apppw-web", "http,https")] {
        let name = format!("'{jail}'");
        let commands: Vec<&str> = dump
            .lines()
            .filter(|l| l.contains(&name) && !l.contains("action"))
            .collect();
        for expected in [
            format!("['add', {name}, 'systemd']"),
            format!("['set', {name}, 'addjournalmatch', 'SYSLOG_FACILITY=10', '_UID=0']"),
        ] {
            assert!(commands.iter().any(|c| *c == expected), "{commands:#?}");
        }
        assert!(
            !commands.iter().any(|c| c.contains("logpath")),
            "{commands:#?}"
        );
        // The ban action's settings follow `addaction`, one per line, up to the next jail: its
        // port is the jail's.
        let action = dump
            .split_once(&format!("['set', {name}, 'addaction', "))
            .unwrap_or_else(|| panic!("no action for the jail {jail}: {dump}"))
            .1;
        let action = action.split("['add', ").next().unwrap_or_default();
        let ports: Vec<&str> = action
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("['port', "))
            .collect();
        assert_eq!(ports, [format!("['port', '{jail_ports}'],")], "{action}");
    }
}

#[test]
#[ignore = "changes the host: installs a setuid apppw-ctl, /etc/pam.d and /var/lib/apppw (CI runs it)"]
fn the_shipped_filter_matches_real_failures_and_only_them() {
    let _sys = system();
    require(
        Path::new("/usr/bin/fail2ban-regex").exists(),
        "/usr/bin/fail2ban-regex",
        "scripts/packages.sh installs it (Debian: fail2ban)",
    );
    let log = SyslogListener::start();
    ensure_user(ALICE);
    let w = World::new();
    let (_, code) = w.mint(ALICE, "Phone");
    let (_, scoped) = {
        let out = w.ctl(&[
            "--user",
            ALICE,
            "--json",
            "new",
            FORGED,
            "--from",
            "192.0.2.0/24",
        ]);
        assert_success(&out);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (
            v["id"].as_i64().unwrap(),
            v["code"].as_str().unwrap().to_string(),
        )
    };
    let service_file = Path::new("/etc/pam.d").join(SERVICE);
    std::fs::write(&service_file, w.apppw_service_text(&w.store, "")).unwrap();
    let (verdicts, logged): (Vec<i32>, Vec<u32>) = [
        login(ALICE, "0000 0000 0000 0000", "203.0.113.7"),
        login(ALICE, "not even a code", "203.0.113.7"),
        login("nobody-here", &code, "2001:db8::bad"),
        login(ALICE, &scoped, "198.51.100.9"),
        login(ALICE, &code, "192.0.2.10"),
        login(ALICE, &scoped, "192.0.2.11"),
    ]
    .into_iter()
    .unzip();
    std::fs::remove_file(&service_file).unwrap();
    assert_eq!(
        verdicts,
        [
            PAM_AUTH_ERR,
            PAM_AUTH_ERR,
            PAM_AUTH_ERR,
            PAM_AUTH_ERR,
            PAM_SUCCESS,
            PAM_SUCCESS
        ]
    );

    // What this test's processes sent, by the pid the kernel vouches for: on a shared machine
    // other programs may write to /dev/log while it is bound here.
    let ours_from = |senders: &[u32]| -> Vec<Datagram> {
        log.datagrams()
            .into_iter()
            .filter(|d| senders.contains(&d.pid.unsigned_abs()))
            .collect()
    };
    let ours: Vec<String> = ours_from(&logged).into_iter().map(|d| d.text).collect();
    assert_eq!(ours.len(), 6, "{ours:#?}");
    assert!(ours.iter().all(|l| l.contains("pam_apppw(")), "{ours:#?}");
    // Parsed strictly, the accepted line of the forged label has each field once, the label whole.
    let accepted = ours
        .iter()
        .find(|l| l.contains("accepted") && l.contains("192.0.2.11"))
        .unwrap();
    let message = accepted.split_once("): ").unwrap().1;
    let fields = log_fields(message);
    let keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        ["id", "label", "user", "service", "rhost"],
        "{message}"
    );
    assert_eq!(fields[1].1, FORGED);
    assert_eq!(fields[2].1, ALICE);
    assert_eq!(fields[4].1, "192.0.2.11");
    for line in &ours {
        let syslog = SyslogFields::parse(line);
        assert!(
            syslog.facility == Some(AUTHPRIV) && matches!(syslog.priority, 5 | 6),
            "LOG_AUTHPRIV notice/info expected: {line}"
        );
        assert!(
            syslog.timestamp.is_some() && syslog.raw.is_none(),
            "an RFC 3164 datagram expected: {line}"
        );
        assert!(
            syslog
                .message
                .starts_with(&format!("pam_apppw({SERVICE}:auth): ")),
            "{line}"
        );
    }

    // Three failures the journal jail must not count, logged with logger(1) as any program may
    // (--id gives them a [pid], as daemons that log with LOG_PID have): pam_unix's under
    // LOG_AUTHPRIV; pam_apppw's layout under LOG_DAEMON, which is neither in auth.log nor in the
    // journalmatch; and pam_apppw's layout under LOG_AUTHPRIV with Dovecot's identifier, forged
    // by alice, a real unprivileged user (setpriv execs logger as her, so the kernel reports her
    // uid with the datagram).
    let pam_apppw_shaped = |rhost: &str| {
        format!(
            "pam_apppw({SERVICE}:auth): authentication failure; logname= uid=0 euid=0 tty= \
             ruser= rhost={rhost}  user=\"{ALICE}\""
        )
    };
    let (other_facility, forged) = (
        pam_apppw_shaped(OTHER_FACILITY_RHOST),
        pam_apppw_shaped(FORGED_RHOST),
    );
    let mut senders = logged.clone();
    for (user, priority, tag, message) in [
        (None, "authpriv.notice", "sshd", PAM_UNIX_FAILURE),
        (None, "daemon.notice", "pam-client", other_facility.as_str()),
        (Some(ALICE), "authpriv.notice", "dovecot", forged.as_str()),
    ] {
        let mut cmd = as_user(user, Path::new("logger"));
        cmd.args(["--id=4242", "-p", priority, "-t", tag, message]);
        let (out, pid) = run_with_stdin_noting_pid(cmd, b"");
        assert_success(&out);
        senders.push(pid);
    }
    let datagrams = ours_from(&senders);
    assert_eq!(datagrams.len(), 9, "{datagrams:#?}");
    assert!(
        datagrams[6].text.ends_with(PAM_UNIX_FAILURE),
        "{datagrams:#?}"
    );
    assert!(
        datagrams[7].text.ends_with(&other_facility),
        "{datagrams:#?}"
    );
    let alice = nix::unistd::User::from_name(ALICE).unwrap().unwrap();
    assert!(
        datagrams[8].text.ends_with(&forged)
            && datagrams[8].uid == alice.uid.as_raw()
            && datagrams[8].uid != 0,
        "{datagrams:#?}"
    );
    assert!(datagrams[..8].iter().all(|d| d.uid == 0), "{datagrams:#?}");

    let conf = fail2ban_config(w.dir.path());
    let failures = [
        "203.0.113.7",
        "203.0.113.7",
        "2001:db8::bad",
        "198.51.100.9",
    ];
    // auth.log does not say who wrote a line: the file jail counts alice's forgery (which is why
    // the shipped jail reads the journal).
    let mut failures_and_forged = failures.to_vec();
    failures_and_forged.push(FORGED_RHOST);
    rsyslog_file_layout(&w, &conf, &datagrams, &failures_and_forged);
    journal_layout(&w, &conf, &datagrams, &failures, &ours);
}

/// On a host with rsyslog: the LOG_AUTH and LOG_AUTHPRIV datagrams in /var/log/auth.log, as
/// rsyslog writes them, "<PRI>Mmm dd hh:mm:ss tag: msg" -> "Mmm dd hh:mm:ss host tag: msg".
fn rsyslog_file_layout(w: &World, conf: &Path, datagrams: &[Datagram], failures: &[&str]) {
    let mut file = String::new();
    for d in datagrams {
        let syslog = SyslogFields::parse(&d.text);
        if !matches!(syslog.facility, Some(AUTH | AUTHPRIV)) {
            continue;
        }
        let stamp = syslog.timestamp.expect("an RFC 3164 timestamp");
        let rest = d.text.split_once(&stamp).unwrap().1;
        file.push_str(&format!("{stamp}{HOST} {rest}\n"));
    }
    let log_file = w.dir.path().join("auth.log");
    std::fs::write(&log_file, &file).unwrap();
    let ips = fail2ban_regex(conf, log_file.to_str().unwrap(), &[]);
    assert_eq!(ips, failures, "{file}");
}

/// On a host without a syslog daemon: each datagram as journald stores it, in a real journal
/// file, read by fail2ban's systemd backend with the filter's journalmatch, and by journalctl.
fn journal_layout(
    w: &World,
    conf: &Path,
    datagrams: &[Datagram],
    failures: &[&str],
    ours: &[String],
) {
    require(
        Path::new("/usr/lib/python3/dist-packages/systemd/journal.py").exists(),
        "python3's systemd.journal (fail2ban's systemd backend imports it)",
        "scripts/packages.sh installs it (Debian: python3-systemd)",
    );
    let boot_id = journal::boot_id();
    let entries: Vec<_> = datagrams
        .iter()
        .map(|d| journal::entry(d, HOST, &boot_id))
        .collect();
    let file = w.dir.path().join("host.journal");
    journal::write_journal(&file, &entries);
    let source = format!("systemd-journal[journalfiles=\"{}\"]", file.display());

    let ips = fail2ban_regex(conf, &source, &[]);
    assert_eq!(ips, failures, "{entries:#?}");
    // Without the journalmatch the LOG_DAEMON entry and alice's forgery are read too; with the
    // facility alone, the forgery: `_UID=0` is what keeps it out. logger(1) logged both after
    // the logins.
    let with = |extra: &[&'static str]| {
        let mut ips = failures.to_vec();
        ips.extend_from_slice(extra);
        ips
    };
    let ips = fail2ban_regex(conf, &source, &["--journalmatch", ""]);
    assert_eq!(
        ips,
        with(&[OTHER_FACILITY_RHOST, FORGED_RHOST]),
        "{entries:#?}"
    );
    let ips = fail2ban_regex(conf, &source, &["--journalmatch", "SYSLOG_FACILITY=10"]);
    assert_eq!(ips, with(&[FORGED_RHOST]), "{entries:#?}");
    // The filter's comment says how to admit a service that runs PAM as another user: as if
    // alice's uid were one, her line is read again, and the LOG_DAEMON one still is not.
    let filter = std::fs::read_to_string(conf.join("filter.d/apppw.conf")).unwrap();
    let documented = filter
        .lines()
        .find_map(|l| l.strip_prefix("#   journalmatch = "))
        .expect("the filter shows how to add a uid to its journalmatch");
    let alice = nix::unistd::User::from_name(ALICE).unwrap().unwrap().uid;
    let match_alice = documented.replace("<uid>", &alice.to_string());
    let ips = fail2ban_regex(conf, &source, &["--journalmatch", &match_alice]);
    assert_eq!(ips, with(&[FORGED_RHOST]), "{match_alice}: {entries:#?}");

    // The command the docs give shows pam_apppw's lines, and no other module's or facility's;
    // like any reader of the journal by facility and text, alice's forgery too (the docs say so).
    assert_eq!(
        JOURNALCTL_DOCUMENTED,
        format!(
            "journalctl {} {} '{}'",
            JOURNALCTL_ARGS[0], JOURNALCTL_ARGS[1], JOURNALCTL_ARGS[2]
        )
    );
    for doc in ["README.md", "docs/INTEGRATION.md"] {
        let text =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(doc))
                .unwrap();
        assert!(
            text.contains(JOURNALCTL_DOCUMENTED),
            "{doc} should show {JOURNALCTL_DOCUMENTED}"
        );
    }
    require(
        Path::new("/usr/bin/journalctl").exists(),
        "/usr/bin/journalctl",
        "scripts/packages.sh installs it (Debian: systemd, with systemd-journal-remote)",
    );
    let out = Command::new("journalctl")
        .arg("--file")
        .arg(&file)
        .args(JOURNALCTL_ARGS)
        .args(["--output", "cat"])
        .output()
        .unwrap();
    assert_success(&out);
    let forged = datagrams.iter().filter(|d| d.uid != 0).map(|d| &d.text);
    let messages: Vec<String> = ours
        .iter()
        .chain(forged)
        .map(|l| SyslogFields::parse(l).message)
        .collect();
    assert_eq!(stdout(&out).lines().collect::<Vec<_>>(), messages);
}

/// apppw-web's refused sign-ins, written by the root helper as the page's sign-in is refused,
/// are what the shipped apppw-web filter counts from the journal; the same line forged by a
/// local user with logger(1), and the helper's line for a sign-in that succeeded, are not.
#[test]
#[ignore = "changes the host: installs a setuid apppw-ctl, /etc/pam.d and /var/lib/apppw (CI runs it)"]
fn refused_web_sign_ins_are_counted_from_the_helpers_lines_only() {
    let _sys = system();
    let log = SyslogListener::start();
    ensure_user(ALICE);
    set_unix_password(ALICE, "Alice's f2b pw 1");
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/pam.d/apppw-web"),
    )
    .unwrap();
    let _stack = InstalledFile::write("/etc/pam.d/apppw-web", &shipped);
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let helper = web::HelperSocket::start(dir.path(), Path::new(system::INSTALLED_CTL));
    for (password, address) in [
        ("wrong", "203.0.113.21"),
        ("Alice's f2b pw 1", "203.0.113.22"),
        ("wrong again", "2001:db8::21"),
    ] {
        let (_, reply) = helper.sign_in(ALICE, password, address);
        assert!(
            reply.get("refused").is_some() || reply.get("signed_in").is_some(),
            "{reply}"
        );
    }
    let forged = format!(
        "apppw-web(apppw-web:auth): authentication failure; logname= uid=0 euid=0 tty= ruser= rhost={FORGED_RHOST}  user={ALICE}"
    );
    let mut cmd = as_user(Some(ALICE), Path::new("logger"));
    cmd.args([
        "--id=4242",
        "-p",
        "authpriv.notice",
        "-t",
        "apppw-web",
        &forged,
    ]);
    assert_success(&run_with_stdin(cmd, b""));

    let datagrams: Vec<Datagram> = log
        .datagrams()
        .into_iter()
        .filter(|d| d.text.contains("apppw-web"))
        .collect();
    assert!(
        datagrams
            .iter()
            .any(|d| d.uid != 0 && d.text.ends_with(&forged)),
        "{datagrams:#?}"
    );
    let conf = fail2ban_config(dir.path());
    let boot_id = journal::boot_id();
    let entries: Vec<_> = datagrams
        .iter()
        .map(|d| journal::entry(d, HOST, &boot_id))
        .collect();
    let file = dir.path().join("host.journal");
    journal::write_journal(&file, &entries);
    let source = format!("systemd-journal[journalfiles=\"{}\"]", file.display());
    assert_eq!(
        fail2ban_regex_with(&conf, &source, "apppw-web", &[]),
        ["203.0.113.21", "2001:db8::21"],
        "{entries:#?}"
    );
    // Without the filter's journalmatch the forgery is counted: `_UID=0` keeps it out.
    assert_eq!(
        fail2ban_regex_with(&conf, &source, "apppw-web", &["--journalmatch", ""]),
        ["203.0.113.21", "2001:db8::21", FORGED_RHOST],
    );
    // The mail jail's filter counts none of the page's lines.
    assert!(fail2ban_regex(&conf, &source, &[]).is_empty());
}
