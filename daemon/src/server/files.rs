//! Files: download (streamed response), upload (streamed request, written
//! to a temporary name and renamed into place), and single SFTP operations.
//!
//! The daemon never opens a local path; it relays bytes between the socket
//! and SFTP. Neither direction is held whole in memory: a bounded channel or
//! the SFTP write pipeline applies back-pressure.

use ::http::{HeaderValue, Request, StatusCode};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use russh_sftp::client::SftpSession;
use russh_sftp::protocol::OpenFlags;
use sha2::{Digest, Sha256};
use tether_api::files::{
    MODE_HEADER, MTIME_HEADER, SIZE_HEADER, SftpRequest, SftpResponse, Uploaded, query_value,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::App;
use super::http::{Resp, channel_body, drain_in_background, json, parse_json, read_body};
use super::profiles;
use std::sync::Arc;

use super::confine::confine;
use crate::access::Caller;
use crate::access::policy::{Allowed, Op};
use crate::audit::Event;
use crate::error::Error;
use crate::ssh::pool::Lease;
use crate::ssh::sftp::{self, RemoteError, RemoteKind, check_path};
use crate::store::envelope::hex;

/// Bytes per chunk of a download.
const READ_CHUNK: usize = 256 * 1024;

/// An SFTP session on a pooled channel, with the lease that keeps its slot.
struct Session {
    sftp: SftpSession,
    lease: Lease,
}

async fn session(app: &App, name: &str) -> Result<Session, Error> {
    let target = profiles::target(app, name)?;
    let (channel, lease) = app
        .pool
        .channel(&target, || Ok(app.store.credential(name)?))
        .await?;
    let timeout = std::time::Duration::from_secs(app.config().ssh.sftp_timeout_secs);
    let sftp = sftp::open(channel, &lease.connection.addr, timeout).await?;
    Ok(Session { sftp, lease })
}

fn path_param(uri: &::http::Uri) -> Result<String, Error> {
    let query = uri.query().unwrap_or("");
    let path = query_value(query, "path")
        .map_err(Error::BadRequest)?
        .ok_or_else(|| Error::BadRequest("the query needs path=".into()))?;
    check_path(&path)?;
    Ok(path)
}

fn number_param(uri: &::http::Uri, key: &str) -> Result<Option<u64>, Error> {
    let query = uri.query().unwrap_or("");
    match query_value(query, key).map_err(Error::BadRequest)? {
        None => Ok(None),
        Some(text) => text
            .parse()
            .map(Some)
            .map_err(|_| Error::BadRequest(format!("{key} must be a number"))),
    }
}

pub async fn download(
    app: &Arc<App>,
    caller: &Caller,
    name: &str,
    allowed: &Allowed,
    request: Request<Incoming>,
) -> Result<Resp, Error> {
    let path = path_param(request.uri())?;
    let start = Event::new(caller, "sftp.download")
        .profile(name)
        .detail("path", path.as_str());
    let end = start.end(String::new());
    app.record(start).await?;
    match send_file(app, name, allowed, &path, end.clone()).await {
        Ok(response) => Ok(response),
        Err(error) => {
            app.record_after(end.result(error.code().as_str())).await;
            Err(error)
        }
    }
}

/// The download itself; `end` is recorded when the last byte went out.
async fn send_file(
    app: &Arc<App>,
    name: &str,
    allowed: &Allowed,
    path: &str,
    end: Event,
) -> Result<Resp, Error> {
    let Session { sftp, lease } = session(app, name).await?;
    let path = confine(&sftp, allowed, path).await?;
    let meta = sftp
        .metadata(&path)
        .await
        .map_err(|e| RemoteError::from_sftp(&path, e))?;
    if sftp::kind_of(&meta) == tether_api::files::FileKind::Dir {
        return Err(RemoteError::new(
            RemoteKind::Failed,
            &path,
            "is a directory (copy trees with cp -r)",
        )
        .into());
    }
    let mut file = sftp
        .open(&path)
        .await
        .map_err(|e| RemoteError::from_sftp(&path, e))?;
    let (tx, body) = channel_body(4);
    let guard = app.tasks.enter();
    let profile = name.to_owned();
    let log_path = path.clone();
    let app = app.clone();
    tokio::spawn(async move {
        let mut sent: u64 = 0;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; READ_CHUNK];
        let outcome = loop {
            match file.read(&mut buf).await {
                Ok(0) => break "ok",
                Ok(n) => {
                    sent += n as u64;
                    hasher.update(&buf[..n]);
                    if tx
                        .send(Ok(Bytes::copy_from_slice(&buf[..n])))
                        .await
                        .is_err()
                    {
                        break "caller_gone";
                    }
                }
                Err(error) => {
                    let _ = tx.send(Err(error)).await;
                    break "sftp_error";
                }
            }
        };
        let mut end = end.result(outcome).detail("bytes", sent);
        if outcome == "ok" {
            end = end.detail("sha256", hex(&hasher.finalize()));
        }
        app.record_after(end).await;
        lease
            .connection
            .bytes_out
            .fetch_add(sent, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(%profile, path = %log_path, bytes = sent, "download finished");
        drop(sftp);
        drop(lease);
        drop(guard);
    });
    let mut response = Resp::new(body);
    let headers = response.headers_mut();
    let number =
        |n: u64| HeaderValue::from_str(&n.to_string()).unwrap_or(HeaderValue::from_static("0"));
    headers.insert(SIZE_HEADER, number(meta.size.unwrap_or(0)));
    headers.insert(
        MODE_HEADER,
        number(u64::from(meta.permissions.unwrap_or(0o644) & 0o7777)),
    );
    headers.insert(MTIME_HEADER, number(u64::from(meta.mtime.unwrap_or(0))));
    Ok(response)
}

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
    let received = receive(app, name, allowed, &parts.uri, body).await;
    let end = match &received {
        Ok(done) => end
            .result("ok")
            .detail("bytes", done.bytes)
            .detail("sha256", done.sha256.as_str()),
        Err(error) => end.result(error.code().as_str()),
    };
    app.record_after(end).await;
    received.map(|done| json(StatusCode::OK, &done))
}

