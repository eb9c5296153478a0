//! `tether cp [-r] [-p] SRC... DEST`, scp-style: `NAME:PATH` is remote.
//!
//! The CLI reads and writes local files with the caller's own permissions;
//! the daemon only relays bytes to SFTP. Uploads land under a temporary name
//! and are renamed into place by the daemon; downloads are written to a
//! temporary local file beside the target and renamed when complete, so an
//! interrupted copy never leaves a half file under the target's name.
//! Symlinks are copied as symlinks, never followed.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use clap::Args;
use serde::Serialize;
use tether_api::batch::Batch;
use tether_api::client::Client;
use tether_api::files::FILES_IN_FLIGHT;
use tether_api::files::{SftpRequest, SftpResponse};
use tether_api::types::validate_profile_name;

use crate::failure::{Failure, Result};
use crate::output::print_json;
use crate::progress::Progress;

mod download;
mod remote;
mod upload;

#[derive(Debug, Args)]
pub struct CpArgs {
    /// Copy directories and everything in them
    #[arg(short = 'r', long)]
    recursive: bool,
    /// Keep modes (setuid and setgid too) and modification times; without
    /// it a new file gets the source's permission bits and an existing one
    /// keeps its own
    #[arg(short = 'p', long)]
    preserve: bool,
    /// Write into an existing target directly instead of a temporary file
    /// renamed over it: for a file whose directory you may not write. Not
    /// atomic: an interrupted copy leaves it partly written (as scp does)
    #[arg(long)]
    inplace: bool,
    /// Follow symlinks and copy what they point to (by default a symlink is
    /// copied as a symlink, so nothing outside the tree is read)
    #[arg(short = 'L', long)]
    dereference: bool,
    /// Print a JSON summary (files, bytes, seconds) instead of progress
    #[arg(long)]
    json: bool,
    /// No progress line and no summary
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Sources, then the destination; NAME:PATH is a path on profile NAME's
    /// server, `-` is stdin (as a source) or stdout (as the destination)
    #[arg(
        required = true,
        num_args = 2..,
        value_name = "SRC... DEST",
        add = clap_complete::ArgValueCompleter::new(crate::complete::places)
    )]
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

/// What a copy did; counted through `&self`, as the files of a tree go
/// several at a time.
#[derive(Debug, Default, Serialize)]
struct Summary {
    files: Cell<u64>,
    dirs: Cell<u64>,
    symlinks: Cell<u64>,
    bytes: Cell<u64>,
    seconds: Cell<f64>,
}

/// Adds `n` to a count.
fn bump(count: &Cell<u64>, n: u64) {
    count.set(count.get() + n);
}

struct Copier<'a> {
    client: &'a Client,
    /// One per file in flight, whatever the depth of the tree.
    turns: tokio::sync::Semaphore,
    /// Several files: they go on one batch to tetherd, opened with the
    /// first.
    batching: bool,
    batch: tokio::sync::OnceCell<Batch>,
    profile: String,
    preserve: bool,
    inplace: bool,
    follow: bool,
    progress: Progress,
    summary: Summary,
}

