//! `PUT /v1/profiles/{name}/files?path=P`: the request body written to a
//! temporary name beside the target and renamed into place when complete.

use ::http::{Request, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use russh_sftp::client::SftpSession;
use russh_sftp::client::fs::Metadata;
use russh_sftp::protocol::{FileAttributes, OpenFlags};
use sha2::{Digest, Sha256};
use tether_api::files::{FileKind, Uploaded, query_value};
use tokio::io::AsyncWriteExt;

use super::{Session, number_param, path_param, second_channel, session};
use crate::access::Caller;
use crate::access::policy::{Allowed, Op};
use crate::audit::Event;
use crate::error::Error;
use crate::server::App;
use crate::server::confine::confine;
use crate::server::http::{Resp, drain_in_background, json};
use crate::ssh::sftp::{self, RemoteError, RemoteKind};
use crate::store::envelope::hex;

/// A name beside `path` that no one else will pick.
fn temporary_name(path: &str) -> Result<String, Error> {
    let (dir, base) = match path.rsplit_once('/') {
        Some((dir, base)) => (format!("{dir}/"), base),
        None => (String::new(), path),
    };
    if base.is_empty() || base == "." || base == ".." {
        return Err(Error::BadRequest(format!("{path:?} does not name a file")));
    }
    let mut random = [0u8; 6];
    getrandom::fill(&mut random).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(format!("{dir}.{base}.tether-{}.part", hex(&random)))
}

/// `PUT .../files`: authorized here rather than in the router, so that a
/// refusal, like every other early failure, drains the body it did not read.
pub async fn upload(
    app: &App,
    caller: &Caller,
    name: &str,
    request: Request<Incoming>,
) -> Result<Resp, Error> {
    let (parts, body) = request.into_parts();
    let mut body = Some(body);
    let result = match app.authorize(caller, name, Op::Sftp { write: true }) {
        Ok(allowed) => record_and_receive(app, caller, name, &allowed, &parts, &mut body).await,
        Err(error) => Err(error),
    };
    if let (Err(_), Some(body)) = (&result, body.take()) {
        // Refused before the body was read: the CLI stops sending when it
        // sees the answer.
        drain_in_background(body);
    }
    result
}

async fn record_and_receive(
    app: &App,
    caller: &Caller,
    name: &str,
    allowed: &Allowed,
    parts: &::http::request::Parts,
    body: &mut Option<Incoming>,
) -> Result<Resp, Error> {
    let start = Event::new(caller, "sftp.upload").profile(name).detail(
        "path",
        query_value(parts.uri.query().unwrap_or(""), "path")
            .ok()
            .flatten()
            .unwrap_or_default(),
    );
    let end = start.end(String::new());
    app.record(start).await?;
    let received = receive(app, caller, name, allowed, &parts.uri, body).await;
    let end = match &received {
        Ok(done) => end
            .result("ok")
            .detail("resolved", done.path.as_str())
            .detail("bytes", done.bytes)
            .detail("sha256", done.sha256.as_str()),
        Err(error) => end.result(error.code().as_str()),
    };
    app.record_after(end).await;
    received.map(|done| json(StatusCode::OK, &done))
}

async fn receive(
    app: &App,
    caller: &Caller,
    name: &str,
    allowed: &Allowed,
    uri: &::http::Uri,
    body: &mut Option<Incoming>,
) -> Result<Uploaded, Error> {
    let path = path_param(uri)?;
    let query = uri.query().unwrap_or("");
    let flag = |key: &str| {
        query_value(query, key)
            .ok()
            .flatten()
            .is_some_and(|v| v == "1")
    };
    let wanted = Wanted {
        mode: number_param(uri, "mode")?.map(|m| (m & 0o7777) as u32),
        mtime: number_param(uri, "mtime")?,
        preserve: flag("preserve"),
    };
    let inplace = flag("inplace");
    temporary_name(&path)?;
    let Session { sftp, lease } = session(app, caller, name).await?;
    // A symlink at the target is written through, as scp does: the file it
    // points to is replaced, in its own directory.
    let path = confine(&sftp, allowed, &path).await?;
    let path = sftp::follow_links(&sftp, &path).await?;
    let path = confine(&sftp, allowed, &path).await?;
    let existing = sftp::existing(&sftp, &path).await?;
    if existing
        .as_ref()
        .is_some_and(|m| sftp::kind_of(m) == FileKind::Dir)
    {
        return Err(RemoteError::new(RemoteKind::Failed, &path, "is a directory").into());
    }
    let attrs = final_attributes(&wanted, existing.as_ref());
    let Some(mut body) = body.take() else {
        return Err(Error::Internal("the upload body was taken twice".into()));
    };
    let (written, sha256) = if inplace {
        write_in_place(&sftp, &path, &mut body, &attrs, existing.is_some()).await?
    } else {
        let temporary = temporary_name(&path)?;
        let flags = OpenFlags::CREATE | OpenFlags::EXCLUDE | OpenFlags::WRITE | OpenFlags::TRUNCATE;
        let file = sftp
            .open_with_flags_and_attributes(&temporary, flags, sftp::private_attributes())
            .await
            .map_err(|e| {
                let error = RemoteError::from_sftp(&temporary, e);
                match (error.kind.clone(), &existing) {
                    (RemoteKind::PermissionDenied, Some(_)) => RemoteError::new(
                        RemoteKind::PermissionDenied,
                        &path,
                        "cannot create a temporary file beside it: its directory is not \
                         writable. The file itself may be: `tether cp --inplace` writes into \
                         it directly (not atomic: an interrupted copy leaves it partly \
                         written, as scp does)",
                    ),
                    _ => error,
                }
            })?;
        let streamed = match stream_into(file, &mut body, &path).await {
            Err(Error::Remote(error)) => Err(Error::Remote(
                sftp::explain_write_failure(&sftp, &path, error).await,
            )),
            other => other,
        };
        let finished = match streamed {
            Ok(done) => finish(&sftp, app, caller, name, &temporary, &path, &attrs)
                .await
                .map(|()| done),
            Err(error) => Err(error),
        };
        if finished.is_err() {
            // Never leave the partial file behind; the target is untouched.
            let _ = sftp.remove_file(&temporary).await;
        }
        finished?
    };
    lease
        .connection
        .bytes_in
        .fetch_add(written, std::sync::atomic::Ordering::Relaxed);
    tracing::info!(profile = %name, %path, bytes = written, inplace, "upload finished");
    Ok(Uploaded {
        path,
        bytes: written,
        sha256,
    })
}

/// What the request asks the finished file to get.
struct Wanted {
    /// The source's permission bits.
    mode: Option<u32>,
    mtime: Option<u64>,
    /// `-p`: the source's mode and times, even over an existing file.
    preserve: bool,
}

/// The finished file's attributes, as scp and sftp give them: with `-p` the
/// source's mode and times; over an existing file, that file's mode, owner
/// and group; a new file the source's permission bits.
fn final_attributes(wanted: &Wanted, existing: Option<&Metadata>) -> FileAttributes {
    let mut attrs = FileAttributes::empty();
    match (wanted.preserve, existing) {
        (true, _) => {
            attrs.permissions = wanted.mode;
            if let Some(mtime) = wanted.mtime {
                let secs = u32::try_from(mtime).unwrap_or(u32::MAX);
                attrs.atime = Some(secs);
                attrs.mtime = Some(secs);
            }
        }
        (false, Some(old)) => {
            attrs.permissions = old.permissions.map(|p| p & 0o7777);
            attrs.uid = old.uid;
            attrs.gid = old.gid;
        }
        (false, None) => attrs.permissions = wanted.mode.map(|m| m & 0o777),
    }
    attrs
}

/// Writes the body into `file`; the bytes and their SHA-256.
async fn stream_into(
    mut file: russh_sftp::client::fs::File,
    body: &mut Incoming,
    path: &str,
) -> Result<(u64, String), Error> {
    let mut hasher = Sha256::new();
    let mut written: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| Error::IncompleteUpload(path.to_owned()))?;
        if let Ok(data) = frame.into_data() {
            hasher.update(&data);
            written += data.len() as u64;
            file.write_all(&data)
                .await
                .map_err(|e| RemoteError::from_io(path, e))?;
        }
    }
    file.flush()
        .await
        .map_err(|e| RemoteError::from_io(path, e))?;
    file.shutdown()
        .await
        .map_err(|e| RemoteError::from_io(path, e))?;
    Ok((written, hex(&hasher.finalize())))
}

