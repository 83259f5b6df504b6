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
        // The helpers' stderr (what the unit sends to the journal) goes to a file beside it.
        let log = std::fs::File::create(dir.join("helper.log")).unwrap();
        let activator = Command::new("systemd-socket-activate")
            .args(["--accept", "--inetd", "--listen"])
            .arg(&path)
            .arg(ctl)
            .arg("web-session")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start systemd-socket-activate");
        wait_for(&path);
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .unwrap();
        HelperSocket { path, activator }
    }

    pub fn connect(&self) -> HelperClient {
        HelperClient::connect(&self.path)
    }

    /// The activator's process id: the helpers it started are its children.
    pub fn activator_pid(&self) -> u32 {
        self.activator.id()
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

/// The web tests' users: signed in as on a host, with Unix passwords.
pub const ALICE: &str = "web-alice";
pub const BOB: &str = "web-bob";
pub const ALICE_PASSWORD: &str = "Alice's web pw 1";
pub const BOB_PASSWORD: &str = "Bob's web pw 1";

/// Makes the two users, sets their passwords, and revokes whatever codes earlier tests left them.
pub fn web_users(sys: &crate::system::System) {
    crate::ensure_user(ALICE);
    crate::ensure_user(BOB);
    crate::set_unix_password(ALICE, ALICE_PASSWORD);
    crate::set_unix_password(BOB, BOB_PASSWORD);
    for user in [ALICE, BOB] {
        // Fails harmlessly when there is nothing to revoke.
        let _ = sys.root(&["--user", user, "revoke", "--all"]);
    }
}

/// The whole page as a site runs it: the helper's socket (root:apppw-web 0660, as the shipped
/// unit makes it), the front as the apppw-web account, and nginx with the shipped example and a
/// certificate made here for `mail.test`, on a free loopback port. Stopped when dropped.
pub struct WebStack {
    pub dir: tempfile::TempDir,
    pub helper: HelperSocket,
    front: Child,
    nginx: Child,
    pub port: u16,
    /// `https://mail.test:PORT`, as browsers send it in Origin.
    pub origin: String,
    /// The certificate, which curl takes as its own CA.
    pub certificate: PathBuf,
}

/// The front's account.
pub const FRONT_ACCOUNT: &str = "apppw-web";
/// The site's name in the test certificate and web.conf.
pub const SITE: &str = "mail.test";

impl WebStack {
    /// Starts it all; `extra_conf` is added to web.conf (say, the IMAP and SMTP servers).
    pub fn start(ctl: &Path, extra_conf: &str) -> WebStack {
        for (program, package) in [
            ("/usr/sbin/nginx", "nginx"),
            ("/usr/bin/openssl", "openssl"),
            ("/usr/bin/curl", "curl"),
        ] {
            require(
                Path::new(program).exists(),
                program,
                &format!("scripts/packages.sh installs it (Debian: {package})"),
            );
        }
        crate::ensure_system_user(FRONT_ACCOUNT);
        let dir = crate::open_tempdir("apppw-web");
        let helper = HelperSocket::start(dir.path(), ctl);
        let front_account = nix::unistd::User::from_name(FRONT_ACCOUNT)
            .unwrap()
            .unwrap();
        nix::unistd::chown(
            &helper.path,
            Some(nix::unistd::Uid::from_raw(0)),
            Some(front_account.gid),
        )
        .unwrap();
        std::fs::set_permissions(
            &helper.path,
            std::os::unix::fs::PermissionsExt::from_mode(0o660),
        )
        .unwrap();

        let port = crate::free_port();
        let origin = format!("https://{SITE}:{port}");
        let front_dir = dir.path().join("front");
        std::fs::create_dir(&front_dir).unwrap();
        nix::unistd::chown(&front_dir, Some(front_account.uid), Some(front_account.gid)).unwrap();
        let listen = front_dir.join("http.sock");
        let conf = dir.path().join("web.conf");
        std::fs::write(
            &conf,
            format!(
                "origin = {origin}\nlisten = {}\nhelper = {}\nsite_name = Test Mail\n{extra_conf}",
                listen.display(),
                helper.path.display()
            ),
        )
        .unwrap();
        let front_log = std::fs::File::create(dir.path().join("front.log")).unwrap();
        let front = Command::new("setpriv")
            .arg(format!("--reuid={FRONT_ACCOUNT}"))
            .arg(format!("--regid={FRONT_ACCOUNT}"))
            .arg("--clear-groups")
            .arg("--")
            .arg(crate::artifact_dir().join("apppw-web"))
            .arg("--config")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(front_log.try_clone().unwrap())
            .stderr(front_log)
            .spawn()
            .expect("start apppw-web");
        wait_for(&listen);

        let certificate = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        let out = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
            ])
            .arg(format!("/CN={SITE}"))
            .arg("-addext")
            .arg(format!("subjectAltName=DNS:{SITE}"))
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&certificate)
            .output()
            .unwrap();
        crate::assert_success(&out);
        let example = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../packaging/examples/nginx/apppw-web.conf"),
        )
        .unwrap();
        let server = example
            .replace("listen 443 ssl;", &format!("listen 127.0.0.1:{port} ssl;"))
            .replace("listen [::]:443 ssl;", "")
            .replace("mail.example.org;", &format!("{SITE};"))
            .replace(
                "/etc/ssl/certs/mail.example.org.pem",
                certificate.to_str().unwrap(),
            )
            .replace(
                "/etc/ssl/private/mail.example.org.key",
                key.to_str().unwrap(),
            )
            .replace("/run/apppw-web/http.sock", listen.to_str().unwrap());
        assert!(
            server.contains(&listen.display().to_string()),
            "the example's socket path moved"
        );
        let d = dir.path().display();
        let nginx_conf = dir.path().join("nginx.conf");
        std::fs::write(
            &nginx_conf,
            format!(
                "daemon off;\nmaster_process on;\nworker_processes 1;\nuser www-data;\npid {d}/nginx.pid;\nerror_log {d}/nginx-error.log info;\nevents {{}}\nhttp {{\naccess_log {d}/nginx-access.log;\nclient_body_temp_path {d}/nginx-body;\nproxy_temp_path {d}/nginx-proxy;\n{server}\n}}\n"
            ),
        )
        .unwrap();
        let nginx = Command::new("nginx")
            .arg("-c")
            .arg(&nginx_conf)
            .arg("-e")
            .arg(dir.path().join("nginx-error.log"))
            .stdin(Stdio::null())
            .spawn()
            .expect("start nginx");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx never listened: {}",
                std::fs::read_to_string(dir.path().join("nginx-error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        WebStack {
            dir,
            helper,
            front,
            nginx,
            port,
            origin,
            certificate,
        }
    }

    /// The front's process id (for its credentials in /proc).
    pub fn front_pid(&self) -> u32 {
        // setpriv execs apppw-web in place.
        self.front.id()
    }

    /// Everything the stack's processes logged: nginx's access and error logs and the front's
    /// own output.
    pub fn logs(&self) -> String {
        [
            "nginx-access.log",
            "nginx-error.log",
            "front.log",
            "helper.log",
        ]
        .iter()
        .map(|f| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
    }

    /// One request through nginx with curl.
    pub fn request(&self, request: &HttpRequest<'_>) -> HttpResponse {
        let mut cmd = Command::new("curl");
        cmd.args([
            "--silent",
            "--show-error",
            "--max-time",
            "60",
            "--dump-header",
            "-",
            "--cacert",
        ])
        .arg(&self.certificate)
        .arg("--resolve")
        .arg(format!("{SITE}:{}:127.0.0.1", self.port));
        if let Some(cookie) = request.cookie {
            cmd.arg("--header").arg(format!("Cookie: {cookie}"));
        }
        if let Some(origin) = request.origin {
            cmd.arg("--header").arg(format!("Origin: {origin}"));
        }
        for header in request.headers {
            cmd.arg("--header").arg(header);
        }
        if request.body.is_some() {
            // The body from stdin: a password must not be in curl's argv.
            cmd.args(["--data-binary", "@-"]);
        }
        cmd.arg(format!("{}{}", self.origin, request.path));
        let out = crate::run_with_stdin(cmd, request.body.unwrap_or_default().as_bytes());
        HttpResponse::parse(&out)
    }

    /// Signs in through the page: the session cookie (`__Host-apppw=...`), after the sign-in's
    /// redirect.
    pub fn sign_in(&self, user: &str, password: &str) -> String {
        let response = self.request(
            &HttpRequest::post("/sign-in", &form(&[("user", user), ("password", password)]))
                .from(&self.origin),
        );
        assert_eq!(response.status, 303, "{}", response.body);
        response.cookie().expect("a session cookie")
    }
}

