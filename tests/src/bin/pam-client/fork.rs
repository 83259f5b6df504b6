//! The one fork of pam-client (`--fork-between`), in a module of its own because it is unsafe.
#![allow(unsafe_code)]

use std::io::Write;

use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork};

/// Runs `work` in a forked child and returns whether it succeeded (the child exits 0 when
/// `work` returns true). The parent waits for the child.
pub fn run_in_child(work: impl FnOnce() -> bool) -> bool {
    // Nothing buffered may be printed twice.
    let _ = std::io::stdout().flush();
    // SAFETY: pam-client has one thread when it forks (`--fork-between` excludes
    // `--in-thread`, and nothing else starts threads), so the child may run any code.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            let ok = work();
            let _ = std::io::stdout().flush();
            std::process::exit(i32::from(!ok));
        }
        Ok(ForkResult::Parent { child }) => {
            matches!(waitpid(child, None), Ok(WaitStatus::Exited(_, 0)))
        }
        Err(e) => {
            eprintln!("pam-client: fork failed: {e}");
            false
        }
    }
}
