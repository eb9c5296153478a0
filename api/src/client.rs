//! The socket client: HTTP/1.1 over the daemon's Unix socket.
//!
//! One connection per request keeps the client trivially correct (a Unix
//! socket connect costs microseconds); `exec` upgrades its connection to the
//! framed stream of [`crate::frame`].
//!
//! Before a byte is sent, the client asks the kernel who is listening
//! (SO_PEERCRED of the connected socket): root, or, except on the system
//! socket, the caller's own uid. Anyone else may have planted the socket to
//! collect keys, passwords and codes, and gets nothing.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use tokio::net::UnixStream;

use crate::endpoint::{self, Endpoint};
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::{API_VERSION, API_VERSION_HEADER, STREAM_PROTOCOL};

/// Largest response body the client reads.
const MAX_RESPONSE: usize = 16 << 20;

/// An upgraded connection carrying frames.
pub type Stream = TokioIo<Upgraded>;

/// What a download's headers say of the remote file.
#[derive(Debug, Clone, Copy)]
pub struct RemoteFile {
    pub size: u64,
    pub mode: u32,
    pub mtime: u64,
}

/// Feeds an upload: chunks of the file, or an error to abort it.
pub type UploadSender = http_body_util::channel::Sender<Bytes, std::io::Error>;

/// A request body fed through a bounded channel, so a large upload is never
/// held in memory; aborting the sender aborts the upload.
type UploadBody = http_body_util::channel::Channel<Bytes, std::io::Error>;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to tetherd at {}: {source}", path.display())]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{} is served by uid {server}, which is neither root nor you; nothing was sent to it. \
         Another user may have planted it: remove it if it is yours, or use a socket in a \
         private directory (set XDG_RUNTIME_DIR, or pass --socket)",
        path.display()
    )]
    Untrusted { path: PathBuf, server: u32 },
    #[error("{0}")]
    Api(ApiError),
    #[error("unexpected answer from tetherd: {0}")]
    Protocol(String),
}

impl ClientError {
    /// The code printed in `tether: error[CODE]`: the daemon's code, or one of
    /// the client's own (`daemon_unavailable`, `protocol_error`).
    pub fn code(&self) -> &str {
        match self {
            ClientError::Connect { .. } => "daemon_unavailable",
            ClientError::Untrusted { .. } => "untrusted_socket",
            ClientError::Api(error) => error.code.as_str(),
            ClientError::Protocol(_) => "protocol_error",
        }
    }

    pub fn api_code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Api(error) => Some(error.code),
            _ => None,
        }
    }
}

/// Whether uid `server` may serve `socket` to uid `me`: root always; `me`
/// too, unless it is the system socket.
pub fn trusted_server(socket: &Path, server: u32, me: u32) -> bool {
    server == 0 || (server == me && socket != Path::new(crate::paths::SYSTEM_SOCKET))
}

pub(crate) fn protocol(error: impl std::fmt::Display) -> ClientError {
    ClientError::Protocol(error.to_string())
}

#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
}

