//! `POST /v1/profiles/{name}/files/batch/upload` and `.../download`: the
//! files of one copy handed over on one connection
//! ([`tether_api::files::BATCH_PROTOCOL`]), each written or read as a
//! single hand-over is (`handover.rs`), several at a time.
//!
//! What a batch saves is the per-file overhead around the transfer: a
//! connection, a request, and two audit records each flushed to disk
//! before the file goes on. The batch's own start event is on disk before
//! its first file is touched; each file's end event (path, bytes, SHA-256,
//! result) is written with others, once 64 wait or the first has waited a
//! second, and all
//! are on disk before the batch answers [`BatchEvent::Finished`], which the
//! CLI waits for before it reports success.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ::http::Request;
use bytes::Bytes;
use hyper::body::Incoming;
use tether_api::files::{
    BATCH_PROTOCOL, BatchEvent, BatchItem, FILES_IN_FLIGHT, FetchStarted, MAX_BATCH_ITEM,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::OwnedReadHalf;
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use super::handover::{Access, Announce, HandedOver, event_line, fetch_into, regular_file};
use super::upload::{Source, Transferred, wanted_from, write_from};
use super::{event_name, remote};
use crate::access::Caller;
use crate::access::policy::Op;
use crate::audit::{Event, Later};
use crate::error::Error;
use crate::server::App;
use crate::server::http::{Resp, switching, upgraded_socket, wants_upgrade};

/// End events written together, at most, and the longest one waits.
const FLUSH_EVERY: usize = 64;
const FLUSH_AFTER: Duration = Duration::from_secs(1);

/// Which way a batch's files go.
#[derive(Clone, Copy)]
enum Direction {
    Upload,
    Download,
}

impl Direction {
    fn what(self) -> &'static str {
        match self {
            Direction::Upload => "upload",
            Direction::Download => "download",
        }
    }

    fn op(self) -> Op<'static> {
        Op::Sftp {
            write: matches!(self, Direction::Upload),
        }
    }
}

pub async fn upload(
    app: &Arc<App>,
    caller: &Caller,
    name: &str,
    request: Request<Incoming>,
) -> Result<Resp, Error> {
    app.authorize(caller, name, Direction::Upload.op())?;
    start(app, caller, name, request, Direction::Upload)
}

pub async fn download(
    app: &Arc<App>,
    caller: &Caller,
    name: &str,
    request: Request<Incoming>,
) -> Result<Resp, Error> {
    app.authorize(caller, name, Direction::Download.op())?;
    start(app, caller, name, request, Direction::Download)
}

/// Upgrades `request` and serves the batch in a task of the daemon's.
fn start(
    app: &Arc<App>,
    caller: &Caller,
    name: &str,
    mut request: Request<Incoming>,
    direction: Direction,
) -> Result<Resp, Error> {
    if !wants_upgrade(&request, BATCH_PROTOCOL) {
        return Err(Error::UpgradeRequired(
            format!("a batch of {}s", direction.what()),
            BATCH_PROTOCOL,
        ));
    }
    let on_upgrade = hyper::upgrade::on(&mut request);
    let batch = Batch {
        app: app.clone(),
        caller: caller.clone(),
        name: name.to_owned(),
        direction,
        file_event: event_name(app, name, direction.what()),
    };
    app.spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let Some((stream, early)) = upgraded_socket(upgraded) else {
            tracing::warn!("a file batch on a connection that is not a Unix socket");
            return;
        };
        let (mut reading, mut writing) = stream.into_split();
        let (replies, mut queued) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
        let writer = tokio::spawn(async move {
            while let Some(line) = queued.recv().await {
                if writing.write_all(&line).await.is_err() {
                    break;
                }
            }
            let _ = writing.shutdown().await;
        });
        let end = batch.serve(&mut reading, &early, &replies).await;
        let _ = replies.send(event_line(&end));
        drop(replies);
        let _ = writer.await;
    });
    Ok(switching(BATCH_PROTOCOL))
}

/// One batch: who asked, for which profile, which way.
struct Batch {
    app: Arc<App>,
    caller: Caller,
    name: String,
    direction: Direction,
    /// Its files' events on the trail: `sftp.upload`, `ftp.download`.
    file_event: String,
}

