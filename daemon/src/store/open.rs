//! Opening a store: the database file checked page by page, a store made
//! by an earlier tetherd migrated, a new one initialized, the master key
//! proved, and the content compared with the manifest and the witness.

use std::path::Path;
use std::sync::{Mutex, RwLock};

use zeroize::Zeroizing;

use super::db;
use super::envelope::{self, MasterKey, OpenError, aad};
use super::integrity::{self, Manifest, Report, StoreKeys};
use super::master_key::{self, KeySource};
use super::migrate;
use super::{META, RECORD_TABLES, Store, StoreError, create_private_dir};

/// The format of a redb store (1 was sled's).
pub const FORMAT_VERSION: &[u8] = b"2";
pub(super) const KEY_CHECK: &[u8] = b"tether master key check v1";

/// The memory redb may keep pages of the file in. Its default (1 GiB) lets
/// the cache grow with the audit trail for as long as the daemon runs;
/// profiles, grants and the trail's recent end fit in this many times
/// over, and a query of old events reads the file instead.
pub const CACHE_BYTES: usize = 4 * 1024 * 1024;

/// Opens the database file, checking the checksum of every page: a file
/// altered outside redb fails here rather than being trusted.
fn open_file(state_dir: &Path) -> Result<redb::Database, StoreError> {
    let path = state_dir.join(db::FILE);
    redb::Database::builder()
        .set_cache_size(CACHE_BYTES)
        .set_check_integrity_on_open(true)
        .create(&path)
        .map_err(|error| match error {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Locked(state_dir.to_owned()),
            redb::DatabaseError::Storage(redb::StorageError::Corrupted(detail)) => {
                StoreError::Unreadable { path, detail }
            }
            redb::DatabaseError::Storage(redb::StorageError::Io(source)) => {
                StoreError::Io { path, source }
            }
            other => StoreError::Unreadable {
                path,
                detail: other.to_string(),
            },
        })
}

pub(super) fn check_aad() -> String {
    aad(META, "key_check", "value")
}

fn keys_aad() -> String {
    aad(META, "keys", "keys")
}

/// Proves `key` against the store's key check.
fn prove(key: &MasterKey, sealed: &[u8], source: &master_key::KeySource) -> Result<(), StoreError> {
    match envelope::open(key, &check_aad(), sealed) {
        Ok(plain) if plain.as_slice() == KEY_CHECK => Ok(()),
        Err(OpenError::OtherKey(store_id)) => Err(StoreError::WrongKey {
            source_desc: source.to_string(),
            key_id: key.id_hex(),
            store_id,
        }),
        _ => Err(StoreError::Corrupt {
            tree: META,
            record: "key_check".into(),
        }),
    }
}

/// The store's own keys, sealed for `meta`.
pub(super) fn seal_keys(key: &MasterKey, keys: &StoreKeys) -> Result<Vec<u8>, StoreError> {
    let json = Zeroizing::new(serde_json::to_vec(keys).unwrap_or_default());
    Ok(envelope::seal(key, &keys_aad(), &json)?)
}

pub(super) fn open_keys(key: &MasterKey, sealed: &[u8]) -> Result<StoreKeys, StoreError> {
    let corrupt = || StoreError::Corrupt {
        tree: META,
        record: "keys".into(),
    };
    let plain = envelope::open(key, &keys_aad(), sealed).map_err(|_| corrupt())?;
    serde_json::from_slice(&plain).map_err(|_| corrupt())
}

/// The records every new store starts with: format, key check, keys.
pub(super) fn first_records(
    tx: &mut db::Tx,
    key: &MasterKey,
    keys: &StoreKeys,
) -> Result<(), StoreError> {
    tx.put_meta("format", FORMAT_VERSION)?;
    tx.put_meta("key_check", &envelope::seal(key, &check_aad(), KEY_CHECK)?)?;
    tx.put_meta("keys", &seal_keys(key, keys)?)
}

