//! Files: download (streamed response), upload (streamed request, written
//! to a temporary name and renamed into place), and single operations, on
//! an SFTP session or, for an FTP profile, an FTP control connection
//! ([`Remote`]).
//!
//! The daemon never opens a local path; it relays bytes between the socket
//! and the server. Neither direction is held whole in memory: a bounded
//! channel, the SFTP write pipeline or the FTP data connection applies
//! back-pressure.
//!
//! [`download()`] and [`upload()`] are the two streams; the single operations
//! and what the three share are here; [`ftp`] is what differs for FTP.

use ::http::StatusCode;
use tether_api::files::{SftpRequest, SftpResponse, query_value};

use super::App;
use super::channel;
use super::confine::confine;
use super::http::{Resp, json, query_number};
use super::profiles;
use crate::access::Caller;
use crate::access::policy::{Allowed, Op};
use crate::audit::Event;
use crate::error::Error;
use crate::remote::{Files, check_path};
use crate::ssh::SshError;
use crate::ssh::pool::Lease;
use crate::ssh::sftp::{self, Sftp};

mod batch;
mod copy;
mod digest;
mod download;
mod ftp;
mod handover;
mod upload;

pub use batch::{download as download_batch, upload as upload_batch};
pub use copy::copy;
pub use download::download;
pub use handover::{download as fetch, upload as hand_over};
pub use upload::upload;

/// A profile's files, leased for one request: an SFTP session, or an FTP
/// control connection.
pub(in crate::server) enum Remote {
    Sftp(Session),
    Ftp(Box<crate::ftp::pool::Lease>),
}

/// `name`'s files, by the protocol it speaks.
pub(in crate::server) async fn remote(
    app: &App,
    caller: &Caller,
    name: &str,
) -> Result<Remote, Error> {
    if profiles::load(app, name)?.protocol.is_ftp() {
        return Ok(Remote::Ftp(Box::new(
            channel::ftp(app, caller, name).await?,
        )));
    }
    Ok(Remote::Sftp(session(app, caller, name).await?))
}

/// The audit trail's name for a file operation on `name`: `sftp.upload`,
/// or `ftp.upload` on an FTP profile.
pub(in crate::server) fn event_name(app: &App, name: &str, what: &str) -> String {
    let family = match profiles::load(app, name) {
        Ok(record) if record.protocol.is_ftp() => "ftp",
        _ => "sftp",
    };
    format!("{family}.{what}")
}

/// An SFTP session on a pooled channel, with the lease that keeps its slot.
pub(in crate::server) struct Session {
    pub sftp: Sftp,
    lease: Lease,
}

impl Session {
    /// The request went well: the session is kept for the profile's next
    /// one (see [`crate::ssh::pool`]).
    pub(in crate::server) fn done(self, app: &App, name: &str) {
        app.pool.park(name, self.sftp, self.lease);
    }

    pub(in crate::server) fn lease(&self) -> &Lease {
        &self.lease
    }
}

/// An SFTP session on `name`'s pooled connection. A subsystem start the
/// server left unanswered or said something odd to is tried once more on a
/// fresh channel; one on a channel the server closed unanswered is tried
/// on another connection (that one is retired: [`crate::ssh::reply`]).
pub(in crate::server) async fn session(
    app: &App,
    caller: &Caller,
    name: &str,
) -> Result<Session, Error> {
    if let Some((sftp, lease)) = app.pool.unpark(name) {
        return Ok(Session { sftp, lease });
    }
    let timeout = std::time::Duration::from_secs(app.config().ssh.sftp_timeout_secs);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (channel, lease) = channel::open(app, caller, name).await?;
        let (addr, reply_wait) = (&lease.connection.addr, lease.connection.reply_wait);
        match sftp::open(channel, addr, reply_wait, timeout).await {
            Ok(sftp) => return Ok(Session { sftp, lease }),
            Err(error) => {
                lease.failed(&error);
                let retried = matches!(
                    error,
                    SshError::ClosedUnanswered { .. }
                        | SshError::Timeout { .. }
                        | SshError::Protocol { .. }
                );
                if !retried || attempt >= 2 {
                    return Err(error.into());
                }
                tracing::info!(profile = %name, %error, "SFTP did not start; trying a fresh channel");
            }
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
    for path in op.paths() {
        check_path(path)?;
    }
    let start = Event::new(caller, &event_name(app, name, op.name()))
        .profile(name)
        .detail("request", serde_json::to_value(&op).unwrap_or_default());
    let end = start.end(String::new());
    app.record(start).await?;
    let mut resolved = Vec::new();
    let result = match remote(app, caller, name).await {
        Ok(Remote::Sftp(mut session)) => {
            let done = run_on(&mut session.sftp, &allowed, op, &mut resolved).await;
            if done.is_ok() {
                session.done(app, name);
            }
            done
        }
        Ok(Remote::Ftp(mut lease)) => run_on(lease.control(), &allowed, op, &mut resolved).await,
        Err(error) => Err(error),
    };
    // The paths acted on, as the server resolved them.
    let end = end
        .result(match &result {
            Ok(_) => "ok",
            Err(error) => error.code().as_str(),
        })
        .detail("resolved", resolved);
    app.record_after(end).await;
    result.map(|response| json(StatusCode::OK, &response))
}

/// One operation on `files`: every path it acts on has its `~` expanded
/// and is confined to the grant, and `resolved` says where they were.
async fn run_on<F: Files>(
    files: &mut F,
    allowed: &Allowed,
    mut op: SftpRequest,
    resolved: &mut Vec<String>,
) -> Result<SftpResponse, Error> {
    for path in op.acted_on_mut() {
        let expanded = files.expand(path).await.map_err(Into::into)?;
        *path = confine(files, allowed, &expanded).await?;
        resolved.push(path.clone());
    }
    let done = match op {
        SftpRequest::Ls { path } => {
            return files
                .list(&path)
                .await
                .map(SftpResponse::Entries)
                .map_err(Into::into);
        }
        SftpRequest::Stat { path, follow } => {
            return files
                .stat(&path, follow)
                .await
                .map(SftpResponse::Info)
                .map_err(Into::into);
        }
        SftpRequest::Mkdir {
            path,
            parents,
            mode,
        } => files.mkdir(&path, parents, mode).await,
        SftpRequest::Rm { path, recursive } => files.remove(&path, recursive).await,
        SftpRequest::Rmdir { path } => files.rmdir(&path).await,
        SftpRequest::Mv { from, to } => files.rename(&from, &to).await,
        SftpRequest::Chmod { path, mode } => files.chmod(&path, mode).await,
        SftpRequest::Symlink { target, link } => files.symlink(&target, &link).await,
        SftpRequest::Touch { path, mtime } => files.touch(&path, mtime).await,
    };
    done.map(|()| SftpResponse::Done).map_err(Into::into)
}
