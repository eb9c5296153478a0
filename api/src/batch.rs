//! The client's side of a batch ([`crate::files::BATCH_PROTOCOL`]): the
//! files of one copy handed over on one connection, several under way at a
//! time, each answered on its own.

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};

use crate::client::{Client, ClientError, protocol};
use crate::endpoint;
use crate::files::{BATCH_PROTOCOL, BatchEvent, BatchItem, FileQuery, MAX_BATCH_ITEM};

/// Who waits for which item's events.
type Waiting = Arc<Mutex<HashMap<u64, mpsc::UnboundedSender<BatchEvent>>>>;

/// A batch under way. Dropping it without [`Batch::finish`] ends it: the
/// daemon stops the files under way, and they are left as a broken single
/// transfer leaves them.
pub struct Batch {
    sending: tokio::sync::Mutex<OwnedWriteHalf>,
    waiting: Waiting,
    next_id: std::sync::atomic::AtomicU64,
    finished: oneshot::Receiver<Result<(), ClientError>>,
}

/// The events of one item, in the order tetherd sent them.
pub struct ItemEvents {
    events: mpsc::UnboundedReceiver<BatchEvent>,
}

impl ItemEvents {
    /// The item's next event; an error when it failed or the batch ended
    /// before it was answered.
    pub async fn next(&mut self) -> Result<BatchEvent, ClientError> {
        match self.events.recv().await {
            Some(BatchEvent::Failed { error, .. }) => Err(ClientError::Api(error)),
            Some(event) => Ok(event),
            None => Err(protocol("the batch ended before this file was answered")),
        }
    }
}

impl Client {
    /// Starts a batch of uploads to profile `name`.
    pub async fn upload_batch(&self, name: &str) -> Result<Batch, ClientError> {
        let endpoint = endpoint::UploadBatch {
            name: name.to_owned(),
        };
        Batch::start(self, &endpoint).await
    }

    /// Starts a batch of downloads from profile `name`.
    pub async fn download_batch(&self, name: &str) -> Result<Batch, ClientError> {
        let endpoint = endpoint::DownloadBatch {
            name: name.to_owned(),
        };
        Batch::start(self, &endpoint).await
    }
}

impl Batch {
    async fn start<E: endpoint::Endpoint<Body = ()>>(
        client: &Client,
        endpoint: &E,
    ) -> Result<Batch, ClientError> {
        let (stream, early) = client.upgrade(endpoint, &(), BATCH_PROTOCOL).await?;
        if !early.is_empty() {
            return Err(protocol("the daemon spoke before the batch began"));
        }
        let (reading, writing) = stream.into_split();
        let waiting = Waiting::default();
        let (done, finished) = oneshot::channel();
        tokio::spawn(read_events(reading, waiting.clone(), done));
        Ok(Batch {
            sending: tokio::sync::Mutex::new(writing),
            waiting,
            next_id: std::sync::atomic::AtomicU64::new(0),
            finished,
        })
    }

    /// Hands `file` over as the item `query`; its events.
    pub async fn send(&self, query: FileQuery, file: impl AsFd) -> Result<ItemEvents, ClientError> {
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let item = serde_json::to_vec(&BatchItem { id, query }).map_err(protocol)?;
        if item.is_empty() || item.len() > MAX_BATCH_ITEM {
            return Err(protocol("a batch item is too long"));
        }
        let (events, receiving) = mpsc::unbounded_channel();
        lock(&self.waiting).insert(id, events);
        let mut frame = (item.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&item);
        // The item and its descriptor go together: nothing of another
        // item's comes between them.
        let mut writing = self.sending.lock().await;
        let sent = async {
            writing.write_all(&frame).await?;
            crate::agent::send_fd(writing.as_ref(), file).await
        }
        .await;
        drop(writing);
        if let Err(error) = sent {
            lock(&self.waiting).remove(&id);
            return Err(protocol(format!("the batch's connection broke: {error}")));
        }
        Ok(ItemEvents { events: receiving })
    }

    /// Says that no more items come and waits until tetherd has answered
    /// them all and put them on record.
    pub async fn finish(self) -> Result<(), ClientError> {
        let mut writing = self.sending.lock().await;
        // A daemon that already ended the batch says why in its last event,
        // which tells more than the broken write.
        let said = writing.write_all(&0u32.to_be_bytes()).await;
        drop(writing);
        let finished = self
            .finished
            .await
            .unwrap_or_else(|_| Err(protocol("the batch ended without its end")));
        finished?;
        said.map_err(|e| protocol(format!("the batch's connection broke: {e}")))
    }
}

fn lock(
    waiting: &Waiting,
) -> std::sync::MutexGuard<'_, HashMap<u64, mpsc::UnboundedSender<BatchEvent>>> {
    waiting.lock().unwrap_or_else(|e| e.into_inner())
}

/// Hands each event to its item; the batch's own end to `done`. Items
/// still waiting when the connection ends learn it from their closed
/// channel.
async fn read_events(
    reading: OwnedReadHalf,
    waiting: Waiting,
    done: oneshot::Sender<Result<(), ClientError>>,
) {
    let mut lines = BufReader::new(reading);
    let ended = loop {
        let mut line = Vec::new();
        let read = (&mut lines)
            .take(MAX_BATCH_ITEM as u64)
            .read_until(b'\n', &mut line)
            .await;
        match read {
            Ok(0) => break Err(protocol("the daemon ended the batch without its end")),
            Ok(_) => {}
            Err(error) => break Err(protocol(error)),
        }
        let event = match serde_json::from_slice::<BatchEvent>(&line) {
            Ok(event) => event,
            Err(error) => break Err(protocol(error)),
        };
        let (id, last) = match &event {
            BatchEvent::Finished => break Ok(()),
            BatchEvent::Error(error) => break Err(ClientError::Api(error.clone())),
            BatchEvent::Started { id, .. } => (*id, false),
            BatchEvent::Uploaded { id, .. }
            | BatchEvent::Downloaded { id, .. }
            | BatchEvent::Failed { id, .. } => (*id, true),
        };
        let mut waiting = lock(&waiting);
        let sender = if last {
            waiting.remove(&id)
        } else {
            waiting.get(&id).cloned()
        };
        drop(waiting);
        if let Some(sender) = sender {
            let _ = sender.send(event);
        }
    };
    lock(&waiting).clear();
    let _ = done.send(ended);
}
