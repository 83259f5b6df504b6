//! A syslog receiver for tests: binds /dev/log (this machine has no syslog daemon) and keeps every
//! datagram, so tests can check what apppw-ctl and pam_apppw really logged.
#![forbid(unsafe_code)]

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

const DEV_LOG: &str = "/dev/log";

pub struct SyslogListener {
    lines: Arc<Mutex<Vec<String>>>,
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
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (sink, halt) = (lines.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while !halt.load(Ordering::Relaxed) {
                if let Ok(n) = socket.recv(&mut buf) {
                    sink.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&buf[..n]).into_owned());
                }
            }
        });
        SyslogListener {
            lines,
            stop,
            thread: Some(thread),
        }
    }

    /// Everything received so far, after giving in-flight datagrams a moment to arrive.
    pub fn lines(&self) -> Vec<String> {
        std::thread::sleep(Duration::from_millis(100));
        self.lines.lock().unwrap().clone()
    }
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
