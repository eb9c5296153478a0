//! Backups (`tether backup`) and restores (`tetherd restore`).
//!
//! A backup is one snapshot of every table, sealed: a header line of plain
//! JSON ([`Header`]: the key id it needs, the generation, the counts), then
//! chunks, each a 4-byte big-endian length and an envelope sealed under the
//! master key, whose associated data binds it to the header, its index and
//! whether it is the last. The plaintext of the chunks is the records,
//! byte for byte (records sealed again inside, the audit trail in the
//! clear). Without the master key a backup is ciphertext; a chunk cut,
//! dropped, reordered or taken from another backup does not open.
//!
//! A restore checks all of it before it writes anything, and writes only
//! into a state directory that holds no store.

use std::path::{Path, PathBuf};

use redb::{ReadableDatabase, ReadableTable};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::db::{self, Tx};
use super::envelope::{self, MasterKey, aad, hex};
use super::integrity::{self, Manifest};
use super::open::{KEY_CHECK, check_aad};
use super::{META, RECORD_TABLES, Store, StoreError, create_private_dir, master_key};

const MAGIC: &str = "tether-backup";
const FORMAT: u32 = 1;
/// Plaintext per chunk.
const CHUNK: usize = 1 << 20;
/// The largest chunk a restore reads (a chunk and its envelope).
const MAX_SEALED_CHUNK: usize = CHUNK + 4096;

/// The backup's first line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Header {
    pub magic: String,
    pub format: u32,
    /// The master key it needs.
    pub key_id: String,
    pub generation: u64,
    pub created_at: u64,
    pub records: u64,
    pub events: u64,
}

/// One entry of the plaintext.
#[derive(Debug, Serialize, Deserialize)]
enum Entry {
    Meta(String, Vec<u8>),
    Record(String, String, Vec<u8>),
    Event(u64, Vec<u8>),
}

fn chunk_aad(header: &[u8], index: u64, last: bool) -> String {
    let digest = hex(&Sha256::digest(header));
    aad("backup", &digest, &format!("{index}/{last}"))
}

fn encode(entry: &Entry, out: &mut Vec<u8>) {
    let bytes = serde_json::to_vec(entry).unwrap_or_default();
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(&bytes);
}

impl Store {
    /// A backup of the store as one snapshot, sealed; with its header.
    pub fn backup(&self) -> Result<(Header, Vec<u8>), StoreError> {
        self.intact()?;
        self.with_key(|key| db::blocking(|| self.backup_with(key)))
    }

    fn backup_with(&self, key: &MasterKey) -> Result<(Header, Vec<u8>), StoreError> {
        let tx = self.file()?.begin_read()?;
        let mut plain = Zeroizing::new(Vec::new());
        let mut records = 0u64;
        let mut events = 0u64;
        let mut generation = 0;
        let meta = tx.open_table(db::records(META))?;
        for entry in meta.iter()? {
            let (name, value) = entry?;
            if name.value() == "manifest" {
                let manifest = Manifest::verified(value.value(), &self.keys()?.integrity)
                    .ok_or_else(|| StoreError::Damaged("the manifest fails its check".into()))?;
                generation = manifest.generation;
            }
            encode(
                &Entry::Meta(name.value().to_owned(), value.value().to_vec()),
                &mut plain,
            );
        }
        for table in RECORD_TABLES {
            let opened = match tx.open_table(db::records(table)) {
                Ok(opened) => opened,
                Err(redb::TableError::TableDoesNotExist(_)) => continue,
                Err(error) => return Err(error.into()),
            };
            for entry in opened.iter()? {
                let (name, value) = entry?;
                encode(
                    &Entry::Record(
                        table.to_owned(),
                        name.value().to_owned(),
                        value.value().to_vec(),
                    ),
                    &mut plain,
                );
                records += 1;
            }
        }
        match tx.open_table(db::AUDIT) {
            Ok(audit) => {
                for entry in audit.iter()? {
                    let (seq, value) = entry?;
                    encode(
                        &Entry::Event(seq.value(), value.value().to_vec()),
                        &mut plain,
                    );
                    events += 1;
                }
            }
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(error) => return Err(error.into()),
        }
        let header = Header {
            magic: MAGIC.into(),
            format: FORMAT,
            key_id: key.id_hex(),
            generation,
            created_at: super::now(),
            records,
            events,
        };
        let mut out = serde_json::to_vec(&header).unwrap_or_default();
        let header_bytes = out.clone();
        out.push(b'\n');
        let chunks: Vec<&[u8]> = plain.chunks(CHUNK).collect();
        let count = chunks.len().max(1);
        for index in 0..count {
            let chunk = chunks.get(index).copied().unwrap_or(&[]);
            let last = index + 1 == count;
            let sealed = envelope::seal(key, &chunk_aad(&header_bytes, index as u64, last), chunk)?;
            out.extend_from_slice(&(sealed.len() as u32).to_be_bytes());
            out.extend_from_slice(&sealed);
        }
        Ok((header, out))
    }
}

