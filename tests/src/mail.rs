//! Real Dovecot (IMAP, POP3, SASL) and Postfix (submission with SMTP AUTH through Dovecot) started
//! from configuration in a temporary directory, on free loopback ports, with the repository's
//! example snippets included verbatim. Stopped when dropped.
#![forbid(unsafe_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::ensure_user;

/// The system user mail sessions run as (Dovecot's static userdb).
pub const MAIL_USER: &str = "apppw-mail";

pub struct MailServers {
    pub dir: tempfile::TempDir,
    pub imap: u16,
    pub pop3: u16,
    pub submission: u16,
    dovecot_conf: PathBuf,
    postfix_dir: PathBuf,
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/examples")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Runs a command to completion. Its output goes to /dev/null: a daemon it starts would keep
/// captured pipes open forever. Servers log to files in the test directory instead.
fn run(cmd: &mut Command) {
    let status = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(status.success(), "{cmd:?} failed: {status}");
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
    /// the examples have it), with packaging/examples/dovecot/auth-apppw.conf included.
    pub fn start() -> MailServers {
        let example = examples().join("dovecot/auth-apppw.conf");
        MailServers::start_with(&format!("!include {}", example.display()))
    }

    /// The same with `auth` in place of the example's authentication settings.
    pub fn start_with(auth: &str) -> MailServers {
        ensure_user(MAIL_USER);
        let dir = tempfile::Builder::new()
            .prefix("apppw-mail")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
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

        // Dovecot: listeners on our ports, mail as MAIL_USER, and the example passdb included.
        let home = d.join("home");
        std::fs::create_dir(&home).unwrap();
        run(Command::new("chown").arg(MAIL_USER).arg(&home));
        let dovecot_conf = d.join("dovecot.conf");
        let conf = format!(
            "base_dir = {d}/run\nstate_dir = {d}/state\nlog_path = {d}/dovecot.log\n\
             protocols = imap pop3\nlisten = 127.0.0.1\nssl = no\ndisable_plaintext_auth = no\n\
             auth_failure_delay = 0\nmail_location = maildir:~/Maildir\n\
             service imap-login {{\n  inet_listener imap {{\n    port = {imap}\n  }}\n  inet_listener imaps {{\n    port = 0\n  }}\n}}\n\
             service pop3-login {{\n  inet_listener pop3 {{\n    port = {pop3}\n  }}\n  inet_listener pop3s {{\n    port = 0\n  }}\n}}\n\
             service auth {{\n  unix_listener {p}/spool/private/auth {{\n    mode = 0660\n    user = postfix\n    group = postfix\n  }}\n}}\n\
             userdb {{\n  driver = static\n  args = uid={MAIL_USER} gid=nogroup home={home}/%u\n}}\n\
             {auth}\n",
            d = d.display(),
            p = postfix_dir.display(),
            home = home.display(),
        );
        std::fs::write(&dovecot_conf, conf).unwrap();
        run(Command::new("dovecot").arg("-c").arg(&dovecot_conf));
        for port in [imap, pop3, submission] {
            wait_for_port(port);
        }
        MailServers {
            dir,
            imap,
            pop3,
            submission,
            dovecot_conf,
            postfix_dir,
        }
    }

    /// The port of `protocol` (imap, pop3, smtp).
    pub fn port(&self, protocol: &str) -> u16 {
        match protocol {
            "imap" => self.imap,
            "pop3" => self.pop3,
            "smtp" => self.submission,
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
    let helper = Path::new(env!("CARGO_MANIFEST_DIR")).join("helpers/mail-client.py");
    let out = Command::new("/usr/bin/python3")
        .arg(helper)
        .args([
            "login",
            protocol,
            mechanism,
            &port.to_string(),
            user,
            password,
        ])
        .output()
        .expect("python3 runs");
    match out.status.code() {
        Some(0) => true,
        Some(1) => false,
        _ => panic!(
            "{protocol}/{mechanism} login errored: {} {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}
