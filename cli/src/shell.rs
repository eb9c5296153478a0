//! `tether shell NAME [-- COMMAND]`: an interactive terminal session.
//!
//! The local terminal is put in raw mode for the session and restored on
//! every way out: normal exit, remote close, daemon gone, SIGTERM/SIGHUP,
//! and panics (the guard's drop runs during unwinding; a panic hook restores
//! it too). `~.` at the start of a line disconnects.

use std::io::IsTerminal;

use clap::Args;
use tether_api::client::Client;
use tether_api::endpoint as ep;
use tether_api::types::ShellRequest;

use crate::failure::{Failure, Result};
use crate::profile::check_name;
use crate::stream::{Input, pump};
use crate::terminal;

#[derive(Debug, Args)]
pub struct ShellArgs {
    /// Profile name
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::complete::profiles))]
    name: String,
    /// Run this command on the pseudo-terminal instead of a login shell
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

pub async fn run(client: &Client, args: ShellArgs) -> Result<u8> {
    check_name(&args.name)?;
    if !std::io::stdin().is_terminal() {
        return Err(Failure::usage(
            "stdin is not a terminal: `tether shell` is for people; scripts use `tether exec NAME -- COMMAND`",
        ));
    }
    let request = ShellRequest {
        pty: terminal::pty_request(),
        argv: args.command,
    };
    let stream = client
        .open_stream(
            &ep::Shell {
                name: args.name.clone(),
            },
            &request,
        )
        .await?;
    let raw_mode = terminal::RawMode::enter()
        .ok_or_else(|| Failure::new("io_error", "cannot put the terminal in raw mode"))?;
    pump(stream, Input::Raw { escape: true }, false, Some(raw_mode)).await
}