async fn receive(
    app: &App,
    name: &str,
    allowed: &Allowed,
    uri: &::http::Uri,
    body: &mut Option<Incoming>,
) -> Result<Uploaded, Error> {
    let path = path_param(uri)?;
    let mode = number_param(uri, "mode")?;
    let mtime = number_param(uri, "mtime")?;
    temporary_name(&path)?;
    let Session { sftp, lease } = session(app, name).await?;
    let path = confine(&sftp, allowed, &path).await?;
    let temporary = temporary_name(&path)?;
    let flags = OpenFlags::CREATE | OpenFlags::EXCLUDE | OpenFlags::WRITE | OpenFlags::TRUNCATE;
    let mut file = sftp
        .open_with_flags(&temporary, flags)
        .await
        .map_err(|e| RemoteError::from_sftp(&path, e))?;

    let Some(mut body) = body.take() else {
        return Err(Error::Internal("the upload body was taken twice".into()));
    };
    let mut hasher = Sha256::new();
    let mut written: u64 = 0;
    let outcome: Result<(), Error> = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| Error::IncompleteUpload(path.clone()))?;
            if let Ok(data) = frame.into_data() {
                hasher.update(&data);
                written += data.len() as u64;
                file.write_all(&data)
                    .await
                    .map_err(|e| RemoteError::from_io(&path, e))?;
            }
        }
        file.flush()
            .await
            .map_err(|e| RemoteError::from_io(&path, e))?;
        file.shutdown()
            .await
            .map_err(|e| RemoteError::from_io(&path, e))?;
        Ok(())
    }
    .await;
    drop(file);
    let finished = match outcome {
        Ok(()) => finish(&sftp, app, name, &temporary, &path, mode, mtime).await,
        Err(error) => Err(error),
    };
    if let Err(error) = finished {
        // Never leave the partial file behind; the target is untouched.
        let _ = sftp.remove_file(&temporary).await;
        tracing::info!(profile = %name, %path, bytes = written, code = %error.code(), "upload failed");
        return Err(error);
    }
    lease
        .connection
        .bytes_in
        .fetch_add(written, std::sync::atomic::Ordering::Relaxed);
    tracing::info!(profile = %name, %path, bytes = written, "upload finished");
    let sha256 = hex(&hasher.finalize());
    Ok(Uploaded {
        path,
        bytes: written,
        sha256,
    })
}

/// Another channel on the profile's connection, for the one request
/// russh-sftp's session cannot send (see [`sftp::rename`]).
async fn second_channel(
    app: &App,
    name: &str,
    path: &str,
) -> Result<(russh::Channel<russh::client::Msg>, Lease), RemoteError> {
    let failed = |e: Error| RemoteError::new(RemoteKind::Failed, path, e.to_string());
    let target = profiles::target(app, name).map_err(failed)?;
    app.pool
        .channel(&target, || Ok(app.store.credential(name)?))
        .await
        .map_err(failed)
}