/// Why a restore did nothing.
fn refused(why: impl Into<String>) -> StoreError {
    StoreError::Backup(why.into())
}

/// Reads a backup's header and opens every chunk with `key`; the entries.
fn open_backup(bytes: &[u8], key: &MasterKey) -> Result<(Header, Vec<Entry>), StoreError> {
    let newline = bytes
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| refused("not a tether backup (no header)"))?;
    let header_bytes = &bytes[..newline];
    let header: Header = serde_json::from_slice(header_bytes)
        .map_err(|_| refused("not a tether backup (the header does not parse)"))?;
    if header.magic != MAGIC {
        return Err(refused("not a tether backup"));
    }
    if header.format != FORMAT {
        return Err(refused(format!(
            "backup format {} is not one this tetherd reads ({FORMAT})",
            header.format
        )));
    }
    if header.key_id != key.id_hex() {
        return Err(refused(format!(
            "this backup was sealed with the master key of id {}; the key given has id {}",
            header.key_id,
            key.id_hex()
        )));
    }
    let mut rest = &bytes[newline + 1..];
    let mut plain = Zeroizing::new(Vec::new());
    let mut index = 0u64;
    let mut ended = false;
    while !rest.is_empty() {
        let (len, after) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| refused("the backup is cut short"))?;
        let len = u32::from_be_bytes(*len) as usize;
        if len > MAX_SEALED_CHUNK || after.len() < len {
            return Err(refused("the backup is cut short or damaged"));
        }
        let (sealed, next) = after.split_at(len);
        // A chunk says whether it is the last: a backup cut after a chunk
        // boundary does not open either.
        ended = next.is_empty();
        let opened =
            envelope::open(key, &chunk_aad(header_bytes, index, ended), sealed).map_err(|_| {
                refused(format!(
                    "chunk {index} of the backup does not open: it is damaged or cut short"
                ))
            })?;
        plain.extend_from_slice(&opened);
        rest = next;
        index += 1;
    }
    if !ended {
        return Err(refused(
            "the backup is cut short (its last chunk is missing)",
        ));
    }
    let mut entries = Vec::new();
    let mut body = &plain[..];
    while !body.is_empty() {
        let (len, after) = body
            .split_first_chunk::<4>()
            .ok_or_else(|| refused("a damaged entry"))?;
        let len = u32::from_be_bytes(*len) as usize;
        if after.len() < len {
            return Err(refused("a damaged entry"));
        }
        let entry: Entry =
            serde_json::from_slice(&after[..len]).map_err(|_| refused("a damaged entry"))?;
        entries.push(entry);
        body = &after[len..];
    }
    Ok((header, entries))
}

/// Where a restore's key comes from.
pub enum RestoreKey {
    /// A key file given on the command line, installed as `master.key`.
    File(PathBuf),
    /// What the state directory (or the systemd credential) has.
    Found,
    /// The state directory's passphrase-wrapped key, with its passphrase.
    Wrapped(Zeroizing<String>),
}

/// What a restore wrote.
#[derive(Debug, Serialize)]
pub struct Restored {
    pub generation: u64,
    pub records: u64,
    pub events: u64,
    pub key_id: String,
}

