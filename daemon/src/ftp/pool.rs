//! The FTP connection pool: logged-in control connections kept per
//! profile, like the SSH pool's connections.
//!
//! - FTP moves one transfer per control connection, so a caller leases a
//!   whole connection ([`Lease`]) and gives it back when done; concurrent
//!   work on one profile opens more, up to `ftp.max_connections`, and
//!   callers beyond that wait their turn.
//! - An idle connection is kept alive with `NOOP` every keepalive interval
//!   and closed after the idle timeout. One the server dropped (its own idle
//!   timeout) is found out when it is leased: a closed socket, or a reply
//!   nobody asked for (`421`), and it is replaced by a fresh login, so the
//!   caller never sees it.
//! - Changing or removing a profile retires its connections: idle ones
//!   close at once, busy ones when their lease ends.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tether_api::types::Protocol;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::FtpFailure;
use super::client::{self, Account, Control, Timeouts};
use super::tls::Trust;
use crate::remote::SessionSnapshot;
use crate::witness::Witness;

/// Where and how to connect, for one profile.
pub struct Target {
    pub profile: String,
    pub protocol: Protocol,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub trust: Trust,
    pub timeouts: Timeouts,
    pub keepalive: Duration,
    /// Connections per profile.
    pub max_connections: usize,
}

/// What `session list` shows of one connection.
pub struct Stats {
    pub id: u64,
    pub profile: String,
    pub addr: String,
    opened: Instant,
    last_used: Mutex<Instant>,
    busy: AtomicBool,
    closed: AtomicBool,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
}

impl Stats {
    fn idle_for(&self) -> Duration {
        self.last_used
            .lock()
            .map(|t| t.elapsed())
            .unwrap_or_default()
    }

    fn touch(&self) {
        if let Ok(mut last) = self.last_used.lock() {
            *last = Instant::now();
        }
    }
}

/// Marks a connection's numbers closed when the connection goes.
struct Open(Arc<Stats>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.closed.store(true, Ordering::SeqCst);
    }
}

/// A control connection and its numbers.
struct Pooled {
    control: Control,
    stats: Arc<Stats>,
    keepalive: Duration,
    last_noop: Instant,
    _open: Open,
}

impl Pooled {
    /// Closes the connection, politely where it can be, in the background.
    fn close(self) {
        let Pooled { control, _open, .. } = self;
        if control.is_broken() {
            return;
        }
        tokio::spawn(async move {
            control.quit().await;
            drop(_open);
        });
    }
}

/// One profile's connections.
struct Slot {
    idle: Mutex<Vec<Pooled>>,
    /// Every connection still open, busy or idle, for `session list`.
    live: Mutex<Vec<Arc<Stats>>>,
    permits: Arc<Semaphore>,
    /// Raised when the profile changes: leases from before do not return.
    generation: AtomicU64,
}

impl Slot {
    fn new(max: usize) -> Slot {
        Slot {
            idle: Mutex::new(Vec::new()),
            live: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(max.max(1))),
            generation: AtomicU64::new(0),
        }
    }

    fn take_idle(&self) -> Option<Pooled> {
        self.idle.lock().ok()?.pop()
    }

    fn take_all_idle(&self) -> Vec<Pooled> {
        self.idle
            .lock()
            .map(|mut idle| std::mem::take(&mut *idle))
            .unwrap_or_default()
    }

    fn live(&self) -> Vec<Arc<Stats>> {
        let Ok(mut live) = self.live.lock() else {
            return Vec::new();
        };
        live.retain(|stats| !stats.closed.load(Ordering::SeqCst));
        live.clone()
    }
}

/// A control connection lent to one caller; dropping it gives it back.
pub struct Lease {
    pooled: Option<Pooled>,
    slot: Arc<Slot>,
    generation: u64,
    _permit: OwnedSemaphorePermit,
}

impl Lease {
    pub fn control(&mut self) -> &mut Control {
        let pooled = self
            .pooled
            .as_mut()
            .unwrap_or_else(|| unreachable!("a lease holds its connection until it drops"));
        &mut pooled.control
    }

    /// Counts bytes moved on this connection (for `session list`).
    pub fn count(&self, received: u64, sent: u64) {
        if let Some(pooled) = &self.pooled {
            pooled.stats.bytes_in.fetch_add(received, Ordering::Relaxed);
            pooled.stats.bytes_out.fetch_add(sent, Ordering::Relaxed);
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(mut pooled) = self.pooled.take() else {
            return;
        };
        pooled.stats.touch();
        pooled.stats.busy.store(false, Ordering::SeqCst);
        pooled.last_noop = Instant::now();
        let current = self.slot.generation.load(Ordering::SeqCst) == self.generation;
        if current && !pooled.control.is_broken() {
            if let Ok(mut idle) = self.slot.idle.lock() {
                idle.push(pooled);
                return;
            }
        }
        pooled.close();
    }
}

pub struct Pool {
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    /// Shared with the SSH pool, so `session list` numbers are unique.
    ids: Arc<AtomicU64>,
    /// Counts FTP logins ever made (for tests and status).
    pub opened: AtomicU64,
}

impl Pool {
    pub fn new(ids: Arc<AtomicU64>) -> Pool {
        Pool {
            slots: Mutex::default(),
            ids,
            opened: AtomicU64::new(0),
        }
    }

