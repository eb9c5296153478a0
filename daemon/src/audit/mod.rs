//! The audit trail: append, hash chain, query, verify, retention.
//!
//! Events live in the store's `audit` table under their sequence number,
//! as JSON. Each carries `prev`, the previous event's `mac`,
//! and its own `mac`: HMAC-SHA256 over the event's JSON with `mac` empty,
//! keyed by a key derived from the master key. The head (next sequence
//! number, last mac) is kept in `meta` with an HMAC and written with each
//! event, so events cut from the end are found too ([`Audit::verify`]). Retention removes the oldest events after writing an
//! `audit.prune` event that names the last removed event and its mac (the
//! anchor the first remaining event links to).
//!
//! Appends are serialized and flushed before they return: an operation
//! whose event cannot be written is refused ([`Error::AuditUnavailable`]).
//! Each event also goes to the log as one JSON line (target `audit`).
//! Events never hold a secret or a byte of a session's input or output.

use std::collections::BTreeMap;
use std::time::SystemTime;

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use tether_api::audit::AuditEvent;
use zeroize::Zeroizing;

use crate::access::Caller;
use crate::config::AuditSettings;
use crate::error::Error;
use crate::store::audit::AuditHead;
use crate::store::envelope::hex;
use crate::store::{Store, StoreError};

pub mod refusals;
mod verify;

pub const PRUNE: &str = "audit.prune";
/// Earlier prune ranges a prune event carries forward, at most.
const MAX_PRUNE_HISTORY: usize = 256;
/// Recorded at start when the head failed its check or was missing beside
/// a trail: the trail goes on from its own end, and `verify` fails there,
/// because events may have been cut off the end with the head.
pub const HEAD_REPLACED: &str = "audit.head_replaced";

pub struct Audit {
    /// The state directory, whose free space [`Audit::record_spare`] checks.
    state_dir: std::path::PathBuf,
    /// Spare events left out: the disk was below the reserve, or the trail
    /// was not open yet (a passphrase daemon before `tether unseal`).
    spared: std::sync::atomic::AtomicU64,
    /// The trail's keys, once the store has been unlocked.
    keys: std::sync::OnceLock<TrailKeys>,
    head: tokio::sync::Mutex<AuditHead>,
    /// Events waiting for the next commit: whoever takes the head next
    /// writes them all in one transaction (a group commit), and each waiter
    /// learns its own event's fate.
    waiting: std::sync::Mutex<Vec<Waiting>>,
    settings: AuditSettings,
}

/// An event queued by [`Audit::record_later`], on disk once this resolves.
pub struct Later(tokio::sync::oneshot::Receiver<Result<u64, Error>>);

impl Later {
    /// One that will never be written, for `error`.
    pub fn failed(error: Error) -> Later {
        let (written, fate) = tokio::sync::oneshot::channel();
        let _ = written.send(Err(error));
        Later(fate)
    }

    /// Its number on the trail, once it is on disk.
    pub async fn written(self) -> Result<u64, Error> {
        self.0
            .await
            .unwrap_or_else(|_| Err(Error::Internal("an audit write was lost".into())))
    }
}

/// An event waiting for its commit.
struct Waiting {
    event: AuditEvent,
    written: tokio::sync::oneshot::Sender<Result<u64, Error>>,
}

struct TrailKeys {
    chain: Zeroizing<[u8; 32]>,
    values: Zeroizing<[u8; 32]>,
}

