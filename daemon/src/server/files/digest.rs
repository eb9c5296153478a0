//! The SHA-256 of a transfer, computed beside it rather than in its loop:
//! once a transfer passes [`INLINE`] bytes, it hands each piece over (a
//! reference-counted `Bytes`, not a copy) and goes on, and a thread of the
//! blocking pool hashes. The queue holds at most [`QUEUE`] pieces, so a slow
//! hash slows the transfer rather than filling memory. A small file is
//! hashed in place: a thread for a few kilobytes costs more than the hash.

use bytes::Bytes;
use sha2::{Digest as _, Sha256};

use crate::error::Error;
use crate::store::envelope::hex;

/// Bytes hashed in the transfer's own loop before the hash moves aside.
const INLINE: u64 = 1024 * 1024;
/// Pieces waiting to be hashed, at most (each up to a transfer's chunk).
const QUEUE: usize = 16;

pub(super) enum Digest {
    /// Still small: hashed here.
    Inline { hasher: Sha256, bytes: u64 },
    /// Hashed on a thread of its own.
    Aside {
        queue: tokio::sync::mpsc::Sender<Bytes>,
        done: tokio::task::JoinHandle<String>,
    },
}

impl Digest {
    pub(super) fn start() -> Self {
        Digest::Inline {
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// Adds `piece` to the hash (waits only while the queue is full).
    pub(super) async fn update(&mut self, piece: &Bytes) {
        if let Digest::Inline { hasher, bytes } = self {
            if *bytes + piece.len() as u64 <= INLINE {
                hasher.update(piece);
                *bytes += piece.len() as u64;
                return;
            }
            let mut hasher = std::mem::take(hasher);
            let (queue, mut pieces) = tokio::sync::mpsc::channel::<Bytes>(QUEUE);
            let done = tokio::task::spawn_blocking(move || {
                while let Some(piece) = pieces.blocking_recv() {
                    hasher.update(&piece);
                }
                hex(&hasher.finalize())
            });
            *self = Digest::Aside { queue, done };
        }
        if let Digest::Aside { queue, .. } = self {
            // The hashing thread ends only when the queue closes.
            let _ = queue.send(piece.clone()).await;
        }
    }

    /// The SHA-256 of every piece, in hex.
    pub(super) async fn finish(self) -> Result<String, Error> {
        match self {
            Digest::Inline { hasher, .. } => Ok(hex(&hasher.finalize())),
            Digest::Aside { queue, done } => {
                drop(queue);
                done.await
                    .map_err(|e| Error::Internal(format!("the transfer's hash failed: {e}")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pieces_hash_as_the_whole_small_or_large() {
        for size in [0usize, 3, INLINE as usize, INLINE as usize * 3 + 7] {
            let data: Vec<u8> = (0..size).map(|i| (i * 31 + i / 977) as u8).collect();
            let mut digest = Digest::start();
            for piece in data.chunks(256 * 1024 + 1) {
                digest.update(&Bytes::copy_from_slice(piece)).await;
            }
            assert_eq!(
                digest.finish().await.unwrap(),
                hex(&Sha256::digest(&data)),
                "{size} bytes"
            );
        }
    }
}
