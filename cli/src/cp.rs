//! `tether cp [-r] [-p] SRC... DEST`, scp-style: `NAME:PATH` is remote.
//!
//! The CLI reads and writes local files with the caller's own permissions;
//! the daemon only relays bytes to SFTP. Uploads land under a temporary name
//! and are renamed into place by the daemon; downloads are written to a
//! temporary local file beside the target and renamed when complete, so an
//! interrupted copy never leaves a half file under the target's name.
//! Symlinks are copied as symlinks, never followed.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use clap::Args;
use http_body_util::BodyExt;
use serde::Serialize;
use tether_api::client::Client;
use tether_api::files::{FileKind, SftpRequest, SftpResponse, encode_query_value};
use tether_api::types::validate_profile_name;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::failure::{Failure, Result};
use crate::output::print_json;
use crate::progress::Progress;

#[derive(Debug, Args)]
pub struct CpArgs {
    /// Copy directories and everything in them
    #[arg(short = 'r', long)]
    recursive: bool,
    /// Keep modes and modification times
    #[arg(short = 'p', long)]
    preserve: bool,
    /// Follow symlinks and copy what they point to (by default a symlink is
    /// copied as a symlink, so nothing outside the tree is read)
    #[arg(short = 'L', long)]
    dereference: bool,
    /// Print a JSON summary (files, bytes, seconds) instead of progress
    #[arg(long)]
    json: bool,
    /// Sources, then the destination; NAME:PATH is a path on profile NAME's
    /// server, `-` is stdin (as a source) or stdout (as the destination)
    #[arg(required = true, num_args = 2.., value_name = "SRC... DEST")]
    paths: Vec<String>,
}

/// One side of a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Place {
    Local(PathBuf),
    Std,
    Remote { profile: String, path: String },
}

fn parse_place(arg: &str) -> Place {
    if arg == "-" {
        return Place::Std;
    }
    if let Some((name, path)) = arg.split_once(':') {
        if !name.contains('/') && validate_profile_name(name).is_ok() {
            let path = if path.is_empty() {
                ".".to_owned()
            } else {
                path.to_owned()
            };
            return Place::Remote {
                profile: name.to_owned(),
                path,
            };
        }
    }
    Place::Local(PathBuf::from(arg))
}

#[derive(Debug, Default, Serialize)]
struct Summary {
    files: u64,
    dirs: u64,
    symlinks: u64,
    bytes: u64,
    seconds: f64,
}

struct Copier<'a> {
    client: &'a Client,
    profile: String,
    preserve: bool,
    follow: bool,
    quiet: bool,
    summary: Summary,
}

/// The local temporary file being written, removed if Ctrl-C ends the copy.
static PARTIAL: std::sync::Mutex<Option<PathBuf>> = std::sync::Mutex::new(None);

fn set_partial(path: Option<&Path>) {
    if let Ok(mut partial) = PARTIAL.lock() {
        *partial = path.map(Path::to_owned);
    }
}

/// Copies; Ctrl-C (or SIGTERM) ends the copy with nothing half-written under
/// a target's name: an upload's temporary file is removed by the daemon when
/// the stream breaks, a download's here.
pub async fn run(client: &Client, args: CpArgs) -> Result<u8> {
    use tokio::signal::unix::{SignalKind, signal};
    let signal_error =
        |e: std::io::Error| Failure::new("internal", format!("cannot handle signals: {e}"));
    let mut interrupt = signal(SignalKind::interrupt()).map_err(signal_error)?;
    let mut terminate = signal(SignalKind::terminate()).map_err(signal_error)?;
    let stopped = tokio::select! {
        result = copy(client, args) => return result,
        _ = interrupt.recv() => "interrupted",
        _ = terminate.recv() => "terminated",
    };
    if let Ok(mut partial) = PARTIAL.lock() {
        if let Some(path) = partial.take() {
            let _ = std::fs::remove_file(path);
        }
    }
    Err(Failure::new(
        "interrupted",
        format!(
            "{stopped}: files copied so far are complete; the one in progress was not written under its name"
        ),
    ))
}

