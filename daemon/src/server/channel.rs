//! Where a request meets the SSH layer: resolve the profile, lease a channel
//! from the pool, and, when a new connection must log in, put on record
//! where the credential goes before handing it over.
//!
//! Every connection that sends a credential (pooled ones and the verify
//! connections of `profile add` and `profile set`) goes through a
//! [`Recorder`]: the trail has an `ssh.connect` event naming the profile,
//! host, port, user and the host key the server proved, written before the
//! credential leaves the daemon, and an `ssh.connect.end` with the result.
//! An attempt that ends before that point (unreachable, host key refused)
//! is one `ssh.connect` event with its error and `sent: false`.

use russh::Channel;
use russh::client::Msg;

use super::App;
use super::profiles;
use crate::access::Caller;
use crate::audit::Event;
use crate::error::Error;
use crate::ssh::client::{Destination, LoginOutcome, Witness};
use crate::ssh::pool::Lease;
use crate::store::Credential;

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

impl Recorder<'_> {
    fn event(&self, op: &str, host: &str, port: u16) -> Event {
        Event::new(self.caller, op)
            .profile(self.profile)
            .detail("purpose", self.purpose)
            .detail("host", host)
            .detail("port", port)
    }
}

impl Witness for Recorder<'_> {
    type Error = Error;

    async fn credential_for(&self, to: &Destination) -> Result<Credential, Error> {
        let mut event = self
            .event("ssh.connect", &to.host, to.port)
            .detail("user", to.user.as_str())
            .detail("host_key", to.host_key.fingerprint.as_str())
            .detail(
                "credential",
                match self.source {
                    Source::Stored => "stored",
                    Source::Given(_) => "given",
                },
            );
        if let Some(id) = to.connection {
            event = event.detail("connection", id);
        }
        // On record first: if it cannot be, nothing is sent.
        self.app.record(event).await?;
        match self.source {
            Source::Stored => Ok(self.app.store.credential(self.profile)?),
            Source::Given(credential) => Ok(credential.copy()),
        }
    }

    async fn ended(&self, outcome: LoginOutcome<'_, Error>) {
        let result = match outcome.result {
            Ok(()) => "ok",
            Err(error) => error.code().as_str(),
        };
        let op = if outcome.sent {
            "ssh.connect.end"
        } else {
            "ssh.connect"
        };
        let mut event = self
            .event(op, outcome.host, outcome.port)
            .result(result)
            .detail("sent", outcome.sent);
        if let Some(key) = outcome.host_key {
            event = event.detail("host_key", key.fingerprint.as_str());
        }
        if let Some(id) = outcome.connection {
            event = event.detail("connection", id);
        }
        self.app.record_after(event).await;
    }
}

/// A session channel on `profile`'s pooled connection, opened for `caller`.
pub async fn open(
    app: &App,
    caller: &Caller,
    profile: &str,
) -> Result<(Channel<Msg>, Lease), Error> {
    let target = profiles::target(app, profile)?;
    let recorder = Recorder {
        app,
        caller,
        profile,
        purpose: "pool",
        source: Source::Stored,
    };
    app.pool
        .channel(&target, &recorder)
        .await
        .map_err(|e| e.in_profile(profile))
}
