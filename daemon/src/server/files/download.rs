//! `GET /v1/profiles/{name}/files?path=P`: a remote file streamed as the
//! response, read ahead in chunks and hashed for the audit trail (on an FTP
//! profile, [`super::ftp::send_file`]).

use std::sync::Arc;

use ::http::{HeaderValue, Request};
use hyper::body::Incoming;
use tether_api::files::{MODE_HEADER, MTIME_HEADER, SIZE_HEADER};

use super::digest::Digest;
use super::{Remote, Session, event_name, ftp, path_param, remote};
use crate::access::Caller;
use crate::access::policy::Allowed;
use crate::access::policy::Op;
use crate::audit::Event;
use crate::error::Error;
use crate::remote::{RemoteError, RemoteKind};
use crate::server::App;
use crate::server::confine::confine;
use crate::server::http::{Resp, channel_body};
use crate::ssh::sftp;

pub async fn download(
    app: &Arc<App>,
    caller: &Caller,
    name: &str,
    request: Request<Incoming>,
) -> Result<Resp, Error> {
    let allowed = app.authorize(caller, name, Op::Sftp { write: false })?;
    let path = path_param(request.uri())?;
    let start = Event::new(caller, &event_name(app, name, "download"))
        .profile(name)
        .detail("path", path.as_str());
    app.streamed(start, |end| {
        send_file(app, caller, name, &allowed, &path, end)
    })
    .await
}

/// A remote file open for a download.
pub(super) struct Opened {
    /// As the server resolved it.
    pub path: String,
    pub attrs: russh_sftp::protocol::FileAttributes,
    pub handle: String,
}

/// Opens `path` to read as the grant allows (`~` expanded, confined); a
/// directory is refused.
pub(super) async fn open_to_read(
    sftp: &mut sftp::Sftp,
    allowed: &Allowed,
    path: &str,
) -> Result<Opened, Error> {
    let path = sftp.expand(path).await?;
    let path = confine(&mut *sftp, allowed, &path).await?;
    // Both at once: one round trip, not two. (A directory opens for reading
    // on most servers; its handle is closed again.)
    let (attrs, handle) = tokio::join!(sftp.stat_attrs(&path), sftp.open_read(&path));
    let attrs = match attrs {
        Ok(attrs) if sftp::kind_of(&attrs) != tether_api::files::FileKind::Dir => attrs,
        refused => {
            if let Ok(handle) = handle {
                sftp.close_unwaited(handle);
            }
            return Err(match refused {
                Err(error) => error.into(),
                Ok(_) => RemoteError::new(
                    RemoteKind::Failed,
                    &path,
                    "is a directory (copy trees with cp -r)",
                )
                .into(),
            });
        }
    };
    let handle = handle?;
    Ok(Opened {
        path,
        attrs,
        handle,
    })
}

/// The download itself; `end` is recorded when the last byte went out.
async fn send_file(
    app: &Arc<App>,
    caller: &Caller,
    name: &str,
    allowed: &Allowed,
    path: &str,
    end: Event,
) -> Result<Resp, Error> {
    let Session { mut sftp, lease } = match remote(app, caller, name).await? {
        Remote::Sftp(session) => session,
        Remote::Ftp(lease) => return ftp::send_file(app, *lease, name, allowed, path, end).await,
    };
    let Opened {
        path,
        attrs,
        handle,
    } = open_to_read(&mut sftp, allowed, path).await?;
    let (mut tx, body) = channel_body(4);
    let tasks = app.tasks.clone();
    let profile = name.to_owned();
    let log_path = path.clone();
    let app = app.clone();
    tasks.spawn(async move {
        let mut sent: u64 = 0;
        let mut digest = Digest::start();
        let mut reader = sftp.reader(handle, &log_path, attrs.size);
        // Read to the end, whatever the size said (see `transfer`).
        let outcome = loop {
            match reader.next_chunk().await {
                Ok(None) => break "ok",
                Ok(Some(data)) => {
                    sent += data.len() as u64;
                    digest.update(&data).await;
                    if tx.send_data(data).await.is_err() {
                        break "caller_gone";
                    }
                }
                Err(error) => {
                    tx.abort(std::io::Error::other(error.to_string()));
                    break "sftp_error";
                }
            }
        };
        sftp.close_unwaited(reader.into_handle());
        let mut end = end
            .result(outcome)
            .detail("resolved", log_path.as_str())
            .detail("bytes", sent);
        if outcome == "ok" {
            if let Ok(sha256) = digest.finish().await {
                end = end.detail("sha256", sha256);
            }
        }
        app.record_after(end).await;
        lease
            .connection
            .bytes_out
            .fetch_add(sent, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(%profile, path = %log_path, bytes = sent, "download finished");
        if outcome == "ok" {
            app.pool.park(&profile, sftp, lease);
        }
    });
    let mut response = Resp::new(body);
    let headers = response.headers_mut();
    let number =
        |n: u64| HeaderValue::from_str(&n.to_string()).unwrap_or(HeaderValue::from_static("0"));
    headers.insert(SIZE_HEADER, number(attrs.size.unwrap_or(0)));
    headers.insert(
        MODE_HEADER,
        number(u64::from(attrs.permissions.unwrap_or(0o644) & 0o7777)),
    );
    headers.insert(MTIME_HEADER, number(u64::from(attrs.mtime.unwrap_or(0))));
    Ok(response)
}
