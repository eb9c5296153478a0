//! The connection pool: one SSH connection per profile, shared as channels
//! by every caller, like OpenSSH's ControlMaster without per-host sockets.
//!
//! - A connection is opened on first use and reused while it is alive; a
//!   second command makes no new TCP connection or handshake.
//! - A profile gets a second connection only when the first is at the
//!   server's session limit (OpenSSH `MaxSessions`, 10 by default): a refused
//!   channel lowers that connection's limit to what it has. A Dropbear
//!   before 2024.86 gets one session channel per connection, and the
//!   connection is retired after a channel whose process may still run
//!   ([`super::reply::closes_new_channels`]).
//! - A dead connection (closed by the server, or silent past its keepalives)
//!   is dropped and replaced on the next command; commands running on it end
//!   with an error, not a hang.
//! - A connection with a stream whose caller has stopped reading takes no new
//!   channels until that caller catches up: russh grants the server more
//!   window as soon as data arrives, not as the caller reads it, so the only
//!   brake on such a stream is to stop reading the whole connection. New
//!   callers get another connection; channels already on it wait with it.
//! - Connections idle (no channel) longer than the idle timeout are closed,
//!   and a connection is replaced after [`CHANNELS_PER_CONNECTION`]
//!   channels (russh keeps a little state per channel tether closed first).
//! - Changing or removing a profile retires its connections: they take no
//!   new channels and close when their last channel ends.
//! - An SFTP session whose request ended well is kept (at most
//!   [`MAX_PARKED`] per profile, for [`PARKED_FOR`]) for the next file
//!   request: starting one costs a channel, a subsystem start, the version
//!   exchange and the limits, and on OpenSSH a process. It is kept only
//!   where its connection has a free slot besides it, so a kept session
//!   never makes a command wait.
//!
//! A burst of callers on a cold profile makes as many handshakes as it
//! needs connections, not one per caller, and makes them at once (up to
//! four per profile): the callers that find no room are counted,
//! and one of them opens another connection only when those being opened
//! will not have room for them all.
//!
//! A profile with a jump host (`--jump`) is reached through a `direct-tcpip`
//! channel of the jump profile's pooled connection: its connection holds a
//! lease on the jump's, which so stays open while it does. TCP channels
//! (jumps, forwards) do not count against `MaxSessions`, which limits
//! sessions only; they go on the least busy connection.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use russh::client::Msg;
use russh::{Channel, Disconnect};

use super::SshError;
use super::client::{self, ConnectSettings, SshHandle, Trust};
use super::sftp::Sftp;
use crate::remote::SessionSnapshot;
use crate::witness::Witness;

/// Channels a connection takes before the server says otherwise (OpenSSH's
/// default `MaxSessions`).
pub const DEFAULT_MAX_CHANNELS: usize = 10;

/// How many refused or failed channel opens a caller absorbs before giving
/// up (opening a new connection does not count).
const MAX_FAILURES: usize = 8;
/// Refusals on a connection that holds no other channel of ours before the
/// server is taken to allow none (with waits of 20 ms and up, and a fresh
/// connection every fourth): about two and a half seconds in all.
const MAX_LONELY_REFUSALS: u32 = 8;

/// Where and how to connect, for one profile.
pub struct Target {
    pub profile: String,
    pub host: String,
    pub port: u16,
    pub user: String,
    /// An OpenSSH user certificate for the key, where the profile has one.
    pub certificate: Option<String>,
    pub pins: Vec<String>,
    pub settings: ConnectSettings,
    /// The profile whose connection carries this one's, with its own jump
    /// in turn.
    pub jump: Option<Box<Target>>,
}

/// Which channel a caller wants.
#[derive(Debug, Clone, Copy)]
pub enum Open<'a> {
    /// A session: a command, a shell, a subsystem.
    Session,
    /// A TCP connection the server makes to `host:port` (`direct-tcpip`),
    /// for a jump or a forward; `from` is the address it is made for.
    Tcp {
        host: &'a str,
        port: u16,
        from: (&'a str, u16),
    },
}