/// What a caller hears when its event could not be written: a damaged
/// store refuses for that reason, not the trail's.
fn write_failure(error: &StoreError, op: &str) -> Error {
    if let StoreError::Damaged(summary) = error {
        return Error::Store(StoreError::Damaged(summary.clone()));
    }
    tracing::error!(%error, op, "audit event could not be written; refusing");
    Error::AuditUnavailable(error.to_string())
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn mac_of(key: &[u8; 32], event: &AuditEvent) -> String {
    let mut unsigned = event.clone();
    unsigned.mac = String::new();
    let bytes = serde_json::to_vec(&unsigned).unwrap_or_default();
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(&bytes);
    hex(&mac.finalize().into_bytes())
}

/// Where the trail ends, read from its last event (no mac: it is not a
/// stored head).
fn head_from_trail(store: &Store) -> Result<AuditHead, StoreError> {
    let mut head = AuditHead::default();
    store.audit_scan(0, true, |_, value| {
        if let Ok(event) = serde_json::from_slice::<AuditEvent>(value) {
            head = AuditHead {
                next_seq: event.seq + 1,
                last_mac: event.mac,
                mac: String::new(),
            };
        }
        false
    })?;
    Ok(head)
}

fn head_mac(key: &[u8; 32], head: &AuditHead) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(b"audit-head/");
    mac.update(&head.next_seq.to_be_bytes());
    mac.update(head.last_mac.as_bytes());
    hex(&mac.finalize().into_bytes())
}

/// An event being built: who, what, on which profile.
#[derive(Clone)]
pub struct Event(AuditEvent);

impl Event {
    pub fn new(caller: &Caller, op: &str) -> Event {
        Event(AuditEvent {
            seq: 0,
            time_ms: 0,
            uid: caller.uid,
            pid: caller.pid,
            exe: caller.exe.clone(),
            op: op.to_owned(),
            profile: None,
            result: "started".into(),
            details: BTreeMap::new(),
            prev: String::new(),
            mac: String::new(),
        })
    }

    /// An event of the daemon's own (connections, retention).
    pub fn daemon(uid: u32, op: &str) -> Event {
        Event(AuditEvent {
            seq: 0,
            time_ms: 0,
            uid,
            pid: Some(std::process::id() as i32),
            exe: None,
            op: op.to_owned(),
            profile: None,
            result: "ok".into(),
            details: BTreeMap::new(),
            prev: String::new(),
            mac: String::new(),
        })
    }

    pub fn profile(mut self, profile: &str) -> Event {
        self.0.profile = Some(profile.to_owned());
        self
    }

    pub fn detail(mut self, key: &str, value: impl Into<Value>) -> Event {
        self.0.details.insert(key.to_owned(), value.into());
        self
    }

    pub fn result(mut self, result: impl Into<String>) -> Event {
        self.0.result = result.into();
        self
    }

    /// The same event's end: `OP.end`, with the given result.
    pub fn end(&self, result: impl Into<String>) -> Event {
        let mut end = Event(self.0.clone());
        end.0.op = format!("{}.end", self.0.op);
        end.0.result = result.into();
        end
    }
}

/// Filters of a query.
#[derive(Debug, Default, Clone)]
pub struct Query {
    pub since_ms: Option<u64>,
    pub until_ms: Option<u64>,
    pub uid: Option<u32>,
    pub profile: Option<String>,
    pub op: Option<String>,
    pub after: Option<u64>,
    pub limit: usize,
}

impl Audit {
    /// A trail, closed until [`Audit::unlock`].
    pub fn new(state_dir: &std::path::Path, settings: &AuditSettings) -> Audit {
        Audit {
            state_dir: state_dir.to_owned(),
            spared: std::sync::atomic::AtomicU64::new(0),
            keys: std::sync::OnceLock::new(),
            head: tokio::sync::Mutex::new(AuditHead::default()),
            waiting: std::sync::Mutex::new(Vec::new()),
            settings: settings.clone(),
        }
    }

