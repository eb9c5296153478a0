//! The socket server: our own accept loop, so that every connection's peer
//! credentials are read before a byte of HTTP is parsed.
//!
//! Per connection: SO_PEERCRED, a per-uid connection count, then one hyper
//! HTTP/1.1 connection with a header-read timeout and a head-size cap; bodies
//! are capped and timed in `http::read_body`. A slow or hostile peer only
//! holds its own connection.

mod access;
mod agent;
mod audit;
mod channel;
mod confine;
mod exec;
mod files;
mod http;
pub mod listener;
mod mfa;
pub mod peer;
pub mod per_uid;
mod profiles;
mod rotate;
mod routes;
mod sessions;
mod status;
mod tunnel;
mod vault;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::UnixListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::access::Caller;
use crate::access::mfa::Mfa;
use crate::access::policy::{self, Allowed, Op};
use crate::audit::refusals::{Refusal, Refusals, Verdict};
use crate::audit::{Audit, Event};
use crate::config::Options;
use crate::error::Error;
use crate::ssh::pool::Pool;
use crate::store::Store;
use peer::Peer;
use per_uid::{PerUid, Slot};

/// Shared daemon state, one per process.
pub struct App {
    pub options: Options,
    /// The live configuration: `options.config` at start, replaced on reload.
    config: std::sync::RwLock<Arc<crate::config::Config>>,
    pub store: Store,
    /// SSH connections.
    pub pool: Pool,
    /// FTP control connections.
    pub ftp: crate::ftp::pool::Pool,
    pub mfa: Mfa,
    /// The ssh-agent sockets served for callers.
    pub agents: Arc<crate::agent::Agents>,
    pub audit: Audit,
    /// Refused requests, summed up per uid (see [`crate::audit::refusals`]).
    refusals: Refusals,
    pub daemon_uid: u32,
    pub started: Instant,
    connections: PerUid,
    /// Running connections and streams, which shutdown waits for.
    tasks: TaskTracker,
    /// Cancelled at shutdown: connections finish their request and close.
    stopping: CancellationToken,
}

impl App {
    pub fn new(options: Options, store: Store, audit: Audit, daemon_uid: u32) -> Arc<App> {
        let pool = Pool::default();
        let ftp = crate::ftp::pool::Pool::new(pool.ids());
        Arc::new(App {
            mfa: Mfa::new(&options.config.access),
            agents: Arc::default(),
            config: std::sync::RwLock::new(Arc::new(options.config.clone())),
            refusals: Refusals::new(std::time::Duration::from_secs(
                options.config.audit.refusal_interval_secs,
            )),
            audit,
            options,
            store,
            pool,
            ftp,
            daemon_uid,
            started: Instant::now(),
            connections: PerUid::default(),
            tasks: TaskTracker::new(),
            stopping: CancellationToken::new(),
        })
    }

