//! apppw-web's parts for the tests: the helper's session socket, served as systemd serves it
//! (`systemd-socket-activate --accept --inetd`: one `apppw-ctl web-session` per connection, the
//! connection as its stdin and stdout), and a client of the helper's line protocol.
#![forbid(unsafe_code)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::require;

/// The session socket with its activator, stopped when dropped.
pub struct HelperSocket {
    pub path: PathBuf,
    activator: Child,
}

impl HelperSocket {
    /// Listens on `dir`/session.sock and starts `ctl web-session` as root for each connection.
    /// The socket is left open to every user (mode 0666), so tests can show what the helper
    /// itself refuses; the shipped unit opens it to the front's account only.
    pub fn start(dir: &Path, ctl: &Path) -> HelperSocket {
        require(
            Path::new("/usr/bin/systemd-socket-activate").exists(),
            "/usr/bin/systemd-socket-activate",
            "scripts/packages.sh installs it (Debian: systemd)",
        );
        let path = dir.join("session.sock");
        let activator = Command::new("systemd-socket-activate")
            .args(["--accept", "--inetd", "--listen"])
            .arg(&path)
            .arg(ctl)
            .arg("web-session")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("start systemd-socket-activate");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !path.exists() {
            assert!(
                Instant::now() < deadline,
                "{} never appeared",
                path.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .unwrap();
        HelperSocket { path, activator }
    }

    pub fn connect(&self) -> HelperClient {
        HelperClient::connect(&self.path)
    }

    /// Signs in on a new session: the client and the helper's first reply.
    pub fn sign_in(&self, user: &str, password: &str, address: &str) -> (HelperClient, Value) {
        let mut client = self.connect();
        client.send(&json!({"sign_in": {"user": user, "password": password, "address": address}}));
        let reply = client.receive().expect("a reply to sign_in");
        (client, reply)
    }
}

impl Drop for HelperSocket {
    fn drop(&mut self) {
        let _ = self.activator.kill();
        let _ = self.activator.wait();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// One session's connection.
pub struct HelperClient {
    reader: BufReader<UnixStream>,
}

impl HelperClient {
    pub fn connect(path: &Path) -> HelperClient {
        let stream = UnixStream::connect(path)
            .unwrap_or_else(|e| panic!("connect to {}: {e}", path.display()));
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        HelperClient {
            reader: BufReader::new(stream),
        }
    }

    pub fn send(&mut self, message: &Value) {
        let mut line = serde_json::to_vec(message).unwrap();
        line.push(b'\n');
        self.reader.get_mut().write_all(&line).unwrap();
    }

    /// The next reply, or `None` once the helper has closed the session.
    pub fn receive(&mut self) -> Option<Value> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => None,
            Ok(_) => Some(serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))),
            Err(e) => panic!("reading the helper's reply: {e}"),
        }
    }

    /// Runs an apppw-ctl command in the session: the `done` or `failed` reply.
    pub fn run(&mut self, words: &[&str]) -> Value {
        self.send(&json!({ "run": words }));
        self.receive().expect("a reply to run")
    }

    /// `run`, which must succeed: its output.
    pub fn done(&mut self, words: &[&str]) -> Value {
        let reply = self.run(words);
        assert!(reply["done"].is_object(), "{words:?}: {reply}");
        reply["done"]["output"].clone()
    }
}