/// Commits `tx` with a manifest that describes the content as it will be,
/// and writes the witness.
pub(super) fn commit_described(
    db: &redb::Database,
    state_dir: &Path,
    mut tx: db::Tx,
    keys: &StoreKeys,
    generation: u64,
) -> Result<Manifest, StoreError> {
    tx.manifest.generation = generation;
    let signed = tx.manifest.signed(&keys.integrity);
    tx.put_meta("manifest", &signed)?;
    let manifest = tx.commit()?;
    // Checked against what was written, as the next open will.
    let content = db::content(db, &RECORD_TABLES)?;
    let described = integrity::describe(&content, generation);
    if described.tables != manifest.tables
        || described.audit_count != manifest.audit_count
        || (manifest.audit_count > 0
            && (described.audit_first != manifest.audit_first
                || described.audit_next != manifest.audit_next))
    {
        return Err(StoreError::Damaged(
            "the records written do not match their manifest".into(),
        ));
    }
    integrity::write_witness(state_dir, generation, &keys.integrity).map_err(|source| {
        StoreError::Io {
            path: state_dir.join(integrity::WITNESS),
            source,
        }
    })?;
    Ok(manifest)
}

impl Store {
    /// Opens (or creates) the store in `state_dir` with the master key from
    /// its key file or systemd credential, proves the key against the
    /// store, and checks the store against its manifest: a damaged store
    /// opens, but serves no record ([`Store::damage`]).
    pub fn open(state_dir: &Path) -> Result<Store, StoreError> {
        let source = KeySource::File(state_dir.join(master_key::KEY_FILE));
        let store = Store::open_locked(state_dir, source)?;
        if store.db.is_none() {
            // The key first: a wrong or missing key is still said first.
            let (key, source) = master_key::load(state_dir, false, |_| true)?;
            *store.key.write().unwrap_or_else(|e| e.into_inner()) = Some(key);
            *store.key_source.write().unwrap_or_else(|e| e.into_inner()) = source;
            return Ok(store);
        }
        let is_new = store.is_new()?;
        let (key, source) =
            master_key::load(state_dir, is_new, |candidate| store.proves(candidate))?;
        *store.key_source.write().unwrap_or_else(|e| e.into_inner()) = source;
        store.unlock(key)?;
        Ok(store)
    }

    /// Opens the database file (checked page by page) without a key: the
    /// store is sealed until [`Store::unlock`] gives it one.
    pub fn open_locked(state_dir: &Path, source: KeySource) -> Result<Store, StoreError> {
        create_private_dir(state_dir)?;
        let (db, damage) = match open_file(state_dir) {
            Ok(db) => {
                if let Some(format) = db::get(&db, META, "format")? {
                    if format != FORMAT_VERSION {
                        return Err(StoreError::Format(
                            String::from_utf8_lossy(&format).into_owned(),
                        ));
                    }
                }
                (Some(db), None)
            }
            Err(StoreError::Unreadable { path, detail }) => {
                let problem = format!(
                    "the database file {} cannot be read: {detail}",
                    path.display()
                );
                tracing::error!(%problem, "the store is damaged; none of its records are served");
                let report = Report {
                    problem: Some(problem),
                    ..Report::default()
                };
                (None, Some(report))
            }
            Err(other) => return Err(other),
        };
        Ok(Store {
            db,
            state_dir: state_dir.to_owned(),
            key: RwLock::new(None),
            key_source: RwLock::new(source),
            keys: std::sync::OnceLock::new(),
            manifest: Mutex::new(Manifest::default()),
            damage: RwLock::new(damage),
        })
    }

    /// Whether the store has never held anything (its first key is made,
    /// not looked for).
    pub fn is_new(&self) -> Result<bool, StoreError> {
        let db = self.file()?;
        let check = db::get(db, META, "key_check")?;
        let content = db::content(db, &RECORD_TABLES)?;
        Ok(check.is_none()
            && migrate::legacy_dir(&self.state_dir).is_none()
            && content.tables.is_empty()
            && content.audit_count == 0)
    }

    /// Whether `key` opens this store (any key opens a store without one).
    pub fn proves(&self, key: &MasterKey) -> bool {
        let Ok(db) = self.file() else { return true };
        match db::get(db, META, "key_check") {
            Ok(Some(sealed)) => {
                envelope::open(key, &check_aad(), &sealed).is_ok_and(|p| p.as_slice() == KEY_CHECK)
            }
            Ok(None) => true,
            Err(_) => false,
        }
    }

