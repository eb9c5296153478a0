//! The CLI side of an upgraded exec or shell stream: stdin, signals and
//! window changes to the daemon; stdout, stderr and the exit status back.

use futures_util::StreamExt;
use tether_api::frame::{self, CHUNK, Frame, FrameCodec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio_util::codec::FramedRead;

use tether_api::frame::Notice;

use crate::escape::{Escape, Filtered};
use crate::failure::{Failure, Result};
use crate::output::banner_lines;
use crate::terminal::{self, RawMode};

/// Exit status when our own stdout is closed under us (as a shell reports SIGPIPE).
const BROKEN_PIPE: u8 = 141;
/// Exit status after a second Ctrl-C (as a shell reports SIGINT).
const INTERRUPTED: u8 = 130;
/// Exit status after `~.` or a hang-up, as ssh.
const DISCONNECTED: u8 = 255;

/// How local input is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// Bytes as they come; Ctrl-C is a signal, forwarded as SIGINT.
    Plain,
    /// The local terminal is in raw mode: Ctrl-C is a byte for the remote
    /// terminal. With `escape`, `~.` at the start of a line disconnects.
    Raw { escape: bool },
    /// No input: end-of-file at once (`exec -n`).
    Null,
}

/// What the stdin task reports besides frames.
enum Local {
    Disconnect,
}

/// The daemon ended the stream without an exit status: it was stopped or
/// restarted. On a raw terminal the cursor may be on the remote prompt's
/// line; the message starts a line of its own.
fn daemon_gone(raw: bool) -> Failure {
    if raw {
        let _ = std::io::Write::write_all(&mut std::io::stderr(), b"\r\n");
    }
    Failure::new(
        "daemon_unavailable",
        "tetherd ended the session before the command did (it was stopped or restarted); \
         the remote command may still be running",
    )
}

