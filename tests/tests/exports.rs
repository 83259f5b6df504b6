//! The module exports the PAM entry points and nothing else, and libpam can load it.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::process::Command;

use apppw_tests::module_library;

const ENTRY_POINTS: &[&str] = &[
    "pam_sm_acct_mgmt",
    "pam_sm_authenticate",
    "pam_sm_chauthtok",
    "pam_sm_close_session",
    "pam_sm_open_session",
    "pam_sm_setcred",
];

#[test]
fn only_pam_entry_points_are_exported() {
    let out = Command::new("nm")
        .args(["-D", "--defined-only", "--format=posix"])
        .arg(module_library())
        .output()
        .expect("nm (binutils) runs");
    assert!(out.status.success());
    let mut symbols: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    symbols.sort();
    assert_eq!(symbols, ENTRY_POINTS);
}

#[test]
fn dlopen_finds_every_entry_point() {
    let path = CString::new(module_library().into_os_string().into_encoded_bytes()).unwrap();
    // SAFETY: dlopen of our own module; its initializers are Rust's, with no side effects.
    let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    assert!(!handle.is_null(), "dlopen failed");
    for name in ENTRY_POINTS {
        let c = CString::new(*name).unwrap();
        // SAFETY: handle is live; the symbol is only looked up, never called.
        let sym = unsafe { libc::dlsym(handle, c.as_ptr()) };
        assert!(!sym.is_null(), "{name} missing");
    }
    // SAFETY: handle came from dlopen above and nothing from it is used afterwards.
    unsafe { libc::dlclose(handle) };
}
