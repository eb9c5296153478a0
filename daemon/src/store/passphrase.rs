//! The master key wrapped by a passphrase (`tetherd --passphrase`).
//!
//! `master.key.wrapped` holds the key sealed with XChaCha20-Poly1305 under
//! a key derived from the passphrase with Argon2id (64 MiB, 3 passes), its
//! parameters and salt beside it; no plaintext key file exists. The daemon
//! starts sealed and `tether unseal` gives it the passphrase. Failed
//! passphrases are counted in `unseal.lockout` (it survives a restart):
//! after [`MAX_FAILURES`] the next try waits, doubling each time.

use std::path::Path;

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::StoreError;
use super::envelope::{KEY_LEN, MasterKey, hex};

pub const WRAPPED_FILE: &str = "master.key.wrapped";
/// A rekey's new key, wrapped, until the store is re-sealed with it.
pub const NEW_WRAPPED_FILE: &str = "master.key.wrapped.new";
const LOCKOUT_FILE: &str = "unseal.lockout";
/// Wrong passphrases before the waiting starts.
pub const MAX_FAILURES: u32 = 5;
/// The shortest new passphrase taken.
pub const MIN_LENGTH: usize = 10;

const MEMORY_KIB: u32 = 64 * 1024;
const PASSES: u32 = 3;

/// The wrapped key file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Wrapped {
    pub format: u32,
    /// The id of the key inside (which store it opens).
    pub key_id: String,
    pub kdf: String,
    pub memory_kib: u32,
    pub passes: u32,
    pub salt: String,
    pub nonce: String,
    pub sealed: String,
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    hex::decode(text).ok()
}

fn derive(
    passphrase: &[u8],
    salt: &[u8],
    memory_kib: u32,
    passes: u32,
) -> Result<Zeroizing<[u8; 32]>, StoreError> {
    let params = Params::new(memory_kib, passes, 1, Some(32))
        .map_err(|e| StoreError::Key(format!("argon2 parameters: {e}")))?;
    let mut out = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase, salt, out.as_mut_slice())
        .map_err(|e| StoreError::Key(format!("argon2: {e}")))?;
    Ok(out)
}

fn aad(key_id: &str) -> Vec<u8> {
    format!("tether/v1/wrapped-master-key/{key_id}").into_bytes()
}

/// `key` wrapped by `passphrase`, with a fresh salt and nonce.
pub fn wrap(key: &MasterKey, passphrase: &[u8]) -> Result<Wrapped, StoreError> {
    let random = |n: usize| {
        let mut bytes = vec![0u8; n];
        getrandom::fill(&mut bytes)
            .map_err(|e| StoreError::Key(format!("cannot generate a salt: {e}")))?;
        Ok::<_, StoreError>(bytes)
    };
    let salt = random(16)?;
    let nonce = random(24)?;
    let wrapping = derive(passphrase, &salt, MEMORY_KIB, PASSES)?;
    let key_id = key.id_hex();
    let sealed = XChaCha20Poly1305::new(wrapping.as_slice().into())
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: key.bytes(),
                aad: &aad(&key_id),
            },
        )
        .map_err(|_| StoreError::Key("cannot wrap the key".into()))?;
    Ok(Wrapped {
        format: 1,
        key_id,
        kdf: "argon2id".into(),
        memory_kib: MEMORY_KIB,
        passes: PASSES,
        salt: hex(&salt),
        nonce: hex(&nonce),
        sealed: hex(&sealed),
    })
}

/// The key inside, if `passphrase` is the one it was wrapped with (`None`
/// for a wrong passphrase).
pub fn unwrap(wrapped: &Wrapped, passphrase: &[u8]) -> Result<Option<MasterKey>, StoreError> {
    let damaged = || StoreError::Key(format!("{WRAPPED_FILE} is damaged"));
    if wrapped.format != 1 || wrapped.kdf != "argon2id" {
        return Err(StoreError::Key(format!(
            "{WRAPPED_FILE} is of a kind this tetherd does not read"
        )));
    }
    // Bounds a file someone edited to make the daemon allocate without end.
    if wrapped.memory_kib > 4 * 1024 * 1024 || wrapped.passes > 64 {
        return Err(damaged());
    }
    let salt = unhex(&wrapped.salt).ok_or_else(damaged)?;
    let nonce = unhex(&wrapped.nonce).ok_or_else(damaged)?;
    let sealed = unhex(&wrapped.sealed).ok_or_else(damaged)?;
    if nonce.len() != 24 {
        return Err(damaged());
    }
    let wrapping = derive(passphrase, &salt, wrapped.memory_kib, wrapped.passes)?;
    let opened = XChaCha20Poly1305::new(wrapping.as_slice().into()).decrypt(
        XNonce::from_slice(&nonce),
        Payload {
            msg: &sealed,
            aad: &aad(&wrapped.key_id),
        },
    );
    let Ok(plain) = opened else { return Ok(None) };
    let plain = Zeroizing::new(plain);
    if plain.len() != KEY_LEN {
        return Err(damaged());
    }
    let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
    bytes.copy_from_slice(&plain);
    Ok(Some(MasterKey::from_bytes(bytes)))
}

