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
}

const TAG_KEY: u8 = 1;
const TAG_PASSWORD: u8 = 2;

impl Credential {
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let (tag, text) = match self {
            Credential::PrivateKey(pem) => (TAG_KEY, pem),
            Credential::Password(password) => (TAG_PASSWORD, password),
        };
        let mut out = Zeroizing::new(Vec::with_capacity(1 + text.len()));
        out.push(tag);
        out.extend_from_slice(text.as_bytes());
        out
    }

    /// A second copy, zeroized on drop like the first: for a credential
    /// that came with a request and is both verified and stored.
    pub fn copy(&self) -> Credential {
        match self {
            Credential::PrivateKey(pem) => Credential::PrivateKey(pem.clone()),
            Credential::Password(password) => Credential::Password(password.clone()),
        }
    }

    pub fn decode(bytes: &[u8]) -> Option<Credential> {
        let (&tag, text) = bytes.split_first()?;
        let text = Zeroizing::new(std::str::from_utf8(text).ok()?.to_owned());
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
        assert!(Credential::decode(&[]).is_none());
        assert!(Credential::decode(&[3, b'x']).is_none());
        assert!(Credential::decode(&[1, 0xff]).is_none());
    }
}