impl Client {
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Self {
            socket: socket.into(),
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Refuses a socket whose listener is not root or (except for the
    /// system socket) the caller's own uid.
    fn check_server(&self, stream: &UnixStream) -> Result<(), ClientError> {
        let untrusted = |server| ClientError::Untrusted {
            path: self.socket.clone(),
            server,
        };
        let server = stream
            .peer_cred()
            .map_err(|source| ClientError::Connect {
                path: self.socket.clone(),
                source,
            })?
            .uid();
        if trusted_server(&self.socket, server, crate::paths::current_uid()) {
            Ok(())
        } else {
            Err(untrusted(server))
        }
    }

    /// Calls `endpoint` with `body` (`&()` for none) and reads its JSON
    /// answer (`()` for none).
    pub async fn call<E: Endpoint>(
        &self,
        endpoint: &E,
        body: &E::Body,
    ) -> Result<E::Answer, ClientError> {
        let method = method_of::<E>()?;
        let json = serde_json::to_vec(body).map_err(protocol)?;
        let body = (json != b"null").then_some(json);
        let response = self.send(method, &endpoint.path(), body, None).await?;
        let response = check_status(response).await?;
        let bytes = read_body(response).await?;
        let bytes: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
        serde_json::from_slice(bytes).map_err(protocol)
    }

    /// Calls a streaming endpoint: `body` asks to upgrade the connection
    /// to the framed stream, which is returned once the daemon answered
    /// 101.
    pub async fn open_stream<E: Endpoint<Answer = endpoint::Stream>>(
        &self,
        endpoint: &E,
        body: &E::Body,
    ) -> Result<Stream, ClientError> {
        let upgraded = self.switch(endpoint, body, STREAM_PROTOCOL).await?;
        Ok(TokioIo::new(upgraded))
    }

    /// Hands the listening ssh-agent socket `listener` to the daemon
    /// ([`crate::agent`]), which serves it from then on.
    pub async fn start_agent(
        &self,
        request: &crate::agent::AgentRequest,
        listener: impl std::os::fd::AsFd,
    ) -> Result<crate::agent::AgentServing, ClientError> {
        use crate::agent::{AGENT_PROTOCOL, AgentReply};
        let stream = self
            .hand_over(&endpoint::StartAgent {}, request, AGENT_PROTOCOL, listener)
            .await?;
        let reply = whole_reply(stream).await?;
        match serde_json::from_slice(&reply).map_err(protocol)? {
            AgentReply::Serving(serving) => Ok(serving),
            AgentReply::Error(error) => Err(ClientError::Api(error)),
        }
    }

    /// Opens a tunnel through `profile`'s server ([`crate::tunnel`]): the
    /// upgraded connection, and any bytes the daemon sent after its answer
    /// (the forwarded connection's first, in stream mode).
    pub async fn open_tunnel(
        &self,
        profile: &str,
        request: &crate::tunnel::TunnelRequest,
    ) -> Result<(UnixStream, bytes::Bytes), ClientError> {
        let endpoint = endpoint::OpenTunnel {
            name: profile.to_owned(),
        };
        self.upgrade(&endpoint, request, crate::tunnel::TUNNEL_PROTOCOL)
            .await
    }

    /// Hands the open local `file` to the daemon for `upload`
    /// ([`crate::files::HANDOVER_PROTOCOL`]); the connection its answer
    /// comes on ([`Client::upload_reply`]).
    pub async fn hand_over_upload(
        &self,
        upload: &endpoint::UploadHandover,
        file: impl std::os::fd::AsFd,
    ) -> Result<UnixStream, ClientError> {
        self.hand_over(upload, &(), crate::files::HANDOVER_PROTOCOL, file)
            .await
    }

    /// Calls a hand-over endpoint (upgrading to `protocol_name`) and sends
    /// `descriptor` on the upgraded connection, before anything else.
    async fn hand_over<E: Endpoint>(
        &self,
        endpoint: &E,
        body: &E::Body,
        protocol_name: &'static str,
        descriptor: impl std::os::fd::AsFd,
    ) -> Result<UnixStream, ClientError> {
        let (stream, early) = self.upgrade(endpoint, body, protocol_name).await?;
        if !early.is_empty() {
            return Err(protocol("the daemon spoke before it had the descriptor"));
        }
        crate::agent::send_fd(&stream, descriptor)
            .await
            .map_err(protocol)?;
        Ok(stream)
    }

    /// Hands the open local `file` to the daemon to write `download` into;
    /// the connection its events come on ([`crate::files::FetchEvent`]).
    pub async fn hand_over_download(
        &self,
        download: &endpoint::DownloadHandover,
        file: impl std::os::fd::AsFd,
    ) -> Result<tokio::io::BufReader<UnixStream>, ClientError> {
        let stream = self
            .hand_over(download, &(), crate::files::HANDOVER_PROTOCOL, file)
            .await?;
        Ok(tokio::io::BufReader::new(stream))
    }

    /// The next event of a fetch; an error when the daemon refused or the
    /// connection ended before `Done`.
    pub async fn fetch_event(
        events: &mut tokio::io::BufReader<UnixStream>,
    ) -> Result<crate::files::FetchEvent, ClientError> {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt};
        let mut line = Vec::new();
        let read = AsyncReadExt::take(&mut *events, crate::agent::MAX_REPLY as u64)
            .read_until(b'\n', &mut line)
            .await
            .map_err(protocol)?;
        if read == 0 {
            return Err(protocol("the daemon ended the download without a word"));
        }
        match serde_json::from_slice(&line).map_err(protocol)? {
            crate::files::FetchEvent::Error(error) => Err(ClientError::Api(error)),
            event => Ok(event),
        }
    }

    /// The answer to a hand-over upload, once the daemon has written the
    /// file (or refused).
    pub async fn upload_reply(stream: UnixStream) -> Result<crate::files::Uploaded, ClientError> {
        let reply = whole_reply(stream).await?;
        match serde_json::from_slice(&reply).map_err(protocol)? {
            crate::files::UploadReply::Done(done) => Ok(done),
            crate::files::UploadReply::Error(error) => Err(ClientError::Api(error)),
        }
    }

    /// Calls an endpoint that switches the connection to `protocol_name`:
    /// the connection once the daemon answered 101 (any other answer is its
    /// error, or a protocol error).
    async fn switch<E: Endpoint>(
        &self,
        endpoint: &E,
        body: &E::Body,
        protocol_name: &'static str,
    ) -> Result<hyper::upgrade::Upgraded, ClientError> {
        let body = serde_json::to_vec(body).map_err(protocol)?;
        let response = self
            .send(
                method_of::<E>()?,
                &endpoint.path(),
                Some(body),
                Some(protocol_name),
            )
            .await?;
        let response = check_status(response).await?;
        if response.status() != StatusCode::SWITCHING_PROTOCOLS {
            return Err(protocol(format!(
                "expected 101 Switching Protocols, got {}",
                response.status()
            )));
        }
        hyper::upgrade::on(response).await.map_err(protocol)
    }

    /// Calls an endpoint that upgrades the connection to `protocol`: the
    /// connection, and what the daemon sent after its answer.
    pub(crate) async fn upgrade<E: Endpoint>(
        &self,
        endpoint: &E,
        body: &E::Body,
        protocol_name: &'static str,
    ) -> Result<(UnixStream, bytes::Bytes), ClientError> {
        let upgraded = self.switch(endpoint, body, protocol_name).await?;
        let parts = upgraded
            .downcast::<TokioIo<UnixStream>>()
            .map_err(|_| protocol("the upgraded connection is not the daemon's socket"))?;
        Ok((parts.io.into_inner(), parts.read_buf))
    }

    /// Calls an endpoint that answers bytes (a backup): its headers and its
    /// body to read.
    pub async fn call_binary<E: Endpoint<Answer = endpoint::Binary, Body = ()>>(
        &self,
        endpoint: &E,
    ) -> Result<(http::HeaderMap, Incoming), ClientError> {
        let response = self
            .send(method_of::<E>()?, &endpoint.path(), None, None)
            .await?;
        let response = check_status(response).await?;
        let (parts, body) = response.into_parts();
        Ok((parts.headers, body))
    }

    /// Starts a download: the file's size, mode and mtime, and its bytes as
    /// a body to read frame by frame.
    pub async fn download(
        &self,
        file: &endpoint::DownloadFile,
    ) -> Result<(RemoteFile, Incoming), ClientError> {
        let response = self.send(Method::GET, &file.path(), None, None).await?;
        let response = check_status(response).await?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let meta = RemoteFile {
            size: header(crate::files::SIZE_HEADER),
            mode: header(crate::files::MODE_HEADER) as u32,
            mtime: header(crate::files::MTIME_HEADER),
        };
        Ok((meta, response.into_body()))
    }

    /// Uploads a body fed through the returned sender; await the returned
    /// future for the daemon's answer once the sender is dropped. Sending an
    /// `Err` aborts the upload (the daemon then keeps the target as it was).
    /// The body is chunked: a file that grows while it is read is sent to
    /// its end, as scp does.
    pub async fn upload(
        &self,
        file: &endpoint::UploadFile,
    ) -> Result<
        (
            UploadSender,
            impl Future<Output = Result<crate::files::Uploaded, ClientError>> + Send + 'static,
        ),
        ClientError,
    > {
        let mut sender = self.connect::<UploadBody>().await?;
        let (tx, body) = UploadBody::new(4);
        let request = Request::builder()
            .method(Method::PUT)
            .uri(file.path())
            .header(header::HOST, "tetherd")
            .header(API_VERSION_HEADER, API_VERSION.to_string())
            .body(body)
            .map_err(protocol)?;
        let answer = async move {
            let response = sender.send_request(request).await.map_err(protocol)?;
            read_json(response).await
        };
        Ok((tx, answer))
    }

    async fn connect<B>(&self) -> Result<hyper::client::conn::http1::SendRequest<B>, ClientError>
    where
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let stream =
            UnixStream::connect(&self.socket)
                .await
                .map_err(|source| ClientError::Connect {
                    path: self.socket.clone(),
                    source,
                })?;
        self.check_server(&stream)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(protocol)?;
        tokio::spawn(connection.with_upgrades());
        Ok(sender)
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        upgrade: Option<&'static str>,
    ) -> Result<http::Response<Incoming>, ClientError> {
        let mut sender = self.connect::<Full<Bytes>>().await?;

        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "tetherd")
            .header(API_VERSION_HEADER, API_VERSION.to_string());
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        if let Some(protocol) = upgrade {
            request = request
                .header(header::CONNECTION, "upgrade")
                .header(header::UPGRADE, protocol);
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(protocol)?;
        sender.send_request(request).await.map_err(protocol)
    }
}