pub struct Connection {
    pub id: u64,
    pub profile: String,
    pub addr: String,
    handle: SshHandle,
    opened: Instant,
    last_used: Mutex<Instant>,
    channels: AtomicUsize,
    max_channels: AtomicUsize,
    /// Channels ever opened here (see [`CHANNELS_PER_CONNECTION`]).
    opened_channels: AtomicUsize,
    retired: AtomicBool,
    /// One session channel at a time, opened only when no process of the
    /// last can still be running (a server whose process exits close new
    /// channels: [`super::reply::closes_new_channels`]).
    pub exclusive: bool,
    /// Streams whose caller has stopped reading (see [`Lease::stall`]).
    stalled: AtomicUsize,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    /// The channel of the jump host's connection this one runs in.
    _via: Option<Lease>,
    /// The server's pre-login banner: shown when a shell opens.
    pub banner: Option<String>,
    /// How long the server may take to answer a channel request (a
    /// terminal, a subsystem) before it is taken as not answering: half the
    /// connect timeout, at least a second.
    pub reply_wait: Duration,
}

impl Connection {
    fn alive(&self) -> bool {
        !self.handle.is_closed()
    }

    fn usable(&self) -> bool {
        self.alive() && !self.retired.load(Ordering::SeqCst)
    }

    /// Whether a new channel may go here: usable, with room, and not held
    /// up by a caller that stopped reading.
    fn has_room(&self) -> bool {
        self.usable()
            && self.stalled.load(Ordering::SeqCst) == 0
            && self.channels.load(Ordering::SeqCst) < self.max_channels.load(Ordering::SeqCst)
    }

    /// Takes no new channels; hangs up when its last one is released.
    pub fn retire(&self) {
        self.retired.store(true, Ordering::SeqCst);
    }

    fn idle_for(&self) -> Duration {
        self.last_used
            .lock()
            .map(|t| t.elapsed())
            .unwrap_or_default()
    }

    async fn hang_up(&self) {
        let _ = self
            .handle
            .disconnect(Disconnect::ByApplication, "", "en")
            .await;
    }
}

/// A channel's claim on its connection; releasing it (drop) frees the slot.
pub struct Lease {
    pub connection: Arc<Connection>,
    /// The channel had no process on the server, or its process is known
    /// to have ended (its exit reported before the channel closed).
    ended: AtomicBool,
}

impl Lease {
    /// The channel's process has ended: on a connection of one channel at
    /// a time, the next may be opened ([`super::reply::closes_new_channels`]).
    pub fn process_ended(&self) {
        self.ended.store(true, Ordering::SeqCst);
    }

    /// The channel's first request failed with `error`: a channel the
    /// server closed unanswered retires the connection, whose server may
    /// yet act on the request and end it ([`super::reply`]).
    pub fn failed(&self, error: &SshError) {
        if let SshError::ClosedUnanswered { .. } = error {
            self.connection.retire();
        }
    }

    /// Marks the connection as held up by this channel's caller until the
    /// guard drops: it takes no new channels meanwhile.
    pub fn stall(&self) -> Stall {
        self.connection.stalled.fetch_add(1, Ordering::SeqCst);
        Stall {
            connection: self.connection.clone(),
        }
    }
}

/// See [`Lease::stall`].
pub struct Stall {
    connection: Arc<Connection>,
}

impl Drop for Stall {
    fn drop(&mut self) {
        self.connection.stalled.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let connection = &self.connection;
        if let Ok(mut last) = connection.last_used.lock() {
            *last = Instant::now();
        }
        if connection.exclusive && !self.ended.load(Ordering::SeqCst) {
            // Its process may still be running: when it exits, a channel
            // being opened here would be closed at birth.
            connection.retire();
        }
        let left = connection.channels.fetch_sub(1, Ordering::SeqCst) - 1;
        if left == 0 && connection.retired.load(Ordering::SeqCst) {
            let connection = connection.clone();
            tokio::spawn(async move { connection.hang_up().await });
        }
    }
}

/// SFTP sessions kept per profile, at most: one per file a tree copy has
/// in flight, so that its files reuse sessions rather than start new ones
/// (on OpenSSH a process each).
pub const MAX_PARKED: usize = tether_api::files::FILES_IN_FLIGHT;
/// How long a kept SFTP session waits for its next request.
pub const PARKED_FOR: Duration = Duration::from_secs(10);

/// An SFTP session between requests.
struct Parked {
    sftp: Sftp,
    lease: Lease,
    since: Instant,
}

/// Channels a connection opens before it is retired (and replaced by a new
/// one): russh 0.65 keeps a little state (about 1.4 KiB) for every channel
/// that tether closes before the server does, until the connection ends,
/// so a connection that lives through thousands of file requests would
/// hold it all; retiring bounds it at under a megabyte per connection.
pub const CHANNELS_PER_CONNECTION: usize = 512;

