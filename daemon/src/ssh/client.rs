//! Connecting and authenticating.
//!
//! The host key is checked inside the key exchange ([`ClientHandler`]): a key
//! that is not pinned fails the handshake, so authentication never starts.
//! [`login`] then asks its [`Witness`] for the credential, naming the
//! destination the server just proved: the witness puts it on record first,
//! so no credential is ever sent off the record.
//! Authentication offers exactly the one stored credential: a key, or a
//! password (sent as `password`, or answering a single
//! `keyboard-interactive` prompt when that is all the server allows).

use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::{self, AuthResult, Config, Handle, Handler, KeyboardInteractiveAuthResponse};
use russh::keys::{Algorithm, EcdsaCurve, HashAlg, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{MethodKind, Preferred, cipher, kex};
use tokio::net::TcpStream;

use super::SshError;
use super::hostkey::key_info;
use crate::config::SshSettings;
use crate::store::ProfileRecord;
use crate::store::{Credential, KeyInfo};

/// Which host keys to accept.
#[derive(Debug, Clone)]
pub enum Trust {
    /// Only these `SHA256:` fingerprints.
    Pinned(Vec<String>),
    /// Any key: only for learning a key with the caller's explicit consent.
    AcceptAny,
}

#[derive(Debug)]
pub enum HandlerError {
    Russh(russh::Error),
    HostKeyRejected,
}

impl From<russh::Error> for HandlerError {
    fn from(error: russh::Error) -> Self {
        HandlerError::Russh(error)
    }
}

pub struct ClientHandler {
    trust: Trust,
    seen: Arc<Mutex<Option<KeyInfo>>>,
}

impl Handler for ClientHandler {
    type Error = HandlerError;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, HandlerError> {
        // Certificates are not negotiated (no certificate algorithms are
        // offered); a server sending one anyway is judged by its key.
        let info = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key_info(key),
            PublicKeyOrCertificate::Certificate(cert) => {
                key_info(&russh::keys::PublicKey::from(cert.public_key().clone()))
            }
        };
        let accepted = match &self.trust {
            Trust::AcceptAny => true,
            Trust::Pinned(pins) => pins.contains(&info.fingerprint),
        };
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(info);
        }
        if accepted {
            Ok(true)
        } else {
            Err(HandlerError::HostKeyRejected)
        }
    }
}

pub type SshHandle = Handle<ClientHandler>;

pub struct Connected {
    pub handle: SshHandle,
    pub host_key: KeyInfo,
    pub addr: String,
}

/// Where a credential is about to be sent: the address it was stored for,
/// and the host key the server has just proved it holds.
#[derive(Debug, Clone)]
pub struct Destination {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub host_key: KeyInfo,
    /// The pool's number for the connection, when it is a pooled one.
    pub connection: Option<u64>,
}

/// How a login attempt ended, for the record.
pub struct LoginOutcome<'a, E> {
    pub host: &'a str,
    pub port: u16,
    /// The key the server showed, when it got that far.
    pub host_key: Option<&'a KeyInfo>,
    pub connection: Option<u64>,
    /// Whether the credential was offered to the server.
    pub sent: bool,
    pub result: Result<(), &'a E>,
}

/// Who stands between a proved server and its credential: the layer above,
/// which records where the credential goes and hands it over.
pub trait Witness: Sync {
    type Error: From<SshError> + Send;

    /// Called after the key exchange, before anything is sent: record that
    /// the credential goes to `to` and return it. An error stops the login.
    fn credential_for(
        &self,
        to: &Destination,
    ) -> impl Future<Output = Result<Credential, Self::Error>> + Send;

