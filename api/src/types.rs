//! Request and response bodies of `/v1`.
//!
//! Endpoints:
//!
//! | method | path | body | answer |
//! |---|---|---|---|
//! | GET | /v1/status | | [`Status`] |
//! | GET | /v1/profiles | | [`ProfileList`] |
//! | POST | /v1/profiles | [`AddProfile`] | 201 [`ProfileInfo`] |
//! | GET | /v1/profiles/{name} | | [`ProfileInfo`] |
//! | PATCH | /v1/profiles/{name} | [`UpdateProfile`] | [`ProfileInfo`] |
//! | DELETE | /v1/profiles/{name} | | 204 |
//! | POST | /v1/profiles/{name}/exec | [`ExecRequest`] | 101, then [`crate::frame`] |
//! | POST | /v1/profiles/{name}/shell | [`ShellRequest`] | 101, then [`crate::frame`] |
//! | POST | /v1/hostkeys/probe | [`ProbeHostKey`] | [`HostKeyInfo`] |
//! | GET | /v1/sessions | | [`SessionList`] |
//! | DELETE | /v1/sessions/{profile} | | [`SessionsClosed`] |
//!
//! Types that carry a [`Secret`] implement neither `Debug` nor `Serialize`
//! outside of what the request needs.

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// How the daemon runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// `tetherd --user`: one unprivileged user's daemon.
    User,
    /// The root daemon serving the host.
    System,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub daemon_version: String,
    pub api_version: u32,
    pub mode: Mode,
    /// The uid the daemon runs as.
    pub daemon_uid: u32,
    /// The caller's uid as the kernel reported it.
    pub caller_uid: u32,
    pub socket: String,
    pub state_dir: String,
    pub profiles: usize,
    pub uptime_secs: u64,
    /// The master key was wiped (`tether seal`): nothing works until a restart.
    #[serde(default)]
    pub sealed: bool,
    /// The store's state, for the daemon's administrators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreState>,
    /// Where the master key comes from, for the daemon's administrators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_key: Option<MasterKeyKind>,
}

/// `GET /v1/profiles/{name}/public-key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKey {
    /// `ssh-ed25519 AAAA... tether:NAME`, for an authorized_keys file.
    pub authorized_key: String,
}

/// `POST /v1/profiles/{name}/rotate`: a new key for a profile, installed
/// on its server.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RotateRequest {
    /// Say what would change; change nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Move a password profile to a key (the password is dropped).
    #[serde(default)]
    pub to_key: bool,
    /// The server's authorized_keys file for the login, relative to its
    /// home [default: .ssh/authorized_keys].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorized_keys: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotateResult {
    pub dry_run: bool,
    /// The authorized_keys file changed (or that would be).
    pub authorized_keys: String,
    /// The key that was replaced (none for a password profile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_key: Option<HostKeyInfo>,
    pub new_key: HostKeyInfo,
    /// The new key's line, as installed (public).
    pub authorized_line: String,
    /// The old key's line was removed (false: it is still there, and says
    /// so in `warning`).
    pub old_line_removed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// `POST /v1/unseal`: the passphrase of a passphrase daemon (none after
/// `tether seal` on a daemon with a key file). No `Debug`: it holds a
/// secret.
#[derive(Default, Serialize, Deserialize)]
pub struct UnsealRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passphrase: Option<crate::secret::Secret>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnsealResult {
    /// This unseal set the passphrase (the first of a passphrase daemon).
    pub passphrase_set: bool,
}

/// `POST /v1/passphrase`: wraps the master key with a new passphrase.
#[derive(Serialize, Deserialize)]
pub struct PassphraseChange {
    pub old: crate::secret::Secret,
    pub new: crate::secret::Secret,
}

/// `POST /v1/rekey`; a passphrase daemon needs its passphrase to wrap the
/// new key.
#[derive(Default, Serialize, Deserialize)]
pub struct RekeyRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passphrase: Option<crate::secret::Secret>,
}

