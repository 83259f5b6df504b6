//! What runs inside the measured processes: logins through libpam (pam_wrapper preloaded by the
//! parent), and the store churn that competes with them.
#![forbid(unsafe_code)]

use std::ffi::CString;
use std::path::Path;
use std::time::{Duration, Instant};

use apppw_core::mint::{MintRequest, mint};
use apppw_core::scope::Scope;
use apppw_core::{Access, Changer, CodeRef, Label, Owner, Policy, Store};
use apppw_pam_client::{FixedSecret, PAM_SUCCESS, Transaction};
use zeroize::Zeroizing;

/// `login SERVICE USER PASSWORD COUNT EXPECT_OK`: COUNT full round trips as Dovecot makes them
/// (start, PAM_RHOST, authenticate, acct_mgmt, end). Prints one line per login, the time in
/// microseconds, then `failures N` (answers other than expected) and `maxrss_kib N`.
pub fn login(args: &[String]) {
    let [service, user, password, count, expect_ok] = args else {
        panic!("login SERVICE USER PASSWORD COUNT EXPECT_OK");
    };
    let service = CString::new(service.as_str()).unwrap();
    let user = CString::new(user.as_str()).unwrap();
    let expect_ok = expect_ok == "1";
    let start_rss = peak_rss_kib();
    let mut failures = 0;
    let mut out = String::new();
    for _ in 0..count.parse::<u32>().unwrap() {
        let secret = Box::new(FixedSecret(Zeroizing::new(password.as_bytes().to_vec())));
        let started = Instant::now();
        let mut pam = Transaction::start(&service, &user, secret).expect("pam_start");
        pam.set_rhost("192.0.2.10");
        let mut ok = pam.authenticate(0) == PAM_SUCCESS;
        if ok {
            ok = pam.acct_mgmt(0) == PAM_SUCCESS;
        }
        drop(pam);
        out.push_str(&format!("{}\n", started.elapsed().as_micros()));
        if ok != expect_ok {
            failures += 1;
        }
    }
    print!(
        "{out}failures {failures}\nmaxrss_kib {}\nstart_rss_kib {start_rss}\n",
        peak_rss_kib()
    );
}

/// `argon2 PHC CODE`: one Argon2id verification in a fresh process, as a login's first
/// verification is: its 19 MiB of working memory are new pages. Prints the microseconds.
pub fn argon2(args: &[String]) {
    let [phc, code] = args else {
        panic!("argon2 PHC CODE");
    };
    let code = apppw_core::AppPassword::parse(code.as_bytes()).unwrap();
    let started = Instant::now();
    assert!(apppw_core::hash::verify_code(&code, phc).unwrap());
    println!("{}", started.elapsed().as_micros());
}

/// The process's peak resident set so far (VmHWM), in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// `churn STORE SECONDS`: mints and revokes codes of other users (real Argon2id cost) for
/// SECONDS, as administrators and users would while logins go on. Prints `operations N`.
pub fn churn(args: &[String]) {
    let [store, seconds] = args else {
        panic!("churn STORE SECONDS");
    };
    let deadline = Instant::now() + Duration::from_secs(seconds.parse().unwrap());
    let mut rng = rand::rng();
    let policy = Policy::default();
    let mut operations = 0u64;
    let mut n = 0u64;
    let label = Label::new("churn").unwrap();
    while Instant::now() < deadline {
        let user = format!("churn-{}-{}", std::process::id(), n % 50);
        n += 1;
        let mut store = Store::open(
            Path::new(store),
            Access::Manage {
                create: false,
                upgrade: true,
            },
        )
        .unwrap();
        // Owners that need no account: churn only mints and revokes.
        let owner = Owner {
            name: &user,
            uid: 60_000 + u32::try_from(n % 50).unwrap(),
        };
        let request = MintRequest {
            owner,
            label: &label,
            scope: &Scope::default(),
        };
        let minted = mint(
            &mut store,
            &request,
            &policy,
            &Changer::root(1_800_000_000),
            &mut rng,
        )
        .unwrap();
        store
            .revoke(
                owner,
                &CodeRef::Id(minted.id),
                &Changer::root(1_800_000_001),
            )
            .unwrap();
        operations += 2;
    }
    println!("operations {operations}");
}
