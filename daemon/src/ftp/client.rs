//! Connecting to an FTP server and logging in.
//!
//! [`connect`] opens the control connection the profile's protocol asks
//! for: plain, explicit (`AUTH TLS`, then `PBSZ 0` and `PROT P`) or
//! implicit (TLS from the first byte, then `PBSZ 0` and `PROT P`). The
//! certificate is checked inside the handshake ([`super::tls`]). [`login`]
//! then asks its witness for the password, naming the certificate the
//! server proved, and sends `USER` and `PASS`; nothing is sent before the
//! witness has put the destination on record.

use std::net::SocketAddr;
use std::time::Duration;

use suppaftp::tokio::ImplAsyncFtpStream;

use super::read_ahead::{Connector, Tls};
use suppaftp::types::FileType;
use suppaftp::{FtpError, Mode, Status};
use tether_api::types::{Protocol, host_and_port};

use super::tls::{self, Seen, Trust};
use super::{FtpFailure, reply_code, reply_text};
use crate::store::{Credential, KeyInfo};
use crate::witness::{Destination, LoginOutcome, Witness};

/// suppaftp's client over rustls (plain FTP uses it without TLS).
pub type Stream = ImplAsyncFtpStream<Tls>;

/// Where and as whom to log in.
#[derive(Debug, Clone, Copy)]
pub struct Account<'a> {
    pub protocol: Protocol,
    /// The profile whose password logs in.
    pub profile: &'a str,
    pub host: &'a str,
    pub port: u16,
    pub user: &'a str,
}

/// How long to wait: for the connection and handshake, and for any one
/// reply after that.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub reply: Duration,
}

/// An open control connection, before login.
pub struct Connected {
    pub stream: Stream,
    pub addr: String,
    /// The certificate the server proved (FTPS).
    pub certificate: Option<KeyInfo>,
    /// The server's greeting (server text: escape it where it is shown).
    pub welcome: Option<String>,
}

/// What the server offered in its `FEAT` answer.
#[derive(Debug, Clone, Copy, Default)]
pub struct Offered {
    pub mlst: bool,
    pub mfmt: bool,
    pub epsv: bool,
}

/// A logged-in control connection.
pub struct Control {
    pub(super) stream: Stream,
    pub addr: String,
    /// Where the login starts (`PWD` after login); `~` and relative paths
    /// are read from here.
    pub home: String,
    pub(super) offered: Offered,
    /// Data connections by EPSV (else PASV).
    pub(super) extended_passive: bool,
    pub(super) timeout: Duration,
    pub certificate: Option<KeyInfo>,
    pub welcome: Option<String>,
    /// A command timed out or the connection failed: it takes no more.
    pub(super) broken: bool,
    /// `SITE CHMOD` is known to work (`Some(true)`) or not to.
    pub(super) site_chmod: Option<bool>,
}

impl Control {
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// A transfer was left unfinished: the server's reply to it would
    /// answer the next command, so this connection takes no more (the pool
    /// closes it rather than keep it).
    pub fn abandon(&mut self) {
        self.broken = true;
    }

    /// Says goodbye, within a second; the connection closes either way.
    pub async fn quit(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), self.stream.quit()).await;
    }

    /// Whether the server is still there, without a round trip where that
    /// can be told: a closed socket, or a reply nobody asked for (`421`
    /// before an idle server hangs up), means gone; bytes waiting under TLS
    /// (session tickets) are settled by a `NOOP`.
    pub async fn still_there(&mut self) -> bool {
        if self.broken {
            return false;
        }
        let mut byte = [0u8; 1];
        let peeked = {
            let socket = self.stream.get_ref().await;
            tokio::time::timeout(Duration::ZERO, socket.peek(&mut byte)).await
        };
        match peeked {
            Err(_) => true,
            Ok(Ok(0) | Err(_)) => {
                self.broken = true;
                false
            }
            Ok(Ok(_)) => self.alive().await,
        }
    }

    /// `NOOP`: whether the connection is still there.
    pub async fn alive(&mut self) -> bool {
        if self.broken {
            return false;
        }
        let answered = tokio::time::timeout(self.timeout, self.stream.noop()).await;
        let alive = matches!(answered, Ok(Ok(())));
        self.broken = !alive;
        alive
    }
}

