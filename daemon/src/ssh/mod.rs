//! SSH: connecting with pinned host keys, authenticating with the one stored
//! credential, running commands and bridging them to the caller's stream.
//!
//! Invariants:
//! - a host key that is not pinned ends the connection inside the key
//!   exchange, before any credential is sent;
//! - exactly one credential is offered per connection (no retry storm that
//!   would trip the server's MaxAuthTries);
//! - RSA keys sign with SHA-2 only, never ssh-rsa SHA-1.

pub mod auth;
pub mod authorized;
pub mod client;
pub mod exec;
pub mod hostkey;
pub mod keys;
pub mod pool;
pub mod quote;
pub mod reply;
pub mod sftp;

use crate::store::KeyInfo;

#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("{addr} did not answer within {secs} s ({stage})")]
    Timeout {
        addr: String,
        secs: u64,
        stage: &'static str,
    },
    #[error(
        "the host key of {addr} has changed: it shows {} {}, pinned is {}; nothing was sent to it. \
         If the change is expected, re-learn the key with `tether profile trust {}`",
        actual.algorithm, actual.fingerprint, expected.join(", "),
        profile.as_deref().unwrap_or("PROFILE")
    )]
    HostKeyMismatch {
        addr: String,
        expected: Vec<String>,
        actual: KeyInfo,
        /// The profile whose pins refused it, once known.
        profile: Option<String>,
    },
    #[error("{user}@{addr} refused the {method}{}", hint.as_deref().map(|h| format!(": {h}")).unwrap_or_default())]
    AuthFailed {
        user: String,
        addr: String,
        method: &'static str,
        hint: Option<String>,
    },
    #[error("the private key cannot be used: {0}")]
    InvalidKey(String),
    #[error("{0}")]
    BadPassphrase(String),
    #[error("SSH connection to {addr} failed: {message}")]
    Protocol { addr: String, message: String },
    #[error("the SSH connection to {addr} closed: {message}")]
    Closed { addr: String, message: String },
    /// A new channel closed before the server answered its first request
    /// (see [`reply`]).
    #[error("{addr} closed a new channel instead of answering {asked}")]
    ClosedUnanswered { addr: String, asked: &'static str },
    #[error("{via} did not open a connection to {to}: {reason}")]
    TcpRefused {
        via: String,
        to: String,
        reason: String,
    },
}

/// Why a server refused a channel, in words.
pub(crate) fn open_failure(reason: &russh::ChannelOpenFailure) -> String {
    match reason {
        russh::ChannelOpenFailure::AdministrativelyProhibited => {
            "the server does not allow it (AllowTcpForwarding, PermitOpen)".into()
        }
        russh::ChannelOpenFailure::ConnectFailed => {
            "the connection was refused, or the address cannot be reached from there".into()
        }
        russh::ChannelOpenFailure::UnknownChannelType => {
            "the server does not forward TCP connections".into()
        }
        russh::ChannelOpenFailure::ResourceShortage => "the server is short of resources".into(),
        russh::ChannelOpenFailure::Other { code, .. } => {
            format!("the server refused it (code {code})")
        }
    }
}

impl SshError {
    /// Names the profile in a host-key mismatch, so the message can say
    /// which `tether profile trust` re-learns it.
    pub fn in_profile(self, name: &str) -> SshError {
        match self {
            SshError::HostKeyMismatch {
                addr,
                expected,
                actual,
                profile: None,
            } => SshError::HostKeyMismatch {
                addr,
                expected,
                actual,
                profile: Some(name.to_owned()),
            },
            other => other,
        }
    }

    pub(crate) fn from_russh(addr: &str, error: russh::Error) -> SshError {
        let addr = addr.to_owned();
        match error {
            russh::Error::ConnectionTimeout
            | russh::Error::KeepaliveTimeout
            | russh::Error::InactivityTimeout => SshError::Closed {
                addr,
                message: "the server stopped answering".into(),
            },
            russh::Error::Disconnect
            | russh::Error::SendError
            | russh::Error::HUP
            | russh::Error::RecvError => SshError::Closed {
                addr,
                message: "the server closed the connection".into(),
            },
            russh::Error::IO(source) => SshError::Closed {
                addr,
                message: source.to_string(),
            },
            russh::Error::NoCommonAlgo { kind, ours, theirs } => {
                // Markers such as kex-strict-s-v00@openssh.com and ext-info
                // are not algorithms.
                let real = |list: Vec<String>| {
                    list.into_iter()
                        .filter(|name| {
                            !name.starts_with("kex-strict-")
                                && !name.starts_with("ext-info-")
                                && name != "none"
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                SshError::Protocol {
                    addr,
                    message: format!(
                        "no {kind:?} algorithm in common: tether offers {}; the server offers {}",
                        real(ours),
                        real(theirs)
                    ),
                }
            }
            other => SshError::Protocol {
                addr,
                message: other.to_string(),
            },
        }
    }
}