impl Drop for WebStack {
    fn drop(&mut self) {
        // nginx's master stops its workers on SIGTERM; SIGKILL would leave them running, with
        // the port.
        let master = nix::unistd::Pid::from_raw(i32::try_from(self.nginx.id()).unwrap_or(0));
        let _ = nix::sys::signal::kill(master, nix::sys::signal::Signal::SIGTERM);
        let _ = self.nginx.wait();
        let _ = self.front.kill();
        let _ = self.front.wait();
    }
}

fn wait_for(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A form body, URL-encoded.
pub fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".into(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What to send.
pub struct HttpRequest<'a> {
    pub path: &'a str,
    pub body: Option<&'a str>,
    pub cookie: Option<&'a str>,
    pub origin: Option<&'a str>,
    pub headers: &'a [&'a str],
}

impl<'a> HttpRequest<'a> {
    pub fn get(path: &'a str) -> Self {
        HttpRequest {
            path,
            body: None,
            cookie: None,
            origin: None,
            headers: &[],
        }
    }

    /// A form POST (no Origin unless `from` adds one).
    pub fn post(path: &'a str, body: &'a str) -> Self {
        HttpRequest {
            path,
            body: Some(body),
            cookie: None,
            origin: None,
            headers: &["Content-Type: application/x-www-form-urlencoded"],
        }
    }

