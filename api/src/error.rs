//! Stable error codes.
//!
//! Every error the daemon returns is an HTTP status and a body
//! `{"error": {"code": "...", "message": "...", "details": {...}}}`. Scripts
//! branch on `code`; `message` is for people and may change. The code decides
//! the status, here and nowhere else, so the daemon and the CLI cannot drift.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! error_codes {
    ($($variant:ident => $code:literal, $status:literal, $doc:literal;)*) => {
        /// A stable, snake_case error code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        #[non_exhaustive]
        pub enum ErrorCode {
            $(#[doc = $doc] $variant,)*
            /// A code this client does not know (sent by a newer daemon).
            #[serde(other)]
            Unknown,
        }

        impl ErrorCode {
            /// Every code the daemon may send, for documentation and tests.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)*
                    ErrorCode::Unknown => "unknown",
                }
            }

            /// The HTTP status that carries this code.
            pub fn status(self) -> u16 {
                match self {
                    $(ErrorCode::$variant => $status,)*
                    ErrorCode::Unknown => 500,
                }
            }

            /// One line saying what the code means.
            pub fn describe(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $doc,)*
                    ErrorCode::Unknown => "an error code this client does not know",
                }
            }
        }
    };
}

error_codes! {
    BadRequest => "bad_request", 400, "the request is malformed: bad JSON, a wrong type, a missing or invalid field";
    UnsupportedApiVersion => "unsupported_api_version", 400, "the client speaks another API version than the daemon";
    InvalidKey => "invalid_key", 400, "the private key cannot be parsed or is of an unsupported type";
    BadPassphrase => "bad_passphrase", 400, "the private key is encrypted and the passphrase is missing or wrong";
    MfaRequired => "mfa_required", 401, "this needs a live MFA session: run `tether login`";
    MfaInvalid => "mfa_invalid", 401, "the code was not accepted (wrong, already used, or too many recent failures)";
    Forbidden => "forbidden", 403, "the caller may not do this";
    ActionNotAllowed => "action_not_allowed", 403, "the grant does not allow this command or action";
    PathNotAllowed => "path_not_allowed", 403, "the path is outside the grant's SFTP path prefixes";
    NotFound => "not_found", 404, "no such endpoint";
    ProfileNotFound => "profile_not_found", 404, "no profile has that name";
    ActionNotFound => "action_not_found", 404, "the profile has no action of that name";
    GrantNotFound => "grant_not_found", 404, "no such grant";
    NoSuchUser => "no_such_user", 404, "the user database has no such user or group";
    MfaNotEnrolled => "mfa_not_enrolled", 409, "the caller has no TOTP enrolled: run `tether mfa enroll`";
    MfaInviteRequired => "mfa_invite_required", 403, "a first TOTP enrolment needs a one-time invite from root (`tether mfa invite USER`)";
    NoSuchFile => "no_such_file", 404, "the remote file or directory does not exist";
    PermissionDenied => "permission_denied", 403, "the server refused access to the remote file";
    FileExists => "file_exists", 409, "the remote path exists already";
    DirectoryNotEmpty => "directory_not_empty", 409, "the remote directory is not empty";
    DiskFull => "disk_full", 507, "the remote file system is full; the target was left as it was";
    MethodNotAllowed => "method_not_allowed", 405, "the endpoint does not take this HTTP method";
    RequestTimeout => "request_timeout", 408, "the request was not received in time";
    ProfileExists => "profile_exists", 409, "a profile with that name exists already";
    GrantExists => "grant_exists", 409, "the user or group has a grant on that profile already: `tether grant set` changes it";
    ActionExists => "action_exists", 409, "the profile has an action of that name already: `tether action set` changes it";
    NotSupported => "not_supported", 400, "this daemon or this profile cannot do that (the message says why)";
    PayloadTooLarge => "payload_too_large", 413, "the request head or body is over the daemon's limit";
    UpgradeRequired => "upgrade_required", 426, "this endpoint streams and needs an Upgrade request";
    TooManyConnections => "too_many_connections", 429, "the caller has too many open connections to the daemon";
    StoreCorrupt => "store_corrupt", 500, "a stored record, or the store as a whole, failed its integrity check (the message says which)";
    StoreError => "store_error", 500, "the credential store could not be read or written";
    Internal => "internal", 500, "an unexpected error inside the daemon";
    ConnectFailed => "connect_failed", 502, "the server could not be reached";
    HostKeyMismatch => "host_key_mismatch", 502, "the server's host key is not the pinned one; nothing was sent to it";
    CertificateMismatch => "certificate_mismatch", 502, "the FTPS server's TLS certificate is not the pinned one (or not valid for the authorities trusted); nothing was sent to it";
    TlsFailed => "tls_failed", 502, "the TLS handshake with the FTPS server failed, or the server does not offer TLS";
    FtpError => "ftp_error", 502, "the FTP server failed the operation or closed the connection";
    AuthFailed => "auth_failed", 502, "the server refused the stored credential";
    SshError => "ssh_error", 502, "the SSH connection failed or was closed";
    SftpError => "sftp_error", 502, "the server's SFTP subsystem failed the operation (a full disk shows here)";
    IncompleteUpload => "incomplete_upload", 400, "the upload ended before its last byte; the target was left as it was";
    Sealed => "sealed", 503, "the daemon holds no master key (started with --passphrase, or `tether seal`): `tether unseal`";
    WrongPassphrase => "wrong_passphrase", 403, "the passphrase does not open the master key (wrong ones count toward a lockout)";
    TooManyAttempts => "too_many_attempts", 429, "too many wrong passphrases: wait the time the message says";
    AuditUnavailable => "audit_unavailable", 503, "the audit trail cannot be written, so the operation was refused";
    Timeout => "timeout", 504, "the server did not answer in time";
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error object inside [`ErrorBody`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub details: serde_json::Value,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: serde_json::Value::Null,
        }
    }

    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