/// Where the daemon's master key comes from (for administrators).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MasterKeyKind {
    File,
    Credential,
    /// Wrapped by a passphrase (`tetherd --passphrase`).
    Passphrase,
    /// A passphrase daemon whose first `tether unseal` sets the passphrase.
    PassphraseUnset,
}

/// `POST /v1/rekey`: the store is sealed under a new master key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RekeyResult {
    pub old_key_id: String,
    pub new_key_id: String,
    /// Records re-sealed.
    pub records: u64,
}

/// `GET /v1/backup` answers with the backup's bytes and these headers.
pub const BACKUP_GENERATION_HEADER: &str = "x-tether-generation";
pub const BACKUP_KEY_ID_HEADER: &str = "x-tether-key-id";

/// How the store compares with its manifest (see `tetherd check`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreState {
    /// One more with every committed change.
    pub generation: u64,
    /// What is wrong, when the store is damaged and serves no record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub damaged: Option<String>,
}

/// How a profile authenticates. Only the kind: the secret never leaves the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthKind {
    Key,
    Password,
    /// A key and a password, for servers that ask for both
    /// (`AuthenticationMethods publickey,password`).
    KeyAndPassword,
}

/// An OpenSSH user certificate a key profile logs in with (public data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateInfo {
    pub key_id: String,
    /// The users (or hosts) it is valid for; empty means any.
    pub principals: Vec<String>,
    /// Unix seconds; `valid_before` of `u64::MAX` is forever.
    pub valid_after: u64,
    pub valid_before: u64,
    /// The certificate authority's key.
    pub ca: HostKeyInfo,
}

/// A pinned server host key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostKeyInfo {
    /// SSH algorithm name, e.g. `ssh-ed25519`.
    pub algorithm: String,
    /// `SHA256:` followed by unpadded base64, as OpenSSH prints it.
    pub fingerprint: String,
}

/// What anyone allowed to see a profile may see of it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProfileInfo {
    pub name: String,
    #[serde(default)]
    pub protocol: Protocol,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub auth: AuthKind,
    /// For key profiles, the public key's algorithm and fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<HostKeyInfo>,
    /// The user certificate it logs in with, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertificateInfo>,
    /// The pinned SSH host keys, or for FTPS the pinned certificate
    /// (algorithm [`CERTIFICATE_ALGORITHM`], fingerprint in hex with colons).
    pub host_keys: Vec<HostKeyInfo>,
    /// FTPS checked against certificate authorities instead of a pin:
    /// `system`, or `file` for those given when the profile was added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    /// Per-profile connection settings, where set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keepalive_secs: Option<u64>,
    /// The profile whose connection carries this one's (`--jump`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jump: Option<String>,
    /// Unix seconds.
    pub created_at: u64,
    pub updated_at: u64,
    /// The banner the server sent before login, in the answer to adding or
    /// changing a profile (a legal notice the person should see once).
    /// Server text: escape it before showing it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub banner: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProfileList {
    pub profiles: Vec<ProfileInfo>,
    /// Names of profiles whose stored record failed its integrity check
    /// (`store_corrupt`); `tether profile remove` clears them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub corrupt: Vec<String>,
}

/// The credential of a new profile. Sent once; the daemon seals it at once.
#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum NewCredential {
    /// An OpenSSH or PEM private key, read by the CLI with the user's own
    /// permissions. If it is encrypted, `passphrase` decrypts it; the daemon
    /// stores the decrypted key, sealed.
    PrivateKey {
        key: Secret,
        #[serde(default)]
        passphrase: Option<Secret>,
        /// A password too, for servers that ask for a key and a password.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password: Option<Secret>,
        /// An OpenSSH user certificate for the key (`id_ed25519-cert.pub`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        certificate: Option<String>,
    },
    Password {
        password: Secret,
    },
}

/// How `profile add` decides to trust the server: its SSH host key, or
/// the TLS certificate of an FTPS server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum HostKeyPolicy {
    /// Trust only a key with this fingerprint: `SHA256:` and base64 for an
    /// SSH host key; for a certificate, its SHA-256 in hex with colons (as
    /// `openssl x509 -noout -fingerprint -sha256` prints) or `SHA256:`.
    Pin { fingerprint: String },
    /// Trust whatever key the server shows now (trust on first use, with the
    /// caller's explicit consent).
    AcceptNew,
    /// FTPS only: validate the certificate's chain and host name against
    /// certificate authorities instead of pinning it: the system's, or
    /// those in `pem`.
    Ca {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pem: Option<String>,
    },
}

