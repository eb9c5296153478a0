//! SFTP on a pooled channel, on russh-sftp's raw session: the subsystem
//! start (its reply checked), the server's extensions, error mapping, and the
//! operations `tether files` and `tether cp` need ([`ops`]), with pipelined
//! transfers ([`transfer`]). Paths are the server's: the daemon never touches
//! a local path.
//!
//! The raw session is used directly, rather than russh-sftp's high-level
//! one, because that one hides what tether needs from the server: its
//! extensions (`posix-rename`, `fsync`, `statvfs`, `expand-path`, `limits`),
//! the `longname` of directory entries (user and group names), and the
//! order of SSH_FXP_SYMLINK's arguments, which servers disagree on.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use russh::Channel;
use russh::client::Msg;
use russh_sftp::client::RawSftpSession;
use russh_sftp::client::error::Error as SftpErr;
use russh_sftp::protocol::{FileAttributes, FileType, StatusCode};
use tether_api::files::{FileInfo, FileKind};

use super::SshError;
use super::reply::{Answer, answer};
use crate::remote::{RemoteError, RemoteKind};

pub mod ops;
pub mod transfer;

/// Requests in flight per transfer, chosen by measurement (bench/README.md):
/// 32 lost a fifth of the download rate on loopback; 128 gained about a
/// tenth on uploads but held 23 MiB more per transfer, and `cp -r` runs
/// eight at a time.
pub const IN_FLIGHT: usize = 64;
/// Data per read or write request where the server does not say (OpenSSH's
/// sftp-server takes up to 256 KiB).
const CHUNK: u64 = 255 * 1024;

impl RemoteError {
    /// Maps an SFTP error about `path`.
    pub fn from_sftp(path: &str, error: SftpErr) -> Self {
        let (kind, message) = match &error {
            SftpErr::Status(status) => match status.status_code {
                StatusCode::NoSuchFile => (
                    RemoteKind::NoSuchFile,
                    "no such file or directory".to_owned(),
                ),
                StatusCode::PermissionDenied => {
                    (RemoteKind::PermissionDenied, "permission denied".to_owned())
                }
                _ if status.error_message.is_empty() => {
                    (RemoteKind::Failed, status.status_code.to_string())
                }
                _ => (RemoteKind::Failed, status.error_message.clone()),
            },
            SftpErr::Timeout => (
                RemoteKind::Failed,
                "the SFTP server did not answer in time".to_owned(),
            ),
            other => (RemoteKind::Failed, other.to_string()),
        };
        Self::new(kind, path, message)
    }
}

/// Which order a server takes SSH_FXP_SYMLINK's two paths in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SymlinkOrder {
    /// Target first: OpenSSH's sftp-server (and every server that runs it,
    /// Dropbear's included).
    OpenSsh = 1,
    /// Link first, as the draft specifies (asyncssh, and others).
    Draft = 2,
}

/// The extensions a server offered in its version packet.
#[derive(Debug, Clone, Default)]
pub struct Extensions {
    pub posix_rename: bool,
    pub fsync: bool,
    pub statvfs: bool,
    pub expand_path: bool,
}

/// An SFTP session on one channel.
pub struct Sftp {
    raw: Arc<RawSftpSession>,
    pub extensions: Extensions,
    /// Bytes per read and per write request.
    read_len: u32,
    write_len: u32,
    /// What [`ops`] learned of the symlink order, or 0 before it knows.
    symlink_order: AtomicU8,
    /// The first guess at the order, from the extensions offered.
    symlink_guess: SymlinkOrder,
    /// How long the server took to answer the session's first request.
    pub round_trip: Duration,
}

/// Starts the SFTP subsystem on `channel` and checks the server's answer
/// (within `reply_wait`), then its version packet. `timeout` bounds every
/// request after that.
pub async fn open(
    mut channel: Channel<Msg>,
    addr: &str,
    reply_wait: Duration,
    timeout: Duration,
) -> Result<Sftp, SshError> {
    let failed = |message: String| SshError::Protocol {
        addr: addr.to_owned(),
        message,
    };
    channel
        .request_subsystem(true, "sftp")
        .await
        .map_err(|e| SshError::from_russh(addr, e))?;
    // The server's answer to the request: a refusal (or none) is an error
    // here, not a silent hang in the first SFTP request.
    let mut early = Vec::new();
    let asked = "the SFTP subsystem's start";
    if answer(&mut channel, addr, reply_wait, asked, &mut early).await? == Answer::Refused {
        return Err(failed(
            "the server refused to start its SFTP subsystem".to_owned(),
        ));
    }
    let config = russh_sftp::client::Config {
        max_packet_len: 512 * 1024,
        max_concurrent_reads: IN_FLIGHT,
        max_concurrent_writes: IN_FLIGHT,
        max_write_packet_len: CHUNK as u32 + 1024,
        request_timeout_secs: timeout.as_secs().max(1),
    };
    let mut raw = RawSftpSession::new_with_config(channel.into_stream(), config);
    let asked = std::time::Instant::now();
    // Bytes that are not SFTP (most often a login script that prints) end
    // in a parse error or, when they read as a long packet's length, in a
    // timeout: both get the hint.
    let version = raw.init().await.map_err(|e| {
        let what = match e {
            SftpErr::Timeout => "the SFTP subsystem did not answer its first request".to_owned(),
            other => format!("the SFTP subsystem did not start ({other})"),
        };
        failed(format!(
            "{what}. If a login script (.bashrc, a ForceCommand) prints something, SFTP \
             breaks: the remote shell must produce no output for non-interactive sessions"
        ))
    })?;
    let round_trip = asked.elapsed();
    let offered = |name: &str| version.extensions.contains_key(name);
    let extensions = Extensions {
        posix_rename: offered("posix-rename@openssh.com"),
        fsync: offered("fsync@openssh.com"),
        statvfs: offered("statvfs@openssh.com"),
        expand_path: offered("expand-path@openssh.com"),
    };
    let (mut read_len, mut write_len) = (CHUNK, CHUNK);
    if version
        .extensions
        .get("limits@openssh.com")
        .is_some_and(|v| v == "1")
    {
        if let Ok(limits) = raw.limits().await {
            let limits = russh_sftp::client::rawsession::Limits::from(limits);
            if let Some(len) = limits.read_len.filter(|l| *l > 0) {
                read_len = read_len.min(len);
            }
            if let Some(len) = limits.write_len.filter(|l| *l > 0) {
                write_len = write_len.min(len);
            }
            raw.set_limits(limits);
        }
    }
    Ok(Sftp {
        raw: Arc::new(raw),
        symlink_guess: guess_symlink_order(&version.extensions),
        extensions,
        read_len: read_len as u32,
        write_len: write_len as u32,
        symlink_order: AtomicU8::new(0),
        round_trip,
    })
}

