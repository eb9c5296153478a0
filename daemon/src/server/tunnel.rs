//! `POST /v1/profiles/{name}/tunnel`: one TCP connection made by a
//! profile's server (`direct-tcpip`), for `tether forward` and `tether
//! proxy` (see [`tether_api::tunnel`]).
//!
//! The grant is checked and the channel opened before the upgrade, so a
//! refusal (no `--forward` for the destination, a server that cannot
//! connect there) is an ordinary error answer. Each forwarded connection
//! is on the trail at its end (`forward`): destination, origin, bytes each
//! way and duration, never its content. tetherd binds no port for a
//! caller: the CLI accepts with its own permissions and hands the
//! connection over.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use ::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tether_api::tunnel::{TUNNEL_PROTOCOL, TunnelRequest};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

use super::channel::Recorder;
use super::http::{Resp, read_json, received_fd, switching, upgraded_socket, wants_upgrade};
use super::{App, profiles};
use crate::access::Caller;
use crate::access::policy::Op;
use crate::audit::Event;
use crate::error::Error;
use crate::ssh::pool::{Lease, Open};

/// Each direction's buffer: several SSH packets (32 KiB) per system call
/// (tokio's default, 8 KiB, takes four calls for one packet).
const BUFFER: usize = 256 * 1024;

pub async fn open(
    app: &Arc<App>,
    caller: &Caller,
    name: &str,
    mut request: Request<Incoming>,
) -> Result<Resp, Error> {
    let wanted = wants_upgrade(&request, TUNNEL_PROTOCOL);
    let on_upgrade = hyper::upgrade::on(&mut request);
    let limits = app.config().limits.clone();
    // The destination is in the body: the access check comes right after.
    let body: TunnelRequest = read_json(request, &limits).await?;
    app.authorize(
        caller,
        name,
        Op::Forward {
            host: &body.host,
            port: body.port,
        },
    )?;
    profiles::check_host(&body.host)?;
    if body.port == 0 {
        return Err(Error::BadRequest("port 0 is no destination".into()));
    }
    if !wanted {
        return Err(Error::UpgradeRequired("a tunnel".into(), TUNNEL_PROTOCOL));
    }
    let target = profiles::target(app, name)?;
    let origin = body.origin.as_deref().unwrap_or("127.0.0.1:0");
    let (origin_host, origin_port) = origin
        .rsplit_once(':')
        .and_then(|(host, port)| Some((host.trim_matches(['[', ']']), port.parse().ok()?)))
        .unwrap_or(("127.0.0.1", 0));
    let open = Open::Tcp {
        host: &body.host,
        port: body.port,
        from: (origin_host, origin_port),
    };
    let (channel, lease) = app
        .pool
        .open(&target, open, &Recorder::pooled(app, caller, name))
        .await
        .map_err(|e| e.in_profile(name))?;
    tracing::debug!(profile = name, host = %body.host, port = body.port, kind = body.kind.as_str(), "tunnel opened");
    let app = app.clone();
    let caller = caller.clone();
    let name = name.to_owned();
    let stopping = app.stopping();
    app.clone().spawn(async move {
        let started = Instant::now();
        let mut remote = Counted::new(channel.into_stream());
        let ended = tokio::select! {
            ended = bridge(on_upgrade, body.socket, &mut remote) => ended,
            () = stopping.cancelled() => Err(Error::Internal("tetherd is stopping".into())),
        };
        settle(&app, &caller, &name, &body, &lease, &remote, started, ended).await;
    });
    Ok(switching(TUNNEL_PROTOCOL))
}

