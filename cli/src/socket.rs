//! Which socket to talk to: `--socket`/`TETHER_SOCKET`, else the system
//! daemon's if it exists, else this user's `tetherd --user` socket.

use std::path::{Path, PathBuf};

use tether_api::paths;

pub fn resolve(explicit: Option<PathBuf>) -> PathBuf {
    if let Some(path) = explicit.filter(|p| !p.as_os_str().is_empty()) {
        return path;
    }
    let system = Path::new(paths::SYSTEM_SOCKET);
    // A socket directory we may not enter still means the system daemon:
    // the error then says why (not in group tether), rather than pointing
    // at a --user socket that was never meant.
    let hidden = system.parent().is_some_and(|dir| {
        std::fs::read_dir(dir).is_err_and(|e| e.kind() == std::io::ErrorKind::PermissionDenied)
    });
    if system.exists() || hidden {
        return system.to_owned();
    }
    paths::user_socket(rustix::process::getuid().as_raw())
}
