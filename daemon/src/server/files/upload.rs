//! `PUT /v1/profiles/{name}/files?path=P`: the request body written to a
//! temporary name beside the target and renamed into place when complete.

use ::http::{Request, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use russh_sftp::protocol::{FileAttributes, OpenFlags};
use tether_api::files::{FileKind, FileQuery, Uploaded, query_value};

use super::digest::Digest;
use super::ftp::FtpSource;
use super::{Remote, event_name, ftp, number_param, path_param, remote};
use crate::access::Caller;
use crate::access::policy::{Allowed, Op};
use crate::audit::Event;
use crate::error::Error;
use crate::remote::{RemoteError, RemoteKind};
use crate::server::App;
use crate::server::confine::confine;
use crate::server::http::{Resp, drain_in_background, json};
use crate::ssh::sftp::ops::private_attributes;
use crate::ssh::sftp::transfer::Reader;
use crate::ssh::sftp::{self, Sftp};
use crate::store::envelope::hex;

/// A name beside `path` that no one else will pick.
pub(super) fn temporary_name(path: &str) -> Result<String, Error> {
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
    let received = recorded(
        app,
        caller,
        name,
        "upload",
        &named_path(&parts.uri),
        async {
            let (path, wanted) = wanted_of(&parts.uri)?;
            let remote = remote(app, caller, name).await?;
            let Some(mut body) = body.take() else {
                return Err(Error::Internal("the upload body was taken twice".into()));
            };
            write_from(
                app,
                caller,
                name,
                allowed,
                remote,
                &path,
                &wanted,
                Source::Body(&mut body),
            )
            .await
        },
    )
    .await;
    received.map(|done| json(StatusCode::OK, &done))
}

/// What a finished transfer puts in its end event.
pub(super) trait Transferred {
    /// The remote path as the server resolved it.
    fn resolved(&self) -> &str;
    fn bytes(&self) -> u64;
    fn sha256(&self) -> &str;
}

impl Transferred for Uploaded {
    fn resolved(&self) -> &str {
        &self.path
    }
    fn bytes(&self) -> u64 {
        self.bytes
    }
    fn sha256(&self) -> &str {
        &self.sha256
    }
}

impl Transferred for tether_api::files::Downloaded {
    fn resolved(&self) -> &str {
        &self.path
    }
    fn bytes(&self) -> u64 {
        self.bytes
    }
    fn sha256(&self) -> &str {
        &self.sha256
    }
}

/// Runs `transfer` (an `upload` or a `download` of `path`) between its
/// start and end events on the trail (with the resolved path, bytes and
/// SHA-256 at the end).
pub(super) async fn recorded<T: Transferred>(
    app: &App,
    caller: &Caller,
    name: &str,
    what: &str,
    path: &str,
    transfer: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    let start = Event::new(caller, &event_name(app, name, what))
        .profile(name)
        .detail("path", path);
    let end = start.end(String::new());
    app.record(start).await?;
    let done = transfer.await;
    let end = match &done {
        Ok(done) => end
            .result("ok")
            .detail("resolved", done.resolved())
            .detail("bytes", done.bytes())
            .detail("sha256", done.sha256()),
        Err(error) => end.result(error.code().as_str()),
    };
    app.record_after(end).await;
    done
}

/// The path an upload's query names, for its start event.
pub(super) fn named_path(uri: &::http::Uri) -> String {
    query_value(uri.query().unwrap_or(""), "path")
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// The target and what it should get, from an upload's query.
pub(super) fn wanted_of(uri: &::http::Uri) -> Result<(String, Wanted), Error> {
    let path = path_param(uri)?;
    let query = uri.query().unwrap_or("");
    let flag = |key: &str| {
        query_value(query, key)
            .ok()
            .flatten()
            .is_some_and(|v| v == "1")
    };
    let query = FileQuery {
        mode: number_param(uri, "mode")?.map(|m| m as u32),
        mtime: number_param(uri, "mtime")?,
        preserve: flag("preserve"),
        inplace: flag("inplace"),
        path,
    };
    let wanted = wanted_from(&query)?;
    Ok((query.path, wanted))
}

/// What an upload's target should get, from the query that names it (its
/// path checked).
pub(super) fn wanted_from(query: &FileQuery) -> Result<Wanted, Error> {
    crate::remote::check_path(&query.path)?;
    temporary_name(&query.path)?;
    Ok(Wanted {
        mode: query.mode.map(|m| m & 0o7777),
        mtime: query.mtime,
        preserve: query.preserve,
        inplace: query.inplace,
    })
}

/// Writes `source` to `path` on `remote`, either protocol.
#[allow(clippy::too_many_arguments)]
pub(super) async fn write_from(
    app: &App,
    caller: &Caller,
    name: &str,
    allowed: &Allowed,
    remote: Remote,
    path: &str,
    wanted: &Wanted,
    source: Source<'_>,
) -> Result<Uploaded, Error> {
    let done = match remote {
        Remote::Sftp(mut session) => {
            let helpers = match &source {
                Source::File(file) => helpers(app, caller, name, &session, file.size()).await,
                _ => Vec::new(),
            };
            let lanes: Vec<&Sftp> = helpers.iter().map(|helper| &helper.sftp).collect();
            let done = write_target(&mut session.sftp, &lanes, allowed, path, wanted, source).await;
            if done.is_ok() {
                for helper in helpers {
                    helper.done(app, name);
                }
            }
            let done = done?;
            session
                .lease()
                .connection
                .bytes_in
                .fetch_add(done.bytes, std::sync::atomic::Ordering::Relaxed);
            session.done(app, name);
            done
        }
        Remote::Ftp(mut lease) => {
            let to = ftp::Destination {
                app,
                caller,
                profile: name,
            };
            let done = ftp::write_target(to, &mut lease, allowed, path, wanted, source).await?;
            lease.count(done.bytes, 0);
            done
        }
    };
    tracing::info!(profile = %name, path = %done.path, bytes = done.bytes, "upload finished");
    Ok(done)
}

/// Bytes of an upload per extra session it is spread over, at least.
const BYTES_PER_LANE: u64 = 8 << 20;

/// The extra SFTP sessions an upload of `size` bytes is spread over: none
/// for a near server (`ssh.upload_channels_rtt_ms`), a small file, or a
/// connection of one channel at a time; otherwise up to
/// `ssh.upload_channels` in all, one per [`BYTES_PER_LANE`]. One that
/// cannot be had is done without.
async fn helpers(
    app: &App,
    caller: &Caller,
    name: &str,
    session: &super::Session,
    size: u64,
) -> Vec<super::Session> {
    let settings = &app.config().ssh;
    let far = session.sftp.round_trip
        >= std::time::Duration::from_millis(settings.upload_channels_rtt_ms);
    if !far || session.lease().connection.exclusive {
        return Vec::new();
    }
    let wanted = usize::try_from(size / BYTES_PER_LANE)
        .unwrap_or(usize::MAX)
        .min(settings.upload_channels.saturating_sub(1));
    let mut helpers = Vec::new();
    for _ in 0..wanted {
        match super::session(app, caller, name).await {
            Ok(helper) => helpers.push(helper),
            Err(error) => {
                tracing::debug!(profile = %name, %error, "an upload goes on fewer channels");
                break;
            }
        }
    }
    helpers
}

/// Where the bytes of a new remote file come from.
pub(super) enum Source<'a> {
    /// A request body (an upload).
    Body(&'a mut Incoming),
    /// Another server's file (a remote-to-remote copy).
    Remote(&'a mut Reader),
    /// An FTP server's file (a remote-to-remote copy).
    Ftp(FtpSource<'a>),
    /// A local file the caller handed over (see `handover`).
    File(&'a mut super::handover::HandedOver),
}

impl Source<'_> {
    pub(super) async fn next(&mut self, path: &str) -> Result<Option<bytes::Bytes>, Error> {
        match self {
            Source::Body(body) => loop {
                match body.frame().await {
                    None => return Ok(None),
                    Some(Err(_)) => return Err(Error::IncompleteUpload(path.to_owned())),
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            return Ok(Some(data));
                        }
                    }
                }
            },
            Source::Remote(reader) => Ok(reader.next_chunk().await?),
            Source::Ftp(source) => source.next_chunk().await,
            Source::File(file) => file.next_chunk(path).await,
        }
    }
}

/// Writes `source` to `path` on `sftp` as the caller's grant allows: `~`
/// expanded, a symlink at the target written through, a temporary file
/// beside it (owner-only until complete) renamed over it, or with
/// `inplace` straight into it; the finished file's mode as scp gives it.
pub(super) async fn write_target(
    sftp: &mut Sftp,
    lanes: &[&Sftp],
    allowed: &Allowed,
    path: &str,
    wanted: &Wanted,
    mut source: Source<'_>,
) -> Result<Uploaded, Error> {
    let path = sftp.expand(path).await?;
    let path = confine(&mut *sftp, allowed, &path).await?;
    let (path, existing, temporary) = if wanted.inplace {
        let (path, existing) = look(sftp, allowed, &path).await?;
        (path, existing, None)
    } else {
        let (path, existing, opened) = look_and_open(sftp, allowed, &path).await?;
        (path, existing, Some(opened))
    };
    let attrs = final_attributes(wanted, existing.as_ref());
    let (bytes, sha256) = match temporary {
        None => write_in_place(sftp, lanes, &path, &mut source, &attrs).await?,
        Some((temporary, handle)) => {
            let into = Some((path.as_str(), existing.is_some()));
            let streamed = stream_into(sftp, lanes, handle, &mut source, &temporary, &attrs, into);
            let finished = match streamed.await {
                Ok(done) => Ok(done),
                Err(Error::Remote(error)) => Err(Error::Remote(
                    sftp.explain_write_failure(&path, error).await,
                )),
                Err(error) => Err(error),
            };
            if finished.is_err() {
                // Never leave the partial file behind; the target is untouched.
                let _ = sftp.remove_file(&temporary).await;
            }
            finished?
        }
    };
    Ok(Uploaded {
        path,
        bytes,
        sha256,
        warnings: Vec::new(),
    })
}

/// Where an upload to `path` goes (a symlink there written through) and
/// what is there now; a directory is refused.
async fn look(
    sftp: &mut Sftp,
    allowed: &Allowed,
    path: &str,
) -> Result<(String, Option<FileAttributes>), Error> {
    // What is at the link chain's end is what is there after confining
    // too: the same file, its parents resolved.
    let (path, existing) = sftp.follow_links(path).await?;
    let path = confine(&mut *sftp, allowed, &path).await?;
    refuse_directory(&path, existing.as_ref())?;
    Ok((path, existing))
}

fn refuse_directory(path: &str, existing: Option<&FileAttributes>) -> Result<(), Error> {
    if existing.is_some_and(|a| sftp::kind_of(a) == FileKind::Dir) {
        return Err(RemoteError::new(RemoteKind::Failed, path, "is a directory").into());
    }
    Ok(())
}

/// As [`look`], with the temporary file beside the target opened: in one
/// round trip where it can (the target looked at and the temporary opened
/// at once), the long way where a symlink is at the target (its temporary
/// belongs beside the link's end) or the grant has path prefixes (checked
/// again after following).
async fn look_and_open(
    sftp: &mut Sftp,
    allowed: &Allowed,
    path: &str,
) -> Result<(String, Option<FileAttributes>, (String, String)), Error> {
    let flags = OpenFlags::CREATE | OpenFlags::EXCLUDE | OpenFlags::TRUNCATE;
    if allowed.paths.is_none() {
        let temporary = temporary_name(path)?;
        let (found, opened) = tokio::join!(
            sftp.existing(path),
            sftp.open_write(&temporary, flags, private_attributes())
        );
        let usable = match &found {
            Ok(Some(attrs)) => sftp::kind_of(attrs) == FileKind::File,
            Ok(None) => true,
            Err(_) => false,
        };
        if usable {
            let existing = found?;
            let handle = opened.map_err(|error| cannot_create(path, existing.as_ref(), error))?;
            return Ok((path.to_owned(), existing, (temporary, handle)));
        }
        if let Ok(handle) = opened {
            let _ = sftp.close(handle, &temporary).await;
            let _ = sftp.remove_file(&temporary).await;
        }
        found?;
    }
    let (path, existing) = look(sftp, allowed, path).await?;
    let temporary = temporary_name(&path)?;
    let handle = sftp
        .open_write(&temporary, flags, private_attributes())
        .await
        .map_err(|error| cannot_create(&path, existing.as_ref(), error))?;
    Ok((path, existing, (temporary, handle)))
}

/// A temporary file that could not be created beside `path`, said as what
/// to do about it where the directory is the reason.
fn cannot_create(path: &str, existing: Option<&FileAttributes>, error: RemoteError) -> RemoteError {
    match (&error.kind, existing) {
        (RemoteKind::PermissionDenied, Some(_)) => RemoteError::new(
            RemoteKind::PermissionDenied,
            path,
            "cannot create a temporary file beside it: its directory is not writable. The \
             file itself may be: `tether cp --inplace` writes into it directly (not atomic: an \
             interrupted copy leaves it partly written, as scp does)",
        ),
        _ => error,
    }
}

/// What the request asks the finished file to get.
pub(super) struct Wanted {
    /// The source's permission bits.
    pub mode: Option<u32>,
    pub mtime: Option<u64>,
    /// `-p`: the source's mode and times, even over an existing file.
    pub preserve: bool,
    /// Written into the target, not renamed over it.
    pub inplace: bool,
}

/// The finished file's attributes, as scp and sftp give them: with `-p` the
/// source's mode and times; over an existing file, that file's mode, owner
/// and group; a new file the source's permission bits.
fn final_attributes(wanted: &Wanted, existing: Option<&FileAttributes>) -> FileAttributes {
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

/// Writes the body into the open file at `handle` (pipelined, and spread
/// over the sessions of `lanes` that can open it too), gives it `attrs`,
/// then closes it after `fsync` and, with `into`, renames it over that
/// target (which exists or not); the bytes and their SHA-256.
async fn stream_into(
    sftp: &Sftp,
    lanes: &[&Sftp],
    handle: String,
    source: &mut Source<'_>,
    path: &str,
    attrs: &FileAttributes,
    into: Option<(&str, bool)>,
) -> Result<(u64, String), Error> {
    let mut digest = Digest::start();
    let mut writer = sftp.writer(handle, path);
    let opened = futures_util::future::join_all(
        lanes
            .iter()
            .map(|lane| lane.open_write(path, OpenFlags::empty(), FileAttributes::empty())),
    )
    .await;
    for (lane, opened) in lanes.iter().zip(opened) {
        if let Ok(handle) = opened {
            writer.spread(lane, handle);
        }
    }
    let streamed: Result<(), Error> = async {
        while let Some(data) = source.next(path).await? {
            digest.update(&data).await;
            writer.write(&data).await?;
        }
        Ok(())
    }
    .await;
    if let Err(error) = streamed {
        let _ = sftp.close(writer.into_handle(), path).await;
        return Err(error);
    }
    let synced = sftp.extensions.fsync;
    let (written, handle) = match writer.finish(attrs, synced).await {
        Ok(done) => done,
        Err((error, handle)) => {
            let _ = sftp.close(handle, path).await;
            return Err(error.into());
        }
    };
    match into {
        // Synced, the bytes are on the server's disk: the close has nothing
        // more to say about them, and the rename goes with it (sent after
        // it) rather than a round trip later.
        Some((target, exists)) if synced => {
            let (closed, renamed) =
                tokio::join!(sftp.close(handle, path), sftp.replace(path, target, exists));
            renamed?;
            if let Err(error) = closed {
                tracing::warn!(%error, "closing a written and synced file failed");
            }
        }
        Some((target, exists)) => {
            sftp.close(handle, path).await?;
            sftp.replace(path, target, exists).await?;
        }
        None => sftp.close(handle, path).await?,
    }
    Ok((written, digest.finish().await?))
}

/// `--inplace`: writes straight into the target, as scp does, for a file
/// whose directory is not writable. Not atomic: an interrupted copy leaves
/// the target partly written, and the error says so.
async fn write_in_place(
    sftp: &Sftp,
    lanes: &[&Sftp],
    path: &str,
    source: &mut Source<'_>,
    attrs: &FileAttributes,
) -> Result<(u64, String), Error> {
    let flags = OpenFlags::CREATE | OpenFlags::TRUNCATE;
    let handle = sftp.open_write(path, flags, private_attributes()).await?;
    let done = stream_into(sftp, lanes, handle, source, path, attrs, None)
        .await
        .map_err(|error| {
            Error::Remote(RemoteError::new(
                RemoteKind::Failed,
                path,
                format!("{error}; written in place, so it is now incomplete"),
            ))
        })?;
    Ok(done)
}
