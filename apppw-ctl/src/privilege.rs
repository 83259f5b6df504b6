//! Whom the process runs as, phase by phase. apppw-ctl is installed setuid root (mode 4755) and
//! never keeps root for a non-root caller:
//!
//! 1. **At start** (`at_start`, first thing in `main`, still root): scheduling priority, I/O
//!    priority and resource limits are reset to the system's (PID 1's), so nothing the caller set
//!    before exec slows the process; then it drops to the caller (real, effective: the caller;
//!    saved: the `apppw` system account). Parsing, policy and re-authentication run as the caller,
//!    so PAM modules see the person they authenticate. The caller may stop this process now: it
//!    holds nothing.
//! 2. **Before the store opens** (`become_store_account`): every uid and gid becomes `apppw`'s.
//!    The kernel lets a process signal, trace, renice or prlimit another only when their uids
//!    match, so from here the caller can neither stop nor slow it; `check_unhindered` then makes
//!    sure nothing set in the moments before (a renice, a lowered limit, a cgroup the caller can
//!    freeze) follows it in. There is no way back to the caller.
//!
//! Root callers stay root throughout: root is trusted, and `init` needs it. A web session's
//! command process (`web::act`) starts as root and takes phase 1's ids for the signed-in user
//! (`act_for`), so that from there on it runs exactly as that user's own apppw-ctl would.
//! This module and `startup.rs` and `clean_exec.rs` are the only ones with `unsafe`.
#![allow(unsafe_code)]

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use nix::unistd::{Gid, Uid, User, getgid, getuid, setgroups, setresgid, setresuid};

use crate::error::CtlError;

/// The system account that owns apppw-ctl's store work (`apppw-ctl init` creates it).
pub const STORE_ACCOUNT: &str = "apppw";

/// Fewest open files a process holding the store must be able to have: the store, its -wal and
/// -shm, the syslog socket, and room for SQLite's own.
const MIN_OPEN_FILES: u64 = 64;

/// What `at_start` found.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// Installed setuid root, caller not root: the store account to become.
    Switch { uid: Uid, gid: Gid },
    /// Installed setuid root but the store account does not exist (init not run).
    NoAccount,
    /// Root, or a copy without privilege: no switch is possible or needed.
    Stay,
}

/// Set by `at_start`, or by `act_for` in a web session's child.
static MODE: Mutex<Mode> = Mutex::new(Mode::Stay);

/// When `at_start` ran. The caller may stop the process for as long as they like before it
/// reaches the store; what it decided then (the policy read, the password confirmed) must not be
/// acted on days later, so the store phase refuses to begin after this long.
const MAX_WAIT_BEFORE_STORE: std::time::Duration = std::time::Duration::from_secs(15 * 60);
static STARTED: Mutex<Option<std::time::Instant>> = Mutex::new(None);

/// Resets priorities and limits while root, then drops to the caller, keeping the store account
/// as saved ids. Call first in `main`, single-threaded. Aborts if a drop fails: running on with
/// root privilege by mistake is never acceptable.
pub fn at_start() {
    set_state(Mode::Stay);
    let mode = if nix::unistd::geteuid().is_root() {
        reset_priority_and_limits();
        if getuid().is_root() {
            Mode::Stay
        } else {
            drop_to_caller()
        }
    } else {
        Mode::Stay
    };
    set_state(mode);
}

/// Records what the process runs as from now on, and starts the clock of
/// `MAX_WAIT_BEFORE_STORE`.
fn set_state(mode: Mode) {
    *MODE.lock().unwrap_or_else(PoisonError::into_inner) = mode;
    *STARTED.lock().unwrap_or_else(PoisonError::into_inner) = Some(std::time::Instant::now());
}

/// For a web session's child (`web::act`), still root: becomes `user` exactly as the setuid
/// apppw-ctl becomes a user who runs it (`at_start`): priorities and limits reset, no
/// supplementary groups, real and effective ids the user's, saved ids the store account's, so
/// that the command that follows checks and records everything as for that user at a terminal.
/// Aborts if a drop fails.
pub fn act_for(user: &User) {
    if user.uid.is_root() {
        std::process::abort();
    }
    reset_priority_and_limits();
    let mode = become_keeping_store_account(user.uid, user.gid);
    let _ = nix::sys::prctl::set_dumpable(false);
    set_state(mode);
}

