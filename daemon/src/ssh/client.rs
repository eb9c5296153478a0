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

use russh::client::{self, Config, Handle, Handler};
use russh::keys::{Algorithm, EcdsaCurve, HashAlg, PublicKeyOrCertificate};
use russh::{Preferred, cipher, kex};
use tokio::net::TcpStream;

use super::SshError;
use super::hostkey::key_info;
use crate::config::SshSettings;
use crate::store::KeyInfo;
use crate::store::ProfileRecord;
use crate::witness::{Destination, LoginOutcome, Witness};
use tether_api::types::Protocol;

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
    banner: Arc<Mutex<Option<String>>>,
    /// The server's identification string (`SSH-2.0-...`), once known.
    server_id: Arc<Mutex<String>>,
}

/// The most of a server's banner that is kept: a legal notice fits many
/// times over; a server cannot make the daemon hold more.
pub const MAX_BANNER: usize = 16 * 1024;

/// `text` cut to at most `max` bytes, at a character boundary.
fn truncated(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

impl Handler for ClientHandler {
    type Error = HandlerError;

    async fn auth_banner(
        &mut self,
        banner: &str,
        _session: &mut client::Session,
    ) -> Result<(), HandlerError> {
        // Kept for the person who opens a shell (and for `profile add`);
        // never mixed into a command's output. Escaped where it is shown.
        if let Ok(mut kept) = self.banner.lock() {
            let text = kept.get_or_insert_with(String::new);
            let room = MAX_BANNER.saturating_sub(text.len());
            text.push_str(truncated(banner, room));
        }
        Ok(())
    }

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

    async fn kex_done(
        &mut self,
        _shared_secret: Option<&[u8]>,
        _names: &russh::Names,
        session: &mut client::Session,
    ) -> Result<(), HandlerError> {
        if let Ok(mut id) = self.server_id.lock() {
            *id = String::from_utf8_lossy(session.remote_sshid()).into_owned();
        }
        Ok(())
    }
}

pub type SshHandle = Handle<ClientHandler>;

pub struct Connected {
    pub handle: SshHandle,
    pub host_key: KeyInfo,
    pub addr: String,
    banner: Arc<Mutex<Option<String>>>,
    server_id: Arc<Mutex<String>>,
    /// The jump host's channel this connection runs in, if any.
    pub via: Option<super::pool::Lease>,
}

impl Connected {
    /// The banner the server sent before login (RFC 4252, 5.4), if any.
    pub fn banner(&self) -> Option<String> {
        self.banner.lock().ok().and_then(|b| b.clone())
    }

    /// The server's identification string, `SSH-2.0-OpenSSH_9.2p1 ...`.
    pub fn server_id(&self) -> String {
        self.server_id
            .lock()
            .map(|id| id.clone())
            .unwrap_or_default()
    }
}

/// Where and as whom to log in.
#[derive(Debug, Clone, Copy)]
pub struct Account<'a> {
    /// The profile whose credential logs in.
    pub profile: &'a str,
    pub host: &'a str,
    pub port: u16,
    pub user: &'a str,
    /// An OpenSSH user certificate for the key, where the profile has one.
    pub certificate: Option<&'a str>,
}

/// A way to the server through another SSH server (a jump host, as
/// OpenSSH's `ProxyJump`): a `direct-tcpip` channel its connection opened
/// to the server's address. The server's host key is checked inside the
/// key exchange as on a direct connection: the jump host only carries
/// bytes it cannot read.
pub struct Tunnel {
    pub stream: russh::ChannelStream<russh::client::Msg>,
    /// The jump profile, for messages and the pool's listing.
    pub jump: String,
    /// The channel's claim on the jump's connection: held as long as the
    /// connection through it lives.
    pub lease: super::pool::Lease,
}