    /// Runs `task` as part of the daemon: shutdown waits for it.
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.tasks.spawn(task);
    }

    /// Cancelled when the daemon stops.
    pub fn stopping(&self) -> CancellationToken {
        self.stopping.clone()
    }

    /// The configuration in force now.
    pub fn config(&self) -> Arc<crate::config::Config> {
        self.config
            .read()
            .map(|c| c.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Re-reads the configuration file (SIGHUP). `[limits]` and `[ssh]`
    /// apply to what starts next; live sessions are untouched. A file that
    /// does not load leaves the running configuration as it was.
    pub fn reload(&self) -> Result<(), crate::config::ConfigError> {
        let Some(path) = &self.options.config_path else {
            tracing::info!("reload: no configuration file; nothing to read");
            return Ok(());
        };
        let fresh = crate::config::Config::load(path)?;
        let current = self.config();
        for (what, changed) in [
            ("socket", fresh.socket != current.socket),
            ("state_dir", fresh.state_dir != current.state_dir),
            ("log", fresh.log != current.log),
            (
                "access",
                format!("{:?}", fresh.access) != format!("{:?}", current.access),
            ),
            (
                "audit",
                format!("{:?}", fresh.audit) != format!("{:?}", current.audit),
            ),
        ] {
            if changed {
                tracing::warn!(
                    setting = what,
                    "reload: this setting takes effect at the next start"
                );
            }
        }
        if let Ok(mut config) = self.config.write() {
            *config = Arc::new(fresh);
        }
        tracing::info!(path = %path.display(), "configuration reloaded");
        Ok(())
    }

    /// Stops reuse of `profile`'s pooled connections (SSH and FTP): its
    /// settings or secret changed, or it is gone.
    pub async fn retire(&self, profile: &str) {
        self.pool.retire(profile).await;
        self.ftp.retire(profile);
    }

    /// Wipes the master key and closes every SSH connection: from now on
    /// nothing uses a credential until a restart.
    pub async fn seal(&self, why: &str) {
        self.record_after(Event::daemon(self.daemon_uid, "daemon.seal").detail("by", why))
            .await;
        self.store.seal();
        self.pool.shutdown().await;
        self.ftp.shutdown();
        tracing::warn!(by = why, "sealed: master key wiped, connections closed");
    }

    /// Opens the audit trail once the store has its keys: a replaced head
    /// and the refusals counted while it was closed go on record.
    pub async fn open_trail(&self) -> Result<(), crate::store::StoreError> {
        let replaced = self.audit.unlock(&self.store).await?;
        if let (Some(why), None) = (replaced, self.store.damage()) {
            let event = Event::daemon(self.daemon_uid, crate::audit::HEAD_REPLACED).result(why);
            if let Err(error) = self.record(event).await {
                tracing::error!(%error, "cannot record the replaced audit head");
            }
        }
        self.audit.record_spared(&self.store, self.daemon_uid).await;
        Ok(())
    }

    /// A failed unseal: on record if the trail is open (after `tether
    /// seal`), in the log either way.
    pub async fn refused_unseal(&self, caller: &Caller, error: crate::store::StoreError) -> Error {
        tracing::warn!(uid = caller.uid, %error, "unseal refused");
        let error = Error::from(error);
        if self.audit.is_open() {
            let event = Event::new(caller, "daemon.unseal").result(error.code().as_str());
            self.record_after(event).await;
        }
        error
    }

    /// Whether `caller` may do `op` on `profile` (see [`policy::check`]).
    pub fn authorize(&self, caller: &Caller, profile: &str, op: Op<'_>) -> Result<Allowed, Error> {
        policy::check(&self.store, caller, profile, op, || {
            self.mfa.use_session(caller)
        })
    }

    /// Puts `event` on record; an error means the operation must not go on.
    pub async fn record(&self, event: Event) -> Result<u64, Error> {
        self.audit.record(&self.store, event).await
    }

    /// Queues `event` for a later commit ([`crate::audit::Audit::record_later`]).
    pub fn record_later(&self, event: Event) -> Result<crate::audit::Later, Error> {
        self.audit.record_later(event)
    }

    /// Commits the events queued by [`App::record_later`].
    pub async fn flush_records(&self) {
        self.audit.flush(&self.store).await;
    }

    /// Puts the end of an operation on record (a failure is logged).
    pub async fn record_after(&self, event: Event) {
        self.audit.record_after(&self.store, event).await;
    }

    /// Puts a refused request on record, or counts it into its uid's
    /// summary; spare events, so a flood neither floods the trail nor takes
    /// the disk's reserve.
    pub async fn refused(&self, refusal: Refusal<'_>) {
        // An admin's refusals are all on record: whoever administers the
        // daemon can empty the trail anyway, and they are few.
        let verdict = if refusal.caller.admin {
            Verdict::Record(refusal.event())
        } else {
            self.refusals.admit(&refusal)
        };
        if let Verdict::Record(event) = verdict {
            self.audit.record_spare(&self.store, event).await;
        }
    }

    /// Writes the summaries of refusal intervals that have ended (all of
    /// them with `all`).
    async fn sweep_refusals(&self, all: bool) {
        for event in self.refusals.sweep(all) {
            self.audit.record_spare(&self.store, event).await;
        }
    }

    /// Runs `work` between its start event (written first: if it cannot
    /// be, `work` does not run) and an end event with its outcome.
    pub async fn audited<T>(
        &self,
        start: Event,
        work: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let end = start.end(String::new());
        self.record(start).await?;
        let result = work.await;
        let outcome = match &result {
            Ok(_) => "ok".to_owned(),
            Err(error) => error.code().as_str().to_owned(),
        };
        self.record_after(end.result(outcome)).await;
        result
    }

    /// For a stream, whose end comes after the response: its start is put
    /// on record (if it cannot be, `work` does not run), and `work` gets
    /// the end event, to record when the stream is over. A `work` that
    /// fails before streaming has its end recorded here.
    pub async fn streamed<F, Fut>(&self, start: Event, work: F) -> Result<http::Resp, Error>
    where
        F: FnOnce(Event) -> Fut,
        Fut: Future<Output = Result<http::Resp, Error>>,
    {
        let end = start.end(String::new());
        self.record(start).await?;
        match work(end.clone()).await {
            Ok(response) => Ok(response),
            Err(error) => {
                self.record_after(end.result(error.code().as_str())).await;
                Err(error)
            }
        }
    }

    pub fn admin_only(&self, caller: &Caller, what: &str) -> Result<(), Error> {
        if caller.admin {
            return Ok(());
        }
        Err(Error::Forbidden(format!(
            "only root may {what} (uid {} is not root)",
            caller.uid
        )))
    }

    /// Counts a connection for `uid`; `None` when the uid is at its limit.
    fn admit(&self, uid: u32) -> Option<Slot> {
        self.connections
            .admit(uid, self.config().limits.max_connections_per_uid)
    }
}

/// Accepts connections until `shutdown` resolves, then waits (bounded by
/// `limits.drain_timeout_secs`) for running requests and commands.
pub async fn serve(app: Arc<App>, listener: UnixListener, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    let reaper = tokio::spawn(reap_idle(app.clone()));
    let sweeper = tokio::spawn(sweep_refusals(app.clone()));
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    // Peer and admission here, in accept order, so that the
                    // per-uid count does not depend on which task runs first.
                    let peer = match Peer::from_stream(&stream) {
                        Ok(peer) => peer,
                        Err(error) => {
                            tracing::warn!(%error, "cannot read peer credentials; closing");
                            continue;
                        }
                    };
                    let app = app.clone();
                    let Some(admitted) = app.admit(peer.uid) else {
                        tokio::spawn(turn_away(app, stream, peer));
                        continue;
                    };
                    let tasks = app.tasks.clone();
                    tasks.spawn(serve_connection(app, stream, peer, admitted));
                }
                Err(error) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    app.stopping.cancel();
    app.tasks.close();
    let running = app.tasks.len();
    if running > 0 {
        tracing::info!(running, "waiting for running requests");
        let drain = app.config().limits.drain_timeout();
        if tokio::time::timeout(drain, app.tasks.wait()).await.is_err() {
            tracing::warn!(left = app.tasks.len(), "drain timeout; ending the rest");
        }
    }
    reaper.abort();
    sweeper.abort();
    app.sweep_refusals(true).await;
    app.audit.record_spared(&app.store, app.daemon_uid).await;
    app.pool.shutdown().await;
    app.ftp.shutdown();
}