async fn copy(client: &Client, args: CpArgs) -> Result<u8> {
    let started = Instant::now();
    let mut places: Vec<Place> = args.paths.iter().map(|a| parse_place(a)).collect();
    let dest = places
        .pop()
        .ok_or_else(|| Failure::usage("give a source and a destination"))?;
    let sources = places;
    let remote_sources: Vec<&Place> = sources
        .iter()
        .filter(|p| matches!(p, Place::Remote { .. }))
        .collect();
    let profile = match (&dest, remote_sources.first()) {
        (Place::Remote { profile, .. }, None) => profile.clone(),
        (Place::Local(_) | Place::Std, Some(Place::Remote { profile, .. }))
            if remote_sources.len() == sources.len() =>
        {
            if remote_sources
                .iter()
                .any(|p| !matches!(p, Place::Remote { profile: other, .. } if other == profile))
            {
                return Err(Failure::usage("all remote sources must be on one profile"));
            }
            profile.clone()
        }
        _ => {
            return Err(Failure::usage(
                "one side must be remote (NAME:PATH) and the other local: upload LOCAL... NAME:PATH, \
                 or download NAME:PATH... LOCAL",
            ));
        }
    };
    if sources.iter().filter(|p| **p == Place::Std).count() > 0 && sources.len() > 1 {
        return Err(Failure::usage("`-` (stdin) must be the only source"));
    }
    let mut copier = Copier {
        client,
        profile,
        preserve: args.preserve,
        follow: args.dereference,
        quiet: args.json || dest == Place::Std,
        summary: Summary::default(),
    };
    match &dest {
        Place::Remote { path, .. } => copier.upload_all(&sources, path, args.recursive).await?,
        Place::Local(path) => copier.download_all(&sources, path, args.recursive).await?,
        Place::Std => {
            let [Place::Remote { path, .. }] = sources.as_slice() else {
                return Err(Failure::usage(
                    "`-` as destination takes exactly one remote file",
                ));
            };
            copier.download_to_stdout(path).await?;
        }
    }
    copier.summary.seconds = started.elapsed().as_secs_f64();
    if args.json {
        print_json(&copier.summary)?;
    }
    Ok(0)
}

fn file_name(path: &str) -> Result<&str> {
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty() && *n != "." && *n != "..")
        .ok_or_else(|| Failure::usage(format!("{path:?} does not name a file or directory")))
}

fn join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

fn io_error(path: &Path, what: &str, error: std::io::Error) -> Failure {
    Failure::new(
        "io_error",
        format!("cannot {what} {}: {error}", path.display()),
    )
}

