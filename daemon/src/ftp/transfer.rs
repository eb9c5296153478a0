//! The two directions of a file on an FTP data connection: a [`Download`]
//! read in chunks, an [`Upload`] written through a buffer that gathers the
//! caller's small frames into large TLS records. Every read and write has
//! the reply timeout: a server that stalls mid-transfer ends it.

use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};

use super::ops::Transfer;
use super::{Failed, FtpFailure};

/// Bytes read from a data connection at a time.
const CHUNK: usize = 256 * 1024;
/// Bytes gathered before a write to the data connection.
const BUFFER: usize = 256 * 1024;

fn lost(addr: &str, what: &str, error: &std::io::Error) -> Failed {
    Failed::Connection(FtpFailure::Closed {
        addr: addr.to_owned(),
        message: format!("the data connection failed {what}: {error}"),
    })
}

fn stalled(addr: &str, timeout: Duration) -> Failed {
    Failed::timeout(addr, timeout, "the data connection")
}

/// A file being read from the server (`RETR`).
pub struct Download {
    transfer: Transfer,
    addr: String,
    timeout: Duration,
    /// Buffers of pieces the transfer let go of, used again.
    spares: crate::pieces::Spares,
}

impl Download {
    pub fn new(transfer: Transfer, addr: &str, timeout: Duration) -> Download {
        Download {
            transfer,
            addr: addr.to_owned(),
            timeout,
            spares: crate::pieces::Spares::default(),
        }
    }

    /// The next chunk, or `None` at the end of the file.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, Failed> {
        let mut buffer = self.spares.buffer(CHUNK);
        let read = tokio::time::timeout(self.timeout, self.transfer.read_buf(&mut buffer));
        match read.await {
            Ok(Ok(0)) => Ok(None),
            Ok(Ok(_)) => Ok(Some(self.spares.piece(buffer))),
            Ok(Err(error)) => Err(lost(&self.addr, "while reading", &error)),
            Err(_) => Err(stalled(&self.addr, self.timeout)),
        }
    }

    /// The data connection, for [`super::client::Control::finish`].
    pub fn into_transfer(self) -> Transfer {
        self.transfer
    }
}

/// A file being written to the server (`STOR`).
pub struct Upload {
    writer: BufWriter<Transfer>,
    addr: String,
    timeout: Duration,
    written: u64,
}

impl Upload {
    pub fn new(transfer: Transfer, addr: &str, timeout: Duration) -> Upload {
        Upload {
            writer: BufWriter::with_capacity(BUFFER, transfer),
            addr: addr.to_owned(),
            timeout,
            written: 0,
        }
    }

    pub async fn write(&mut self, data: &[u8]) -> Result<(), Failed> {
        match tokio::time::timeout(self.timeout, self.writer.write_all(data)).await {
            Ok(Ok(())) => {
                self.written += data.len() as u64;
                Ok(())
            }
            Ok(Err(error)) => Err(lost(&self.addr, "while writing", &error)),
            Err(_) => Err(stalled(&self.addr, self.timeout)),
        }
    }

    /// The data connection without what is still buffered: a transfer cut
    /// short, for [`super::client::Control::finish`] to read its reply.
    pub fn abandon(self) -> Transfer {
        self.writer.into_inner()
    }

    /// Sends what is buffered; the data connection, for
    /// [`super::client::Control::finish`], and the bytes written.
    pub async fn flush(mut self) -> Result<(Transfer, u64), Failed> {
        match tokio::time::timeout(self.timeout, self.writer.flush()).await {
            Ok(Ok(())) => Ok((self.writer.into_inner(), self.written)),
            Ok(Err(error)) => Err(lost(&self.addr, "while writing", &error)),
            Err(_) => Err(stalled(&self.addr, self.timeout)),
        }
    }
}
