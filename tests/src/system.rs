//! The installed layout, for tests that need real privilege bits: apppw-ctl copied to a system
//! directory as root:root mode 4755 (it becomes the apppw account before touching the store),
//! `apppw-ctl init` run for the default store and config, and the shipped /etc/pam.d/apppw-ctl.
//! These tests change the host (/var/lib/apppw, /etc/apppw, /etc/pam.d/apppw-ctl, users), so
//! they are `#[ignore]`d with [`crate::CHANGES_THE_HOST`]; scripts/test.sh runs them as root
//! under `CI=true` or `APPPW_SYSTEM_TESTS=1`.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard, OnceLock};

use crate::{assert_success, ctl_binary, require, require_root, run_with_stdin};

/// Where the tests install the setuid apppw-ctl.
pub const INSTALLED_CTL: &str = "/usr/local/libexec/apppw-test/apppw-ctl";
pub const SYSTEM_STORE: &str = "/var/lib/apppw/apppw.db";
pub const SYSTEM_CONFIG: &str = "/etc/apppw/apppw.conf";

/// Exclusive use of the installed system (one test at a time: they share store and config).
pub struct System {
    _turn: MutexGuard<'static, ()>,
}

/// Sets up the installed layout once and takes a turn on it. Fails the test where that cannot
/// be done (not root, python3 missing).
pub fn system() -> System {
    static TURN: Mutex<()> = Mutex::new(());
    static INSTALLED: OnceLock<()> = OnceLock::new();
    require_root("system tests install a setuid apppw-ctl and write to /etc and /var/lib");
    require(
        Path::new("/usr/bin/python3").exists(),
        "/usr/bin/python3 (for a pseudo-terminal)",
        "scripts/packages.sh installs it (Debian: python3)",
    );
    let turn = TURN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    INSTALLED.get_or_init(install);
    // Every test starts from the default configuration.
    std::fs::write(SYSTEM_CONFIG, apppw_core::config::DEFAULT_CONFIG_TEXT).unwrap();
    System { _turn: turn }
}

fn install() {
    let target = Path::new(INSTALLED_CTL);
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    // Copied beside and renamed into place: a helper still running the old binary (a web
    // session of an earlier test) would make a copy over it fail with ETXTBSY.
    let fresh = target.with_extension("new");
    std::fs::copy(ctl_binary(), &fresh).unwrap();
    std::fs::rename(&fresh, target).unwrap();
    let init = root_ctl_at(target, &["init"]);
    assert_success(&init);
    run(&["chown", "root:root", INSTALLED_CTL]);
    run(&["chmod", "4755", INSTALLED_CTL]);
    let pam = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/pam.d/apppw-ctl");
    std::fs::copy(pam, "/etc/pam.d/apppw-ctl").unwrap();
}

fn run(args: &[&str]) {
    let status = Command::new(args[0]).args(&args[1..]).status().unwrap();
    assert!(status.success(), "{args:?}");
}

fn root_ctl_at(binary: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(binary);
    cmd.args(args);
    run_with_stdin(cmd, b"")
}

impl Drop for System {
    /// Leaves the default configuration behind for whatever runs next.
    fn drop(&mut self) {
        let _ = std::fs::write(SYSTEM_CONFIG, apppw_core::config::DEFAULT_CONFIG_TEXT);
        let _ = std::fs::set_permissions(
            SYSTEM_CONFIG,
            std::os::unix::fs::PermissionsExt::from_mode(0o644),
        );
    }
}

impl System {
    /// The installed apppw-ctl, run by root.
    pub fn root(&self, args: &[&str]) -> Output {
        root_ctl_at(Path::new(INSTALLED_CTL), args)
    }

    /// The installed apppw-ctl run by `user`, without a terminal.
    pub fn user(&self, user: &str, args: &[&str]) -> Output {
        let mut cmd = self.user_command(user);
        cmd.args(args);
        run_with_stdin(cmd, b"")
    }

    /// A command that runs the installed apppw-ctl as `user`, for arguments and environment of
    /// the caller's choosing.
    pub fn user_command(&self, user: &str) -> Command {
        crate::as_user(Some(user), Path::new(INSTALLED_CTL))
    }

    /// The installed apppw-ctl run by `user` on a pseudo-terminal; `answers` are typed at the
    /// prompts. Returns the exit status and what the terminal showed.
    pub fn user_at_terminal(
        &self,
        user: &str,
        args: &[&str],
        answers: &[&str],
    ) -> (Option<i32>, String) {
        crate::at_terminal(user, Path::new(INSTALLED_CTL), args, answers)
    }

    /// Replaces the configuration for this test (restored to the default by the next `system()`).
    pub fn configure(&self, text: &str) {
        std::fs::write(SYSTEM_CONFIG, text).unwrap();
    }

    pub fn store(&self) -> PathBuf {
        PathBuf::from(SYSTEM_STORE)
    }
}