/// What a profile speaks to its server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// SSH: commands, shells and SFTP.
    #[default]
    Ssh,
    /// FTP without TLS: the password crosses the network in clear.
    Ftp,
    /// FTP with explicit TLS (`AUTH TLS` on the FTP port).
    Ftps,
    /// FTP with TLS from the first byte (port 990).
    FtpsImplicit,
}

impl Protocol {
    pub const ALL: [Protocol; 4] = [
        Protocol::Ssh,
        Protocol::Ftp,
        Protocol::Ftps,
        Protocol::FtpsImplicit,
    ];

    /// The name on the command line: `ssh`, `ftp`, `ftps`, `ftps-implicit`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Ssh => "ssh",
            Protocol::Ftp => "ftp",
            Protocol::Ftps => "ftps",
            Protocol::FtpsImplicit => "ftps-implicit",
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            Protocol::Ssh => 22,
            Protocol::Ftp | Protocol::Ftps => 21,
            Protocol::FtpsImplicit => 990,
        }
    }

    pub fn is_ssh(&self) -> bool {
        *self == Protocol::Ssh
    }

    pub fn is_ftp(self) -> bool {
        !self.is_ssh()
    }

    /// Whether the connection is protected by TLS (FTPS).
    pub fn uses_tls(self) -> bool {
        matches!(self, Protocol::Ftps | Protocol::FtpsImplicit)
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Protocol {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        Protocol::ALL
            .into_iter()
            .find(|p| p.as_str() == name)
            .ok_or_else(|| format!("unknown protocol {name:?}: ssh, ftp, ftps or ftps-implicit"))
    }
}

/// The algorithm name a pinned TLS certificate carries in
/// [`HostKeyInfo::algorithm`].
pub const CERTIFICATE_ALGORITHM: &str = "x509";

/// A certificate's SHA-256 fingerprint as `openssl x509 -noout -fingerprint
/// -sha256` prints it (upper-case hex, colons between bytes), from that
/// form (any case, with or without colons or openssl's `sha256
/// Fingerprint=` before it) or OpenSSH's `SHA256:` and unpadded base64.
pub fn certificate_fingerprint(given: &str) -> Result<String, String> {
    let text = given.trim();
    let text = text
        .rsplit_once('=')
        .filter(|(head, _)| head.to_ascii_lowercase().contains("fingerprint"))
        .map_or(text, |(_, tail)| tail);
    let bytes = match text.strip_prefix("SHA256:") {
        Some(b64) => decode_base64(b64),
        None => {
            let hex: String = text.chars().filter(|c| *c != ':').collect();
            let digits_only = hex.chars().all(|c| c.is_ascii_hexdigit());
            let pairs_ok = !text.contains(':') || text.split(':').all(|pair| pair.len() == 2);
            (digits_only && pairs_ok && hex.len() % 2 == 0)
                .then(|| {
                    (0..hex.len())
                        .step_by(2)
                        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
                        .collect::<Option<Vec<u8>>>()
                })
                .flatten()
        }
    };
    match bytes {
        Some(bytes) if bytes.len() == 32 => Ok(hex_with_colons(&bytes)),
        _ => Err(format!(
            "{given:?} is not a certificate fingerprint: expected its SHA-256 as `openssl x509 \
             -noout -fingerprint -sha256` prints it (32 hex bytes with colons) or SHA256: and 43 \
             base64 characters"
        )),
    }
}

