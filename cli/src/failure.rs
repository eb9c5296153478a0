//! tether's own failures: a stable code and a message that says what to do.

use tether_api::client::ClientError;
use tether_api::error::ErrorCode;

use crate::output::printable;

#[derive(Debug)]
pub struct Failure {
    pub code: String,
    pub message: String,
    /// The daemon's code, typed, when the daemon refused.
    pub api: Option<ErrorCode>,
}

/// The client's own code for an answer it could not read.
pub const PROTOCOL_ERROR: &str = "protocol_error";

impl Failure {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
            api: None,
        }
    }

    /// Whether the daemon refused with `code`.
    pub fn is(&self, code: ErrorCode) -> bool {
        self.api == Some(code)
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self::new("usage", message)
    }

    /// Prints `tether: error[CODE]: MESSAGE`; the message may quote a
    /// server or a file name, so it is made [`printable`].
    pub fn print(&self) {
        eprintln!(
            "tether: error[{}]: {}",
            printable(&self.code),
            printable(&self.message)
        );
    }
}

impl From<ClientError> for Failure {
    fn from(error: ClientError) -> Self {
        let message = match &error {
            ClientError::Connect { path, source }
                if source.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                let group = socket_group(path).unwrap_or_else(|| "tether".into());
                format!(
                    "cannot reach tetherd at {}: {source}. Only members of the socket's group \
                     ({group}) may connect: ask root to run `usermod -aG {group} {}`, then log in \
                     again",
                    path.display(),
                    nix::unistd::User::from_uid(nix::unistd::getuid())
                        .ok()
                        .flatten()
                        .map(|u| u.name)
                        .unwrap_or_else(|| "YOUR-USER".into())
                )
            }
            ClientError::Connect { path, .. }
                if path.as_path() != std::path::Path::new(tether_api::paths::SYSTEM_SOCKET) =>
            {
                format!(
                    "no tetherd is listening at {}: start yours with `systemctl --user start \
                     tetherd.socket` (or `tetherd --user &`)",
                    path.display()
                )
            }
            ClientError::Connect { path, source } => format!(
                "cannot reach tetherd at {}: {source}: check `systemctl status tetherd`",
                path.display()
            ),
            other => other.to_string(),
        };
        Failure {
            code: error.code().to_owned(),
            message,
            api: error.api_code(),
        }
    }
}

/// The group of the socket (or of its directory, where the socket cannot
/// be reached), by name.
fn socket_group(path: &std::path::Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let gid = std::fs::metadata(path)
        .ok()
        .or_else(|| std::fs::metadata(path.parent()?).ok())?
        .gid();
    nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))
        .ok()
        .flatten()
        .map(|g| g.name)
}

pub type Result<T> = std::result::Result<T, Failure>;