/// New connections of one profile being opened at once, at most: below
/// the unauthenticated connections a server lets one address have
/// (Dropbear 5, OpenSSH's `MaxStartups` starts refusing at 10).
const MAX_OPENING: usize = 4;

/// Who waits for a connection of one profile, and how many are being
/// opened for them.
#[derive(Default)]
struct Demand {
    /// Callers that found no room and have not been served yet.
    waiting: usize,
    /// Connections being opened.
    opening: usize,
}

/// One profile's connections.
#[derive(Default)]
struct Slot {
    connections: Mutex<Vec<Arc<Connection>>>,
    demand: Mutex<Demand>,
    /// Woken when a connection has been opened (or failed to be).
    opened: tokio::sync::Notify,
    parked: Mutex<Vec<Parked>>,
}

/// A caller that found no room, counted in its slot's [`Demand`] until
/// this drops (served, failed or cancelled alike).
struct Turn<'a> {
    slot: &'a Slot,
    /// It opens a connection (the ones being opened will not be enough);
    /// otherwise it waits for one of them, then looks again.
    opens: bool,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut demand = self.slot.demand.lock().unwrap_or_else(|e| e.into_inner());
        demand.waiting = demand.waiting.saturating_sub(1);
        if self.opens {
            demand.opening = demand.opening.saturating_sub(1);
            drop(demand);
            self.slot.opened.notify_waiters();
        }
    }
}

impl Slot {
    /// Channels a new connection is expected to take: what the server has
    /// let the live ones take, or the default.
    fn room_per_connection(&self, open: Open<'_>) -> usize {
        if let Open::Tcp { .. } = open {
            return usize::MAX;
        }
        let Ok(connections) = self.connections.lock() else {
            return 1;
        };
        connections
            .iter()
            .filter(|c| c.alive())
            .map(|c| c.max_channels.load(Ordering::SeqCst))
            .min()
            .unwrap_or(DEFAULT_MAX_CHANNELS)
            .max(1)
    }

    /// Counts a caller that found no room, and says whether it opens a
    /// connection: as many are opened at once as the waiting callers need
    /// (up to [`MAX_OPENING`]), so a burst on a cold profile logs in in
    /// parallel rather than one connection after another.
    fn turn(&self, open: Open<'_>) -> Turn<'_> {
        let room = self.room_per_connection(open);
        let mut demand = self.demand.lock().unwrap_or_else(|e| e.into_inner());
        demand.waiting += 1;
        let opens =
            demand.opening < MAX_OPENING && demand.opening.saturating_mul(room) < demand.waiting;
        if opens {
            demand.opening += 1;
        }
        Turn { slot: self, opens }
    }

    /// Whether a connection has room for `open` (any usable one for a TCP
    /// channel, which counts against no session limit).
    fn fits(connection: &Connection, open: Open<'_>) -> bool {
        match open {
            Open::Session => connection.has_room(),
            Open::Tcp { .. } => connection.usable(),
        }
    }

    /// Whether some connection has room for `open`, without taking it.
    fn available(&self, open: Open<'_>) -> bool {
        self.connections
            .lock()
            .is_ok_and(|connections| connections.iter().any(|c| Self::fits(c, open)))
    }

    fn add(&self, connection: Arc<Connection>) {
        if let Ok(mut connections) = self.connections.lock() {
            connections.push(connection);
        }
    }

    /// Takes a channel slot on the least busy connection with room for
    /// `open`.
    fn lease(&self, open: Open<'_>) -> Option<Lease> {
        let mut connections = self.connections.lock().ok()?;
        connections.retain(|c| c.alive());
        let best = connections
            .iter()
            .filter(|c| Self::fits(c, open))
            .min_by_key(|c| c.channels.load(Ordering::SeqCst))?
            .clone();
        best.channels.fetch_add(1, Ordering::SeqCst);
        Some(Lease {
            connection: best,
            ended: AtomicBool::new(matches!(open, Open::Tcp { .. })),
        })
    }
}

#[derive(Default)]
pub struct Pool {
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    /// Connection numbers, shared with the FTP pool.
    next_id: Arc<AtomicU64>,
    /// Counts SSH connections ever opened (for tests and status).
    pub opened: AtomicU64,
}

impl Pool {
    /// The connection numbers this pool hands out, for another pool to
    /// share.
    pub fn ids(&self) -> Arc<AtomicU64> {
        self.next_id.clone()
    }