fn mtime_of(meta: &std::fs::Metadata) -> Option<u64> {
    meta.modified()
        .ok()?
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

impl Copier<'_> {
    fn base(&self) -> String {
        format!("/v1/profiles/{}", self.profile)
    }

    async fn op(&self, request: &SftpRequest) -> Result<SftpResponse> {
        Ok(self
            .client
            .post(&format!("{}/sftp", self.base()), request)
            .await?)
    }

    async fn remote_is_dir(&self, path: &str) -> Result<bool> {
        match self
            .op(&SftpRequest::Stat {
                path: path.to_owned(),
                follow: true,
            })
            .await
        {
            Ok(SftpResponse::Info(info)) => Ok(info.kind == FileKind::Dir),
            Err(failure) if failure.code == "no_such_file" => Ok(false),
            Err(failure) => Err(failure),
            Ok(_) => Ok(false),
        }
    }

    async fn upload_all(&mut self, sources: &[Place], dest: &str, recursive: bool) -> Result<()> {
        let into_dir = sources.len() > 1 || dest.ends_with('/') || self.remote_is_dir(dest).await?;
        for source in sources {
            match source {
                Place::Std => {
                    if into_dir {
                        return Err(Failure::usage(
                            "stdin needs a file name as destination, not a directory",
                        ));
                    }
                    self.upload_stream(Source::Stdin(tokio::io::stdin()), None, dest, None, None)
                        .await?;
                }
                Place::Local(path) => {
                    let target = if into_dir {
                        join(dest, file_name(&path.to_string_lossy())?)
                    } else {
                        dest.to_owned()
                    };
                    self.upload_path(path, &target, recursive).await?;
                }
                Place::Remote { .. } => unreachable_usage()?,
            }
        }
        Ok(())
    }

    async fn upload_path(&mut self, path: &Path, target: &str, recursive: bool) -> Result<()> {
        let meta = if self.follow {
            std::fs::metadata(path)
        } else {
            std::fs::symlink_metadata(path)
        }
        .map_err(|e| io_error(path, "read", e))?;
        if meta.file_type().is_symlink() {
            let link = std::fs::read_link(path).map_err(|e| io_error(path, "read the link", e))?;
            self.op(&SftpRequest::Symlink {
                target: link.to_string_lossy().into_owned(),
                link: target.to_owned(),
            })
            .await?;
            self.summary.symlinks += 1;
            return Ok(());
        }
        if meta.is_dir() {
            if !recursive {
                return Err(Failure::usage(format!(
                    "{} is a directory: copy it with -r",
                    path.display()
                )));
            }
            let mode = self.preserve.then(|| meta.permissions().mode() & 0o7777);
            self.op(&SftpRequest::Mkdir {
                path: target.to_owned(),
                parents: true,
                mode,
            })
            .await?;
            self.summary.dirs += 1;
            let mut entries: Vec<_> = std::fs::read_dir(path)
                .map_err(|e| io_error(path, "list", e))?
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| io_error(path, "list", e))?;
            entries.sort_by_key(|e| e.file_name());
            for entry in entries {
                let name = entry.file_name().to_string_lossy().into_owned();
                Box::pin(self.upload_path(&entry.path(), &join(target, &name), true)).await?;
            }
            if self.preserve {
                if let Some(mtime) = mtime_of(&meta) {
                    self.op(&SftpRequest::Touch {
                        path: target.to_owned(),
                        mtime,
                    })
                    .await?;
                }
            }
            return Ok(());
        }
        let file = std::fs::File::open(path).map_err(|e| io_error(path, "open", e))?;
        let (mode, mtime) = if self.preserve {
            (Some(meta.permissions().mode() & 0o7777), mtime_of(&meta))
        } else {
            (None, None)
        };
        self.upload_stream(Source::File(file), Some(meta.len()), target, mode, mtime)
            .await
    }

    async fn upload_stream(
        &mut self,
        mut reader: Source,
        size: Option<u64>,
        target: &str,
        mode: Option<u32>,
        mtime: Option<u64>,
    ) -> Result<()> {
        let mut url = format!("{}/files?path={}", self.base(), encode_query_value(target));
        if let Some(mode) = mode {
            url.push_str(&format!("&mode={mode}"));
        }
        if let Some(mtime) = mtime {
            url.push_str(&format!("&mtime={mtime}"));
        }
        let (sender, answer) = self.client.upload(&url, size).await?;
        let mut answer = tokio::spawn(answer);
        let mut progress = Progress::new(file_name(target).unwrap_or(target), size, self.quiet);
        let mut buf = vec![0u8; 256 * 1024];
        let mut sent: u64 = 0;
        // Read and send until the end, a local read error, or an early
        // answer (the daemon refused the upload before reading it all).
        let mut early_answer = None;
        let read_error = loop {
            let step = async {
                let n = reader.read(&mut buf).await.map_err(Some)?;
                if n > 0 {
                    let chunk = Bytes::copy_from_slice(&buf[..n]);
                    sender.send(Ok(chunk)).await.map_err(|_| None)?;
                }
                Ok::<usize, Option<std::io::Error>>(n)
            };
            tokio::select! {
                biased;
                done = &mut answer => {
                    early_answer = Some(done);
                    break None;
                }
                step = step => match step {
                    Ok(0) | Err(None) => break None,
                    Ok(n) => {
                        sent += n as u64;
                        progress.add(n as u64);
                    }
                    Err(Some(error)) => break Some(error),
                },
            }
        };
        if let Some(error) = &read_error {
            let _ = sender
                .send(Err(std::io::Error::new(error.kind(), error.to_string())))
                .await;
        }
        drop(sender);
        progress.finish();
        let answer = match early_answer {
            Some(done) => done,
            None => answer.await,
        }
        .map_err(|e| Failure::new("internal", e.to_string()))?;
        if let Some(error) = read_error {
            return Err(Failure::new(
                "io_error",
                format!("reading the local file failed: {error}; {target} was left as it was"),
            ));
        }
        let uploaded = answer.map_err(|e| {
            let mut failure = Failure::from(e);
            if failure.code == "protocol_error" {
                failure = Failure::new(
                    "incomplete_upload",
                    format!("the connection to tetherd broke during the upload; {target} was left as it was"),
                );
            }
            failure
        })?;
        if size.is_some_and(|s| s != uploaded.bytes) || uploaded.bytes != sent {
            return Err(Failure::new(
                "incomplete_upload",
                format!("sent {sent} bytes but the server stored {}", uploaded.bytes),
            ));
        }
        self.summary.files += 1;
        self.summary.bytes += uploaded.bytes;
        Ok(())
    }

    async fn download_all(
        &mut self,
        sources: &[Place],
        dest: &Path,
        recursive: bool,
    ) -> Result<()> {
        let into_dir = dest.is_dir();
        if sources.len() > 1 && !into_dir {
            return Err(Failure::usage(format!(
                "{} is not a directory",
                dest.display()
            )));
        }
        for source in sources {
            let Place::Remote { path, .. } = source else {
                return unreachable_usage();
            };
            let target = if into_dir {
                dest.join(file_name(path)?)
            } else {
                dest.to_owned()
            };
            self.download_path(path, &target, recursive).await?;
        }
        Ok(())
    }

    async fn download_path(&mut self, path: &str, target: &Path, recursive: bool) -> Result<()> {
        let info = match self
            .op(&SftpRequest::Stat {
                path: path.to_owned(),
                follow: self.follow,
            })
            .await?
        {
            SftpResponse::Info(info) => info,
            _ => {
                return Err(Failure::new(
                    "protocol_error",
                    "stat gave no file information",
                ));
            }
        };
        match info.kind {
            FileKind::Symlink => {
                let link = info.target.unwrap_or_default();
                let temporary = temporary_beside(target);
                std::os::unix::fs::symlink(&link, &temporary)
                    .map_err(|e| io_error(target, "create the link", e))?;
                std::fs::rename(&temporary, target).map_err(|e| {
                    let _ = std::fs::remove_file(&temporary);
                    io_error(target, "replace", e)
                })?;
                self.summary.symlinks += 1;
                Ok(())
            }
            FileKind::Dir => {
                if !recursive {
                    return Err(Failure::usage(format!(
                        "{path} is a directory: copy it with -r"
                    )));
                }
                match std::fs::create_dir(target) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && target.is_dir() => {}
                    Err(e) => return Err(io_error(target, "create", e)),
                }
                self.summary.dirs += 1;
                let entries = match self
                    .op(&SftpRequest::Ls {
                        path: path.to_owned(),
                    })
                    .await?
                {
                    SftpResponse::Entries(entries) => entries,
                    _ => Vec::new(),
                };
                for entry in entries {
                    Box::pin(self.download_path(
                        &join(path, &entry.name),
                        &target.join(&entry.name),
                        true,
                    ))
                    .await?;
                }
                if self.preserve {
                    set_local_attributes(target, info.mode, info.mtime)?;
                }
                Ok(())
            }
            _ => self.download_file(path, target).await,
        }
    }

    async fn download_file(&mut self, path: &str, target: &Path) -> Result<()> {
        let url = format!("{}/files?path={}", self.base(), encode_query_value(path));
        let (meta, mut body) = self.client.download(&url).await?;
        let base = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temporary = temporary_beside(target);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temporary)
            .map_err(|e| io_error(&temporary, "create", e))?;
        set_partial(Some(&temporary));
        let mut progress = Progress::new(&base, Some(meta.size), self.quiet);
        let mut received: u64 = 0;
        let result: Result<()> = async {
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|_| {
                    Failure::new(
                        "ssh_error",
                        format!(
                            "the connection was lost during the download; {} was left as it was",
                            target.display()
                        ),
                    )
                })?;
                if let Ok(data) = frame.into_data() {
                    received += data.len() as u64;
                    progress.add(data.len() as u64);
                    file.write_all(&data)
                        .map_err(|e| io_error(&temporary, "write", e))?;
                }
            }
            file.sync_all()
                .map_err(|e| io_error(&temporary, "write", e))?;
            if received != meta.size {
                return Err(Failure::new(
                    "ssh_error",
                    format!(
                        "received {received} of {} bytes; {} was left as it was",
                        meta.size,
                        target.display()
                    ),
                ));
            }
            Ok(())
        }
        .await;
        progress.finish();
        drop(file);
        let result = result
            .and_then(|()| {
                if self.preserve {
                    set_local_attributes(&temporary, meta.mode, meta.mtime)?;
                }
                Ok(())
            })
            .and_then(|()| {
                std::fs::rename(&temporary, target).map_err(|e| io_error(target, "replace", e))
            });
        set_partial(None);
        if let Err(failure) = result {
            let _ = std::fs::remove_file(&temporary);
            return Err(failure);
        }
        self.summary.files += 1;
        self.summary.bytes += received;
        Ok(())
    }

    async fn download_to_stdout(&mut self, path: &str) -> Result<()> {
        let url = format!("{}/files?path={}", self.base(), encode_query_value(path));
        let (meta, mut body) = self.client.download(&url).await?;
        let mut stdout = tokio::io::stdout();
        let mut received = 0;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| {
                Failure::new("ssh_error", "the connection was lost during the download")
            })?;
            if let Ok(data) = frame.into_data() {
                received += data.len() as u64;
                stdout.write_all(&data).await.map_err(|e| {
                    Failure::new("io_error", format!("cannot write to stdout: {e}"))
                })?;
            }
        }
        stdout
            .flush()
            .await
            .map_err(|e| Failure::new("io_error", format!("cannot write to stdout: {e}")))?;
        if received != meta.size {
            return Err(Failure::new(
                "ssh_error",
                format!("received {received} of {} bytes", meta.size),
            ));
        }
        self.summary.files += 1;
        self.summary.bytes += received;
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

