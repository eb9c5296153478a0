//! Where the daemon listens and keeps its state, shared so that `tether` finds
//! the socket that `tetherd` made without being told.

use std::env;
use std::path::PathBuf;

/// Socket of the system daemon (systemd socket unit or `tetherd` as root).
pub const SYSTEM_SOCKET: &str = "/run/tether/tether.sock";

/// State directory of the system daemon.
pub const SYSTEM_STATE_DIR: &str = "/var/lib/tether";

/// Environment variable naming the socket for every `tether` command.
pub const SOCKET_ENV: &str = "TETHER_SOCKET";

fn non_empty_env(name: &str) -> Option<PathBuf> {
    env::var_os(name)
        .filter(|value| !value.is_empty())
        .map(PathBuf::from)
}

/// The `--user` daemon's runtime directory: `$XDG_RUNTIME_DIR/tether`, or,
/// where no runtime directory is set (containers, `su` sessions),
/// `$TMPDIR/tether-<uid>` which the daemon creates 0700 and checks is its own.
pub fn user_runtime_dir(uid: u32) -> PathBuf {
    match non_empty_env("XDG_RUNTIME_DIR") {
        Some(dir) => dir.join("tether"),
        None => env::temp_dir().join(format!("tether-{uid}")),
    }
}

/// The calling process's real uid.
pub fn current_uid() -> u32 {
    rustix::process::getuid().as_raw()
}

/// The `--user` daemon's socket.
pub fn user_socket(uid: u32) -> PathBuf {
    user_runtime_dir(uid).join("tether.sock")
}

/// The `--user` daemon's state: `$XDG_DATA_HOME/tether`, else
/// `$HOME/.local/share/tether`. `None` when neither variable is set.
pub fn user_state_dir() -> Option<PathBuf> {
    non_empty_env("XDG_DATA_HOME")
        .map(|dir| dir.join("tether"))
        .or_else(|| non_empty_env("HOME").map(|home| home.join(".local/share/tether")))
}
