//! A new master key for the whole store (`tether rekey`).
//!
//! The new key is written to `master.key.new` (synced) first; then every
//! sealed record, the key check and the store's own keys are re-sealed
//! under it in one transaction; then the new key file is renamed over the
//! old one. A crash at any point leaves a store that exactly one of the two
//! files opens, and [`super::master_key::load`] keeps that one. Afterwards
//! the old key opens nothing in the store.

use serde::Serialize;

use super::db::{self, Tx};
use super::envelope::{self, MasterKey, aad};
use super::master_key::{self, KeySource};
use super::open::{KEY_CHECK, check_aad, seal_keys};
use super::passphrase;
use super::{RECORD_TABLES, Store, StoreError, access, open_plain};

/// What a rekey did.
#[derive(Debug, Clone, Serialize)]
pub struct Rekeyed {
    pub old_key_id: String,
    pub new_key_id: String,
    /// Records re-sealed.
    pub records: usize,
}

/// The AAD field a record of `table` is sealed with.
pub(super) fn field_of(table: &str, key: &str) -> &'static str {
    match table {
        super::PROFILES => "record",
        super::SECRETS => "credential",
        super::HOSTKEYS => "keys",
        access::GRANTS => "grant",
        access::ACTIONS => "argv",
        access::MFA if key.starts_with("pending/") => "pending",
        access::MFA if key.starts_with("invite/") => "invite",
        access::MFA => "totp",
        access::LOCKOUT => "lockout",
        _ => "value",
    }
}

impl Store {
    /// Re-seals everything under a new master key (see the module). A
    /// passphrase daemon needs its passphrase, to wrap the new key.
    pub fn rekey(&self, passphrase: Option<&[u8]>) -> Result<Rekeyed, StoreError> {
        self.intact()?;
        if let KeySource::Passphrase(path) = self.key_source() {
            let passphrase = passphrase.ok_or(StoreError::WrongPassphrase)?;
            self.check_passphrase(passphrase)?;
            let new = MasterKey::generate()
                .map_err(|e| StoreError::Key(format!("cannot generate a key: {e}")))?;
            let new_path = self.state_dir.join(passphrase::NEW_WRAPPED_FILE);
            passphrase::write(&new_path, &passphrase::wrap(&new, passphrase)?)?;
            return self.rekey_to(new, &path, &new_path);
        }
        let path = match &self.key_source() {
            KeySource::File(path) | KeySource::Created(path) => path.clone(),
            KeySource::Passphrase(_) => return Err(StoreError::WrongPassphrase),
            KeySource::Credential(path) => {
                return Err(StoreError::Key(format!(
                    "the master key is the systemd credential {}, which tetherd cannot \
                     replace: rekey with a key file, or make a new credential and restore a \
                     backup under it",
                    path.display()
                )));
            }
        };
        let new = MasterKey::generate()
            .map_err(|e| StoreError::Key(format!("cannot generate a key: {e}")))?;
        let new_path = self.state_dir.join(master_key::NEW_KEY_FILE);
        // One left by a rekey that failed before its commit in this run.
        let _ = std::fs::remove_file(&new_path);
        master_key::write_new_key(&new_path, &new)?;
        self.rekey_to(new, &path, &new_path)
    }

    /// Re-seals under `new`, whose key file waits at `new_path` to replace
    /// `path`.
    fn rekey_to(
        &self,
        new: MasterKey,
        path: &std::path::Path,
        new_path: &std::path::Path,
    ) -> Result<Rekeyed, StoreError> {
        let outcome = db::blocking(|| self.reseal(&new, path, new_path));
        if outcome.is_err() && self.key_id() != Some(new.id_hex()) {
            // Not committed: the old key stays the key.
            let _ = std::fs::remove_file(new_path);
        }
        outcome
    }

    fn key_id(&self) -> Option<String> {
        self.key
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(MasterKey::id_hex)
    }

    fn reseal(
        &self,
        new: &MasterKey,
        path: &std::path::Path,
        new_path: &std::path::Path,
    ) -> Result<Rekeyed, StoreError> {
        // Writers wait on the manifest, readers on the key: nobody holds
        // bytes of one key to open with the other.
        let mut current = self.manifest.lock().unwrap_or_else(|e| e.into_inner());
        let mut key = self.key.write().unwrap_or_else(|e| e.into_inner());
        let old = key.as_ref().ok_or(StoreError::Sealed)?;
        let mut tx = Tx::begin(self.file()?, current.clone())?;
        let mut records = 0;
        for table in RECORD_TABLES {
            for (name, sealed) in tx.all(table)? {
                let field = field_of(table, &name);
                let plain = open_plain(old, table, &name, field, &sealed)?;
                let resealed = envelope::seal(new, &aad(table, &name, field), &plain)?;
                tx.put(table, &name, &resealed)?;
                records += 1;
            }
        }
        tx.put_meta("key_check", &envelope::seal(new, &check_aad(), KEY_CHECK)?)?;
        tx.put_meta("keys", &seal_keys(new, self.keys()?)?)?;
        *current = self.commit(tx)?;
        let done = Rekeyed {
            old_key_id: old.id_hex(),
            new_key_id: new.id_hex(),
            records,
        };
        // Committed: the new key is the key, whatever happens to the file
        // (the next start renames it if this does not).
        *key = Some(MasterKey::from_bytes(zeroize::Zeroizing::new(*new.bytes())));
        if let Err(error) = master_key::install(new_path, path) {
            tracing::error!(%error, "the store is re-sealed but master.key.new could not replace master.key; the next start will");
        }
        tracing::warn!(records, old = %done.old_key_id, new = %done.new_key_id, "rekeyed: every record is sealed under the new master key");
        Ok(done)
    }
}
