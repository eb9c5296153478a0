//! `tether exec NAME -- COMMAND [ARG...]`
//!
//! Streams stdin to the remote command and its stdout and stderr back,
//! byte for byte, and exits with the remote exit status (128 + n for a
//! signal). Ctrl-C is forwarded to the remote command as SIGINT.

use clap::Args;
use tether_api::client::Client;
use tether_api::frame::{self, CHUNK, Frame};
use tether_api::types::ExecRequest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::failure::{Failure, Result};
use crate::profile::check_name;

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Profile name
    name: String,
    /// The command: one word is a remote command line as is; several words are
    /// each quoted so the remote receives exactly them
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// Exit status when our own stdout is closed under us (as a shell reports SIGPIPE).
const BROKEN_PIPE: u8 = 141;

pub async fn run(client: &Client, args: ExecArgs) -> Result<u8> {
    check_name(&args.name)?;
    let request = ExecRequest { argv: args.command };
    let stream = client
        .open_stream(&format!("/v1/profiles/{}/exec", args.name), &request)
        .await?;
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
    let signal_frames = frames;
    let signals = tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            if signal_frames
                .send(Frame::Signal("INT".into()))
                .await
                .is_err()
            {
                break;
            }
        }
    });

    let mut stdout = tokio::io::stdout();
    let mut stderr = tokio::io::stderr();
    let code = loop {
        let next = frame::read_frame(&mut from_daemon).await;
        let frame = match next {
            Ok(Some(frame)) => frame,
            Ok(None) => {
                break Err(Failure::new(
                    "ssh_error",
                    "tetherd closed the stream before the command ended",
                ));
            }
            Err(error) => {
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
    signals.abort();
    writer.abort();
    let _ = stdout.flush().await;
    code
}