async fn open_tcp(
    host: &str,
    port: u16,
    timeouts: Timeouts,
) -> Result<(tokio::net::TcpStream, SocketAddr), FtpFailure> {
    let addr = host_and_port(host, port);
    let connect = async {
        let mut last = None;
        for candidate in tokio::net::lookup_host((host, port)).await? {
            match tokio::net::TcpStream::connect(candidate).await {
                Ok(stream) => return Ok((stream, candidate)),
                Err(error) => last = Some(error),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("the name has no address")))
    };
    match tokio::time::timeout(timeouts.connect, connect).await {
        Ok(Ok((stream, candidate))) => {
            let _ = stream.set_nodelay(true);
            Ok((stream, candidate))
        }
        Ok(Err(source)) => Err(FtpFailure::Connect { addr, source }),
        Err(_) => Err(FtpFailure::Timeout {
            addr,
            secs: timeouts.connect.as_secs().max(1),
            stage: "the TCP connection",
        }),
    }
}

/// What a failed handshake means: a certificate the verifier refused, or
/// TLS itself failing (with what rustls says the server offered).
fn handshake_failure(addr: &str, message: String, seen: &Seen, trust: &Trust) -> FtpFailure {
    match seen.get() {
        Some(shown) if shown.refused.is_some() => match trust {
            Trust::Pinned(pins) => FtpFailure::CertificateMismatch {
                addr: addr.to_owned(),
                expected: pins.clone(),
                actual: shown.certificate.fingerprint,
                profile: None,
            },
            _ => FtpFailure::CertificateInvalid {
                addr: addr.to_owned(),
                actual: shown.certificate.fingerprint,
                reason: shown.refused.unwrap_or_default(),
            },
        },
        _ => FtpFailure::Tls {
            addr: addr.to_owned(),
            message: format!("the handshake failed: {message}"),
        },
    }
}

/// Maps an error of the connection's first steps (greeting, TLS, `PBSZ`,
/// `PROT`) for `addr`.
fn setup_failure(
    addr: &str,
    stage: &str,
    error: FtpError,
    seen: &Seen,
    trust: &Trust,
) -> FtpFailure {
    match error {
        FtpError::SecureError(message) => handshake_failure(addr, message, seen, trust),
        FtpError::UnexpectedResponse(response) if stage == "AUTH TLS" => FtpFailure::Tls {
            addr: addr.to_owned(),
            message: format!(
                "the server does not offer TLS on this port: it answered AUTH TLS with {:?}. If \
                 it speaks TLS from the first byte, use --protocol ftps-implicit (port 990)",
                reply_text(&response)
            ),
        },
        FtpError::UnexpectedResponse(response) => FtpFailure::Protocol {
            addr: addr.to_owned(),
            message: format!("{stage} was answered {:?}", reply_text(&response)),
        },
        FtpError::ConnectionError(source) => match seen.get() {
            // A server that hangs up on the handshake after our verifier
            // refused its certificate.
            Some(shown) if shown.refused.is_some() => {
                handshake_failure(addr, source.to_string(), seen, trust)
            }
            _ => FtpFailure::Closed {
                addr: addr.to_owned(),
                message: format!("during {stage}: {source}"),
            },
        },
        other => FtpFailure::Protocol {
            addr: addr.to_owned(),
            message: format!("during {stage}: {other}"),
        },
    }
}

/// The text of a server's greeting (`220-Welcome` lines), without its
/// reply codes; `None` when it says nothing beyond its software's name.
fn greeting(reply: &str) -> Option<String> {
    let lines: Vec<&str> = reply
        .lines()
        .map(|line| {
            let rest = line.get(3..).filter(|_| line.starts_with("220"));
            rest.map_or(line, |rest| rest.strip_prefix(['-', ' ']).unwrap_or(rest))
                .trim_end()
        })
        .collect();
    // A one-line greeting is the server's name ("(vsFTPd 3.0.5)"), not a
    // notice for a person.
    if lines.len() < 2 {
        return None;
    }
    Some(lines.join("\n") + "\n")
}

