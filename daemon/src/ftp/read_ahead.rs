//! TLS for FTPS over a socket read in large pieces. rustls reads what it
//! decrypts at most 4 KiB past what it holds (`read_tls`), so a download
//! over suppaftp's own TLS stream took a system call and a trip through
//! the runtime per dozen kilobytes. Here rustls reads from a buffer that
//! takes up to [`READ_AHEAD`] from the socket at once; writes pass through.
//! Same rustls configuration, same session resumption: only what sits
//! under rustls changes.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use rustls::pki_types::ServerName;
use suppaftp::tokio::{AsyncTlsConnector, TokioTlsStream};
use suppaftp::{FtpError, FtpResult};
use tokio::io::{AsyncRead, AsyncWrite, BufReader, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// Bytes taken from the socket at a time, at most.
const READ_AHEAD: usize = 256 * 1024;

/// Connects TLS for suppaftp (control and data connections alike).
pub struct Connector(tokio_rustls::TlsConnector);

impl From<tokio_rustls::TlsConnector> for Connector {
    fn from(connector: tokio_rustls::TlsConnector) -> Self {
        Self(connector)
    }
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Connector")
    }
}

impl AsyncTlsConnector for Connector {
    type Stream = Tls;

    fn connect<'a, 'b, 'f>(
        &'a self,
        domain: &'b str,
        stream: TcpStream,
    ) -> Pin<Box<dyn Future<Output = FtpResult<Tls>> + Send + 'f>>
    where
        'a: 'f,
        'b: 'f,
        Self: 'f,
    {
        Box::pin(async move {
            let name = ServerName::try_from(domain.to_owned())
                .map_err(|e| FtpError::SecureError(e.to_string()))?;
            let socket = BufReader::with_capacity(READ_AHEAD, stream);
            self.0
                .connect(name, socket)
                .await
                .map(Tls)
                .map_err(|e| FtpError::SecureError(e.to_string()))
        })
    }
}

/// A TLS stream over a socket read ahead.
#[derive(Debug)]
pub struct Tls(TlsStream<BufReader<TcpStream>>);

impl AsyncRead for Tls {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tls {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl TokioTlsStream for Tls {
    type InnerStream = TlsStream<BufReader<TcpStream>>;

    fn tcp_stream(self) -> FtpResult<TcpStream> {
        Ok(self.0.into_inner().0.into_inner())
    }

    fn get_ref(&self) -> &TcpStream {
        self.0.get_ref().0.get_ref()
    }

    fn mut_ref(&mut self) -> &mut Self::InnerStream {
        &mut self.0
    }
}
