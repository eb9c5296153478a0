//! Raw access for tests that tamper with the database on purpose, behind
//! the manifest's back: never used by the daemon.

use super::{Store, StoreError, db};

impl Store {
    /// Raw access for tests that tamper with records on purpose: the bytes
    /// of a record, and a way to replace or remove them behind the
    /// manifest's back.
    #[doc(hidden)]
    pub fn raw_get(&self, table: &'static str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        db::get(self.file()?, table, key)
    }

    #[doc(hidden)]
    pub fn raw_put(
        &self,
        table: &'static str,
        key: &str,
        value: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        let tx = self.file()?.begin_write()?;
        {
            let mut table = tx.open_table(db::records(table))?;
            match value {
                Some(value) => {
                    table.insert(key, value)?;
                }
                None => {
                    table.remove(key)?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// [`Store::raw_get`] for the audit trail.
    #[doc(hidden)]
    pub fn raw_audit(&self, seq: u64) -> Result<Option<Vec<u8>>, StoreError> {
        use redb::ReadableDatabase;
        let tx = self.file()?.begin_read()?;
        let table = tx.open_table(db::AUDIT)?;
        let value = table.get(seq)?.map(|v| v.value().to_vec());
        Ok(value)
    }

    /// [`Store::raw_put`] for the audit trail.
    #[doc(hidden)]
    pub fn raw_put_audit(&self, seq: u64, value: Option<&[u8]>) -> Result<(), StoreError> {
        let tx = self.file()?.begin_write()?;
        {
            let mut table = tx.open_table(db::AUDIT)?;
            match value {
                Some(value) => {
                    table.insert(seq, value)?;
                }
                None => {
                    table.remove(seq)?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }
}