/// Writes refusal summaries as their intervals end.
async fn sweep_refusals(app: Arc<App>) {
    let interval = std::time::Duration::from_secs(app.config().audit.refusal_interval_secs);
    let period = (interval / 2).clamp(
        std::time::Duration::from_millis(100),
        std::time::Duration::from_secs(10),
    );
    let mut ticker = tokio::time::interval(period);
    loop {
        ticker.tick().await;
        app.sweep_refusals(false).await;
    }
}

/// Closes pooled connections that have been idle too long.
async fn reap_idle(app: Arc<App>) {
    let period = (app.config().ssh.idle_timeout() / 4).clamp(
        std::time::Duration::from_millis(250),
        std::time::Duration::from_secs(30),
    );
    let mut ticker = tokio::time::interval(period);
    let mut last_prune = Instant::now();
    loop {
        ticker.tick().await;
        app.pool.reap(app.config().ssh.idle_timeout()).await;
        app.ftp.maintain(app.config().ssh.idle_timeout()).await;
        if last_prune.elapsed() >= std::time::Duration::from_secs(3600) {
            last_prune = Instant::now();
            if let Err(error) = app.audit.prune(&app.store, app.daemon_uid).await {
                tracing::warn!(%error, "audit retention failed");
            }
        }
    }
}

