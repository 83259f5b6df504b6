//! Making the process safe to run before anything else happens. apppw-ctl runs with privilege it
//! lends to untrusted callers, who control its environment, its open files, its limits and its
//! signals; none of that may reach the store. `privilege.rs` then decides whom it runs as.
#![allow(unsafe_code)]

use nix::fcntl::{FcntlArg, OFlag, fcntl, open};
use nix::sys::resource::{Resource, setrlimit};
use nix::sys::signal::{SigHandler, Signal, signal};
use nix::sys::stat::{Mode, umask};

/// Whether stdout leads nowhere: /dev/null, which is also what a stdout closed at start has
/// become (glibc reopens it so for a set-id program, `ensure_standard_fds` for any other).
/// `new` then refuses, since the code would be shown to nobody.
pub fn stdout_goes_nowhere() -> bool {
    const DEV_NULL: u64 = 0x103; // character device 1:3
    nix::sys::stat::fstat(1)
        .is_ok_and(|s| (s.st_mode & libc::S_IFMT) == libc::S_IFCHR && s.st_rdev == DEV_NULL)
}

/// Call first thing in `main`, while the process is still single-threaded.
pub fn harden() {
    clear_environment();
    ensure_standard_fds();
    close_inherited_fds();
    // New files (the store, its -wal and -shm) are open to root and the apppw group and to
    // nobody else, whatever the caller's umask was.
    umask(Mode::from_bits_truncate(0o007));
    // A core dump could hold a freshly minted code.
    let _ = setrlimit(Resource::RLIMIT_CORE, 0, 0);
    // With `ulimit -f` a caller could kill us mid-write with SIGXFSZ; ignored, the write fails
    // with EFBIG instead, SQLite rolls back, and we report it.
    // SAFETY: SIG_IGN installs no Rust code as a handler, and no other thread exists yet.
    let _ = unsafe { signal(Signal::SIGXFSZ, SigHandler::SigIgn) };
    // Job control: Ctrl-Z on the caller's terminal (SIGTSTP) and reads or writes from the
    // background (SIGTTIN, SIGTTOU) would stop the process, and the terminal sends them whatever
    // uid it runs as. Ignored, a stop request does nothing and a background read fails.
    for job_control in [Signal::SIGTSTP, Signal::SIGTTIN, Signal::SIGTTOU] {
        // SAFETY: as above.
        let _ = unsafe { signal(job_control, SigHandler::SigIgn) };
    }
}

/// Closes every descriptor above 2 the caller handed over: nothing of theirs may reach the store's
/// code, PAM modules or the hook.
fn close_inherited_fds() {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let inherited: Vec<i32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > 2)
        .collect();
    // The directory's own descriptor is closed by now; closing it again fails harmlessly.
    for fd in inherited {
        let _ = nix::unistd::close(fd);
    }
}

/// Drops every environment variable: SQLITE_TMPDIR, TMPDIR, LD_*, RUST_*, locale and all the
/// rest. apppw-ctl needs none of them.
fn clear_environment() {
    let names: Vec<_> = std::env::vars_os().map(|(name, _)| name).collect();
    for name in names {
        // SAFETY: called at the top of main before any thread is spawned, so no other thread can
        // be reading the environment concurrently.
        unsafe { std::env::remove_var(name) };
    }
}

/// If a caller closed stdin, stdout or stderr, the store could be opened on fd 0-2 and a later
/// message written into it. Reopen any closed one on /dev/null.
fn ensure_standard_fds() {
    for fd in 0..=2 {
        if fcntl(fd, FcntlArg::F_GETFD).is_err() {
            // open() returns the lowest free descriptor, which is this one. If even /dev/null
            // cannot be opened, stop: running with a hole at 0-2 is not safe.
            if open("/dev/null", OFlag::O_RDWR, Mode::empty()) != Ok(fd) {
                std::process::abort();
            }
        }
    }
}
