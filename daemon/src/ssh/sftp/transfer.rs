//! Pipelined transfers: up to [`IN_FLIGHT`] read or write requests
//! outstanding, each as large as the server takes, so that a transfer runs
//! at line speed rather than one round trip per request.
//!
//! - [`Reader`] reads at increasing offsets and hands the data back in
//!   order, to the end of the file whatever its size said: a short read
//!   (a growing log, a `/proc` file) drops the requests beyond it and goes
//!   on from where the data ended; only the server's EOF ends it. Told the
//!   size, it asks for exactly that much and one request beyond, which
//!   finds the end (or growth) in the same round trip: a small file is one
//!   round trip of two requests, not one of [`IN_FLIGHT`] mostly past its
//!   end.
//! - [`Writer`] gathers what it is given into full-size requests (callers
//!   hand it whatever the socket delivered), and keeps them in flight; an
//!   error from any of them ends the write.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use futures_util::stream::{FuturesOrdered, FuturesUnordered};
use russh_sftp::client::RawSftpSession;
use russh_sftp::client::error::Error as SftpErr;
use russh_sftp::protocol::{FileAttributes, StatusCode};

use super::{IN_FLIGHT, Sftp};
use crate::remote::RemoteError;

type Pending<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// One read's answer: where it was asked, what was asked, what came.
struct ReadAnswer {
    offset: u64,
    asked: u32,
    result: Result<Vec<u8>, SftpErr>,
}

pub struct Reader {
    raw: Arc<RawSftpSession>,
    handle: String,
    path: String,
    len: u32,
    /// Where the next request starts.
    next: u64,
    /// The size the file is expected to have, until data beyond it came.
    expected: Option<u64>,
    /// Whether the one request beyond the expected size is out.
    probing: bool,
    pending: FuturesOrdered<Pending<ReadAnswer>>,
    done: bool,
}

impl Reader {
    fn fill(&mut self) {
        while !self.done && self.pending.len() < IN_FLIGHT {
            let raw = self.raw.clone();
            let handle = self.handle.clone();
            let asked = match self.expected {
                Some(size) if self.next < size => {
                    u32::try_from(size - self.next).map_or(self.len, |left| left.min(self.len))
                }
                Some(_) if self.probing => break,
                Some(_) => {
                    self.probing = true;
                    self.len
                }
                None => self.len,
            };
            let offset = self.next;
            self.next += u64::from(asked);
            self.pending.push_back(Box::pin(async move {
                let result = raw.read(handle, offset, asked).await.map(|d| d.data);
                ReadAnswer {
                    offset,
                    asked,
                    result,
                }
            }));
        }
    }

    /// The next piece of the file, in order; `None` at its end.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, RemoteError> {
        if self.done && self.pending.is_empty() {
            return Ok(None);
        }
        self.fill();
        let Some(answer) = self.pending.next().await else {
            return Ok(None);
        };
        match answer.result {
            Ok(data) if data.is_empty() => {
                self.finish_early();
                Ok(None)
            }
            Ok(data) => {
                if self.expected.is_some_and(|size| answer.offset >= size) {
                    // The file grew: read on at full speed.
                    self.expected = None;
                }
                if data.len() < answer.asked as usize {
                    // A short read: what was asked beyond it is void.
                    self.pending = FuturesOrdered::new();
                    self.probing = false;
                    self.next = answer.offset + data.len() as u64;
                }
                Ok(Some(Bytes::from(data)))
            }
            Err(SftpErr::Status(status)) if status.status_code == StatusCode::Eof => {
                self.finish_early();
                Ok(None)
            }
            Err(error) => {
                self.finish_early();
                Err(RemoteError::from_sftp(&self.path, error))
            }
        }
    }

    fn finish_early(&mut self) {
        self.done = true;
        self.pending = FuturesOrdered::new();
    }

    /// The handle, for closing.
    pub fn into_handle(self) -> String {
        self.handle
    }
}

pub struct Writer {
    raw: Arc<RawSftpSession>,
    handle: String,
    path: String,
    len: usize,
    offset: u64,
    gathered: BytesMut,
    pending: FuturesUnordered<Pending<Result<(), SftpErr>>>,
    written: u64,
    /// Other sessions with the same file open, which take their turn with
    /// this one's: each channel's window carries its own share (see
    /// [`Writer::spread`]).
    lanes: Vec<(Arc<RawSftpSession>, String)>,
    /// Pieces sent, for the turns.
    pieces: usize,
}

impl Writer {
    /// Queues `data`; waits only while [`IN_FLIGHT`] requests are out.
    pub async fn write(&mut self, data: &[u8]) -> Result<(), RemoteError> {
        self.gathered.extend_from_slice(data);
        while self.gathered.len() >= self.len {
            let piece = self.gathered.split_to(self.len).freeze();
            self.send(piece).await?;
        }
        Ok(())
    }

    async fn send(&mut self, piece: Bytes) -> Result<(), RemoteError> {
        while self.pending.len() >= IN_FLIGHT {
            self.settle_one().await?;
        }
        let turn = self.pieces % (self.lanes.len() + 1);
        self.pieces += 1;
        let (raw, handle) = match turn.checked_sub(1) {
            Some(lane) => self.lanes[lane].clone(),
            None => (self.raw.clone(), self.handle.clone()),
        };
        let offset = self.offset;
        self.offset += piece.len() as u64;
        self.written += piece.len() as u64;
        self.queue(Box::pin(async move {
            raw.write(handle, offset, Vec::from(piece)).await.map(drop)
        }))
    }

    /// Spreads the writes over `sftp` too, which has the same file open at
    /// `handle`: pieces take turns. A channel carries only as much as its
    /// window (which the server grants) per round trip, so over a long one
    /// several channels carry more.
    pub fn spread(&mut self, sftp: &Sftp, handle: String) {
        self.lanes.push((sftp.raw().clone(), handle));
    }