/// Opens the control connection `protocol` asks for, trusting only what
/// `trust` allows, and reads the greeting. Nothing about the account is
/// sent.
pub async fn connect(
    protocol: Protocol,
    host: &str,
    port: u16,
    trust: &Trust,
    timeouts: Timeouts,
) -> Result<Connected, FtpFailure> {
    let addr = host_and_port(host, port);
    let (tcp, socket_addr) = open_tcp(host, port, timeouts).await?;
    let tls = if protocol.uses_tls() {
        let (config, seen) = tls::client_config(trust).map_err(|message| FtpFailure::Tls {
            addr: addr.clone(),
            message,
        })?;
        let connector = Connector::from(tokio_rustls::TlsConnector::from(config));
        Some((connector, seen))
    } else {
        None
    };
    // The name TLS checks (and sends as SNI); an address is checked as one.
    let domain = host.split('%').next().unwrap_or(host).to_owned();
    let timed_out = |stage| FtpFailure::Timeout {
        addr: addr.clone(),
        secs: timeouts.connect.as_secs().max(1),
        stage,
    };
    let seen = tls
        .as_ref()
        .map(|(_, seen)| seen.clone())
        .unwrap_or_default();
    let stream = match (protocol, tls) {
        (Protocol::Ftps, Some((connector, _))) => {
            let plain = tokio::time::timeout(timeouts.connect, Stream::connect_with_stream(tcp))
                .await
                .map_err(|_| timed_out("the server's greeting"))?
                .map_err(|e| setup_failure(&addr, "the greeting", e, &seen, trust))?;
            tokio::time::timeout(timeouts.connect, plain.into_secure(connector, &domain))
                .await
                .map_err(|_| timed_out("the TLS handshake"))?
                .map_err(|e| setup_failure(&addr, "AUTH TLS", e, &seen, trust))?
        }
        (Protocol::FtpsImplicit, Some((connector, _))) => {
            // suppaftp opens its own TCP connection for implicit TLS: the
            // one above only proved the address answers.
            drop(tcp);
            let mut stream = tokio::time::timeout(
                timeouts.connect,
                Stream::connect_secure_implicit(socket_addr, connector, &domain),
            )
            .await
            .map_err(|_| timed_out("the TLS handshake"))?
            .map_err(|e| setup_failure(&addr, "the TLS handshake", e, &seen, trust))?;
            for (command, stage) in [("PBSZ 0", "PBSZ"), ("PROT P", "PROT P")] {
                tokio::time::timeout(
                    timeouts.connect,
                    stream.custom_command(command, &[Status::CommandOk]),
                )
                .await
                .map_err(|_| timed_out("PBSZ and PROT"))?
                .map_err(|e| setup_failure(&addr, stage, e, &seen, trust))?;
            }
            stream
        }
        _ => tokio::time::timeout(timeouts.connect, Stream::connect_with_stream(tcp))
            .await
            .map_err(|_| timed_out("the server's greeting"))?
            .map_err(|e| setup_failure(&addr, "the greeting", e, &seen, trust))?,
    };
    let welcome = stream.get_welcome_msg().and_then(greeting);
    Ok(Connected {
        stream,
        addr,
        certificate: seen.get().map(|shown| shown.certificate),
        welcome,
    })
}

/// The certificate an FTPS server shows, for a person to check before
/// trusting it; nothing is sent after the handshake.
pub async fn probe(
    protocol: Protocol,
    host: &str,
    port: u16,
    timeouts: Timeouts,
) -> Result<KeyInfo, FtpFailure> {
    let connected = connect(protocol, host, port, &Trust::AcceptAny, timeouts).await?;
    let certificate = connected.certificate.clone();
    let addr = connected.addr.clone();
    let mut stream = connected.stream;
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.quit()).await;
    certificate.ok_or_else(|| FtpFailure::Tls {
        addr,
        message: "the server showed no certificate".into(),
    })
}

