//! Downloads: remote files and trees written to a temporary local file
//! beside each target and renamed when complete, or streamed to stdout.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use http_body_util::BodyExt;
use tether_api::client::Client;
use tether_api::endpoint as ep;
use tether_api::files::{
    BatchEvent, FetchEvent, FileInfo, FileKind, FileQuery, SftpRequest, SftpResponse, is_entry_name,
};
use tokio::io::AsyncWriteExt;

use super::{Copier, Place, bump, file_name, io_error, join, set_partial, unreachable_usage};
use crate::failure::{Failure, PROTOCOL_ERROR, Result};
use crate::output::printable;

impl Copier<'_> {
    pub(super) async fn download_all(
        &self,
        sources: &[Place],
        dest: &Path,
        recursive: bool,
    ) -> Result<()> {
        let into_dir = dest.is_dir();
        let trailing_slash = dest.as_os_str().to_string_lossy().ends_with('/');
        if (sources.len() > 1 || trailing_slash) && !into_dir {
            return Err(Failure::usage(format!(
                "{} is not a directory (several sources, or a name ending in /, need an \
                 existing directory)",
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
            self.download_path(path, &target, recursive, Named::ByCaller)
                .await?;
        }
        Ok(())
    }

    async fn download_path(
        &self,
        path: &str,
        target: &Path,
        recursive: bool,
        named: Named,
    ) -> Result<()> {
        let info = self.stat_on(&self.profile, path, self.follow).await?;
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
                bump(&self.summary.symlinks, 1);
                Ok(())
            }
            FileKind::Dir => {
                if !recursive {
                    return Err(Failure::usage(format!(
                        "{path} is a directory: copy it with -r"
                    )));
                }
                // A link the server's side made earlier is replaced, not
                // entered: what is below it is outside the target.
                if named == Named::ByServer && is_link(target) {
                    std::fs::remove_file(target)
                        .map_err(|e| io_error(target, "replace the link", e))?;
                }
                let there = |target: &Path| match named {
                    Named::ByCaller => target.is_dir(),
                    Named::ByServer => std::fs::symlink_metadata(target).is_ok_and(|m| m.is_dir()),
                };
                match std::fs::create_dir(target) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && there(target) => {}
                    Err(e) => return Err(io_error(target, "create", e)),
                }
                bump(&self.summary.dirs, 1);
                let entries = match self
                    .op(&SftpRequest::Ls {
                        path: path.to_owned(),
                    })
                    .await?
                {
                    SftpResponse::Entries(entries) => entries,
                    _ => Vec::new(),
                };
                only_entry_names(path, &entries)?;
                // Several entries at a time (see the upload's tree); a plain
                // file listed as one needs no stat of its own.
                let mut downloads = futures_util::stream::iter(entries)
                    .map(|entry| {
                        let from = join(path, &entry.name);
                        let to = target.join(&entry.name);
                        let plain = entry.kind == FileKind::File && !self.follow;
                        async move {
                            if plain {
                                self.download_file(&from, &to, Named::ByServer).await
                            } else {
                                let walk = self.download_path(&from, &to, true, Named::ByServer);
                                Box::pin(walk).await
                            }
                        }
                    })
                    .buffer_unordered(super::FILES_IN_FLIGHT);
                while let Some(downloaded) = downloads.next().await {
                    downloaded?;
                }
                if self.preserve {
                    set_local_attributes(target, info.mode, info.mtime)?;
                }
                Ok(())
            }
            _ => self.download_file(path, target, named).await,
        }
    }

    async fn download_file(&self, path: &str, target: &Path, named: Named) -> Result<()> {
        let _turn = self.turns.acquire().await;
        // A symlink at a target the caller named is written through, as scp
        // does: the file it points to is replaced, in its own directory. One
        // at an entry of a tree is replaced itself.
        let target = match named {
            Named::ByCaller => follow_links(target)?,
            Named::ByServer => target.to_owned(),
        };
        let target = target.as_path();
        let existing = match std::fs::symlink_metadata(target) {
            Ok(meta) if meta.is_symlink() => None,
            Ok(meta) if meta.is_dir() => {
                return Err(Failure::new(
                    "io_error",
                    format!("{} is a directory", target.display()),
                ));
            }
            Ok(meta) => Some(meta),
            Err(_) => None,
        };
        let base = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if self.inplace {
            // Nothing may touch the target before the server's file is open.
            return self
                .download_in_place(path, target, existing, &base, named)
                .await;
        }
        // A temporary file of ours beside the target, handed to tetherd to
        // write into: the bytes do not cross the socket and this process.
        let (written_to, file) = open_temporary(target, existing.as_ref())?;
        let fetched = self.fetch_into(path, &file, &base).await;
        let result = fetched.and_then(|(bytes, mode, mtime)| {
            file.sync_all()
                .map_err(|e| io_error(&written_to, "write", e))?;
            final_attributes(
                &file,
                &written_to,
                self.preserve,
                existing.as_ref(),
                mode,
                mtime,
            )?;
            Ok(bytes)
        });
        drop(file);
        let result = result.and_then(|bytes| {
            std::fs::rename(&written_to, target)
                .map_err(|e| io_error(target, "replace", e))
                .map(|()| bytes)
        });
        set_partial(&written_to, false);
        match result {
            Ok(bytes) => {
                self.progress.end_file();
                bump(&self.summary.files, 1);
                bump(&self.summary.bytes, bytes);
                Ok(())
            }
            Err(mut failure) => {
                let _ = std::fs::remove_file(&written_to);
                failure.message = format!(
                    "{}; {} was left as it was",
                    failure.message,
                    target.display()
                );
                Err(failure)
            }
        }
    }

    /// Hands `file` to tetherd to write `path` into; the bytes, mode and
    /// time of the remote file. Progress follows the descriptor's offset.
    async fn fetch_into(
        &self,
        path: &str,
        file: &std::fs::File,
        base: &str,
    ) -> Result<(u64, u32, u64)> {
        let query = FileQuery {
            path: path.to_owned(),
            ..FileQuery::default()
        };
        if self.batching {
            return self.fetch_in_batch(query, file, base).await;
        }
        let fetch = ep::DownloadHandover {
            name: self.profile.clone(),
            query,
        };
        let mut events = self.client.hand_over_download(&fetch, file).await?;
        let started = match Client::fetch_event(&mut events).await? {
            FetchEvent::Started(started) => started,
            _ => return Err(Failure::new("protocol_error", "the download did not start")),
        };
        self.progress.start_file(base, Some(started.size));
        let (answer, shown) = self.following(file, Client::fetch_event(&mut events)).await;
        match answer? {
            FetchEvent::Done(done) => {
                self.progress.add(done.bytes.saturating_sub(shown));
                Ok((done.bytes, started.mode, started.mtime))
            }
            _ => Err(Failure::new(
                "protocol_error",
                "the download ended without its end",
            )),
        }
    }

    /// [`Copier::fetch_into`] as an item of the copy's batch.
    async fn fetch_in_batch(
        &self,
        query: FileQuery,
        file: &std::fs::File,
        base: &str,
    ) -> Result<(u64, u32, u64)> {
        let mut events = self.batch(false).await?.send(query, file).await?;
        let started = match events.next().await? {
            BatchEvent::Started { started, .. } => started,
            _ => return Err(Failure::new("protocol_error", "the download did not start")),
        };
        self.progress.start_file(base, Some(started.size));
        let (answer, shown) = self.following(file, events.next()).await;
        match answer? {
            BatchEvent::Downloaded { downloaded, .. } => {
                self.progress.add(downloaded.bytes.saturating_sub(shown));
                Ok((downloaded.bytes, started.mode, started.mtime))
            }
            _ => Err(Failure::new(
                "protocol_error",
                "the download ended without its end",
            )),
        }
    }

    /// `--inplace`: the download streamed through the socket and written
    /// straight into the target (not atomic, as scp).
    async fn download_in_place(
        &self,
        path: &str,
        target: &Path,
        existing: Option<std::fs::Metadata>,
        base: &str,
        named: Named,
    ) -> Result<()> {
        let (meta, mut body) = self.client.download(&self.download_of(path)).await?;
        // Owner-only while it is written; its final mode only when complete.
        // A link at a tree's entry is not written through (nor, in place,
        // replaced).
        let no_follow = match named {
            Named::ByCaller => 0,
            Named::ByServer => rustix::fs::OFlags::NOFOLLOW.bits() as i32,
        };
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(no_follow)
            .open(target)
            .map_err(|e| io_error(target, "open", e))?;
        // The size is what stat said before the copy: for progress only; the
        // file is read to its end (a growing log, /proc files).
        self.progress.start_file(base, Some(meta.size));
        let mut received: u64 = 0;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| {
                Failure::new(
                    "ssh_error",
                    format!(
                        "the connection was lost during the download; {} was written in place \
                         and is now incomplete",
                        target.display()
                    ),
                )
            })?;
            if let Ok(data) = frame.into_data() {
                received += data.len() as u64;
                self.progress.add(data.len() as u64);
                file.write_all(&data)
                    .map_err(|e| io_error(target, "write", e))?;
            }
        }
        file.sync_all().map_err(|e| io_error(target, "write", e))?;
        final_attributes(
            &file,
            target,
            self.preserve,
            existing.as_ref(),
            meta.mode,
            meta.mtime,
        )?;
        self.progress.end_file();
        bump(&self.summary.files, 1);
        bump(&self.summary.bytes, received);
        Ok(())
    }

    fn download_of(&self, path: &str) -> ep::DownloadFile {
        ep::DownloadFile {
            name: self.profile.clone(),
            query: FileQuery {
                path: path.to_owned(),
                ..FileQuery::default()
            },
        }
    }

    pub(super) async fn download_to_stdout(&self, path: &str) -> Result<()> {
        // Read to the end: the size stat gave is for progress only.
        let (_, mut body) = self.client.download(&self.download_of(path)).await?;
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
        bump(&self.summary.files, 1);
        bump(&self.summary.bytes, received);
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

/// Whose name a download's target is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Named {
    /// The caller's (the destination given, or the source's own name in a
    /// directory given): a symlink there is written through, as scp does.
    ByCaller,
    /// The server's (an entry of a tree): a symlink there is replaced and
    /// never followed, since whoever controls the server's files may have
    /// made it, in an earlier copy, to point outside the target.
    ByServer,
}

