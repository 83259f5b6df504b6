//! The command line, as clap sees it. The spellings here are a contract that scripts and tests
//! rely on: `apppw-ctl [--db PATH] [--store-conf PATH] [--user NAME] [--config PATH] [--json] COMMAND`, where COMMAND
//! is one of new, list, rename, edit, revoke (anyone, for their own codes), audit, prune, init
//! (root) or completions (needs no store and no identity).
#![forbid(unsafe_code)]

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::commands::{
    audit, completions, edit, init, list, lockdown, migrate, new, password_changed, prune, rename,
    revoke,
};

#[derive(Parser)]
#[command(
    name = "apppw-ctl",
    version,
    about = "Create, list, rename and revoke app passwords: per-device passwords for mail clients and other PAM services",
    after_help = "Each app password is shown once, when it is created. Use it in one device's settings instead of your account password, and revoke it when the device is gone."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args)]
pub struct GlobalArgs {
    /// SQLite store to use instead of /var/lib/apppw/apppw.db; refused if store.conf names a store (root only)
    #[arg(long, value_name = "PATH", global = true)]
    pub db: Option<PathBuf>,
    /// Store configuration instead of /etc/apppw/store.conf (root only)
    #[arg(long, value_name = "PATH", global = true)]
    pub store_conf: Option<PathBuf>,
    /// Act on this user's app passwords instead of your own (root only)
    #[arg(long, value_name = "NAME", global = true)]
    pub user: Option<String>,
    /// Configuration file instead of /etc/apppw/apppw.conf (root only)
    #[arg(long, value_name = "PATH", global = true)]
    pub config: Option<PathBuf>,
    /// Print machine-readable JSON instead of text
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Subcommand)]
pub enum Command {
    #[command(flatten)]
    Managing(ManagingCommand),
    /// Print a shell completion script (bash, zsh, fish)
    Completions(completions::CompletionsArgs),
    /// One signed-in session of apppw-web, on a socket systemd hands over (root only; apppw-web(8))
    #[command(hide = true)]
    WebSession(WebSessionArgs),
    /// One request of a web session, for its helper (root only)
    #[command(hide = true)]
    WebAct(WebActArgs),
}

/// `web-session` takes nothing: its socket is its stdin and stdout.
#[derive(Args)]
pub struct WebSessionArgs {}

/// `web-act`: one request of a web session, run by its helper as root (`web::act`), which
/// hands it the request on stdin.
#[derive(Args)]
pub struct WebActArgs {}

/// What a web session may ask for (`web::act`): the commands a user runs on their own codes,
/// parsed from the words the front sends exactly as from a command line.
#[derive(Parser)]
#[command(name = "apppw-web", no_binary_name = true)]
pub struct WebRequest {
    #[command(subcommand)]
    pub command: WebCommand,
}

#[derive(Subcommand)]
pub enum WebCommand {
    New(new::NewArgs),
    List(list::ListArgs),
    Rename(rename::RenameArgs),
    Edit(edit::EditArgs),
    Revoke(revoke::RevokeArgs),
}

impl From<WebCommand> for ManagingCommand {
    fn from(command: WebCommand) -> ManagingCommand {
        match command {
            WebCommand::New(args) => ManagingCommand::New(args),
            WebCommand::List(args) => ManagingCommand::List(args),
            WebCommand::Rename(args) => ManagingCommand::Rename(args),
            WebCommand::Edit(args) => ManagingCommand::Edit(args),
            WebCommand::Revoke(args) => ManagingCommand::Revoke(args),
        }
    }
}

/// The commands that act for someone on the store (and so need to know who is asking).
#[derive(Subcommand)]
pub enum ManagingCommand {
    /// Create an app password for one device and show it once
    New(new::NewArgs),
    /// List your active app passwords
    List(list::ListArgs),
    /// Change the label of an app password
    Rename(rename::RenameArgs),
    /// Change the label or the limits (services, networks, expiry) of an app password
    Edit(edit::EditArgs),
    /// Revoke one app password, or all of them with --all
    Revoke(revoke::RevokeArgs),
    /// Every user's app passwords with their last use, stale ones first (root only)
    Audit(audit::AuditArgs),
    /// Revoke every app password of a user who may be compromised, and show where each was used (root only)
    Lockdown(lockdown::LockdownArgs),
    /// Revoke your app passwords after a password change (run by pam_apppw from the password stack)
    PasswordChanged(password_changed::PasswordChangedArgs),
    /// Delete the records of revoked app passwords (root only)
    Prune(prune::PruneArgs),
    /// Set up this host: the apppw group, the store directory and database, the config (root only)
    Init(init::InitArgs),
    /// Copy every row of the store into an empty one, e.g. from SQLite to PostgreSQL, and check the copy (root only)
    Migrate(migrate::MigrateArgs),
}