/// Which order SSH_FXP_SYMLINK's paths go in, guessed from the SFTP
/// server's extensions: OpenSSH's sftp-server (also the one Dropbear runs)
/// swaps them, and is known by extensions only it announces together
/// (`lsetstat`, `expand-path`, `users-groups-by-id`) and by announcing no
/// `vendor-id`. Others that copy some of its extensions (asyncssh announces
/// `lsetstat` and a `vendor-id`) follow the draft. The SSH server's version
/// string is no guide: the SFTP server is often another program. [`ops`]
/// checks the link it made either way.
fn guess_symlink_order(extensions: &HashMap<String, String>) -> SymlinkOrder {
    let openssh_only = [
        "lsetstat@openssh.com",
        "expand-path@openssh.com",
        "users-groups-by-id@openssh.com",
    ];
    let like_openssh = openssh_only
        .iter()
        .any(|name| extensions.contains_key(*name));
    if like_openssh && !extensions.contains_key("vendor-id") {
        SymlinkOrder::OpenSsh
    } else {
        SymlinkOrder::Draft
    }
}

impl Sftp {
    /// The raw session, for the transfers.
    fn raw(&self) -> &Arc<RawSftpSession> {
        &self.raw
    }

    fn order(&self) -> SymlinkOrder {
        match self.symlink_order.load(Ordering::Relaxed) {
            1 => SymlinkOrder::OpenSsh,
            2 => SymlinkOrder::Draft,
            _ => self.symlink_guess,
        }
    }

    fn learn_order(&self, order: SymlinkOrder) {
        self.symlink_order.store(order as u8, Ordering::Relaxed);
    }
}

pub fn kind_of(attrs: &FileAttributes) -> FileKind {
    match attrs.file_type() {
        FileType::Dir => FileKind::Dir,
        FileType::File => FileKind::File,
        FileType::Symlink => FileKind::Symlink,
        FileType::Other => FileKind::Other,
    }
}

fn is_dir(attrs: &FileAttributes) -> bool {
    kind_of(attrs) == FileKind::Dir
}

fn is_symlink(attrs: &FileAttributes) -> bool {
    kind_of(attrs) == FileKind::Symlink
}

pub fn info(name: String, attrs: &FileAttributes, target: Option<String>) -> FileInfo {
    FileInfo {
        name,
        kind: kind_of(attrs),
        size: attrs.size.unwrap_or(0),
        mode: attrs.permissions.unwrap_or(0) & 0o7777,
        mtime: u64::from(attrs.mtime.unwrap_or(0)),
        uid: attrs.uid.unwrap_or(0),
        gid: attrs.gid.unwrap_or(0),
        owner: None,
        group: None,
        target,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_symlink_order_follows_the_sftp_server_not_its_neighbours() {
        let announced = |names: &[&str]| -> HashMap<String, String> {
            names.iter().map(|n| (n.to_string(), "1".into())).collect()
        };
        // OpenSSH 9 (internal-sftp, or the sftp-server Dropbear runs).
        let openssh = announced(&[
            "posix-rename@openssh.com",
            "lsetstat@openssh.com",
            "expand-path@openssh.com",
            "users-groups-by-id@openssh.com",
        ]);
        assert_eq!(guess_symlink_order(&openssh), SymlinkOrder::OpenSsh);
        // OpenSSH 8.4.
        let old = announced(&["posix-rename@openssh.com", "lsetstat@openssh.com"]);
        assert_eq!(guess_symlink_order(&old), SymlinkOrder::OpenSsh);
        // asyncssh: some of OpenSSH's extensions, and a vendor-id.
        let asyncssh = announced(&[
            "posix-rename@openssh.com",
            "lsetstat@openssh.com",
            "vendor-id",
        ]);
        assert_eq!(guess_symlink_order(&asyncssh), SymlinkOrder::Draft);
        assert_eq!(guess_symlink_order(&announced(&[])), SymlinkOrder::Draft);
    }
}
