//! Files: download (streamed response), upload (streamed request, written
//! to a temporary name and renamed into place), and single SFTP operations.
//!
//! The daemon never opens a local path; it relays bytes between the socket
//! and SFTP. Neither direction is held whole in memory: a bounded channel or
//! the SFTP write pipeline applies back-pressure.
//!
//! [`download`] and [`upload`] are the two streams; the single operations
//! and what the three share are here.

use ::http::{Request, StatusCode};
use hyper::body::Incoming;
use russh_sftp::client::SftpSession;
use tether_api::files::{SftpRequest, SftpResponse, query_value};

use super::App;
use super::channel;
use super::confine::confine;
use super::http::{Resp, json, query_number, read_json};
use crate::access::Caller;
use crate::access::policy::{Allowed, Op};
use crate::audit::Event;
use crate::error::Error;
use crate::ssh::pool::Lease;
use crate::ssh::sftp::{self, RemoteError, RemoteKind, check_path};

mod download;
mod upload;

pub use download::download;
pub use upload::upload;

/// An SFTP session on a pooled channel, with the lease that keeps its slot.
struct Session {
    sftp: SftpSession,
    lease: Lease,
}

async fn session(app: &App, caller: &Caller, name: &str) -> Result<Session, Error> {
    let (channel, lease) = channel::open(app, caller, name).await?;
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
    query_number(uri.query().unwrap_or(""), key)
}

pub async fn operation(
    app: &App,
    caller: &Caller,
    name: &str,
    request: Request<Incoming>,
) -> Result<Resp, Error> {
    let op: SftpRequest = read_json(request, &app.config().limits).await?;
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
    let end = start.end(String::new());
    app.record(start).await?;
    let mut resolved = Vec::new();
    let result = run_operation(app, caller, name, &allowed, op, &mut resolved).await;
    // The paths acted on, as the server resolved them.
    let end = end
        .result(match &result {
            Ok(_) => "ok",
            Err(error) => error.code().as_str(),
        })
        .detail("resolved", resolved);
    app.record_after(end).await;
    result
}

async fn run_operation(
    app: &App,
    caller: &Caller,
    name: &str,
    allowed: &Allowed,
    mut op: SftpRequest,
    resolved: &mut Vec<String>,
) -> Result<Resp, Error> {
    let allowed = allowed.clone();
    let Session { sftp, lease } = session(app, caller, name).await?;
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
            resolved.push(path.clone());
        }
        SftpRequest::Mv { from, to } => {
            *from = confine(&sftp, &allowed, from).await?;
            *to = confine(&sftp, &allowed, to).await?;
            resolved.extend([from.clone(), to.clone()]);
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
                second_channel(app, caller, name, &to).await
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

/// Another channel on the profile's connection, for the one request
/// russh-sftp's session cannot send (see [`sftp::rename`]).
async fn second_channel(
    app: &App,
    caller: &Caller,
    name: &str,
    path: &str,
) -> Result<(russh::Channel<russh::client::Msg>, Lease), RemoteError> {
    channel::open(app, caller, name)
        .await
        .map_err(|e| RemoteError::new(RemoteKind::Failed, path, e.to_string()))
}
