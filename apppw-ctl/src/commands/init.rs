//! `apppw-ctl init`: set up a host (root only), or repair it; safe to run again. It creates the
//! system group and account `apppw` (the account apppw-ctl becomes before it opens the store: see
//! `privilege.rs`), the store directory (root:apppw, mode 2770: the setgid bit makes the
//! -wal and -shm files that root services create belong to the group too), the database
//! (root:apppw 0660), and a commented configuration file. The packages run it on install.
#![forbid(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use apppw_core::config::DEFAULT_CONFIG_TEXT;
use apppw_core::secure_path::{STORE_GROUP, store_gid};
use apppw_core::store::{PgStore, PgTarget, StoreTarget};
use apppw_core::store_config::read_secret_url;
use clap::Args;

use super::open_store;
use crate::context::Context;
use crate::error::CtlError;
use crate::privilege::STORE_ACCOUNT;

#[derive(Args)]
pub struct InitArgs {
    /// For a PostgreSQL store (store.conf's manage_store): a root-only file holding the URL of a
    /// database superuser, which creates the roles and the schema; `-` reads it from stdin. Never
    /// on the command line: other users can read a process's arguments.
    #[arg(long, value_name = "FILE")]
    pub admin_url: Option<PathBuf>,
}

fn setup_error(action: String, e: impl std::fmt::Display) -> CtlError {
    CtlError::Setup {
        action,
        reason: e.to_string(),
    }
}

pub fn run(ctx: &Context, args: &InitArgs) -> Result<(), CtlError> {
    ctx.require_root("init")?;
    let mut done = Vec::new();

    let gid = if let Some(gid) = store_gid() {
        gid
    } else {
        let status = Command::new("/usr/sbin/groupadd")
            .args(["--system", STORE_GROUP])
            .status()
            .map_err(|e| setup_error(format!("running groupadd --system {STORE_GROUP}"), e))?;
        if !status.success() {
            return Err(setup_error(
                format!("groupadd --system {STORE_GROUP}"),
                status,
            ));
        }
        done.push(format!("created the system group {STORE_GROUP}"));
        store_gid().ok_or_else(|| {
            setup_error(
                format!("looking up group {STORE_GROUP}"),
                "not found after groupadd",
            )
        })?
    };

    if nix::unistd::User::from_name(STORE_ACCOUNT)
        .ok()
        .flatten()
        .is_none()
    {
        let args = [
            "--system",
            "--gid",
            STORE_GROUP,
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            "--comment",
            "apppw store",
            STORE_ACCOUNT,
        ];
        let status = Command::new("/usr/sbin/useradd")
            .args(args)
            .status()
            .map_err(|e| setup_error(format!("running useradd {}", args.join(" ")), e))?;
        if !status.success() {
            return Err(setup_error(format!("useradd {}", args.join(" ")), status));
        }
        done.push(format!("created the system account {STORE_ACCOUNT}"));
    }

    match ctx.store_target()? {
        StoreTarget::Sqlite(path) => {
            if args.admin_url.is_some() {
                return Err(setup_error(
                    "reading --admin-url".into(),
                    "the store is an SQLite file (store.conf names no PostgreSQL manage_store); --admin-url is for PostgreSQL",
                ));
            }
            init_sqlite(ctx, &path, gid, &mut done)?;
        }
        StoreTarget::Postgres(target) => init_postgres(ctx, &target, args, &mut done)?,
    }

    if !ctx.config_path.exists() {
        if let Some(parent) = ctx.config_path.parent() {
            create_public_dir(parent)?;
        }
        std::fs::write(&ctx.config_path, DEFAULT_CONFIG_TEXT)
            .map_err(|e| setup_error(format!("writing {}", ctx.config_path.display()), e))?;
        std::fs::set_permissions(&ctx.config_path, PermissionsExt::from_mode(0o644))
            .map_err(|e| setup_error(format!("chmod {}", ctx.config_path.display()), e))?;
        done.push(format!("wrote {}", ctx.config_path.display()));
    }

    let mut report = if done.is_empty() {
        "Nothing to do: apppw is set up.\n".to_string()
    } else {
        done.iter().fold(String::new(), |mut report, d| {
            report.push_str("apppw-ctl init: ");
            report.push_str(d);
            report.push('\n');
            report
        })
    };
    if let Some(hint) = setuid_hint() {
        report.push_str(&hint);
    }
    ctx.out.text(&report)
}

/// The SQLite store: its directory (root:apppw 2770) and file (root:apppw 0660), created or
/// repaired.
fn init_sqlite(
    ctx: &Context,
    path: &Path,
    gid: u32,
    done: &mut Vec<String>,
) -> Result<(), CtlError> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    if !dir.exists() {
        create_public_dir(dir)?;
        done.push(format!("created {}", dir.display()));
    }
    set_owner_and_mode(dir, Kind::Directory, gid, 0o2770, done)?;

    let existed = path.exists();
    drop(open_store(ctx, true)?);
    if !existed {
        done.push(format!("created the store {}", path.display()));
    }
    set_owner_and_mode(path, Kind::File, gid, 0o660, done)?;
    for suffix in ["-wal", "-shm"] {
        let side = path.with_file_name(format!(
            "{}{suffix}",
            path.file_name().unwrap_or_default().to_string_lossy()
        ));
        // Usually gone: SQLite removes both when the last connection closes.
        set_owner_and_mode(&side, Kind::FileIfPresent, gid, 0o660, done)?;
    }
    Ok(())
}

