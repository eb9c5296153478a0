//! The credential store: a sled database in the state directory.
//!
//! Trees and their records (every value is a sealed [`envelope`], so a record
//! edited on disk, or moved to another name, fails its integrity check):
//!
//! | tree | key | sealed value | AAD field |
//! |---|---|---|---|
//! | `meta` | `format` | plain `1` (the only unsealed value) | |
//! | `meta` | `key_check` | a known constant, proving the master key | `value` |
//! | `profiles` | profile name | JSON [`ProfileRecord`] | `record` |
//! | `secrets` | profile name | [`Credential`] encoding | `credential` |
//! | `hostkeys` | profile name | JSON list of [`PinnedHostKey`] | `keys` |
//!
//! and the access records of [`access`].
//!
//! Profile and host-key records hold no secret, but they decide where a
//! secret is sent: sealing them too means that editing the database cannot
//! redirect a credential to another host.
//!
//! Durability: every write is flushed before the call returns, so an
//! acknowledged write survives a crash. A record that fails to open is
//! `store_corrupt` for that record only.

pub mod access;
pub mod credential;
pub mod envelope;
pub mod master_key;

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sled::Transactional;
use tether_api::types::AuthKind;
use zeroize::Zeroizing;

pub use credential::Credential;
use envelope::{MasterKey, OpenError, aad};
pub use master_key::KeySource;

const FORMAT_VERSION: &[u8] = b"1";
const KEY_CHECK: &[u8] = b"tether master key check v1";

const META: &str = "meta";
const PROFILES: &str = "profiles";
const SECRETS: &str = "secrets";
const HOSTKEYS: &str = "hostkeys";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("database error: {0}")]
    Db(#[from] sled::Error),
    #[error(
        "another tetherd is using the store in {}: stop it first, or give this one its own \
         --state-dir",
        .0.display()
    )]
    Locked(PathBuf),
    #[error("master key: {0}")]
    Key(String),
    #[error(
        "the master key ({source_desc}, key id {key_id}) is not the one this store was sealed with \
         (key id {store_id}); start tetherd with the right key"
    )]
    WrongKey {
        source_desc: String,
        key_id: String,
        store_id: String,
    },
    #[error("store format {0:?} is not supported by this tetherd (it reads format 1)")]
    Format(String),
    #[error("record {tree}/{record} failed its integrity check; other records are unaffected")]
    Corrupt { tree: &'static str, record: String },
    #[error("profile {0:?} exists already")]
    Exists(String),
    #[error("profile {0:?} was removed meanwhile")]
    Missing(String),
    #[error(transparent)]
    Seal(#[from] envelope::SealError),
    #[error(
        "tetherd is sealed: its master key was wiped from memory (tether seal or SIGUSR1); \
         restart it to read the key again"
    )]
    Sealed,
}

/// A host key pinned for a profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinnedHostKey {
    pub algorithm: String,
    pub fingerprint: String,
    pub added_at: u64,
}

/// A public key's algorithm and fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    pub algorithm: String,
    pub fingerprint: String,
}

/// Everything about a profile but its name (the record key) and its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileRecord {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub auth: AuthKind,
    pub public_key: Option<KeyInfo>,
    pub created_at: u64,
    pub updated_at: u64,
    /// Per-profile overrides of `[ssh]` in the daemon's config.
    #[serde(default)]
    pub connect_timeout_secs: Option<u64>,
    #[serde(default)]
    pub keepalive_secs: Option<u64>,
    /// An OpenSSH user certificate for the key (public), logged in with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
}

/// A profile name with its record, or the error opening it.
pub type ListedProfile = (String, Result<ProfileRecord, StoreError>);

pub struct Store {
    db: sled::Db,
    /// `None` once sealed: the key is wiped and nothing can be opened or
    /// sealed until a restart reads it again.
    key: std::sync::RwLock<Option<MasterKey>>,
    key_source: KeySource,
    profiles: sled::Tree,
    secrets: sled::Tree,
    hostkeys: sled::Tree,
}