/// The local temporary files being written (several, in a tree), removed
/// if Ctrl-C ends the copy.
static PARTIAL: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Marks `path` as being written (`true`) or done with (`false`).
fn set_partial(path: &Path, writing: bool) {
    if let Ok(mut partial) = PARTIAL.lock() {
        partial.retain(|p| p != path);
        if writing {
            partial.push(path.to_owned());
        }
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
        for path in partial.drain(..) {
            let _ = std::fs::remove_file(path);
        }
    }
    Err(Failure::new(
        "interrupted",
        format!(
            "{stopped}: files copied so far are complete; those in progress were not written under their names"
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
    // Remote to remote: the daemon relays each file.
    if let Place::Remote {
        profile: dest_profile,
        path: dest_path,
    } = &dest
    {
        if !sources.is_empty() && remote_sources.len() == sources.len() {
            let copier = Copier {
                turns: tokio::sync::Semaphore::new(FILES_IN_FLIGHT),
                batching: false,
                batch: tokio::sync::OnceCell::new(),
                client,
                profile: dest_profile.clone(),
                preserve: args.preserve,
                inplace: args.inplace,
                follow: args.dereference,
                progress: Progress::new(args.quiet || args.json, None, None),
                summary: Summary::default(),
            };
            let mut expanded = Vec::new();
            for source in &sources {
                if let Place::Remote { profile, path } = source {
                    for path in copier.globbed(profile, path).await? {
                        expanded.push((profile.clone(), path));
                    }
                }
            }
            copier
                .relay_all(&expanded, dest_profile, dest_path, args.recursive)
                .await?;
            return copier.done(started, args.json);
        }
    }
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
    let quiet = args.quiet || args.json || dest == Place::Std;
    // Uploads know their size before they start; downloads learn it as
    // they go.
    let (total_bytes, total_files) = if matches!(dest, Place::Remote { .. }) {
        local_totals(&sources, args.recursive, args.dereference)
    } else {
        (None, None)
    };
    let mut copier = Copier {
        turns: tokio::sync::Semaphore::new(FILES_IN_FLIGHT),
        batching: false,
        batch: tokio::sync::OnceCell::new(),
        client,
        profile,
        preserve: args.preserve,
        inplace: args.inplace,
        follow: args.dereference,
        progress: Progress::new(quiet, total_bytes, total_files),
        summary: Summary::default(),
    };
    // Remote sources: globs matched on the server's listing.
    let mut sources_expanded = Vec::new();
    for source in sources {
        match source {
            Place::Remote { profile, path } => {
                for path in copier.globbed(&profile, &path).await? {
                    sources_expanded.push(Place::Remote {
                        profile: profile.clone(),
                        path,
                    });
                }
            }
            other => sources_expanded.push(other),
        }
    }
    let sources = sources_expanded;
    copier.batching = args.recursive || sources.len() > 1;
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
    copier.finish_batch().await?;
    copier.done(started, args.json)
}

/// The files and bytes below local `sources`, for the progress line; `None`
/// where stdin (of unknown size) is among them.
fn local_totals(sources: &[Place], recursive: bool, follow: bool) -> (Option<u64>, Option<u64>) {
    let (mut files, mut bytes) = (0u64, 0u64);
    let mut stack: Vec<PathBuf> = Vec::new();
    for source in sources {
        match source {
            Place::Local(path) => stack.push(path.clone()),
            _ => return (None, None),
        }
    }
    while let Some(path) = stack.pop() {
        let meta = if follow {
            std::fs::metadata(&path)
        } else {
            std::fs::symlink_metadata(&path)
        };
        let Ok(meta) = meta else { continue };
        if meta.is_dir() {
            if recursive {
                if let Ok(entries) = std::fs::read_dir(&path) {
                    stack.extend(entries.filter_map(|e| e.ok().map(|e| e.path())));
                }
            }
        } else if meta.is_file() {
            files += 1;
            bytes += meta.len();
        }
    }
    (Some(bytes), Some(files))
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

/// The process's umask, for the mode of new local files (read from
/// /proc; where that has no `Umask:` line, set and restored).
fn umask() -> u32 {
    let from_proc = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        });
    from_proc.unwrap_or_else(|| {
        let mask = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
        rustix::process::umask(mask);
        mask.bits()
    })
}

fn mtime_of(meta: &std::fs::Metadata) -> Option<u64> {
    meta.modified()
        .ok()?
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

impl Copier<'_> {
    /// Waits for `done` while tetherd reads or writes the handed-over
    /// `file`, showing progress from the descriptor's offset (shared with
    /// tetherd); what `done` gave, and the bytes shown.
    async fn following<T>(&self, file: &std::fs::File, done: impl Future<Output = T>) -> (T, u64) {
        tokio::pin!(done);
        let mut shown = 0u64;
        loop {
            tokio::select! {
                answer = &mut done => return (answer, shown),
                () = tokio::time::sleep(std::time::Duration::from_millis(100)) => {
                    let at = rustix::fs::seek(file, rustix::fs::SeekFrom::Current(0)).unwrap_or(shown);
                    if at > shown {
                        self.progress.add(at - shown);
                        shown = at;
                    }
                }
            }
        }
    }

    /// The batch the files of this copy go on, opened with the first
    /// (uploads or downloads: a copy goes one way).
    async fn batch(&self, upload: bool) -> Result<&Batch> {
        let open = async {
            if upload {
                self.client.upload_batch(&self.profile).await
            } else {
                self.client.download_batch(&self.profile).await
            }
        };
        Ok(self.batch.get_or_try_init(|| open).await?)
    }

    /// Ends the batch, if one was opened: tetherd has every file on record
    /// when it answers.
    async fn finish_batch(&mut self) -> Result<()> {
        match self.batch.take() {
            Some(batch) => Ok(batch.finish().await?),
            None => Ok(()),
        }
    }

    /// Ends the copy: the summary line, or the JSON summary.
    fn done(self, started: Instant, json: bool) -> Result<u8> {
        self.progress.done();
        self.summary.seconds.set(started.elapsed().as_secs_f64());
        if json {
            print_json(&self.summary)?;
        }
        Ok(0)
    }

    /// A remote source with its globs expanded on the server (itself when
    /// it has none).
    async fn globbed(&self, profile: &str, path: &str) -> Result<Vec<String>> {
        if remote::has_glob(path) {
            self.expand_glob(profile, path).await
        } else {
            Ok(vec![path.to_owned()])
        }
    }

    async fn op(&self, request: &SftpRequest) -> Result<SftpResponse> {
        self.op_on(&self.profile, request).await
    }
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
