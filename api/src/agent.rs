//! `tether agent`: the caller's ssh-agent socket, served by tetherd.
//!
//! The CLI binds the socket itself, as the caller, in a directory of the
//! caller's (so the file is theirs, 0600), and hands the listening socket to
//! tetherd over an upgraded `POST /v1/agent` ([`AGENT_PROTOCOL`]): one byte
//! carrying the descriptor (`SCM_RIGHTS`), then tetherd answers one JSON
//! [`AgentReply`] and closes. From then on tetherd accepts on it and checks
//! every connection's peer with the kernel; the CLI exits.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// `Upgrade:` token of the hand-over.
pub const AGENT_PROTOCOL: &str = "tether-agent/1";

/// The largest reply either side reads.
pub const MAX_REPLY: usize = 64 * 1024;

/// `POST /v1/agent`: where the caller bound the socket. tetherd records the
/// address the kernel gives for the descriptor, not this.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentRequest {
    pub socket: String,
}

/// What tetherd answers once it holds the socket.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentReply {
    Serving(AgentServing),
    Error(ApiError),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentServing {
    /// The socket's path, as the kernel names it.
    pub socket: String,
    /// How many agent sockets tetherd now serves for the caller.
    pub sockets: usize,
}

/// The caller's agent sockets: those tetherd serves (`GET /v1/agent`), or
/// no longer serves (`DELETE /v1/agent`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AgentSockets {
    pub sockets: Vec<String>,
}

/// Sends `fd` over `stream` with one byte of data.
pub async fn send_fd(stream: &tokio::net::UnixStream, fd: impl AsFd) -> std::io::Result<()> {
    let fds = [fd.as_fd()];
    loop {
        stream.writable().await?;
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        control.push(SendAncillaryMessage::ScmRights(&fds));
        match stream.try_io(tokio::io::Interest::WRITABLE, || {
            rustix::net::sendmsg(
                stream,
                &[IoSlice::new(&[0])],
                &mut control,
                SendFlags::NOSIGNAL,
            )
            .map_err(std::io::Error::from)
        }) {
            Ok(_) => return Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(error) => return Err(error),
        }
    }
}

/// Receives the one descriptor [`send_fd`] sent; anything else (no
/// descriptor, more than one, data without one) is an error, and every
/// descriptor received is closed.
pub async fn recv_fd(stream: &tokio::net::UnixStream) -> std::io::Result<OwnedFd> {
    let invalid =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    loop {
        stream.readable().await?;
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let mut byte = [0u8; 1];
        let result = stream.try_io(tokio::io::Interest::READABLE, || {
            rustix::net::recvmsg(
                stream,
                &mut [IoSliceMut::new(&mut byte)],
                &mut control,
                RecvFlags::CMSG_CLOEXEC,
            )
            .map_err(std::io::Error::from)
        });
        let received = match result {
            Ok(received) => received,
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(error) => return Err(error),
        };
        let mut fds: Vec<OwnedFd> = Vec::new();
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(received) = message {
                fds.extend(received);
            }
        }
        if received.bytes == 0 {
            return Err(invalid("the connection closed before a socket was sent"));
        }
        if received.flags.contains(rustix::net::ReturnFlags::CTRUNC) {
            return Err(invalid("more than one descriptor was sent"));
        }
        return match fds.len() {
            1 => Ok(fds.remove(0)),
            0 => Err(invalid("no socket was sent")),
            _ => Err(invalid("more than one descriptor was sent")),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_descriptor_crosses_and_plain_bytes_are_refused() {
        let (a, b) = tokio::net::UnixStream::pair().unwrap();
        let file = std::fs::File::open("/dev/null").unwrap();
        send_fd(&a, &file).await.unwrap();
        let fd = recv_fd(&b).await.unwrap();
        assert!(rustix::fs::fstat(&fd).is_ok());

        a.try_write(b"x").unwrap();
        let error = recv_fd(&b).await.unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
        drop(a);
        assert!(
            recv_fd(&b).await.is_err(),
            "a closed connection sends nothing"
        );
    }
}
