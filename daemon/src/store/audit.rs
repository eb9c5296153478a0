//! The audit trail's storage: events by sequence number in the `audit`
//! table, the head in `meta`, both written in one transaction (the trail
//! itself, its chain and its queries are `crate::audit`'s).

use serde::{Deserialize, Serialize};

use super::{Store, StoreError};

/// The audit trail's last event, kept in `meta` with an HMAC of the trail's
/// key, so that events removed from the end of the trail are noticed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditHead {
    pub next_seq: u64,
    pub last_mac: String,
    #[serde(default)]
    pub mac: String,
}

impl Store {
    /// The audit head as the trail wrote it (the trail authenticates it with
    /// its own key, so that a sealed daemon can still write its trail).
    pub fn audit_head_raw(&self) -> Result<Option<Vec<u8>>, StoreError> {
        self.get_raw(super::META, "audit_head")
    }

    /// Appends an audit event and moves the head past it, in one
    /// transaction (a crash between the two would look like tampering).
    pub async fn append_audit_events(
        &self,
        events: &[(u64, Vec<u8>)],
        head: &[u8],
    ) -> Result<(), StoreError> {
        self.write(|tx, _| {
            for (seq, event) in events {
                tx.append_audit(*seq, event)?;
            }
            tx.put_meta("audit_head", head)
        })
    }

    /// Records `event` (a prune's own) and removes the events up to
    /// `through`, in one transaction; how many were removed.
    pub async fn prune_audit(
        &self,
        seq: u64,
        event: &[u8],
        head: &[u8],
        through: u64,
    ) -> Result<u64, StoreError> {
        self.write(|tx, _| {
            tx.append_audit(seq, event)?;
            tx.put_meta("audit_head", head)?;
            tx.prune_audit(through)
        })
    }

    /// Visits audit events from `from` on (or, with `reverse`, from the
    /// last back), in one snapshot, until `visit` returns false.
    pub fn audit_scan(
        &self,
        from: u64,
        reverse: bool,
        mut visit: impl FnMut(u64, &[u8]) -> bool,
    ) -> Result<(), StoreError> {
        use redb::ReadableDatabase;
        self.intact()?;
        let tx = self.file()?.begin_read()?;
        let table = match tx.open_table(super::db::AUDIT) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
            Err(error) => return Err(error.into()),
        };
        let range = table.range(from..)?;
        if reverse {
            for entry in range.rev() {
                let (seq, event) = entry?;
                if !visit(seq.value(), event.value()) {
                    break;
                }
            }
        } else {
            for entry in range {
                let (seq, event) = entry?;
                if !visit(seq.value(), event.value()) {
                    break;
                }
            }
        }
        Ok(())
    }

    /// How many events the trail holds.
    pub fn audit_len(&self) -> u64 {
        self.manifest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .audit_count
    }
}