/// Bytes as upper-case hex pairs joined by colons.
pub fn hex_with_colons(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Standard base64 without padding, as OpenSSH's `SHA256:` fingerprints
/// write it.
pub fn encode_base64_unpadded(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

/// Standard base64, padded or not; `None` for anything else.
pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &c in text.as_bytes() {
        buffer = (buffer << 6) | value(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    // Leftover bits must be zero padding, fewer than a byte.
    (buffer == 0 && bits < 8 && text.len() % 4 != 1).then_some(out)
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddProfile {
    pub name: String,
    /// What the profile speaks [default: ssh].
    #[serde(default, skip_serializing_if = "Protocol::is_ssh")]
    pub protocol: Protocol,
    /// FTP without TLS sends the password in clear: refused unless this
    /// says the caller knows.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_plaintext: bool,
    pub host: String,
    /// The port [default: the protocol's: 22, 21, or 990 for implicit FTPS].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    pub user: String,
    pub credential: NewCredential,
    pub host_key: HostKeyPolicy,
    /// Overrides the daemon's `ssh.connect_timeout_secs` for this profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout_secs: Option<u64>,
    /// Overrides the daemon's `ssh.keepalive_secs` for this profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keepalive_secs: Option<u64>,
    /// Log in with `credential` once, to install a key made inside the
    /// daemon in the login's authorized_keys; the profile keeps only that
    /// key (which exists nowhere else).
    #[serde(default)]
    pub generate_key: bool,
    /// With `generate_key`: the authorized_keys file, relative to the
    /// login's home [default: .ssh/authorized_keys].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorized_keys: Option<String>,
    /// Reach the server through this SSH profile's connection (a jump
    /// host, as OpenSSH's `ProxyJump`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jump: Option<String>,
}

/// Changes to a profile; absent fields stay as they are. A new credential
/// rotates the secret; a host-key policy re-pins the server's key. The
/// daemon logs in with the result before storing it.
#[derive(Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct UpdateProfile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<NewCredential>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_key: Option<HostKeyPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keepalive_secs: Option<u64>,
    /// A new jump profile; the empty string removes the jump.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jump: Option<String>,
}

/// `host:port`, with an IPv6 address in brackets (`[::1]:22`), as ssh
/// prints them.
pub fn host_and_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

pub fn default_port() -> u16 {
    22
}

/// Ask the daemon which host key a server presents, without authenticating,
/// so the CLI can show the fingerprint and ask before `profile add`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeHostKey {
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    /// An FTPS protocol probes the server's TLS certificate instead.
    #[serde(default, skip_serializing_if = "Protocol::is_ssh")]
    pub protocol: Protocol,
    /// Reach the server through this SSH profile's connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jump: Option<String>,
}

/// Run a command. With one element, it is the remote command line as is; with
/// several, the daemon quotes each so the remote receives exactly those words.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecRequest {
    pub argv: Vec<String>,
    /// End the command after this many seconds: SIGTERM, then the channel is
    /// closed; the exit frame says `timed_out`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
    /// Run the command on a pseudo-terminal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pty: Option<PtyRequest>,
}

/// The caller's terminal, for a remote pseudo-terminal.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PtyRequest {
    pub term: String,
    pub cols: u32,
    pub rows: u32,
    /// Terminal modes as RFC 4254 8 encodes them: (opcode, value) pairs,
    /// e.g. (3, 127) for VERASE = DEL. Unknown opcodes are ignored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modes: Vec<(u8, u32)>,
}

/// An interactive session: a login shell, or `argv` as its command, on a
/// pseudo-terminal. The stream is the same as `exec`'s.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShellRequest {
    pub pty: PtyRequest,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub argv: Vec<String>,
}

/// A live pooled SSH connection.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionInfo {
    pub id: u64,
    pub profile: String,
    /// `host:port` of the server.
    pub remote: String,
    pub age_secs: u64,
    /// Seconds since its last channel ended; 0 while channels are open.
    pub idle_secs: u64,
    /// Open channels (running commands).
    pub channels: usize,
    /// Of those, streams whose caller has stopped reading their output;
    /// while there is one, the connection takes no new channels.
    #[serde(default)]
    pub stalled: usize,
    /// Bytes sent to and received from remote commands.
    pub bytes_in: u64,
    pub bytes_out: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionList {
    pub sessions: Vec<SessionInfo>,
}

/// The answer to closing a profile's connections.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionsClosed {
    pub profile: String,
    pub closed: usize,
}