/// Sets mode and time on the complete temporary file, then renames it over
/// the target.
async fn finish(
    sftp: &SftpSession,
    app: &App,
    name: &str,
    temporary: &str,
    path: &str,
    mode: Option<u64>,
    mtime: Option<u64>,
) -> Result<(), Error> {
    if let Some(mode) = mode {
        sftp::chmod(sftp, temporary, (mode & 0o7777) as u32).await?;
    }
    if let Some(mtime) = mtime {
        sftp::touch(sftp, temporary, mtime).await?;
    }
    sftp::rename(sftp, temporary, path, async || {
        second_channel(app, name, path).await
    })
    .await?;
    Ok(())
}

pub async fn operation(
    app: &App,
    caller: &Caller,
    name: &str,
    request: Request<Incoming>,
) -> Result<Resp, Error> {
    let (parts, body) = request.into_parts();
    let body = read_body(body, &parts.headers, &app.config().limits).await?;
    let op: SftpRequest = parse_json(&body)?;
    let write = !matches!(op, SftpRequest::Ls { .. } | SftpRequest::Stat { .. });
    let allowed = app.authorize(caller, name, Op::Sftp { write })?;
    let paths: Vec<&str> = match &op {
        SftpRequest::Ls { path }
        | SftpRequest::Stat { path, .. }
        | SftpRequest::Mkdir { path, .. }
        | SftpRequest::Rm { path, .. }
        | SftpRequest::Rmdir { path }
        | SftpRequest::Chmod { path, .. }
        | SftpRequest::Touch { path, .. } => vec![path],
        SftpRequest::Mv { from, to } => vec![from, to],
        SftpRequest::Symlink { target, link } => vec![target, link],
    };
    for path in paths {
        check_path(path)?;
    }
    let kind = serde_json::to_value(&op)
        .ok()
        .and_then(|v| v.get("op").and_then(|o| o.as_str()).map(str::to_owned))
        .unwrap_or_default();
    let start = Event::new(caller, &format!("sftp.{kind}"))
        .profile(name)
        .detail("request", serde_json::to_value(&op).unwrap_or_default());
    app.audited(start, run_operation(app, name, &allowed, op))
        .await
}

async fn run_operation(
    app: &App,
    name: &str,
    allowed: &Allowed,
    mut op: SftpRequest,
) -> Result<Resp, Error> {
    let allowed = allowed.clone();
    let Session { sftp, lease } = session(app, name).await?;
    // Every path the operation touches is confined (a symlink's target is
    // text: reading through the link is what gets checked).
    match &mut op {
        SftpRequest::Ls { path }
        | SftpRequest::Stat { path, .. }
        | SftpRequest::Mkdir { path, .. }
        | SftpRequest::Rm { path, .. }
        | SftpRequest::Rmdir { path }
        | SftpRequest::Chmod { path, .. }
        | SftpRequest::Touch { path, .. }
        | SftpRequest::Symlink { link: path, .. } => {
            *path = confine(&sftp, &allowed, path).await?;
        }
        SftpRequest::Mv { from, to } => {
            *from = confine(&sftp, &allowed, from).await?;
            *to = confine(&sftp, &allowed, to).await?;
        }
    }
    let response = match op {
        SftpRequest::Ls { path } => SftpResponse::Entries(sftp::list(&sftp, &path).await?),
        SftpRequest::Stat { path, follow } => {
            SftpResponse::Info(sftp::stat(&sftp, &path, follow).await?)
        }
        SftpRequest::Mkdir {
            path,
            parents,
            mode,
        } => {
            sftp::mkdir(&sftp, &path, parents, mode).await?;
            SftpResponse::Done
        }
        SftpRequest::Rm { path, recursive } => {
            sftp::remove(&sftp, &path, recursive).await?;
            SftpResponse::Done
        }
        SftpRequest::Rmdir { path } => {
            sftp::rmdir(&sftp, &path).await?;
            SftpResponse::Done
        }
        SftpRequest::Mv { from, to } => {
            sftp::rename(&sftp, &from, &to, async || {
                second_channel(app, name, &to).await
            })
            .await?;
            SftpResponse::Done
        }
        SftpRequest::Chmod { path, mode } => {
            sftp::chmod(&sftp, &path, mode).await?;
            SftpResponse::Done
        }
        SftpRequest::Symlink { target, link } => {
            sftp::symlink(&sftp, &target, &link).await?;
            SftpResponse::Done
        }
        SftpRequest::Touch { path, mtime } => {
            sftp::touch(&sftp, &path, mtime).await?;
            SftpResponse::Done
        }
    };
    drop(sftp);
    drop(lease);
    Ok(json(StatusCode::OK, &response))
}
