//! tether's own failures: a stable code and a message that says what to do.

use tether_api::client::ClientError;

use crate::output::printable;

#[derive(Debug)]
pub struct Failure {
    pub code: String,
    pub message: String,
}

impl Failure {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
        }
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
                format!(
                    "cannot reach tetherd at {}: {source}. Only members of the socket's group \
                     (tether) may connect: ask root to run `usermod -aG tether {}`, then log in again",
                    path.display(),
                    std::env::var("USER").unwrap_or_else(|_| "YOUR-USER".into())
                )
            }
            ClientError::Connect { path, source } => format!(
                "cannot reach tetherd at {}: {source}. Is it running? Start it with `tetherd --user`, \
                 or check `systemctl status tetherd`; --socket or TETHER_SOCKET choose another socket",
                path.display()
            ),
            other => other.to_string(),
        };
        Failure {
            code: error.code().to_owned(),
            message,
        }
    }
}

pub type Result<T> = std::result::Result<T, Failure>;
