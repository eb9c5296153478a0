//! Profiles: their records, secrets and pinned host keys, written
//! together.

use super::{
    Credential, HOSTKEYS, ListedProfile, PROFILES, PinnedHostKey, ProfileRecord, SECRETS, Store,
    StoreError, access, open_json, open_plain, seal_json, seal_plain,
};

impl Store {
    pub fn profile(&self, name: &str) -> Result<Option<ProfileRecord>, StoreError> {
        self.read_json(PROFILES, name, "record")
    }

    /// Every profile by name; a record that fails to open is reported in
    /// place, so one damaged record does not hide the others.
    pub fn profiles(&self) -> Result<Vec<ListedProfile>, StoreError> {
        self.with_key(|key| {
            let mut out = Vec::new();
            for (name, sealed) in self.scan_raw(PROFILES, "")? {
                let record = open_json(key, PROFILES, &name, "record", &sealed);
                out.push((name, record));
            }
            Ok(out)
        })
    }

    pub fn profile_count(&self) -> usize {
        self.manifest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .count(PROFILES)
    }

    pub fn credential(&self, name: &str) -> Result<Credential, StoreError> {
        let corrupt = || StoreError::Corrupt {
            tree: SECRETS,
            record: name.to_owned(),
        };
        self.with_key(|key| {
            let sealed = self.get_raw(SECRETS, name)?.ok_or_else(corrupt)?;
            let plain = open_plain(key, SECRETS, name, "credential", &sealed)?;
            Credential::decode(&plain).ok_or_else(corrupt)
        })
    }

    pub fn host_keys(&self, name: &str) -> Result<Vec<PinnedHostKey>, StoreError> {
        self.read_json(HOSTKEYS, name, "keys")?
            .ok_or_else(|| StoreError::Corrupt {
                tree: HOSTKEYS,
                record: name.to_owned(),
            })
    }

    /// Adds a profile with its secret and pinned host keys in one
    /// transaction.
    pub async fn add_profile(
        &self,
        name: &str,
        record: &ProfileRecord,
        credential: &Credential,
        host_keys: &[PinnedHostKey],
    ) -> Result<(), StoreError> {
        let secret = credential.encode();
        self.write(|tx, key| {
            if tx.get(PROFILES, name)?.is_some() {
                return Err(StoreError::Exists(name.to_owned()));
            }
            tx.put(
                PROFILES,
                name,
                &seal_json(key, PROFILES, name, "record", record)?,
            )?;
            tx.put(
                SECRETS,
                name,
                &seal_plain(key, SECRETS, name, "credential", &secret)?,
            )?;
            tx.put(
                HOSTKEYS,
                name,
                &seal_json(key, HOSTKEYS, name, "keys", &host_keys)?,
            )
        })
    }

    /// Replaces a profile's record and pinned host keys, and its secret when
    /// `credential` is given, in one transaction.
    pub async fn update_profile(
        &self,
        name: &str,
        record: &ProfileRecord,
        credential: Option<&Credential>,
        host_keys: &[PinnedHostKey],
    ) -> Result<(), StoreError> {
        let secret = credential.map(Credential::encode);
        self.write(|tx, key| {
            if tx.get(PROFILES, name)?.is_none() {
                return Err(StoreError::Missing(name.to_owned()));
            }
            tx.put(
                PROFILES,
                name,
                &seal_json(key, PROFILES, name, "record", record)?,
            )?;
            if let Some(secret) = &secret {
                tx.put(
                    SECRETS,
                    name,
                    &seal_plain(key, SECRETS, name, "credential", secret)?,
                )?;
            }
            tx.put(
                HOSTKEYS,
                name,
                &seal_json(key, HOSTKEYS, name, "keys", &host_keys)?,
            )
        })
    }

    /// Removes a profile and everything stored for it (its grants and
    /// actions too), in one transaction. `false` if there was no such
    /// profile.
    pub async fn remove_profile(&self, name: &str) -> Result<bool, StoreError> {
        self.write(|tx, _| {
            access::remove_access_of(tx, name)?;
            let existed = tx.remove(PROFILES, name)?;
            tx.remove(SECRETS, name)?;
            tx.remove(HOSTKEYS, name)?;
            Ok(existed)
        })
    }
}
