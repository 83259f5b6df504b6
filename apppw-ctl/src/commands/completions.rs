//! `apppw-ctl completions bash|zsh|fish`: a completion script, generated from the same clap
//! definitions as the parser, so it cannot drift. The packages install them.
#![forbid(unsafe_code)]

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use crate::cli::Cli;
use crate::error::CtlError;

#[derive(Args)]
pub struct CompletionsArgs {
    /// bash, zsh or fish
    pub shell: Shell,
}

/// Needs no store, no configuration and no identity: it only prints.
pub fn run(args: &CompletionsArgs) -> Result<(), CtlError> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "apppw-ctl", &mut script);
    let out = crate::output::Output::new(false);
    out.text(&String::from_utf8_lossy(&script))?;
    out.flush(&[]).map_err(|(e, _)| CtlError::Output(e))
}
