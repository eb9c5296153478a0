//! What a request says about a profile, checked before anything connects:
//! names, hosts, users, ports, timeouts, credentials, host-key policies.

use super::*;
use crate::ftp::FtpFailure;
use crate::ftp::tls::Trust as FtpTrust;
use crate::store::TlsCa;
use tether_api::types::{Protocol, certificate_fingerprint};

pub fn check_name(name: &str) -> Result<(), Error> {
    validate_profile_name(name).map_err(Error::BadRequest)
}

pub(in crate::server) fn check_host(host: &str) -> Result<(), Error> {
    let ok = !host.is_empty()
        && host.len() <= 253
        && !host.starts_with('-')
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_' | '%'))
        // A `%` only as an IPv6 address's zone (`fe80::1%eth0`).
        && host
            .split_once('%')
            .is_none_or(|(ip, zone)| ip.contains(':') && !zone.is_empty() && !zone.contains('%'));
    if ok {
        Ok(())
    } else {
        Err(Error::BadRequest(format!(
            "invalid host {host:?}: give a host name or an IP address"
        )))
    }
}

/// A per-profile timeout: 1 second to 1 hour.
pub(in crate::server) fn check_secs(field: &str, value: Option<u64>) -> Result<Option<u64>, Error> {
    match value {
        Some(secs) if !(1..=3600).contains(&secs) => Err(Error::BadRequest(format!(
            "{field} must be 1 to 3600 seconds"
        ))),
        other => Ok(other),
    }
}

pub(in crate::server) fn check_user(user: &str) -> Result<(), Error> {
    let ok = !user.is_empty()
        && user.len() <= 256
        && !user.chars().any(|c| c.is_control() || c.is_whitespace());
    if ok {
        Ok(())
    } else {
        Err(Error::BadRequest(format!("invalid user name {user:?}")))
    }
}

/// A credential from a request, checked, as it is stored.
pub(in crate::server) struct Checked {
    pub(in crate::server) credential: Credential,
    pub(in crate::server) auth: AuthKind,
    pub(in crate::server) public_key: Option<KeyInfo>,
    pub(in crate::server) certificate: Option<String>,
}

/// Checks a credential from a request and turns it into what is stored.
pub(in crate::server) fn new_credential(credential: &NewCredential) -> Result<Checked, Error> {
    let password_of = |password: &tether_api::secret::Secret| {
        if password.is_empty() {
            return Err(Error::BadRequest("the password is empty".into()));
        }
        Ok(Zeroizing::new(password.expose().to_owned()))
    };
    Ok(match credential {
        NewCredential::PrivateKey {
            key,
            passphrase,
            password,
            certificate,
        } => {
            let parsed =
                keys::parse_private_key(key.expose(), passphrase.as_ref().map(|p| p.expose()))?;
            let certificate = certificate
                .as_deref()
                .map(|text| keys::check_certificate(text, &parsed.public))
                .transpose()?;
            let (credential, auth) = match password {
                Some(password) => (
                    Credential::KeyAndPassword {
                        key: parsed.openssh,
                        password: password_of(password)?,
                    },
                    AuthKind::KeyAndPassword,
                ),
                None => (Credential::PrivateKey(parsed.openssh), AuthKind::Key),
            };
            Checked {
                credential,
                auth,
                public_key: Some(parsed.public),
                certificate,
            }
        }
        NewCredential::Password { password } => Checked {
            credential: Credential::Password(password_of(password)?),
            auth: AuthKind::Password,
            public_key: None,
            certificate: None,
        },
    })
}

/// How a verifying login trusts the server: an SSH host-key policy, or an
/// FTPS certificate policy (plain FTP trusts nothing and proves nothing).
pub(in crate::server) enum Proof {
    Ssh(Trust),
    Ftp(FtpTrust),
}