impl Store {
    /// Opens (or creates) the store in `state_dir`, loads the master key and
    /// proves it against the store.
    pub fn open(state_dir: &Path) -> Result<Store, StoreError> {
        create_private_dir(state_dir)?;
        let db = sled::Config::new()
            .path(state_dir.join("db"))
            .open()
            .map_err(|error| match error {
                // sled says so only in its message.
                sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => {
                    StoreError::Locked(state_dir.to_owned())
                }
                other => StoreError::Db(other),
            })?;
        let meta = db.open_tree(META)?;
        let profiles = db.open_tree(PROFILES)?;
        let secrets = db.open_tree(SECRETS)?;
        let hostkeys = db.open_tree(HOSTKEYS)?;

        if let Some(format) = meta.get("format")? {
            if format.as_ref() != FORMAT_VERSION {
                return Err(StoreError::Format(
                    String::from_utf8_lossy(&format).into_owned(),
                ));
            }
        }
        let check = meta.get("key_check")?;
        let is_new = check.is_none() && profiles.is_empty() && secrets.is_empty();
        let (key, key_source) = master_key::load(state_dir, is_new)?;
        let check_aad = aad(META, "key_check", "value");
        match check {
            Some(sealed) => match envelope::open(&key, &check_aad, &sealed) {
                Ok(plain) if plain.as_slice() == KEY_CHECK => {}
                Err(OpenError::OtherKey(store_id)) => {
                    return Err(StoreError::WrongKey {
                        source_desc: key_source.to_string(),
                        key_id: key.id_hex(),
                        store_id,
                    });
                }
                _ => {
                    return Err(StoreError::Corrupt {
                        tree: META,
                        record: "key_check".into(),
                    });
                }
            },
            None if is_new => {
                meta.insert("format", FORMAT_VERSION)?;
                meta.insert("key_check", envelope::seal(&key, &check_aad, KEY_CHECK)?)?;
                db.flush()?;
            }
            None => {
                return Err(StoreError::Corrupt {
                    tree: META,
                    record: "key_check".into(),
                });
            }
        }
        Ok(Store {
            db,
            key: std::sync::RwLock::new(Some(key)),
            key_source,
            profiles,
            secrets,
            hostkeys,
        })
    }

    pub fn key_source(&self) -> &KeySource {
        &self.key_source
    }

    fn seal_json<T: Serialize>(
        &self,
        tree: &str,
        record: &str,
        field: &str,
        value: &T,
    ) -> Result<Vec<u8>, StoreError> {
        let json = Zeroizing::new(serde_json::to_vec(value).unwrap_or_default());
        self.with_key(|key| Ok(envelope::seal(key, &aad(tree, record, field), &json)?))
    }

    /// Runs `f` with the master key, or fails with [`StoreError::Sealed`].
    fn with_key<T>(
        &self,
        f: impl FnOnce(&MasterKey) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let key = self.key.read().unwrap_or_else(|e| e.into_inner());
        match key.as_ref() {
            Some(key) => f(key),
            None => Err(StoreError::Sealed),
        }
    }

    /// Wipes the master key from memory (`tether seal`, SIGUSR1).
    pub fn seal(&self) {
        let mut key = self.key.write().unwrap_or_else(|e| e.into_inner());
        // Dropping the key zeroizes it.
        key.take();
    }

    pub fn is_sealed(&self) -> bool {
        self.key.read().map(|k| k.is_none()).unwrap_or(true)
    }

    fn open_record(
        &self,
        tree: &'static str,
        record: &str,
        field: &str,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        self.with_key(|key| {
            envelope::open(key, &aad(tree, record, field), sealed).map_err(|_| {
                StoreError::Corrupt {
                    tree,
                    record: record.to_owned(),
                }
            })
        })
    }

    fn open_json<T: DeserializeOwned>(
        &self,
        tree: &'static str,
        record: &str,
        field: &str,
        sealed: &[u8],
    ) -> Result<T, StoreError> {
        let plain = self.open_record(tree, record, field, sealed)?;
        serde_json::from_slice(&plain).map_err(|_| StoreError::Corrupt {
            tree,
            record: record.to_owned(),
        })
    }

    pub fn profile(&self, name: &str) -> Result<Option<ProfileRecord>, StoreError> {
        match self.profiles.get(name)? {
            Some(sealed) => self.open_json(PROFILES, name, "record", &sealed).map(Some),
            None => Ok(None),
        }
    }

    /// Every profile by name; a record that fails to open is reported in
    /// place, so one damaged record does not hide the others.
    pub fn profiles(&self) -> Result<Vec<ListedProfile>, StoreError> {
        let mut out = Vec::new();
        for entry in self.profiles.iter() {
            let (name, sealed) = entry?;
            let name = String::from_utf8_lossy(&name).into_owned();
            let record = self.open_json(PROFILES, &name, "record", &sealed);
            out.push((name, record));
        }
        Ok(out)
    }

    pub fn profile_count(&self) -> usize {
        self.profiles.len()
    }

    pub fn credential(&self, name: &str) -> Result<Credential, StoreError> {
        let corrupt = || StoreError::Corrupt {
            tree: SECRETS,
            record: name.to_owned(),
        };
        let sealed = self.secrets.get(name)?.ok_or_else(corrupt)?;
        let plain = self.open_record(SECRETS, name, "credential", &sealed)?;
        Credential::decode(&plain).ok_or_else(corrupt)
    }