/// What a batch's items share while they run.
struct Shared {
    /// The batch's start event on the trail.
    seq: u64,
    /// Cancelled when the CLI goes away before saying the batch is over.
    gone: CancellationToken,
    replies: UnboundedSender<Vec<u8>>,
    /// Items read and not yet answered.
    unanswered: AtomicUsize,
    files: AtomicU64,
    failed: AtomicU64,
    bytes: AtomicU64,
    /// End events queued and not yet known to be on disk.
    records: Mutex<Records>,
}

impl Shared {
    fn new(seq: u64, replies: UnboundedSender<Vec<u8>>) -> Shared {
        Shared {
            seq,
            gone: CancellationToken::new(),
            replies,
            unanswered: AtomicUsize::new(0),
            files: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            records: Mutex::new(Records {
                written: Vec::new(),
                failure: None,
                flushed_at: Instant::now(),
            }),
        }
    }
}

/// A batch's end events since its last commit: at most [`FLUSH_EVERY`]
/// are kept, however many files the batch has.
struct Records {
    written: Vec<Later>,
    /// The first that could not be written.
    failure: Option<Error>,
    flushed_at: Instant,
}

impl Batch {
    /// Reads items until the CLI says there are no more (or goes away),
    /// then waits for those under way and puts the batch on disk; the
    /// batch's last event.
    async fn serve(
        self,
        reading: &mut OwnedReadHalf,
        early: &Bytes,
        replies: &UnboundedSender<Vec<u8>>,
    ) -> BatchEvent {
        let app = &self.app;
        if !early.is_empty() {
            let error = Error::BadRequest("data came before the batch began".into());
            return BatchEvent::Error(error.to_api());
        }
        let start = Event::new(&self.caller, &event_name(app, &self.name, "batch"))
            .profile(&self.name)
            .detail("direction", self.direction.what());
        let seq = match app.record(start.clone()).await {
            Ok(seq) => seq,
            Err(error) => return BatchEvent::Error(error.to_api()),
        };
        let shared = Arc::new(Shared::new(seq, replies.clone()));
        let batch = Arc::new(self);
        let mut items = tokio::task::JoinSet::new();
        let ended = loop {
            // The CLI has at most FILES_IN_FLIGHT items unanswered; one
            // that sends more is not waited for (each holds a descriptor).
            let next = next_item(reading).await;
            while items.try_join_next().is_some() {}
            match next {
                Ok(Next::Item(item, fd)) => {
                    if shared.unanswered.fetch_add(1, Ordering::SeqCst) >= FILES_IN_FLIGHT {
                        shared.gone.cancel();
                        break Err(Some(Error::BadRequest(format!(
                            "more than {FILES_IN_FLIGHT} files of a batch at once"
                        ))));
                    }
                    let (batch, shared) = (batch.clone(), shared.clone());
                    items.spawn(async move { batch.item(&shared, item, fd).await });
                }
                Ok(Next::End) => break Ok(()),
                Ok(Next::Gone) => {
                    shared.gone.cancel();
                    break Err(None);
                }
                Err(error) => {
                    shared.gone.cancel();
                    break Err(Some(error));
                }
            }
        };
        while items.join_next().await.is_some() {}
        batch.end(&start, &shared, ended).await
    }

    /// Puts the batch's end on record with every file's, on disk; the
    /// batch's last event. `ended` is how the items stopped: at the CLI's
    /// end, at an error, or (`None`) with the CLI gone.
    async fn end(
        &self,
        start: &Event,
        shared: &Shared,
        ended: Result<(), Option<Error>>,
    ) -> BatchEvent {
        let result = match &ended {
            Ok(()) => "ok",
            Err(Some(error)) => error.code().as_str(),
            Err(None) => "interrupted",
        };
        let end = start
            .end(result)
            .detail("files", shared.files.load(Ordering::SeqCst))
            .detail("failed", shared.failed.load(Ordering::SeqCst))
            .detail("bytes", shared.bytes.load(Ordering::SeqCst));
        // Commits the files' queued events with it.
        let recorded = self.app.record(end).await;
        let (written, failure) = {
            let mut records = lock(&shared.records);
            (std::mem::take(&mut records.written), records.failure.take())
        };
        let mut failure = failure.or(recorded.err());
        for later in written {
            if let Err(error) = later.written().await {
                failure.get_or_insert(error);
            }
        }
        match (failure, ended) {
            (Some(error), _) | (None, Err(Some(error))) => BatchEvent::Error(error.to_api()),
            (None, Err(None)) => BatchEvent::Error(
                Error::BadRequest("the batch ended before its end".into()).to_api(),
            ),
            (None, Ok(())) => BatchEvent::Finished,
        }
    }