    fn slot(&self, profile: &str) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.entry(profile.to_owned()).or_default().clone()
    }

    /// Opens a session channel for `target`, on a pooled connection or a new
    /// one. `witness` is asked for the credential only when a new connection
    /// must log in, after the server proved its host key.
    pub async fn channel<W>(
        &self,
        target: &Target,
        witness: &W,
    ) -> Result<(Channel<Msg>, Lease), W::Error>
    where
        W: Witness,
        W::Error: From<SshError>,
    {
        self.open(target, Open::Session, witness).await
    }

    /// Opens the channel `open` asks for on `target`'s pooled connection
    /// (or a new one), as [`Pool::channel`] does.
    pub async fn open<W>(
        &self,
        target: &Target,
        open: Open<'_>,
        witness: &W,
    ) -> Result<(Channel<Msg>, Lease), W::Error>
    where
        W: Witness,
        W::Error: From<SshError>,
    {
        let slot = self.slot(&target.profile);
        let mut last_error = None;
        let mut failures = 0;
        // Refusals on a connection where we hold nothing else: the server
        // still counts a channel whose close it has not processed yet.
        let mut lonely_refusals = 0u32;
        let mut want_new = false;
        while failures < MAX_FAILURES {
            if let Some(lease) = slot.lease(open).filter(|_| !want_new) {
                let connection = &lease.connection;
                let opened = match open {
                    Open::Session => connection.handle.channel_open_session().await,
                    Open::Tcp { host, port, from } => {
                        let handle = &connection.handle;
                        let (origin, origin_port) = from;
                        match handle
                            .channel_open_direct_tcpip(
                                host,
                                port.into(),
                                origin,
                                origin_port.into(),
                            )
                            .await
                        {
                            // The server could not (or may not) connect
                            // there: no limit of ours, and no use retrying.
                            Err(russh::Error::ChannelOpenFailure(reason)) => {
                                return Err(SshError::TcpRefused {
                                    via: connection.addr.clone(),
                                    to: client::format_addr(host, port),
                                    reason: super::open_failure(&reason),
                                }
                                .into());
                            }
                            other => other,
                        }
                    }
                };
                if opened.is_err() {
                    // No channel, so no process: nothing to wait for.
                    lease.process_ended();
                }
                match opened {
                    Ok(channel) => {
                        let count = connection.opened_channels.fetch_add(1, Ordering::SeqCst) + 1;
                        if count >= CHANNELS_PER_CONNECTION {
                            tracing::debug!(profile = %target.profile, id = connection.id, "retiring a connection after {count} channels");
                            connection.retire();
                        }
                        return Ok((channel, lease));
                    }
                    Err(russh::Error::ChannelOpenFailure(_)) => {
                        // The server's session limit: this connection is full
                        // at what it has (not counting the refused one).
                        let has = connection.channels.load(Ordering::SeqCst).saturating_sub(1);
                        if has > 0 {
                            failures += 1;
                            connection.max_channels.store(has, Ordering::SeqCst);
                            tracing::debug!(profile = %target.profile, id = connection.id, limit = has, "server session limit");
                            continue;
                        }
                        // Nothing else of ours is on it (`MaxSessions 1`, and
                        // the previous channel's close still on its way):
                        // wait for the close a little, then try a connection
                        // of its own; a server that refuses even that takes
                        // no sessions at all.
                        lonely_refusals += 1;
                        if lonely_refusals > MAX_LONELY_REFUSALS {
                            return Err(SshError::Protocol {
                                addr: connection.addr.clone(),
                                message: "the server refused to open a session channel, even on \
                                          a connection with none open"
                                    .into(),
                            }
                            .into());
                        }
                        drop(lease);
                        if lonely_refusals % 4 == 0 {
                            want_new = true;
                        } else {
                            tokio::time::sleep(Duration::from_millis(10 << lonely_refusals)).await;
                        }
                        continue;
                    }
                    Err(error) => {
                        failures += 1;
                        tracing::info!(profile = %target.profile, id = connection.id, %error, "pooled connection is gone; replacing it");
                        connection.retired.store(true, Ordering::SeqCst);
                        last_error = Some(SshError::from_russh(&connection.addr, error));
                        continue;
                    }
                }
            }
            if want_new {
                // A connection of its own, whatever the others are doing.
                want_new = false;
                let connection = self.connect(target, witness).await?;
                slot.add(connection);
                continue;
            }
            // Registered before the count is read, so no wake-up is missed.
            let woken = slot.opened.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if slot.available(open) {
                // Room appeared meanwhile; take it.
                continue;
            }
            let turn = slot.turn(open);
            if turn.opens {
                let connected = self.connect(target, witness).await;
                if let Ok(connection) = &connected {
                    slot.add(connection.clone());
                }
                drop(turn);
                connected?;
            } else {
                woken.await;
            }
        }
        Err(last_error
            .unwrap_or_else(|| SshError::Protocol {
                addr: client::format_addr(&target.host, target.port),
                message: "no SSH channel after several attempts".into(),
            })
            .into())
    }