/// Runs the stream to its end; `quiet` leaves out tether's own notes (the
/// time limit's). `terminal` is the raw mode [`Input::Raw`] runs in; it is
/// left (and the terminal restored) when the server refuses a terminal.
pub async fn pump(
    stream: tether_api::client::Stream,
    input: Input,
    quiet: bool,
    mut terminal: Option<RawMode>,
) -> Result<u8> {
    let mut raw = matches!(input, Input::Raw { .. }) && terminal.is_some();
    let escape = matches!(input, Input::Raw { escape: true });
    let (from_daemon, mut to_daemon) = tokio::io::split(stream);

    // One writer owns the daemon-bound half; stdin and signals feed it.
    let (frames, mut outgoing) = mpsc::channel::<Frame>(8);
    let writer = tokio::spawn(async move {
        let mut buf = bytes::BytesMut::new();
        while let Some(frame) = outgoing.recv().await {
            buf.clear();
            frame.encode(&mut buf);
            let sent = async {
                to_daemon.write_all(&buf).await?;
                to_daemon.flush().await
            };
            if sent.await.is_err() {
                break;
            }
        }
    });
    let stdin_frames = frames.clone();
    let (local_tx, mut local) = mpsc::channel::<Local>(1);
    let no_input = input == Input::Null;
    let stdin_pump = tokio::spawn(async move {
        if no_input {
            let _ = stdin_frames.send(Frame::Eof).await;
            return;
        }
        let mut stdin = tokio::io::stdin();
        let mut buf = vec![0u8; CHUNK];
        let mut escapes = Escape::default();
        loop {
            let n = match stdin.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    let _ = stdin_frames.send(Frame::Eof).await;
                    break;
                }
                Ok(n) => n,
            };
            let (data, disconnect) = if escape {
                match escapes.filter(&buf[..n]) {
                    Filtered::Send(data) => (data, false),
                    Filtered::Disconnect(data) => (data, true),
                    Filtered::Help(data) => {
                        let _ = tokio::io::stderr()
                            .write_all(crate::escape::HELP.as_bytes())
                            .await;
                        (data, false)
                    }
                }
            } else {
                (buf[..n].to_vec(), false)
            };
            if !data.is_empty() && stdin_frames.send(Frame::Stdin(data.into())).await.is_err() {
                break;
            }
            if disconnect {
                let _ = local_tx.send(Local::Disconnect).await;
                break;
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
    let handle = |kind: SignalKind, name: &str| {
        signal(kind).map_err(|e| Failure::new("internal", format!("cannot handle {name}: {e}")))
    };
    let mut interrupt = handle(SignalKind::interrupt(), "SIGINT")?;
    let mut terminate = handle(SignalKind::terminate(), "SIGTERM")?;
    let mut hangup = handle(SignalKind::hangup(), "SIGHUP")?;
    let mut interrupts = 0;

    let mut stdout = tokio::io::stdout();
    let mut stderr = tokio::io::stderr();
    // The codec keeps a partial frame in its buffer: reading is one arm of
    // the select below, beside Ctrl-C.
    let mut incoming = FramedRead::new(from_daemon, FrameCodec);
    let code = loop {
        let next = tokio::select! {
            next = incoming.next() => next,
            _ = interrupt.recv() => {
                interrupts += 1;
                if interrupts >= 2 || raw {
                    break Ok(INTERRUPTED);
                }
                let _ = frames.send(Frame::Signal("INT".into())).await;
                continue;
            }
            // Leaving: the terminal is restored by the caller's guard.
            _ = terminate.recv() => break Ok(DISCONNECTED),
            _ = hangup.recv() => break Ok(DISCONNECTED),
            Some(Local::Disconnect) = local.recv() => {
                let _ = std::io::Write::write_all(&mut std::io::stderr(), b"\r\n[disconnected]\r\n");
                break Ok(DISCONNECTED);
            }
        };
        let frame = match next {
            Some(Ok(frame)) => frame,
            None => break Err(daemon_gone(raw)),
            Some(Err(frame::FrameError::Truncated)) => break Err(daemon_gone(raw)),
            Some(Err(frame::FrameError::Io(error)))
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::UnexpectedEof
                        | std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::BrokenPipe
                ) =>
            {
                break Err(daemon_gone(raw));
            }
            Some(Err(error)) => {
                break Err(Failure::new(
                    crate::failure::PROTOCOL_ERROR,
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
            Frame::Exit(exit) => {
                if exit.timed_out && !quiet {
                    let start = if raw { "\r\n" } else { "" };
                    let end = if raw { "\r\n" } else { "\n" };
                    let _ = std::io::Write::write_all(
                        &mut std::io::stderr(),
                        format!(
                            "{start}tether: timed out: the command ran past --timeout and was \
                             ended (exit 124){end}"
                        )
                        .as_bytes(),
                    );
                }
                break Ok(exit.exit_code() as u8);
            }
            Frame::Error(error) => break Err(Failure::new(error.code.as_str(), error.message)),
            Frame::Notice(Notice::Banner { text }) => {
                if !quiet {
                    let lines = banner_lines(&text, if raw { "\r\n" } else { "\n" });
                    let _ = std::io::Write::write_all(&mut std::io::stderr(), lines.as_bytes());
                }
            }
            Frame::Notice(Notice::NoTerminal) => {
                // The session goes on without a remote terminal: the local
                // one goes back to line mode, where Ctrl-C is a signal.
                terminal = None;
                raw = false;
                let _ = std::io::Write::write_all(
                    &mut std::io::stderr(),
                    b"tether: the server refused a terminal (PermitTTY no?); \
                      the session runs without one\n",
                );
            }
            _ => {
                break Err(Failure::new(
                    crate::failure::PROTOCOL_ERROR,
                    "unexpected frame from tetherd",
                ));
            }
        }
    };
    stdin_pump.abort();
    resizes.abort();
    writer.abort();
    let _ = stdout.flush().await;
    drop(terminal);
    code
}
