//! The server's answer to a request on a fresh session channel (a terminal,
//! a command, a shell, the SFTP subsystem), awaited before anything else is
//! done with the channel, so that a refusal or a closed channel is an error
//! the caller can act on rather than a silent end.
//!
//! A server may close a new channel before it answers (Dropbear before
//! 2024.86, in Debian 12 and Ubuntu 24.04, closes every new session channel
//! whose first request has not arrived yet whenever a process of the
//! connection exits), and may still act on the request that was on its way:
//! that Dropbear runs the command on the closed channel and then ends the
//! whole connection on a failed assertion. So such a connection is retired,
//! a subsystem start (which has no effect of its own) is asked for again on
//! a fresh channel, and a command is not (it may have run). The pool keeps
//! the race from happening on those Dropbear versions
//! ([`closes_new_channels`]).

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

/// Whether a server with this identification string closes new session
/// channels when one of the connection's processes exits: Dropbear before
/// 2024.86. The pool gives such a connection one session channel at a time,
/// and opens the next only when no process of the last can still be
/// running, so that no exit can meet a channel being opened.
pub fn closes_new_channels(server_id: &str) -> bool {
    let Some(rest) = server_id.strip_prefix("SSH-2.0-dropbear") else {
        return false;
    };
    let version = match rest.strip_prefix('_') {
        Some(version) => version.split_whitespace().next().unwrap_or_default(),
        None if rest.is_empty() || rest.starts_with(' ') => "",
        None => return false,
    };
    let mut parts = version.split('.').map(|p| p.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(year), Some(release)) => (year, release) < (2024, 86),
        // Dropbear, but a version this cannot read (0.53, say): old.
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::closes_new_channels;

    #[test]
    fn dropbear_before_2024_86_is_known_by_its_identification() {
        for old in [
            "SSH-2.0-dropbear_2022.83",
            "SSH-2.0-dropbear_2020.81",
            "SSH-2.0-dropbear_2024.85",
            "SSH-2.0-dropbear_0.53",
            "SSH-2.0-dropbear",
        ] {
            assert!(closes_new_channels(old), "{old}");
        }
        for fixed in [
            "SSH-2.0-dropbear_2024.86",
            "SSH-2.0-dropbear_2025.88",
            "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3",
            "SSH-2.0-AsyncSSH_2.14.2",
            "SSH-2.0-dropbearish_2020.1",
        ] {
            assert!(!closes_new_channels(fixed), "{fixed}");
        }
    }
}
