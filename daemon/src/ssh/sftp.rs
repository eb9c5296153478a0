//! SFTP on a pooled connection: opening the subsystem, mapping its errors,
//! and the operations `tether sftp` and `tether cp` need.
//!
//! Transfers are pipelined by russh-sftp (many reads and writes in flight);
//! the limits here size that pipeline. Paths are the server's: the daemon
//! never touches a local path.

use russh::Channel;
use russh::client::Msg;
use russh_sftp::client::SftpSession;
use russh_sftp::client::error::Error as SftpErr;
use russh_sftp::client::fs::Metadata;
use russh_sftp::protocol::{FileAttributes, FileType, StatusCode};
use tether_api::files::{FileInfo, FileKind};

use super::SshError;

/// Requests in flight per direction.
const IN_FLIGHT: usize = 64;
/// Data per write request: OpenSSH's sftp-server takes up to 256 KiB.
const WRITE_LEN: u32 = 255 * 1024;
/// How deep `rm -r` and `mkdir -p` go before refusing.
pub const MAX_DEPTH: usize = 128;
/// Symlinks followed in a row before giving up, as the kernel does.
const MAX_LINKS: usize = 40;

/// Why an SFTP operation failed, for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteKind {
    NoSuchFile,
    PermissionDenied,
    Exists,
    NotEmpty,
    DiskFull,
    Failed,
}

#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct RemoteError {
    pub kind: RemoteKind,
    pub path: String,
    pub message: String,
}

impl RemoteError {
    pub fn new(kind: RemoteKind, path: &str, message: impl Into<String>) -> Self {
        Self {
            kind,
            path: path.to_owned(),
            message: message.into(),
        }
    }

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

    pub fn from_io(path: &str, error: std::io::Error) -> Self {
        let kind = match error.kind() {
            std::io::ErrorKind::NotFound => RemoteKind::NoSuchFile,
            std::io::ErrorKind::PermissionDenied => RemoteKind::PermissionDenied,
            _ => RemoteKind::Failed,
        };
        let message = error.to_string();
        // russh-sftp reports statuses through io::Error with their text.
        let kind = if message.contains("No such file") {
            RemoteKind::NoSuchFile
        } else if message.contains("Permission denied") {
            RemoteKind::PermissionDenied
        } else {
            kind
        };
        Self::new(kind, path, message)
    }
}

/// Starts the SFTP subsystem on a fresh channel.
/// `timeout` bounds every request, the subsystem's first answer included.
pub async fn open(
    channel: Channel<Msg>,
    addr: &str,
    timeout: std::time::Duration,
) -> Result<SftpSession, SshError> {
    channel
        .request_subsystem(true, "sftp")
        .await
        .map_err(|e| SshError::from_russh(addr, e))?;
    let config = russh_sftp::client::Config {
        max_packet_len: 512 * 1024,
        max_concurrent_reads: IN_FLIGHT,
        max_concurrent_writes: IN_FLIGHT,
        max_write_packet_len: WRITE_LEN + 1024,
        request_timeout_secs: timeout.as_secs().max(1),
    };
    SftpSession::new_with_config(channel.into_stream(), config)
        .await
        .map_err(|e| SshError::Protocol {
            addr: addr.to_owned(),
            message: format!("the SFTP subsystem did not start: {e}"),
        })
}

pub fn kind_of(meta: &Metadata) -> FileKind {
    match meta.file_type() {
        FileType::Dir => FileKind::Dir,
        FileType::File => FileKind::File,
        FileType::Symlink => FileKind::Symlink,
        FileType::Other => FileKind::Other,
    }
}

fn is_dir(meta: &Metadata) -> bool {
    kind_of(meta) == FileKind::Dir
}

fn is_symlink(meta: &Metadata) -> bool {
    kind_of(meta) == FileKind::Symlink
}

pub fn info(name: String, meta: &Metadata, target: Option<String>) -> FileInfo {
    FileInfo {
        name,
        kind: kind_of(meta),
        size: meta.size.unwrap_or(0),
        mode: meta.permissions.unwrap_or(0) & 0o7777,
        mtime: u64::from(meta.mtime.unwrap_or(0)),
        uid: meta.uid.unwrap_or(0),
        gid: meta.gid.unwrap_or(0),
        target,
    }
}

