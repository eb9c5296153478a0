//! The credential store: a redb database in the state directory
//! (`db`), its manifest and witness ([`integrity`]), and the master key
//! ([`master_key`]).
//!
//! Tables and their records (every value is a sealed [`envelope`], so a record
//! edited on disk, or moved to another name, fails its integrity check):
//!
//! | table | key | sealed value | AAD field |
//! |---|---|---|---|
//! | `meta` | `format` | plain `2` (unsealed) | |
//! | `meta` | `key_check` | a known constant, proving the master key | `value` |
//! | `meta` | `keys` | [`integrity::StoreKeys`] | `keys` |
//! | `meta` | `manifest` | JSON [`integrity::Manifest`] with its HMAC (unsealed) | |
//! | `meta` | `audit_head` | JSON audit head with its HMAC (unsealed) | |
//! | `profiles` | profile name | JSON [`ProfileRecord`] | `record` |
//! | `secrets` | profile name | [`Credential`] encoding | `credential` |
//! | `hostkeys` | profile name | JSON list of [`PinnedHostKey`] | `keys` |
//!
//! and the access records of [`access`] and the audit trail.
//!
//! Profile and host-key records hold no secret, but they decide where a
//! secret is sent: sealing them too means that editing the database cannot
//! redirect a credential to another host. The manifest means that removing
//! records, or rolling the file back, cannot go unnoticed either.
//!
//! Durability: every write is committed durably before the call returns, so
//! an acknowledged write survives a crash. A record that fails to open is
//! `store_corrupt` for that record only; a store that does not match its
//! manifest serves no record at all.

pub mod access;
pub mod audit;
pub mod backup;
pub mod credential;
pub(crate) mod db;
pub mod envelope;
pub mod integrity;
pub mod master_key;
mod migrate;
mod open;
pub mod passphrase;
mod profiles;
mod raw;
mod rekey;
pub mod unseal;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tether_api::types::{AuthKind, Protocol};
use zeroize::Zeroizing;

pub use credential::Credential;
use db::Tx;
use envelope::{MasterKey, aad};
use integrity::{Manifest, Report, StoreKeys};
pub use master_key::KeySource;
pub use rekey::Rekeyed;

const META: &str = db::META;
const PROFILES: &str = "profiles";
const SECRETS: &str = "secrets";
const HOSTKEYS: &str = "hostkeys";

/// Every table of sealed records, as the manifest lists them.
pub const RECORD_TABLES: [&str; 7] = [
    PROFILES,
    SECRETS,
    HOSTKEYS,
    access::GRANTS,
    access::ACTIONS,
    access::MFA,
    access::LOCKOUT,
];

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("database error: {0}")]
    Db(String),
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
    #[error("store format {0:?} is not supported by this tetherd (it reads formats 1 and 2)")]
    Format(String),
    #[error("record {tree}/{record} failed its integrity check; other records are unaffected")]
    Corrupt { tree: &'static str, record: String },
    #[error(
        "the store is damaged, so none of its records are served: {0}. Restore the state \
         directory from a backup (`tetherd restore`), or take the store as it is with \
         `tetherd check --state-dir DIR --accept`"
    )]
    Damaged(String),
    #[error("the database file {} cannot be read: {detail}", path.display())]
    Unreadable { path: PathBuf, detail: String },
    #[error("the backup was not restored, and nothing was written: {0}")]
    Backup(String),
    #[error("profile {0:?} exists already")]
    Exists(String),
    #[error("profile {0:?} was removed meanwhile")]
    Missing(String),
    #[error(transparent)]
    Seal(#[from] envelope::SealError),
    #[error(
        "tetherd is sealed: it holds no master key (started with --passphrase, or `tether \
         seal`); `tether unseal` gives it the key"
    )]
    Sealed,
    #[error("the passphrase does not open the master key")]
    WrongPassphrase,
    #[error("too many wrong passphrases: try again in {0} s")]
    LockedOut(u64),
    #[error("a new passphrase needs at least {0} characters")]
    WeakPassphrase(usize),
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
    /// What the profile speaks; absent in records from before FTP.
    #[serde(default, skip_serializing_if = "Protocol::is_ssh")]
    pub protocol: Protocol,
    /// FTPS checked against certificate authorities instead of a pin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ca: Option<TlsCa>,
    /// The profile whose connection carries this one's (`--jump`), as
    /// OpenSSH's `ProxyJump`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jump: Option<String>,
}

/// The certificate authorities an FTPS profile trusts instead of a pin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsCa {
    /// The system's store (`/etc/ssl/certs`).
    System,
    /// Those in this PEM text, given when the profile was added.
    Pem(String),
}

/// A profile name with its record, or the error opening it.
pub type ListedProfile = (String, Result<ProfileRecord, StoreError>);

pub struct Store {
    /// `None` when the file could not be read at all (the store is then
    /// damaged, and says why).
    db: Option<redb::Database>,
    state_dir: PathBuf,
    /// `None` once sealed: the key is wiped and nothing can be opened or
    /// sealed until a restart reads it again.
    key: RwLock<Option<MasterKey>>,
    key_source: RwLock<KeySource>,
    /// The store's own keys (see [`StoreKeys`]): set by the first unlock,
    /// kept when sealed.
    keys: std::sync::OnceLock<StoreKeys>,
    /// The manifest as last committed; held while a write is under way.
    manifest: Mutex<Manifest>,
    /// Why the store's records are not served, if they are not.
    damage: RwLock<Option<Report>>,
}

