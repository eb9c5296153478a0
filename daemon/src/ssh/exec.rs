//! Running a command and bridging it to the caller's framed stream.
//!
//! Remote output is framed into a buffer of at most [`OUTPUT_BUFFER`]
//! bytes, which is written to the caller while the channel is read: a
//! caller that pauses holds up nothing. russh grants the server more window
//! as soon as data arrives, not as it is consumed, so when a caller stops
//! reading and its buffer is full the bridge stops reading the channel,
//! which in time stops the whole SSH connection: the daemon's memory stays
//! bounded, and the connection is marked stalled so that the pool sends new
//! callers elsewhere. Caller input waits for the SSH window.
//!
//! After `exit-status` the bridge keeps reading until the channel closes, so
//! no output that the server sends after it is lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use futures_util::StreamExt;
use russh::client::Msg;
use russh::{Channel, ChannelMsg, Pty, Sig};
use tether_api::error::{ApiError, ErrorCode};
use tether_api::frame::{ExitInfo, Frame, FrameCodec, Notice};
use tether_api::types::PtyRequest;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_util::codec::FramedRead;

use super::SshError;
use super::pool::{Lease, Stall};
use super::quote::{Unquotable, quote_all};
use super::reply::{Answer, answer};

/// Framed output held for a caller before the bridge stops reading the
/// channel: enough to ride out a caller's pauses without holding up the
/// connection.
pub const OUTPUT_BUFFER: usize = 1024 * 1024;

/// The remote command line for `argv`: one element is taken as a command
/// line as is (like `ssh host 'cmd | grep x'`); several are each quoted for
/// whichever login shell the account has ([`super::quote`]), so the remote
/// receives exactly those words.
pub fn command_line(argv: &[String]) -> Result<String, Unquotable> {
    match argv {
        [single] => Ok(single.clone()),
        words => quote_all(words),
    }
}

/// The least time a server is given to answer a command's request.
const COMMAND_REPLY_WAIT: Duration = Duration::from_secs(10);

/// Most terminal modes a request may carry (RFC 4254 defines fewer).
const MAX_MODES: usize = 64;

/// How [`start`] went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Terminal {
    /// None was asked for.
    NotAsked,
    Granted,
    /// The server refused one (`PermitTTY no`); the command runs without.
    Refused,
}

/// A command started on a channel: whether it has a terminal, and what the
/// server sent before its answer (for [`bridge`], first).
pub struct Started {
    pub terminal: Terminal,
    pub early: Vec<ChannelMsg>,
}

/// Starts `command` (or, without one, the user's login shell) on an open
/// session channel, on a pseudo-terminal if `pty` is given and the server
/// grants one, and waits (up to `reply_wait` each) for the server's answers:
/// a refused command is an error here, and a channel the server closed
/// before answering is [`SshError::ClosedUnanswered`] (the server may still
/// have run the command: [`super::reply`]).
pub async fn start(
    channel: &mut Channel<Msg>,
    addr: &str,
    command: Option<&str>,
    pty: Option<&PtyRequest>,
    reply_wait: Duration,
) -> Result<Started, SshError> {
    let russh = |e| SshError::from_russh(addr, e);
    let mut early = Vec::new();
    let mut terminal = Terminal::NotAsked;
    if let Some(pty) = pty {
        let modes: Vec<(Pty, u32)> = pty
            .modes
            .iter()
            .take(MAX_MODES)
            .filter_map(|&(code, value)| Some((Pty::from_u8(code)?, value)))
            .filter(|(mode, _)| *mode != Pty::TTY_OP_END)
            .collect();
        channel
            .request_pty(true, &pty.term, pty.cols, pty.rows, 0, 0, &modes)
            .await
            .map_err(russh)?;
        terminal = match answer(
            channel,
            addr,
            reply_wait,
            "the terminal request",
            &mut early,
        )
        .await?
        {
            Answer::Granted => Terminal::Granted,
            Answer::Refused => Terminal::Refused,
        };
    }
    let asked = match command {
        Some(command) => {
            channel.exec(true, command).await.map_err(russh)?;
            "the command's request"
        }
        None => {
            channel.request_shell(true).await.map_err(russh)?;
            "the shell's request"
        }
    };
    // A busy server forks and opens its PAM session before it answers.
    let command_wait = reply_wait.max(COMMAND_REPLY_WAIT);
    match answer(channel, addr, command_wait, asked, &mut early).await? {
        Answer::Granted => Ok(Started { terminal, early }),
        Answer::Refused => Err(SshError::Protocol {
            addr: addr.to_owned(),
            message: match command {
                Some(_) => "the server refused to run the command".into(),
                None => "the server refused to start a shell".into(),
            },
        }),
    }
}

