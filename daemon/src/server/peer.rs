//! Who is calling, as the kernel says (SO_PEERCRED), and whether they may.
//!
//! The uid comes from the socket, never from the request. A `--user` daemon
//! serves its own uid and root, and everyone else gets `forbidden` for every
//! request, whatever the socket file's mode. The system daemon serves every
//! uid that can reach its socket (the group `tether`) and authorizes each
//! request against grants ([`crate::access::policy`]).

use tether_api::types::Mode;

use crate::error::Error;

pub use crate::access::Peer;

pub fn authorize(mode: Mode, daemon_uid: u32, peer: &Peer) -> Result<(), Error> {
    let allowed = match mode {
        Mode::User => peer.uid == daemon_uid || peer.uid == 0,
        Mode::System => true,
    };
    if allowed {
        return Ok(());
    }
    Err(Error::Forbidden(match mode {
        Mode::User => format!(
            "this tetherd --user serves uid {daemon_uid} only; uid {} may not use it",
            peer.uid
        ),
        Mode::System => format!("uid {} may not use tetherd", peer.uid),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(uid: u32) -> Peer {
        Peer { uid, pid: None }
    }

    #[test]
    fn user_mode_serves_owner_and_root_only() {
        assert!(authorize(Mode::User, 1000, &peer(1000)).is_ok());
        assert!(authorize(Mode::User, 1000, &peer(0)).is_ok());
        assert!(authorize(Mode::User, 1000, &peer(1001)).is_err());
    }

    #[test]
    fn system_mode_serves_every_uid_and_grants_decide() {
        assert!(authorize(Mode::System, 0, &peer(0)).is_ok());
        assert!(authorize(Mode::System, 0, &peer(1000)).is_ok());
    }
}
