//! Where the master key comes from, in order:
//!
//! 1. the systemd credential `$CREDENTIALS_DIRECTORY/tether-master-key`
//!    (`LoadCredentialEncrypted=`, which can seal it to the TPM2);
//! 2. `master.key` in the state directory, mode 0600, created on first start.
//!
//! Either holds 32 raw bytes or 64 hex digits (a trailing newline is allowed).
//! A key file is created only for a store that has never been sealed: if the
//! store exists and its key is missing, the daemon stops rather than starting
//! over with a new key and an unreadable store.
//!
//! A rekey writes the new key to `master.key.new` before the store is
//! re-sealed, and renames it over `master.key` after: whichever of the two
//! proves against the store is the key, and the other is removed.

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::StoreError;
use super::envelope::{KEY_LEN, MasterKey};

pub const CREDENTIAL_NAME: &str = "tether-master-key";
pub const KEY_FILE: &str = "master.key";
/// A rekey's new key, until the store is re-sealed with it.
pub const NEW_KEY_FILE: &str = "master.key.new";

/// Where the key was found, for the start-up log.
#[derive(Debug, Clone)]
pub enum KeySource {
    Credential(PathBuf),
    File(PathBuf),
    Created(PathBuf),
    /// Wrapped by a passphrase (`tetherd --passphrase`).
    Passphrase(PathBuf),
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Credential(path) => write!(f, "systemd credential {}", path.display()),
            KeySource::File(path) => write!(f, "key file {}", path.display()),
            KeySource::Created(path) => write!(f, "new key file {}", path.display()),
            KeySource::Passphrase(path) => {
                write!(f, "passphrase-wrapped key {}", path.display())
            }
        }
    }
}

/// The master key for the store in `state_dir`; `proves` says whether a
/// key opens the store (after an interrupted rekey, one of two does).
pub fn load(
    state_dir: &Path,
    store_is_new: bool,
    proves: impl Fn(&MasterKey) -> bool,
) -> Result<(MasterKey, KeySource), StoreError> {
    if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
        let path = Path::new(&dir).join(CREDENTIAL_NAME);
        if path.exists() {
            let key = read_key(&path)?;
            return Ok((key, KeySource::Credential(path)));
        }
    }
    let path = state_dir.join(KEY_FILE);
    finish_rekey(state_dir, &proves)?;
    if path.exists() {
        let key = read_key_file(&path)?;
        return Ok((key, KeySource::File(path)));
    }
    if !store_is_new {
        return Err(StoreError::Key(format!(
            "the store in {} was sealed with a master key that is not here: restore {} \
             (or the systemd credential {CREDENTIAL_NAME}) from your backup",
            state_dir.display(),
            path.display()
        )));
    }
    let key = MasterKey::generate()
        .map_err(|e| StoreError::Key(format!("cannot generate a key: {e}")))?;
    write_new_key(&path, &key)?;
    Ok((key, KeySource::Created(path)))
}

/// After a rekey that stopped part way: keeps whichever key proves, as
/// `master.key`, and removes the other.
fn finish_rekey(state_dir: &Path, proves: &impl Fn(&MasterKey) -> bool) -> Result<(), StoreError> {
    let new_path = state_dir.join(NEW_KEY_FILE);
    if !new_path.exists() {
        return Ok(());
    }
    let path = state_dir.join(KEY_FILE);
    let current_proves = path.exists() && proves(&read_key(&path)?);
    if current_proves {
        tracing::warn!("a rekey stopped before re-sealing the store; the old key stays");
        fs::remove_file(&new_path).map_err(|source| StoreError::Io {
            path: new_path.clone(),
            source,
        })?;
    } else if proves(&read_key(&new_path)?) {
        tracing::warn!("a rekey stopped after re-sealing the store; its new key takes over");
        install(&new_path, &path)?;
    }
    Ok(())
}

/// Renames `from` over `to`, durably.
pub fn install(from: &Path, to: &Path) -> Result<(), StoreError> {
    let io = |source| StoreError::Io {
        path: to.to_owned(),
        source,
    };
    fs::rename(from, to).map_err(io)?;
    if let Some(dir) = to.parent() {
        fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    }
    Ok(())
}

/// A key file that only its owner may read.
pub fn read_key_file(path: &Path) -> Result<MasterKey, StoreError> {
    let mode = fs::metadata(path)
        .map_err(|source| StoreError::Io {
            path: path.to_owned(),
            source,
        })?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(StoreError::Key(format!(
            "{} is readable by other users (mode {:o}); run `chmod 600 {}`",
            path.display(),
            mode & 0o777,
            path.display()
        )));
    }
    read_key(path)
}

fn read_key(path: &Path) -> Result<MasterKey, StoreError> {
    let io = |source| StoreError::Io {
        path: path.to_owned(),
        source,
    };
    let mut raw = Zeroizing::new(Vec::new());
    fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut raw))
        .map_err(io)?;
    parse_key(&raw).ok_or_else(|| {
        StoreError::Key(format!(
            "{} does not hold a master key (32 bytes, or 64 hex digits)",
            path.display()
        ))
    })
}

fn parse_key(raw: &[u8]) -> Option<MasterKey> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    if raw.len() == KEY_LEN {
        key.copy_from_slice(raw);
        return Some(MasterKey::from_bytes(key));
    }
    let text = raw.strip_suffix(b"\n").unwrap_or(raw);
    if text.len() != KEY_LEN * 2 {
        return None;
    }
    for (byte, pair) in key.iter_mut().zip(text.chunks(2)) {
        let digit = |c: u8| (c as char).to_digit(16);
        *byte = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
    }
    Some(MasterKey::from_bytes(key))
}

pub fn write_new_key(path: &Path, key: &MasterKey) -> Result<(), StoreError> {
    let io = |source| StoreError::Io {
        path: path.to_owned(),
        source,
    };
    // create_new: never overwrite a key another process just wrote.
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    file.write_all(key.bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    if let Some(dir) = path.parent() {
        fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_and_hex_keys_parse_to_the_same_key() {
        let raw = [0xabu8; 32];
        let hex = format!("{}\n", "ab".repeat(32));
        let a = parse_key(&raw).unwrap();
        let b = parse_key(hex.as_bytes()).unwrap();
        assert_eq!(a.id(), b.id());
        assert!(parse_key(b"short").is_none());
        assert!(parse_key("zz".repeat(32).as_bytes()).is_none());
    }

    #[test]
    fn key_file_is_created_private_only_for_a_new_store() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            load(dir.path(), false, |_| true),
            Err(StoreError::Key(_))
        ));
        let (key, source) = load(dir.path(), true, |_| true).unwrap();
        assert!(matches!(source, KeySource::Created(_)));
        let mode = fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let (again, _) = load(dir.path(), false, |_| true).unwrap();
        assert_eq!(key.id(), again.id());
    }

    #[test]
    fn a_key_file_readable_by_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        load(dir.path(), true, |_| true).unwrap();
        let path = dir.path().join(KEY_FILE);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = load(dir.path(), false, |_| true).err().unwrap();
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }
}
