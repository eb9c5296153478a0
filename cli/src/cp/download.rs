//! Downloads: remote files and trees written to a temporary local file
//! beside each target and renamed when complete, or streamed to stdout.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use http_body_util::BodyExt;
use tether_api::files::{FileKind, SftpRequest, SftpResponse, encode_query_value};
use tokio::io::AsyncWriteExt;

use super::{Copier, Place, file_name, io_error, join, set_partial, unreachable_usage};
use crate::failure::{Failure, Result};
use crate::progress::Progress;

impl Copier<'_> {
    pub(super) async fn download_all(
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

    pub(super) async fn download_to_stdout(&mut self, path: &str) -> Result<()> {
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
