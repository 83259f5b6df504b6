//! The listening socket systemd hands over (socket activation: `LISTEN_PID`, `LISTEN_FDS`, the
//! first at fd 3), so that the socket's owner and mode are the unit's, set before the front
//! starts. The only `unsafe` in apppw-web.
#![allow(unsafe_code)]

use std::os::fd::FromRawFd;
use std::os::unix::net::UnixListener;

/// systemd's first passed descriptor (SD_LISTEN_FDS_START).
const FIRST_FD: i32 = 3;

/// The passed listener, if systemd passed one to this process. Takes it once: the variables are
/// read, and the descriptor is owned from here on.
pub fn take() -> Option<UnixListener> {
    let for_us = std::env::var("LISTEN_PID").ok()?.parse::<u32>().ok()? == std::process::id();
    let count: i32 = std::env::var("LISTEN_FDS").ok()?.parse().ok()?;
    if !for_us || count < 1 {
        return None;
    }
    // The descriptor must be a listening Unix stream socket; anything else is refused below.
    let stat = nix_free_fstat(FIRST_FD)?;
    if stat.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return None;
    }
    // SAFETY: systemd passed fd 3 to this process (LISTEN_PID is ours) and nothing else in the
    // process has taken it: `take` runs once, in `main`, before anything opens a file.
    let listener = unsafe { UnixListener::from_raw_fd(FIRST_FD) };
    listener.local_addr().ok()?;
    Some(listener)
}

fn nix_free_fstat(fd: i32) -> Option<libc::stat> {
    let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstat writes a whole `stat` into the buffer it is given, or fails and writes
    // nothing we read.
    let rc = unsafe { libc::fstat(fd, stat.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: fstat returned 0, so it filled the structure.
    Some(unsafe { stat.assume_init() })
}