    /// Called once the attempt is over, whichever way it ended (except when
    /// [`Witness::credential_for`] itself refused).
    fn ended(&self, outcome: LoginOutcome<'_, Self::Error>) -> impl Future<Output = ()> + Send;
}

/// Connects to `host`:`port` trusting only what `trust` allows, then logs
/// in as `user` with the credential `witness` hands over for the server it
/// saw. On failure the connection is closed.
pub async fn login<W: Witness>(
    host: &str,
    port: u16,
    user: &str,
    trust: Trust,
    settings: &ConnectSettings,
    connection: Option<u64>,
    witness: &W,
) -> Result<Connected, W::Error> {
    let mut connected = match connect(host, port, trust, settings).await {
        Ok(connected) => connected,
        Err(error) => {
            let shown = match &error {
                SshError::HostKeyMismatch { actual, .. } => Some(actual.clone()),
                _ => None,
            };
            let error = W::Error::from(error);
            witness
                .ended(LoginOutcome {
                    host,
                    port,
                    host_key: shown.as_ref(),
                    connection,
                    sent: false,
                    result: Err(&error),
                })
                .await;
            return Err(error);
        }
    };
    let to = Destination {
        host: host.to_owned(),
        port,
        user: user.to_owned(),
        host_key: connected.host_key.clone(),
        connection,
    };
    let credential = match witness.credential_for(&to).await {
        Ok(credential) => credential,
        Err(error) => {
            hang_up(&connected).await;
            return Err(error);
        }
    };
    let authenticated = authenticate(&mut connected, user, &credential, settings).await;
    drop(credential);
    let result = authenticated.map_err(W::Error::from);
    witness
        .ended(LoginOutcome {
            host,
            port,
            host_key: Some(&to.host_key),
            connection,
            sent: true,
            result: result.as_ref().map(|_| ()),
        })
        .await;
    match result {
        Ok(()) => Ok(connected),
        Err(error) => {
            hang_up(&connected).await;
            Err(error)
        }
    }
}

/// Ends a connection politely; errors do not matter any more.
pub async fn hang_up(connected: &Connected) {
    let _ = connected
        .handle
        .disconnect(russh::Disconnect::ByApplication, "", "en")
        .await;
}

/// Algorithm preferences: curve25519 and AES-GCM first (AES-GCM is the
/// fastest cipher with AES-NI, and aes128-gcm is not in russh's default list),
/// SHA-1 nowhere.
pub fn preferred() -> Preferred {
    Preferred {
        kex: Cow::Borrowed(&[
            kex::CURVE25519,
            kex::CURVE25519_PRE_RFC_8731,
            kex::MLKEM768X25519_SHA256,
            kex::ECDH_SHA2_NISTP256,
            kex::ECDH_SHA2_NISTP384,
            kex::ECDH_SHA2_NISTP521,
            kex::DH_G16_SHA512,
            kex::DH_G14_SHA256,
            kex::EXTENSION_SUPPORT_AS_CLIENT,
            kex::EXTENSION_OPENSSH_STRICT_KEX_AS_CLIENT,
        ]),
        key: Cow::Borrowed(&[
            Algorithm::Ed25519,
            Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP256,
            },
            Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP384,
            },
            Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP521,
            },
            Algorithm::Rsa {
                hash: Some(HashAlg::Sha512),
            },
            Algorithm::Rsa {
                hash: Some(HashAlg::Sha256),
            },
        ]),
        cipher: Cow::Borrowed(&[
            cipher::AES_128_GCM,
            cipher::AES_256_GCM,
            cipher::CHACHA20_POLY1305,
            cipher::AES_256_CTR,
            cipher::AES_128_CTR,
        ]),
        ..Preferred::DEFAULT
    }
}

/// Timeouts for one connection: the daemon's defaults, overridden per profile.
#[derive(Debug, Clone, Copy)]
pub struct ConnectSettings {
    /// For the TCP connect plus key exchange, and again for authentication.
    pub connect_timeout: Duration,
    /// A keepalive is sent after this much silence; three unanswered ones end
    /// the connection.
    pub keepalive: Duration,
}

