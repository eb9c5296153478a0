//! The SHA-256 of a transfer, computed beside it rather than in its loop:
//! the transfer hands each piece over (a reference-counted `Bytes`, not a
//! copy) and goes on, and a thread of the blocking pool hashes. The queue
//! holds at most [`QUEUE`] pieces, so a slow hash slows the transfer
//! rather than filling memory.

use bytes::Bytes;
use sha2::{Digest as _, Sha256};

use crate::error::Error;
use crate::store::envelope::hex;

/// Pieces waiting to be hashed, at most (each up to a transfer's chunk).
const QUEUE: usize = 16;

pub(super) struct Digest {
    queue: tokio::sync::mpsc::Sender<Bytes>,
    done: tokio::task::JoinHandle<String>,
}

impl Digest {
    pub(super) fn start() -> Self {
        let (queue, mut pieces) = tokio::sync::mpsc::channel::<Bytes>(QUEUE);
        let done = tokio::task::spawn_blocking(move || {
            let mut hasher = Sha256::new();
            while let Some(piece) = pieces.blocking_recv() {
                hasher.update(&piece);
            }
            hex(&hasher.finalize())
        });
        Self { queue, done }
    }

    /// Hands `piece` to the hash (waits only while the queue is full).
    pub(super) async fn update(&self, piece: &Bytes) {
        // The hashing thread ends only when the queue closes.
        let _ = self.queue.send(piece.clone()).await;
    }

    /// The SHA-256 of every piece, in hex.
    pub(super) async fn finish(self) -> Result<String, Error> {
        drop(self.queue);
        self.done
            .await
            .map_err(|e| Error::Internal(format!("the transfer's hash failed: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pieces_hash_as_the_whole() {
        let digest = Digest::start();
        for piece in [&b"abc"[..], b"", b"def"] {
            digest.update(&Bytes::copy_from_slice(piece)).await;
        }
        assert_eq!(
            digest.finish().await.unwrap(),
            hex(&Sha256::digest(b"abcdef"))
        );
    }
}
