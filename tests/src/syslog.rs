//! A syslog receiver for tests: binds /dev/log (this machine has no syslog daemon) and keeps every
//! datagram, so tests can check what apppw-ctl and pam_apppw really logged. Beside each datagram
//! it keeps what the kernel says about it, as journald does on its own /dev/log: the sender's
//! credentials (SO_PASSCRED) and when it was sent (SO_TIMESTAMP).
#![forbid(unsafe_code)]

use std::io::IoSliceMut;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use nix::sys::socket::{self, ControlMessageOwned, MsgFlags, UnixAddr, UnixCredentials, sockopt};
use nix::sys::time::{TimeSpec, TimeVal};
use nix::time::{ClockId, clock_gettime};

const DEV_LOG: &str = "/dev/log";

/// One datagram as the kernel delivered it, with what journald records beside its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// The bytes sent, as text (`<PRI>Mmm dd hh:mm:ss ident[pid]: message` from syslog(3)).
    pub text: String,
    /// The sender's process, user and group, vouched for by the kernel (SCM_CREDENTIALS):
    /// journald's `_PID`, `_UID` and `_GID`.
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
    /// When it was sent (SCM_TIMESTAMP), in microseconds since the epoch: journald's
    /// `_SOURCE_REALTIME_TIMESTAMP`.
    pub sent_usec: u64,
    /// When it was read, in microseconds since the epoch and on CLOCK_MONOTONIC: journald's
    /// `__REALTIME_TIMESTAMP` and `__MONOTONIC_TIMESTAMP`.
    pub received_usec: u64,
    pub received_monotonic_usec: u64,
}

pub struct SyslogListener {
    /// Each datagram, or why what came with it could not be read.
    received: Arc<Mutex<Vec<Result<Datagram, String>>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SyslogListener {
    /// Binds /dev/log. Fails the test if something else already serves it (a syslog daemon, or
    /// systemd-journald's socket): what is logged would go there, out of the test's sight. CI
    /// machines have none.
    pub fn start() -> SyslogListener {
        assert!(
            !Path::new(DEV_LOG).exists(),
            "{DEV_LOG} exists: a syslog daemon serves it here, so this test cannot see what is \
             logged; run it where nothing serves {DEV_LOG} (a disposable machine, as CI uses), \
             or stop the daemon and remove {DEV_LOG}"
        );
        let socket = UnixDatagram::bind(DEV_LOG)
            .unwrap_or_else(|e| panic!("bind {DEV_LOG} to receive what is logged: {e}"));
        std::fs::set_permissions(DEV_LOG, std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .expect("let every user write to /dev/log");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("a read timeout on /dev/log");
        socket::setsockopt(&socket, sockopt::PassCred, &true).expect("SO_PASSCRED on /dev/log");
        socket::setsockopt(&socket, sockopt::ReceiveTimestamp, &true)
            .expect("SO_TIMESTAMP on /dev/log");
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (sink, halt) = (received.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            let mut cmsg = nix::cmsg_space!(UnixCredentials, TimeVal);
            while !halt.load(Ordering::Relaxed) {
                if let Some(datagram) = receive(&socket, &mut buf, &mut cmsg) {
                    sink.lock().unwrap().push(datagram);
                }
            }
        });
        SyslogListener {
            received,
            stop,
            thread: Some(thread),
        }
    }

    /// The text of everything received so far, after giving in-flight datagrams a moment to
    /// arrive.
    pub fn lines(&self) -> Vec<String> {
        self.datagrams().into_iter().map(|d| d.text).collect()
    }

    /// Everything received so far, with the kernel's word on each, after giving in-flight
    /// datagrams a moment to arrive. Fails the test if the kernel's word was missing.
    pub fn datagrams(&self) -> Vec<Datagram> {
        std::thread::sleep(Duration::from_millis(100));
        self.received
            .lock()
            .unwrap()
            .iter()
            .map(|d| d.clone().unwrap_or_else(|e| panic!("{e}")))
            .collect()
    }
}

/// Reads one datagram and its control messages; `None` when none came before the timeout.
fn receive(
    socket: &UnixDatagram,
    buf: &mut [u8],
    cmsg: &mut Vec<u8>,
) -> Option<Result<Datagram, String>> {
    let mut iov = [IoSliceMut::new(buf)];
    let msg =
        socket::recvmsg::<UnixAddr>(socket.as_raw_fd(), &mut iov, Some(cmsg), MsgFlags::empty())
            .ok()?;
    let (received_usec, received_monotonic_usec) = (now_usec(), monotonic_usec());
    let mut credentials = None;
    let mut sent = None;
    for c in msg.cmsgs().ok()? {
        match c {
            ControlMessageOwned::ScmCredentials(cred) => {
                credentials = Some((cred.pid(), cred.uid(), cred.gid()));
            }
            ControlMessageOwned::ScmTimestamp(tv) => {
                sent = Some(usec(tv.tv_sec(), tv.tv_usec()));
            }
            _ => {}
        }
    }
    let len = msg.bytes;
    let text = String::from_utf8_lossy(&iov[0][..len]).into_owned();
    Some(match (credentials, sent) {
        (Some((pid, uid, gid)), Some(sent_usec)) => Ok(Datagram {
            text,
            pid,
            uid,
            gid,
            sent_usec,
            received_usec,
            received_monotonic_usec,
        }),
        _ => Err(format!(
            "the kernel sent no credentials or no timestamp with {text:?} (SO_PASSCRED and \
             SO_TIMESTAMP are set on {DEV_LOG})"
        )),
    })
}

fn now_usec() -> u64 {
    let since = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("a clock after 1970");
    u64::try_from(since.as_micros()).expect("microseconds fit in 64 bits")
}

fn monotonic_usec() -> u64 {
    let t: TimeSpec = clock_gettime(ClockId::CLOCK_MONOTONIC).expect("CLOCK_MONOTONIC");
    usec(t.tv_sec(), t.tv_nsec() / 1000)
}

/// Seconds and microseconds as microseconds.
fn usec(seconds: i64, micros: i64) -> u64 {
    u64::try_from(seconds * 1_000_000 + micros).expect("a time after the clock's zero")
}

impl Drop for SyslogListener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(DEV_LOG);
    }
}