fn is_link(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.is_symlink())
}

/// Refuses a listing of `dir` with a name that is not an entry's (`../x`,
/// `a/b`): joined to the local target it would reach outside it. tetherd
/// leaves such names out; this holds whatever answered.
fn only_entry_names(dir: &str, entries: &[FileInfo]) -> Result<()> {
    match entries.iter().find(|e| !is_entry_name(&e.name)) {
        None => Ok(()),
        Some(lie) => Err(Failure::new(
            PROTOCOL_ERROR,
            format!(
                "{} was listed in {}: not a name of an entry; nothing more copied",
                printable(&lie.name),
                printable(dir)
            ),
        )),
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

/// Where a chain of symlinks at `target` ends (itself when it is none); a
/// dangling chain ends where the file will be created.
fn follow_links(target: &Path) -> Result<PathBuf> {
    let mut current = target.to_owned();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let link = std::fs::read_link(&current)
                    .map_err(|e| io_error(&current, "read the link", e))?;
                current = match current.parent() {
                    Some(dir) if link.is_relative() => dir.join(link),
                    _ => link,
                };
            }
            _ => return Ok(current),
        }
    }
    Err(Failure::new(
        "io_error",
        format!("{}: too many levels of symbolic links", target.display()),
    ))
}

/// The 0600 temporary beside `target` a download is written into, renamed
/// over the target once complete.
fn open_temporary(
    target: &Path,
    existing: Option<&std::fs::Metadata>,
) -> Result<(PathBuf, std::fs::File)> {
    // Owner-only while it is written; its final mode only when complete.
    let temporary = temporary_beside(target);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(|e| match (e.kind(), existing) {
            (std::io::ErrorKind::PermissionDenied, Some(_)) => Failure::new(
                "permission_denied",
                format!(
                    "cannot create a temporary file beside {}: its directory is not \
                     writable. The file itself may be: `tether cp --inplace` writes into \
                     it directly (not atomic: an interrupted copy leaves it partly \
                     written, as scp does)",
                    target.display()
                ),
            ),
            _ => io_error(&temporary, "create", e),
        })?;
    set_partial(&temporary, true);
    Ok((temporary, file))
}