    /// Opens the trail once the store has its keys: its head is read and
    /// checked. Why the head was rebuilt from the trail, if it was (see
    /// [`HEAD_REPLACED`]): the caller puts that on record.
    pub async fn unlock(&self, store: &Store) -> Result<Option<&'static str>, StoreError> {
        let keys = store.keys()?;
        let keys = self.keys.get_or_init(|| TrailKeys {
            chain: Zeroizing::new(keys.audit_chain),
            values: Zeroizing::new(keys.audit_values),
        });
        let key = &keys.chain;
        // A damaged store serves nothing, the trail included: the daemon
        // runs to say so, and writes nothing.
        let damaged = store.damage().is_some();
        let stored: Option<AuditHead> = match damaged {
            true => None,
            false => store
                .audit_head_raw()?
                .and_then(|bytes| serde_json::from_slice(&bytes).ok()),
        };
        let trail_empty = damaged || store.audit_len() == 0;
        let (head, head_replaced) = match stored {
            Some(head) if head.mac == head_mac(key, &head) => (head, None),
            // A fresh trail has no head yet.
            None if trail_empty => (AuditHead::default(), None),
            // An edited or lost head is not trusted: the trail itself says
            // where to continue, and the next event says what happened.
            stored => {
                let why = if stored.is_some() {
                    "head_invalid"
                } else {
                    "head_missing"
                };
                tracing::error!(
                    why,
                    "the audit head fails its check; the trail goes on from its own end, and \
                     `tether audit verify` will fail at the event that records this"
                );
                (head_from_trail(store)?, Some(why))
            }
        };
        *self.head.lock().await = head;
        Ok(head_replaced)
    }

    /// Whether events can be written (the trail is open).
    pub fn is_open(&self) -> bool {
        self.keys.get().is_some()
    }

    /// The HMAC that stands in the trail for a sensitive value.
    pub fn value_mac(&self, value: &str) -> String {
        let Some(keys) = self.keys.get() else {
            return String::new();
        };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(keys.values.as_ref()) else {
            return String::new();
        };
        mac.update(value.as_bytes());
        format!("hmac-sha256:{}", hex(&mac.finalize().into_bytes()))
    }

    /// Appends `event`, durably; an error means it is not on record.
    /// Events recorded at the same time are committed together: one
    /// transaction and one flush to disk for all of them, each still on
    /// disk before its caller goes on.
    pub async fn record(&self, store: &Store, event: Event) -> Result<u64, Error> {
        let keys = self.keys.get().ok_or(Error::Store(StoreError::Sealed))?;
        let Later(mut fate) = self.queue(event);
        let mut head = self.head.lock().await;
        if let Ok(done) = fate.try_recv() {
            // The writer before us took ours along.
            return done;
        }
        let batch = std::mem::take(&mut *self.waiting.lock().unwrap_or_else(|e| e.into_inner()));
        self.commit_batch(store, keys, &mut head, batch).await;
        drop(head);
        Later(fate).written().await
    }

    /// Puts `event` in the queue of the next commit.
    fn queue(&self, event: Event) -> Later {
        let (written, fate) = tokio::sync::oneshot::channel();
        self.waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Waiting {
                event: event.0,
                written,
            });
        Later(fate)
    }

    /// Queues `event` for the next commit without making one: for the
    /// many records of one batch of files, each written with others by a
    /// later [`Audit::record`] or [`Audit::flush`]. What comes back says
    /// when it is on disk; a caller must wait for that before it reports
    /// success.
    pub fn record_later(&self, event: Event) -> Result<Later, Error> {
        self.keys.get().ok_or(Error::Store(StoreError::Sealed))?;
        Ok(self.queue(event))
    }

    /// Commits the events queued by [`Audit::record_later`] (and any other
    /// waiting), in one transaction.
    pub async fn flush(&self, store: &Store) {
        let Some(keys) = self.keys.get() else {
            return;
        };
        let mut head = self.head.lock().await;
        let batch = std::mem::take(&mut *self.waiting.lock().unwrap_or_else(|e| e.into_inner()));
        if !batch.is_empty() {
            self.commit_batch(store, keys, &mut head, batch).await;
        }
    }

    /// Chains and writes `batch` in one transaction, and tells each waiter.
    async fn commit_batch(
        &self,
        store: &Store,
        keys: &TrailKeys,
        head: &mut AuditHead,
        batch: Vec<Waiting>,
    ) {
        let mut next = head.clone();
        let mut rows = Vec::with_capacity(batch.len());
        // Each event's number and op, and who waits for it.
        let mut waiters = Vec::with_capacity(batch.len());
        for Waiting { mut event, written } in batch {
            event.seq = next.next_seq;
            event.time_ms = now_ms();
            event.prev = next.last_mac.clone();
            event.mac = mac_of(&keys.chain, &event);
            match serde_json::to_vec(&event) {
                Ok(bytes) => {
                    next.next_seq = event.seq + 1;
                    next.last_mac = event.mac.clone();
                    rows.push((event.seq, bytes));
                    waiters.push((event.seq, event.op, written));
                }
                Err(error) => {
                    let _ = written.send(Err(Error::Internal(error.to_string())));
                }
            }
        }
        if rows.is_empty() {
            return;
        }
        next.mac = head_mac(&keys.chain, &next);
        let head_bytes = match serde_json::to_vec(&next) {
            Ok(bytes) => bytes,
            Err(error) => {
                for (_, _, written) in waiters {
                    let _ = written.send(Err(Error::Internal(error.to_string())));
                }
                return;
            }
        };
        match store.append_audit_events(&rows, &head_bytes).await {
            Ok(()) => {
                *head = next;
                for ((seq, _, written), (_, bytes)) in waiters.into_iter().zip(&rows) {
                    tracing::info!(target: "audit", "{}", String::from_utf8_lossy(bytes));
                    let _ = written.send(Ok(seq));
                }
            }
            Err(error) => {
                for (_, op, written) in waiters {
                    let _ = written.send(Err(write_failure(&error, &op)));
                }
            }
        }
    }

    /// Appends `event` (a prune's own record) and removes the events up to
    /// `prune_through` in the same transaction.
    async fn append_pruning(
        &self,
        store: &Store,
        event: Event,
        prune_through: u64,
    ) -> Result<u64, Error> {
        let mut event = event.0;
        // Not open yet: the store is locked, and says so.
        let keys = self.keys.get().ok_or(Error::Store(StoreError::Sealed))?;
        let mut head = self.head.lock().await;
        event.seq = head.next_seq;
        event.time_ms = now_ms();
        event.prev = head.last_mac.clone();
        event.mac = mac_of(&keys.chain, &event);
        let bytes = serde_json::to_vec(&event).map_err(|e| Error::Internal(e.to_string()))?;
        let mut next = AuditHead {
            next_seq: event.seq + 1,
            last_mac: event.mac.clone(),
            mac: String::new(),
        };
        next.mac = head_mac(&keys.chain, &next);
        let head_bytes = serde_json::to_vec(&next).map_err(|e| Error::Internal(e.to_string()))?;
        let written = store
            .prune_audit(event.seq, &bytes, &head_bytes, prune_through)
            .await;
        if let Err(error) = written {
            return Err(write_failure(&error, &event.op));
        }
        *head = next;
        drop(head);
        tracing::info!(target: "audit", "{}", String::from_utf8_lossy(&bytes));
        Ok(event.seq)
    }

    /// Records an event that may be left out to keep the disk's reserve
    /// (`audit.reserve_mb`) for events of credential use: refusals. What is
    /// left out is counted, logged, and named by the next spare event that
    /// is written.
    pub async fn record_spare(&self, store: &Store, event: Event) {
        use std::sync::atomic::Ordering;
        if !self.is_open() {
            // Written as a count when the trail opens (`record_spared`).
            self.spared.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if self.below_reserve() {
            let spared = self.spared.fetch_add(1, Ordering::Relaxed) + 1;
            if spared.is_power_of_two() {
                tracing::warn!(
                    spared,
                    "the disk is below the audit reserve: refusals are counted, not written"
                );
            }
            return;
        }
        let spared = self.spared.swap(0, Ordering::Relaxed);
        let event = if spared > 0 {
            event.detail("spared_before", spared)
        } else {
            event
        };
        self.record_after(store, event).await;
    }

    /// At shutdown: puts on record how many spare events the reserve left
    /// out since the last one was written.
    pub async fn record_spared(&self, store: &Store, daemon_uid: u32) {
        let spared = self.spared.swap(0, std::sync::atomic::Ordering::Relaxed);
        if spared > 0 {
            let event = Event::daemon(daemon_uid, "audit.spared").detail("count", spared);
            self.record_after(store, event).await;
        }
    }

    /// Whether the state directory's file system has less free space than
    /// the reserve kept for events of credential use.
    fn below_reserve(&self) -> bool {
        let reserve = self.settings.reserve_mb.saturating_mul(1 << 20);
        if reserve == 0 {
            return false;
        }
        match rustix::fs::statvfs(&self.state_dir) {
            Ok(stat) => stat.f_bavail.saturating_mul(stat.f_frsize) < reserve,
            Err(_) => false,
        }
    }

    /// Records and ignores a failure (it is logged): for the end of an
    /// operation that has already happened.
    pub async fn record_after(&self, store: &Store, event: Event) {
        let _ = self.record(store, event).await;
    }

    pub fn query(
        &self,
        store: &Store,
        query: &Query,
        mut visible: impl FnMut(&AuditEvent) -> bool,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let mut keep = |event: &AuditEvent| {
            query.since_ms.is_none_or(|t| event.time_ms >= t)
                && query.until_ms.is_none_or(|t| event.time_ms <= t)
                && query.uid.is_none_or(|u| event.uid == u)
                && query
                    .profile
                    .as_ref()
                    .is_none_or(|p| event.profile.as_ref() == Some(p))
                && query
                    .op
                    .as_ref()
                    .is_none_or(|op| event.op.starts_with(op.as_str()))
                && visible(event)
        };
        let mut out = Vec::new();
        let mut take = |value: &[u8]| {
            if let Ok(event) = serde_json::from_slice::<AuditEvent>(value) {
                if keep(&event) {
                    out.push(event);
                }
            }
            out.len() < query.limit
        };
        match query.after {
            // Following: the first matches after `after`, oldest first.
            Some(after) => store.audit_scan(after.saturating_add(1), false, |_, v| take(v))?,
            // Otherwise the latest matches, oldest first.
            None => {
                store.audit_scan(0, true, |_, v| take(v))?;
                out.reverse();
            }
        }
        Ok(out)
    }

    /// Removes events older than `max_age_days` or beyond `max_events`,
    /// after recording what is removed: the prune event names the range, the
    /// reason and the anchor the first remaining event links to, and carries
    /// forward the ranges that earlier (now removed) prune events recorded,
    /// so `verify` can always say what retention took and when.
    pub async fn prune(&self, store: &Store, daemon_uid: u32) -> Result<u64, Error> {
        if store.damage().is_some() {
            return Ok(0);
        }
        let max_age_ms = self.settings.max_age_days.saturating_mul(86_400_000);
        let cutoff = (max_age_ms > 0).then(|| now_ms().saturating_sub(max_age_ms));
        let len = store.audit_len();
        let over = match self.settings.max_events {
            0 => 0,
            max => len.saturating_sub(max),
        };
        let mut through: Option<(u64, String)> = None;
        let mut from_seq = None;
        let mut removed = 0u64;
        let (mut by_age, mut by_count) = (false, false);
        let mut history: Vec<tether_api::audit::Pruned> = Vec::new();
        store.audit_scan(0, false, |_, value| {
            let Ok(event) = serde_json::from_slice::<AuditEvent>(value) else {
                return false;
            };
            let old = cutoff.is_some_and(|c| event.time_ms < c);
            if removed < over || old {
                by_count |= removed < over;
                by_age |= old && removed >= over;
                if event.op == PRUNE {
                    history.extend(verify::ranges_of(&event));
                }
                from_seq.get_or_insert(event.seq);
                through = Some((event.seq, event.mac));
                removed += 1;
                true
            } else {
                false
            }
        })?;
        let (Some((through_seq, anchor)), Some(from_seq)) = (through, from_seq) else {
            return Ok(0);
        };
        let reason = match (by_count, by_age) {
            (true, true) => "max_events, max_age_days",
            (true, false) => "max_events",
            _ => "max_age_days",
        };
        if history.len() > MAX_PRUNE_HISTORY {
            history.drain(..history.len() - MAX_PRUNE_HISTORY);
        }
        let event = Event::daemon(daemon_uid, PRUNE)
            .detail("from_seq", from_seq)
            .detail("through_seq", through_seq)
            .detail("anchor", anchor)
            .detail("removed", removed)
            .detail("reason", reason)
            .detail(
                "history",
                serde_json::to_value(&history).unwrap_or_default(),
            );
        // The prune's own event and the removal in one transaction.
        self.append_pruning(store, event, through_seq).await?;
        tracing::info!(removed, through_seq, "audit events pruned");
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn events_recorded_together_are_committed_together_and_chained() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(Store::open(dir.path()).unwrap());
        let audit = std::sync::Arc::new(Audit::new(dir.path(), &AuditSettings::default()));
        audit.unlock(&store).await.unwrap();
        let before = store.generation();
        let tasks: Vec<_> = (0..64)
            .map(|n| {
                let (store, audit) = (store.clone(), audit.clone());
                tokio::spawn(async move {
                    let event = Event::daemon(0, "test.event").detail("n", n);
                    audit.record(&store, event).await.unwrap()
                })
            })
            .collect();
        let mut seqs = Vec::new();
        for task in tasks {
            seqs.push(task.await.unwrap());
        }
        seqs.sort_unstable();
        let first = seqs[0];
        assert_eq!(
            seqs,
            (first..first + 64).collect::<Vec<_>>(),
            "one number each, none lost"
        );
        let commits = store.generation() - before;
        assert!(
            commits < 64,
            "{commits} commits for 64 events recorded at once"
        );
        let verified = audit.verify(&store).await.unwrap();
        assert!(verified.ok, "{verified:?}");
    }

    #[tokio::test]
    async fn events_recorded_later_wait_for_a_commit_and_are_chained() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let audit = Audit::new(dir.path(), &AuditSettings::default());
        audit.unlock(&store).await.unwrap();
        let before = store.generation();
        let later: Vec<Later> = (0..10)
            .map(|n| {
                let event = Event::daemon(0, "test.later").detail("n", n);
                audit.record_later(event).unwrap()
            })
            .collect();
        assert_eq!(store.generation(), before, "queued, not written");
        // The next event recorded takes the queue along, in one commit.
        let own = audit
            .record(&store, Event::daemon(0, "test.now"))
            .await
            .unwrap();
        assert_eq!(store.generation(), before + 1);
        let mut seqs = Vec::new();
        for later in later {
            seqs.push(later.written().await.unwrap());
        }
        seqs.push(own);
        seqs.sort_unstable();
        assert_eq!(seqs, (seqs[0]..seqs[0] + 11).collect::<Vec<_>>());
        // A flush writes what waits, and nothing when nothing does.
        let last = audit.record_later(Event::daemon(0, "test.later")).unwrap();
        audit.flush(&store).await;
        assert_eq!(last.written().await.unwrap(), seqs[10] + 1);
        audit.flush(&store).await;
        assert_eq!(store.generation(), before + 2);
        let verified = audit.verify(&store).await.unwrap();
        assert!(verified.ok, "{verified:?}");
    }

    /// A number in an event's details reads back as the same number: the
    /// chain's mac is computed over the event as it is written again, so a
    /// float that parsed one unit off would make verification call an
    /// untouched event altered.
    #[tokio::test]
    async fn a_number_in_the_details_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let audit = Audit::new(dir.path(), &AuditSettings::default());
        audit.unlock(&store).await.unwrap();
        let event = Event::daemon(0, "test.number").detail("n", 1.0715660391465826e-75_f64);
        audit.record(&store, event).await.unwrap();
        let verified = audit.verify(&store).await.unwrap();
        assert!(verified.ok, "{verified:?}");
    }
}
