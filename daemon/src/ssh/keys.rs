//! Checking a private key handed to `profile add`: it must parse, decrypt
//! with the given passphrase, and be of a type tether signs with. What is
//! stored is the decrypted key in OpenSSH format, sealed.

use russh::keys::PrivateKey;
use russh::keys::ssh_key::LineEnding;
use zeroize::Zeroizing;

use super::SshError;
use super::hostkey::key_info;
use crate::store::KeyInfo;

pub struct ParsedKey {
    pub openssh: Zeroizing<String>,
    pub public: KeyInfo,
}

pub fn parse_private_key(text: &str, passphrase: Option<&str>) -> Result<ParsedKey, SshError> {
    let key = match russh::keys::decode_secret_key(text, passphrase) {
        Ok(key) => key,
        Err(russh::keys::Error::KeyIsEncrypted) => {
            return Err(SshError::BadPassphrase(
                "the private key is encrypted: give its passphrase (tether profile add --key-passphrase-stdin)".into(),
            ));
        }
        Err(error) => {
            let encrypted = PrivateKey::from_openssh(text).is_ok_and(|key| key.is_encrypted());
            return Err(if encrypted && passphrase.is_some() {
                SshError::BadPassphrase("the passphrase does not decrypt the private key".into())
            } else if encrypted {
                SshError::BadPassphrase(
                    "the private key is encrypted: give its passphrase (tether profile add --key-passphrase-stdin)"
                        .into(),
                )
            } else {
                SshError::InvalidKey(format!(
                    "not a supported private key (OpenSSH, PKCS#1 or PKCS#8; ed25519, ecdsa or rsa): {}",
                    describe(&error)
                ))
            });
        }
    };
    let public = key_info(key.public_key());
    let openssh = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| SshError::InvalidKey(format!("cannot re-encode the key: {e}")))?;
    Ok(ParsedKey { openssh, public })
}

/// A short reason that never quotes key material.
fn describe(error: &russh::keys::Error) -> String {
    match error {
        russh::keys::Error::UnsupportedKeyType {
            key_type_string, ..
        } => {
            format!("unsupported key type {key_type_string}")
        }
        russh::keys::Error::CouldNotReadKey => "no private key block found".into(),
        russh::keys::Error::Decode(_) => "bad base64".into(),
        _ => "malformed key".into(),
    }
}
