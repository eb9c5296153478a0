//! The file endpoints on an FTP profile: the same single operations,
//! downloads and uploads as on SFTP, on a control connection leased from
//! the FTP pool. Access checks, audit events and path confinement are the
//! callers'; this is what differs.
//!
//! An upload goes to a temporary name beside the target (created private
//! first when the finished file will be: the server's default mode would
//! show it to others while it is written), gets its mode and time where
//! the server offers `SITE CHMOD` and `MFMT`, and is renamed over the
//! target (`RNFR`, `RNTO`) only when the server confirmed every byte.

use std::sync::Arc;

use ::http::HeaderValue;
use tether_api::files::{FileInfo, FileKind, MODE_HEADER, MTIME_HEADER, SIZE_HEADER, Uploaded};

use super::digest::Digest;
use super::upload::{Source, Wanted, temporary_name};
use crate::access::Caller;
use crate::access::policy::Allowed;
use crate::audit::Event;
use crate::error::Error;
use crate::ftp::client::Control;
use crate::ftp::pool::Lease;
use crate::ftp::transfer::{Download, Upload};
use crate::ftp::{Failed, FtpFailure};
use crate::remote::{RemoteError, RemoteKind};
use crate::server::App;
use crate::server::confine::confine;
use crate::server::http::{Resp, channel_body};

/// Where a path is, `~` expanded and confined to the grant.
async fn confined(control: &mut Control, allowed: &Allowed, path: &str) -> Result<String, Error> {
    let path = control.expand(path)?;
    confine(control, allowed, &path).await
}

/// A file opened for reading: its data connection, what it is, and where.
pub(super) struct Opened {
    pub download: Download,
    pub info: FileInfo,
    pub path: String,
}

/// Opens `path` for reading, confined to the grant; a directory is an
/// error.
pub(super) async fn open(
    control: &mut Control,
    allowed: &Allowed,
    path: &str,
) -> Result<Opened, Error> {
    let path = confined(control, allowed, path).await?;
    let info = control.stat(&path, true).await?;
    if info.kind == FileKind::Dir {
        return Err(RemoteError::new(
            RemoteKind::Failed,
            &path,
            "is a directory (copy trees with cp -r)",
        )
        .into());
    }
    let transfer = control.open_read(&path).await?;
    let download = Download::new(transfer, &control.addr, control.reply_timeout());
    Ok(Opened {
        download,
        info,
        path,
    })
}

/// `GET .../files` on an FTP profile: the file streamed as the response;
/// `end` is recorded once the server confirmed the last byte (or not).
pub(super) async fn send_file(
    app: &Arc<App>,
    mut lease: Lease,
    profile: &str,
    allowed: &Allowed,
    path: &str,
    end: Event,
) -> Result<Resp, Error> {
    let Opened {
        mut download,
        info,
        path,
    } = open(lease.control(), allowed, path).await?;
    let (mut tx, body) = channel_body(4);
    let profile = profile.to_owned();
    let task_app = app.clone();
    app.tasks.spawn(async move {
        let mut sent: u64 = 0;
        let mut digest = Digest::start();
        let ended = loop {
            match download.next_chunk().await {
                Ok(None) => break None,
                Ok(Some(data)) => {
                    sent += data.len() as u64;
                    digest.update(&data).await;
                    if tx.send_data(data).await.is_err() {
                        break Some(Err("caller_gone"));
                    }
                }
                Err(failed) => break Some(Ok(failed)),
            }
        };
        // The server's verdict: a data connection that ended early is not
        // the end of the file.
        let ended = match ended {
            None => match lease
                .control()
                .finish(download.into_transfer(), &path)
                .await
            {
                Ok(()) => None,
                Err(failed) => Some(Ok(failed)),
            },
            other => {
                // Not finished: the server's last reply is still to come.
                lease.control().abandon();
                other
            }
        };
        let outcome = match ended {
            None => "ok",
            Some(Err(code)) => code,
            Some(Ok(failed)) => {
                let error = Error::from(failed);
                tx.abort(std::io::Error::other(error.to_string()));
                error.code().as_str()
            }
        };
        let mut end = end
            .result(outcome)
            .detail("resolved", path.as_str())
            .detail("bytes", sent);
        if outcome == "ok" {
            if let Ok(sha256) = digest.finish().await {
                end = end.detail("sha256", sha256);
            }
        }
        task_app.record_after(end).await;
        lease.count(0, sent);
        tracing::info!(%profile, %path, bytes = sent, "download finished");
    });
    let mut response = Resp::new(body);
    let headers = response.headers_mut();
    let number =
        |n: u64| HeaderValue::from_str(&n.to_string()).unwrap_or(HeaderValue::from_static("0"));
    headers.insert(SIZE_HEADER, number(info.size));
    headers.insert(MODE_HEADER, number(u64::from(info.mode & 0o7777)));
    headers.insert(MTIME_HEADER, number(info.mtime));
    Ok(response)
}

