//! The shipped fail2ban filter matches the lines pam_apppw really writes: logins through the real
//! libpam and a real /etc/pam.d service (no pam_wrapper, so pam_syslog formats them as on a host),
//! received on /dev/log, then read by fail2ban-regex. Changes /etc, so it runs as a system test.
//! The shipped jail is checked with fail2ban's own configuration test.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use apppw_tests::syslog::SyslogListener;
use apppw_tests::system::system;
use apppw_tests::*;

const SERVICE: &str = "apppw-f2b-test";
const ALICE: &str = "apppw-alice";
/// A label that tries to forge fields (issue 12): it must stay inside its own quoted value.
const FORGED: &str = r#"x" for user=root service=sshd rhost=203.0.113.66 id="1"#;

/// A real login (no pam_wrapper) with the service file in /etc/pam.d.
fn login(user: &str, password: &str, rhost: &str) -> i32 {
    let mut cmd = Command::new(artifact_dir().join("pam-client"));
    cmd.args([SERVICE, user, "--rhost", rhost]);
    let out = run_with_stdin(cmd, password.as_bytes());
    let verdicts = verdicts(&stdout(&out));
    match verdicts.as_slice() {
        [first, ..] if first.step == Step::Authenticate => first.code,
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
    for file in ["filter.d/apppw.conf", "jail.d/apppw.conf"] {
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
    let commands: Vec<String> = stdout(&dump)
        .lines()
        .filter(|l| l.contains("'apppw'") && !l.contains("action"))
        .map(str::to_owned)
        .collect();
    for expected in [
        "['add', 'apppw', 'systemd']",
        "['set', 'apppw', 'addjournalmatch', 'SYSLOG_FACILITY=10']",
    ] {
        assert!(commands.iter().any(|c| c == expected), "{commands:#?}");
    }
    assert!(
        !commands.iter().any(|c| c.contains("logpath")),
        "{commands:#?}"
    );
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
    let verdicts = [
        login(ALICE, "0000 0000 0000 0000", "203.0.113.7"),
        login(ALICE, "not even a code", "203.0.113.7"),
        login("nobody-here", &code, "2001:db8::bad"),
        login(ALICE, &scoped, "198.51.100.9"),
        login(ALICE, &code, "192.0.2.10"),
        login(ALICE, &scoped, "192.0.2.11"),
    ];
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

    // As a syslog daemon would write them: "<PRI>Mmm dd hh:mm:ss tag: msg" -> "Mmm dd hh:mm:ss host tag: msg".
    let ours: Vec<String> = log
        .lines()
        .into_iter()
        .filter(|l| l.contains("pam_apppw("))
        .collect();
    assert_eq!(ours.len(), 6, "{ours:#?}");
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
    let mut file = String::new();
    for line in &ours {
        let (pri, rest) = line.split_once('>').unwrap();
        assert!(
            pri == "<85" || pri == "<86",
            "LOG_AUTHPRIV notice/info expected: {line}"
        );
        let (stamp, message) = rest.split_at(15);
        assert!(
            message.contains(&format!("pam_apppw({SERVICE}:auth): ")),
            "{line}"
        );
        file.push_str(&format!("{stamp} testhost{message}\n"));
    }
    let log_file = w.dir.path().join("auth.log");
    std::fs::write(&log_file, &file).unwrap();

    let filter =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/fail2ban/filter.d/apppw.conf");
    std::fs::copy(&filter, "/etc/fail2ban/filter.d/apppw.conf").unwrap();
    let out = Command::new("fail2ban-regex")
        .args(["--out", "ip"])
        .arg(&log_file)
        .arg("apppw")
        .output()
        .unwrap();
    std::fs::remove_file("/etc/fail2ban/filter.d/apppw.conf").unwrap();
    let ips: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        ips,
        [
            "203.0.113.7",
            "203.0.113.7",
            "2001:db8::bad",
            "198.51.100.9"
        ],
        "{file}"
    );
}