    /// Gives a locked (or sealed) store its master key: a store of an
    /// earlier tetherd is migrated, a new one initialized, the key proved,
    /// the store's own keys opened and the content checked.
    pub fn unlock(&self, key: MasterKey) -> Result<(), StoreError> {
        let state_dir = &self.state_dir;
        let db = self.file()?;
        let check = db::get(db, META, "key_check")?;
        let legacy = migrate::legacy_dir(state_dir);
        let migrating = check.is_none() && legacy.is_some();
        let is_new = self.is_new()?;
        if let (Some(dir), false) = (&legacy, migrating) {
            // Migrated earlier; the old copy outlived a crash.
            migrate::remove_legacy(dir);
        }
        if migrating {
            let dir = legacy.as_deref().unwrap_or(state_dir);
            migrate::from_sled(dir, db, state_dir, &key)?;
            migrate::remove_legacy(dir);
        } else if is_new {
            let keys = StoreKeys::generate()
                .map_err(|e| StoreError::Key(format!("cannot generate keys: {e}")))?;
            let mut tx = db::Tx::begin(db, Manifest::default())?;
            first_records(&mut tx, &key, &keys)?;
            commit_described(db, state_dir, tx, &keys, 0)?;
        } else if check.is_none() {
            return Err(StoreError::Corrupt {
                tree: META,
                record: "key_check".into(),
            });
        }
        let check = db::get(db, META, "key_check")?.ok_or(StoreError::Corrupt {
            tree: META,
            record: "key_check".into(),
        })?;
        prove(&key, &check, &self.key_source())?;
        let sealed_keys = db::get(db, META, "keys")?.ok_or(StoreError::Corrupt {
            tree: META,
            record: "keys".into(),
        })?;
        let keys = open_keys(&key, &sealed_keys)?;
        let keys = self.keys.get_or_init(|| keys);
        let (manifest, report) = examine(db, state_dir, keys)?;
        if !report.is_clean() {
            tracing::error!(damage = %report.summary(), "the store is damaged; none of its records are served");
        }
        *self.manifest.lock().unwrap_or_else(|e| e.into_inner()) = manifest;
        *self.damage.write().unwrap_or_else(|e| e.into_inner()) =
            (!report.is_clean()).then_some(report);
        *self.key.write().unwrap_or_else(|e| e.into_inner()) = Some(key);
        Ok(())
    }

    /// Takes a damaged store as it is: a manifest of what is there, a new
    /// witness, and the loss reported (the caller puts it on record). The
    /// report of what was lost, or `None` when the store was intact.
    pub fn accept_damage(&self) -> Result<Option<Report>, StoreError> {
        let Some(report) = self.damage() else {
            return Ok(None);
        };
        // A file that cannot be read has nothing to accept.
        self.file()?;
        db::blocking(|| {
            let mut current = self.manifest.lock().unwrap_or_else(|e| e.into_inner());
            let content = db::content(self.file()?, &RECORD_TABLES)?;
            let generation = report.generation.max(report.witness.unwrap_or(0)) + 1;
            let tx = db::Tx::begin(self.file()?, integrity::describe(&content, generation))?;
            let keys = self.keys()?;
            *current = commit_described(self.file()?, &self.state_dir, tx, keys, generation)?;
            Ok::<_, StoreError>(())
        })?;
        *self.damage.write().unwrap_or_else(|e| e.into_inner()) = None;
        Ok(Some(report))
    }
}

/// The committed manifest (as the writer's starting point) and how the
/// store compares with it and with the witness.
fn examine(
    db: &redb::Database,
    state_dir: &Path,
    keys: &StoreKeys,
) -> Result<(Manifest, Report), StoreError> {
    let stored = db::get(db, META, "manifest")?;
    let content = db::content(db, &RECORD_TABLES)?;
    let witness = integrity::read_witness(state_dir, &keys.integrity);
    let report = integrity::check(stored.as_deref(), &content, witness, &keys.integrity);
    let manifest = stored
        .as_deref()
        .and_then(|bytes| Manifest::verified(bytes, &keys.integrity))
        .unwrap_or_else(|| integrity::describe(&content, report.generation));
    Ok((manifest, report))
}
