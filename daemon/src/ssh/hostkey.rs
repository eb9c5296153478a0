//! Host-key fingerprints, in OpenSSH's `SHA256:<base64>` form.

use russh::keys::{HashAlg, PublicKey};

use crate::store::KeyInfo;

pub fn key_info(key: &PublicKey) -> KeyInfo {
    KeyInfo {
        algorithm: key.algorithm().as_str().to_owned(),
        fingerprint: key.fingerprint(HashAlg::Sha256).to_string(),
    }
}

/// Checks a fingerprint typed by a person: `SHA256:` and 43 characters of
/// unpadded base64.
pub fn valid_fingerprint(fingerprint: &str) -> bool {
    fingerprint.strip_prefix("SHA256:").is_some_and(|b64| {
        b64.len() == 43
            && b64
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_look_like_openssh() {
        let key = PublicKey::from_openssh(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHNzZTdNA2Je5Qh1yrgtQc0IZ5rvgMrNQ8EXPkhOi8Tq",
        )
        .unwrap();
        let info = key_info(&key);
        assert_eq!(info.algorithm, "ssh-ed25519");
        assert!(valid_fingerprint(&info.fingerprint), "{}", info.fingerprint);
        assert!(!valid_fingerprint("MD5:aa"));
        assert!(!valid_fingerprint("SHA256:short"));
    }
}
