//! Files: download (streamed response), upload (streamed request, written
//! to a temporary name and renamed into place), and single SFTP operations.
//!
//! The daemon never opens a local path; it relays bytes between the socket
//! and SFTP. Neither direction is held whole in memory: a bounded channel or
//! the SFTP write pipeline applies back-pressure.
//!
//! [`download()`] and [`upload()`] are the two streams; the single operations
//! and what the three share are here.

use ::http::StatusCode;
use tether_api::files::{SftpRequest, SftpResponse, query_value};

use super::App;
use super::channel;
use super::confine::confine;
use super::http::{Resp, json, query_number};
use crate::access::Caller;
use crate::access::policy::{Allowed, Op};
use crate::audit::Event;
use crate::error::Error;
use crate::ssh::SshError;
use crate::ssh::pool::Lease;
use crate::ssh::sftp::{self, Sftp, check_path};

mod copy;
mod download;
mod upload;

pub use copy::copy;
pub use download::download;
pub use upload::upload;

/// An SFTP session on a pooled channel, with the lease that keeps its slot.
pub(in crate::server) struct Session {
    pub sftp: Sftp,
    lease: Lease,
}

/// An SFTP session on `name`'s pooled connection. A subsystem start that
/// the server refuses or leaves unanswered (Dropbear, now and then) is tried
/// once more on a fresh channel; both attempts fit in the connect timeout.
pub(in crate::server) async fn session(
    app: &App,
    caller: &Caller,
    name: &str,
) -> Result<Session, Error> {
    let timeout = std::time::Duration::from_secs(app.config().ssh.sftp_timeout_secs);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (channel, lease) = channel::open(app, caller, name).await?;
        let (addr, reply_wait) = (&lease.connection.addr, lease.connection.reply_wait);
        match sftp::open(channel, addr, reply_wait, timeout).await {
            Ok(sftp) => return Ok(Session { sftp, lease }),
            Err(error @ (SshError::Timeout { .. } | SshError::Protocol { .. })) if attempt < 2 => {
                tracing::info!(profile = %name, %error, "SFTP did not start; trying a fresh channel");
            }
            Err(error) => return Err(error.into()),
        }
    }
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
    op: SftpRequest,
) -> Result<Resp, Error> {
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
    // Every path the operation touches has its `~` expanded and is confined
    // (a symlink's target is text: reading through the link is what gets
    // checked).
    match &mut op {
        SftpRequest::Ls { path }
        | SftpRequest::Stat { path, .. }
        | SftpRequest::Mkdir { path, .. }
        | SftpRequest::Rm { path, .. }
        | SftpRequest::Rmdir { path }
        | SftpRequest::Chmod { path, .. }
        | SftpRequest::Touch { path, .. }
        | SftpRequest::Symlink { link: path, .. } => {
            *path = confine(&sftp, &allowed, &sftp.expand(path).await?).await?;
            resolved.push(path.clone());
        }
        SftpRequest::Mv { from, to } => {
            *from = confine(&sftp, &allowed, &sftp.expand(from).await?).await?;
            *to = confine(&sftp, &allowed, &sftp.expand(to).await?).await?;
            resolved.extend([from.clone(), to.clone()]);
        }
    }
    let response = match op {
        SftpRequest::Ls { path } => SftpResponse::Entries(sftp.list(&path).await?),
        SftpRequest::Stat { path, follow } => SftpResponse::Info(sftp.stat(&path, follow).await?),
        SftpRequest::Mkdir {
            path,
            parents,
            mode,
        } => {
            sftp.mkdir(&path, parents, mode).await?;
            SftpResponse::Done
        }
        SftpRequest::Rm { path, recursive } => {
            sftp.remove(&path, recursive).await?;
            SftpResponse::Done
        }
        SftpRequest::Rmdir { path } => {
            sftp.rmdir(&path).await?;
            SftpResponse::Done
        }
        SftpRequest::Mv { from, to } => {
            sftp.rename(&from, &to).await?;
            SftpResponse::Done
        }
        SftpRequest::Chmod { path, mode } => {
            sftp.chmod(&path, mode).await?;
            SftpResponse::Done
        }
        SftpRequest::Symlink { target, link } => {
            sftp.symlink(&target, &link).await?;
            SftpResponse::Done
        }
        SftpRequest::Touch { path, mtime } => {
            sftp.touch(&path, mtime).await?;
            SftpResponse::Done
        }
    };
    drop(sftp);
    drop(lease);
    Ok(json(StatusCode::OK, &response))
}
