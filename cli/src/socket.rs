//! Which socket to talk to: `--socket`/`TETHER_SOCKET`, else the system
//! daemon's if it exists, else this user's `tetherd --user` socket.
//!
//! The `--user` socket's directory must be private before anything is sent
//! through it: owned by the caller, not a symlink, open to nobody else.
//! Where `XDG_RUNTIME_DIR` is unset (su, sudo -u, cron, containers) it is
//! `$TMPDIR/tether-UID`, a name any local user could create first. The
//! client also checks who listens on every socket (see
//! [`tether_api::client`]), so a planted socket gets nothing either way.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tether_api::paths;

use crate::failure::{Failure, Result};

pub fn resolve(explicit: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(path) = explicit.filter(|p| !p.as_os_str().is_empty()) {
        return Ok(path);
    }
    let system = Path::new(paths::SYSTEM_SOCKET);
    // A socket directory we may not enter still means the system daemon:
    // the error then says why (not in group tether), rather than pointing
    // at a --user socket that was never meant.
    let hidden = system.parent().is_some_and(|dir| {
        std::fs::read_dir(dir).is_err_and(|e| e.kind() == std::io::ErrorKind::PermissionDenied)
    });
    if system.exists() || hidden {
        return Ok(system.to_owned());
    }
    let uid = paths::current_uid();
    let dir = paths::user_runtime_dir(uid);
    check_private_dir(
        &dir,
        uid,
        "tetherd --user socket directory",
        "Set XDG_RUNTIME_DIR to a private directory (or pass --socket) for both tetherd --user \
         and tether",
    )?;
    Ok(dir.join("tether.sock"))
}

/// Refuses a socket directory (`what`, for the message, with `remedy`) that
/// is not the caller's alone. A missing one is fine: nothing listens there.
pub(crate) fn check_private_dir(dir: &Path, uid: u32, what: &str, remedy: &str) -> Result<()> {
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(Failure::new(
                "untrusted_socket",
                format!("cannot check {}: {e}", dir.display()),
            ));
        }
    };
    let why = if meta.file_type().is_symlink() {
        Some("it is a symbolic link".to_owned())
    } else if !meta.is_dir() {
        Some("it is not a directory".to_owned())
    } else if meta.uid() != uid {
        Some(format!(
            "it belongs to uid {}, not to you (uid {uid})",
            meta.uid()
        ))
    } else if meta.permissions().mode() & 0o077 != 0 {
        Some(format!(
            "other users have access to it (mode {:o}); run `chmod 700 {}`",
            meta.permissions().mode() & 0o7777,
            dir.display()
        ))
    } else {
        None
    };
    match why {
        None => Ok(()),
        Some(why) => Err(Failure::new(
            "untrusted_socket",
            format!(
                "refusing the {what} {}: {why}. Nothing was sent. {remedy}",
                dir.display()
            ),
        )),
    }
}
