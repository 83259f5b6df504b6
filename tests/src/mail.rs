//! Real Dovecot (IMAP, POP3, ManageSieve, submission, LMTP, SASL) and Postfix (submission with SMTP
//! AUTH through Dovecot) started from configuration in a temporary directory, on free loopback
//! ports, with the repository's example snippets included verbatim. Stopped when dropped. The
//! same tests run on Debian 12 (Dovecot 2.3) and, through scripts/debian13.sh, on Debian 13
//! (Dovecot 2.4), whose configuration syntax differs: [`Dovecot`] says which one is here.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{ensure_user, free_port};

/// The system user mail sessions run as (Dovecot's static userdb).
pub const MAIL_USER: &str = "apppw-mail";

/// The installed Dovecot's configuration syntax: 2.4 renamed and restructured most settings and
/// refuses 2.3's files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dovecot {
    V2_3,
    V2_4,
}

impl Dovecot {
    /// From `dovecot --version` ("2.3.19.1 (9b53102964)", "2.4.1-4 (7d8c0e5759)").
    pub fn installed() -> Dovecot {
        let out = Command::new("dovecot")
            .arg("--version")
            .output()
            .expect("dovecot runs: scripts/packages.sh installs dovecot-core");
        let version = String::from_utf8_lossy(&out.stdout);
        if version.starts_with("2.3.") {
            Dovecot::V2_3
        } else if version.starts_with("2.4.") {
            Dovecot::V2_4
        } else {
            panic!("Dovecot {version:?}: the tests know the syntax of 2.3 and 2.4 only")
        }
    }

    /// The shipped example that makes this Dovecot authenticate through PAM, one service per
    /// protocol.
    pub fn auth_example(self) -> PathBuf {
        examples().join(match self {
            Dovecot::V2_3 => "dovecot/auth-apppw-2.3.conf",
            Dovecot::V2_4 => "dovecot/auth-apppw-2.4.conf",
        })
    }
}

pub struct MailServers {
    pub dir: tempfile::TempDir,
    pub imap: u16,
    pub pop3: u16,
    /// Postfix's submission service (SMTP AUTH through Dovecot SASL: PAM service `smtp`).
    pub submission: u16,
    /// Dovecot's own submission service (PAM service `submission`).
    pub dovecot_submission: u16,
    /// ManageSieve (PAM service `sieve`).
    pub sieve: u16,
    /// LMTP, which must offer no AUTH at all.
    pub lmtp: u16,
    pub dovecot: Dovecot,
    dovecot_conf: PathBuf,
    postfix_dir: PathBuf,
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/examples")
}

