//! The database file (`store.redb`, redb): its tables, reads from one
//! snapshot, and writes as one transaction that keeps the manifest in step
//! (see [`super::integrity`]).
//!
//! Every write is committed durably (redb's `Durability::Immediate`: the
//! file is synced) before the call returns, so an acknowledged write
//! survives a crash.

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, TableError};

use super::StoreError;
use super::integrity::{Content, Manifest};

/// The file in the state directory.
pub const FILE: &str = "store.redb";

pub type Records = TableDefinition<'static, &'static str, &'static [u8]>;

/// `meta`: the store's own records (format, key check, keys, manifest,
/// audit head). Not in the manifest: it holds it.
pub const META: &str = "meta";
/// The audit trail: events by sequence number.
pub const AUDIT: TableDefinition<'static, u64, &'static [u8]> = TableDefinition::new("audit");

pub fn records(name: &'static str) -> Records {
    TableDefinition::new(name)
}

macro_rules! from_redb {
    ($($error:ty),*) => {$(
        impl From<$error> for StoreError {
            fn from(error: $error) -> Self {
                StoreError::Db(redb::Error::from(error).to_string())
            }
        }
    )*};
}
from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::StorageError,
    redb::CommitError,
    redb::Error
);

impl From<TableError> for StoreError {
    fn from(error: TableError) -> Self {
        StoreError::Db(redb::Error::from(error).to_string())
    }
}

/// Runs blocking database work without stalling the runtime's other tasks
/// (where the runtime has other threads to run them).
pub fn blocking<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}

/// A read of one table from a snapshot; a table never written is empty.
pub fn read_table<T>(
    db: &redb::Database,
    name: &'static str,
    read: impl FnOnce(&redb::ReadOnlyTable<&'static str, &'static [u8]>) -> Result<T, StoreError>,
    empty: T,
) -> Result<T, StoreError> {
    let tx = db.begin_read()?;
    match tx.open_table(records(name)) {
        Ok(table) => read(&table),
        Err(TableError::TableDoesNotExist(_)) => Ok(empty),
        Err(error) => Err(error.into()),
    }
}

pub fn get(
    db: &redb::Database,
    table: &'static str,
    key: &str,
) -> Result<Option<Vec<u8>>, StoreError> {
    read_table(
        db,
        table,
        |t| Ok(t.get(key)?.map(|v| v.value().to_vec())),
        None,
    )
}

/// Every record of `table` whose key starts with `prefix`, in key order.
pub fn scan(
    db: &redb::Database,
    table: &'static str,
    prefix: &str,
) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    read_table(
        db,
        table,
        |t| {
            let mut out = Vec::new();
            for entry in t.range(prefix..)? {
                let (key, value) = entry?;
                if !key.value().starts_with(prefix) {
                    break;
                }
                out.push((key.value().to_owned(), value.value().to_vec()));
            }
            Ok(out)
        },
        Vec::new(),
    )
}

/// The keys of every record table and the audit trail's extent, read from
/// one snapshot: what [`super::integrity::check`] compares.
pub fn content(db: &redb::Database, tables: &[&'static str]) -> Result<Content, StoreError> {
    let tx = db.begin_read()?;
    let mut content = Content::default();
    for &name in tables {
        let table = match tx.open_table(records(name)) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => continue,
            Err(error) => return Err(error.into()),
        };
        let keys = content.tables.entry(name.to_owned()).or_default();
        for entry in table.iter()? {
            let (key, _) = entry?;
            keys.insert(key.value().to_owned());
        }
        if keys.is_empty() {
            content.tables.remove(name);
        }
    }
    match tx.open_table(AUDIT) {
        Ok(audit) => {
            content.audit_count = audit.len()?;
            content.audit_first = audit.first()?.map(|(k, _)| k.value());
            content.audit_last = audit.last()?.map(|(k, _)| k.value());
        }
        Err(TableError::TableDoesNotExist(_)) => {}
        Err(error) => return Err(error.into()),
    }
    Ok(content)
}

/// One write transaction, with the manifest it brings up to date.
pub struct Tx {
    tx: redb::WriteTransaction,
    pub manifest: Manifest,
}

impl Tx {
    pub fn begin(db: &redb::Database, manifest: Manifest) -> Result<Tx, StoreError> {
        Ok(Tx {
            tx: db.begin_write()?,
            manifest,
        })
    }

    pub fn get(&self, table: &'static str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let table = self.tx.open_table(records(table))?;
        let value = table.get(key)?.map(|v| v.value().to_vec());
        Ok(value)
    }

    pub fn put(&mut self, table: &'static str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.tx.open_table(records(table))?.insert(key, value)?;
        self.manifest.added(table, key);
        Ok(())
    }

    /// Whether there was such a record.
    pub fn remove(&mut self, table: &'static str, key: &str) -> Result<bool, StoreError> {
        let existed = self.tx.open_table(records(table))?.remove(key)?.is_some();
        self.manifest.removed(table, key);
        Ok(existed)
    }

    /// The keys of `table` that start with `prefix`.
    pub fn keys(&self, table: &'static str, prefix: &str) -> Result<Vec<String>, StoreError> {
        let table = self.tx.open_table(records(table))?;
        let mut out = Vec::new();
        for entry in table.range(prefix..)? {
            let (key, _) = entry?;
            if !key.value().starts_with(prefix) {
                break;
            }
            out.push(key.value().to_owned());
        }
        Ok(out)
    }

    /// Every record of `table` (for re-sealing them all).
    pub fn all(&self, table: &'static str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let table = match self.tx.open_table(records(table)) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(error) => return Err(error.into()),
        };
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (key, value) = entry?;
            out.push((key.value().to_owned(), value.value().to_vec()));
        }
        Ok(out)
    }

    pub fn put_meta(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.tx.open_table(records(META))?.insert(key, value)?;
        Ok(())
    }

    pub fn append_audit(&mut self, seq: u64, event: &[u8]) -> Result<(), StoreError> {
        let existed = self.tx.open_table(AUDIT)?.insert(seq, event)?.is_some();
        if self.manifest.audit_count == 0 {
            self.manifest.audit_first = seq;
        }
        if !existed {
            self.manifest.audit_count += 1;
        }
        self.manifest.audit_next = self.manifest.audit_next.max(seq + 1);
        Ok(())
    }

    /// Removes the events up to and including `through`; how many.
    pub fn prune_audit(&mut self, through: u64) -> Result<u64, StoreError> {
        let mut table = self.tx.open_table(AUDIT)?;
        let mut removed = 0;
        for entry in table.extract_from_if(..=through, |_, _| true)? {
            entry?;
            removed += 1;
        }
        let first = table.first()?.map(|(seq, _)| seq.value());
        drop(table);
        self.manifest.audit_count -= removed.min(self.manifest.audit_count);
        self.manifest.audit_first = first.unwrap_or(self.manifest.audit_next);
        Ok(removed)
    }

    /// Commits durably; the manifest it wrote.
    pub fn commit(self) -> Result<Manifest, StoreError> {
        self.tx.commit()?;
        Ok(self.manifest)
    }
}
