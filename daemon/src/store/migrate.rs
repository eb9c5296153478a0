//! The one-way move from the sled store of earlier tetherds (`db/` in the
//! state directory, format 1) to the redb file.
//!
//! Records are copied byte for byte: each is sealed with its table, key and
//! field as associated data, all of which stay the same. The audit trail's
//! keys, which format 1 derived from the master key, are kept as they were,
//! so its chain still verifies; the integrity key is new. Everything goes in
//! one transaction, checked record for record against the old store before
//! the old store is removed. A crash before the commit leaves the old store
//! to migrate again; after it, the old store is only removed.

use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};

use super::db::{self, Tx};
use super::envelope::MasterKey;
use super::integrity::{Manifest, StoreKeys};
use super::open::{commit_described, first_records};
use super::{META, RECORD_TABLES, StoreError};

/// The sled store's directory in the state directory.
const LEGACY: &str = "db";

/// The old store, if there is one.
pub fn legacy_dir(state_dir: &Path) -> Option<PathBuf> {
    let dir = state_dir.join(LEGACY);
    (dir.is_dir() && dir.join("conf").exists()).then_some(dir)
}

pub fn remove_legacy(dir: &Path) {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => tracing::info!(dir = %dir.display(), "removed the migrated sled store"),
        Err(error) => {
            tracing::warn!(dir = %dir.display(), %error, "cannot remove the migrated sled store")
        }
    }
}

/// The keys format 1 derived from the master key.
fn derived(key: &MasterKey, label: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    if let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(key.bytes()) {
        mac.update(b"tether/v1/derive/");
        mac.update(label.as_bytes());
        out.copy_from_slice(&mac.finalize().into_bytes());
    }
    out
}

fn sled_error(dir: &Path) -> impl Fn(sled::Error) -> StoreError + '_ {
    move |error| match error {
        sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => {
            StoreError::Locked(dir.parent().unwrap_or(dir).to_owned())
        }
        other => StoreError::Db(format!("the sled store in {}: {other}", dir.display())),
    }
}

/// Copies the sled store in `dir` into `db`, in one transaction.
pub fn from_sled(
    dir: &Path,
    db: &redb::Database,
    state_dir: &Path,
    key: &MasterKey,
) -> Result<(), StoreError> {
    let failed = sled_error(dir);
    let old = sled::Config::new().path(dir).open().map_err(&failed)?;
    let meta = old.open_tree(META).map_err(&failed)?;
    if let Some(format) = meta.get("format").map_err(&failed)? {
        if format.as_ref() != b"1" {
            return Err(StoreError::Format(
                String::from_utf8_lossy(&format).into_owned(),
            ));
        }
    }
    let keys = StoreKeys {
        integrity: {
            let mut k = [0u8; 32];
            getrandom::fill(&mut k)
                .map_err(|e| StoreError::Key(format!("cannot generate a key: {e}")))?;
            k
        },
        audit_chain: derived(key, "audit-chain"),
        audit_values: derived(key, "audit-values"),
    };
    let mut tx = Tx::begin(db, Manifest::default())?;
    let mut copied = 0usize;
    for &table in &RECORD_TABLES {
        for entry in old.open_tree(table).map_err(&failed)?.iter() {
            let (name, value) = entry.map_err(&failed)?;
            let name = String::from_utf8(name.to_vec())
                .map_err(|_| StoreError::Db(format!("a {table} key is not text")))?;
            tx.put(table, &name, &value)?;
            copied += 1;
        }
    }
    let mut events = 0u64;
    for entry in old.open_tree("audit").map_err(&failed)?.iter() {
        let (seq, event) = entry.map_err(&failed)?;
        let seq: [u8; 8] = seq
            .as_ref()
            .try_into()
            .map_err(|_| StoreError::Db("an audit key is not a sequence number".into()))?;
        tx.append_audit(u64::from_be_bytes(seq), &event)?;
        events += 1;
    }
    if let Some(head) = meta.get("audit_head").map_err(&failed)? {
        tx.put_meta("audit_head", &head)?;
    }
    first_records(&mut tx, key, &keys)?;
    let manifest = commit_described(db, state_dir, tx, &keys, 1)?;
    let listed: usize = manifest.tables.values().map(|keys| keys.len()).sum();
    if listed != copied || manifest.audit_count != events {
        return Err(StoreError::Damaged(format!(
            "the migration copied {listed} of {copied} records and {} of {events} events",
            manifest.audit_count
        )));
    }
    // The copies are byte for byte: the same bytes under the same names.
    for &table in &RECORD_TABLES {
        for entry in old.open_tree(table).map_err(&failed)?.iter() {
            let (name, value) = entry.map_err(&failed)?;
            let name = String::from_utf8_lossy(&name);
            if db::get(db, table, &name)?.as_deref() != Some(value.as_ref()) {
                return Err(StoreError::Damaged(format!(
                    "the migrated record {table}/{name} differs from the old one"
                )));
            }
        }
    }
    drop(old);
    tracing::info!(records = copied, events, "migrated the sled store to redb");
    Ok(())
}