    /// Closes the other sessions' handles without waiting (their writes are
    /// answered, or abandoned).
    fn close_lanes(&mut self) {
        for (raw, handle) in self.lanes.drain(..) {
            close_unwaited(raw, handle);
        }
    }

    /// Sends `request` now (its first poll sends it) and keeps it among
    /// those in flight: requests go out in the order they are made, whatever
    /// order the set polls them in, so an fsync follows the writes it is to
    /// cover.
    fn queue(&mut self, mut request: Pending<Result<(), SftpErr>>) -> Result<(), RemoteError> {
        match sent(&mut request) {
            Poll::Ready(Err(error)) => Err(RemoteError::from_sftp(&self.path, error)),
            Poll::Ready(Ok(())) => Ok(()),
            Poll::Pending => {
                self.pending.push(request);
                Ok(())
            }
        }
    }

    async fn settle_one(&mut self) -> Result<(), RemoteError> {
        match self.pending.next().await {
            Some(Err(error)) => Err(RemoteError::from_sftp(&self.path, error)),
            _ => Ok(()),
        }
    }

    /// Sends what is gathered, then `attrs` set on the handle and (with
    /// `fsync`) the file flushed to the server's disk, both sent behind the
    /// last write rather than a round trip each after it, and waits for
    /// every request; the bytes written, and the handle, for closing. As
    /// with [`Sftp::set_attributes`], a refused owner is not an error.
    pub async fn finish(
        mut self,
        attrs: &FileAttributes,
        fsync: bool,
    ) -> Result<(u64, String), (RemoteError, String)> {
        let rest = self.gathered.split().freeze();
        let flushed = async {
            if !rest.is_empty() {
                self.send(rest).await?;
            }
            if !self.lanes.is_empty() {
                // Other sessions' writes are not ordered with this one's
                // requests: the fsync waits for them to be answered.
                while !self.pending.is_empty() {
                    self.settle_one().await?;
                }
                self.close_lanes();
            }
            for (attrs, required) in settable(attrs) {
                let (raw, handle) = (self.raw.clone(), self.handle.clone());
                self.queue(Box::pin(async move {
                    match raw.fsetstat(handle, attrs).await {
                        Err(_) if !required => Ok(()),
                        done => done.map(drop),
                    }
                }))?;
            }
            if fsync {
                let (raw, handle) = (self.raw.clone(), self.handle.clone());
                self.queue(Box::pin(async move { raw.fsync(handle).await.map(drop) }))?;
            }
            while !self.pending.is_empty() {
                self.settle_one().await?;
            }
            Ok::<(), RemoteError>(())
        }
        .await;
        self.close_lanes();
        match flushed {
            Ok(()) => Ok((self.written, self.handle)),
            Err(error) => Err((error, self.handle)),
        }
    }

    /// The handle, when the write is abandoned.
    pub fn into_handle(mut self) -> String {
        self.close_lanes();
        std::mem::take(&mut self.handle)
    }
}

/// Polls `request` once, which sends it (a request of the raw session is
/// sent on its first poll); its outcome where that came at once (a failure
/// to send).
fn sent<T>(request: &mut Pending<T>) -> Poll<T> {
    request
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
}

/// Sends the close of `handle` on `raw` and does not wait for its answer,
/// which the session drops when it comes.
fn close_unwaited(raw: Arc<RawSftpSession>, handle: String) {
    let mut close: Pending<()> = Box::pin(async move {
        let _ = raw.close(handle).await;
    });
    let _ = sent(&mut close);
}

/// The requests that set `attrs`, each with whether its failure counts:
/// owner and group first (a server that does not allow them keeps its
/// own, silently, as scp does), then mode and times.
pub(super) fn settable(attrs: &FileAttributes) -> Vec<(FileAttributes, bool)> {
    let mut requests = Vec::new();
    if let (Some(uid), Some(gid)) = (attrs.uid, attrs.gid) {
        let owner = FileAttributes {
            uid: Some(uid),
            gid: Some(gid),
            ..FileAttributes::empty()
        };
        requests.push((owner, false));
    }
    if attrs.permissions.is_some() || attrs.mtime.is_some() {
        let rest = FileAttributes {
            permissions: attrs.permissions,
            atime: attrs.atime,
            mtime: attrs.mtime,
            ..FileAttributes::empty()
        };
        requests.push((rest, true));
    }
    requests
}

impl Sftp {
    /// Closes a handle opened for reading without waiting for the answer,
    /// which says nothing a reader needs: the round trip is saved, and the
    /// answer, when it comes, is dropped by the session.
    pub fn close_unwaited(&self, handle: String) {
        close_unwaited(self.raw().clone(), handle);
    }

    /// A pipelined reader of an open file, `expected` to be that long
    /// where its size is known.
    pub fn reader(&self, handle: String, path: &str, expected: Option<u64>) -> Reader {
        Reader {
            raw: self.raw().clone(),
            handle,
            path: path.to_owned(),
            len: self.read_len,
            next: 0,
            expected,
            probing: false,
            pending: FuturesOrdered::new(),
            done: false,
        }
    }

    /// A pipelined writer of an open file, from its start.
    pub fn writer(&self, handle: String, path: &str) -> Writer {
        Writer {
            raw: self.raw().clone(),
            handle,
            path: path.to_owned(),
            len: self.write_len as usize,
            offset: 0,
            gathered: BytesMut::with_capacity(self.write_len as usize),
            pending: FuturesUnordered::new(),
            written: 0,
            lanes: Vec::new(),
            pieces: 0,
        }
    }
}