/// Writes `source` to `path` on the FTP server as the caller's grant
/// allows: a symlink at the target written through, a temporary file
/// beside it renamed over it (or with `inplace` straight into it).
pub(super) async fn write_target(
    to: Destination<'_>,
    lease: &mut Lease,
    allowed: &Allowed,
    path: &str,
    wanted: &Wanted,
    mut source: Source<'_>,
) -> Result<Uploaded, Error> {
    let control = lease.control();
    let mut path = confined(control, allowed, path).await?;
    let mut existing = control.existing(&path).await?;
    if existing
        .as_ref()
        .is_some_and(|e| e.kind == FileKind::Symlink)
    {
        // Written through, as scp does: the link's target is replaced.
        let real = control.realpath(&path).await?;
        path = confine(control, allowed, &real).await?;
        existing = control.existing(&path).await?;
    }
    if existing.as_ref().is_some_and(|e| e.kind == FileKind::Dir) {
        return Err(RemoteError::new(RemoteKind::Failed, &path, "is a directory").into());
    }
    // As scp gives modes: with -p the source's; over a file, that file's;
    // a new file the source's permission bits.
    let mode = match (wanted.preserve, &existing) {
        (true, _) => wanted.mode.map(|m| m & 0o7777),
        (false, Some(old)) => Some(old.mode & 0o7777),
        (false, None) => wanted.mode.map(|m| m & 0o777),
    };
    let mtime = wanted.mtime.filter(|_| wanted.preserve);
    let mut warnings = Vec::new();
    if wanted.inplace {
        let (bytes, sha256) = stream(control, &path, &mut source).await.map_err(|error| {
            Error::Remote(RemoteError::new(
                RemoteKind::Failed,
                &path,
                format!("{error}; written in place, so it is now incomplete"),
            ))
        })?;
        attributes(control, &path, mode, mtime, wanted.preserve, &mut warnings).await?;
        return Ok(Uploaded {
            path,
            bytes,
            sha256,
            warnings,
        });
    }
    let temporary = temporary_name(&path)?;
    let private = mode.is_some_and(|m| m & 0o044 != 0o044);
    let finished = async {
        if private {
            // Other users may not read what they will not be able to read.
            make_private(control, &temporary)
                .await
                .map_err(|error| unwritable_directory(error, &path, existing.is_some()))?;
        }
        let done = stream(control, &temporary, &mut source)
            .await
            .map_err(|error| unwritable_directory(error, &path, existing.is_some()))?;
        attributes(
            control,
            &temporary,
            mode,
            mtime,
            wanted.preserve,
            &mut warnings,
        )
        .await?;
        control.rename(&temporary, &path).await?;
        Ok::<_, Error>(done)
    }
    .await;
    match finished {
        Ok((bytes, sha256)) => Ok(Uploaded {
            path,
            bytes,
            sha256,
            warnings,
        }),
        Err(error) => {
            // Never leave the partial file behind; the target is untouched.
            // A lost connection is replaced for that.
            let mut removed = !control.is_broken() && removed(control, &temporary).await;
            if !removed && control.is_broken() {
                if let Ok(mut fresh) =
                    crate::server::channel::ftp(to.app, to.caller, to.profile).await
                {
                    removed = self::removed(fresh.control(), &temporary).await;
                }
            }
            Err(left_as_it_was(
                error,
                &path,
                (!removed).then_some(temporary.as_str()),
            ))
        }
    }
}

/// Whom a write is for, should it need a connection of its own.
pub(super) struct Destination<'a> {
    pub app: &'a App,
    pub caller: &'a Caller,
    pub profile: &'a str,
}

/// Removes `temporary`; whether it is gone (or was never made).
async fn removed(control: &mut Control, temporary: &str) -> bool {
    match control.remove_file(temporary).await {
        Ok(()) => true,
        Err(Failed::Refused(gone)) => gone.kind == RemoteKind::NoSuchFile,
        Err(_) => false,
    }
}

/// A temporary file that could not be made says so about the target:
/// its directory is not writable (though the file may be).
fn unwritable_directory(error: Error, path: &str, exists: bool) -> Error {
    match error {
        Error::Remote(remote) if remote.kind == RemoteKind::PermissionDenied => {
            Error::Remote(RemoteError::new(
                RemoteKind::PermissionDenied,
                path,
                if exists {
                    "cannot create a temporary file beside it: its directory is not writable. \
                     The file itself may be: `tether cp --inplace` writes into it directly (not \
                     atomic: an interrupted copy leaves it partly written)"
                } else {
                    "permission denied: its directory is not writable"
                },
            ))
        }
        other => other,
    }
}