    async fn connect<W>(&self, target: &Target, witness: &W) -> Result<Arc<Connection>, W::Error>
    where
        W: Witness,
        W::Error: From<SshError>,
    {
        // Through the jump host's pooled connection, where there is one: a
        // jump logs in (on the record) before this profile's server is
        // even reached.
        let tunnel = match &target.jump {
            Some(jump) => {
                let (channel, lease) = Box::pin(self.open(
                    jump,
                    Open::Tcp {
                        host: &target.host,
                        port: target.port,
                        from: ("127.0.0.1", 0),
                    },
                    witness,
                ))
                .await?;
                Some(client::Tunnel {
                    stream: channel.into_stream(),
                    jump: jump.profile.clone(),
                    lease,
                })
            }
            None => None,
        };
        let id = self.next_id.fetch_add(1, Ordering::SeqCst) + 1;
        let connected = client::login(
            client::Account {
                profile: &target.profile,
                host: &target.host,
                port: target.port,
                user: &target.user,
                certificate: target.certificate.as_deref(),
            },
            Trust::Pinned(target.pins.clone()),
            &target.settings,
            Some(id),
            tunnel,
            witness,
        )
        .await?;
        self.opened.fetch_add(1, Ordering::SeqCst);
        tracing::info!(profile = %target.profile, id, remote = %connected.addr, "SSH connection opened");
        let banner = connected.banner();
        let exclusive = super::reply::closes_new_channels(&connected.server_id());
        if exclusive {
            tracing::info!(profile = %target.profile, id, "one session channel at a time: this Dropbear closes new channels when a process exits");
        }
        Ok(Arc::new(Connection {
            exclusive,
            banner,
            reply_wait: (target.settings.connect_timeout / 2).max(Duration::from_secs(1)),
            id,
            profile: target.profile.clone(),
            addr: connected.addr,
            handle: connected.handle,
            opened: Instant::now(),
            last_used: Mutex::new(Instant::now()),
            channels: AtomicUsize::new(0),
            max_channels: AtomicUsize::new(if exclusive { 1 } else { DEFAULT_MAX_CHANNELS }),
            opened_channels: AtomicUsize::new(0),
            retired: AtomicBool::new(false),
            stalled: AtomicUsize::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            _via: connected.via,
        }))
    }

    fn all_slots(&self) -> Vec<Arc<Slot>> {
        self.slots
            .lock()
            .map(|s| s.values().cloned().collect())
            .unwrap_or_default()
    }

    fn all(&self) -> Vec<Arc<Connection>> {
        let slots = self.all_slots();
        slots
            .iter()
            .flat_map(|slot| {
                slot.connections
                    .lock()
                    .map(|c| c.clone())
                    .unwrap_or_default()
            })
            .collect()
    }

    pub fn sessions(&self) -> Vec<SessionSnapshot> {
        let mut out: Vec<SessionSnapshot> = self
            .all()
            .into_iter()
            .filter(|c| c.usable())
            .map(|c| SessionSnapshot {
                id: c.id,
                profile: c.profile.clone(),
                remote: c.addr.clone(),
                age: c.opened.elapsed(),
                idle: if c.channels.load(Ordering::SeqCst) > 0 {
                    Duration::ZERO
                } else {
                    c.idle_for()
                },
                channels: c.channels.load(Ordering::SeqCst),
                stalled: c.stalled.load(Ordering::SeqCst),
                bytes_in: c.bytes_in.load(Ordering::Relaxed),
                bytes_out: c.bytes_out.load(Ordering::Relaxed),
            })
            .collect();
        out.sort_by(|a, b| a.profile.cmp(&b.profile).then(a.id.cmp(&b.id)));
        out
    }