/// `--inplace`: writes straight into the target, as scp does, for a file
/// whose directory is not writable. Not atomic: an interrupted copy leaves
/// the target partly written, and the error says so.
async fn write_in_place(
    sftp: &SftpSession,
    path: &str,
    body: &mut Incoming,
    attrs: &FileAttributes,
    existed: bool,
) -> Result<(u64, String), Error> {
    let flags = OpenFlags::CREATE | OpenFlags::WRITE | OpenFlags::TRUNCATE;
    let file = sftp
        .open_with_flags_and_attributes(path, flags, sftp::private_attributes())
        .await
        .map_err(|e| RemoteError::from_sftp(path, e))?;
    let done = stream_into(file, body, path).await.map_err(|error| {
        Error::Remote(RemoteError::new(
            RemoteKind::Failed,
            path,
            format!("{error}; written in place, so it is now incomplete"),
        ))
    })?;
    // An existing file keeps what it had unless -p asked otherwise.
    sftp::set_attributes(sftp, path, attrs, existed).await?;
    Ok(done)
}

/// Gives the complete temporary file its final attributes, then renames it
/// over the target.
async fn finish(
    sftp: &SftpSession,
    app: &App,
    caller: &Caller,
    name: &str,
    temporary: &str,
    path: &str,
    attrs: &FileAttributes,
) -> Result<(), Error> {
    sftp::set_attributes(sftp, temporary, attrs, false).await?;
    sftp::rename(sftp, temporary, path, async || {
        second_channel(app, caller, name, path).await
    })
    .await?;
    Ok(())
}
