//! The server's answer to a request on a fresh session channel (a terminal,
//! a command, a shell, the SFTP subsystem), awaited before anything else is
//! done with the channel, so that a refusal or a closed channel is an error
//! the caller can act on rather than a silent end.
//!
//! A channel closed before its answer was never acted on: a server answers
//! a request before it closes the channel, and messages keep their order.
//! Asking again on a fresh channel is then safe, and needed: Dropbear before
//! 2024.86 (Debian 12, Ubuntu 24.04) closes every new session channel whose
//! first request has not arrived yet whenever any child process of the
//! connection exits, so under concurrent use some channels close at birth.

use std::time::Duration;

use russh::client::Msg;
use russh::{Channel, ChannelMsg};

use super::SshError;

/// What the server said to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Granted,
    Refused,
}

/// Waits up to `reply_wait` for the answer to the `asked` request just sent
/// on `channel`. Output that a server sends before its answer (none known
/// does) is kept in `early`, in order, for whoever reads the channel next;
/// window adjustments are dropped.
pub async fn answer(
    channel: &mut Channel<Msg>,
    addr: &str,
    reply_wait: Duration,
    asked: &'static str,
    early: &mut Vec<ChannelMsg>,
) -> Result<Answer, SshError> {
    let wait = async {
        loop {
            match channel.wait().await {
                Some(ChannelMsg::Success) => return Ok(Answer::Granted),
                Some(ChannelMsg::Failure) => return Ok(Answer::Refused),
                Some(ChannelMsg::Close | ChannelMsg::Eof) | None => {
                    return Err(SshError::ClosedUnanswered {
                        addr: addr.to_owned(),
                        asked,
                    });
                }
                Some(ChannelMsg::WindowAdjusted { .. }) => {}
                Some(other) => early.push(other),
            }
        }
    };
    tokio::time::timeout(reply_wait, wait)
        .await
        .unwrap_or_else(|_| {
            Err(SshError::Timeout {
                addr: addr.to_owned(),
                secs: reply_wait.as_secs().max(1),
                stage: asked,
            })
        })
}

/// Whether `error`, on attempt number `attempt` (from 1) of opening a
/// channel and making its first request, is worth another attempt on a
/// fresh channel: a channel closed unanswered, a few times; a server that
/// did not answer or said something unexpected, once.
pub fn worth_retrying(error: &SshError, attempt: u32) -> bool {
    match error {
        SshError::ClosedUnanswered { .. } => attempt < 4,
        SshError::Timeout { .. } | SshError::Protocol { .. } => attempt < 2,
        _ => false,
    }
}
