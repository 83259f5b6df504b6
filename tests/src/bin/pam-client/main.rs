//! A minimal PAM application for the tests and benchmarks, behaving like Dovecot's passdb: start,
//! set PAM_RHOST, authenticate (the password comes through the conversation), account
//! management, end.
//!
//! Usage: pam-client SERVICE USER [--rhost HOST] [--no-account] [--repeat N] < password
//! The password is stdin without one trailing newline (any bytes up to the first NUL). Prints
//! `authenticate=<code> <text>` and `acct_mgmt=<code> <text>`; exits 0 only if every step
//! returned PAM_SUCCESS.
#![deny(unsafe_code)]

mod ffi;

use std::ffi::CString;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if args.len() < 2 {
        eprintln!(
            "usage: pam-client SERVICE USER [--rhost HOST] [--no-account] [--repeat N] < password"
        );
        return ExitCode::from(2);
    }
    let service = args[0].to_string_lossy().into_owned();
    let user = CString::new(args[1].as_bytes()).expect("user without NUL");
    let mut rhost = None;
    let mut account = true;
    let mut repeat = 1u32;
    let mut rest = args[2..].iter();
    while let Some(arg) = rest.next() {
        match arg.to_str() {
            Some("--rhost") => {
                rhost = rest
                    .next()
                    .map(|h| CString::new(h.as_bytes()).expect("rhost"))
            }
            Some("--no-account") => account = false,
            Some("--repeat") => {
                repeat = rest
                    .next()
                    .and_then(|n| n.to_str()?.parse().ok())
                    .expect("--repeat N")
            }
            _ => {
                eprintln!("pam-client: unknown argument {arg:?}");
                return ExitCode::from(2);
            }
        }
    }
    let mut password = Vec::new();
    std::io::stdin()
        .read_to_end(&mut password)
        .expect("read stdin");
    if password.last() == Some(&b'\n') {
        password.pop();
    }
    if let Some(nul) = password.iter().position(|&b| b == 0) {
        password.truncate(nul);
    }
    let password = CString::new(password).expect("NUL removed");

    let mut all_ok = true;
    for _ in 0..repeat {
        let mut session = match ffi::Session::start(&service, &user, password.clone()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("pam-client: {e}");
                return ExitCode::from(3);
            }
        };
        if let Some(rhost) = &rhost {
            session.set_rhost(rhost);
        }
        let auth = session.authenticate();
        println!("authenticate={auth} {}", session.strerror(auth));
        all_ok &= auth == 0;
        if account && auth == 0 {
            let acct = session.acct_mgmt();
            println!("acct_mgmt={acct} {}", session.strerror(acct));
            all_ok &= acct == 0;
        }
    }
    if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
