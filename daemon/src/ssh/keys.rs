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

/// An OpenSSH user certificate, checked to be for `key` (its public key
/// must be the key's); the certificate line as stored.
pub fn check_certificate(text: &str, key: &KeyInfo) -> Result<String, SshError> {
    let line = text.trim();
    let cert = russh::keys::Certificate::from_openssh(line).map_err(|_| {
        SshError::InvalidKey(
            "not an OpenSSH user certificate (the KEY-cert.pub ssh-keygen -s writes)".into(),
        )
    })?;
    let certified = russh::keys::PublicKey::from(cert.public_key().clone());
    if key_info(&certified).fingerprint != key.fingerprint {
        return Err(SshError::InvalidKey(
            "the certificate is for another key than the one given".into(),
        ));
    }
    if cert.cert_type() != russh::keys::ssh_key::certificate::CertType::User {
        return Err(SshError::InvalidKey(
            "that is a host certificate, not a user certificate".into(),
        ));
    }
    Ok(line.to_owned())
}

/// What a stored certificate says, for `profile show`.
pub fn certificate_info(line: &str) -> Option<tether_api::types::CertificateInfo> {
    let cert = russh::keys::Certificate::from_openssh(line).ok()?;
    let ca = key_info(&russh::keys::PublicKey::from(cert.signature_key().clone()));
    Some(tether_api::types::CertificateInfo {
        key_id: cert.key_id().to_owned(),
        principals: cert.valid_principals().to_vec(),
        valid_after: cert.valid_after(),
        valid_before: cert.valid_before(),
        ca: tether_api::types::HostKeyInfo {
            algorithm: ca.algorithm,
            fingerprint: ca.fingerprint,
        },
    })
}

/// A new ed25519 key, made here from the system's random source: it never
/// exists anywhere but in the daemon and its store. With its public key as
/// an authorized_keys line (`ssh-ed25519 BASE64 comment`).
pub fn generate(comment: &str) -> Result<(ParsedKey, String), SshError> {
    use russh::keys::ssh_key::private::Ed25519Keypair;
    let mut seed = Zeroizing::new([0u8; 32]);
    getrandom::fill(seed.as_mut_slice())
        .map_err(|e| SshError::InvalidKey(format!("cannot generate a key: {e}")))?;
    let key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    let line = public_line(&key, comment)?;
    let openssh = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| SshError::InvalidKey(format!("cannot encode the key: {e}")))?;
    Ok((
        ParsedKey {
            openssh,
            public: key_info(key.public_key()),
        },
        line,
    ))
}

fn public_line(key: &PrivateKey, comment: &str) -> Result<String, SshError> {
    let mut public = key.public_key().clone();
    public.set_comment(comment);
    public
        .to_openssh()
        .map_err(|e| SshError::InvalidKey(format!("cannot encode the public key: {e}")))
}

/// The authorized_keys line of a stored private key's public half.
pub fn public_line_of(private_openssh: &str, comment: &str) -> Result<String, SshError> {
    let key = russh::keys::decode_secret_key(private_openssh, None)
        .map_err(|_| SshError::InvalidKey("the stored key no longer parses".into()))?;
    public_line(&key, comment)
}

#[cfg(test)]
mod generated {
    use super::*;

    #[test]
    fn a_generated_key_parses_back_to_itself() {
        let (key, line) = generate("tether:web1").unwrap();
        assert!(line.starts_with("ssh-ed25519 AAAA") && line.ends_with(" tether:web1"));
        let parsed = parse_private_key(&key.openssh, None).unwrap();
        assert_eq!(parsed.public, key.public);
        assert_eq!(public_line_of(&key.openssh, "tether:web1").unwrap(), line);
        let (other, _) = generate("x").unwrap();
        assert_ne!(other.public.fingerprint, key.public.fingerprint);
    }
}