    /// Keeps `sftp` for `profile`'s next file request, where its connection
    /// has room to spare; otherwise it ends here.
    pub fn park(&self, profile: &str, sftp: Sftp, lease: Lease) {
        // Its own channel is counted: room left means a slot besides it.
        // A connection of one channel at a time is the session's own.
        let connection = &lease.connection;
        let room = match connection.exclusive {
            true => connection.usable(),
            false => connection.has_room(),
        };
        if !room {
            return;
        }
        let slot = self.slot(profile);
        if let Ok(mut parked) = slot.parked.lock() {
            if parked.len() < MAX_PARKED {
                parked.push(Parked {
                    sftp,
                    lease,
                    since: Instant::now(),
                });
            }
        }
    }

    /// A kept SFTP session of `profile`'s, on a connection still usable.
    pub fn unpark(&self, profile: &str) -> Option<(Sftp, Lease)> {
        let slot = self.slot(profile);
        let mut parked = slot.parked.lock().ok()?;
        while let Some(kept) = parked.pop() {
            if kept.lease.connection.usable() && kept.since.elapsed() < PARKED_FOR {
                return Some((kept.sftp, kept.lease));
            }
        }
        None
    }

    /// Ends the kept SFTP sessions of `slot` (all, or those kept too long).
    fn unpark_all(slot: &Slot, expired_only: bool) {
        let ended: Vec<Parked> = match slot.parked.lock() {
            Ok(mut parked) if expired_only => {
                let (old, kept) = std::mem::take(&mut *parked)
                    .into_iter()
                    .partition(|p| p.since.elapsed() >= PARKED_FOR || !p.lease.connection.usable());
                *parked = kept;
                old
            }
            Ok(mut parked) => std::mem::take(&mut *parked),
            Err(_) => Vec::new(),
        };
        drop(ended);
    }

    /// Removes all of `profile`'s connections from the pool.
    fn take(&self, profile: &str) -> Vec<Arc<Connection>> {
        let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = slots.get(profile) {
            Self::unpark_all(slot, false);
        }
        slots
            .get(profile)
            .and_then(|slot| {
                slot.connections
                    .lock()
                    .ok()
                    .map(|mut c| std::mem::take(&mut *c))
            })
            .unwrap_or_default()
    }

    /// Closes every connection of `profile` now; running commands on them
    /// end with an error. Returns how many were closed.
    pub async fn close(&self, profile: &str) -> usize {
        let taken = self.take(profile);
        let count = taken.iter().filter(|c| c.usable()).count();
        for connection in taken {
            connection.retired.store(true, Ordering::SeqCst);
            connection.hang_up().await;
        }
        count
    }

    /// Stops new channels on `profile`'s connections (its settings or secret
    /// changed); each closes when its last channel ends.
    pub async fn retire(&self, profile: &str) {
        let connections = self.take(profile);
        for connection in connections {
            connection.retired.store(true, Ordering::SeqCst);
            if connection.channels.load(Ordering::SeqCst) == 0 {
                connection.hang_up().await;
            }
        }
    }

    /// Closes connections idle longer than `idle`, and forgets dead ones.
    pub async fn reap(&self, idle: Duration) {
        let mut expired = Vec::new();
        let slots = self.all_slots();
        for slot in slots {
            Self::unpark_all(&slot, true);
            if let Ok(mut connections) = slot.connections.lock() {
                connections.retain(|c| {
                    let idle_out = c.channels.load(Ordering::SeqCst) == 0 && c.idle_for() >= idle;
                    if idle_out {
                        expired.push(c.clone());
                    }
                    c.alive() && !idle_out
                });
            }
        }
        for connection in expired {
            tracing::info!(profile = %connection.profile, id = connection.id, "closing idle SSH connection");
            connection.retired.store(true, Ordering::SeqCst);
            connection.hang_up().await;
        }
    }

    /// Closes everything, for shutdown.
    pub async fn shutdown(&self) {
        let slots = self.all_slots();
        for slot in slots {
            Self::unpark_all(&slot, false);
        }
        for connection in self.all() {
            connection.retired.store(true, Ordering::SeqCst);
            connection.hang_up().await;
        }
    }
}