/// What the caller saw of a command, for the log and the audit trail.
#[derive(Debug, Default, Clone)]
pub struct Outcome {
    pub exit: Option<ExitInfo>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// The caller went away before the command ended.
    pub caller_gone: bool,
}

fn signal_from_name(name: &str) -> Sig {
    match name {
        "ABRT" => Sig::ABRT,
        "ALRM" => Sig::ALRM,
        "FPE" => Sig::FPE,
        "HUP" => Sig::HUP,
        "ILL" => Sig::ILL,
        "INT" => Sig::INT,
        "KILL" => Sig::KILL,
        "PIPE" => Sig::PIPE,
        "QUIT" => Sig::QUIT,
        "SEGV" => Sig::SEGV,
        "TERM" => Sig::TERM,
        "USR1" => Sig::USR1,
        other => Sig::Custom(other.to_owned()),
    }
}

fn signal_name(sig: &Sig) -> String {
    match sig {
        Sig::ABRT => "ABRT",
        Sig::ALRM => "ALRM",
        Sig::FPE => "FPE",
        Sig::HUP => "HUP",
        Sig::ILL => "ILL",
        Sig::INT => "INT",
        Sig::KILL => "KILL",
        Sig::PIPE => "PIPE",
        Sig::QUIT => "QUIT",
        Sig::SEGV => "SEGV",
        Sig::TERM => "TERM",
        Sig::USR1 => "USR1",
        Sig::Custom(name) => name,
    }
    .to_owned()
}

/// Why the caller's side of the stream ended.
#[derive(Clone, Copy)]
enum InputEnd {
    /// The caller closed or broke the stream: it is gone.
    Gone,
    /// The SSH channel refused input: the command is ending anyway.
    ChannelClosed,
}

/// After a timeout's SIGTERM, how long the command has to exit before its
/// channel is closed.
const TERM_GRACE: Duration = Duration::from_secs(2);

/// Takes one message from the command's channel into `outcome`, `output`
/// and `exit`; false when the channel has closed.
fn take(
    message: Option<ChannelMsg>,
    outcome: &mut Outcome,
    output: &mut Output,
    exit: &mut ExitInfo,
) -> bool {
    match message {
        Some(ChannelMsg::Data { data }) => {
            outcome.bytes_out += data.len() as u64;
            output.push(&data, false);
        }
        Some(ChannelMsg::ExtendedData { data, ext: 1 }) => {
            outcome.bytes_out += data.len() as u64;
            output.push(&data, true);
        }
        Some(ChannelMsg::ExitStatus { exit_status }) => exit.status = Some(exit_status),
        Some(ChannelMsg::ExitSignal {
            signal_name: sig,
            core_dumped,
            ..
        }) => {
            exit.signal = Some(signal_name(&sig));
            exit.core_dumped = core_dumped;
        }
        Some(ChannelMsg::Close) | None => return false,
        Some(_) => {}
    }
    true
}

