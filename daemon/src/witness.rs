//! The hand-over of a credential: every protocol's login (SSH's and FTP's)
//! asks a [`Witness`] for the credential only once the server has proved
//! who it is, and tells the witness how the attempt ended. The witness (the
//! server layer's `Recorder`) puts the destination on the audit trail
//! before it hands anything over.

use tether_api::types::Protocol;

use crate::store::{Credential, KeyInfo};

/// Where a credential is about to be sent: the address it was stored for,
/// and the key the server has just proved it holds (an SSH host key, or
/// the TLS certificate of an FTPS server).
#[derive(Debug, Clone)]
pub struct Destination {
    pub protocol: Protocol,
    /// The profile whose credential goes: the one asked for, or a jump
    /// host on the way to it.
    pub profile: String,
    pub host: String,
    pub port: u16,
    pub user: String,
    /// `None` only for plain FTP, where nothing proves the server.
    pub host_key: Option<KeyInfo>,
    /// The pool's number for the connection, when it is a pooled one.
    pub connection: Option<u64>,
}

/// How a login attempt ended, for the record.
pub struct LoginOutcome<'a, E> {
    pub protocol: Protocol,
    pub profile: &'a str,
    pub host: &'a str,
    pub port: u16,
    /// The key the server showed, when it got that far.
    pub host_key: Option<&'a KeyInfo>,
    pub connection: Option<u64>,
    /// Whether the credential was offered to the server.
    pub sent: bool,
    pub result: Result<(), &'a E>,
}

/// Who stands between a proved server and its credential: the layer above,
/// which records where the credential goes and hands it over.
pub trait Witness: Sync {
    type Error: Send;

    /// Called once the server is proved, before anything is sent: record
    /// that the credential goes to `to` and return it. An error stops the
    /// login.
    fn credential_for(
        &self,
        to: &Destination,
    ) -> impl Future<Output = Result<Credential, Self::Error>> + Send;

    /// Called once the attempt is over, whichever way it ended (except when
    /// [`Witness::credential_for`] itself refused).
    fn ended(&self, outcome: LoginOutcome<'_, Self::Error>) -> impl Future<Output = ()> + Send;
}
