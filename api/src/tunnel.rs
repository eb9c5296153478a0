//! `tether forward` and `tether proxy`: one TCP connection that a
//! profile's server makes (`direct-tcpip`) and tetherd bridges.
//!
//! The CLI asks with `POST /v1/profiles/{name}/tunnel` ([`TunnelRequest`],
//! `Upgrade:` [`TUNNEL_PROTOCOL`]). tetherd checks the grant, opens the
//! channel on the profile's pooled connection and only then answers `101`;
//! a refusal is an ordinary error answer. After the upgrade either
//!
//! - the CLI hands over the connection it accepted (`socket: true`): one
//!   byte carrying the descriptor (`SCM_RIGHTS`, see
//!   [`crate::agent::send_fd`]); tetherd moves the bytes between it and the
//!   channel, and the upgraded connection stays open only to say that the
//!   CLI still runs (when it closes, tetherd ends the forwarded
//!   connection); or
//! - the upgraded connection itself carries the bytes (`socket: false`, for
//!   stdin and stdout), each direction ending with a shutdown.
//!
//! tetherd closes the upgraded connection when the forwarded one ends.

use serde::{Deserialize, Serialize};

/// `Upgrade:` token of a tunnel.
pub const TUNNEL_PROTOCOL: &str = "tether-tunnel/1";

/// What the connection is for, as the trail records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TunnelKind {
    /// `tether forward -L`.
    Local,
    /// `tether forward -D`: a SOCKS5 client named the destination.
    Socks,
    /// `tether proxy`: the caller's stdin and stdout.
    Proxy,
}

impl TunnelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TunnelKind::Local => "local",
            TunnelKind::Socks => "socks",
            TunnelKind::Proxy => "proxy",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TunnelRequest {
    /// Where the server connects to, as the server resolves it.
    pub host: String,
    pub port: u16,
    pub kind: TunnelKind,
    /// The local peer of a forwarded connection (`127.0.0.1:53412`), for
    /// the trail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// The CLI hands the accepted connection over after the upgrade.
    #[serde(default)]
    pub socket: bool,
}