/// Creates `temporary` empty and owner-only, so the data that follows is
/// never readable by others on the server.
async fn make_private(control: &mut Control, temporary: &str) -> Result<(), Error> {
    let transfer = control.open_write(temporary).await?;
    control.finish(transfer, temporary).await?;
    match control.chmod(temporary, 0o600).await {
        Ok(()) | Err(Failed::Unsupported(_)) => Ok(()),
        Err(failed) => {
            let _ = control.remove_file(temporary).await;
            Err(failed.into())
        }
    }
}

/// Sends `source` as `path` (`STOR`) and waits for the server to confirm
/// it; the bytes and their SHA-256. A transfer cut short still has its
/// reply read (or the connection is given up), so that the next command on
/// this control connection gets its own answer.
async fn stream(
    control: &mut Control,
    path: &str,
    source: &mut Source<'_>,
) -> Result<(u64, String), Error> {
    let transfer = control.open_write(path).await?;
    let mut upload = Upload::new(transfer, &control.addr, control.reply_timeout());
    let mut digest = Digest::start();
    let sent = async {
        while let Some(data) = source.next(path).await? {
            digest.update(&data).await;
            upload.write(&data).await?;
        }
        Ok::<_, Error>(())
    }
    .await;
    if let Err(error) = sent {
        if control.finish(upload.abandon(), path).await.is_err() {
            control.abandon();
        }
        return Err(error);
    }
    let (transfer, bytes) = match upload.flush().await {
        Ok(flushed) => flushed,
        Err(failed) => {
            control.abandon();
            return Err(failed.into());
        }
    };
    control.finish(transfer, path).await?;
    Ok((bytes, digest.finish().await?))
}

/// The finished file's mode and time, where the server can set them.
/// What it cannot set is a warning with `-p`, and otherwise unremarked
/// (the server's defaults, as with any FTP client).
async fn attributes(
    control: &mut Control,
    path: &str,
    mode: Option<u32>,
    mtime: Option<u64>,
    preserve: bool,
    warnings: &mut Vec<String>,
) -> Result<(), Error> {
    if let Some(mode) = mode {
        match control.chmod(path, mode).await {
            Ok(()) => {}
            Err(Failed::Unsupported(why)) if preserve => {
                warnings.push(format!("mode {mode:04o} not kept: {why}"));
            }
            Err(Failed::Unsupported(_)) => {}
            Err(failed) => return Err(failed.into()),
        }
    }
    if let Some(mtime) = mtime {
        match control.touch(path, mtime).await {
            Ok(()) => {}
            Err(Failed::Unsupported(why)) => {
                warnings.push(format!("modification time not kept: {why}"));
            }
            Err(failed) => return Err(failed.into()),
        }
    }
    Ok(())
}

/// Says in the message what became of the target (untouched) and of the
/// temporary file, where it could not be removed.
fn left_as_it_was(error: Error, target: &str, leftover: Option<&str>) -> Error {
    let state = match leftover {
        None => format!("{target} was left as it was"),
        Some(temporary) => format!(
            "{target} was left as it was; the partial temporary file {temporary} could not be \
             removed"
        ),
    };
    match error {
        Error::Ftp(FtpFailure::Closed { addr, message }) => Error::Ftp(FtpFailure::Closed {
            addr,
            message: format!("{message}; {state}"),
        }),
        Error::Ftp(FtpFailure::Timeout { addr, secs, stage }) => Error::Ftp(FtpFailure::Protocol {
            addr,
            message: format!("no answer within {secs} s ({stage}); {state}"),
        }),
        Error::Remote(mut remote) => {
            remote.message = format!("{}; {state}", remote.message);
            Error::Remote(remote)
        }
        Error::FtpRefused(mut remote) => {
            remote.message = format!("{}; {state}", remote.message);
            Error::FtpRefused(remote)
        }
        other => other,
    }
}

/// A remote-to-remote copy's source on an FTP server: read to the end, and
/// only then (with the server's confirmation) done.
pub(in crate::server) struct FtpSource<'a> {
    pub control: &'a mut Control,
    pub download: Option<Download>,
    pub path: String,
}

impl Drop for FtpSource<'_> {
    /// Not read to its end: the server's reply to it is still to come.
    fn drop(&mut self) {
        if self.download.is_some() {
            self.control.abandon();
        }
    }
}

impl FtpSource<'_> {
    pub async fn next_chunk(&mut self) -> Result<Option<bytes::Bytes>, Error> {
        let Some(download) = self.download.as_mut() else {
            return Ok(None);
        };
        match download.next_chunk().await? {
            Some(data) => Ok(Some(data)),
            None => {
                if let Some(download) = self.download.take() {
                    self.control
                        .finish(download.into_transfer(), &self.path)
                        .await?;
                }
                Ok(None)
            }
        }
    }
}
