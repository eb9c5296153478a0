//! `POST /v1/profiles/{name}/files/handover`: an upload whose local file
//! the CLI opened with its own permissions and hands over, open, on the
//! upgraded connection ([`tether_api::files::HANDOVER_PROTOCOL`]). tetherd
//! reads the descriptor (it never opens a path for a caller), so the bytes
//! do not pass through the CLI and the socket on their way.
//!
//! Only a regular file opened for reading is taken. The CLI closing its
//! side ends the upload as a broken body does: the temporary file removed,
//! the target as it was.

use std::os::fd::OwnedFd;
use std::sync::Arc;

use ::http::Request;
use bytes::Bytes;
use hyper::body::Incoming;
use tether_api::files::{Downloaded, FetchEvent, FetchStarted, HANDOVER_PROTOCOL, UploadReply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::OwnedWriteHalf;
use tokio_util::sync::CancellationToken;

use super::digest::Digest;
use super::download::{Opened, open_to_read};
use super::upload::{Source, named_path, recorded, wanted_of, write_from};
use super::{Remote, ftp, path_param, remote};
use crate::access::Caller;
use crate::access::policy::Op;
use crate::error::Error;
use crate::server::App;
use crate::server::http::{Resp, received_fd, switching, upgraded_socket, wants_upgrade};

/// What one read takes from the file.
const CHUNK: usize = 256 * 1024;

pub async fn upload(
    app: &Arc<App>,
    caller: &Caller,
    name: &str,
    mut request: Request<Incoming>,
) -> Result<Resp, Error> {
    let allowed = app.authorize(caller, name, Op::Sftp { write: true })?;
    let (path, wanted) = wanted_of(request.uri())?;
    let uri = request.uri().clone();
    let (task_app, caller, name) = (app.clone(), caller.clone(), name.to_owned());
    serve(
        app,
        &mut request,
        "a hand-over upload",
        move |fd, writing, gone| async move {
            let app = task_app;
            let result = match fd.and_then(|fd| HandedOver::take(fd, gone)) {
                Err(error) => Err(error),
                Ok(mut file) => {
                    recorded(&app, &caller, &name, "upload", &named_path(&uri), async {
                        let remote = remote(&app, &caller, &name).await?;
                        let source = Source::File(&mut file);
                        write_from(
                            &app, &caller, &name, &allowed, remote, &path, &wanted, source,
                        )
                        .await
                    })
                    .await
                }
            };
            let reply = match result {
                Ok(done) => UploadReply::Done(done),
                Err(error) => UploadReply::Error(error.to_api()),
            };
            (writing, serde_json::to_vec(&reply).unwrap_or_default())
        },
    )
}

/// Upgrades `request` to a hand-over and answers `101`; in a task of the
/// daemon's, `work` gets the descriptor that came (or why none did), the
/// half of the connection its answer goes on, and a token cancelled when
/// the CLI goes away (Ctrl-C). The last bytes `work` gives back are
/// written before the connection is closed.
fn serve<F, Fut>(
    app: &Arc<App>,
    request: &mut Request<Incoming>,
    what: &str,
    work: F,
) -> Result<Resp, Error>
where
    F: FnOnce(Result<OwnedFd, Error>, OwnedWriteHalf, CancellationToken) -> Fut + Send + 'static,
    Fut: Future<Output = (OwnedWriteHalf, Vec<u8>)> + Send,
{
    if !wants_upgrade(request, HANDOVER_PROTOCOL) {
        return Err(Error::UpgradeRequired(what.into(), HANDOVER_PROTOCOL));
    }
    let on_upgrade = hyper::upgrade::on(request);
    app.spawn(async move {
        let Some(Accepted {
            fd,
            writing,
            gone,
            watch,
        }) = accepted(on_upgrade).await
        else {
            return;
        };
        let (mut writing, last) = work(fd, writing, gone).await;
        watch.abort();
        let _ = writing.write_all(&last).await;
        let _ = writing.shutdown().await;
    });
    Ok(switching(HANDOVER_PROTOCOL))
}

/// A hand-over under way (see [`serve`]), with the task that watches for
/// the CLI going away.
struct Accepted {
    fd: Result<OwnedFd, Error>,
    writing: OwnedWriteHalf,
    gone: CancellationToken,
    watch: tokio::task::JoinHandle<()>,
}

async fn accepted(on_upgrade: hyper::upgrade::OnUpgrade) -> Option<Accepted> {
    let upgraded = on_upgrade.await.ok()?;
    let Some((stream, early)) = upgraded_socket(upgraded) else {
        tracing::warn!("a file hand-over on a connection that is not a Unix socket");
        return None;
    };
    let fd = received_fd(&stream, &early, "the file").await;
    let (mut reading, writing) = stream.into_split();
    let gone = CancellationToken::new();
    let watcher = gone.clone();
    let watch = tokio::spawn(async move {
        let mut byte = [0u8; 1];
        let _ = reading.read(&mut byte).await;
        watcher.cancel();
    });
    Some(Accepted {
        fd,
        writing,
        gone,
        watch,
    })
}

/// A handed-over file, read from where its offset stands to its end by a
/// thread of the blocking pool that keeps up to [`READ_AHEAD`] pieces
/// ready: the connection it is sent on never waits for the disk (an FTP
/// data connection is one stream, with nothing else in flight to cover a
/// wait).
pub(in crate::server) struct HandedOver {
    /// Its size when it was handed over.
    size: u64,
    pieces: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
    gone: CancellationToken,
}

/// Pieces read ahead of the transfer, at most.
const READ_AHEAD: usize = 8;

impl HandedOver {
    /// Takes `fd` if it is a regular file opened for reading.
    pub(super) fn take(fd: OwnedFd, gone: CancellationToken) -> Result<Self, Error> {
        let (file, size) = regular_file(fd, Access::Reading)?;
        // A small file gets a small buffer: eight files in flight should
        // not each hold a piece's worth.
        let piece_len = CHUNK.min(size.saturating_add(1));
        let (ready, pieces) = tokio::sync::mpsc::channel(READ_AHEAD);
        // Ends at the end of the file, at an error, or when the transfer
        // drops its end of the queue.
        tokio::task::spawn_blocking(move || {
            use std::io::Read;
            // Each piece's buffer used again once the transfer let go.
            let spares = crate::pieces::Spares::default();
            loop {
                let mut piece = spares.buffer(piece_len);
                match (&file).take(piece_len as u64).read_to_end(&mut piece) {
                    Ok(0) => return,
                    Ok(_) => {
                        if ready.blocking_send(Ok(spares.piece(piece))).is_err() {
                            return;
                        }
                    }
                    Err(error) => {
                        let _ = ready.blocking_send(Err(error));
                        return;
                    }
                }
            }
        });
        Ok(Self {
            size: u64::try_from(size).unwrap_or(u64::MAX),
            pieces,
            gone,
        })
    }

    /// Its size when it was handed over (it may change while it is read).
    pub(in crate::server) fn size(&self) -> u64 {
        self.size
    }

    /// The next piece; `None` at the end; an error once the CLI is gone.
    pub(in crate::server) async fn next_chunk(
        &mut self,
        path: &str,
    ) -> Result<Option<Bytes>, Error> {
        tokio::select! {
            biased;
            () = self.gone.cancelled() => Err(Error::IncompleteUpload(path.to_owned())),
            piece = self.pieces.recv() => match piece {
                None => Ok(None),
                Some(Ok(piece)) => Ok(Some(piece)),
                Some(Err(error)) => Err(Error::BadRequest(format!(
                    "reading the handed-over file failed: {error}"
                ))),
            },
        }
    }
}

/// `POST .../files/fetch`: a remote file written into a local file the
/// CLI created (owner-only, beside its target) and hands over open for
/// writing; tetherd answers with [`FetchEvent`] lines.
pub async fn download(
    app: &Arc<App>,
    caller: &Caller,
    name: &str,
    mut request: Request<Incoming>,
) -> Result<Resp, Error> {
    let allowed = app.authorize(caller, name, Op::Sftp { write: false })?;
    let path = path_param(request.uri())?;
    let (task_app, caller, name) = (app.clone(), caller.clone(), name.to_owned());
    serve(
        app,
        &mut request,
        "a hand-over download",
        move |fd, mut writing, gone| async move {
            let app = task_app;
            let result = match fd.and_then(|fd| regular_file(fd, Access::Writing)) {
                Err(error) => Err(error),
                Ok((file, _)) => {
                    let fetch = fetch_into(
                        &app,
                        &caller,
                        &name,
                        &allowed,
                        &path,
                        file,
                        &mut writing,
                        &gone,
                    );
                    recorded(&app, &caller, &name, "download", &path, fetch).await
                }
            };
            let event = match result {
                Ok(done) => FetchEvent::Done(done),
                Err(error) => FetchEvent::Error(error.to_api()),
            };
            (writing, event_line(&event))
        },
    )
}

/// What a handed-over descriptor must be open for.
#[derive(Clone, Copy)]
pub(super) enum Access {
    Reading,
    Writing,
}

/// `fd` as a file, with its size, if it is a regular file open for
/// `access`: a hand-over takes nothing else (no pipe, socket or device,
/// nothing the CLI could not itself read or write). A file to write must
/// not be open for appending: a download writes at offsets, which such a
/// file would put at its end.
pub(super) fn regular_file(fd: OwnedFd, access: Access) -> Result<(std::fs::File, usize), Error> {
    use rustix::fs::{FileType, OFlags};
    let size = rustix::fs::fstat(&fd)
        .ok()
        .filter(|stat| FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile)
        .map(|stat| usize::try_from(stat.st_size).unwrap_or(0));
    let (wanted, what) = match access {
        Access::Reading => (OFlags::RDONLY, "reading"),
        Access::Writing => (OFlags::WRONLY, "writing (not appending)"),
    };
    let open_for = rustix::fs::fcntl_getfl(&fd).is_ok_and(|flags| {
        let mode = flags & OFlags::RWMODE;
        let appending = matches!(access, Access::Writing) && flags.contains(OFlags::APPEND);
        (mode == wanted || mode == OFlags::RDWR) && !appending
    });
    match size {
        Some(size) if open_for => Ok((std::fs::File::from(fd), size)),
        _ => Err(Error::BadRequest(format!(
            "what came is not a regular file open for {what}"
        ))),
    }
}

/// An event as the line it is sent as.
pub(super) fn event_line(event: &impl serde::Serialize) -> Vec<u8> {
    let mut line = serde_json::to_vec(event).unwrap_or_default();
    line.push(b'\n');
    line
}

/// Where a download says that its remote file is open, and what it is.
pub(super) trait Announce {
    async fn started(&mut self, started: FetchStarted);
}

impl Announce for OwnedWriteHalf {
    async fn started(&mut self, started: FetchStarted) {
        let _ = self
            .write_all(&event_line(&FetchEvent::Started(started)))
            .await;
    }
}

/// Where a download's pieces come from: an SFTP reader or an FTP data
/// connection.
trait Pieces {
    /// The next piece, or `None` at the end of the file.
    async fn next_piece(&mut self) -> Result<Option<Bytes>, Error>;
}

impl Pieces for crate::ssh::sftp::transfer::Reader {
    async fn next_piece(&mut self) -> Result<Option<Bytes>, Error> {
        Ok(self.next_chunk().await?)
    }
}

impl Pieces for crate::ftp::transfer::Download {
    async fn next_piece(&mut self) -> Result<Option<Bytes>, Error> {
        Ok(self.next_chunk().await?)
    }
}

/// Reads the remote file into `file` (after telling the CLI what it is),
/// hashing it beside; the CLI going away ends it.
#[allow(clippy::too_many_arguments)]
pub(super) async fn fetch_into(
    app: &App,
    caller: &Caller,
    name: &str,
    allowed: &crate::access::policy::Allowed,
    path: &str,
    file: std::fs::File,
    announce: &mut impl Announce,
    gone: &CancellationToken,
) -> Result<Downloaded, Error> {
    match remote(app, caller, name).await? {
        Remote::Sftp(mut session) => {
            let sftp = &mut session.sftp;
            let Opened {
                path,
                attrs,
                handle,
            } = open_to_read(sftp, allowed, path).await?;
            let started = FetchStarted {
                size: attrs.size.unwrap_or(0),
                mode: attrs.permissions.unwrap_or(0o644) & 0o7777,
                mtime: u64::from(attrs.mtime.unwrap_or(0)),
            };
            announce.started(started).await;
            let mut reader = sftp.reader(handle, &path, attrs.size);
            let copied = copy_into(&mut reader, file, gone).await;
            sftp.close_unwaited(reader.into_handle());
            let (bytes, sha256) = copied?;
            session
                .lease()
                .connection
                .bytes_out
                .fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
            session.done(app, name);
            Ok(Downloaded {
                path,
                bytes,
                sha256,
            })
        }
        Remote::Ftp(mut lease) => {
            let ftp::Opened {
                mut download,
                info,
                path,
            } = ftp::open(lease.control(), allowed, path).await?;
            let started = FetchStarted {
                size: info.size,
                mode: info.mode & 0o7777,
                mtime: info.mtime,
            };
            announce.started(started).await;
            let copied = copy_into(&mut download, file, gone).await;
            let (bytes, sha256) = match copied {
                // The server's verdict: a data connection that ended early
                // is not the end of the file.
                Ok(done) => {
                    let control = lease.control();
                    control.finish(download.into_transfer(), &path).await?;
                    done
                }
                Err(error) => {
                    lease.control().abandon();
                    return Err(error);
                }
            };
            lease.count(0, bytes);
            Ok(Downloaded {
                path,
                bytes,
                sha256,
            })
        }
    }
}

/// Copies every piece into `file`, hashing beside; the bytes and their
/// SHA-256 once `file` has them all. A thread of the blocking pool writes,
/// up to [`READ_AHEAD`] pieces behind, so the connection is read on while
/// the disk works.
async fn copy_into(
    pieces: &mut impl Pieces,
    file: std::fs::File,
    gone: &CancellationToken,
) -> Result<(u64, String), Error> {
    let (queue, mut queued) = tokio::sync::mpsc::channel::<Bytes>(READ_AHEAD);
    let writer = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        while let Some(piece) = queued.blocking_recv() {
            (&file).write_all(&piece)?;
        }
        Ok::<_, std::io::Error>(())
    });
    let mut digest = Digest::start();
    let mut bytes = 0u64;
    let copied = loop {
        let piece = tokio::select! {
            biased;
            () = gone.cancelled() => break Err(Error::BadRequest("the caller went away".into())),
            piece = pieces.next_piece() => piece,
        };
        let data = match piece {
            Ok(Some(data)) => data,
            Ok(None) => break Ok(()),
            Err(error) => break Err(error),
        };
        digest.update(&data).await;
        bytes += data.len() as u64;
        if queue.send(data).await.is_err() {
            // The writer stopped at an error, which its end says.
            break Ok(());
        }
    };
    drop(queue);
    let written = writer
        .await
        .map_err(|e| Error::Internal(format!("the file's writer failed: {e}")))?;
    copied?;
    written.map_err(|e| Error::BadRequest(format!("writing the handed-over file failed: {e}")))?;
    Ok((bytes, digest.finish().await?))
}
