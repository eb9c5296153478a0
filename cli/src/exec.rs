//! `tether exec NAME [--timeout SECS] [-t] -- COMMAND [ARG...]`
//!
//! Streams stdin to the remote command and its stdout and stderr back,
//! byte for byte, and exits with the remote exit status (128 + n for a
//! signal, 124 when `--timeout` ended it). The first Ctrl-C is forwarded to
//! the remote command as SIGINT; a second one closes the command's channel
//! and exits 130.

use clap::Args;
use tether_api::client::Client;
use tether_api::frame::{self, CHUNK, Frame};
use tether_api::types::{ExecRequest, PtyRequest};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use crate::failure::{Failure, Result};
use crate::profile::check_name;
use crate::terminal;

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Profile name
    name: String,
    /// End the command after SECS seconds (SIGTERM, then the channel is
    /// closed) and exit 124
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=604_800))]
    timeout: Option<u64>,
    /// Run the command on a pseudo-terminal (for sudo prompts, top -b, ...)
    #[arg(short = 't', long = "tty")]
    tty: bool,
    /// The command: one word is a remote command line as is; several words are
    /// each quoted so the remote receives exactly them
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// Exit status when our own stdout is closed under us (as a shell reports SIGPIPE).
const BROKEN_PIPE: u8 = 141;
/// Exit status after a second Ctrl-C (as a shell reports SIGINT).
const INTERRUPTED: u8 = 130;

pub async fn run(client: &Client, args: ExecArgs) -> Result<u8> {
    check_name(&args.name)?;
    let pty = args.tty.then(|| {
        let (cols, rows) = terminal::size().unwrap_or((80, 24));
        PtyRequest {
            term: terminal::term(),
            cols,
            rows,
        }
    });
    let request = ExecRequest {
        argv: args.command,
        timeout_secs: args.timeout,
        pty,
    };
    let stream = client
        .open_stream(&format!("/v1/profiles/{}/exec", args.name), &request)
        .await?;
    // With a remote terminal, keys go to it as typed (Ctrl-C included).
    let raw_mode = if args.tty {
        terminal::RawMode::enter()
    } else {
        None
    };
    let code = pump(stream, raw_mode.is_some()).await;
    drop(raw_mode);
    code
}

async fn pump(stream: tether_api::client::Stream, raw: bool) -> Result<u8> {
    let (mut from_daemon, mut to_daemon) = tokio::io::split(stream);

    // One writer owns the daemon-bound half; stdin and signals feed it.
    let (frames, mut outgoing) = mpsc::channel::<Frame>(8);
    let writer = tokio::spawn(async move {
        while let Some(frame) = outgoing.recv().await {
            if frame::write_frame(&mut to_daemon, &frame).await.is_err() {
                break;
            }
        }
    });
    let stdin_frames = frames.clone();
    let stdin_pump = tokio::spawn(async move {
        let mut stdin = tokio::io::stdin();
        let mut buf = vec![0u8; CHUNK];
        loop {
            match stdin.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    let _ = stdin_frames.send(Frame::Eof).await;
                    break;
                }
                Ok(n) => {
                    if stdin_frames
                        .send(Frame::Stdin(buf[..n].to_vec().into()))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
    });
    let resize_frames = frames.clone();
    let resizes = tokio::spawn(async move {
        let Ok(mut winch) = signal(SignalKind::window_change()) else {
            return;
        };
        while winch.recv().await.is_some() {
            if let Some((cols, rows)) = terminal::size() {
                if resize_frames
                    .send(Frame::Resize { cols, rows })
                    .await
                    .is_err()
                {
                    break;
                }
            }
        }
    });
    let mut interrupt = signal(SignalKind::interrupt())
        .map_err(|e| Failure::new("internal", format!("cannot handle SIGINT: {e}")))?;
    let mut interrupts = 0;

    let mut stdout = tokio::io::stdout();
    let mut stderr = tokio::io::stderr();
    // Frames are read in their own task: read_frame is not cancel-safe, and
    // the loop below also waits for Ctrl-C.
    let (incoming_tx, mut incoming) = mpsc::channel(4);
    let reader = tokio::spawn(async move {
        loop {
            let next = frame::read_frame(&mut from_daemon).await;
            let end = !matches!(next, Ok(Some(Frame::Stdout(_) | Frame::Stderr(_))));
            if incoming_tx.send(next).await.is_err() || end {
                break;
            }
        }
    });
    let code = loop {
        let next = tokio::select! {
            next = incoming.recv() => next,
            _ = interrupt.recv() => {
                interrupts += 1;
                if interrupts >= 2 || raw {
                    break Ok(INTERRUPTED);
                }
                let _ = frames.send(Frame::Signal("INT".into())).await;
                continue;
            }
        };
        let frame = match next {
            Some(Ok(Some(frame))) => frame,
            Some(Ok(None)) | None => {
                break Err(Failure::new(
                    "ssh_error",
                    "tetherd closed the stream before the command ended",
                ));
            }
            Some(Err(error)) => {
                break Err(Failure::new(
                    "protocol_error",
                    format!("bad stream from tetherd: {error}"),
                ));
            }
        };
        match frame {
            Frame::Stdout(data) => {
                if stdout.write_all(&data).await.is_err() || stdout.flush().await.is_err() {
                    break Ok(BROKEN_PIPE);
                }
            }
            Frame::Stderr(data) => {
                let _ = stderr.write_all(&data).await;
                let _ = stderr.flush().await;
            }
            Frame::Exit(exit) => break Ok(exit.exit_code() as u8),
            Frame::Error(error) => break Err(Failure::new(error.code.as_str(), error.message)),
            _ => {
                break Err(Failure::new(
                    "protocol_error",
                    "unexpected frame from tetherd",
                ));
            }
        }
    };
    stdin_pump.abort();
    resizes.abort();
    reader.abort();
    writer.abort();
    let _ = stdout.flush().await;
    code
}
