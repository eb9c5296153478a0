//! tether-api: everything the daemon and the CLI must agree on.
//!
//! Architecture invariant: this is the only crate that knows the JSON shapes and
//! the stream framing. `tetherd` and `tether` use these types and never build
//! JSON by hand.
//!
//! - [`API_VERSION`] is sent by every client in the [`API_VERSION_HEADER`]
//!   header; the daemon refuses other versions with `unsupported_api_version`.
//! - [`error`] holds the stable error codes and their HTTP statuses.
//! - [`types`] holds request and response bodies.
//! - [`frame`] is the framed byte stream that `exec` upgrades to.
//! - [`agent`] is the hand-over of an ssh-agent socket to the daemon.
//! - [`client`] talks to the daemon over its Unix socket.
//! - [`time`] turns Unix seconds into a UTC date.
//! - [`secret`] is the zeroizing, `Debug`-less string used for secrets in requests.

pub mod access;
pub mod agent;
pub mod audit;
pub mod batch;
pub mod client;
pub mod endpoint;
pub mod error;
pub mod files;
pub mod frame;
pub mod paths;
pub mod secret;
pub mod time;
pub mod tunnel;
pub mod types;

/// The version of the HTTP API under `/v1`. Bump it on any incompatible change
/// to a path, a body or the stream framing.
pub const API_VERSION: u32 = 1;

/// Header carrying [`API_VERSION`] on every request.
pub const API_VERSION_HEADER: &str = "tether-api-version";

/// `Upgrade:` token for the framed stream of `exec`.
pub const STREAM_PROTOCOL: &str = "tether-stream/1";

#[cfg(test)]
mod tests {
    use super::*;

    /// rbw once shipped two releases under one protocol number; pin ours so a
    /// change to it is a deliberate, reviewed edit.
    #[test]
    fn api_version_is_pinned() {
        assert_eq!(API_VERSION, 1);
        assert_eq!(STREAM_PROTOCOL, "tether-stream/1");
    }
}