fn drop_to_caller() -> Mode {
    become_keeping_store_account(getuid(), getgid())
}

/// As root: real and effective ids `uid` and `gid`, saved ids the store account's (for
/// `become_store_account` later), no supplementary groups.
fn become_keeping_store_account(uid: Uid, gid: Gid) -> Mode {
    // The environment is empty by now, so NSS cannot be steered; the lookup runs as root once.
    let account = User::from_name(STORE_ACCOUNT).ok().flatten();
    // Supplementary groups of root's (none, usually) must not stay behind.
    if setgroups(&[]).is_err() {
        std::process::abort();
    }
    let (mode, saved_uid, saved_gid) = match account {
        Some(account) => (
            Mode::Switch {
                uid: account.uid,
                gid: account.gid,
            },
            account.uid,
            account.gid,
        ),
        None => (Mode::NoAccount, uid, gid),
    };
    if setresgid(gid, gid, saved_gid).is_err()
        || setresuid(uid, uid, saved_uid).is_err()
        || nix::unistd::geteuid().is_root()
    {
        std::process::abort();
    }
    mode
}

/// Becomes the store account for good, then refuses to go on if the caller could still hinder
/// the process. Every path to the store goes through here (`commands::open_store`).
pub fn become_store_account(caller_uid: u32) -> Result<(), CtlError> {
    if STARTED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .is_some_and(|started| started.elapsed() > MAX_WAIT_BEFORE_STORE)
    {
        return Err(CtlError::Hindered(
            "it was held up for more than 15 minutes before reaching the store, so what it checked at the start (policy, password) may be out of date; run it again".into(),
        ));
    }
    let mode = *MODE.lock().unwrap_or_else(PoisonError::into_inner);
    match mode {
        Mode::Stay => return Ok(()),
        Mode::NoAccount => return Err(CtlError::NoStoreAccount),
        Mode::Switch { uid, gid } => {
            if setresgid(gid, gid, gid).is_err() || setresuid(uid, uid, uid).is_err() {
                return Err(CtlError::Hindered(
                    "could not switch to the apppw account".into(),
                ));
            }
            let ids = nix::unistd::getresuid().map_err(|e| CtlError::Hindered(e.to_string()))?;
            if [ids.real, ids.effective, ids.saved] != [uid; 3] {
                std::process::abort();
            }
            let _ = nix::sys::prctl::set_dumpable(false);
        }
    }
    check_unhindered(caller_uid)
}

/// After the switch nothing of the caller's can reach the process any more; this checks what they
/// could have set just before it.
fn check_unhindered(caller_uid: u32) -> Result<(), CtlError> {
    raise_soft_limits();
    let (open_files, _) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .map_err(|e| CtlError::Hindered(e.to_string()))?;
    if open_files < MIN_OPEN_FILES {
        return Err(CtlError::Hindered(format!(
            "the open-file limit is {open_files} (`ulimit -n`), and apppw-ctl needs at least {MIN_OPEN_FILES} to change the store and record the change"
        )));
    }
    // getpriority returns -1 both for nice -1 and for an error; only a positive nice matters.
    // SAFETY: getpriority only reads this process's scheduling state.
    let nice = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
    // SAFETY: sched_getscheduler only reads this process's scheduling state.
    let policy = unsafe { libc::sched_getscheduler(0) };
    if nice > 0
        || policy == libc::SCHED_IDLE
        || policy == libc::SCHED_BATCH
        || io_priority_is_lowered()
        || cpus_are_restricted()
    {
        return Err(CtlError::Hindered(
            "its priority was lowered (nice, chrt, ionice or taskset) while it started; a slowed apppw-ctl holding the store would slow every login".into(),
        ));
    }
    if let Some(cgroup) = cgroup_owned_by(caller_uid) {
        return Err(CtlError::Hindered(format!(
            "it runs in the control group {}, which you own and could freeze or throttle while it holds the store; run it from your login session",
            cgroup.display()
        )));
    }
    Ok(())
}

