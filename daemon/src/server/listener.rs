//! The listening socket: adopted from systemd, or bound by the daemon.
//!
//! A bound socket is born owner-only (the umask is 077 for the whole daemon)
//! and then narrowed to 0600: there is no moment in which anyone but the
//! daemon's uid can connect. The system daemon then gives it to the socket
//! group and only after that opens it to 0660 for that group: layer one of
//! three, only the group's members can connect at all.
//! An existing path is probed first: a live daemon behind it stops this one;
//! a dead one (connection refused) is a stale socket and is replaced. On exit
//! the socket is removed only if it is still the one this daemon bound.

use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tether_api::types::Mode;

use crate::sys;

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("another tetherd is serving {}; stop it first (or pass --socket for a second one)", .0.display())]
    InUse(PathBuf),
    #[error("{} exists and is not a socket; remove it or choose another --socket", .0.display())]
    NotASocket(PathBuf),
    #[error(
        "{} belongs to uid {owner}, not to this daemon's uid {uid}; refusing to put the socket \
         there (another user may have made it: set XDG_RUNTIME_DIR to a private directory, or \
         pass --socket)",
        dir.display()
    )]
    ForeignDir { dir: PathBuf, owner: u32, uid: u32 },
    #[error("refusing the socket directory {}: {why}", dir.display())]
    UnsafeDir { dir: PathBuf, why: String },
    #[error(
        "the socket group {0:?} does not exist: create it (groupadd --system {0}) or set \
         access.socket_group in the config"
    )]
    NoGroup(String),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub struct Listener {
    pub listener: std::os::unix::net::UnixListener,
    /// The path to remove on exit, with the inode this daemon created there.
    bound: Option<(PathBuf, u64)>,
    pub activated: bool,
}

impl Listener {
    /// Removes the socket file, if this daemon created it and it is still its own.
    pub fn cleanup(&self) {
        if let Some((path, ino)) = &self.bound {
            if std::fs::symlink_metadata(path).is_ok_and(|m| m.ino() == *ino) {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

/// Checks that nothing is serving `path` and removes a stale socket there.
/// Call before opening the store, so a second daemon stops with a clear
/// message rather than on the store's lock.
pub fn claim(path: &Path) -> Result<(), ListenError> {
    let io = |source| ListenError::Io {
        path: path.to_owned(),
        source,
    };
    // Whose directory it is comes first: a socket in someone else's is
    // theirs, however live it looks.
    if let Some(dir) = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && d.exists())
    {
        check_dir(dir, false)?;
    }
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(e)),
    };
    if !meta.file_type().is_socket() {
        return Err(ListenError::NotASocket(path.to_owned()));
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(ListenError::InUse(path.to_owned())),
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
            tracing::info!(socket = %path.display(), "removing stale socket");
            std::fs::remove_file(path).map_err(io)
        }
        Err(e) => Err(io(e)),
    }
}

/// Wraps the socket systemd passed (see [`sys::take_activated_listener`]).
pub fn adopted(listener: std::os::unix::net::UnixListener) -> Result<Listener, ListenError> {
    listener
        .set_nonblocking(true)
        .map_err(|source| ListenError::Io {
            path: PathBuf::from("LISTEN_FDS"),
            source,
        })?;
    Ok(Listener {
        listener,
        bound: None,
        activated: true,
    })
}

/// Binds a new socket at `path`, replacing a stale one.
/// In system mode, `group` is the socket's group (by name).
pub fn bind(path: &Path, mode: Mode, group: &str) -> Result<Listener, ListenError> {
    claim(path)?;
    let gid = match mode {
        Mode::User => None,
        Mode::System => Some(
            crate::access::lookup_group(group)
                .map(|(gid, _)| gid)
                .ok_or_else(|| ListenError::NoGroup(group.to_owned()))?,
        ),
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        prepare_dir(dir, gid)?;
    }
    let io = |source| ListenError::Io {
        path: path.to_owned(),
        source,
    };
    let listener = std::os::unix::net::UnixListener::bind(path).map_err(io)?;
    // Born 0700 under the daemon's umask (owner only); drop the meaningless
    // execute bit. This only ever narrows access.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    if let Some(gid) = gid {
        // The group first, the group's bits after.
        std::os::unix::fs::chown(path, None, Some(gid)).map_err(io)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(io)?;
    }
    listener.set_nonblocking(true).map_err(io)?;
    let ino = std::fs::symlink_metadata(path).map_err(io)?.ino();
    Ok(Listener {
        listener,
        bound: Some((path.to_owned(), ino)),
        activated: false,
    })
}

/// Makes sure the socket's directory is this daemon's alone before a
/// socket is put there: created 0700 if missing (0750 with the socket group,
/// for the system daemon), never a symbolic link, owned by the daemon's uid,
/// and writable by nobody else (else another user could swap the socket for
/// their own). Checks and changes go through one descriptor opened without
/// following links, so what is checked is what is changed.
fn prepare_dir(dir: &Path, gid: Option<u32>) -> Result<(), ListenError> {
    use rustix::fs::{Gid, Mode as FileMode};
    let io = |source: std::io::Error| ListenError::Io {
        path: dir.to_owned(),
        source,
    };
    let created = match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => true,
        Err(e) if e.kind() == ErrorKind::AlreadyExists => false,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            // Missing parents: made as `mkdir -p` would, private too.
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io)?;
            true
        }
        Err(e) => return Err(io(e)),
    };
    let fd = check_dir(dir, created)?;
    if created {
        if let Some(gid) = gid {
            rustix::fs::fchown(&fd, None, Some(Gid::from_raw(gid))).map_err(|e| io(e.into()))?;
            rustix::fs::fchmod(&fd, FileMode::from_raw_mode(0o750)).map_err(|e| io(e.into()))?;
        }
    }
    Ok(())
}

/// Opens `dir` without following a link and checks that it is this
/// daemon's and (unless it was just `created`, 0700) that nobody else may
/// write in it; the descriptor, for changing what was checked.
fn check_dir(dir: &Path, created: bool) -> Result<std::os::fd::OwnedFd, ListenError> {
    use rustix::fs::{Mode as FileMode, OFlags};
    let io = |source: std::io::Error| ListenError::Io {
        path: dir.to_owned(),
        source,
    };
    let fd = rustix::fs::open(
        dir,
        OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::RDONLY,
        FileMode::empty(),
    )
    .map_err(|e| match e {
        rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR => ListenError::UnsafeDir {
            dir: dir.to_owned(),
            why: "it is a symbolic link or not a directory".into(),
        },
        other => io(other.into()),
    })?;
    let stat = rustix::fs::fstat(&fd).map_err(|e| io(e.into()))?;
    let uid = sys::getuid();
    if stat.st_uid != uid {
        return Err(ListenError::ForeignDir {
            dir: dir.to_owned(),
            owner: stat.st_uid,
            uid,
        });
    }
    if !created && stat.st_mode & 0o022 != 0 {
        return Err(ListenError::UnsafeDir {
            dir: dir.to_owned(),
            why: format!(
                "other users may write in it (mode {:o}): run `chmod go-w {}` or choose \
                 another --socket",
                stat.st_mode & 0o7777,
                dir.display()
            ),
        });
    }
    Ok(fd)
}