impl Store {
    pub fn key_source(&self) -> KeySource {
        self.key_source
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The store's own keys; a store that has never been unlocked (a
    /// passphrase daemon before `tether unseal`) has none yet.
    pub fn keys(&self) -> Result<&StoreKeys, StoreError> {
        self.keys.get().ok_or(StoreError::Sealed)
    }

    /// What the check at open found, if the store is damaged.
    pub fn damage(&self) -> Option<Report> {
        self.damage
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The committed generation (one more with every change).
    pub fn generation(&self) -> u64 {
        self.manifest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .generation
    }

    /// The database file, unless it could not be read.
    fn file(&self) -> Result<&redb::Database, StoreError> {
        match &self.db {
            Some(db) => Ok(db),
            None => Err(StoreError::Damaged(
                self.damage().map(|r| r.summary()).unwrap_or_default(),
            )),
        }
    }

    /// Refuses every record of a damaged store.
    fn intact(&self) -> Result<(), StoreError> {
        match &*self.damage.read().unwrap_or_else(|e| e.into_inner()) {
            Some(report) => Err(StoreError::Damaged(report.summary())),
            None => Ok(()),
        }
    }

    /// Runs `change` in one write transaction, with the manifest kept in
    /// step, committed durably; then moves the witness on. `change` gets
    /// the master key (`None` when sealed) to seal what it writes: sealing
    /// inside the transaction means a rekey can never slip between a
    /// record's sealing and its writing. A damaged store takes no writes: a
    /// write would move the witness past the damage.
    pub(crate) fn write<T>(
        &self,
        change: impl FnOnce(&mut Tx, Option<&MasterKey>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.intact()?;
        // Never unlocked: nothing may be written (the manifest's key is not
        // known yet).
        self.keys()?;
        db::blocking(|| {
            let mut current = self.manifest.lock().unwrap_or_else(|e| e.into_inner());
            let key = self.key.read().unwrap_or_else(|e| e.into_inner());
            let mut tx = Tx::begin(self.file()?, current.clone())?;
            let out = change(&mut tx, key.as_ref())?;
            drop(key);
            *current = self.commit(tx)?;
            Ok(out)
        })
    }

    /// Commits `tx` as the next generation, with its manifest, and moves
    /// the witness on.
    fn commit(&self, mut tx: Tx) -> Result<Manifest, StoreError> {
        let keys = self.keys()?;
        tx.manifest.generation += 1;
        let signed = tx.manifest.signed(&keys.integrity);
        tx.put_meta("manifest", &signed)?;
        let manifest = tx.commit()?;
        if let Err(error) =
            integrity::write_witness(&self.state_dir, manifest.generation, &keys.integrity)
        {
            tracing::warn!(%error, "cannot write the store's generation witness");
        }
        Ok(manifest)
    }

    fn get_raw(&self, table: &'static str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.intact()?;
        db::get(self.file()?, table, key)
    }

    fn scan_raw(
        &self,
        table: &'static str,
        prefix: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.intact()?;
        db::scan(self.file()?, table, prefix)
    }

    /// Runs `f` with the master key, or fails with [`StoreError::Sealed`].
    /// Readers fetch and open a record inside `f`, so that a rekey (which
    /// holds the key exclusively) never hands them bytes of one key to open
    /// with the other.
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

    /// Reads and opens one JSON record.
    fn read_json<T: DeserializeOwned>(
        &self,
        table: &'static str,
        record: &str,
        field: &str,
    ) -> Result<Option<T>, StoreError> {
        self.with_key(|key| match self.get_raw(table, record)? {
            Some(sealed) => open_json(key, table, record, field, &sealed).map(Some),
            None => Ok(None),
        })
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
}

/// Seals `plain` for its place, with the key a write was given.
fn seal_plain(
    key: Option<&MasterKey>,
    table: &str,
    record: &str,
    field: &str,
    plain: &[u8],
) -> Result<Vec<u8>, StoreError> {
    let key = key.ok_or(StoreError::Sealed)?;
    Ok(envelope::seal(key, &aad(table, record, field), plain)?)
}

fn seal_json<T: Serialize>(
    key: Option<&MasterKey>,
    table: &str,
    record: &str,
    field: &str,
    value: &T,
) -> Result<Vec<u8>, StoreError> {
    let json = Zeroizing::new(serde_json::to_vec(value).unwrap_or_default());
    seal_plain(key, table, record, field, &json)
}

fn open_plain(
    key: &MasterKey,
    table: &'static str,
    record: &str,
    field: &str,
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, StoreError> {
    envelope::open(key, &aad(table, record, field), sealed).map_err(|_| StoreError::Corrupt {
        tree: table,
        record: record.to_owned(),
    })
}

fn open_json<T: DeserializeOwned>(
    key: &MasterKey,
    table: &'static str,
    record: &str,
    field: &str,
    sealed: &[u8],
) -> Result<T, StoreError> {
    let plain = open_plain(key, table, record, field, sealed)?;
    serde_json::from_slice(&plain).map_err(|_| StoreError::Corrupt {
        tree: table,
        record: record.to_owned(),
    })
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
mod tests;