    /// One item: its transfer, its end event queued, its answer.
    async fn item(&self, shared: &Shared, item: BatchItem, fd: OwnedFd) {
        let BatchItem { id, query } = item;
        let mut pending = Pending {
            id,
            shared,
            answered: false,
        };
        let event = Event::new(&self.caller, &self.file_event)
            .profile(&self.name)
            .detail("path", query.path.as_str())
            .detail("batch", shared.seq);
        let (answer, end) = match self.direction {
            Direction::Upload => match self.upload(shared, &query, fd).await {
                Ok(uploaded) => (
                    BatchEvent::Uploaded {
                        id,
                        uploaded: uploaded.clone(),
                    },
                    ended_ok(&event, &uploaded),
                ),
                Err(error) => failed(id, &event, &error),
            },
            Direction::Download => {
                let mut announce = ItemStarted {
                    id,
                    replies: &shared.replies,
                };
                match self.download(shared, &query.path, fd, &mut announce).await {
                    Ok(downloaded) => (
                        BatchEvent::Downloaded {
                            id,
                            downloaded: downloaded.clone(),
                        },
                        ended_ok(&event, &downloaded),
                    ),
                    Err(error) => failed(id, &event, &error),
                }
            }
        };
        match &answer {
            BatchEvent::Failed { .. } => shared.failed.fetch_add(1, Ordering::SeqCst),
            _ => shared.files.fetch_add(1, Ordering::SeqCst),
        };
        self.queue_record(shared, end).await;
        pending.answer(&answer);
    }

    async fn upload(
        &self,
        shared: &Shared,
        query: &tether_api::files::FileQuery,
        fd: OwnedFd,
    ) -> Result<tether_api::files::Uploaded, Error> {
        let (app, caller, name) = (&*self.app, &self.caller, self.name.as_str());
        let allowed = app.authorize(caller, name, self.direction.op())?;
        let wanted = wanted_from(query)?;
        let mut file = HandedOver::take(fd, shared.gone.clone())?;
        let remote = remote(app, caller, name).await?;
        let source = Source::File(&mut file);
        let uploaded = write_from(
            app,
            caller,
            name,
            &allowed,
            remote,
            &query.path,
            &wanted,
            source,
        )
        .await?;
        shared.bytes.fetch_add(uploaded.bytes, Ordering::SeqCst);
        Ok(uploaded)
    }

    async fn download(
        &self,
        shared: &Shared,
        path: &str,
        fd: OwnedFd,
        announce: &mut ItemStarted<'_>,
    ) -> Result<tether_api::files::Downloaded, Error> {
        let (app, caller, name) = (&*self.app, &self.caller, self.name.as_str());
        let allowed = app.authorize(caller, name, self.direction.op())?;
        crate::remote::check_path(path)?;
        let (file, _) = regular_file(fd, Access::Writing)?;
        let downloaded = fetch_into(
            app,
            caller,
            name,
            &allowed,
            path,
            file,
            announce,
            &shared.gone,
        )
        .await?;
        shared.bytes.fetch_add(downloaded.bytes, Ordering::SeqCst);
        Ok(downloaded)
    }

    /// Queues a file's end event; commits the queue when it has grown to
    /// [`FLUSH_EVERY`] or its oldest has waited [`FLUSH_AFTER`], and keeps
    /// only the first failure of what was committed.
    async fn queue_record(&self, shared: &Shared, end: Event) {
        let committing = {
            let mut records = lock(&shared.records);
            match self.app.record_later(end) {
                Ok(later) => records.written.push(later),
                // The trail is not open: the batch's end says so.
                Err(error) => records.written.push(Later::failed(error)),
            }
            let due =
                records.written.len() >= FLUSH_EVERY || records.flushed_at.elapsed() >= FLUSH_AFTER;
            if !due {
                if records.written.len() == 1 {
                    // The first of a group waits a second at most, even if
                    // the next file takes longer.
                    let app = self.app.clone();
                    self.app.spawn(async move {
                        tokio::time::sleep(FLUSH_AFTER).await;
                        app.flush_records().await;
                    });
                }
                return;
            }
            records.flushed_at = Instant::now();
            std::mem::take(&mut records.written)
        };
        self.app.flush_records().await;
        for later in committing {
            if let Err(error) = later.written().await {
                lock(&shared.records).failure.get_or_insert(error);
            }
        }
    }
}

