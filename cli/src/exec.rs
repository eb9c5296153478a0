//! `tether exec NAME [--timeout SECS] [-t] [-n] [-q] [--] COMMAND [ARG...]`
//!
//! As with ssh, the first word that is not one of tether's options starts
//! the command; everything after it is the command's, dashes included.
//!
//! Streams stdin to the remote command and its stdout and stderr back,
//! byte for byte, and exits with the remote exit status (128 + n for a
//! signal, 124 when `--timeout` ended it). The first Ctrl-C is forwarded to
//! the remote command as SIGINT; a second one closes the command's channel
//! and exits 130.

use clap::Args;
use tether_api::client::Client;
use tether_api::endpoint as ep;
use tether_api::types::ExecRequest;

use crate::failure::Result;
use crate::profile::check_name;
use crate::stream::{Input, pump};
use crate::terminal;

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Profile name
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::complete::profiles))]
    name: String,
    /// End the command after SECS seconds (SIGTERM, then the channel is
    /// closed) and exit 124
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=604_800))]
    timeout: Option<u64>,
    /// Run the command on a pseudo-terminal (for sudo prompts, top -b, ...)
    #[arg(short = 't', long = "tty")]
    tty: bool,
    /// Do not read stdin: the command gets end-of-file at once (as ssh -n)
    #[arg(short = 'n')]
    no_stdin: bool,
    /// Quiet: no diagnostics of tether's own (the command's output is untouched)
    #[arg(short = 'q', long)]
    quiet: bool,
    /// The command: one word is a remote command line as is; several words are
    /// each quoted so the remote receives exactly them
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    command: Vec<String>,
}

pub async fn run(client: &Client, args: ExecArgs) -> Result<u8> {
    check_name(&args.name)?;
    let pty = args.tty.then(terminal::pty_request);
    let request = ExecRequest {
        argv: args.command,
        timeout_secs: args.timeout,
        pty,
    };
    let stream = client
        .open_stream(
            &ep::Exec {
                name: args.name.clone(),
            },
            &request,
        )
        .await?;
    // With a remote terminal, keys go to it as typed (Ctrl-C included).
    let raw_mode = if args.tty {
        terminal::RawMode::enter()
    } else {
        None
    };
    let input = if raw_mode.is_some() {
        Input::Raw { escape: false }
    } else if args.no_stdin {
        Input::Null
    } else {
        Input::Plain
    };
    pump(stream, input, args.quiet, raw_mode).await
}