/// Runs a command to completion. Its output goes to an unnamed file, never a pipe: a daemon it
/// starts would keep captured pipes open forever. On failure the panic shows what it said (a
/// server that cannot start says why there, e.g. a port taken meanwhile). Servers log to files
/// in the test directory.
fn run(cmd: &mut Command) {
    use std::io::{Read, Seek};
    let mut said = tempfile::tempfile().expect("an unnamed file for a command's output");
    let status = cmd
        .stdin(Stdio::null())
        .stdout(said.try_clone().unwrap())
        .stderr(said.try_clone().unwrap())
        .status()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    if !status.success() {
        let mut text = String::new();
        said.rewind().unwrap();
        let _ = said.read_to_string(&mut text);
        panic!("{cmd:?} failed: {status}; it said:\n{text}");
    }
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on port {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl MailServers {
    /// Starts Postfix, then Dovecot (whose SASL socket lives in Postfix's queue directory, as
    /// the examples have it), with the example for its version (auth-apppw-2.3.conf or
    /// auth-apppw-2.4.conf) included.
    pub fn start() -> MailServers {
        let example = Dovecot::installed().auth_example();
        MailServers::start_with(&format!("!include {}", example.display()))
    }

    /// The example, with Dovecot (and so its auth workers, where pam_apppw runs) in a UTS
    /// namespace of its own whose host name is `hostname`: a second mail host of a fleet, as the
    /// module sees it (`uname -n`), on ports of its own.
    pub fn start_as_host(hostname: &str) -> MailServers {
        let example = Dovecot::installed().auth_example();
        MailServers::start_in(&format!("!include {}", example.display()), Some(hostname))
    }

    /// The same with `auth` in place of the example's authentication settings.
    pub fn start_with(auth: &str) -> MailServers {
        MailServers::start_in(auth, None)
    }

    fn start_in(auth: &str, hostname: Option<&str>) -> MailServers {
        ensure_user(MAIL_USER);
        let dir = crate::open_tempdir("apppw-mail");
        let d = dir.path();
        let (imap, pop3, submission) = (free_port(), free_port(), free_port());

        // Postfix: our main.cf and master.cf for an instance of its own, plus the example lines.
        let postfix_dir = d.join("postfix");
        std::fs::create_dir_all(postfix_dir.join("spool")).unwrap();
        let main_cf = format!(
            "compatibility_level = 3.6\nqueue_directory = {p}/spool\ndata_directory = {p}/data\n\
             mail_owner = postfix\nsetgid_group = postdrop\ninet_interfaces = 127.0.0.1\n\
             inet_protocols = ipv4\nmyhostname = apppw-test.localdomain\nmydestination =\n\
             maillog_file = {p}/postfix.log\nmaillog_file_prefixes = {p}\nsmtpd_tls_security_level = none\n\
             # packaging/examples/postfix/main.cf, verbatim:\n{example}",
            p = postfix_dir.display(),
            example = std::fs::read_to_string(examples().join("postfix/main.cf")).unwrap(),
        );
        std::fs::write(postfix_dir.join("main.cf"), main_cf).unwrap();
        // The example master.cf requires TLS, which a loopback test has no certificate for; the
        // same service without it:
        let master_cf = format!(
            "{submission} inet n - n - - smtpd\n  -o syslog_name=postfix/submission\n  -o smtpd_sasl_auth_enable=yes\n\
             \x20 -o smtpd_client_restrictions=permit_sasl_authenticated,reject\n\
             \x20 -o smtpd_relay_restrictions=permit_sasl_authenticated,reject\n\
             cleanup unix n - n - 0 cleanup\nqmgr unix n - n 300 1 qmgr\nrewrite unix - - n - - trivial-rewrite\n\
             bounce unix - - n - 0 bounce\ndefer unix - - n - 0 bounce\ntrace unix - - n - 0 bounce\n\
             verify unix - - n - 1 verify\nproxymap unix - - n - - proxymap\nsmtp unix - - n - - smtp\n\
             error unix - - n - - error\nretry unix - - n - - error\nanvil unix - - n - 1 anvil\n\
             scache unix - - n - 1 scache\npostlog unix-dgram n - n - 1 postlogd\n"
        );
        std::fs::write(postfix_dir.join("master.cf"), master_cf).unwrap();
        run(Command::new("postfix")
            .arg("-c")
            .arg(&postfix_dir)
            .arg("check"));
        run(Command::new("postfix")
            .arg("-c")
            .arg(&postfix_dir)
            .arg("start"));

        // Dovecot: listeners on our ports, mail as MAIL_USER, and `auth` (the example passdb).
        let home = d.join("home");
        std::fs::create_dir(&home).unwrap();
        run(Command::new("chown").arg(MAIL_USER).arg(&home));
        let dovecot = Dovecot::installed();
        let ports = DovecotPorts {
            imap,
            pop3,
            sieve: free_port(),
            submission: free_port(),
            lmtp: free_port(),
            relay: submission,
        };
        let dovecot_conf = d.join("dovecot.conf");
        let conf = dovecot_config(dovecot, d, &postfix_dir, &home, &ports, auth);
        std::fs::write(&dovecot_conf, conf).unwrap();
        match hostname {
            None => run(Command::new("dovecot").arg("-c").arg(&dovecot_conf)),
            Some(name) => run(Command::new("unshare")
                .args([
                    "--uts",
                    "--",
                    "sh",
                    "-c",
                    "hostname \"$0\" && exec dovecot -c \"$1\"",
                ])
                .arg(name)
                .arg(&dovecot_conf)),
        }
        for port in [
            imap,
            pop3,
            submission,
            ports.sieve,
            ports.submission,
            ports.lmtp,
        ] {
            wait_for_port(port);
        }
        MailServers {
            dir,
            imap,
            pop3,
            submission,
            dovecot_submission: ports.submission,
            sieve: ports.sieve,
            lmtp: ports.lmtp,
            dovecot,
            dovecot_conf,
            postfix_dir,
        }
    }

    /// The port of `protocol`, named as Dovecot names it to PAM (imap, pop3, sieve, submission;
    /// smtp for Postfix).
    pub fn port(&self, protocol: &str) -> u16 {
        match protocol {
            "imap" => self.imap,
            "pop3" => self.pop3,
            "smtp" => self.submission,
            "submission" => self.dovecot_submission,
            "sieve" => self.sieve,
            other => panic!("no server for {other}"),
        }
    }

    /// `doveadm auth cache flush USER`, as an administrator would after a revocation.
    pub fn flush_auth_cache(&self, user: &str) {
        run(Command::new("doveadm")
            .arg("-c")
            .arg(&self.dovecot_conf)
            .args(["auth", "cache", "flush", user]));
    }

    pub fn dovecot_conf(&self) -> &Path {
        &self.dovecot_conf
    }

    /// What Dovecot logged (for failure messages).
    pub fn dovecot_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }
}

/// Dovecot's own ports. Its submission service relays to Postfix, as on a real host (the relay
/// is only contacted once a client sends mail).
struct DovecotPorts {
    imap: u16,
    pop3: u16,
    sieve: u16,
    submission: u16,
    lmtp: u16,
    relay: u16,
}

/// A whole dovecot.conf in `version`'s syntax: every protocol Debian packages on our ports, no
/// TLS, logs in `dir`, mail as MAIL_USER under `home`, the SASL socket in Postfix's queue, and
/// `auth` for the authentication settings.
fn dovecot_config(
    version: Dovecot,
    dir: &Path,
    postfix_dir: &Path,
    home: &Path,
    ports: &DovecotPorts,
    auth: &str,
) -> String {
    let (d, p, home) = (dir.display(), postfix_dir.display(), home.display());
    let DovecotPorts {
        imap,
        pop3,
        sieve,
        submission,
        lmtp,
        relay,
    } = ports;
    // packaging/examples/dovecot/sasl-for-postfix.conf verbatim, but for where this Postfix's
    // queue is.
    let sasl = std::fs::read_to_string(examples().join("dovecot/sasl-for-postfix.conf"))
        .unwrap()
        .replace(
            "/var/spool/postfix/private/auth",
            &format!("{p}/spool/private/auth"),
        );
    assert!(sasl.contains(&format!("{p}/spool/private/auth")));
    // Identical in both versions.
    let listeners = format!(
        "service imap-login {{\n  inet_listener imap {{\n    port = {imap}\n  }}\n  inet_listener imaps {{\n    port = 0\n  }}\n}}\n\
         service pop3-login {{\n  inet_listener pop3 {{\n    port = {pop3}\n  }}\n  inet_listener pop3s {{\n    port = 0\n  }}\n}}\n\
         service managesieve-login {{\n  inet_listener sieve {{\n    port = {sieve}\n  }}\n}}\n\
         service submission-login {{\n  inet_listener submission {{\n    port = {submission}\n  }}\n  inet_listener submissions {{\n    port = 0\n  }}\n}}\n\
         service lmtp {{\n  inet_listener lmtp {{\n    port = {lmtp}\n  }}\n}}\n\
         {sasl}\n\
         submission_relay_host = 127.0.0.1\nsubmission_relay_port = {relay}\n"
    );
    let common = format!(
        "base_dir = {d}/run\nstate_dir = {d}/state\nlog_path = {d}/dovecot.log\n\
         protocols = imap pop3 sieve submission lmtp\nlisten = 127.0.0.1\nssl = no\nauth_failure_delay = 0\n"
    );
    match version {
        Dovecot::V2_3 => format!(
            "{common}disable_plaintext_auth = no\nmail_location = maildir:~/Maildir\n\
             userdb {{\n  driver = static\n  args = uid={MAIL_USER} gid=nogroup home={home}/%u\n}}\n\
             {listeners}{auth}\n"
        ),
        // 2.4 wants its config version first, and renamed what 2.3 called
        // disable_plaintext_auth and mail_location.
        Dovecot::V2_4 => format!(
            "dovecot_config_version = 2.4.1\ndovecot_storage_version = 2.4.1\n{common}\
             auth_allow_cleartext = yes\nmail_driver = maildir\nmail_path = ~/Maildir\n\
             userdb static {{\n  fields {{\n    uid = {MAIL_USER}\n    gid = nogroup\n    home = {home}/%{{user}}\n  }}\n}}\n\
             {listeners}{auth}\n"
        ),
    }
}

impl Drop for MailServers {
    fn drop(&mut self) {
        for cmd in [
            Command::new("doveadm")
                .arg("-c")
                .arg(&self.dovecot_conf)
                .arg("stop"),
            Command::new("postfix")
                .arg("-c")
                .arg(&self.postfix_dir)
                .arg("stop"),
        ] {
            let _ = cmd
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        // Let the masters exit before the directory goes.
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// One login with a real client library (tests/helpers/mail-client.py). True if accepted.
pub fn mail_login(protocol: &str, mechanism: &str, port: u16, user: &str, password: &str) -> bool {
    mail_client(&[
        "login",
        protocol,
        mechanism,
        &port.to_string(),
        user,
        password,
    ])
}

/// The same from another loopback address (say 127.0.0.2), which the server sees as the
/// client's address.
pub fn mail_login_from(
    source: &str,
    protocol: &str,
    mechanism: &str,
    port: u16,
    user: &str,
    password: &str,
) -> bool {
    mail_client(&[
        "login",
        "--from",
        source,
        protocol,
        mechanism,
        &port.to_string(),
        user,
        password,
    ])
}

/// Whether the LMTP server on `port` offers AUTH after LHLO.
pub fn lmtp_offers_auth(port: u16) -> bool {
    mail_client(&["offers-auth", &port.to_string()])
}

/// Runs tests/helpers/mail-client.py: exit 0 is yes, 1 is no, anything else an error.
fn mail_client(args: &[&str]) -> bool {
    let helper = Path::new(env!("CARGO_MANIFEST_DIR")).join("helpers/mail-client.py");
    let out = Command::new("/usr/bin/python3")
        .arg(helper)
        .args(args)
        .output()
        .expect("python3 runs");
    match out.status.code() {
        Some(0) => true,
        Some(1) => false,
        _ => panic!(
            "mail-client.py {} errored: {} {}",
            args[..args.len().min(4)].join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}
