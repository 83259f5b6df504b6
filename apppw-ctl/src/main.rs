//! apppw-ctl: manage app passwords. `main` hardens the process, drops privilege to the caller,
//! parses the command line, resolves who is asking, and dispatches; each subcommand lives in
//! `commands/`. Once the command has returned (and with it closed the store), `main` runs the
//! revoke hooks and writes the output.
#![deny(unsafe_code)]

mod audit_log;
mod clean_exec;
mod cli;
mod commands;
mod context;
mod error;
mod hooks;
mod origin;
mod output;
mod privilege;
mod reauth;
mod startup;
mod web;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command, ManagingCommand};
use crate::context::Context;
use crate::error::CtlError;

fn main() -> ExitCode {
    startup::harden();
    privilege::at_start();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version land here too and exit 0; usage errors exit 2.
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    if let Command::WebAct(args) = &cli.command {
        return web::act::serve(args);
    }
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A closed stderr must not turn into a panic; the exit status still tells.
            let message = format!("apppw-ctl: {e}\n");
            let _ = output::write_within(&std::io::stderr(), message.as_bytes());
            ExitCode::from(1)
        }
    }
}

fn run(cli: &Cli) -> Result<(), CtlError> {
    let command = match &cli.command {
        Command::Completions(args) => return commands::completions::run(args),
        Command::WebSession(args) => return web::serve(&cli.global, args),
        Command::WebAct(_) => unreachable!("web-act is served before"),
        Command::Managing(command) => command,
    };
    let ctx = Context::resolve(&cli.global)?;
    run_managing(&ctx, command)
}

/// Runs `command`, then what waits until its store is closed: the revoke hooks, and the output
/// with the notes for the caller. The command line and a web session's child (`web::act`) both
/// come through here.
fn run_managing(ctx: &Context, command: &ManagingCommand) -> Result<(), CtlError> {
    dispatch(ctx, command)?;
    // Every store is closed by now.
    let mut notes = ctx.notes.take();
    for owner in ctx.revoked_owners.borrow().iter() {
        if let Some(warning) = hooks::after_revoke(ctx, owner) {
            notes.push(format!("warning: {warning}"));
        }
    }
    match ctx.out.flush(&notes) {
        Ok(()) => Ok(()),
        Err((e, Some(unseen))) => commands::new::withdraw(ctx, unseen, e),
        Err((e, None)) => Err(CtlError::Output(e)),
    }
}

fn dispatch(ctx: &Context, command: &ManagingCommand) -> Result<(), CtlError> {
    match command {
        ManagingCommand::New(args) => commands::new::run(ctx, args),
        ManagingCommand::List(args) => commands::list::run(ctx, args),
        ManagingCommand::Rename(args) => commands::rename::run(ctx, args),
        ManagingCommand::Edit(args) => commands::edit::run(ctx, args),
        ManagingCommand::Revoke(args) => commands::revoke::run(ctx, args),
        ManagingCommand::Audit(args) => commands::audit::run(ctx, args),
        ManagingCommand::Lockdown(args) => commands::lockdown::run(ctx, args),
        ManagingCommand::PasswordChanged(args) => commands::password_changed::run(ctx, args),
        ManagingCommand::Prune(args) => commands::prune::run(ctx, args),
        ManagingCommand::Migrate(args) => commands::migrate::run(ctx, args),
        ManagingCommand::Init(args) => commands::init::run(ctx, args),
    }
}