pub fn read(path: &Path) -> Result<Option<Wrapped>, StoreError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|_| StoreError::Key(format!("{} is damaged", path.display()))),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StoreError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Writes `wrapped` to `path` whole (0600, synced, renamed into place).
pub fn write(path: &Path, wrapped: &Wrapped) -> Result<(), StoreError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| StoreError::Io {
        path: path.to_owned(),
        source,
    };
    let temporary = path.with_extension("partial");
    let _ = std::fs::remove_file(&temporary);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(io)?;
    file.write_all(&serde_json::to_vec_pretty(wrapped).unwrap_or_default())
        .and_then(|()| file.sync_all())
        .map_err(io)?;
    super::master_key::install(&temporary, path)
}

/// Failed passphrases, kept across restarts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Lockout {
    pub failures: u32,
    /// Unix seconds before which no passphrase is tried.
    pub until: u64,
}

impl Lockout {
    pub fn read(state_dir: &Path) -> Lockout {
        std::fs::read(state_dir.join(LOCKOUT_FILE))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// Seconds to wait before the next try, if any.
    pub fn wait(&self, now: u64) -> Option<u64> {
        (self.until > now).then(|| self.until - now)
    }

    /// One more failure: after [`MAX_FAILURES`], 30 s, doubling, at most a
    /// day.
    pub fn failed(&mut self, now: u64) {
        self.failures += 1;
        if self.failures >= MAX_FAILURES {
            let steps = (self.failures - MAX_FAILURES).min(12);
            self.until = now + (30u64 << steps).min(86_400);
        }
    }

    pub fn save(&self, state_dir: &Path) {
        let path = state_dir.join(LOCKOUT_FILE);
        if self.failures == 0 {
            let _ = std::fs::remove_file(path);
            return;
        }
        if let Err(error) = std::fs::write(&path, serde_json::to_vec(self).unwrap_or_default()) {
            tracing::warn!(%error, "cannot keep the unseal lockout");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrapped_key_opens_with_its_passphrase_only() {
        let key = MasterKey::generate().unwrap();
        let wrapped = wrap(&key, b"correct horse battery").unwrap();
        assert_eq!(wrapped.key_id, key.id_hex());
        let text = serde_json::to_string(&wrapped).unwrap();
        assert!(!text.contains(&hex(key.bytes())));
        let opened = unwrap(&wrapped, b"correct horse battery").unwrap().unwrap();
        assert_eq!(opened.id(), key.id());
        assert!(
            unwrap(&wrapped, b"correct horse batterz")
                .unwrap()
                .is_none()
        );
        // Bound to its key id: a swapped id does not open.
        let mut swapped = wrapped.clone();
        swapped.key_id = "0000000000000000".into();
        assert!(
            unwrap(&swapped, b"correct horse battery")
                .unwrap()
                .is_none()
        );
        let mut greedy = wrapped;
        greedy.memory_kib = u32::MAX;
        assert!(unwrap(&greedy, b"correct horse battery").is_err());
    }

    #[test]
    fn failures_past_the_limit_wait_longer_each_time() {
        let mut lockout = Lockout::default();
        for _ in 0..MAX_FAILURES - 1 {
            lockout.failed(1000);
        }
        assert_eq!(lockout.wait(1000), None);
        lockout.failed(1000);
        assert_eq!(lockout.wait(1000), Some(30));
        lockout.failed(1000);
        assert_eq!(lockout.wait(1000), Some(60));
        assert_eq!(lockout.wait(1100), None);
    }
}
