//! FTP and FTPS profiles, on suppaftp (tokio, rustls with ring): the same
//! files and transfers as SFTP, with the server's certificate pinned like
//! an SSH host key.
//!
//! - [`tls`]: pinned or authority-checked certificates, checked inside the
//!   handshake;
//! - [`client`]: connecting (plain, explicit `AUTH TLS`, implicit) and
//!   logging in through a [`crate::witness::Witness`], so the password is
//!   on record before it is sent, and only to a proved server;
//! - [`ops`]: the file operations, mapped to FTP commands;
//! - [`pool`]: control connections kept per profile, one transfer each.
//!
//! Invariants:
//! - for FTPS, a certificate that is not trusted ends the handshake before
//!   `USER` or `PASS` is sent; `PROT P` protects every data connection;
//! - data connections go to the control connection's peer only: a server's
//!   `PASV` answer names a port, never another host;
//! - every reply a server sends is cut short and stripped of control
//!   characters before it reaches a message.

use std::time::Duration;

use suppaftp::FtpError;
use suppaftp::types::Response;

use crate::remote::{RemoteError, RemoteKind};

pub mod client;
pub mod ops;
pub mod pool;
mod read_ahead;
pub mod tls;
pub mod transfer;

/// What went wrong with the connection itself (not one file operation).
#[derive(Debug, thiserror::Error)]
pub enum FtpFailure {
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
        "the TLS certificate of {addr} has changed: it shows {actual}, pinned is {}; nothing was \
         sent to it. If the change is expected, re-learn it with `tether profile trust {}`",
        expected.join(", "), profile.as_deref().unwrap_or("PROFILE")
    )]
    CertificateMismatch {
        addr: String,
        expected: Vec<String>,
        actual: String,
        profile: Option<String>,
    },
    #[error(
        "the TLS certificate of {addr} ({actual}) is not valid for the authorities trusted: \
         {reason}; nothing was sent to it"
    )]
    CertificateInvalid {
        addr: String,
        actual: String,
        reason: String,
    },
    #[error("TLS with {addr} failed: {message}")]
    Tls { addr: String, message: String },
    #[error("{user}@{addr} refused the password: {reply}")]
    AuthFailed {
        user: String,
        addr: String,
        reply: String,
    },
    #[error("FTP with {addr} failed: {message}")]
    Protocol { addr: String, message: String },
    #[error("the FTP connection to {addr} closed: {message}")]
    Closed { addr: String, message: String },
}

impl FtpFailure {
    /// Names the profile in a certificate mismatch, so the message can say
    /// which `tether profile trust` re-learns it.
    pub fn in_profile(self, name: &str) -> FtpFailure {
        match self {
            FtpFailure::CertificateMismatch {
                addr,
                expected,
                actual,
                profile: None,
            } => FtpFailure::CertificateMismatch {
                addr,
                expected,
                actual,
                profile: Some(name.to_owned()),
            },
            other => other,
        }
    }
}

/// The most of a server's reply that goes into a message.
const MAX_REPLY_SHOWN: usize = 200;

/// A server reply as a message may show it: code and text, one line, no
/// control characters, cut short.
pub fn reply_text(response: &Response) -> String {
    let text = String::from_utf8_lossy(&response.body);
    let mut shown: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if shown.len() > MAX_REPLY_SHOWN {
        let mut end = MAX_REPLY_SHOWN;
        while !shown.is_char_boundary(end) {
            end -= 1;
        }
        shown.truncate(end);
        shown.push('…');
    }
    shown
}

/// A reply's three-digit code, from its status or, for codes suppaftp does
/// not name, from its text.
pub fn reply_code(response: &Response) -> u32 {
    match response.status.code() {
        0 => std::str::from_utf8(response.body.get(..3).unwrap_or_default())
            .ok()
            .and_then(|code| code.parse().ok())
            .unwrap_or(0),
        code => code,
    }
}

