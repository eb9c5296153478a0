//! Who is calling, as the kernel says (SO_PEERCRED), and whether they may.
//!
//! The uid comes from the socket, never from the request. Until grants exist
//! the rule is simple: a `--user` daemon serves its own uid and root; the
//! system daemon serves root only. Everyone else gets `forbidden` for every
//! request, whatever the socket file's mode.

use tether_api::types::Mode;

use crate::error::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub gid: u32,
    pub pid: Option<i32>,
}

impl Peer {
    pub fn from_stream(stream: &tokio::net::UnixStream) -> std::io::Result<Peer> {
        let cred = stream.peer_cred()?;
        Ok(Peer {
            uid: cred.uid(),
            gid: cred.gid(),
            pid: cred.pid(),
        })
    }
}

pub fn authorize(mode: Mode, daemon_uid: u32, peer: &Peer) -> Result<(), Error> {
    let allowed = match mode {
        Mode::User => peer.uid == daemon_uid || peer.uid == 0,
        Mode::System => peer.uid == 0,
    };
    if allowed {
        return Ok(());
    }
    Err(Error::Forbidden(match mode {
        Mode::User => format!(
            "this tetherd --user serves uid {daemon_uid} only; uid {} may not use it",
            peer.uid
        ),
        Mode::System => format!("uid {} may not use tetherd: only root is served", peer.uid),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(uid: u32) -> Peer {
        Peer {
            uid,
            gid: uid,
            pid: None,
        }
    }

    #[test]
    fn user_mode_serves_owner_and_root_only() {
        assert!(authorize(Mode::User, 1000, &peer(1000)).is_ok());
        assert!(authorize(Mode::User, 1000, &peer(0)).is_ok());
        assert!(authorize(Mode::User, 1000, &peer(1001)).is_err());
    }

    #[test]
    fn system_mode_serves_root_only_until_grants() {
        assert!(authorize(Mode::System, 0, &peer(0)).is_ok());
        assert!(authorize(Mode::System, 0, &peer(1000)).is_err());
    }
}