/// The PostgreSQL store: the roles and the schema, made or upgraded as the superuser whose URL
/// `--admin-url` gives, then a check that apppw-ctl's own URL (manage_store) reaches it.
fn init_postgres(
    ctx: &Context,
    target: &PgTarget,
    args: &InitArgs,
    done: &mut Vec<String>,
) -> Result<(), CtlError> {
    let Some(source) = &args.admin_url else {
        return Err(setup_error(
            format!("setting up the PostgreSQL store {}", target.location()),
            "it needs a database superuser once: put its postgresql:// URL in a file only root can read and run `apppw-ctl init --admin-url FILE` (or `--admin-url -` to read it from stdin)",
        ));
    };
    let text = read_secret_url(source)?;
    let admin = PgTarget::parse(text.trim(), false)?;
    let report = PgStore::initialize(&admin)?;
    for role in &report.created_roles {
        done.push(format!("created the database role {role}"));
    }
    if report.version_before != report.version_after {
        done.push(format!(
            "{} the schema apppw in {} (version {} to {})",
            if report.version_before == 0 {
                "created"
            } else {
                "upgraded"
            },
            admin.location(),
            report.version_before,
            report.version_after
        ));
    }
    // apppw-ctl's own user must reach it; say how to make one if it cannot.
    drop(open_store(ctx, false).map_err(|e| {
        setup_error(
            format!("opening {} as apppw-ctl (manage_store)", target.location()),
            format!(
                "{e}. Make apppw-ctl's database user with, e.g., CREATE ROLE apppw_ctl LOGIN PASSWORD '...' IN ROLE apppw_manage; and the PAM module's with CREATE ROLE apppw_mail LOGIN PASSWORD '...' IN ROLE apppw_login;"
            ),
        )
    })?);
    Ok(())
}

/// Creates `dir` and any missing parents as root's, mode 0755 (our umask would make them 0770).
fn create_public_dir(dir: &Path) -> Result<(), CtlError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .map_err(|e| setup_error(format!("creating {}", dir.display()), e))?;
    // DirBuilder's mode is filtered by the umask.
    std::fs::set_permissions(dir, PermissionsExt::from_mode(0o755))
        .map_err(|e| setup_error(format!("chmod 755 {}", dir.display()), e))
}

/// What init expects to find at a path it repairs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Directory,
    File,
    /// A regular file, or nothing (the -wal and -shm files).
    FileIfPresent,
}

/// Gives `path` owner root:`gid` and `mode`, through a descriptor of the file itself: the store
/// directory is writable by the apppw group, whose members could otherwise swap a store file for
/// a symbolic link (to /etc/shadow, say) between a check by name and a chown by name, which
/// follows links. O_NOFOLLOW refuses a link, O_NONBLOCK keeps a FIFO from blocking the open, and
/// anything but a directory or a regular file with one name (a hard link to another file) is
/// refused before its owner or mode changes.
fn set_owner_and_mode(
    path: &Path,
    kind: Kind,
    gid: u32,
    mode: u32,
    done: &mut Vec<String>,
) -> Result<(), CtlError> {
    let flags = libc::O_NOFOLLOW
        | libc::O_NONBLOCK
        | if kind == Kind::Directory {
            libc::O_DIRECTORY
        } else {
            0
        };
    let file: File = match OpenOptions::new().read(true).custom_flags(flags).open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound && kind == Kind::FileIfPresent => {
            return Ok(());
        }
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(setup_error(
                format!("repairing {}", path.display()),
                "it is a symbolic link; remove it (nothing in the store directory may be one) and run init again",
            ));
        }
        Err(e) => return Err(setup_error(format!("opening {}", path.display()), e)),
    };
    let meta = file
        .metadata()
        .map_err(|e| setup_error(format!("examining {}", path.display()), e))?;
    if kind == Kind::Directory && !meta.is_dir() {
        return Err(setup_error(
            format!("repairing {}", path.display()),
            "it is not a directory",
        ));
    }
    if kind != Kind::Directory && !(meta.file_type().is_file() && meta.nlink() == 1) {
        return Err(setup_error(
            format!("repairing {}", path.display()),
            "it is not a regular file with a single name; move it aside and run init again",
        ));
    }
    if meta.uid() != 0 || meta.gid() != gid {
        std::os::unix::fs::fchown(&file, Some(0), Some(gid))
            .map_err(|e| setup_error(format!("chown root:{STORE_GROUP} {}", path.display()), e))?;
        done.push(format!(
            "set the owner of {} to root:{STORE_GROUP}",
            path.display()
        ));
    }
    if meta.mode() & 0o7777 != mode {
        file.set_permissions(PermissionsExt::from_mode(mode))
            .map_err(|e| setup_error(format!("chmod {mode:o} {}", path.display()), e))?;
        done.push(format!("set the mode of {} to {mode:o}", path.display()));
    }
    Ok(())
}

/// Users can only reach the store through apppw-ctl if it is setuid root (it becomes the apppw
/// account before touching the store); say so if it is not.
fn setuid_hint() -> Option<String> {
    let exe = std::env::current_exe().ok()?;
    let meta = std::fs::metadata(&exe).ok()?;
    if meta.uid() == 0 && meta.mode() & 0o4000 != 0 {
        return None;
    }
    Some(format!(
        "Note: {0} is not setuid root, so only root can use it. To let users manage their own app passwords:\n    chown root:root {0} && chmod 4755 {0}\n",
        exe.display()
    ))
}