impl Proof {
    /// Whether it accepts a key or certificate that `pinned` does not hold.
    pub(in crate::server) fn takes_new_key(&self, pinned: &[String]) -> bool {
        match self {
            Proof::Ssh(Trust::AcceptAny) | Proof::Ftp(FtpTrust::AcceptAny) => true,
            Proof::Ssh(Trust::Pinned(keys)) | Proof::Ftp(FtpTrust::Pinned(keys)) => {
                keys.iter().any(|k| !pinned.contains(k))
            }
            Proof::Ftp(FtpTrust::Authorities(_)) => false,
        }
    }
}

/// The trust a request's policy asks for, for a profile speaking
/// `protocol`.
pub(in crate::server) fn proof_for(
    protocol: Protocol,
    policy: &HostKeyPolicy,
) -> Result<Proof, Error> {
    if protocol.is_ssh() {
        return trust_for(policy).map(Proof::Ssh);
    }
    Ok(Proof::Ftp(match policy {
        HostKeyPolicy::Pin { fingerprint } => FtpTrust::Pinned(vec![
            certificate_fingerprint(fingerprint).map_err(Error::BadRequest)?,
        ]),
        HostKeyPolicy::AcceptNew => FtpTrust::AcceptAny,
        HostKeyPolicy::Ca { pem } => {
            let ca = match pem {
                Some(pem) => TlsCa::Pem(pem.clone()),
                None => TlsCa::System,
            };
            crate::ftp::tls::check_authorities(&ca).map_err(Error::BadRequest)?;
            FtpTrust::Authorities(ca)
        }
    }))
}

/// What a profile speaking `protocol` may be given: FTP has passwords
/// only, and plain FTP only where the caller said it knows.
pub(in crate::server) fn check_protocol(
    protocol: Protocol,
    allow_plaintext: bool,
    credential: &Checked,
) -> Result<(), Error> {
    if protocol == Protocol::Ftp && !allow_plaintext {
        return Err(Error::BadRequest(
            "plain FTP sends the password across the network in clear, where anyone on the \
             path can read it: use --protocol ftps (or ftps-implicit), or pass \
             --allow-plaintext if that is acceptable on this network"
                .into(),
        ));
    }
    if protocol.is_ftp() && credential.auth != AuthKind::Password {
        return Err(Error::BadRequest(
            "an FTP profile logs in with a password: give --password-stdin, not a key".into(),
        ));
    }
    Ok(())
}

pub(in crate::server) fn trust_for(policy: &HostKeyPolicy) -> Result<Trust, Error> {
    match policy {
        HostKeyPolicy::Ca { .. } => Err(Error::BadRequest(
            "--ca checks an FTPS server's certificate; an SSH server is trusted by its host key"
                .into(),
        )),
        HostKeyPolicy::Pin { fingerprint } => {
            if !hostkey::valid_fingerprint(fingerprint) {
                return Err(Error::BadRequest(format!(
                    "{fingerprint:?} is not a host key fingerprint: expected SHA256: and 43 base64 characters, \
                     as `ssh-keygen -lf` prints"
                )));
            }
            Ok(Trust::Pinned(vec![fingerprint.clone()]))
        }
        HostKeyPolicy::AcceptNew => Ok(Trust::AcceptAny),
    }
}

/// A mismatch against a fingerprint the request itself gave is a wrong
/// fingerprint, not a changed key: say so.
pub(in crate::server) fn not_as_given(error: Error, policy: &HostKeyPolicy) -> Error {
    match (error, policy) {
        (
            Error::Ssh(SshError::HostKeyMismatch { addr, actual, .. }),
            HostKeyPolicy::Pin { fingerprint },
        ) => Error::HostKeyNotAsGiven {
            addr,
            given: fingerprint.clone(),
            actual,
        },
        (
            Error::Ftp(FtpFailure::CertificateMismatch { addr, actual, .. }),
            HostKeyPolicy::Pin { fingerprint },
        ) => Error::CertificateNotAsGiven {
            addr,
            given: certificate_fingerprint(fingerprint).unwrap_or_else(|_| fingerprint.clone()),
            actual,
        },
        (error, _) => error,
    }
}

pub(in crate::server) fn check_port(port: u16) -> Result<(), Error> {
    if port == 0 {
        Err(Error::BadRequest("port 0 is not a port".into()))
    } else {
        Ok(())
    }
}