pub fn check_path(path: &str) -> Result<(), RemoteError> {
    if path.is_empty() || path.contains('\0') || path.len() > 4096 {
        return Err(RemoteError::new(
            RemoteKind::Failed,
            path,
            "not a usable path (empty, NUL or over 4096 bytes)",
        ));
    }
    Ok(())
}

/// Joins a directory and a name the way the server's paths read.
pub fn join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

pub async fn stat(sftp: &SftpSession, path: &str, follow: bool) -> Result<FileInfo, RemoteError> {
    let meta = if follow {
        sftp.metadata(path).await
    } else {
        sftp.symlink_metadata(path).await
    }
    .map_err(|e| RemoteError::from_sftp(path, e))?;
    let target = if is_symlink(&meta) {
        sftp.read_link(path).await.ok()
    } else {
        None
    };
    Ok(info(path.to_owned(), &meta, target))
}

pub async fn list(sftp: &SftpSession, path: &str) -> Result<Vec<FileInfo>, RemoteError> {
    let entries = sftp
        .read_dir(path)
        .await
        .map_err(|e| RemoteError::from_sftp(path, e))?;
    let mut out = Vec::new();
    for entry in entries {
        let name = entry.file_name();
        if name == "." || name == ".." {
            continue;
        }
        let meta = entry.metadata();
        let target = if is_symlink(&meta) {
            sftp.read_link(join(path, &name)).await.ok()
        } else {
            None
        };
        out.push(info(name, &meta, target));
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

pub async fn mkdir(
    sftp: &SftpSession,
    path: &str,
    parents: bool,
    mode: Option<u32>,
) -> Result<(), RemoteError> {
    let make = async |dir: &str| -> Result<(), RemoteError> {
        match sftp.create_dir(dir).await {
            Ok(()) => {
                if let Some(mode) = mode {
                    chmod(sftp, dir, mode).await?;
                }
                Ok(())
            }
            Err(error) => match sftp.metadata(dir).await {
                Ok(meta) if is_dir(&meta) && parents => Ok(()),
                Ok(_) => Err(RemoteError::new(RemoteKind::Exists, dir, "exists already")),
                Err(_) => Err(RemoteError::from_sftp(dir, error)),
            },
        }
    };
    if !parents {
        return make(path).await;
    }
    let absolute = path.starts_with('/');
    let mut prefix = String::new();
    for (depth, part) in path.split('/').filter(|p| !p.is_empty()).enumerate() {
        if depth >= MAX_DEPTH {
            return Err(RemoteError::new(RemoteKind::Failed, path, "too deep"));
        }
        if absolute || !prefix.is_empty() {
            prefix.push('/');
        }
        prefix.push_str(part);
        make(&prefix).await?;
    }
    Ok(())
}

/// Attributes for a file while it is being written: owner-only.
pub fn private_attributes() -> FileAttributes {
    FileAttributes {
        permissions: Some(0o600),
        ..FileAttributes::empty()
    }
}

/// What is at `path` (not following a final symlink), or `None`.
pub async fn existing(sftp: &SftpSession, path: &str) -> Result<Option<Metadata>, RemoteError> {
    match sftp.symlink_metadata(path).await {
        Ok(meta) => Ok(Some(meta)),
        Err(error) => {
            let error = RemoteError::from_sftp(path, error);
            match error.kind {
                RemoteKind::NoSuchFile => Ok(None),
                _ => Err(error),
            }
        }
    }
}

/// The path a chain of symlinks at `path` ends at (itself when it is no
/// link); a dangling chain ends where the file would be created.
pub async fn follow_links(sftp: &SftpSession, path: &str) -> Result<String, RemoteError> {
    let mut current = path.to_owned();
    for _ in 0..MAX_LINKS {
        match existing(sftp, &current).await? {
            Some(meta) if is_symlink(&meta) => {
                let target = sftp
                    .read_link(current.as_str())
                    .await
                    .map_err(|e| RemoteError::from_sftp(&current, e))?;
                current = if target.starts_with('/') {
                    target
                } else {
                    match current.rsplit_once('/') {
                        Some((dir, _)) => join(if dir.is_empty() { "/" } else { dir }, &target),
                        None => target,
                    }
                };
            }
            _ => return Ok(current),
        }
    }
    Err(RemoteError::new(
        RemoteKind::Failed,
        path,
        "too many levels of symbolic links",
    ))
}

/// Sets `attrs` on `path`: owner and group first where asked (a server that
/// does not allow it keeps its own, silently, as scp does), then mode and
/// times. With `only_changes`, nothing is sent when `attrs` asks nothing of
/// mode or times.
pub async fn set_attributes(
    sftp: &SftpSession,
    path: &str,
    attrs: &FileAttributes,
    only_changes: bool,
) -> Result<(), RemoteError> {
    if let (Some(uid), Some(gid)) = (attrs.uid, attrs.gid) {
        let owner = FileAttributes {
            uid: Some(uid),
            gid: Some(gid),
            ..FileAttributes::empty()
        };
        let _ = sftp.set_metadata(path, owner).await;
    }
    let rest = FileAttributes {
        permissions: attrs.permissions,
        atime: attrs.atime,
        mtime: attrs.mtime,
        ..FileAttributes::empty()
    };
    if only_changes && attrs.atime.is_none() && attrs.mtime.is_none() {
        return Ok(());
    }
    if rest.permissions.is_none() && rest.mtime.is_none() {
        return Ok(());
    }
    sftp.set_metadata(path, rest)
        .await
        .map_err(|e| RemoteError::from_sftp(path, e))
}

pub async fn chmod(sftp: &SftpSession, path: &str, mode: u32) -> Result<(), RemoteError> {
    let attrs = FileAttributes {
        permissions: Some(mode & 0o7777),
        ..FileAttributes::empty()
    };
    sftp.set_metadata(path, attrs)
        .await
        .map_err(|e| RemoteError::from_sftp(path, e))
}

pub async fn touch(sftp: &SftpSession, path: &str, mtime: u64) -> Result<(), RemoteError> {
    let secs = u32::try_from(mtime).unwrap_or(u32::MAX);
    let attrs = FileAttributes {
        atime: Some(secs),
        mtime: Some(secs),
        ..FileAttributes::empty()
    };
    sftp.set_metadata(path, attrs)
        .await
        .map_err(|e| RemoteError::from_sftp(path, e))
}

/// Removes a file, a symlink, or (with `recursive`) a whole tree. Symlinks
/// are removed, never followed.
pub async fn remove(sftp: &SftpSession, path: &str, recursive: bool) -> Result<(), RemoteError> {
    let meta = sftp
        .symlink_metadata(path)
        .await
        .map_err(|e| RemoteError::from_sftp(path, e))?;
    if !is_dir(&meta) {
        return sftp
            .remove_file(path)
            .await
            .map_err(|e| RemoteError::from_sftp(path, e));
    }
    if !recursive {
        return Err(RemoteError::new(
            RemoteKind::Failed,
            path,
            "is a directory (use rm -r, or rmdir)",
        ));
    }
    // Depth-first without recursion: directories are removed after their contents.
    let mut stack = vec![(path.to_owned(), false)];
    while let Some((dir, emptied)) = stack.pop() {
        if stack.len() > MAX_DEPTH {
            return Err(RemoteError::new(RemoteKind::Failed, path, "too deep"));
        }
        if emptied {
            sftp.remove_dir(&dir)
                .await
                .map_err(|e| RemoteError::from_sftp(&dir, e))?;
            continue;
        }
        stack.push((dir.clone(), true));
        for entry in list(sftp, &dir).await? {
            let child = join(&dir, &entry.name);
            if entry.kind == FileKind::Dir {
                stack.push((child, false));
            } else {
                sftp.remove_file(&child)
                    .await
                    .map_err(|e| RemoteError::from_sftp(&child, e))?;
            }
        }
    }
    Ok(())
}

/// Why a write to `path` failed, as precisely as the server lets us tell:
/// SFTP v3 reports a full disk as a bare `Failure`, so the file system's
/// free space (`statvfs@openssh.com`, where offered) decides.
pub async fn explain_write_failure(
    sftp: &SftpSession,
    path: &str,
    error: RemoteError,
) -> RemoteError {
    if error.kind != RemoteKind::Failed {
        return error;
    }
    let dir = match path.rsplit_once('/') {
        Some(("", _)) => "/",
        Some((dir, _)) => dir,
        None => ".",
    };
    match sftp.fs_info(dir).await {
        Ok(Some(stat)) if stat.blocks_avail == 0 || stat.inodes_avail == 0 => {
            RemoteError::new(RemoteKind::DiskFull, path, "the remote file system is full")
        }
        _ => error,
    }
}

/// Makes a symlink at `link` pointing to `target`.
///
/// OpenSSH's sftp-server takes SSH_FXP_SYMLINK's two paths in the opposite
/// order to the draft that russh-sftp follows (target first), and every
/// common server does as OpenSSH does; so the arguments are swapped here.
pub async fn symlink(sftp: &SftpSession, target: &str, link: &str) -> Result<(), RemoteError> {
    if existing(sftp, link).await?.is_some() {
        return Err(RemoteError::new(RemoteKind::Exists, link, "exists already"));
    }
    sftp.symlink(target, link)
        .await
        .map_err(|e| RemoteError::from_sftp(link, e))
}

pub async fn rmdir(sftp: &SftpSession, path: &str) -> Result<(), RemoteError> {
    let Err(error) = sftp.remove_dir(path).await else {
        return Ok(());
    };
    let error = RemoteError::from_sftp(path, error);
    if error.kind != RemoteKind::Failed {
        return Err(error);
    }
    // A bare `Failure`: say why, where the server lets us look.
    match list(sftp, path).await {
        Ok(entries) if !entries.is_empty() => Err(RemoteError::new(
            RemoteKind::NotEmpty,
            path,
            format!(
                "the directory is not empty ({} entries; `rm -r` removes a tree)",
                entries.len()
            ),
        )),
        _ => Err(error),
    }
}

/// The SSH string encoding, for extension payloads.
fn ssh_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Renames `from` to `to`. Plain SFTP rename refuses an existing target, so
/// where one exists OpenSSH's `posix-rename@openssh.com` replaces it in one
/// step, on a second SFTP channel (russh-sftp's session does not expose
/// extensions).
///
/// Replacing an existing `to` takes OpenSSH's `posix-rename` extension, sent
/// on a second SFTP channel that `second_channel` opens; it returns the
/// channel and a guard (the pool lease) held until the rename is done.
pub async fn rename<G>(
    sftp: &SftpSession,
    from: &str,
    to: &str,
    second_channel: impl AsyncFnOnce() -> Result<(Channel<Msg>, G), RemoteError>,
) -> Result<(), RemoteError> {
    // Checked first, so that the error names the path that is wrong.
    if existing(sftp, from).await?.is_none() {
        return Err(RemoteError::new(
            RemoteKind::NoSuchFile,
            from,
            "no such file or directory",
        ));
    }
    match existing(sftp, to).await? {
        Some(meta) if is_dir(&meta) => {
            return Err(RemoteError::new(
                RemoteKind::Exists,
                to,
                "is a directory: name the new path inside it",
            ));
        }
        _ => {}
    }
    if sftp.symlink_metadata(to).await.is_err() {
        return sftp
            .rename(from, to)
            .await
            .map_err(|e| RemoteError::from_sftp(to, e));
    }
    let (channel, _guard) = second_channel().await?;
    channel
        .request_subsystem(true, "sftp")
        .await
        .map_err(|e| RemoteError::new(RemoteKind::Failed, to, e.to_string()))?;
    let raw = russh_sftp::client::RawSftpSession::new(channel.into_stream());
    let version = raw
        .init()
        .await
        .map_err(|e| RemoteError::from_sftp(to, e))?;
    if !version.extensions.contains_key("posix-rename@openssh.com") {
        return Err(RemoteError::new(
            RemoteKind::Exists,
            to,
            "exists, and this server cannot replace a file in one step (no posix-rename)",
        ));
    }
    let mut data = Vec::new();
    ssh_string(&mut data, from);
    ssh_string(&mut data, to);
    let reply = raw
        .extended("posix-rename@openssh.com", data)
        .await
        .map_err(|e| RemoteError::from_sftp(to, e))?;
    let _ = raw.close_session();
    match reply {
        russh_sftp::protocol::Packet::Status(status) if status.status_code == StatusCode::Ok => {
            Ok(())
        }
        russh_sftp::protocol::Packet::Status(status) => {
            Err(RemoteError::from_sftp(to, SftpErr::Status(status)))
        }
        _ => Err(RemoteError::new(
            RemoteKind::Failed,
            to,
            "unexpected reply to posix-rename",
        )),
    }
}
