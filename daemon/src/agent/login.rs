//! What the agent signs: a login (RFC 4252 §7, and OpenSSH's
//! `publickey-hostbound-v00@openssh.com`) for a session bound to a server,
//! with the key of one of the caller's profiles.
//!
//! The data comes from a program of the caller's; it is parsed with
//! ssh-encoding, and anything that is not exactly one login request is not
//! signed.

use russh::keys::PrivateKey;
use russh::keys::signature::Signer;
use russh::keys::ssh_encoding::{Decode, Encode};
use russh::keys::ssh_key::private::KeypairData;
use russh::keys::ssh_key::{HashAlg, Signature};

/// SSH_MSG_USERAUTH_REQUEST.
const USERAUTH_REQUEST: u8 = 50;
const PUBLICKEY: &str = "publickey";
const PUBLICKEY_HOSTBOUND: &str = "publickey-hostbound-v00@openssh.com";
/// The agent's sign-request flags for RSA (PROTOCOL.agent / the draft).
const RSA_SHA2_256: u32 = 2;
const RSA_SHA2_512: u32 = 4;

/// A login request, as the client asks the agent to sign it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    pub session_id: Vec<u8>,
    pub user: String,
    /// The public key blob the login offers.
    pub key: Vec<u8>,
    /// The server's host key blob, for a host-bound login.
    pub host_key: Option<Vec<u8>>,
}

/// `data` as a public-key login request with a signature to come, or why
/// it is not one.
pub fn parse_login(data: &[u8]) -> Result<Login, &'static str> {
    let mut reader = data;
    let not_login = "not a login request";
    let session_id = Vec::<u8>::decode(&mut reader).map_err(|_| not_login)?;
    let kind = u8::decode(&mut reader).map_err(|_| not_login)?;
    if kind != USERAUTH_REQUEST {
        return Err(not_login);
    }
    let user = String::decode(&mut reader).map_err(|_| not_login)?;
    let service = String::decode(&mut reader).map_err(|_| not_login)?;
    if service != "ssh-connection" {
        return Err("a login for another service than ssh-connection");
    }
    let method = String::decode(&mut reader).map_err(|_| not_login)?;
    let signed = bool::decode(&mut reader).map_err(|_| not_login)?;
    if !signed {
        return Err(not_login);
    }
    let _algorithm = String::decode(&mut reader).map_err(|_| not_login)?;
    let key = Vec::<u8>::decode(&mut reader).map_err(|_| not_login)?;
    let host_key = match method.as_str() {
        PUBLICKEY => None,
        PUBLICKEY_HOSTBOUND => Some(Vec::<u8>::decode(&mut reader).map_err(|_| not_login)?),
        _ => return Err("a login by another method than publickey"),
    };
    if !reader.is_empty() {
        return Err("a login request with data after it");
    }
    Ok(Login {
        session_id,
        user,
        key,
        host_key,
    })
}

/// The public key blob of a private key in OpenSSH format.
pub fn public_blob(key: &PrivateKey) -> Option<Vec<u8>> {
    key.public_key().key_data().encode_vec().ok()
}

/// Signs `data` with `key`, as the agent protocol answers: the signature
/// encoded with its algorithm. RSA signs with SHA-2 as `flags` ask; a
/// SHA-1 signature (`ssh-rsa`) is refused.
pub fn sign(key: &PrivateKey, data: &[u8], flags: u32) -> Result<Vec<u8>, &'static str> {
    let signature: Signature = match key.key_data() {
        KeypairData::Rsa(rsa) => {
            let hash = if flags & RSA_SHA2_512 != 0 {
                HashAlg::Sha512
            } else if flags & RSA_SHA2_256 != 0 {
                HashAlg::Sha256
            } else {
                return Err("an RSA signature with SHA-1 (ssh-rsa), which tether does not make");
            };
            Signer::try_sign(&(rsa, Some(hash)), data).map_err(|_| "the key could not sign")?
        }
        keypair => Signer::try_sign(keypair, data).map_err(|_| "the key could not sign")?,
    };
    signature.encode_vec().map_err(|_| "the key could not sign")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(method: &str, extra: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        b"session".as_slice().encode(&mut out).unwrap();
        USERAUTH_REQUEST.encode(&mut out).unwrap();
        "deploy".encode(&mut out).unwrap();
        "ssh-connection".encode(&mut out).unwrap();
        method.encode(&mut out).unwrap();
        true.encode(&mut out).unwrap();
        "ssh-ed25519".encode(&mut out).unwrap();
        b"key blob".as_slice().encode(&mut out).unwrap();
        for field in extra {
            field.encode(&mut out).unwrap();
        }
        out
    }

    #[test]
    fn logins_are_read_and_everything_else_is_not() {
        assert_eq!(
            parse_login(&login(PUBLICKEY, &[])),
            Ok(Login {
                session_id: b"session".to_vec(),
                user: "deploy".into(),
                key: b"key blob".to_vec(),
                host_key: None,
            })
        );
        let bound = parse_login(&login(PUBLICKEY_HOSTBOUND, &[b"host key"])).unwrap();
        assert_eq!(bound.host_key.as_deref(), Some(b"host key".as_slice()));
        assert!(parse_login(&login(PUBLICKEY_HOSTBOUND, &[])).is_err());
        assert!(parse_login(&login(PUBLICKEY, &[b"trailing"])).is_err());
        assert!(parse_login(&login("password", &[])).is_err());
        // What `ssh-keygen -Y sign` asks for.
        assert!(parse_login(b"SSHSIG\0\0\0\x04file").is_err());
        assert!(parse_login(b"").is_err());
        let mut other_service = login(PUBLICKEY, &[]);
        let at = other_service
            .windows(14)
            .position(|w| w == b"ssh-connection")
            .unwrap();
        other_service[at..at + 3].copy_from_slice(b"xyz");
        assert!(parse_login(&other_service).is_err());
    }

    #[test]
    fn signatures_verify() {
        use russh::keys::signature::Verifier;
        let (parsed, _) = crate::ssh::keys::generate("test").unwrap();
        let key = russh::keys::decode_secret_key(&parsed.openssh, None).unwrap();
        let bytes = sign(&key, b"data", 0).unwrap();
        let signature = Signature::decode(&mut bytes.as_slice()).unwrap();
        let public = key.public_key().key_data();
        assert!(Verifier::verify(public, b"data", &signature).is_ok());
        assert!(Verifier::verify(public, b"other", &signature).is_err());
        assert!(public_blob(&key).is_some());
    }
}