/// Longest profile name.
pub const MAX_PROFILE_NAME: usize = 64;

/// A profile name: 1 to 64 of `A-Z a-z 0-9 . _ -`, not starting with `.` or `-`.
/// Names end up in URLs, store keys and AADs, so they are kept plain.
pub fn validate_profile_name(name: &str) -> Result<(), String> {
    let valid_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty() || name.len() > MAX_PROFILE_NAME {
        return Err(format!(
            "a profile name has 1 to {MAX_PROFILE_NAME} characters"
        ));
    }
    if name.starts_with(['.', '-']) || !name.chars().all(valid_char) {
        return Err(format!(
            "invalid profile name {name:?}: use letters, digits, '.', '_' and '-', not starting with '.' or '-'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_names() {
        for good in ["web1", "db-1.prod", "A_b", "x"] {
            assert!(validate_profile_name(good).is_ok(), "{good}");
        }
        let long = "a".repeat(65);
        for bad in [
            "",
            "-x",
            ".x",
            "a/b",
            "a b",
            "é",
            "a\0",
            long.as_str(),
            "..",
        ] {
            assert!(validate_profile_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn add_profile_rejects_unknown_fields() {
        let json = r#"{"name":"a","host":"h","user":"u","credential":{"type":"password","password":"p"},"host_key":{"mode":"accept_new"},"extra":1}"#;
        assert!(serde_json::from_str::<AddProfile>(json).is_err());
        let ok = json.replace(",\"extra\":1", "");
        let parsed: AddProfile = serde_json::from_str(&ok).unwrap();
        assert_eq!(parsed.port, None);
        assert_eq!(parsed.protocol, Protocol::Ssh);
    }

    #[test]
    fn certificate_fingerprints_in_any_common_form() {
        let hex = "5A:2D:D1:9E:CC:B6:38:96:0F:FF:D6:22:F7:F6:D1:BF:C5:BB:7B:1B:7E:1F:13:4A:33:AD:89:F0:84:D7:14:F0";
        for given in [
            hex.to_owned(),
            hex.to_lowercase(),
            hex.replace(':', ""),
            format!("sha256 Fingerprint={hex}"),
            format!("SHA256 Fingerprint={hex}\n"),
            // The same digest as OpenSSH prints fingerprints.
            "SHA256:Wi3Rnsy2OJYP/9Yi9/bRv8W7ext+HxNKM62J8ITXFPA".to_owned(),
        ] {
            assert_eq!(
                certificate_fingerprint(&given).as_deref(),
                Ok(hex),
                "{given}"
            );
        }
        for bad in [
            "",
            "5A:2D",
            &hex[..hex.len() - 3],
            "SHA256:short",
            "5A:2D:D1:9E:CC:B6:38:96:0F:FF:D6:22:F7:F6:D1:BF:C5:BB:7B:1B:7E:1F:13:4A:33:AD:89:F0:84:D7:14:FZ",
            "5A2:DD1:9E:CC:B6:38:96:0F:FF:D6:22:F7:F6:D1:BF:C5:BB:7B:1B:7E:1F:13:4A:33:AD:89:F0:84:D7:14:F0",
        ] {
            assert!(certificate_fingerprint(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn protocols_by_name() {
        for protocol in Protocol::ALL {
            assert_eq!(protocol.as_str().parse::<Protocol>(), Ok(protocol));
        }
        assert!("sftp".parse::<Protocol>().is_err());
        assert_eq!(Protocol::FtpsImplicit.default_port(), 990);
        let json = serde_json::to_string(&Protocol::FtpsImplicit).unwrap_or_default();
        assert_eq!(json, "\"ftps_implicit\"");
    }

    #[test]
    fn base64_round_trips_without_padding() {
        for n in 0..40usize {
            let bytes: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            let text = encode_base64_unpadded(&bytes);
            assert!(!text.ends_with('='));
            assert_eq!(decode_base64(&text).unwrap(), bytes, "{n}");
        }
        assert_eq!(encode_base64_unpadded(b"foob"), "Zm9vYg");
    }
}