impl ConnectSettings {
    pub fn new(defaults: &SshSettings, profile: Option<&ProfileRecord>) -> Self {
        let connect = profile
            .and_then(|p| p.connect_timeout_secs)
            .unwrap_or(defaults.connect_timeout_secs);
        let keepalive = profile
            .and_then(|p| p.keepalive_secs)
            .unwrap_or(defaults.keepalive_secs);
        Self {
            connect_timeout: Duration::from_secs(connect),
            keepalive: Duration::from_secs(keepalive),
        }
    }
}

/// Unanswered keepalives before a connection is declared dead.
const KEEPALIVE_MAX: usize = 3;

fn client_config(settings: &ConnectSettings) -> Config {
    Config {
        preferred: preferred(),
        nodelay: true,
        window_size: 8 * 1024 * 1024,
        maximum_packet_size: 32 * 1024,
        keepalive_interval: Some(settings.keepalive),
        keepalive_max: KEEPALIVE_MAX,
        ..Config::default()
    }
}

/// Connects and completes the key exchange, accepting the host key only as
/// `trust` allows.
pub async fn connect(
    host: &str,
    port: u16,
    trust: Trust,
    settings: &ConnectSettings,
) -> Result<Connected, SshError> {
    let addr = format_addr(host, port);
    let expected = match &trust {
        Trust::Pinned(pins) => pins.clone(),
        Trust::AcceptAny => Vec::new(),
    };
    let seen = Arc::new(Mutex::new(None));
    let handler = ClientHandler {
        trust,
        seen: seen.clone(),
    };
    let handshake = async {
        let tcp = TcpStream::connect((host, port))
            .await
            .map_err(|source| SshError::Connect {
                addr: addr.clone(),
                source,
            })?;
        tcp.set_nodelay(true).map_err(|source| SshError::Connect {
            addr: addr.clone(),
            source,
        })?;
        client::connect_stream(Arc::new(client_config(settings)), tcp, handler)
            .await
            .map_err(|error| match error {
                HandlerError::HostKeyRejected => SshError::HostKeyMismatch {
                    profile: None,
                    addr: addr.clone(),
                    expected: expected.clone(),
                    actual: seen.lock().ok().and_then(|s| s.clone()).unwrap_or(KeyInfo {
                        algorithm: "unknown".into(),
                        fingerprint: "unknown".into(),
                    }),
                },
                HandlerError::Russh(error) => SshError::from_russh(&addr, error),
            })
    };
    let handle = with_timeout(
        &addr,
        settings.connect_timeout,
        "connect and key exchange",
        handshake,
    )
    .await?;
    let host_key = seen
        .lock()
        .ok()
        .and_then(|s| s.clone())
        .ok_or_else(|| SshError::Protocol {
            addr: addr.clone(),
            message: "the server showed no host key".into(),
        })?;
    Ok(Connected {
        handle,
        host_key,
        addr,
    })
}