/// What a refusal of an operation on `path` means, from its code and text.
/// vsftpd answers most refusals with a bare `550` ("Failed to open file"),
/// which says neither; [`ops`] then asks the server whether `path` exists.
pub fn classify(path: &str, response: &Response) -> RemoteError {
    let text = reply_text(response);
    let lower = text.to_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| lower.contains(n));
    let kind = if has(&[
        "no such file",
        "not found",
        "does not exist",
        "doesn't exist",
    ]) {
        RemoteKind::NoSuchFile
    } else if has(&[
        "permission denied",
        "access denied",
        "not allowed",
        "forbidden",
    ]) {
        RemoteKind::PermissionDenied
    } else if has(&["file exists", "already exists"]) {
        RemoteKind::Exists
    } else if has(&["not empty"]) {
        RemoteKind::NotEmpty
    } else if matches!(reply_code(response), 452 | 552)
        || has(&[
            "no space left",
            "disk full",
            "quota",
            "insufficient storage",
        ])
    {
        RemoteKind::DiskFull
    } else {
        RemoteKind::Failed
    };
    let message = match kind {
        RemoteKind::NoSuchFile => "no such file or directory".to_owned(),
        RemoteKind::PermissionDenied => format!("permission denied (the server said: {text})"),
        RemoteKind::DiskFull => format!("the server's disk is full (it said: {text})"),
        _ => format!("the server refused: {text}"),
    };
    RemoteError::new(kind, path, message)
}

/// A failed command about `path` on the connection to `addr`: a refusal
/// the server explained, or the end of the connection.
#[derive(Debug)]
pub enum Failed {
    Refused(RemoteError),
    /// The server does not offer what the operation needs (`SITE CHMOD`,
    /// `MFMT`).
    Unsupported(String),
    Connection(FtpFailure),
}

impl Failed {
    pub fn from_ftp(addr: &str, path: &str, error: FtpError) -> Failed {
        match error {
            FtpError::UnexpectedResponse(response) => Failed::Refused(classify(path, &response)),
            FtpError::ConnectionError(source) => Failed::Connection(FtpFailure::Closed {
                addr: addr.to_owned(),
                message: source.to_string(),
            }),
            FtpError::SecureError(message) => Failed::Connection(FtpFailure::Tls {
                addr: addr.to_owned(),
                message,
            }),
            other => Failed::Connection(FtpFailure::Protocol {
                addr: addr.to_owned(),
                message: other.to_string(),
            }),
        }
    }

    pub fn timeout(addr: &str, timeout: Duration, stage: &'static str) -> Failed {
        Failed::Connection(FtpFailure::Timeout {
            addr: addr.to_owned(),
            secs: timeout.as_secs().max(1),
            stage,
        })
    }
}

impl From<Failed> for crate::error::Error {
    fn from(failed: Failed) -> Self {
        match failed {
            Failed::Refused(error) if error.kind == RemoteKind::Failed => {
                crate::error::Error::FtpRefused(error)
            }
            Failed::Refused(error) => crate::error::Error::Remote(error),
            Failed::Unsupported(message) => crate::error::Error::NotSupported(message),
            Failed::Connection(error) => crate::error::Error::Ftp(error),
        }
    }
}

impl From<RemoteError> for Failed {
    fn from(error: RemoteError) -> Self {
        Failed::Refused(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use suppaftp::Status;

    fn reply(status: Status, text: &str) -> Response {
        Response::new(status, text.as_bytes().to_vec())
    }

    #[test]
    fn refusals_are_classified_by_code_and_text() {
        let kind = |status, text| classify("/x", &reply(status, text)).kind;
        assert_eq!(
            kind(
                Status::FileUnavailable,
                "550 Can't open x: No such file or directory"
            ),
            RemoteKind::NoSuchFile
        );
        assert_eq!(
            kind(Status::FileUnavailable, "550 Permission denied."),
            RemoteKind::PermissionDenied
        );
        assert_eq!(
            kind(Status::ExceededStorage, "552 Requested action aborted"),
            RemoteKind::DiskFull
        );
        assert_eq!(
            kind(Status::FileUnavailable, "550 Failed to open file."),
            RemoteKind::Failed
        );
    }

    #[test]
    fn replies_shown_are_one_short_printable_line() {
        let hostile = format!("550 \x1b[31mred\r\n550-more {}", "y".repeat(500));
        let shown = reply_text(&reply(Status::FileUnavailable, &hostile));
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
        assert!(shown.len() <= MAX_REPLY_SHOWN + '…'.len_utf8());
        assert_eq!(reply_code(&reply(Status::Unknown, "599 odd")), 599);
    }
}
