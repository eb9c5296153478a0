//! The server side of SOCKS5 (RFC 1928) as far as `tether forward -D`
//! needs it: no authentication, CONNECT only; the destination is then
//! reached through the profile's server.

use std::time::Duration;

use tether_api::error::ErrorCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a client has to say where it wants to go.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

const VERSION: u8 = 5;
const NO_AUTHENTICATION: u8 = 0;
const NO_ACCEPTABLE_METHOD: u8 = 0xff;
const CONNECT: u8 = 1;

/// The reply codes tether sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    Succeeded = 0,
    GeneralFailure = 1,
    NotAllowed = 2,
    HostUnreachable = 4,
    ConnectionRefused = 5,
    CommandNotSupported = 7,
    AddressTypeNotSupported = 8,
}

impl Reply {
    /// The reply for a daemon's refusal.
    pub fn for_code(code: Option<ErrorCode>) -> Reply {
        match code {
            Some(
                ErrorCode::Forbidden
                | ErrorCode::ActionNotAllowed
                | ErrorCode::ProfileNotFound
                | ErrorCode::MfaRequired,
            ) => Reply::NotAllowed,
            Some(ErrorCode::ConnectFailed) => Reply::ConnectionRefused,
            Some(ErrorCode::Timeout) => Reply::HostUnreachable,
            _ => Reply::GeneralFailure,
        }
    }
}

/// Reads the client's greeting and request: where it wants to connect.
/// A client that asks for something else gets its reply here and `None`.
pub async fn destination(tcp: &mut TcpStream) -> Option<(String, u16)> {
    tokio::time::timeout(HANDSHAKE_TIMEOUT, negotiate(tcp))
        .await
        .ok()
        .flatten()
}

async fn negotiate(tcp: &mut TcpStream) -> Option<(String, u16)> {
    let mut head = [0u8; 2];
    tcp.read_exact(&mut head).await.ok()?;
    if head[0] != VERSION {
        return None;
    }
    let mut methods = vec![0u8; usize::from(head[1])];
    tcp.read_exact(&mut methods).await.ok()?;
    if !methods.contains(&NO_AUTHENTICATION) {
        let _ = tcp.write_all(&[VERSION, NO_ACCEPTABLE_METHOD]).await;
        return None;
    }
    tcp.write_all(&[VERSION, NO_AUTHENTICATION]).await.ok()?;
    let mut request = [0u8; 4];
    tcp.read_exact(&mut request).await.ok()?;
    if request[0] != VERSION {
        return None;
    }
    let host = match request[3] {
        1 => {
            let mut ip = [0u8; 4];
            tcp.read_exact(&mut ip).await.ok()?;
            std::net::Ipv4Addr::from(ip).to_string()
        }
        3 => {
            let length = tcp.read_u8().await.ok()?;
            let mut name = vec![0u8; usize::from(length)];
            tcp.read_exact(&mut name).await.ok()?;
            String::from_utf8(name).ok()?
        }
        4 => {
            let mut ip = [0u8; 16];
            tcp.read_exact(&mut ip).await.ok()?;
            std::net::Ipv6Addr::from(ip).to_string()
        }
        _ => {
            reply(tcp, Reply::AddressTypeNotSupported).await;
            return None;
        }
    };
    let port = tcp.read_u16().await.ok()?;
    if request[1] != CONNECT {
        reply(tcp, Reply::CommandNotSupported).await;
        return None;
    }
    Some((host, port))
}

/// Sends `code` with an unspecified bound address (the server's end of the
/// connection is not ours to tell).
pub async fn reply(tcp: &mut TcpStream, code: Reply) {
    let _ = tcp
        .write_all(&[VERSION, code as u8, 0, 1, 0, 0, 0, 0, 0, 0])
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pair() -> (TcpStream, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (client, server)
    }

    #[tokio::test]
    async fn a_connect_by_name_is_read_and_other_commands_are_refused() {
        let (mut client, mut server) = pair().await;
        client
            .write_all(&[
                5, 1, 0, 5, 1, 0, 3, 9, b'l', b'o', b'c', b'a', b'l', b'h', b'o', b's', b't', 0x15,
                0x38,
            ])
            .await
            .unwrap();
        assert_eq!(
            destination(&mut server).await,
            Some(("localhost".into(), 5432))
        );
        let mut answer = [0u8; 2];
        client.read_exact(&mut answer).await.unwrap();
        assert_eq!(answer, [5, 0]);

        // BIND is not offered.
        let (mut client, mut server) = pair().await;
        client
            .write_all(&[5, 1, 0, 5, 2, 0, 1, 127, 0, 0, 1, 0, 80])
            .await
            .unwrap();
        assert_eq!(destination(&mut server).await, None);
        let mut answer = [0u8; 12];
        client.read_exact(&mut answer).await.unwrap();
        assert_eq!(answer[3], Reply::CommandNotSupported as u8);

        // A client that wants to authenticate gets no method.
        let (mut client, mut server) = pair().await;
        client.write_all(&[5, 1, 2]).await.unwrap();
        assert_eq!(destination(&mut server).await, None);
        let mut answer = [0u8; 2];
        client.read_exact(&mut answer).await.unwrap();
        assert_eq!(answer, [5, 0xff]);
    }
}
