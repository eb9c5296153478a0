//! Uploads: local files, trees and stdin streamed to the daemon, which
//! writes them under a temporary name and renames them into place.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use bytes::Bytes;
use futures_util::StreamExt;
use tether_api::client::Client;
use tether_api::endpoint as ep;
use tether_api::files::{BatchEvent, FileQuery, SftpRequest};
use tokio::io::AsyncReadExt;

use super::{Copier, Place, bump, file_name, io_error, join, mtime_of, unreachable_usage};
use crate::failure::{Failure, Result};

impl Copier<'_> {
    pub(super) async fn upload_all(
        &self,
        sources: &[Place],
        dest: &str,
        recursive: bool,
    ) -> Result<()> {
        let is_dir = self.remote_dir_on(&self.profile, dest).await?;
        if (sources.len() > 1 || dest.ends_with('/')) && !is_dir {
            return Err(Failure::usage(format!(
                "{}:{dest} is not a directory (several sources, or a name ending in /, need an \
                 existing directory: `tether sftp {} mkdir -p {dest}` makes one)",
                self.profile, self.profile
            )));
        }
        let into_dir = is_dir;
        for source in sources {
            match source {
                Place::Std => {
                    if into_dir {
                        return Err(Failure::usage(
                            "stdin needs a file name as destination, not a directory",
                        ));
                    }
                    // As a file made by the shell's `>` would be.
                    let mode = Some(0o666 & !super::umask());
                    self.upload_stream(Source::Stdin(tokio::io::stdin()), None, dest, mode, None)
                        .await?;
                }
                Place::Local(path) => {
                    let target = if into_dir {
                        join(dest, file_name(&path.to_string_lossy())?)
                    } else {
                        dest.to_owned()
                    };
                    self.upload_path(path, &target, recursive).await?;
                }
                Place::Remote { .. } => unreachable_usage()?,
            }
        }
        Ok(())
    }

    async fn upload_path(&self, path: &Path, target: &str, recursive: bool) -> Result<()> {
        let meta = if self.follow {
            std::fs::metadata(path)
        } else {
            std::fs::symlink_metadata(path)
        }
        .map_err(|e| io_error(path, "read", e))?;
        if meta.file_type().is_symlink() {
            let link = std::fs::read_link(path).map_err(|e| io_error(path, "read the link", e))?;
            self.op(&SftpRequest::Symlink {
                target: link.to_string_lossy().into_owned(),
                link: target.to_owned(),
            })
            .await?;
            bump(&self.summary.symlinks, 1);
            return Ok(());
        }
        if meta.is_dir() {
            if !recursive {
                return Err(Failure::usage(format!(
                    "{} is a directory: copy it with -r",
                    path.display()
                )));
            }
            let mode = self.preserve.then(|| meta.permissions().mode() & 0o7777);
            self.op(&SftpRequest::Mkdir {
                path: target.to_owned(),
                parents: true,
                mode,
            })
            .await?;
            bump(&self.summary.dirs, 1);
            let mut entries: Vec<_> = std::fs::read_dir(path)
                .map_err(|e| io_error(path, "list", e))?
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| io_error(path, "list", e))?;
            entries.sort_by_key(|e| e.file_name());
            // Several entries at a time: a tree of small files is round
            // trips, not bytes (each file still replaced whole or not at all).
            let mut uploads = futures_util::stream::iter(entries)
                .map(|entry| {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    let target = join(target, &name);
                    async move { Box::pin(self.upload_path(&entry.path(), &target, true)).await }
                })
                .buffer_unordered(super::FILES_IN_FLIGHT);
            while let Some(uploaded) = uploads.next().await {
                uploaded?;
            }
            if self.preserve {
                if let Some(mtime) = mtime_of(&meta) {
                    self.op(&SftpRequest::Touch {
                        path: target.to_owned(),
                        mtime,
                    })
                    .await?;
                }
            }
            return Ok(());
        }
        let file = std::fs::File::open(path).map_err(|e| io_error(path, "open", e))?;
        // The source's permission bits always (a new file gets them), its
        // time with -p.
        let mode = Some(meta.permissions().mode() & 0o7777);
        let mtime = if self.preserve { mtime_of(&meta) } else { None };
        if meta.is_file() {
            return self
                .upload_handed_over(file, meta.len(), target, mode, mtime)
                .await;
        }
        self.upload_stream(Source::File(file), Some(meta.len()), target, mode, mtime)
            .await
    }

    /// Uploads a regular file by handing it, open, to tetherd, which reads
    /// it itself; progress follows the descriptor's offset.
    async fn upload_handed_over(
        &self,
        file: std::fs::File,
        size: u64,
        target: &str,
        mode: Option<u32>,
        mtime: Option<u64>,
    ) -> Result<()> {
        let _turn = self.turns.acquire().await;
        let query = self.file_query(target, mode, mtime);
        let uploaded = if self.batching {
            let mut events = self.batch(true).await?.send(query, &file).await?;
            self.progress
                .start_file(file_name(target).unwrap_or(target), Some(size));
            let (answer, shown) = self.following(&file, events.next()).await;
            match answer? {
                BatchEvent::Uploaded { uploaded, .. } => (uploaded, shown),
                _ => {
                    return Err(Failure::new(
                        "protocol_error",
                        "the upload ended without its end",
                    ));
                }
            }
        } else {
            let upload = ep::UploadHandover {
                name: self.profile.clone(),
                query,
            };
            self.progress
                .start_file(file_name(target).unwrap_or(target), Some(size));
            let stream = self.client.hand_over_upload(&upload, &file).await?;
            let (answer, shown) = self.following(&file, Client::upload_reply(stream)).await;
            (answer?, shown)
        };
        let (uploaded, shown) = uploaded;
        self.progress.add(uploaded.bytes.saturating_sub(shown));
        self.finished(&uploaded);
        Ok(())
    }

    /// Counts a finished upload and shows its warnings.
    fn finished(&self, uploaded: &tether_api::files::Uploaded) {
        for warning in &uploaded.warnings {
            self.progress.warn(&format!("{}: {warning}", uploaded.path));
        }
        self.progress.end_file();
        bump(&self.summary.files, 1);
        bump(&self.summary.bytes, uploaded.bytes);
    }

    fn file_query(&self, target: &str, mode: Option<u32>, mtime: Option<u64>) -> FileQuery {
        FileQuery {
            path: target.to_owned(),
            mode,
            mtime,
            preserve: self.preserve,
            inplace: self.inplace,
        }
    }

    async fn upload_stream(
        &self,
        mut reader: Source,
        size: Option<u64>,
        target: &str,
        mode: Option<u32>,
        mtime: Option<u64>,
    ) -> Result<()> {
        let upload = ep::UploadFile {
            name: self.profile.clone(),
            query: self.file_query(target, mode, mtime),
        };
        let _turn = self.turns.acquire().await;
        let (mut sender, answer) = self.client.upload(&upload).await?;
        let mut answer = tokio::spawn(answer);
        self.progress
            .start_file(file_name(target).unwrap_or(target), size);
        let mut buf = vec![0u8; 256 * 1024];
        let mut sent: u64 = 0;
        // Read and send until the end, a local read error, or an early
        // answer (the daemon refused the upload before reading it all).
        let mut early_answer = None;
        let read_error = loop {
            let step = async {
                let n = reader.read(&mut buf).await.map_err(Some)?;
                if n > 0 {
                    let chunk = Bytes::copy_from_slice(&buf[..n]);
                    sender.send_data(chunk).await.map_err(|_| None)?;
                }
                Ok::<usize, Option<std::io::Error>>(n)
            };
            tokio::select! {
                biased;
                done = &mut answer => {
                    early_answer = Some(done);
                    break None;
                }
                step = step => match step {
                    Ok(0) | Err(None) => break None,
                    Ok(n) => {
                        sent += n as u64;
                        self.progress.add(n as u64);
                    }
                    Err(Some(error)) => break Some(error),
                },
            }
        };
        match &read_error {
            Some(error) => sender.abort(std::io::Error::new(error.kind(), error.to_string())),
            None => drop(sender),
        }
        let answer = match early_answer {
            Some(done) => done,
            None => answer.await,
        }
        .map_err(|e| Failure::new("internal", e.to_string()))?;
        if let Some(error) = read_error {
            return Err(Failure::new(
                "io_error",
                format!("reading the local file failed: {error}; {target} was left as it was"),
            ));
        }
        let uploaded = answer.map_err(|e| {
            let mut failure = Failure::from(e);
            if failure.code == crate::failure::PROTOCOL_ERROR {
                failure = Failure::new(
                    "incomplete_upload",
                    format!("the connection to tetherd broke during the upload; {target} was left as it was"),
                );
            }
            failure
        })?;
        // The size read at the start is for progress only: a file that grew
        // meanwhile is sent to its end, as scp does.
        if uploaded.bytes != sent {
            return Err(Failure::new(
                "incomplete_upload",
                format!("sent {sent} bytes but the server stored {}", uploaded.bytes),
            ));
        }
        self.finished(&uploaded);
        Ok(())
    }
}

/// Where an upload's bytes come from. Local files are read directly: a read
/// from the page cache is quicker than a hand-off to a blocking thread, and
/// the daemon's side of the socket buffers meanwhile. Stdin may wait on a
/// slow writer, so it is read asynchronously.
enum Source {
    File(std::fs::File),
    Stdin(tokio::io::Stdin),
}

impl Source {
    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Source::File(file) => std::io::Read::read(file, buf),
            Source::Stdin(stdin) => stdin.read(buf).await,
        }
    }
}