/// Connects as `account`, trusting what `trust` allows, and logs in with
/// the password `witness` hands over for the server it saw. On failure the
/// connection is closed.
pub async fn login<W>(
    account: Account<'_>,
    trust: &Trust,
    timeouts: Timeouts,
    connection: Option<u64>,
    witness: &W,
) -> Result<Control, W::Error>
where
    W: Witness,
    W::Error: From<FtpFailure>,
{
    let Account {
        protocol,
        profile,
        host,
        port,
        user,
    } = account;
    let connected = match connect(protocol, host, port, trust, timeouts).await {
        Ok(connected) => connected,
        Err(error) => {
            let shown = match &error {
                FtpFailure::CertificateMismatch { actual, .. }
                | FtpFailure::CertificateInvalid { actual, .. } => Some(KeyInfo {
                    algorithm: tether_api::types::CERTIFICATE_ALGORITHM.to_owned(),
                    fingerprint: actual.clone(),
                }),
                _ => None,
            };
            let error = W::Error::from(error);
            witness
                .ended(LoginOutcome {
                    protocol,
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
    let Connected {
        mut stream,
        addr,
        certificate,
        welcome,
    } = connected;
    let to = Destination {
        protocol,
        profile: profile.to_owned(),
        host: host.to_owned(),
        port,
        user: user.to_owned(),
        host_key: certificate.clone(),
        connection,
    };
    let credential = match witness.credential_for(&to).await {
        Ok(credential) => credential,
        Err(error) => {
            let _ = tokio::time::timeout(Duration::from_secs(1), stream.quit()).await;
            return Err(error);
        }
    };
    let sent = send_password(&mut stream, &addr, user, &credential, timeouts).await;
    drop(credential);
    let result = match sent {
        Ok(()) => ready(stream, addr, certificate, welcome, timeouts).await,
        Err(error) => {
            let _ = tokio::time::timeout(Duration::from_secs(1), stream.quit()).await;
            Err(error)
        }
    }
    .map_err(W::Error::from);
    witness
        .ended(LoginOutcome {
            protocol,
            profile,
            host,
            port,
            host_key: to.host_key.as_ref(),
            connection,
            sent: true,
            result: result.as_ref().map(|_| ()),
        })
        .await;
    result
}

/// `USER` and `PASS`. suppaftp copies the password into its command line
/// (a plain `String`, not zeroed; see SECURITY.md).
async fn send_password(
    stream: &mut Stream,
    addr: &str,
    user: &str,
    credential: &Credential,
    timeouts: Timeouts,
) -> Result<(), FtpFailure> {
    let Credential::Password(password) = credential else {
        return Err(FtpFailure::Protocol {
            addr: addr.to_owned(),
            message: "an FTP profile logs in with a password, and this one holds a key".into(),
        });
    };
    match tokio::time::timeout(timeouts.connect, stream.login(user, password.as_str())).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(FtpError::UnexpectedResponse(response))) => {
            match reply_code(&response) {
                // 530 not logged in, 430 invalid credentials; a 5xx after
                // PASS is a refusal too.
                430 | 530 | 500..=599 => Err(FtpFailure::AuthFailed {
                    user: user.to_owned(),
                    addr: addr.to_owned(),
                    reply: reply_text(&response),
                }),
                _ => Err(FtpFailure::Protocol {
                    addr: addr.to_owned(),
                    message: format!("the login was answered {:?}", reply_text(&response)),
                }),
            }
        }
        Ok(Err(FtpError::ConnectionError(source))) => Err(FtpFailure::Closed {
            addr: addr.to_owned(),
            message: format!("during the login: {source}"),
        }),
        Ok(Err(other)) => Err(FtpFailure::Protocol {
            addr: addr.to_owned(),
            message: format!("during the login: {other}"),
        }),
        Err(_) => Err(FtpFailure::Timeout {
            addr: addr.to_owned(),
            secs: timeouts.connect.as_secs().max(1),
            stage: "the login",
        }),
    }
}

/// After login: binary transfers, the server's features, UTF-8 names where
/// offered, and where the login starts.
async fn ready(
    mut stream: Stream,
    addr: String,
    certificate: Option<KeyInfo>,
    welcome: Option<String>,
    timeouts: Timeouts,
) -> Result<Control, FtpFailure> {
    let timed_out = |stage| FtpFailure::Timeout {
        addr: addr.clone(),
        secs: timeouts.reply.as_secs().max(1),
        stage,
    };
    let refused = |stage: &str, error: FtpError| FtpFailure::Protocol {
        addr: addr.clone(),
        message: match error {
            FtpError::UnexpectedResponse(response) => {
                format!("{stage} was answered {:?}", reply_text(&response))
            }
            other => format!("{stage} failed: {other}"),
        },
    };
    tokio::time::timeout(timeouts.reply, stream.transfer_type(FileType::Binary))
        .await
        .map_err(|_| timed_out("TYPE I"))?
        .map_err(|e| refused("TYPE I", e))?;
    // A server without FEAT offers nothing beyond RFC 959.
    let features = tokio::time::timeout(timeouts.reply, stream.feat())
        .await
        .map_err(|_| timed_out("FEAT"))?
        .unwrap_or_default();
    let has = |name: &str| features.keys().any(|key| key.eq_ignore_ascii_case(name));
    let offered = Offered {
        mlst: has("MLST"),
        mfmt: has("MFMT"),
        epsv: has("EPSV"),
    };
    if has("UTF8") {
        let _ = tokio::time::timeout(timeouts.reply, stream.opts("UTF8", Some("ON"))).await;
    }
    let home = tokio::time::timeout(timeouts.reply, stream.pwd())
        .await
        .map_err(|_| timed_out("PWD"))?
        .map_err(|e| refused("PWD", e))?;
    // Data connections go to the control connection's peer, whatever
    // address a PASV answer names.
    stream.set_passive_nat_workaround(true);
    let extended_passive = offered.epsv || addr.starts_with('[');
    stream.set_mode(if extended_passive {
        Mode::ExtendedPassive
    } else {
        Mode::Passive
    });
    Ok(Control {
        stream,
        addr,
        home,
        offered,
        extended_passive,
        timeout: timeouts.reply,
        certificate,
        welcome,
        broken: false,
        site_chmod: None,
    })
}
