//! A minimal PAM application for the tests and benchmarks, behaving like Dovecot's passdb: start,
//! set PAM_RHOST, authenticate (the password comes through the conversation), account
//! management, end.
//!
//! Usage: pam-client SERVICE USER [--rhost HOST] [--no-account] [--repeat N] < password
//! The password is stdin without one trailing newline (bytes after a NUL cannot pass through
//! PAM). Prints `authenticate=<code> <text>` and `acct_mgmt=<code> <text>` for each round; exits
//! 0 only if every step returned PAM_SUCCESS.
#![forbid(unsafe_code)]

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
    let mut rest = args[2..].iter();
    while let Some(arg) = rest.next() {
        match arg.to_str() {
            Some("--rhost") => rhost = rest.next().map(|h| h.to_string_lossy().into_owned()),
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
    let mut password = Zeroizing::new(Vec::new());
    std::io::stdin()
        .read_to_end(&mut password)
        .expect("read stdin");
    if password.last() == Some(&b'\n') {
        password.pop();
    }

    let mut all_ok = true;
    for _ in 0..repeat {
        let conversation = Box::new(FixedSecret(password.clone()));
        let mut pam = match Transaction::start(&service, &user, conversation) {
            Ok(t) => t,
            Err(code) => {
                eprintln!("pam-client: pam_start failed with {code}");
                return ExitCode::from(3);
            }
        };
        if let Some(rhost) = &rhost {
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
    }
    if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
