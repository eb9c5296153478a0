//! The daemon's error type and its one mapping to the API's codes.
//!
//! Every handler returns [`Error`]; [`Error::to_api`] is the only place that
//! decides which stable code (and so which HTTP status) a failure becomes.
//! Messages never contain a secret: they are built from names, addresses and
//! fingerprints only.

use tether_api::error::{
    ApiError, CertificateDetails, ErrorCode, HostKeyDetails, ProfileDetails, RecordDetails,
};

use crate::ftp::FtpFailure;
use crate::remote::{RemoteError, RemoteKind};
use crate::ssh::SshError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    BadRequest(String),
    #[error("this tetherd speaks API version {current}, the client sent {0:?}; use a tether CLI of the same release", current = tether_api::API_VERSION)]
    ApiVersion(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0} needs a live MFA session: run `tether login` (or `tether mfa enroll` first)")]
    MfaRequired(String),
    #[error(
        "the code was not accepted: it is wrong, was used already, or there were too many failures lately (then wait and try again)"
    )]
    MfaInvalid,
    #[error("{0}")]
    ActionNotAllowed(String),
    #[error("{0}")]
    PathNotAllowed(String),
    #[error(
        "profile {profile:?} has no action {action:?}; `tether action list {profile}` shows them"
    )]
    ActionNotFound { profile: String, action: String },
    #[error("{0}")]
    GrantNotFound(String),
    #[error("{0}")]
    GrantExists(String),
    #[error(
        "profile {profile:?} has an action {action:?} already; `tether action set {profile} {action} -- ...` changes it"
    )]
    ActionExists { profile: String, action: String },
    #[error("{0}")]
    NotSupported(String),
    #[error("{0}")]
    NoSuchUser(String),
    #[error("uid {0} has no TOTP enrolled: run `tether mfa enroll`")]
    NotEnrolled(u32),
    #[error(
        "enrolment on this host is by invite: ask root for `tether mfa invite YOUR-USER`, then \
         run `tether mfa enroll --invite` and type the code"
    )]
    InviteRequired,
    #[error("no endpoint {0}")]
    NotFound(String),
    #[error("no profile named {0:?}; `tether profile list` shows the profiles")]
    ProfileNotFound(String),
    #[error("{method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },
    #[error("the request body did not arrive within {0} s")]
    RequestTimeout(u64),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0} streams: send it with `Connection: upgrade` and `Upgrade: {1}`")]
    UpgradeRequired(String, &'static str),
    #[error("too many open connections from uid {0}")]
    TooManyConnections(u32),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ssh(#[from] SshError),
    #[error(
        "the server at {addr} shows host key {} {}, not the {given} given with --host-key; check \
         the fingerprint (`ssh-keygen -lf` on the server's host key); nothing was sent to it",
        actual.algorithm, actual.fingerprint
    )]
    HostKeyNotAsGiven {
        addr: String,
        given: String,
        actual: crate::store::KeyInfo,
    },
    #[error(transparent)]
    Ftp(#[from] FtpFailure),
    #[error(
        "the server at {addr} shows the TLS certificate {actual}, not the {given} given with \
         --cert-fingerprint; check the fingerprint (`openssl x509 -noout -fingerprint -sha256 \
         -in CERT` on the server); nothing was sent to it"
    )]
    CertificateNotAsGiven {
        addr: String,
        given: String,
        actual: String,
    },
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// An FTP server refused an operation without saying why in a way
    /// that maps to a file error.
    #[error(transparent)]
    FtpRefused(RemoteError),
    #[error("the upload of {0} ended before its last byte; the target was left as it was")]
    IncompleteUpload(String),
    #[error("the audit trail cannot be written ({0}), so this was refused; see tetherd's log")]
    AuditUnavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::BadRequest(_) => ErrorCode::BadRequest,
            Error::ApiVersion(_) => ErrorCode::UnsupportedApiVersion,
            Error::Forbidden(_) => ErrorCode::Forbidden,
            Error::MfaRequired(_) => ErrorCode::MfaRequired,
            Error::MfaInvalid => ErrorCode::MfaInvalid,
            Error::ActionNotAllowed(_) => ErrorCode::ActionNotAllowed,
            Error::PathNotAllowed(_) => ErrorCode::PathNotAllowed,
            Error::ActionNotFound { .. } => ErrorCode::ActionNotFound,
            Error::GrantNotFound(_) => ErrorCode::GrantNotFound,
            Error::GrantExists(_) => ErrorCode::GrantExists,
            Error::ActionExists { .. } => ErrorCode::ActionExists,
            Error::NotSupported(_) => ErrorCode::NotSupported,
            Error::NoSuchUser(_) => ErrorCode::NoSuchUser,
            Error::NotEnrolled(_) => ErrorCode::MfaNotEnrolled,
            Error::InviteRequired => ErrorCode::MfaInviteRequired,
            Error::NotFound(_) => ErrorCode::NotFound,
            Error::ProfileNotFound(_) => ErrorCode::ProfileNotFound,
            Error::MethodNotAllowed { .. } => ErrorCode::MethodNotAllowed,
            Error::RequestTimeout(_) => ErrorCode::RequestTimeout,
            Error::PayloadTooLarge(_) => ErrorCode::PayloadTooLarge,
            Error::UpgradeRequired(..) => ErrorCode::UpgradeRequired,
            Error::TooManyConnections(_) => ErrorCode::TooManyConnections,
            Error::Store(
                StoreError::Corrupt { .. } | StoreError::Damaged(_) | StoreError::Unreadable { .. },
            ) => ErrorCode::StoreCorrupt,
            Error::Store(StoreError::Exists(_)) => ErrorCode::ProfileExists,
            Error::Store(StoreError::Missing(_)) => ErrorCode::ProfileNotFound,
            Error::Store(StoreError::Sealed) => ErrorCode::Sealed,
            Error::Store(StoreError::WrongPassphrase) => ErrorCode::WrongPassphrase,
            Error::Store(StoreError::LockedOut(_)) => ErrorCode::TooManyAttempts,
            Error::Store(StoreError::WeakPassphrase(_) | StoreError::Backup(_)) => {
                ErrorCode::BadRequest
            }
            Error::Store(_) => ErrorCode::StoreError,
            Error::Ssh(SshError::Connect { .. } | SshError::TcpRefused { .. }) => {
                ErrorCode::ConnectFailed
            }
            Error::Ssh(SshError::Timeout { .. }) => ErrorCode::Timeout,
            Error::Ssh(SshError::HostKeyMismatch { .. }) | Error::HostKeyNotAsGiven { .. } => {
                ErrorCode::HostKeyMismatch
            }
            Error::Ssh(SshError::AuthFailed { .. }) => ErrorCode::AuthFailed,
            Error::Ssh(SshError::InvalidKey(_)) => ErrorCode::InvalidKey,
            Error::Ssh(SshError::BadPassphrase(_)) => ErrorCode::BadPassphrase,
            Error::Ssh(
                SshError::Protocol { .. }
                | SshError::Closed { .. }
                | SshError::ClosedUnanswered { .. },
            ) => ErrorCode::SshError,
            Error::Ftp(FtpFailure::Connect { .. }) => ErrorCode::ConnectFailed,
            Error::Ftp(FtpFailure::Timeout { .. }) => ErrorCode::Timeout,
            Error::Ftp(
                FtpFailure::CertificateMismatch { .. } | FtpFailure::CertificateInvalid { .. },
            )
            | Error::CertificateNotAsGiven { .. } => ErrorCode::CertificateMismatch,
            Error::Ftp(FtpFailure::Tls { .. }) => ErrorCode::TlsFailed,
            Error::Ftp(FtpFailure::AuthFailed { .. }) => ErrorCode::AuthFailed,
            Error::Ftp(FtpFailure::Protocol { .. } | FtpFailure::Closed { .. })
            | Error::FtpRefused(_) => ErrorCode::FtpError,
            Error::Remote(RemoteError {
                kind: RemoteKind::NoSuchFile,
                ..
            }) => ErrorCode::NoSuchFile,
            Error::Remote(RemoteError {
                kind: RemoteKind::PermissionDenied,
                ..
            }) => ErrorCode::PermissionDenied,
            Error::Remote(RemoteError {
                kind: RemoteKind::Exists,
                ..
            }) => ErrorCode::FileExists,
            Error::Remote(RemoteError {
                kind: RemoteKind::NotEmpty,
                ..
            }) => ErrorCode::DirectoryNotEmpty,
            Error::Remote(RemoteError {
                kind: RemoteKind::DiskFull,
                ..
            }) => ErrorCode::DiskFull,
            Error::Remote(RemoteError {
                kind: RemoteKind::Failed,
                ..
            }) => ErrorCode::SftpError,
            Error::IncompleteUpload(_) => ErrorCode::IncompleteUpload,
            Error::AuditUnavailable(_) => ErrorCode::AuditUnavailable,
            Error::Internal(_) => ErrorCode::Internal,
        }
    }

    /// What scripts may read besides the message; its shapes are api's.
    fn details(&self) -> serde_json::Value {
        let value = match self {
            Error::Ssh(SshError::HostKeyMismatch {
                addr,
                expected,
                actual,
                profile,
            }) => serde_json::to_value(HostKeyDetails {
                profile: profile.clone(),
                address: addr.clone(),
                expected: expected.clone(),
                actual: actual.fingerprint.clone(),
                actual_algorithm: actual.algorithm.clone(),
            }),
            Error::HostKeyNotAsGiven {
                addr,
                given,
                actual,
            } => serde_json::to_value(HostKeyDetails {
                profile: None,
                address: addr.clone(),
                expected: vec![given.clone()],
                actual: actual.fingerprint.clone(),
                actual_algorithm: actual.algorithm.clone(),
            }),
            Error::Ftp(FtpFailure::CertificateMismatch {
                addr,
                expected,
                actual,
                profile,
            }) => serde_json::to_value(CertificateDetails {
                profile: profile.clone(),
                address: addr.clone(),
                expected: expected.clone(),
                actual: actual.clone(),
            }),
            Error::CertificateNotAsGiven {
                addr,
                given,
                actual,
            } => serde_json::to_value(CertificateDetails {
                profile: None,
                address: addr.clone(),
                expected: vec![given.clone()],
                actual: actual.clone(),
            }),
            Error::Ftp(FtpFailure::CertificateInvalid { addr, actual, .. }) => {
                serde_json::to_value(CertificateDetails {
                    profile: None,
                    address: addr.clone(),
                    expected: Vec::new(),
                    actual: actual.clone(),
                })
            }
            Error::Store(StoreError::Corrupt { tree, record }) => {
                serde_json::to_value(RecordDetails {
                    tree: (*tree).to_owned(),
                    record: record.clone(),
                })
            }
            Error::ProfileNotFound(name) | Error::Store(StoreError::Exists(name)) => {
                serde_json::to_value(ProfileDetails {
                    profile: name.clone(),
                })
            }
            _ => return serde_json::Value::Null,
        };
        value.unwrap_or_default()
    }

    /// Names `profile` where the message is better for it (a changed host
    /// key says which profile to re-trust).
    pub fn in_profile(self, profile: &str) -> Error {
        match self {
            Error::Ssh(error) => Error::Ssh(error.in_profile(profile)),
            Error::Ftp(error) => Error::Ftp(error.in_profile(profile)),
            other => other,
        }
    }

    pub fn to_api(&self) -> ApiError {
        ApiError::new(self.code(), self.to_string()).with_details(self.details())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::KeyInfo;

    #[test]
    fn host_key_mismatch_carries_both_fingerprints() {
        let error = Error::Ssh(SshError::HostKeyMismatch {
            profile: Some("web1".into()),
            addr: "h:22".into(),
            expected: vec!["SHA256:old".into()],
            actual: KeyInfo {
                algorithm: "ssh-ed25519".into(),
                fingerprint: "SHA256:new".into(),
            },
        });
        let api = error.to_api();
        assert_eq!(api.code, ErrorCode::HostKeyMismatch);
        assert_eq!(api.details["expected"][0], "SHA256:old");
        assert_eq!(api.details["actual"], "SHA256:new");
        assert!(api.message.contains("SHA256:old") && api.message.contains("SHA256:new"));
        assert!(
            api.message.contains("tether profile trust web1"),
            "{}",
            api.message
        );
    }

    #[test]
    fn store_errors_split_into_corrupt_and_exists() {
        let corrupt = Error::Store(StoreError::Corrupt {
            tree: "secrets",
            record: "web1".into(),
        });
        assert_eq!(corrupt.code(), ErrorCode::StoreCorrupt);
        assert_eq!(
            Error::Store(StoreError::Exists("a".into())).code(),
            ErrorCode::ProfileExists
        );
    }
}
