//! Which socket to talk to: `--socket`/`TETHER_SOCKET`, else the system
//! daemon's if it exists, else this user's `tetherd --user` socket.

use std::path::{Path, PathBuf};

use tether_api::paths;

pub fn resolve(explicit: Option<PathBuf>) -> PathBuf {
    if let Some(path) = explicit.filter(|p| !p.as_os_str().is_empty()) {
        return path;
    }
    let system = Path::new(paths::SYSTEM_SOCKET);
    if system.exists() {
        return system.to_owned();
    }
    paths::user_socket(rustix::process::getuid().as_raw())
}
