//! `tetherd`'s TOML configuration. Every key has a default, so an empty file
//! (or none) is a valid configuration; unknown keys are errors, so a typo is
//! caught rather than silently ignored.
//!
//! ```toml
//! socket = "/run/tether/tether.sock"   # default: by mode
//! state_dir = "/var/lib/tether"        # default: by mode
//! log = "info"                         # tracing filter, e.g. "tetherd=debug"
//! passphrase = false                   # keep the master key wrapped by a passphrase (tether unseal)
//!
//! [limits]
//! max_head_bytes = 16384               # request line and headers (>= 8192)
//! max_body_bytes = 1048576             # JSON bodies
//! header_timeout_secs = 10             # to receive a request head
//! body_timeout_secs = 30               # to receive a request body
//! max_connections_per_uid = 256
//! drain_timeout_secs = 10              # on shutdown, for running commands
//!
//! [ssh]
//! connect_timeout_secs = 15            # TCP connect plus SSH handshake
//! keepalive_secs = 30                  # silence before a keepalive; 3 missed end it
//! idle_timeout_secs = 600              # pooled connections with no channel close after this
//! sftp_timeout_secs = 60               # an SFTP server's answer to one request
//! upload_channels = 4                  # SFTP sessions a large upload is spread over ...
//! upload_channels_rtt_ms = 5           # ... when the server's round trip is at least this
//!
//! [ftp]                                # FTP and FTPS profiles ([ssh]'s connect,
//!                                      # keepalive and idle timeouts apply too)
//! max_connections = 4                  # control connections per profile (>= 2)
//! reply_timeout_secs = 60              # an FTP server's answer to one command
//!
//! [access]
//! socket_group = "tether"              # system mode: the socket's group (mode 0660)
//! mfa_session_secs = 28800             # an MFA session ends this long after `tether login`
//! mfa_idle_secs = 1800                 # ... or after this long unused
//! totp_issuer = "tether"               # the issuer shown in authenticator apps
//!
//! [mfa]
//! enrolment = "open"                   # "invite": a first enrolment needs `tether mfa invite USER`
//!
//! [audit]
//! max_age_days = 365                   # older events are pruned (0: keep forever)
//! max_events = 1000000                 # beyond this, the oldest are pruned (0: no limit)
//! refusal_interval_secs = 60           # a uid's refusals after its first are summed up per interval
//! reserve_mb = 64                      # below this much free disk, refusals are counted, not written
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tether_api::types::Mode;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub socket: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    pub log: String,
    /// The master key is kept only wrapped by a passphrase: the daemon
    /// starts sealed, `tether unseal` opens it.
    pub passphrase: bool,
    pub limits: Limits,
    pub ssh: SshSettings,
    pub ftp: FtpSettings,
    pub access: AccessSettings,
    pub mfa: MfaSettings,
    pub audit: AuditSettings,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            socket: None,
            state_dir: None,
            log: "info".to_owned(),
            passphrase: false,
            limits: Limits::default(),
            ssh: SshSettings::default(),
            ftp: FtpSettings::default(),
            access: AccessSettings::default(),
            mfa: MfaSettings::default(),
            audit: AuditSettings::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub max_head_bytes: usize,
    pub max_body_bytes: usize,
    pub header_timeout_secs: u64,
    pub body_timeout_secs: u64,
    pub max_connections_per_uid: usize,
    pub drain_timeout_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_head_bytes: 16 * 1024,
            max_body_bytes: 1024 * 1024,
            header_timeout_secs: 10,
            body_timeout_secs: 30,
            max_connections_per_uid: 256,
            drain_timeout_secs: 10,
        }
    }
}

impl Limits {
    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.header_timeout_secs)
    }

    pub fn body_timeout(&self) -> Duration {
        Duration::from_secs(self.body_timeout_secs)
    }

    pub fn drain_timeout(&self) -> Duration {
        Duration::from_secs(self.drain_timeout_secs)
    }
}