/// Moves bytes between the caller's side and `remote` until both
/// directions end (or, with a handed-over socket, until the CLI goes).
async fn bridge(
    on_upgrade: hyper::upgrade::OnUpgrade,
    socket: bool,
    remote: &mut Counted,
) -> Result<(), Error> {
    let upgraded = on_upgrade
        .await
        .map_err(|e| Error::BadRequest(format!("the connection was not upgraded: {e}")))?;
    if !socket {
        tokio::io::copy_bidirectional_with_sizes(
            &mut TokioIo::new(upgraded),
            remote,
            BUFFER,
            BUFFER,
        )
        .await
        .map_err(gone)?;
        return Ok(());
    }
    let (mut control, early) = upgraded_socket(upgraded)
        .ok_or_else(|| Error::BadRequest("a tunnel's socket comes over the Unix socket".into()))?;
    let fd = received_fd(&control, &early, "the forwarded connection").await?;
    let mut local = adopt(fd)?;
    let mut byte = [0u8; 1];
    tokio::select! {
        copied = tokio::io::copy_bidirectional_with_sizes(&mut local, remote, BUFFER, BUFFER) => {
            copied.map(drop).map_err(gone)
        }
        // The CLI ended (Ctrl-C): its forwards end with it.
        _ = control.read(&mut byte) => Ok(()),
    }
}

/// A handed-over descriptor as a connection: it must be a connected
/// stream socket (anything else is refused, not read).
fn adopt(fd: std::os::fd::OwnedFd) -> Result<tokio::net::TcpStream, Error> {
    use rustix::net::{SocketType, sockopt};
    let stream = sockopt::socket_type(&fd).is_ok_and(|kind| kind == SocketType::STREAM);
    let connected = rustix::net::getpeername(&fd).is_ok();
    if !stream || !connected {
        return Err(Error::BadRequest(
            "what came is not a connected stream socket".into(),
        ));
    }
    let tcp = std::net::TcpStream::from(fd);
    tcp.set_nonblocking(true)
        .and_then(|()| tokio::net::TcpStream::from_std(tcp))
        .map_err(|e| Error::Internal(format!("cannot take the forwarded connection: {e}")))
}

fn gone(error: std::io::Error) -> Error {
    Error::Ssh(crate::ssh::SshError::Closed {
        addr: "the forwarded connection".into(),
        message: error.to_string(),
    })
}

/// Puts the ended connection on record.
#[allow(clippy::too_many_arguments)]
async fn settle(
    app: &App,
    caller: &Caller,
    name: &str,
    body: &TunnelRequest,
    lease: &Lease,
    remote: &Counted,
    started: Instant,
    ended: Result<(), Error>,
) {
    let (sent, received) = remote.counts();
    let connection = &lease.connection;
    connection.bytes_out.fetch_add(sent, Ordering::Relaxed);
    connection.bytes_in.fetch_add(received, Ordering::Relaxed);
    let result = match &ended {
        Ok(()) => "ok",
        Err(error) => error.code().as_str(),
    };
    let mut event = Event::new(caller, "forward")
        .profile(name)
        .result(result)
        .detail("kind", body.kind.as_str())
        .detail(
            "to",
            tether_api::types::host_and_port(&body.host, body.port),
        )
        .detail("bytes_out", sent)
        .detail("bytes_in", received)
        .detail("ms", started.elapsed().as_millis() as u64)
        .detail("connection", connection.id);
    if let Some(origin) = &body.origin {
        event = event.detail("origin", origin.as_str());
    }
    app.record_after(event).await;
    if let Err(error) = ended {
        tracing::debug!(profile = name, "forwarded connection ended: {error}");
    }
}

/// A channel that counts the bytes through it each way.
struct Counted {
    inner: russh::ChannelStream<russh::client::Msg>,
    sent: AtomicU64,
    received: AtomicU64,
}

impl Counted {
    fn new(inner: russh::ChannelStream<russh::client::Msg>) -> Self {
        Self {
            inner,
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
        }
    }

    /// Bytes written to the server's side, and read from it.
    fn counts(&self) -> (u64, u64) {
        (
            self.sent.load(Ordering::Relaxed),
            self.received.load(Ordering::Relaxed),
        )
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        self.received.fetch_add(read as u64, Ordering::Relaxed);
        polled
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(written)) = &polled {
            self.sent.fetch_add(*written as u64, Ordering::Relaxed);
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
