//! A minimal PAM application for the tests and benchmarks, behaving like Dovecot's passdb: start,
//! set PAM_RHOST, authenticate (the password comes through the conversation), account
//! management, end.
//!
//! Usage: pam-client SERVICE USER [--rhost HOST] [--no-account] [--repeat N] [--resources]
//!                   [--in-thread | --fork-between] < password
//! `--resources` prints the open file descriptors and resident memory after the first round and
//! after the last (`resources first FDS RSS_KIB` / `resources last FDS RSS_KIB`); `--in-thread`
//! runs the rounds on a thread that exits before the process does. `--fork-between` logs in once,
//! forks (as a server that forks workers from a process that already served a login), lets the
//! child make the N rounds and exit, then logs in once more in the parent: what a module keeps
//! between logins must serve both, and neither may break the other's.
//! The password is stdin without one trailing newline (bytes after a NUL cannot pass through
//! PAM). Prints `authenticate=<code> <text>` and `acct_mgmt=<code> <text>` for each round; exits
//! 0 only if every step returned PAM_SUCCESS. The tests read these lines with one parser,
//! `apppw_tests::verdicts`.
#![deny(unsafe_code)]

mod fork;

use std::ffi::CString;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;

use apppw_pam_client::{FixedSecret, PAM_SUCCESS, Transaction};
use zeroize::Zeroizing;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if args.len() < 2 {
        eprintln!(
            "usage: pam-client SERVICE USER [--rhost HOST] [--no-account] [--repeat N] < password"
        );
        return ExitCode::from(2);
    }
    let service = CString::new(args[0].as_bytes()).expect("service without NUL");
    let user = CString::new(args[1].as_bytes()).expect("user without NUL");
    let mut rhost = None;
    let mut account = true;
    let mut repeat = 1u32;
    let mut resources = false;
    let mut in_thread = false;
    let mut fork_between = false;
    let mut rest = args[2..].iter();
    while let Some(arg) = rest.next() {
        match arg.to_str() {
            Some("--rhost") => rhost = rest.next().map(|h| h.to_string_lossy().into_owned()),
            Some("--no-account") => account = false,
            Some("--resources") => resources = true,
            Some("--in-thread") => in_thread = true,
            Some("--fork-between") => fork_between = true,
            Some("--repeat") => {
                repeat = rest
                    .next()
                    .and_then(|n| n.to_str()?.parse().ok())
                    .expect("--repeat N");
            }
            _ => {
                eprintln!("pam-client: unknown argument {arg:?}");
                return ExitCode::from(2);
            }
        }
    }
    let mut password = Zeroizing::new(Vec::new());
    std::io::stdin()
        .read_to_end(&mut password)
        .expect("read stdin");
    if password.last() == Some(&b'\n') {
        password.pop();
    }

    let rounds = move |repeat| {
        rounds(
            &service,
            &user,
            rhost.as_deref(),
            &password,
            repeat,
            account,
            resources,
        )
    };
    let all_ok = if fork_between {
        let before = rounds(1);
        let child = fork::run_in_child(|| rounds(repeat));
        before && child && rounds(1)
    } else if in_thread {
        std::thread::spawn(move || rounds(repeat))
            .join()
            .expect("the login thread panicked")
    } else {
        rounds(repeat)
    };
    if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Open file descriptors and resident memory (KiB) of this process.
fn resource_use() -> (usize, u64) {
    let fds = std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count);
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0);
    (fds, rss)
}

fn rounds(
    service: &CString,
    user: &CString,
    rhost: Option<&str>,
    password: &Zeroizing<Vec<u8>>,
    repeat: u32,
    account: bool,
    resources: bool,
) -> bool {
    let mut all_ok = true;
    for round in 0..repeat {
        let conversation = Box::new(FixedSecret(password.clone()));
        let mut pam = match Transaction::start(service, user, conversation) {
            Ok(t) => t,
            Err(code) => {
                eprintln!("pam-client: pam_start failed with {code}");
                return false;
            }
        };
        if let Some(rhost) = rhost {
            pam.set_rhost(rhost);
        }
        let auth = pam.authenticate(0);
        println!("authenticate={auth} {}", pam.describe(auth));
        all_ok &= auth == PAM_SUCCESS;
        if account && auth == PAM_SUCCESS {
            let acct = pam.acct_mgmt(0);
            println!("acct_mgmt={acct} {}", pam.describe(acct));
            all_ok &= acct == PAM_SUCCESS;
        }
        drop(pam);
        if resources && (round == 0 || round + 1 == repeat) {
            let (fds, rss) = resource_use();
            println!(
                "resources {} {fds} {rss}",
                if round == 0 { "first" } else { "last" }
            );
        }
    }
    all_ok
}
