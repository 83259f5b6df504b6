//! apppw-web's figures: pages per second for a signed-in user, through nginx and the front to the
//! session's helper and a fresh apppw-ctl per page, beside the front alone (the stylesheet, no
//! helper) and the command line doing the same work (`apppw-ctl list` run by the user) in the
//! same run; and the memory of the front and of the helpers with many sessions open. It uses the
//! tests' installed stack (`apppw_tests::web::WebStack`): the setuid apppw-ctl under
//! /usr/local/libexec/apppw-test, the system store and /etc/pam.d/apppw-web, removed after.
#![forbid(unsafe_code)]

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use apppw_tests::system::{INSTALLED_CTL, system};
use apppw_tests::web::WebStack;
use apppw_tests::{InstalledFile, assert_success, ensure_user, run_with_stdin, set_unix_password};

const PASSWORD: &str = "web bench password 1";

pub struct Figures {
    pub pages: u32,
    pub list_per_second: f64,
    pub style_per_second: f64,
    pub cli_per_second: f64,
    pub sessions: usize,
    pub front_idle_kib: u64,
    pub front_kib: u64,
    pub helper_kib: u64,
    pub helpers: usize,
}

pub fn measure(smoke: bool) -> Figures {
    let sys = system();
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/pam.d/apppw-web"),
    )
    .unwrap();
    let _stack_file = InstalledFile::write("/etc/pam.d/apppw-web", &shipped);
    // At most 8 sessions per user: 20 users hold 100.
    let (users, per_user, pages) = if smoke { (2, 2, 20) } else { (20, 5, 500) };
    let names: Vec<String> = (0..users).map(|i| format!("apppw-bench-web{i}")).collect();
    for name in &names {
        ensure_user(name);
        set_unix_password(name, PASSWORD);
    }
    // A user with ten codes, as the list shows them.
    let reader = &names[0];
    let _ = sys.root(&["--user", reader, "revoke", "--all"]);
    for i in 0..10 {
        assert_success(&sys.root(&["--user", reader, "new", &format!("Device {i}")]));
    }
    let stack = WebStack::start(Path::new(INSTALLED_CTL), "");
    let front_idle_kib = rss_kib(stack.front_pid());
    let cookie = stack.sign_in(reader, PASSWORD);
    let list_per_second = rate(&stack, &cookie, "/", pages);
    let style_per_second = rate(&stack, &cookie, "/style.css", pages);
    let cli_per_second = {
        let count = pages.min(100);
        let started = Instant::now();
        for _ in 0..count {
            let mut cmd = sys.user_command(reader);
            cmd.args(["--json", "list"]);
            assert_success(&run_with_stdin(cmd, b""));
        }
        f64::from(count) / started.elapsed().as_secs_f64()
    };
    let mut cookies = vec![cookie];
    for name in &names {
        let already = usize::from(name == reader);
        for _ in already..per_user {
            cookies.push(stack.sign_in(name, PASSWORD));
        }
    }
    // Every session answers (its helper is alive), then the memory.
    for cookie in &cookies {
        let page = stack.request(&apppw_tests::web::HttpRequest::get("/").with_cookie(cookie));
        assert_eq!(page.status, 200, "{}", page.body);
    }
    let helpers = helper_pids(stack.helper.activator_pid());
    let figures = Figures {
        pages,
        list_per_second,
        style_per_second,
        cli_per_second,
        sessions: cookies.len(),
        front_idle_kib,
        front_kib: rss_kib(stack.front_pid()),
        helper_kib: helpers.iter().map(|pid| rss_kib(*pid)).sum(),
        helpers: helpers.len(),
    };
    drop(stack);
    for name in &names {
        let _ = sys.root(&["--user", name, "revoke", "--all"]);
    }
    figures
}

/// Pages per second over one kept-alive TLS connection through nginx.
fn rate(stack: &WebStack, cookie: &str, path: &str, pages: u32) -> f64 {
    let script = r#"
import http.client, ssl, sys, time
port, cafile, cookie, path, count = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
context = ssl.create_default_context(cafile=cafile)
context.check_hostname = False
connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=60)
headers = {"Host": "mail.test:%d" % port, "Cookie": cookie}
connection.request("GET", path, headers=headers); connection.getresponse().read()
started = time.monotonic()
for _ in range(count):
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    response.read()
    assert response.status == 200, response.status
print(count / (time.monotonic() - started))
"#;
    let out = Command::new("/usr/bin/python3")
        .args(["-c", script, &stack.port.to_string()])
        .arg(&stack.certificate)
        .args([cookie, path, &pages.to_string()])
        .output()
        .unwrap();
    assert_success(&out);
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The `apppw-ctl web-session` processes the stack's activator started.
fn helper_pids(activator: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // The parent's pid is the second field after the command name's closing ')'.
            let parent = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
            parent == Some(activator)
        })
        .collect()
}

impl Figures {
    pub fn print(&self) {
        println!("\n## apppw-web\n");
        println!("| what | per second | note |\n|---|---|---|");
        println!(
            "| list page, signed in | {:.1} | {} pages over one kept-alive TLS connection through nginx; each runs a fresh apppw-ctl as the user |",
            self.list_per_second, self.pages
        );
        println!(
            "| stylesheet | {:.1} | the same path without the helper: nginx and the front alone |",
            self.style_per_second
        );
        println!(
            "| apppw-ctl --json list, run by the user | {:.1} | the command line's cost for the same work |",
            self.cli_per_second
        );
        println!(
            "\nWith {} sessions open: the front's RSS {} KiB (idle: {} KiB, +{} KiB, {:.1} KiB a session); {} helpers, {} KiB RSS together ({:.0} KiB each).",
            self.sessions,
            self.front_kib,
            self.front_idle_kib,
            self.front_kib.saturating_sub(self.front_idle_kib),
            self.front_kib.saturating_sub(self.front_idle_kib) as f64 / self.sessions.max(1) as f64,
            self.helpers,
            self.helper_kib,
            self.helper_kib as f64 / self.helpers.max(1) as f64,
        );
    }
}