/// The resources apppw-ctl resets, with their names in /proc/PID/limits: every one Linux has
/// but RLIMIT_CORE (kept at 0: a core dump could hold a fresh code).
const RESOURCES: [(libc::__rlimit_resource_t, &str); 15] = [
    (libc::RLIMIT_CPU, "Max cpu time"),
    (libc::RLIMIT_FSIZE, "Max file size"),
    (libc::RLIMIT_DATA, "Max data size"),
    (libc::RLIMIT_STACK, "Max stack size"),
    (libc::RLIMIT_RSS, "Max resident set"),
    (libc::RLIMIT_NPROC, "Max processes"),
    (libc::RLIMIT_NOFILE, "Max open files"),
    (libc::RLIMIT_MEMLOCK, "Max locked memory"),
    (libc::RLIMIT_AS, "Max address space"),
    (libc::RLIMIT_LOCKS, "Max file locks"),
    (libc::RLIMIT_SIGPENDING, "Max pending signals"),
    (libc::RLIMIT_MSGQUEUE, "Max msgqueue size"),
    (libc::RLIMIT_NICE, "Max nice priority"),
    (libc::RLIMIT_RTPRIO, "Max realtime priority"),
    (libc::RLIMIT_RTTIME, "Max realtime timeout"),
];

/// As root: nice 0, the normal scheduler, best-effort I/O, and PID 1's resource limits (the
/// system's defaults), whatever the caller set before exec. Raising a hard limit needs
/// CAP_SYS_RESOURCE, which a container may withhold even from root: there the soft limits are
/// raised to the caller's hard ones, and `check_unhindered` refuses what is still too low.
fn reset_priority_and_limits() {
    // SAFETY: changes only this process's own nice value.
    unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 0) };
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: changes only this process's scheduler; reads `param`, a live local.
    unsafe { libc::sched_setscheduler(0, libc::SCHED_OTHER, &raw const param) };
    // SAFETY: changes only this process's I/O priority.
    unsafe {
        libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            0,
            IOPRIO_BE_NORMAL,
        )
    };
    if let Ok(cpus) = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(1)) {
        let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &cpus);
    }
    let system = std::fs::read_to_string("/proc/1/limits").unwrap_or_default();
    for (resource, name) in RESOURCES {
        let Some(limit) = system_limit(&system, name) else {
            continue;
        };
        // SAFETY: sets this process's own limit from a live local.
        unsafe {
            libc::setrlimit(resource, &raw const limit);
        }
    }
    raise_soft_limits();
}

/// One limit from a /proc/PID/limits text: `Max open files  1024  524288  files`.
fn system_limit(text: &str, name: &str) -> Option<libc::rlimit> {
    let line = text.lines().find(|l| l.starts_with(name))?;
    let mut values = line[name.len()..].split_whitespace().map(|v| match v {
        "unlimited" => Some(libc::RLIM_INFINITY),
        number => number.parse().ok(),
    });
    Some(libc::rlimit {
        rlim_cur: values.next()??,
        rlim_max: values.next()??,
    })
}

/// Soft limits up to the hard ones: as much as an unprivileged process may undo.
fn raise_soft_limits() {
    for (resource, _) in RESOURCES {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: reads this process's own limit into a live local.
        let read = unsafe { libc::getrlimit(resource, &raw mut limit) };
        if read == 0 && limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            // SAFETY: sets this process's own limit from a live local.
            unsafe { libc::setrlimit(resource, &raw const limit) };
        }
    }
}

const IOPRIO_WHO_PROCESS: libc::c_int = 1;
const IOPRIO_CLASS_SHIFT: libc::c_int = 13;
const IOPRIO_CLASS_BE: libc::c_int = 2;
const IOPRIO_CLASS_IDLE: libc::c_int = 3;
/// Best effort (class 2), level 4: what a process gets by default.
const IOPRIO_BE_NORMAL: libc::c_int = (2 << IOPRIO_CLASS_SHIFT) | 4;

/// The idle class, or best effort below the normal level (5 to 7).
fn io_priority_is_lowered() -> bool {
    // SAFETY: ioprio_get only reads this process's I/O priority.
    let prio = unsafe { libc::syscall(libc::SYS_ioprio_get, IOPRIO_WHO_PROCESS, 0) };
    let Ok(prio) = libc::c_int::try_from(prio) else {
        return false;
    };
    prio >= 0
        && (prio >> IOPRIO_CLASS_SHIFT == IOPRIO_CLASS_IDLE
            || (prio >> IOPRIO_CLASS_SHIFT == IOPRIO_CLASS_BE && prio & 7 > 4))
}