    #[must_use]
    pub fn with_cookie(mut self, cookie: &'a str) -> Self {
        self.cookie = Some(cookie);
        self
    }

    #[must_use]
    pub fn from(mut self, origin: &'a str) -> Self {
        self.origin = Some(origin);
        self
    }

    #[must_use]
    pub fn headers(mut self, headers: &'a [&'a str]) -> Self {
        self.headers = headers;
        self
    }
}

/// What came back.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// Header lines, names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    fn parse(out: &std::process::Output) -> HttpResponse {
        crate::assert_success(out);
        let text = String::from_utf8_lossy(&out.stdout);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        HttpResponse {
            status,
            headers,
            body: body.to_owned(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The session cookie this response sets (`__Host-apppw=...`), if it sets a live one.
    pub fn cookie(&self) -> Option<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k == "set-cookie")
            .filter_map(|(_, v)| v.split(';').next())
            .find(|c| c.starts_with("__Host-apppw=") && c.len() > "__Host-apppw=".len())
            .map(str::to_owned)
    }

    /// The page's form token.
    pub fn token(&self) -> Option<String> {
        let at = self.body.find("name=\"token\" value=\"")? + "name=\"token\" value=\"".len();
        Some(self.body[at..].split('"').next()?.to_owned())
    }
}

/// A second factor for the apppw-web stack: pam_google_authenticator with a TOTP secret for one
/// user, in a directory of root's (`secret=` and `user=root`), and its codes from oathtool.
pub struct Totp {
    dir: tempfile::TempDir,
    secret: &'static str,
}

impl Totp {
    pub fn for_user(user: &str) -> Totp {
        require(
            Path::new("/usr/bin/oathtool").exists(),
            "/usr/bin/oathtool",
            "scripts/packages.sh installs it (Debian: oathtool)",
        );
        require(
            Path::new("/usr/lib/x86_64-linux-gnu/security/pam_google_authenticator.so").exists()
                || Path::new("/lib/x86_64-linux-gnu/security/pam_google_authenticator.so").exists(),
            "pam_google_authenticator.so",
            "scripts/packages.sh installs it (Debian: libpam-google-authenticator)",
        );
        let dir = tempfile::tempdir().unwrap();
        let secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
        let file = dir.path().join(user);
        std::fs::write(&file, format!("{secret}\n\" TOTP_AUTH\n\" WINDOW_SIZE 3\n")).unwrap();
        std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o400))
            .unwrap();
        Totp { dir, secret }
    }

    /// /etc/pam.d/apppw-web asking the account password, then the code.
    pub fn stack(&self) -> String {
        format!(
            "auth required pam_unix.so\nauth required pam_google_authenticator.so secret={}/${{USER}} user=root\n@include common-account\n",
            self.dir.path().display()
        )
    }

    /// The code for now.
    pub fn code(&self) -> String {
        let out = Command::new("oathtool")
            .args(["--totp", "-b", self.secret])
            .output()
            .unwrap();
        crate::assert_success(&out);
        crate::stdout(&out).trim().to_owned()
    }
}