pub fn format_addr(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

async fn with_timeout<T>(
    addr: &str,
    limit: Duration,
    stage: &'static str,
    future: impl Future<Output = Result<T, SshError>>,
) -> Result<T, SshError> {
    tokio::time::timeout(limit, future)
        .await
        .unwrap_or_else(|_| {
            Err(SshError::Timeout {
                addr: addr.to_owned(),
                secs: limit.as_secs(),
                stage,
            })
        })
}

/// How many keyboard-interactive rounds are answered before giving up; a
/// server asking more is not asking for a password.
const MAX_KBD_ROUNDS: usize = 4;

/// Authenticates with the one stored credential.
pub async fn authenticate(
    connected: &mut Connected,
    user: &str,
    credential: &Credential,
    settings: &ConnectSettings,
) -> Result<(), SshError> {
    let addr = connected.addr.clone();
    let handle = &mut connected.handle;
    let failed = |method: &'static str, hint: Option<String>| SshError::AuthFailed {
        user: user.to_owned(),
        addr: addr.clone(),
        method,
        hint,
    };
    let russh = |error| SshError::from_russh(&addr, error);
    let auth = async {
        match credential {
            Credential::PrivateKey(pem) => {
                let key = russh::keys::decode_secret_key(pem, None)
                    .map_err(|_| SshError::InvalidKey("the stored key no longer parses".into()))?;
                let hash = if key.algorithm().is_rsa() {
                    match handle.best_supported_rsa_hash().await.map_err(russh)? {
                        Some(Some(hash)) => Some(hash),
                        Some(None) => {
                            return Err(failed(
                                "public key",
                                Some("the server accepts RSA keys only with SHA-1 signatures (ssh-rsa), which tether refuses".into()),
                            ));
                        }
                        // No server-sig-algs extension: rsa-sha2-256 is the
                        // safe choice every OpenSSH since 7.2 accepts.
                        None => Some(HashAlg::Sha256),
                    }
                } else {
                    None
                };
                let result = handle
                    .authenticate_publickey(user, PrivateKeyWithHashAlg::new(Arc::new(key), hash))
                    .await
                    .map_err(russh)?;
                match result {
                    AuthResult::Success => Ok(()),
                    AuthResult::Failure { .. } => Err(failed("public key", None)),
                }
            }
            Credential::Password(password) => {
                // "none" tells which methods the server allows without
                // spending one of its MaxAuthTries.
                let methods = match handle.authenticate_none(user).await.map_err(russh)? {
                    AuthResult::Success => return Ok(()),
                    AuthResult::Failure {
                        remaining_methods, ..
                    } => remaining_methods,
                };
                if methods.contains(&MethodKind::Password) {
                    match handle
                        .authenticate_password(user, password.as_str())
                        .await
                        .map_err(russh)?
                    {
                        AuthResult::Success => Ok(()),
                        AuthResult::Failure { .. } => Err(failed("password", None)),
                    }
                } else if methods.contains(&MethodKind::KeyboardInteractive) {
                    keyboard_interactive(handle, user, password)
                        .await
                        .map_err(|e| match e {
                            KbdError::Russh(e) => russh(e),
                            KbdError::Refused(hint) => {
                                failed("password (keyboard-interactive)", hint)
                            }
                        })
                } else {
                    let offered: Vec<&str> = methods.iter().map(<&str>::from).collect();
                    Err(failed(
                        "password",
                        Some(format!(
                            "the server does not take passwords; it allows: {}",
                            offered.join(", ")
                        )),
                    ))
                }
            }
        }
    };
    with_timeout(&addr, settings.connect_timeout, "authentication", auth).await
}

enum KbdError {
    Russh(russh::Error),
    Refused(Option<String>),
}

async fn keyboard_interactive(
    handle: &mut SshHandle,
    user: &str,
    password: &str,
) -> Result<(), KbdError> {
    let mut response = handle
        .authenticate_keyboard_interactive_start(user, None)
        .await
        .map_err(KbdError::Russh)?;
    let mut answered = false;
    for _ in 0..MAX_KBD_ROUNDS {
        match response {
            KeyboardInteractiveAuthResponse::Success => return Ok(()),
            KeyboardInteractiveAuthResponse::Failure { .. } => return Err(KbdError::Refused(None)),
            KeyboardInteractiveAuthResponse::InfoRequest { prompts, .. } => {
                let answers = match prompts.len() {
                    0 => Vec::new(),
                    1 if !answered && !prompts[0].echo => {
                        answered = true;
                        vec![password.to_owned()]
                    }
                    n => {
                        return Err(KbdError::Refused(Some(format!(
                            "the server asks {n} question(s) beyond the password; tether answers only one password prompt"
                        ))));
                    }
                };
                response = handle
                    .authenticate_keyboard_interactive_respond(answers)
                    .await
                    .map_err(KbdError::Russh)?;
            }
        }
    }
    Err(KbdError::Refused(Some(
        "too many keyboard-interactive rounds".into(),
    )))
}
