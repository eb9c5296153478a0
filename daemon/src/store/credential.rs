//! The plaintext form of a stored credential, as it exists between opening
//! its envelope and the SSH handshake that needs it.
//!
//! Encoding inside the envelope: one tag byte (1 = OpenSSH private key in
//! PEM, unencrypted; 2 = password) followed by the UTF-8 text. No serde: a
//! serializer would leave copies in intermediate buffers.

use zeroize::Zeroizing;

/// A usable secret. No `Debug`, no `Display`, no `Clone`: it is opened for
/// one handshake and dropped.
pub enum Credential {
    /// An OpenSSH private key, decrypted.
    PrivateKey(Zeroizing<String>),
    Password(Zeroizing<String>),
    /// Both, for a server that asks for a key and a password.
    KeyAndPassword {
        key: Zeroizing<String>,
        password: Zeroizing<String>,
    },
}

const TAG_KEY: u8 = 1;
const TAG_PASSWORD: u8 = 2;
/// Then the key's length (4 bytes, big-endian), the key, the password.
const TAG_KEY_AND_PASSWORD: u8 = 3;

impl Credential {
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let (tag, text) = match self {
            Credential::PrivateKey(pem) => (TAG_KEY, pem),
            Credential::Password(password) => (TAG_PASSWORD, password),
            Credential::KeyAndPassword { key, password } => {
                let mut out = Zeroizing::new(Vec::with_capacity(5 + key.len() + password.len()));
                out.push(TAG_KEY_AND_PASSWORD);
                out.extend_from_slice(&(key.len() as u32).to_be_bytes());
                out.extend_from_slice(key.as_bytes());
                out.extend_from_slice(password.as_bytes());
                return out;
            }
        };
        let mut out = Zeroizing::new(Vec::with_capacity(1 + text.len()));
        out.push(tag);
        out.extend_from_slice(text.as_bytes());
        out
    }

    /// The private key, where there is one.
    pub fn key(&self) -> Option<&str> {
        match self {
            Credential::PrivateKey(key) | Credential::KeyAndPassword { key, .. } => Some(key),
            Credential::Password(_) => None,
        }
    }

    /// The password, where there is one.
    pub fn password(&self) -> Option<&str> {
        match self {
            Credential::Password(password) | Credential::KeyAndPassword { password, .. } => {
                Some(password)
            }
            Credential::PrivateKey(_) => None,
        }
    }

    /// A second copy, zeroized on drop like the first: for a credential
    /// that came with a request and is both verified and stored.
    pub fn copy(&self) -> Credential {
        match self {
            Credential::PrivateKey(pem) => Credential::PrivateKey(pem.clone()),
            Credential::Password(password) => Credential::Password(password.clone()),
            Credential::KeyAndPassword { key, password } => Credential::KeyAndPassword {
                key: key.clone(),
                password: password.clone(),
            },
        }
    }

    pub fn decode(bytes: &[u8]) -> Option<Credential> {
        let (&tag, rest) = bytes.split_first()?;
        if tag == TAG_KEY_AND_PASSWORD {
            let (len, rest) = rest.split_first_chunk::<4>()?;
            let len = u32::from_be_bytes(*len) as usize;
            if len > rest.len() {
                return None;
            }
            let (key, password) = rest.split_at(len);
            return Some(Credential::KeyAndPassword {
                key: Zeroizing::new(std::str::from_utf8(key).ok()?.to_owned()),
                password: Zeroizing::new(std::str::from_utf8(password).ok()?.to_owned()),
            });
        }
        let text = Zeroizing::new(std::str::from_utf8(rest).ok()?.to_owned());
        match tag {
            TAG_KEY => Some(Credential::PrivateKey(text)),
            TAG_PASSWORD => Some(Credential::Password(text)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_unknown_tags() {
        let pw = Credential::Password(Zeroizing::new("p ä".into()));
        match Credential::decode(&pw.encode()) {
            Some(Credential::Password(p)) => assert_eq!(p.as_str(), "p ä"),
            _ => panic!("password did not round-trip"),
        }
        let both = Credential::KeyAndPassword {
            key: Zeroizing::new("-----BEGIN KEY-----".into()),
            password: Zeroizing::new("pw ß".into()),
        };
        match Credential::decode(&both.encode()) {
            Some(Credential::KeyAndPassword { key, password }) => {
                assert_eq!(key.as_str(), "-----BEGIN KEY-----");
                assert_eq!(password.as_str(), "pw ß");
            }
            _ => panic!("key and password did not round-trip"),
        }
        assert!(
            Credential::decode(&[3, 0, 0, 0, 9, b'x']).is_none(),
            "a length past the end"
        );
        assert!(Credential::decode(&[]).is_none());
        assert!(Credential::decode(&[3, b'x']).is_none());
        assert!(Credential::decode(&[1, 0xff]).is_none());
    }
}
