//! Checks that a file apppw trusts (the store, its directory, the config file) is what it should
//! be before it is used: not a symlink, owned by root, and out of reach of everyone who should not
//! reach it. The same checks serve the PAM module and the CLI; each failure names the path and the
//! command that fixes it.
#![forbid(unsafe_code)]

use std::fs::Metadata;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// The system group that may open the store (apppw-ctl is setgid to it).
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

/// Groups that may own the store and its directory: root's, and the store group.
fn trusted_gids() -> Vec<u32> {
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
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
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

/// Checks the store's directory and, if it exists, the store file. A missing file is fine here
/// (opening reports it); a symlink, a non-regular file, a foreign owner or group, or any access
/// for "other" is refused.
pub fn check_store_path(store: &Path) -> Result<(), UnsafePath> {
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
    let gids = trusted_gids();
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
    if let Some(meta) = lstat(store)? {
        let kind = meta.file_type();
        if kind.is_symlink()
            || kind.is_dir()
            || kind.is_fifo()
            || kind.is_socket()
            || kind.is_block_device()
            || kind.is_char_device()
        {
            return Err(unsafe_path(
                store,
                "it is not a regular file (a symlink, directory or device)".into(),
                "Move it aside; apppw never follows a symlink to its store".into(),
            ));
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
    }
    Ok(())
}

/// Checks a configuration file: root's, a regular file, and not writable by group or others.
/// Returns `Ok(false)` when it does not exist.
pub fn check_config_path(config: &Path) -> Result<bool, UnsafePath> {
    if let Some(dir) = config.parent() {
        check_ancestors(dir)?;
    }
    let Some(meta) = lstat(config)? else {
        return Ok(false);
    };
    if !meta.file_type().is_file() {
        return Err(unsafe_path(
            config,
            "it is not a regular file".into(),
            "Replace it with a regular file".into(),
        ));
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
        ));
    }
    Ok(true)
}