/// Sessions one upload may be spread over, at most: below OpenSSH's default
/// `MaxSessions`, so a spread upload leaves the connection room.
pub const MAX_UPLOAD_CHANNELS: usize = 8;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SshSettings {
    pub connect_timeout_secs: u64,
    pub keepalive_secs: u64,
    pub idle_timeout_secs: u64,
    /// How long an SFTP server may take to answer one request.
    pub sftp_timeout_secs: u64,
    /// SFTP sessions (channels) one large upload is spread over, at most:
    /// a channel's window, which the server grants, caps what one carries
    /// per round trip (2 MiB on OpenSSH).
    pub upload_channels: usize,
    /// ... where the server answers no sooner than this (on a near server,
    /// more channels only share the same CPUs).
    pub upload_channels_rtt_ms: u64,
}

impl Default for SshSettings {
    fn default() -> Self {
        Self {
            connect_timeout_secs: 15,
            keepalive_secs: 30,
            idle_timeout_secs: 600,
            sftp_timeout_secs: 60,
            upload_channels: 4,
            upload_channels_rtt_ms: 5,
        }
    }
}

impl SshSettings {
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FtpSettings {
    /// Control connections per profile: FTP moves one transfer on each.
    pub max_connections: usize,
    /// How long an FTP server may take to answer one command, or to move
    /// data on a transfer.
    pub reply_timeout_secs: u64,
}

impl Default for FtpSettings {
    fn default() -> Self {
        Self {
            max_connections: 4,
            reply_timeout_secs: 60,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessSettings {
    pub socket_group: String,
    pub mfa_session_secs: u64,
    pub mfa_idle_secs: u64,
    pub totp_issuer: String,
}

impl Default for AccessSettings {
    fn default() -> Self {
        Self {
            socket_group: "tether".to_owned(),
            mfa_session_secs: 8 * 3600,
            mfa_idle_secs: 30 * 60,
            totp_issuer: "tether".to_owned(),
        }
    }
}

/// How a user gets their first TOTP enrolment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Enrolment {
    /// Any user with a grant enrols on their own.
    #[default]
    Open,
    /// Only with a one-time code root issued (`tether mfa invite USER`).
    Invite,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MfaSettings {
    pub enrolment: Enrolment,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSettings {
    pub max_age_days: u64,
    pub max_events: u64,
    /// After a uid's first refused request, its further refusals are only
    /// counted for this long and then recorded as one summary.
    pub refusal_interval_secs: u64,
    /// Free space (MiB) on the state directory's file system kept for
    /// events of credential use: below it, refusals are counted, not written.
    pub reserve_mb: u64,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            max_age_days: 365,
            max_events: 1_000_000,
            refusal_interval_secs: 60,
            reserve_mb: 64,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses and validates; the message names the line of the error.
    pub fn parse(text: &str) -> Result<Config, String> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
            match line {
                Some(line) => format!("line {line}: {}", e.message()),
                None => e.message().to_owned(),
            }
        })?;
        config.validate().map_err(|e| e.to_string())?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let limits = &self.limits;
        if limits.max_head_bytes < 8192 {
            return Err(ConfigError::Invalid(
                "limits.max_head_bytes must be at least 8192".into(),
            ));
        }
        if limits.max_body_bytes < 1024 {
            return Err(ConfigError::Invalid(
                "limits.max_body_bytes must be at least 1024".into(),
            ));
        }
        let timeouts = [
            ("limits.header_timeout_secs", limits.header_timeout_secs),
            ("limits.body_timeout_secs", limits.body_timeout_secs),
            ("ssh.connect_timeout_secs", self.ssh.connect_timeout_secs),
            ("ssh.keepalive_secs", self.ssh.keepalive_secs),
            ("ssh.idle_timeout_secs", self.ssh.idle_timeout_secs),
            ("ssh.sftp_timeout_secs", self.ssh.sftp_timeout_secs),
            ("ftp.reply_timeout_secs", self.ftp.reply_timeout_secs),
            ("access.mfa_session_secs", self.access.mfa_session_secs),
            ("access.mfa_idle_secs", self.access.mfa_idle_secs),
            (
                "audit.refusal_interval_secs",
                self.audit.refusal_interval_secs,
            ),
        ];
        for (name, secs) in timeouts {
            if secs == 0 {
                return Err(ConfigError::Invalid(format!("{name} must be at least 1")));
            }
        }
        // A copy between two paths of one profile holds two connections.
        if self.ftp.max_connections < 2 {
            return Err(ConfigError::Invalid(
                "ftp.max_connections must be at least 2".into(),
            ));
        }
        if !(1..=MAX_UPLOAD_CHANNELS).contains(&self.ssh.upload_channels) {
            return Err(ConfigError::Invalid(format!(
                "ssh.upload_channels must be from 1 to {MAX_UPLOAD_CHANNELS}"
            )));
        }
        if limits.max_connections_per_uid == 0 {
            return Err(ConfigError::Invalid(
                "limits.max_connections_per_uid must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// Where this daemon listens and keeps state, after flags, config and mode
/// defaults are combined.
#[derive(Debug, Clone)]
pub struct Options {
    pub mode: Mode,
    pub socket: PathBuf,
    pub state_dir: PathBuf,
    pub config: Config,
    /// The file the configuration came from, read again on SIGHUP.
    pub config_path: Option<PathBuf>,
}

impl Options {
    /// Flags win over the config file, which wins over the mode's defaults.
    pub fn resolve(
        mode: Mode,
        socket: Option<PathBuf>,
        state_dir: Option<PathBuf>,
        config: Config,
        uid: u32,
    ) -> Result<Options, ConfigError> {
        let socket = socket
            .or_else(|| config.socket.clone())
            .unwrap_or_else(|| match mode {
                Mode::User => tether_api::paths::user_socket(uid),
                Mode::System => PathBuf::from(tether_api::paths::SYSTEM_SOCKET),
            });
        let state_dir = match state_dir.or_else(|| config.state_dir.clone()) {
            Some(dir) => dir,
            None => match mode {
                Mode::User => tether_api::paths::user_state_dir().ok_or_else(|| {
                    ConfigError::Invalid(
                        "neither XDG_DATA_HOME nor HOME is set: pass --state-dir".into(),
                    )
                })?,
                Mode::System => PathBuf::from(tether_api::paths::SYSTEM_STATE_DIR),
            },
        };
        Ok(Options {
            mode,
            socket,
            state_dir,
            config,
            config_path: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_is_all_defaults() {
        let config = Config::parse("").unwrap();
        assert_eq!(config.limits.max_body_bytes, 1024 * 1024);
        assert_eq!(config.ssh.connect_timeout_secs, 15);
        assert!(config.socket.is_none());
    }

    #[test]
    fn unknown_keys_name_their_line() {
        let err = Config::parse("log = \"debug\"\n[limits]\nmax_body = 3\n").unwrap_err();
        assert!(err.starts_with("line 3:"), "{err}");
        assert!(err.contains("max_body"), "{err}");
    }

    #[test]
    fn wrong_types_and_bad_values_are_refused() {
        assert!(Config::parse("[limits]\nmax_body_bytes = \"big\"\n").is_err());
        let err = Config::parse("[limits]\nmax_head_bytes = 100\n").unwrap_err();
        assert!(err.contains("max_head_bytes"), "{err}");
        assert!(Config::parse("[ssh]\nconnect_timeout_secs = 0\n").is_err());
    }

    #[test]
    fn flags_override_config() {
        let config = Config::parse("socket = \"/c.sock\"\nstate_dir = \"/c\"\n").unwrap();
        let options =
            Options::resolve(Mode::User, Some("/flag.sock".into()), None, config, 1000).unwrap();
        assert_eq!(options.socket, PathBuf::from("/flag.sock"));
        assert_eq!(options.state_dir, PathBuf::from("/c"));
    }
}
