//! Where a request meets the SSH and FTP layers: resolve the profile, lease
//! a channel (or an FTP control connection) from its pool, and, when a new
//! connection must log in, put on record where the credential goes before
//! handing it over.
//!
//! Every connection that sends a credential (pooled ones and the verify
//! connections of `profile add` and `profile set`) goes through a
//! [`Recorder`]: the trail has an `ssh.connect` (or `ftp.connect`) event
//! naming the profile, host, port, user and the host key (or certificate)
//! the server proved, written before the credential leaves the daemon, and
//! an `ssh.connect.end` (`ftp.connect.end`) with the result. An attempt
//! that ends before that point (unreachable, key refused) is one
//! `ssh.connect` (`ftp.connect`) event with its error and `sent: false`.
//!
//! A jump host's login on the way to a profile is recorded the same way
//! under the jump's name, with `purpose: jump` and `for` naming the profile
//! the caller asked for: the caller's grant is on that profile, and the
//! jump's credential is used on its behalf, only to carry its connection.

use russh::Channel;
use russh::client::Msg;

use super::App;
use super::profiles;
use crate::access::Caller;
use crate::audit::Event;
use crate::error::Error;
use crate::ftp::pool::Lease as FtpLease;
use crate::ssh::pool::Lease;
use crate::store::Credential;
use crate::witness::{Destination, LoginOutcome, Witness};
use tether_api::types::Protocol;

/// Which credential a login uses.
pub enum Source<'a> {
    /// The profile's stored one.
    Stored,
    /// One that came with the request (a new profile, a rotated secret).
    Given(&'a Credential),
}

/// Records logins for `caller` on `profile` and hands over the credential.
pub struct Recorder<'a> {
    pub app: &'a App,
    pub caller: &'a Caller,
    pub profile: &'a str,
    /// Why the connection is made: `pool` or `verify`.
    pub purpose: &'static str,
    pub source: Source<'a>,
}

/// The audit name of a login by `protocol`: `ssh.connect`, `ftp.connect`.
fn connect_op(protocol: Protocol, end: bool) -> &'static str {
    match (protocol.is_ssh(), end) {
        (true, false) => "ssh.connect",
        (true, true) => "ssh.connect.end",
        (false, false) => "ftp.connect",
        (false, true) => "ftp.connect.end",
    }
}

impl<'a> Recorder<'a> {
    /// For a pooled connection, with the profile's stored credential.
    pub(in crate::server) fn pooled(app: &'a App, caller: &'a Caller, profile: &'a str) -> Self {
        Recorder {
            app,
            caller,
            profile,
            purpose: "pool",
            source: Source::Stored,
        }
    }

    /// An event for a login of `profile`: this recorder's, or a jump
    /// host's on the way to it.
    fn event(&self, op: &str, profile: &str, host: &str, port: u16) -> Event {
        let event = Event::new(self.caller, op).profile(profile);
        let event = if self.is_jump(profile) {
            event.detail("purpose", "jump").detail("for", self.profile)
        } else {
            event.detail("purpose", self.purpose)
        };
        event.detail("host", host).detail("port", port)
    }

    fn is_jump(&self, profile: &str) -> bool {
        profile != self.profile
    }
}

impl Witness for Recorder<'_> {
    type Error = Error;

    async fn credential_for(&self, to: &Destination) -> Result<Credential, Error> {
        // A jump host always logs in with its own stored credential.
        let source = match self.source {
            Source::Given(credential) if !self.is_jump(&to.profile) => Source::Given(credential),
            _ => Source::Stored,
        };
        let mut event = self
            .event(
                connect_op(to.protocol, false),
                &to.profile,
                &to.host,
                to.port,
            )
            .detail("user", to.user.as_str())
            .detail(
                "credential",
                match source {
                    Source::Stored => "stored",
                    Source::Given(_) => "given",
                },
            );
        if let Some(key) = &to.host_key {
            event = event.detail(key_field(to.protocol), key.fingerprint.as_str());
        }
        if to.protocol.is_ftp() {
            event = event.detail("protocol", to.protocol.as_str());
        }
        if let Some(id) = to.connection {
            event = event.detail("connection", id);
        }
        // On record first: if it cannot be, nothing is sent.
        self.app.record(event).await?;
        match source {
            Source::Stored => Ok(self.app.store.credential(&to.profile)?),
            Source::Given(credential) => Ok(credential.copy()),
        }
    }

    async fn ended(&self, outcome: LoginOutcome<'_, Error>) {
        let result = match outcome.result {
            Ok(()) => "ok",
            Err(error) => error.code().as_str(),
        };
        let op = connect_op(outcome.protocol, outcome.sent);
        let mut event = self
            .event(op, outcome.profile, outcome.host, outcome.port)
            .result(result)
            .detail("sent", outcome.sent);
        if let Some(key) = outcome.host_key {
            event = event.detail(key_field(outcome.protocol), key.fingerprint.as_str());
        }
        if let Some(id) = outcome.connection {
            event = event.detail("connection", id);
        }
        self.app.record_after(event).await;
    }
}

/// What the server proved itself with, in the trail: `host_key`, or for
/// FTPS `certificate`.
fn key_field(protocol: Protocol) -> &'static str {
    if protocol.is_ssh() {
        "host_key"
    } else {
        "certificate"
    }
}

/// A session channel on `profile`'s pooled connection, opened for `caller`.
pub async fn open(
    app: &App,
    caller: &Caller,
    profile: &str,
) -> Result<(Channel<Msg>, Lease), Error> {
    let target = profiles::target(app, profile)?;
    app.pool
        .channel(&target, &Recorder::pooled(app, caller, profile))
        .await
        .map_err(|e| e.in_profile(profile))
}

/// A logged-in FTP control connection for `profile`, leased from the pool
/// for `caller`.
pub async fn ftp(app: &App, caller: &Caller, profile: &str) -> Result<FtpLease, Error> {
    let target = profiles::ftp_target(app, profile)?;
    app.ftp
        .lease(&target, &Recorder::pooled(app, caller, profile))
        .await
        .map_err(|e| e.in_profile(profile))
}