    fn slot(&self, profile: &str, max: usize) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots
            .entry(profile.to_owned())
            .or_insert_with(|| Arc::new(Slot::new(max)))
            .clone()
    }

    fn existing_slots(&self) -> Vec<(String, Arc<Slot>)> {
        self.slots
            .lock()
            .map(|slots| slots.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    /// A logged-in control connection for `target`: an idle one that is
    /// still alive, or a new login (`witness` hands over the password once
    /// the server is proved). Waits while the profile's connections are
    /// all busy.
    pub async fn lease<W>(&self, target: &Target, witness: &W) -> Result<Lease, W::Error>
    where
        W: Witness,
        W::Error: From<FtpFailure>,
    {
        let slot = self.slot(&target.profile, target.max_connections);
        let permit = slot.permits.clone().acquire_owned().await.map_err(|_| {
            W::Error::from(FtpFailure::Protocol {
                addr: tether_api::types::host_and_port(&target.host, target.port),
                message: "the daemon is shutting down".into(),
            })
        })?;
        let generation = slot.generation.load(Ordering::SeqCst);
        while let Some(mut pooled) = slot.take_idle() {
            if pooled.control.still_there().await {
                pooled.stats.busy.store(true, Ordering::SeqCst);
                return Ok(Lease {
                    pooled: Some(pooled),
                    slot,
                    generation,
                    _permit: permit,
                });
            }
            tracing::info!(profile = %target.profile, id = pooled.stats.id, "idle FTP connection is gone; logging in again");
            drop(pooled);
        }
        let id = self.ids.fetch_add(1, Ordering::SeqCst) + 1;
        let account = Account {
            protocol: target.protocol,
            profile: &target.profile,
            host: &target.host,
            port: target.port,
            user: &target.user,
        };
        let control =
            client::login(account, &target.trust, target.timeouts, Some(id), witness).await?;
        self.opened.fetch_add(1, Ordering::SeqCst);
        tracing::info!(profile = %target.profile, id, remote = %control.addr, "FTP connection opened");
        let stats = Arc::new(Stats {
            id,
            profile: target.profile.clone(),
            addr: control.addr.clone(),
            opened: Instant::now(),
            last_used: Mutex::new(Instant::now()),
            busy: AtomicBool::new(true),
            closed: AtomicBool::new(false),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
        });
        if let Ok(mut live) = slot.live.lock() {
            live.push(stats.clone());
        }
        Ok(Lease {
            pooled: Some(Pooled {
                control,
                stats: stats.clone(),
                keepalive: target.keepalive,
                last_noop: Instant::now(),
                _open: Open(stats),
            }),
            slot,
            generation,
            _permit: permit,
        })
    }

    pub fn sessions(&self) -> Vec<SessionSnapshot> {
        self.existing_slots()
            .into_iter()
            .flat_map(|(_, slot)| slot.live())
            .map(|stats| {
                let busy = stats.busy.load(Ordering::SeqCst);
                SessionSnapshot {
                    id: stats.id,
                    profile: stats.profile.clone(),
                    remote: stats.addr.clone(),
                    age: stats.opened.elapsed(),
                    idle: if busy {
                        Duration::ZERO
                    } else {
                        stats.idle_for()
                    },
                    channels: usize::from(busy),
                    stalled: 0,
                    bytes_in: stats.bytes_in.load(Ordering::Relaxed),
                    bytes_out: stats.bytes_out.load(Ordering::Relaxed),
                }
            })
            .collect()
    }

    /// Stops `profile`'s connections from being reused: idle ones close
    /// now, busy ones when their lease ends. Returns how many were open.
    pub fn retire(&self, profile: &str) -> usize {
        let slot = self
            .slots
            .lock()
            .ok()
            .and_then(|slots| slots.get(profile).cloned());
        let Some(slot) = slot else {
            return 0;
        };
        slot.generation.fetch_add(1, Ordering::SeqCst);
        let open = slot.live().len();
        for pooled in slot.take_all_idle() {
            pooled.close();
        }
        open
    }

    /// Sends `NOOP` on idle connections due a keepalive, closes those idle
    /// longer than `idle_timeout`, and forgets dead ones.
    pub async fn maintain(&self, idle_timeout: Duration) {
        for (profile, slot) in self.existing_slots() {
            let mut kept = Vec::new();
            for mut pooled in slot.take_all_idle() {
                if pooled.stats.idle_for() >= idle_timeout {
                    tracing::info!(%profile, id = pooled.stats.id, "closing idle FTP connection");
                    pooled.close();
                    continue;
                }
                if pooled.last_noop.elapsed() >= pooled.keepalive {
                    if !pooled.control.alive().await {
                        tracing::info!(%profile, id = pooled.stats.id, "idle FTP connection is gone");
                        continue;
                    }
                    pooled.last_noop = Instant::now();
                }
                kept.push(pooled);
            }
            if let Ok(mut idle) = slot.idle.lock() {
                idle.extend(kept);
            }
        }
    }

    /// Closes everything, for shutdown.
    pub fn shutdown(&self) {
        for (profile, _) in self.existing_slots() {
            self.retire(&profile);
        }
    }
}