/// The `details` of `host_key_mismatch`, which scripts read to decide
/// whether to re-trust a server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostKeyDetails {
    /// The profile, where the key was checked for one.
    pub profile: Option<String>,
    pub address: String,
    /// The fingerprints that were trusted.
    pub expected: Vec<String>,
    /// The fingerprint the server showed, and its algorithm.
    pub actual: String,
    pub actual_algorithm: String,
}

/// The `details` of `certificate_mismatch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateDetails {
    pub profile: Option<String>,
    pub address: String,
    /// The pinned fingerprints (hex with colons), or none when the
    /// certificate was checked against authorities.
    pub expected: Vec<String>,
    /// The fingerprint of the certificate the server showed.
    pub actual: String,
}

/// The `details` of `store_corrupt` for one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordDetails {
    pub tree: String,
    pub record: String,
}

/// The `details` of `profile_not_found` and `profile_exists`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileDetails {
    pub profile: String,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for ApiError {}

/// The JSON body of every error response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ApiError,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_as_snake_case() {
        for &code in ErrorCode::ALL {
            let json = serde_json::to_string(&code).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            let back: ErrorCode = serde_json::from_str(&json).unwrap_or(ErrorCode::Unknown);
            assert_eq!(back, code);
            assert!((400..600).contains(&code.status()), "{code}");
        }
    }

    #[test]
    fn unknown_code_from_a_newer_daemon_still_parses() {
        let body: ErrorBody =
            serde_json::from_str(r#"{"error":{"code":"brand_new","message":"m"}}"#)
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(body.error.code, ErrorCode::Unknown);
    }

    #[test]
    fn host_key_mismatch_is_stable() {
        assert_eq!(ErrorCode::HostKeyMismatch.as_str(), "host_key_mismatch");
        assert_eq!(ErrorCode::HostKeyMismatch.status(), 502);
    }
}
