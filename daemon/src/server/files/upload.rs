//! `PUT /v1/profiles/{name}/files?path=P`: the request body written to a
//! temporary name beside the target and renamed into place when complete.

use ::http::{Request, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use russh_sftp::client::SftpSession;
use russh_sftp::protocol::OpenFlags;
use sha2::{Digest, Sha256};
use tether_api::files::{Uploaded, query_value};
use tokio::io::AsyncWriteExt;

use super::{Session, number_param, path_param, second_channel, session};
use crate::access::Caller;
use crate::access::policy::{Allowed, Op};
use crate::audit::Event;
use crate::error::Error;
use crate::server::App;
use crate::server::confine::confine;
use crate::server::http::{Resp, drain_in_background, json};
use crate::ssh::sftp::{self, RemoteError};
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
    let attrs = Attrs {
        mode: number_param(uri, "mode")?,
        mtime: number_param(uri, "mtime")?,
    };
    temporary_name(&path)?;
    let Session { sftp, lease } = session(app, caller, name).await?;
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
        Ok(()) => finish(&sftp, app, caller, name, &temporary, &path, attrs).await,
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

/// What the finished file gets, from the request's query.
#[derive(Clone, Copy)]
struct Attrs {
    mode: Option<u64>,
    mtime: Option<u64>,
}

/// Sets mode and time on the complete temporary file, then renames it over
/// the target.
async fn finish(
    sftp: &SftpSession,
    app: &App,
    caller: &Caller,
    name: &str,
    temporary: &str,
    path: &str,
    attrs: Attrs,
) -> Result<(), Error> {
    if let Some(mode) = attrs.mode {
        sftp::chmod(sftp, temporary, (mode & 0o7777) as u32).await?;
    }
    if let Some(mtime) = attrs.mtime {
        sftp::touch(sftp, temporary, mtime).await?;
    }
    sftp::rename(sftp, temporary, path, async || {
        second_channel(app, caller, name, path).await
    })
    .await?;
    Ok(())
}