/// An item until it is answered; one whose task ends without an answer (a
/// panic) is answered as failed, so the CLI does not wait for it forever.
struct Pending<'a> {
    id: u64,
    shared: &'a Shared,
    answered: bool,
}

impl Pending<'_> {
    fn answer(&mut self, answer: &BatchEvent) {
        self.answered = true;
        // Counted out before the answer goes: the CLI may send the next
        // item as soon as it has it.
        self.shared.unanswered.fetch_sub(1, Ordering::SeqCst);
        let _ = self.shared.replies.send(event_line(answer));
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if !self.answered {
            self.shared.failed.fetch_add(1, Ordering::SeqCst);
            let error = Error::Internal("the file's transfer ended without an answer".into());
            self.answer(&BatchEvent::Failed {
                id: self.id,
                error: error.to_api(),
            });
        }
    }
}

fn lock(records: &Mutex<Records>) -> std::sync::MutexGuard<'_, Records> {
    records.lock().unwrap_or_else(|e| e.into_inner())
}

/// A file's end event, done.
fn ended_ok(event: &Event, done: &impl Transferred) -> Event {
    event
        .end("ok")
        .detail("resolved", done.resolved())
        .detail("bytes", done.bytes())
        .detail("sha256", done.sha256())
}

/// A file's answer and end event, failed.
fn failed(id: u64, event: &Event, error: &Error) -> (BatchEvent, Event) {
    (
        BatchEvent::Failed {
            id,
            error: error.to_api(),
        },
        event.end(error.code().as_str()),
    )
}

/// A download's `Started`, sent as its item's event.
struct ItemStarted<'a> {
    id: u64,
    replies: &'a UnboundedSender<Vec<u8>>,
}

impl Announce for ItemStarted<'_> {
    async fn started(&mut self, started: FetchStarted) {
        let event = BatchEvent::Started {
            id: self.id,
            started,
        };
        let _ = self.replies.send(event_line(&event));
    }
}

/// What comes next on a batch's connection.
enum Next {
    Item(BatchItem, OwnedFd),
    /// The CLI says no more items come.
    End,
    /// The CLI went away without saying so (Ctrl-C).
    Gone,
}

/// The next item and its descriptor, or the end. What is not an item is
/// an error.
async fn next_item(reading: &mut OwnedReadHalf) -> Result<Next, Error> {
    let broken = |e: std::io::Error| Error::BadRequest(format!("the batch broke off: {e}"));
    let mut length = [0u8; 4];
    match reading.read_exact(&mut length).await {
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(Next::Gone),
        Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => return Ok(Next::Gone),
        Err(error) => return Err(broken(error)),
    }
    let length = u32::from_be_bytes(length) as usize;
    if length == 0 {
        return Ok(Next::End);
    }
    if length > MAX_BATCH_ITEM {
        return Err(Error::BadRequest(format!(
            "a batch item of {length} bytes (at most {MAX_BATCH_ITEM})"
        )));
    }
    let mut item = vec![0u8; length];
    reading.read_exact(&mut item).await.map_err(broken)?;
    let item: BatchItem = serde_json::from_slice(&item)
        .map_err(|e| Error::BadRequest(format!("not a batch item: {e}")))?;
    let fd = crate::server::http::received_fd(reading.as_ref(), &[], "file").await?;
    Ok(Next::Item(item, fd))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_that_ends_without_an_answer_is_answered_as_failed() {
        let (replies, mut sent) = tokio::sync::mpsc::unbounded_channel();
        let shared = Shared::new(1, replies);
        shared.unanswered.store(1, Ordering::SeqCst);
        drop(Pending {
            id: 7,
            shared: &shared,
            answered: false,
        });
        let line = sent.try_recv().expect("an answer");
        match serde_json::from_slice::<BatchEvent>(&line).unwrap() {
            BatchEvent::Failed { id, error } => {
                assert_eq!(id, 7);
                assert_eq!(error.code.as_str(), "internal");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(shared.unanswered.load(Ordering::SeqCst), 0);
        assert_eq!(shared.failed.load(Ordering::SeqCst), 1);
        // An answered item is answered once.
        shared.unanswered.store(1, Ordering::SeqCst);
        let mut answered = Pending {
            id: 8,
            shared: &shared,
            answered: false,
        };
        answered.answer(&BatchEvent::Finished);
        drop(answered);
        assert!(sent.try_recv().is_ok());
        assert!(sent.try_recv().is_err());
    }
}
