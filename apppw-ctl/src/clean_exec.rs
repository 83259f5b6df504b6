//! Starting another program (the administrator's `revoke_hook`) with nothing of the caller's in
//! it: default signal dispositions and an empty signal mask (a caller's `trap '' TERM` and
//! apppw-ctl's own ignored signals do not carry over), no open files beyond 0-2, `/` as working
//! directory, an empty environment. Resource limits are already the system's: `privilege.rs`
//! reset them at start.
#![allow(unsafe_code)]

use std::os::unix::process::CommandExt;
use std::process::Command;

/// close_range's flag: mark close-on-exec instead of closing now.
const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;

/// Highest signal number Linux has (SIGRTMAX).
const LAST_SIGNAL: libc::c_int = 64;

/// Prepares `command` to start clean.
pub fn clean(command: &mut Command) -> &mut Command {
    command.env_clear().current_dir("/");
    // SAFETY: `reset_in_child` runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed: it makes system calls only and allocates nothing.
    unsafe { command.pre_exec(reset_in_child) }
}

/// Default signal dispositions, an empty mask, close-on-exec above fd 2. (Returns a `Result` as
/// `pre_exec` wants; every step is best effort.)
#[allow(clippy::unnecessary_wraps)]
fn reset_in_child() -> std::io::Result<()> {
    // The raw system call, not glibc's signal(): glibc refuses 32 and 33, which it keeps for
    // itself, yet a caller can hand them down ignored. All zero is SIG_DFL with no flags and an
    // empty mask, whatever the architecture's layout of the structure. 64 zero bytes: more than
    // any architecture's struct sigaction the kernel reads.
    let default_action = [0u64; 8];
    for signal in 1..=LAST_SIGNAL {
        if signal != libc::SIGKILL && signal != libc::SIGSTOP {
            // SAFETY: rt_sigaction reads `default_action` (a live local, larger than the
            // kernel's structure) and writes nothing back (null old action).
            unsafe {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    signal,
                    default_action.as_ptr(),
                    std::ptr::null_mut::<u64>(),
                    size_of::<u64>(),
                )
            };
        }
    }
    // Plain syscall wrappers: nix's allocate nothing either.
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    );
    // Descriptors above 2 get close-on-exec (close_range, Linux 5.11): closed at exec, while the
    // pipe through which Rust reports a failed exec keeps working until then. Older kernels rely
    // on the flag every descriptor apppw-ctl opens carries, and on startup having closed
    // whatever the caller passed in.
    // SAFETY: close_range only changes flags of this process's descriptors.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3,
            libc::c_uint::MAX,
            CLOSE_RANGE_CLOEXEC,
        )
    };
    Ok(())
}