fn method_of<E: Endpoint>() -> Result<Method, ClientError> {
    Method::from_bytes(E::INFO.method.as_bytes()).map_err(protocol)
}

async fn read_body(response: http::Response<Incoming>) -> Result<Bytes, ClientError> {
    Limited::new(response.into_body(), MAX_RESPONSE)
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .map_err(protocol)
}

/// Turns an error status into [`ClientError::Api`]; passes success through.
async fn check_status(
    response: http::Response<Incoming>,
) -> Result<http::Response<Incoming>, ClientError> {
    let status = response.status();
    if status.is_success() || status == StatusCode::SWITCHING_PROTOCOLS {
        return Ok(response);
    }
    let body = read_body(response).await?;
    match serde_json::from_slice::<ErrorBody>(&body) {
        Ok(body) => Err(ClientError::Api(body.error)),
        Err(_) => Err(protocol(format!("HTTP {status} without an error body"))),
    }
}

/// What the daemon writes on an upgraded connection before it closes it
/// (a hand-over's answer), up to [`crate::agent::MAX_REPLY`] bytes.
async fn whole_reply(mut stream: UnixStream) -> Result<Vec<u8>, ClientError> {
    use tokio::io::AsyncReadExt;
    let mut reply = Vec::new();
    (&mut stream)
        .take(crate::agent::MAX_REPLY as u64)
        .read_to_end(&mut reply)
        .await
        .map_err(protocol)?;
    Ok(reply)
}

async fn read_json<T: DeserializeOwned>(
    response: http::Response<Incoming>,
) -> Result<T, ClientError> {
    let response = check_status(response).await?;
    let body = read_body(response).await?;
    serde_json::from_slice(&body).map_err(protocol)
}
