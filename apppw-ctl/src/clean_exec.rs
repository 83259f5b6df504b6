//! Starting another program (the administrator's `revoke_hook`) with nothing of the caller's in
//! it: default signal dispositions and an empty signal mask (a caller's `trap '' TERM` and
//! apppw-ctl's own ignored signals do not carry over), no open files beyond 0-2, `/` as working
//! directory, an empty environment. Resource limits are already the system's: `privilege.rs`
//! reset them at start.
#![allow(unsafe_code)]

use std::os::unix::process::CommandExt;
use std::process::Command;

/// Highest signal number Linux has (SIGRTMAX).
const LAST_SIGNAL: libc::c_int = 64;

/// Prepares `command` to start clean.
pub fn clean(command: &mut Command) -> &mut Command {
    command.env_clear().current_dir("/");
    // SAFETY: the closure runs in the child between fork and exec, where only async-signal-safe
    // calls are allowed; sigaction (through signal), sigprocmask and close_range are, and it
    // allocates nothing.
    unsafe {
        command.pre_exec(|| {
            for signal in 1..=LAST_SIGNAL {
                if signal != libc::SIGKILL && signal != libc::SIGSTOP {
                    libc::signal(signal, libc::SIG_DFL);
                }
            }
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
            // Descriptors above 2: close_range (Linux 5.9); older kernels fall back to the
            // close-on-exec flag every descriptor apppw-ctl opens carries, and startup closed
            // whatever the caller passed in.
            libc::syscall(libc::SYS_close_range, 3, libc::c_uint::MAX, 0);
            Ok(())
        });
    }
    command
}