/// `tetherd restore`: checks the whole backup, then writes it into
/// `state_dir`, which must hold no store.
pub fn restore(state_dir: &Path, backup: &Path, key: RestoreKey) -> Result<Restored, StoreError> {
    create_private_dir(state_dir)?;
    for name in [db::FILE, integrity::WITNESS, "db"] {
        if state_dir.join(name).exists() {
            return Err(refused(format!(
                "{} already holds a store ({name}): restore into an empty state directory",
                state_dir.display()
            )));
        }
    }
    let (master, install) = match &key {
        RestoreKey::File(path) => {
            let given = master_key::read_key_file(path)?;
            let present = state_dir.join(master_key::KEY_FILE);
            if present.exists() && master_key::read_key_file(&present)?.id() != given.id() {
                return Err(refused(format!(
                    "{} holds another master key: restore into an empty state directory",
                    state_dir.display()
                )));
            }
            (given, true)
        }
        RestoreKey::Found => (master_key::load(state_dir, false, |_| true)?.0, false),
        RestoreKey::Wrapped(passphrase) => {
            let path = state_dir.join(super::passphrase::WRAPPED_FILE);
            let wrapped = super::passphrase::read(&path)?
                .ok_or_else(|| refused(format!("{} is missing", path.display())))?;
            let key = super::passphrase::unwrap(&wrapped, passphrase.as_bytes())?
                .ok_or(StoreError::WrongPassphrase)?;
            (key, false)
        }
    };
    let bytes = std::fs::read(backup).map_err(|source| StoreError::Io {
        path: backup.to_owned(),
        source,
    })?;
    let (header, entries) = open_backup(&bytes, &master)?;

    // Everything checked before anything is written: the key check, the
    // store's keys, the counts and the manifest.
    let meta = |name: &str| {
        entries.iter().find_map(|e| match e {
            Entry::Meta(n, v) if n == name => Some(v.as_slice()),
            _ => None,
        })
    };
    let check = meta("key_check").ok_or_else(|| refused("the backup has no key check"))?;
    match envelope::open(&master, &check_aad(), check) {
        Ok(plain) if plain.as_slice() == KEY_CHECK => {}
        _ => {
            return Err(refused(
                "the backup's key check does not open with this key",
            ));
        }
    }
    let keys = super::open::open_keys(
        &master,
        meta("keys").ok_or_else(|| refused("the backup has no store keys"))?,
    )?;
    let manifest = meta("manifest")
        .and_then(|m| Manifest::verified(m, &keys.integrity))
        .ok_or_else(|| refused("the backup's manifest fails its check"))?;
    let records = entries
        .iter()
        .filter(|e| matches!(e, Entry::Record(..)))
        .count() as u64;
    let events = entries
        .iter()
        .filter(|e| matches!(e, Entry::Event(..)))
        .count() as u64;
    if records != header.records || events != header.events {
        return Err(refused("the backup's counts do not match its header"));
    }
    let mut content = integrity::Content::default();
    for entry in &entries {
        match entry {
            Entry::Record(table, name, _) => {
                if !RECORD_TABLES.contains(&table.as_str()) {
                    return Err(refused(format!(
                        "the backup has an unknown table {table:?}"
                    )));
                }
                content
                    .tables
                    .entry(table.clone())
                    .or_default()
                    .insert(name.clone());
            }
            Entry::Event(seq, _) => {
                content.audit_count += 1;
                content.audit_first.get_or_insert(*seq);
                content.audit_last = Some(*seq);
            }
            Entry::Meta(..) => {}
        }
    }
    let report = integrity::check(
        meta("manifest"),
        &content,
        integrity::Witnessed::At(manifest.generation),
        &keys.integrity,
    );
    if !report.is_clean() {
        return Err(refused(format!(
            "the backup does not hold what its manifest says: {}",
            report.summary()
        )));
    }

    // Written under a temporary name, renamed into place when complete.
    let partial = state_dir.join(format!(".{}.restoring", db::FILE));
    let _ = std::fs::remove_file(&partial);
    let written = write_restored(&partial, &entries);
    if let Err(error) = written {
        let _ = std::fs::remove_file(&partial);
        return Err(error);
    }
    if install {
        let target = state_dir.join(master_key::KEY_FILE);
        if !target.exists() {
            master_key::write_new_key(&target, &master)?;
        }
    }
    std::fs::rename(&partial, state_dir.join(db::FILE)).map_err(|source| StoreError::Io {
        path: state_dir.join(db::FILE),
        source,
    })?;
    integrity::write_witness(state_dir, manifest.generation, &keys.integrity).map_err(
        |source| StoreError::Io {
            path: state_dir.join(integrity::WITNESS),
            source,
        },
    )?;
    Ok(Restored {
        generation: manifest.generation,
        records,
        events,
        key_id: header.key_id,
    })
}

fn write_restored(path: &Path, entries: &[Entry]) -> Result<(), StoreError> {
    let db = redb::Database::create(path)?;
    let mut tx = Tx::begin(&db, Manifest::default())?;
    for entry in entries {
        match entry {
            Entry::Meta(name, value) => tx.put_meta(name, value)?,
            Entry::Record(table, name, value) => {
                let table = RECORD_TABLES
                    .iter()
                    .find(|t| **t == table.as_str())
                    .copied()
                    .unwrap_or("profiles");
                tx.put(table, name, value)?;
            }
            Entry::Event(seq, value) => tx.append_audit(*seq, value)?,
        }
    }
    tx.commit()?;
    drop(db);
    // Synced before it takes the store's name.
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|source| StoreError::Io {
            path: path.to_owned(),
            source,
        })?;
    Ok(())
}