/// Runs the stream until the command ends or the caller goes away;
/// `notices` go to the caller before any output, then what [`start`] saw
/// before the server's answer.
pub async fn bridge<S>(
    channel: Channel<Msg>,
    early: Vec<ChannelMsg>,
    stream: S,
    notices: Vec<Notice>,
    timeout: Option<Duration>,
    lease: &Lease,
) -> Outcome
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut remote, writer) = channel.split();
    let writer = Arc::new(writer);
    let (from_caller, mut to_caller) = tokio::io::split(stream);
    let mut outcome = Outcome::default();

    let input_writer = writer.clone();
    let bytes_in = Arc::new(AtomicU64::new(0));
    let input_bytes = bytes_in.clone();
    let mut input = tokio::spawn(async move {
        let mut frames = FramedRead::new(from_caller, FrameCodec);
        loop {
            let frame = match frames.next().await {
                Some(Ok(frame)) => frame,
                None | Some(Err(_)) => return InputEnd::Gone,
            };
            let sent = match frame {
                Frame::Stdin(data) => {
                    input_bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
                    input_writer.data_bytes(data).await
                }
                Frame::Eof => input_writer.eof().await,
                Frame::Signal(name) => input_writer.signal(signal_from_name(&name)).await,
                Frame::Resize { cols, rows } => input_writer.window_change(cols, rows, 0, 0).await,
                // Output frames never come from a caller: a protocol error.
                _ => return InputEnd::Gone,
            };
            if sent.is_err() {
                return InputEnd::ChannelClosed;
            }
        }
    });
    let mut output = Output::default();
    for notice in notices {
        Frame::Notice(notice).encode(&mut output.buf);
    }

    let mut exit = ExitInfo {
        status: None,
        signal: None,
        core_dumped: false,
        timed_out: false,
    };
    let mut input_done = false;
    for message in early {
        take(Some(message), &mut outcome, &mut output, &mut exit);
    }
    // The time limit: first SIGTERM, then, after a grace period, the channel
    // is closed (a server may refuse signals; OpenSSH does for root logins).
    let timer = tokio::time::sleep(timeout.unwrap_or(Duration::ZERO));
    tokio::pin!(timer);
    let mut timer_armed = timeout.is_some();
    loop {
        output.account(lease);
        tokio::select! {
            () = &mut timer, if timer_armed => {
                if output.full() {
                    // A caller that stopped reading would keep the signal
                    // or the close from ever leaving: drop further output.
                    output.discard = true;
                }
                if exit.timed_out {
                    let _ = writer.close().await;
                    timer_armed = false;
                } else {
                    exit.timed_out = true;
                    let _ = writer.signal(Sig::TERM).await;
                    timer.as_mut().reset(tokio::time::Instant::now() + TERM_GRACE);
                }
            }
            written = to_caller.write(&output.buf), if !output.buf.is_empty() => {
                match written {
                    Ok(n) if n > 0 => output.buf.advance(n),
                    _ => {
                        outcome.caller_gone = true;
                        break;
                    }
                }
            }
            message = remote.wait(), if !output.full() || output.discard => {
                if !take(message, &mut outcome, &mut output, &mut exit) {
                    break;
                }
            }
            joined = &mut input, if !input_done => {
                input_done = true;
                if !matches!(joined, Ok(InputEnd::ChannelClosed)) {
                    outcome.caller_gone = true;
                    break;
                }
            }
        }
    }
    // The channel is done with: whatever the caller still has to read no
    // longer holds up the connection.
    output.stall = None;
    if exit.status.is_some() || exit.signal.is_some() {
        lease.process_ended();
    }

    outcome.bytes_in = bytes_in.load(Ordering::Relaxed);
    if outcome.caller_gone {
        // Nobody is listening: end the command rather than leave it running.
        let _ = writer.close().await;
    } else {
        let last = if exit.status.is_some() || exit.signal.is_some() || exit.timed_out {
            outcome.exit = Some(exit.clone());
            Frame::Exit(exit)
        } else {
            Frame::Error(ApiError::new(
                ErrorCode::SshError,
                "the SSH connection closed before the command reported its exit status",
            ))
        };
        // The rest of the output and the last frame, however long the
        // caller takes to read them.
        last.encode(&mut output.buf);
        if to_caller.write_all(&output.buf).await.is_ok() {
            let _ = to_caller.shutdown().await;
        }
    }
    if !input_done {
        input.abort();
    }
    outcome
}

/// Framed output not yet written to the caller.
#[derive(Default)]
struct Output {
    buf: BytesMut,
    /// Held while the buffer is full.
    stall: Option<Stall>,
    /// Output is dropped (the command timed out while its caller was not
    /// reading).
    discard: bool,
}

impl Output {
    fn push(&mut self, data: &[u8], stderr: bool) {
        if !self.discard {
            Frame::encode_output(data, stderr, &mut self.buf);
        }
    }

    fn full(&self) -> bool {
        self.buf.len() >= OUTPUT_BUFFER
    }

    /// Marks the connection stalled while the buffer is full.
    fn account(&mut self, lease: &Lease) {
        match (self.full() && !self.discard, self.stall.is_some()) {
            (true, false) => {
                tracing::debug!(
                    connection = lease.connection.id,
                    "caller stopped reading; connection takes no new channels"
                );
                self.stall = Some(lease.stall());
            }
            (false, true) => self.stall = None,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_word_is_a_command_line_several_are_quoted() {
        assert_eq!(command_line(&["ls -l | wc".into()]).unwrap(), "ls -l | wc");
        assert_eq!(
            command_line(&["echo".into(), "a b".into(), "it's".into(), "".into()]).unwrap(),
            r"echo 'a b' 'it'\''s' ''"
        );
        assert_eq!(
            command_line(&["printf".into(), r"%s\n".into(), "$HOME".into()]).unwrap(),
            r"printf '%s'\\'n' '$HOME'"
        );
        assert!(command_line(&["echo".into(), "a\nb".into()]).is_err());
    }
}