/// Whether this process may run on fewer CPUs than PID 1 (`taskset` to one loaded CPU starves
/// it). At start, as root, the affinity was reset to PID 1's.
fn cpus_are_restricted() -> bool {
    use nix::sched::sched_getaffinity;
    use nix::unistd::Pid;
    match (
        sched_getaffinity(Pid::from_raw(0)),
        sched_getaffinity(Pid::from_raw(1)),
    ) {
        (Ok(ours), Ok(system)) => (0..nix::sched::CpuSet::count())
            .any(|cpu| system.is_set(cpu).unwrap_or(false) && !ours.is_set(cpu).unwrap_or(false)),
        _ => false,
    }
}

/// A control group of this process, or one above it, that `uid` owns (a delegated subtree, as
/// systemd gives each user's own manager): its owner could freeze (`cgroup.freeze`,
/// `freezer.state`) or throttle (`cpu.max`) everything in it.
fn cgroup_owned_by(uid: u32) -> Option<PathBuf> {
    let memberships = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    for line in memberships.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        for mount in cgroup_mounts(&mounts, id == "0" && controllers.is_empty(), controllers) {
            let Ok(relative) = Path::new(path).strip_prefix(&mount.root) else {
                continue;
            };
            let mut dir = mount.point.join(relative);
            loop {
                if std::fs::metadata(&dir).is_ok_and(|m| m.uid() == uid) {
                    return Some(dir);
                }
                if dir == mount.point || !dir.pop() {
                    break;
                }
            }
        }
    }
    None
}

struct CgroupMount {
    /// Where in the hierarchy the mount starts.
    root: PathBuf,
    point: PathBuf,
}

/// Mounts of the v2 hierarchy (`unified`), or of the v1 hierarchy with these controllers.
fn cgroup_mounts(mountinfo: &str, unified: bool, controllers: &str) -> Vec<CgroupMount> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let fields: Vec<&str> = before.split(' ').collect();
            let after: Vec<&str> = after.split(' ').collect();
            let (fstype, options) = (*after.first()?, *after.get(2).unwrap_or(&""));
            let matches = if unified {
                fstype == "cgroup2"
            } else {
                fstype == "cgroup"
                    && controllers
                        .split(',')
                        .all(|c| options.split(',').any(|o| o == c))
            };
            matches.then(|| CgroupMount {
                root: PathBuf::from(fields.get(3).copied().unwrap_or("/")),
                point: PathBuf::from(fields.get(4).copied().unwrap_or("/nonexistent")),
            })
        })
        .collect()
}

/// Runs `read` in a child process that becomes the store account, and returns the text it
/// produced. For a caller who must still re-authenticate after learning something from the store
/// (`edit` asks for the password only when it widens a code): this process stays the caller,
/// for PAM, while the one that opens the store is out of the caller's reach.
pub fn read_as_store_account(
    read: impl FnOnce() -> Result<String, CtlError>,
) -> Result<String, CtlError> {
    use std::io::{Read, Write};

    use nix::sys::wait::{WaitStatus, waitpid};
    use nix::unistd::ForkResult;

    let failed =
        |e: nix::Error| CtlError::Hindered(format!("could not start a helper process: {e}"));
    let (reader, writer) = nix::unistd::pipe().map_err(failed)?;
    // SAFETY: apppw-ctl never starts a thread, so the child may run any code after fork.
    match unsafe { nix::unistd::fork() }.map_err(failed)? {
        ForkResult::Child => {
            drop(reader);
            // A panic must not unwind into the parent's code in this copy of the process.
            let (status, text) = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(read))
            {
                Ok(Ok(text)) => (0, text),
                Ok(Err(e)) => (1, e.to_string()),
                Err(_) => (2, "the helper process failed".to_string()),
            };
            let _ = std::fs::File::from(writer).write_all(text.as_bytes());
            // No exit handlers and no flushing of buffers that are the parent's to write.
            // SAFETY: _exit ends the process at once; nothing runs after it.
            unsafe { libc::_exit(status) }
        }
        ForkResult::Parent { child } => {
            drop(writer);
            let mut text = String::new();
            let _ = std::fs::File::from(reader).read_to_string(&mut text);
            match waitpid(child, None) {
                Ok(WaitStatus::Exited(_, 0)) => Ok(text),
                Ok(WaitStatus::Exited(_, _)) => Err(CtlError::Helper(text)),
                other => Err(CtlError::Hindered(format!(
                    "the helper process that reads the store ended abnormally ({other:?})"
                ))),
            }
        }
    }
}