/// Gives a complete download its final attributes, as scp does: with `-p`
/// the remote mode and times; over an existing file, that file's mode (and
/// owner and group, where the caller may set them); a new file the remote
/// permission bits less the umask.
fn final_attributes(
    file: &std::fs::File,
    path: &Path,
    preserve: bool,
    existing: Option<&std::fs::Metadata>,
    remote_mode: u32,
    remote_mtime: u64,
) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let mode = match (preserve, existing) {
        (true, _) => remote_mode & 0o7777,
        (false, Some(old)) => {
            let _ = std::os::unix::fs::fchown(file, Some(old.uid()), Some(old.gid()));
            old.mode() & 0o7777
        }
        (false, None) => remote_mode & 0o777 & !super::umask(),
    };
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(|e| io_error(path, "set the mode of", e))?;
    if preserve {
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(remote_mtime);
        file.set_times(
            std::fs::FileTimes::new()
                .set_modified(time)
                .set_accessed(time),
        )
        .map_err(|e| io_error(path, "set the time of", e))?;
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// An entry as tetherd sends it.
    fn entry(name: &str) -> FileInfo {
        let sent = serde_json::json!({
            "name": name, "kind": "file", "size": 1, "mode": 420, "mtime": 0, "uid": 0, "gid": 0,
        });
        serde_json::from_value(sent).unwrap()
    }

    #[test]
    fn a_listing_that_climbs_out_is_refused() {
        let plain = [entry("a"), entry(".b")];
        assert!(only_entry_names("/srv", &plain).is_ok());
        for lie in ["../x", "a/b", "/etc/passwd", "..", ""] {
            let listed = [entry("a"), entry(lie)];
            let refused = only_entry_names("/srv", &listed).unwrap_err();
            assert_eq!(refused.code, PROTOCOL_ERROR, "{lie}");
        }
        // Named as a terminal shows it safely.
        let refused = only_entry_names("/srv", &[entry("../\x1b[2Jx")]).unwrap_err();
        assert!(!refused.message.contains('\x1b'), "{}", refused.message);
    }
}
