//! TLS for FTPS: the server's certificate pinned like an SSH host key (its
//! SHA-256, as `openssl x509 -fingerprint -sha256` prints it), or checked
//! against certificate authorities with the host name, as a browser does.
//!
//! The check runs inside the handshake (`Verifier`): a certificate that
//! is not trusted fails it, so the control connection never carries a
//! `USER` or `PASS`. Whatever the outcome, the verifier keeps the
//! fingerprint it saw, for the error message and for `profile add`.
//!
//! One [`rustls::ClientConfig`] serves a control connection and all of its
//! data connections, so its session cache lets the data connections resume
//! the control connection's TLS session, which servers such as vsftpd
//! (`require_ssl_reuse=YES`) demand. Profiles never share a config.

use std::sync::{Arc, Mutex};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};
use tether_api::types::{CERTIFICATE_ALGORITHM, hex_with_colons};

use crate::store::{KeyInfo, TlsCa};

/// Which certificates to accept.
#[derive(Debug, Clone)]
pub enum Trust {
    /// Only these fingerprints (hex with colons).
    Pinned(Vec<String>),
    /// Any certificate: only for learning one with the caller's consent.
    AcceptAny,
    /// A chain to one of these authorities, valid for the host name.
    Authorities(TlsCa),
}

/// A certificate's fingerprint, as it is pinned and shown.
pub fn fingerprint(der: &[u8]) -> String {
    hex_with_colons(&Sha256::digest(der))
}

pub fn certificate_info(der: &[u8]) -> KeyInfo {
    KeyInfo {
        algorithm: CERTIFICATE_ALGORITHM.to_owned(),
        fingerprint: fingerprint(der),
    }
}

/// What the handshake showed of the server.
#[derive(Debug, Clone, Default)]
pub struct Seen(Arc<Mutex<Option<Shown>>>);

#[derive(Debug, Clone)]
pub struct Shown {
    pub certificate: KeyInfo,
    /// Why the certificate was not trusted, where it was not.
    pub refused: Option<String>,
}

impl Seen {
    pub fn get(&self) -> Option<Shown> {
        self.0.lock().ok().and_then(|seen| seen.clone())
    }

    fn set(&self, shown: Shown) {
        if let Ok(mut seen) = self.0.lock() {
            *seen = Some(shown);
        }
    }
}

#[derive(Debug)]
struct Verifier {
    pins: Option<Vec<String>>,
    authorities: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
    seen: Seen,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let certificate = certificate_info(end_entity);
        let refused = match (&self.authorities, &self.pins) {
            (Some(authorities), _) => authorities
                .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
                .err()
                .map(|error| error.to_string()),
            (None, Some(pins)) if !pins.contains(&certificate.fingerprint) => {
                Some("it is not the pinned certificate".to_owned())
            }
            (None, _) => None,
        };
        self.seen.set(Shown {
            certificate,
            refused: refused.clone(),
        });
        match refused {
            None => Ok(ServerCertVerified::assertion()),
            Some(_) => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The authorities `ca` names: the system's store, or the PEM given.
fn roots(ca: &TlsCa) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    let certificates: Vec<CertificateDer<'static>> = match ca {
        TlsCa::System => {
            let found = rustls_native_certs::load_native_certs();
            if found.certs.is_empty() {
                return Err(format!(
                    "no system certificate authorities could be loaded ({} errors); give the \
                     authority with --ca FILE",
                    found.errors.len()
                ));
            }
            found.certs
        }
        TlsCa::Pem(pem) => CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| format!("the certificate authority file is not PEM: {e}"))?,
    };
    let (added, _) = roots.add_parsable_certificates(certificates);
    if added == 0 {
        return Err("no usable certificate authority in what was given".into());
    }
    Ok(roots)
}

/// Checks a CA file's content before it is stored.
pub fn check_authorities(ca: &TlsCa) -> Result<(), String> {
    roots(ca).map(|_| ())
}

/// A client config for one control connection and its data connections,
/// and where its verifier keeps what it saw.
pub fn client_config(trust: &Trust) -> Result<(Arc<ClientConfig>, Seen), String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let seen = Seen::default();
    let (pins, authorities) = match trust {
        Trust::Pinned(pins) => (Some(pins.clone()), None),
        Trust::AcceptAny => (None, None),
        Trust::Authorities(ca) => {
            let verifier =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots(ca)?), provider.clone())
                    .build()
                    .map_err(|e| e.to_string())?;
            (None, Some(verifier))
        }
    };
    let verifier = Verifier {
        pins,
        authorities,
        provider: provider.clone(),
        seen: seen.clone(),
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok((Arc::new(config), seen))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_read_like_openssl() {
        let shown = fingerprint(b"not really a certificate");
        assert_eq!(shown.len(), 32 * 3 - 1);
        assert!(shown.split(':').all(|pair| {
            pair.len() == 2
                && pair
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
        }));
        assert_eq!(
            tether_api::types::certificate_fingerprint(&shown.to_lowercase()).as_deref(),
            Ok(shown.as_str())
        );
    }

    #[test]
    fn authorities_must_be_pem_certificates() {
        assert!(check_authorities(&TlsCa::Pem("hello".into())).is_err());
        assert!(check_authorities(&TlsCa::Pem(String::new())).is_err());
    }
}