    pub fn host_keys(&self, name: &str) -> Result<Vec<PinnedHostKey>, StoreError> {
        match self.hostkeys.get(name)? {
            Some(sealed) => self.open_json(HOSTKEYS, name, "keys", &sealed),
            None => Err(StoreError::Corrupt {
                tree: HOSTKEYS,
                record: name.to_owned(),
            }),
        }
    }

    /// Adds a profile with its secret and pinned host keys in one
    /// transaction, flushed before returning.
    pub async fn add_profile(
        &self,
        name: &str,
        record: &ProfileRecord,
        credential: &Credential,
        host_keys: &[PinnedHostKey],
    ) -> Result<(), StoreError> {
        let sealed_record = self.seal_json(PROFILES, name, "record", record)?;
        let sealed_secret = self.with_key(|key| {
            Ok(envelope::seal(
                key,
                &aad(SECRETS, name, "credential"),
                &credential.encode(),
            )?)
        })?;
        let sealed_keys = self.seal_json(HOSTKEYS, name, "keys", &host_keys)?;
        let result = (&self.profiles, &self.secrets, &self.hostkeys).transaction(
            |(profiles, secrets, hostkeys)| {
                if profiles.get(name)?.is_some() {
                    return sled::transaction::abort(());
                }
                profiles.insert(name, sealed_record.as_slice())?;
                secrets.insert(name, sealed_secret.as_slice())?;
                hostkeys.insert(name, sealed_keys.as_slice())?;
                Ok(())
            },
        );
        match result {
            Ok(()) => {}
            Err(sled::transaction::TransactionError::Abort(())) => {
                return Err(StoreError::Exists(name.to_owned()));
            }
            Err(sled::transaction::TransactionError::Storage(e)) => return Err(e.into()),
        }
        self.db.flush_async().await?;
        Ok(())
    }

    /// Replaces a profile's record and pinned host keys, and its secret when
    /// `credential` is given, in one transaction, flushed before returning.
    pub async fn update_profile(
        &self,
        name: &str,
        record: &ProfileRecord,
        credential: Option<&Credential>,
        host_keys: &[PinnedHostKey],
    ) -> Result<(), StoreError> {
        let sealed_record = self.seal_json(PROFILES, name, "record", record)?;
        let sealed_secret = match credential {
            Some(credential) => Some(self.with_key(|key| {
                Ok(envelope::seal(
                    key,
                    &aad(SECRETS, name, "credential"),
                    &credential.encode(),
                )?)
            })?),
            None => None,
        };
        let sealed_keys = self.seal_json(HOSTKEYS, name, "keys", &host_keys)?;
        let result = (&self.profiles, &self.secrets, &self.hostkeys).transaction(
            |(profiles, secrets, hostkeys)| {
                if profiles.get(name)?.is_none() {
                    return sled::transaction::abort(());
                }
                profiles.insert(name, sealed_record.as_slice())?;
                if let Some(sealed) = &sealed_secret {
                    secrets.insert(name, sealed.as_slice())?;
                }
                hostkeys.insert(name, sealed_keys.as_slice())?;
                Ok(())
            },
        );
        match result {
            Ok(()) => {}
            Err(sled::transaction::TransactionError::Abort(())) => {
                return Err(StoreError::Missing(name.to_owned()));
            }
            Err(sled::transaction::TransactionError::Storage(e)) => return Err(e.into()),
        }
        self.db.flush_async().await?;
        Ok(())
    }

    /// Removes a profile and everything stored for it. `false` if there was
    /// no such profile.
    pub async fn remove_profile(&self, name: &str) -> Result<bool, StoreError> {
        self.remove_access_of(name).await?;
        let result = (&self.profiles, &self.secrets, &self.hostkeys).transaction(
            |(profiles, secrets, hostkeys)| {
                let existed = profiles.remove(name)?.is_some();
                secrets.remove(name)?;
                hostkeys.remove(name)?;
                Ok::<_, sled::transaction::ConflictableTransactionError<()>>(existed)
            },
        );
        let existed = match result {
            Ok(existed) => existed,
            Err(sled::transaction::TransactionError::Abort(())) => false,
            Err(sled::transaction::TransactionError::Storage(e)) => return Err(e.into()),
        };
        self.db.flush_async().await?;
        Ok(existed)
    }

    /// Raw access for tests that tamper with records on purpose.
    #[doc(hidden)]
    pub fn raw_tree(&self, tree: &str) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree(tree)?)
    }
}

fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::DirBuilderExt;
    let io = |source| StoreError::Io {
        path: dir.to_owned(),
        source,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io)?;
    let meta = std::fs::metadata(dir).map_err(io)?;
    if !meta.is_dir() {
        return Err(io(std::io::Error::other("not a directory")));
    }
    Ok(())
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> ProfileRecord {
        ProfileRecord {
            host: "127.0.0.1".into(),
            port: 22,
            user: "alice".into(),
            auth: AuthKind::Password,
            public_key: None,
            created_at: 1,
            updated_at: 1,
            connect_timeout_secs: None,
            keepalive_secs: None,
            certificate: None,
        }
    }

    fn pins() -> Vec<PinnedHostKey> {
        vec![PinnedHostKey {
            algorithm: "ssh-ed25519".into(),
            fingerprint: "SHA256:abc".into(),
            added_at: 1,
        }]
    }

    const SECRET: &str = "correct horse battery staple";

    async fn store_with(dir: &Path, names: &[&str]) -> Store {
        let store = Store::open(dir).unwrap();
        for name in names {
            let cred = Credential::Password(Zeroizing::new(SECRET.into()));
            store
                .add_profile(name, &record(), &cred, &pins())
                .await
                .unwrap();
        }
        store
    }

    #[tokio::test]
    async fn profiles_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        drop(store_with(dir.path(), &["web1", "web2"]).await);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.profile("web1").unwrap(), Some(record()));
        assert_eq!(store.host_keys("web2").unwrap(), pins());
        assert!(
            matches!(store.credential("web1").unwrap(), Credential::Password(p) if p.as_str() == SECRET)
        );
        assert!(store.profile("nope").unwrap().is_none());
    }

    #[tokio::test]
    async fn duplicate_names_are_refused_and_nothing_changes() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(dir.path(), &["web1"]).await;
        let other = ProfileRecord {
            host: "evil".into(),
            ..record()
        };
        let cred = Credential::Password(Zeroizing::new("x".into()));
        let err = store
            .add_profile("web1", &other, &cred, &[])
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Exists(_)));
        assert_eq!(store.profile("web1").unwrap(), Some(record()));
    }

    #[tokio::test]
    async fn remove_takes_everything() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(dir.path(), &["web1"]).await;
        assert!(store.remove_profile("web1").await.unwrap());
        assert!(!store.remove_profile("web1").await.unwrap());
        assert!(store.raw_tree(SECRETS).unwrap().is_empty());
        assert!(store.raw_tree(HOSTKEYS).unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_tampered_record_is_corrupt_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(dir.path(), &["web1", "web2"]).await;
        let tree = store.raw_tree(PROFILES).unwrap();
        let mut bytes = tree.get("web1").unwrap().unwrap().to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        tree.insert("web1", bytes).unwrap();
        assert!(matches!(
            store.profile("web1"),
            Err(StoreError::Corrupt { tree: PROFILES, .. })
        ));
        assert_eq!(store.profile("web2").unwrap(), Some(record()));
        let listed = store.profiles().unwrap();
        assert!(listed[0].1.is_err() && listed[1].1.is_ok());
    }

    #[tokio::test]
    async fn a_record_moved_to_another_name_does_not_open() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(dir.path(), &["web1", "web2"]).await;
        let secrets = store.raw_tree(SECRETS).unwrap();
        let web1 = secrets.get("web1").unwrap().unwrap();
        secrets.insert("web2", web1).unwrap();
        assert!(matches!(
            store.credential("web2"),
            Err(StoreError::Corrupt { tree: SECRETS, .. })
        ));
        assert!(store.credential("web1").is_ok());
    }

    #[tokio::test]
    async fn a_wrong_master_key_stops_the_store() {
        let dir = tempfile::tempdir().unwrap();
        drop(store_with(dir.path(), &["web1"]).await);
        let key_file = dir.path().join(master_key::KEY_FILE);
        std::fs::write(&key_file, [9u8; 32]).unwrap();
        let err = Store::open(dir.path()).err().unwrap();
        assert!(matches!(err, StoreError::WrongKey { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("not the one this store was sealed with")
        );
    }

    #[tokio::test]
    async fn a_missing_key_for_an_existing_store_is_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        drop(store_with(dir.path(), &["web1"]).await);
        std::fs::remove_file(dir.path().join(master_key::KEY_FILE)).unwrap();
        assert!(matches!(Store::open(dir.path()), Err(StoreError::Key(_))));
        assert!(!dir.path().join(master_key::KEY_FILE).exists());
    }

    #[tokio::test]
    async fn no_plaintext_secret_reaches_the_state_directory() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(dir.path(), &["web1"]).await;
        drop(store);
        for entry in walk(dir.path()) {
            let bytes = std::fs::read(&entry).unwrap();
            assert!(
                !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
                "{}",
                entry.display()
            );
            assert!(
                !bytes.windows(5).any(|w| w == b"alice"),
                "{}",
                entry.display()
            );
        }
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
        out
    }
}
