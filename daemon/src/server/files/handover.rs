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
use bytes::{Bytes, BytesMut};
use hyper::body::Incoming;
use tether_api::files::{HANDOVER_PROTOCOL, UploadReply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::remote;
use super::upload::{Source, recorded, wanted_of, write_from};
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
    if !wants_upgrade(&request, HANDOVER_PROTOCOL) {
        return Err(Error::UpgradeRequired(
            "a hand-over upload".into(),
            HANDOVER_PROTOCOL,
        ));
    }
    let on_upgrade = hyper::upgrade::on(&mut request);
    let uri = request.uri().clone();
    let (app, caller, name) = (app.clone(), caller.clone(), name.to_owned());
    app.clone().spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let Some((stream, early)) = upgraded_socket(upgraded) else {
            tracing::warn!("an upload hand-over on a connection that is not a Unix socket");
            return;
        };
        let fd = received_fd(&stream, &early, "the file").await;
        let (mut reading, mut writing) = stream.into_split();
        // The CLI going away (Ctrl-C) ends the upload.
        let gone = CancellationToken::new();
        let watcher = gone.clone();
        let watch = tokio::spawn(async move {
            let mut byte = [0u8; 1];
            let _ = reading.read(&mut byte).await;
            watcher.cancel();
        });
        let result = match fd {
            Err(error) => Err(error),
            Ok(fd) => match HandedOver::take(fd, gone) {
                Err(error) => Err(error),
                Ok(mut file) => {
                    recorded(&app, &caller, &name, &uri, async {
                        let remote = remote(&app, &caller, &name).await?;
                        let source = Source::File(&mut file);
                        write_from(
                            &app, &caller, &name, &allowed, remote, &path, &wanted, source,
                        )
                        .await
                    })
                    .await
                }
            },
        };
        watch.abort();
        let reply = match result {
            Ok(done) => UploadReply::Done(done),
            Err(error) => UploadReply::Error(error.to_api()),
        };
        let bytes = serde_json::to_vec(&reply).unwrap_or_default();
        let _ = writing.write_all(&bytes).await;
        let _ = writing.shutdown().await;
    });
    Ok(switching(HANDOVER_PROTOCOL))
}

/// A handed-over file, read from where its offset stands to its end.
pub(in crate::server) struct HandedOver {
    file: tokio::fs::File,
    gone: CancellationToken,
}

impl HandedOver {
    /// Takes `fd` if it is a regular file opened for reading.
    fn take(fd: OwnedFd, gone: CancellationToken) -> Result<Self, Error> {
        use rustix::fs::{FileType, OFlags};
        let regular = rustix::fs::fstat(&fd)
            .is_ok_and(|stat| FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile);
        let readable = rustix::fs::fcntl_getfl(&fd).is_ok_and(|flags| {
            let mode = flags & OFlags::RWMODE;
            mode == OFlags::RDONLY || mode == OFlags::RDWR
        });
        if !regular || !readable {
            return Err(Error::BadRequest(
                "what came is not a regular file open for reading".into(),
            ));
        }
        Ok(Self {
            file: tokio::fs::File::from_std(std::fs::File::from(fd)),
            gone,
        })
    }

    /// The next piece; `None` at the end; an error once the CLI is gone.
    pub(in crate::server) async fn next_chunk(
        &mut self,
        path: &str,
    ) -> Result<Option<Bytes>, Error> {
        let mut buf = BytesMut::with_capacity(CHUNK);
        tokio::select! {
            biased;
            () = self.gone.cancelled() => Err(Error::IncompleteUpload(path.to_owned())),
            read = self.file.read_buf(&mut buf) => match read {
                Ok(0) => Ok(None),
                Ok(_) => Ok(Some(buf.freeze())),
                Err(error) => Err(Error::BadRequest(format!(
                    "reading the handed-over file failed: {error}"
                ))),
            },
        }
    }
}