/// Where an upload's bytes come from. Local files are read directly: a read
/// from the page cache is quicker than a hand-off to a blocking thread, and
/// the daemon's side of the socket buffers meanwhile. Stdin may wait on a
/// slow writer, so it is read asynchronously.
enum Source {
    File(std::fs::File),
    Stdin(tokio::io::Stdin),
}

impl Source {
    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Source::File(file) => std::io::Read::read(file, buf),
            Source::Stdin(stdin) => stdin.read(buf).await,
        }
    }
}

/// A name beside `target` for writing before the rename into place.
fn temporary_beside(target: &Path) -> PathBuf {
    let dir = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let base = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.join(format!(".{base}.tether-{}.part", std::process::id()))
}

fn set_local_attributes(path: &Path, mode: u32, mtime: u64) -> Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o7777))
        .map_err(|e| io_error(path, "set the mode of", e))?;
    let time = SystemTime::UNIX_EPOCH + Duration::from_secs(mtime);
    std::fs::File::open(path)
        .and_then(|f| {
            f.set_times(
                std::fs::FileTimes::new()
                    .set_modified(time)
                    .set_accessed(time),
            )
        })
        .map_err(|e| io_error(path, "set the time of", e))
}

fn unreachable_usage() -> Result<()> {
    Err(Failure::usage("mixed local and remote sources"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_places_are_scp_style() {
        assert_eq!(
            parse_place("web1:/srv"),
            Place::Remote {
                profile: "web1".into(),
                path: "/srv".into()
            }
        );
        assert_eq!(
            parse_place("web1:"),
            Place::Remote {
                profile: "web1".into(),
                path: ".".into()
            }
        );
        assert_eq!(parse_place("./a:b"), Place::Local("./a:b".into()));
        assert_eq!(parse_place("/x/y:z"), Place::Local("/x/y:z".into()));
        assert_eq!(parse_place("-"), Place::Std);
        assert_eq!(parse_place("plain"), Place::Local("plain".into()));
    }
}
