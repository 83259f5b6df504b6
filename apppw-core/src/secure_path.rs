//! Checks that a file apppw trusts (the store, its directory, the config file) is what it should
//! be: not a symlink, owned by root, and out of reach of everyone who should not reach it.
//! Directories are checked by path (everything above them is root's alone); the files themselves
//! are opened without following symlinks and checked as opened (`fstat`). The same checks serve
//! the PAM module and the CLI; each failure names the path and the command that fixes it.
#![forbid(unsafe_code)]

use std::fs::{File, Metadata, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The system group that owns the store's directory and file (the `apppw` account's group).
pub const STORE_GROUP: &str = "apppw";

/// Why a path is not trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path} is not safe to use: {problem}. {fix}")]
pub struct UnsafePath {
    pub path: PathBuf,
    pub problem: String,
    pub fix: String,
}

/// The gid of the store group, if the host has one.
pub fn store_gid() -> Option<u32> {
    nix::unistd::Group::from_name(STORE_GROUP)
        .ok()
        .flatten()
        .map(|g| g.gid.as_raw())
}

/// Groups that may own the store and its directory: root's, and the store group (one NSS lookup;
/// look it up once per open).
pub fn trusted_gids() -> Vec<u32> {
    let mut gids = vec![0];
    gids.extend(store_gid());
    gids
}

fn unsafe_path(path: &Path, problem: String, fix: String) -> UnsafePath {
    UnsafePath {
        path: path.to_path_buf(),
        problem,
        fix,
    }
}

fn lstat(path: &Path) -> Result<Option<Metadata>, UnsafePath> {
    match std::fs::symlink_metadata(path) {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(unsafe_path(
            path,
            format!("it cannot be examined ({e})"),
            "Check the permissions of its parent directories".into(),
        )),
    }
}

/// Every directory from `/` down to `dir` must be owned by root and writable by nobody else
/// (sticky directories like /tmp excepted), so nobody else can swap what lies below.
fn check_ancestors(dir: &Path) -> Result<(), UnsafePath> {
    let mut current = PathBuf::new();
    for part in dir.components() {
        current.push(part);
        let Some(meta) = lstat(&current)? else {
            return Ok(()); // the caller reports the missing path itself
        };
        if meta.file_type().is_symlink() {
            // System layouts use symlinked ancestors (/var/run); follow only root-owned ones.
            if meta.uid() != 0 {
                return Err(unsafe_path(
                    &current,
                    "it is a symlink not owned by root".into(),
                    "Use a path whose directories are all root's".into(),
                ));
            }
            continue;
        }
        let sticky = meta.mode() & 0o1000 != 0;
        if meta.uid() != 0 || (meta.mode() & 0o022 != 0 && !sticky) {
            return Err(unsafe_path(
                &current,
                format!(
                    "it is owned by uid {} with mode {:o}, so someone other than root could replace what lies below it",
                    meta.uid(),
                    meta.mode() & 0o7777
                ),
                format!("Run: chown root {0} && chmod go-w {0}", current.display()),
            ));
        }
    }
    Ok(())
}

/// Checks the directories above the store and the store's own directory, by path: every directory
/// above must be root's alone, the store's directory root's with group root or the store group and
/// no access for others. A missing directory is left for opening the store to report.
pub fn check_store_directory(store: &Path, gids: &[u32]) -> Result<(), UnsafePath> {
    let dir = store
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    // The store directory itself is group-writable by design (root:apppw 2770); everything above
    // it must be root's alone.
    if let Some(above) = dir.parent() {
        check_ancestors(above)?;
    }
    if let Some(meta) = lstat(&dir)? {
        if !meta.is_dir() {
            return Err(unsafe_path(
                &dir,
                "it is not a directory".into(),
                "Run `apppw-ctl init` as root to create the store directory".into(),
            ));
        }
        if meta.uid() != 0 || !gids.contains(&meta.gid()) || meta.mode() & 0o007 != 0 {
            return Err(unsafe_path(
                &dir,
                format!(
                    "the store directory is owned by {}:{} with mode {:o}; it must be root's, group root or {STORE_GROUP}, with no access for others",
                    meta.uid(),
                    meta.gid(),
                    meta.mode() & 0o7777
                ),
                format!(
                    "Run `apppw-ctl init` as root, or: chown root:{STORE_GROUP} {0} && chmod 2770 {0}",
                    dir.display()
                ),
            ));
        }
    }
    Ok(())
}

/// Checks the store file as it was opened (`meta` comes from `fstat` on a descriptor opened
/// without following symlinks): a regular file, root's, group root or the store group, and no
/// access for others.
pub fn check_store_file(store: &Path, meta: &Metadata, gids: &[u32]) -> Result<(), UnsafePath> {
    if !meta.file_type().is_file() {
        return Err(not_a_regular_store(store));
    }
    if meta.uid() != 0 || !gids.contains(&meta.gid()) || meta.mode() & 0o007 != 0 {
        return Err(unsafe_path(
            store,
            format!(
                "it is owned by {}:{} with mode {:o}; it must be root's, group root or {STORE_GROUP}, with no access for others",
                meta.uid(),
                meta.gid(),
                meta.mode() & 0o7777
            ),
            format!(
                "Run: chown root:{STORE_GROUP} {0} && chmod 0660 {0}",
                store.display()
            ),
        ));
    }
    Ok(())
}

/// The store path names a symlink, directory, device or other non-regular file.
pub fn not_a_regular_store(store: &Path) -> UnsafePath {
    unsafe_path(
        store,
        "it is not a regular file (a symlink, directory or device)".into(),
        "Move it aside; apppw never follows a symlink to its store".into(),
    )
}

/// Opens a configuration file once, without following a symlink, and checks the open file: a
/// regular file, root's, and not writable by group or others; its directories must be root's
/// alone. Returns `Ok(None)` when it does not exist. The caller reads the file it checked, not
/// whatever the path names a moment later.
pub fn open_config(config: &Path) -> Result<Option<(File, Metadata)>, OpenConfigError> {
    if let Some(dir) = config.parent() {
        check_ancestors(dir)?;
    }
    let not_regular = || {
        unsafe_path(
            config,
            "it is not a regular file".into(),
            "Replace it with a regular file".into(),
        )
    };
    let file = match OpenOptions::new()
        .read(true)
        // O_NONBLOCK: a FIFO in its place must not hang the login; it is refused below.
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(config)
    {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        // O_NOFOLLOW's answer when the file itself is a symlink.
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(not_regular().into()),
        Err(e) => return Err(OpenConfigError::Unreadable(e)),
    };
    let meta = file.metadata().map_err(OpenConfigError::Unreadable)?;
    if !meta.file_type().is_file() {
        return Err(not_regular().into());
    }
    if meta.uid() != 0 || meta.mode() & 0o022 != 0 {
        return Err(unsafe_path(
            config,
            format!(
                "it is owned by uid {} with mode {:o}; only root may be able to change it",
                meta.uid(),
                meta.mode() & 0o7777
            ),
            format!("Run: chown root {0} && chmod 0644 {0}", config.display()),
        )
        .into());
    }
    Ok(Some((file, meta)))
}

/// Why `open_config` could not give a checked configuration file.
#[derive(Debug)]
pub enum OpenConfigError {
    /// It is not what a trusted file must be.
    Unsafe(UnsafePath),
    /// It could not be opened or examined (permissions, I/O).
    Unreadable(std::io::Error),
}

impl From<UnsafePath> for OpenConfigError {
    fn from(e: UnsafePath) -> Self {
        OpenConfigError::Unsafe(e)
    }
}