/// Serves one connection that was accepted elsewhere, to its end: the HTTP
/// fuzz target's way in (the accept loop does the same per connection).
pub async fn serve_one(app: Arc<App>, stream: tokio::net::UnixStream) {
    let Ok(peer) = Peer::from_stream(&stream) else {
        return;
    };
    let Some(admitted) = app.admit(peer.uid) else {
        turn_away(app, stream, peer).await;
        return;
    };
    serve_connection(app, stream, peer, admitted).await;
}

/// How long a turned-away connection may take to send what it had queued
/// before it is closed (so its client reads the answer, not a broken pipe).
const TURN_AWAY_LINGER: std::time::Duration = std::time::Duration::from_millis(100);

/// How long a turned-away connection's request may take to start arriving
/// (a loaded machine can take a while between connect and request).
const TURN_AWAY_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// A connection over its uid's limit: answered `too_many_connections` as
/// soon as its request starts to arrive (an HTTP client takes an answer
/// that comes before its request as a broken connection), without parsing
/// it, and closed; it never holds a descriptor for longer than
/// [`TURN_AWAY_WAIT`] and [`TURN_AWAY_LINGER`].
async fn turn_away(app: Arc<App>, stream: tokio::net::UnixStream, peer: Peer) {
    let error = Error::TooManyConnections(peer.uid);
    let answer = http::raw_error(&error);
    let request_begun = async {
        let mut head = [0u8; 1024];
        loop {
            if stream.readable().await.is_err() {
                return;
            }
            // Readiness can be stale: only bytes read (or the end) count.
            match stream.try_read(&mut head) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                _ => return,
            }
        }
    };
    let _ = tokio::time::timeout(TURN_AWAY_WAIT, request_begun).await;
    let _ = stream.try_write(&answer);
    let caller = Caller::resolve(&peer, app.options.mode, app.daemon_uid);
    app.refused(Refusal {
        caller: &caller,
        method: "-",
        path: "-",
        code: error.code().as_str(),
        profile: None,
    })
    .await;
    // The answer is all there is: the client sees it end, reads it and
    // closes; what it sent meanwhile is taken so the close resets nothing.
    let _ = rustix::net::shutdown(&stream, rustix::net::Shutdown::Write);
    let drain = async {
        let mut sink = [0u8; 4096];
        loop {
            if stream.readable().await.is_err() {
                return;
            }
            match stream.try_read(&mut sink) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    };
    let _ = tokio::time::timeout(TURN_AWAY_LINGER, drain).await;
    tracing::warn!(uid = peer.uid, "connection limit reached; turned away");
}

/// Serves one connection as if `peer` were calling: for tests that call
/// the router as made-up users, over a socket pair.
#[doc(hidden)]
pub async fn serve_as(app: Arc<App>, stream: tokio::net::UnixStream, peer: Peer) {
    let Some(admitted) = app.admit(peer.uid) else {
        return;
    };
    serve_connection(app, stream, peer, admitted).await;
}

async fn serve_connection(
    app: Arc<App>,
    stream: tokio::net::UnixStream,
    peer: Peer,
    admitted: Slot,
) {
    let stopping = app.stopping.clone();
    let config = app.config();
    let limits = &config.limits;
    let service_app = app.clone();
    let service = service_fn(move |request| {
        let app = service_app.clone();
        async move { Ok::<_, Infallible>(routes::handle(app, peer, request).await) }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout())
        .max_buf_size(limits.max_head_bytes)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(uid = peer.uid, %error, "connection ended with an error");
            }
        }
        () = stopping.cancelled() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
    drop(admitted);
}
