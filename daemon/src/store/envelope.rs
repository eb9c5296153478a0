//! Sealed envelopes: how every record is stored.
//!
//! ```text
//! version: u8 = 1 | key_id: [u8; 8] | nonce: [u8; 24] | XChaCha20-Poly1305 ciphertext + 16-byte tag
//! ```
//!
//! The associated data is `tether/v1/<tree>/<record id>/<field>`, so a
//! ciphertext copied to another record, tree or field fails to open. The key id
//! is the first 8 bytes of SHA-256("tether/v1/key-id" || key): it tells a wrong
//! master key apart from a damaged record without revealing anything about the
//! key.
//!
//! Invariants:
//! - plaintext comes back only in [`Zeroizing`] buffers;
//! - [`MasterKey`] has no `Debug` and wipes itself on drop;
//! - an envelope that fails to open says only which check failed, never why
//!   the tag did not match.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

pub const VERSION: u8 = 1;
pub const KEY_LEN: usize = 32;
const KEY_ID_LEN: usize = 8;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 1 + KEY_ID_LEN + NONCE_LEN;

/// The 32-byte master key. Never stored in the database; boxed, so that it
/// stays where it was locked in memory (best effort) until it is zeroized.
pub struct MasterKey {
    key: Box<Zeroizing<[u8; KEY_LEN]>>,
    id: [u8; KEY_ID_LEN],
}

impl MasterKey {
    pub fn from_bytes(key: Zeroizing<[u8; KEY_LEN]>) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"tether/v1/key-id");
        hasher.update(key.as_slice());
        let digest = hasher.finalize();
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        let key = Box::new(key);
        crate::sys::lock_in_memory(key.as_slice());
        Self { key, id }
    }

    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        getrandom::fill(key.as_mut_slice())?;
        Ok(Self::from_bytes(key))
    }

    pub fn id(&self) -> [u8; KEY_ID_LEN] {
        self.id
    }

    pub fn id_hex(&self) -> String {
        hex(&self.id)
    }

    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.key
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.key.as_slice().into())
    }
}

pub fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// The associated data binding a ciphertext to its place.
pub fn aad(tree: &str, record: &str, field: &str) -> String {
    format!("tether/v1/{tree}/{record}/{field}")
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("envelope is too short or has an unknown version")]
    Malformed,
    #[error("envelope was sealed with another master key (key id {0})")]
    OtherKey(String),
    #[error("envelope failed its integrity check")]
    Integrity,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot get random bytes for a nonce: {0}")]
pub struct SealError(getrandom::Error);

pub fn seal(key: &MasterKey, aad: &str, plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(SealError)?;
    let ciphertext = key
        .cipher()
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: aad.as_bytes(),
            },
        )
        // XChaCha20-Poly1305 encryption fails only for messages over 256 GiB.
        .unwrap_or_default();
    let mut out = Vec::with_capacity(HEADER_LEN + ciphertext.len());
    out.push(VERSION);
    out.extend_from_slice(&key.id);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

pub fn open(key: &MasterKey, aad: &str, envelope: &[u8]) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    if envelope.len() < HEADER_LEN + TAG_LEN || envelope[0] != VERSION {
        return Err(OpenError::Malformed);
    }
    let key_id = &envelope[1..1 + KEY_ID_LEN];
    if key_id != key.id {
        return Err(OpenError::OtherKey(hex(key_id)));
    }
    let nonce = XNonce::from_slice(&envelope[1 + KEY_ID_LEN..HEADER_LEN]);
    key.cipher()
        .decrypt(
            nonce,
            Payload {
                msg: &envelope[HEADER_LEN..],
                aad: aad.as_bytes(),
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| OpenError::Integrity)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(byte: u8) -> MasterKey {
        MasterKey::from_bytes(Zeroizing::new([byte; KEY_LEN]))
    }

    #[test]
    fn layout_is_as_documented() {
        let k = key(1);
        let sealed = seal(&k, "tether/v1/secrets/web1/credential", b"hello").unwrap();
        assert_eq!(sealed.len(), 1 + 8 + 24 + 5 + 16);
        assert_eq!(sealed[0], VERSION);
        assert_eq!(&sealed[1..9], &k.id());
        assert!(!sealed.windows(5).any(|w| w == b"hello"));
    }

    #[test]
    fn nonces_are_fresh() {
        let k = key(1);
        let a = seal(&k, "a", b"same").unwrap();
        let b = seal(&k, "a", b"same").unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn aad_swap_fails() {
        let k = key(1);
        let sealed = seal(&k, &aad("secrets", "web1", "credential"), b"pw").unwrap();
        assert_eq!(
            open(&k, &aad("secrets", "web2", "credential"), &sealed),
            Err(OpenError::Integrity)
        );
        assert_eq!(
            open(&k, &aad("profiles", "web1", "credential"), &sealed),
            Err(OpenError::Integrity)
        );
        assert_eq!(
            open(&k, &aad("secrets", "web1", "record"), &sealed),
            Err(OpenError::Integrity)
        );
        assert_eq!(
            open(&k, &aad("secrets", "web1", "credential"), &sealed)
                .unwrap()
                .as_slice(),
            b"pw"
        );
    }

    #[test]
    fn other_key_is_named_not_guessed() {
        let sealed = seal(&key(1), "a", b"x").unwrap();
        assert!(matches!(
            open(&key(2), "a", &sealed),
            Err(OpenError::OtherKey(_))
        ));
    }

    #[test]
    fn truncated_and_unknown_versions_are_malformed() {
        let k = key(1);
        let mut sealed = seal(&k, "a", b"x").unwrap();
        assert_eq!(
            open(&k, "a", &sealed[..HEADER_LEN + TAG_LEN - 1]),
            Err(OpenError::Malformed)
        );
        sealed[0] = 2;
        assert_eq!(open(&k, "a", &sealed), Err(OpenError::Malformed));
        assert_eq!(open(&k, "a", &[]), Err(OpenError::Malformed));
    }

    proptest! {
        #[test]
        fn round_trip(plain in proptest::collection::vec(any::<u8>(), 0..2048), record in "[a-z0-9]{1,12}") {
            let k = key(7);
            let aad = aad("secrets", &record, "credential");
            let sealed = seal(&k, &aad, &plain).unwrap();
            let opened = open(&k, &aad, &sealed).unwrap();
            prop_assert_eq!(opened.as_slice(), plain.as_slice());
        }

        #[test]
        fn any_flipped_bit_is_detected(plain in proptest::collection::vec(any::<u8>(), 1..256), index in any::<prop::sample::Index>(), bit in 0u8..8) {
            let k = key(7);
            let mut sealed = seal(&k, "a", &plain).unwrap();
            let i = index.index(sealed.len());
            sealed[i] ^= 1 << bit;
            prop_assert!(open(&k, "a", &sealed).is_err());
        }

        #[test]
        fn open_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = open(&key(7), "a", &bytes);
        }
    }
}