/// Connects to the account's server (directly, or through `via`) trusting
/// only what `trust` allows, then logs in with the credential `witness`
/// hands over for the server it saw. On failure the connection is closed.
pub async fn login<W>(
    account: Account<'_>,
    trust: Trust,
    settings: &ConnectSettings,
    connection: Option<u64>,
    via: Option<Tunnel>,
    witness: &W,
) -> Result<Connected, W::Error>
where
    W: Witness,
    W::Error: From<SshError>,
{
    let Account {
        profile,
        host,
        port,
        user,
        ..
    } = account;
    let mut connected = match connect(host, port, trust, settings, via).await {
        Ok(connected) => connected,
        Err(error) => {
            let shown = match &error {
                SshError::HostKeyMismatch { actual, .. } => Some(actual.clone()),
                _ => None,
            };
            let error = W::Error::from(error.in_profile(profile));
            witness
                .ended(LoginOutcome {
                    protocol: Protocol::Ssh,
                    profile,
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
        protocol: Protocol::Ssh,
        profile: profile.to_owned(),
        host: host.to_owned(),
        port,
        user: user.to_owned(),
        host_key: Some(connected.host_key.clone()),
        connection,
    };
    let credential = match witness.credential_for(&to).await {
        Ok(credential) => credential,
        Err(error) => {
            hang_up(&connected).await;
            return Err(error);
        }
    };
    let authenticated = super::auth::authenticate(
        &mut connected,
        user,
        &credential,
        account.certificate,
        settings,
    )
    .await;
    drop(credential);
    let result = authenticated.map_err(W::Error::from);
    witness
        .ended(LoginOutcome {
            protocol: Protocol::Ssh,
            profile,
            host,
            port,
            host_key: Some(&connected.host_key),
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
            kex::DH_GEX_SHA256,
            kex::DH_G16_SHA512,
            kex::DH_G18_SHA512,
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

/// Connects (over TCP, or through `via`) and completes the key exchange,
/// accepting the host key only as `trust` allows.
pub async fn connect(
    host: &str,
    port: u16,
    trust: Trust,
    settings: &ConnectSettings,
    via: Option<Tunnel>,
) -> Result<Connected, SshError> {
    let addr = match &via {
        None => format_addr(host, port),
        Some(tunnel) => format!("{} via {}", format_addr(host, port), tunnel.jump),
    };
    let (via, lease) = match via {
        Some(Tunnel { stream, lease, .. }) => (Some(stream), Some(lease)),
        None => (None, None),
    };
    let expected = match &trust {
        Trust::Pinned(pins) => pins.clone(),
        Trust::AcceptAny => Vec::new(),
    };
    let seen = Arc::new(Mutex::new(None));
    let banner = Arc::new(Mutex::new(None));
    let server_id = Arc::new(Mutex::new(String::new()));
    let handler = ClientHandler {
        trust,
        seen: seen.clone(),
        banner: banner.clone(),
        server_id: server_id.clone(),
    };
    let config = Arc::new(client_config(settings));
    // Each address of the name gets the whole connect timeout, as ssh
    // gives it: a dead first address does not use up the second's time.
    // A TCP stream, or the tunnel that stands in for one.
    let way = match via {
        Some(stream) => Err(stream),
        None => Ok(tcp_connect(host, port, settings.connect_timeout).await?),
    };
    let handshake = async {
        let connected = match way {
            Ok(tcp) => {
                tcp.set_nodelay(true).map_err(|source| SshError::Connect {
                    addr: addr.clone(),
                    source,
                })?;
                client::connect_stream(config, tcp, handler).await
            }
            Err(stream) => client::connect_stream(config, stream, handler).await,
        };
        connected.map_err(|error| match error {
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
    let handle = with_timeout(&addr, settings.connect_timeout, "key exchange", handshake).await?;
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
        banner,
        server_id,
        via: lease,
    })
}

/// The addresses `host` names: an IP address (an IPv6 one may carry a zone,
/// `fe80::1%eth0`), or what the resolver answers for a name.
async fn resolve(host: &str, port: u16) -> std::io::Result<Vec<std::net::SocketAddr>> {
    use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    if let Some((ip, zone)) = host.split_once('%') {
        let ip: Ipv6Addr = ip.parse().map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "not an IPv6 address")
        })?;
        let scope = match zone.parse::<u32>() {
            Ok(index) => index,
            Err(_) => Some(zone)
                .filter(|zone| !zone.contains('/') && !zone.starts_with('.'))
                .and_then(|zone| {
                    std::fs::read_to_string(format!("/sys/class/net/{zone}/ifindex")).ok()
                })
                .and_then(|text| text.trim().parse().ok())
                .ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!("no network interface {zone}"),
                    )
                })?,
        };
        return Ok(vec![SocketAddr::V6(SocketAddrV6::new(ip, port, 0, scope))]);
    }
    Ok(tokio::net::lookup_host((host, port)).await?.collect())
}

/// A TCP connection to the first of `host`'s addresses that answers, each
/// given `limit` of its own.
async fn tcp_connect(host: &str, port: u16, limit: Duration) -> Result<TcpStream, SshError> {
    let failed = |source| SshError::Connect {
        addr: format_addr(host, port),
        source,
    };
    let addresses = resolve(host, port).await.map_err(failed)?;
    first_answering(&addresses, limit).await.map_err(failed)
}

/// Tries `addresses` in order, each for at most `limit`, as ssh does: a
/// first address that drops the connection does not use up the second's
/// time.
async fn first_answering(
    addresses: &[std::net::SocketAddr],
    limit: Duration,
) -> std::io::Result<TcpStream> {
    let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "the name has no address");
    for &address in addresses {
        match tokio::time::timeout(limit, TcpStream::connect(address)).await {
            Ok(Ok(tcp)) => return Ok(tcp),
            Ok(Err(error)) => last = error,
            Err(_) => {
                last = std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("{address} did not answer within {} s", limit.as_secs()),
                );
            }
        }
    }
    Err(last)
}

pub fn format_addr(host: &str, port: u16) -> String {
    tether_api::types::host_and_port(host, port)
}

pub(crate) async fn with_timeout<T>(
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A listener whose queue is full: the kernel drops further SYNs, as a
    /// firewall that drops packets does.
    async fn dropping_address() -> (tokio::net::TcpListener, TcpStream, std::net::SocketAddr) {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(0).unwrap();
        let address = listener.local_addr().unwrap();
        let filler = TcpStream::connect(address).await.unwrap();
        (listener, filler, address)
    }

    #[tokio::test]
    async fn a_dropped_first_address_leaves_the_second_its_time() {
        let (_dropping, _filler, dropped) = dropping_address().await;
        let good = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let good_address = good.local_addr().unwrap();
        let started = std::time::Instant::now();
        let limit = Duration::from_secs(1);
        let tcp = first_answering(&[dropped, good_address], limit)
            .await
            .unwrap();
        assert_eq!(tcp.peer_addr().unwrap(), good_address);
        let took = started.elapsed();
        assert!(took >= limit, "the first address was not tried: {took:?}");

        // Alone, a dropping address is a timeout that names it.
        let error = first_answering(&[dropped], limit).await.unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::TimedOut);
        assert!(error.to_string().contains(&dropped.to_string()), "{error}");
    }

    #[test]
    fn a_banner_is_cut_at_a_character_boundary() {
        assert_eq!(truncated("héllo", 2), "h");
        assert_eq!(truncated("héllo", 3), "hé");
        assert_eq!(truncated("abc", 10), "abc");
        assert_eq!(truncated("abc", 0), "");
    }
}
