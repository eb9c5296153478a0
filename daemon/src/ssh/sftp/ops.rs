//! The operations on a remote file system: stat, list, mkdir, rm, rmdir,
//! rename, symlink, attributes, and the checks that let an error say what
//! is wrong (SFTP v3 answers a bare `Failure` for most of it).

use russh_sftp::client::error::Error as SftpErr;
use russh_sftp::protocol::{FileAttributes, OpenFlags, StatusCode};
use tether_api::files::{FileInfo, FileKind};

use super::{Sftp, SymlinkOrder, info, is_dir, is_symlink};
use crate::remote::{
    MAX_DEPTH, MAX_LINKS, RemoteError, RemoteKind, join, listed, owner_and_group, parent,
    sort_listing,
};

impl crate::remote::Resolve for Sftp {
    async fn realpath(&mut self, path: &str) -> Result<String, RemoteError> {
        Sftp::realpath(self, path).await
    }
}

impl crate::remote::Files for Sftp {
    type Error = RemoteError;

    async fn expand(&mut self, path: &str) -> Result<String, RemoteError> {
        Sftp::expand(self, path).await
    }

    async fn list(&mut self, path: &str) -> Result<Vec<FileInfo>, RemoteError> {
        Sftp::list(self, path).await
    }

    async fn stat(&mut self, path: &str, follow: bool) -> Result<FileInfo, RemoteError> {
        Sftp::stat(self, path, follow).await
    }

    async fn mkdir(
        &mut self,
        path: &str,
        parents: bool,
        mode: Option<u32>,
    ) -> Result<(), RemoteError> {
        Sftp::mkdir(self, path, parents, mode).await
    }

    async fn remove(&mut self, path: &str, recursive: bool) -> Result<(), RemoteError> {
        Sftp::remove(self, path, recursive).await
    }

    async fn rmdir(&mut self, path: &str) -> Result<(), RemoteError> {
        Sftp::rmdir(self, path).await
    }

    async fn rename(&mut self, from: &str, to: &str) -> Result<(), RemoteError> {
        Sftp::rename(self, from, to).await
    }

    async fn chmod(&mut self, path: &str, mode: u32) -> Result<(), RemoteError> {
        Sftp::chmod(self, path, mode).await
    }

    async fn symlink(&mut self, target: &str, link: &str) -> Result<(), RemoteError> {
        Sftp::symlink(self, target, link).await
    }

    async fn touch(&mut self, path: &str, mtime: u64) -> Result<(), RemoteError> {
        Sftp::touch(self, path, mtime).await
    }
}

/// Attributes for a file while it is being written: owner-only.
pub fn private_attributes() -> FileAttributes {
    FileAttributes {
        permissions: Some(0o600),
        ..FileAttributes::empty()
    }
}

/// The one name a `realpath` or `readlink` answer carries.
fn only_name(
    name: russh_sftp::protocol::Name,
    path: &str,
    asked: &str,
) -> Result<String, RemoteError> {
    name.files
        .into_iter()
        .next()
        .map(|f| f.filename)
        .ok_or_else(|| RemoteError::new(RemoteKind::Failed, path, format!("no answer to {asked}")))
}

impl Sftp {
    fn failed(path: &str) -> impl Fn(SftpErr) -> RemoteError + '_ {
        move |e| RemoteError::from_sftp(path, e)
    }

    /// The server's absolute path for `path` (`..` and symlinks resolved).
    pub async fn realpath(&self, path: &str) -> Result<String, RemoteError> {
        let name = self
            .raw()
            .realpath(path)
            .await
            .map_err(Self::failed(path))?;
        only_name(name, path, "realpath")
    }

    /// `path` with a leading `~` or `~user` expanded on the server (as scp
    /// does, without a shell): OpenSSH's `expand-path`, where offered;
    /// otherwise `~/` is the login directory (where SFTP starts).
    pub async fn expand(&self, path: &str) -> Result<String, RemoteError> {
        if !path.starts_with('~') {
            return Ok(path.to_owned());
        }
        if self.extensions.expand_path {
            let name = self
                .raw()
                .expand_path(path)
                .await
                .map_err(Self::failed(path))?;
            if let Some(file) = name.files.into_iter().next() {
                return Ok(file.filename);
            }
        }
        match path.strip_prefix('~') {
            Some("") => self.realpath(".").await,
            Some(rest) if rest.starts_with('/') => {
                let home = self.realpath(".").await?;
                Ok(format!("{}{rest}", home.trim_end_matches('/')))
            }
            _ => Err(RemoteError::new(
                RemoteKind::Failed,
                path,
                "this server cannot expand ~user (no expand-path extension): give the full path",
            )),
        }
    }

    pub async fn lstat(&self, path: &str) -> Result<FileAttributes, RemoteError> {
        Ok(self
            .raw()
            .lstat(path)
            .await
            .map_err(Self::failed(path))?
            .attrs)
    }

    pub async fn stat_attrs(&self, path: &str) -> Result<FileAttributes, RemoteError> {
        Ok(self
            .raw()
            .stat(path)
            .await
            .map_err(Self::failed(path))?
            .attrs)
    }

    /// What is at `path` (not following a final symlink), or `None`.
    pub async fn existing(&self, path: &str) -> Result<Option<FileAttributes>, RemoteError> {
        match self.lstat(path).await {
            Ok(attrs) => Ok(Some(attrs)),
            Err(error) if error.kind == RemoteKind::NoSuchFile => Ok(None),
            Err(error) => Err(error),
        }
    }

    pub async fn read_link(&self, path: &str) -> Result<String, RemoteError> {
        let name = self
            .raw()
            .readlink(path)
            .await
            .map_err(Self::failed(path))?;
        only_name(name, path, "readlink")
    }

    pub async fn stat(&self, path: &str, follow: bool) -> Result<FileInfo, RemoteError> {
        let attrs = if follow {
            self.stat_attrs(path).await?
        } else {
            self.lstat(path).await?
        };
        let target = if is_symlink(&attrs) {
            self.read_link(path).await.ok()
        } else {
            None
        };
        Ok(info(path.to_owned(), &attrs, target))
    }

    /// A directory's entries (as [`listed`] keeps them), sorted by name,
    /// each name once, with user and group names where the server gives
    /// them.
    pub async fn list(&self, path: &str) -> Result<Vec<FileInfo>, RemoteError> {
        let raw = self.raw();
        let handle = raw.opendir(path).await.map_err(Self::failed(path))?.handle;
        let mut out = Vec::new();
        let read: Result<(), RemoteError> = async {
            loop {
                match raw.readdir(handle.as_str()).await {
                    Ok(name) => {
                        for file in name.files {
                            if !listed(path, &file.filename) {
                                continue;
                            }
                            let (owner, group) = owner_and_group(&file.longname);
                            let mut entry = info(file.filename, &file.attrs, None);
                            entry.owner = owner;
                            entry.group = group;
                            out.push(entry);
                        }
                    }
                    Err(SftpErr::Status(status)) if status.status_code == StatusCode::Eof => {
                        return Ok(());
                    }
                    Err(error) => return Err(RemoteError::from_sftp(path, error)),
                }
            }
        }
        .await;
        let _ = raw.close(handle).await;
        read?;
        sort_listing(&mut out);
        for entry in out.iter_mut().filter(|e| e.kind == FileKind::Symlink) {
            entry.target = self.read_link(&join(path, &entry.name)).await.ok();
        }
        Ok(out)
    }

    pub async fn mkdir(
        &self,
        path: &str,
        parents: bool,
        mode: Option<u32>,
    ) -> Result<(), RemoteError> {
        let make = async |dir: &str| -> Result<(), RemoteError> {
            let attrs = FileAttributes {
                permissions: mode.map(|m| m & 0o7777),
                ..FileAttributes::empty()
            };
            match self.raw().mkdir(dir, attrs).await {
                Ok(_) => {
                    if let Some(mode) = mode {
                        // Not subject to the server's umask.
                        self.chmod(dir, mode).await?;
                    }
                    Ok(())
                }
                Err(error) => match self.existing(dir).await {
                    Ok(Some(attrs)) if is_dir(&attrs) && parents => Ok(()),
                    Ok(Some(_)) => Err(RemoteError::new(RemoteKind::Exists, dir, "exists already")),
                    _ => Err(RemoteError::from_sftp(dir, error)),
                },
            }
        };
        if !parents {
            return make(path).await;
        }
        let absolute = path.starts_with('/');
        let mut prefix = String::new();
        for (depth, part) in path.split('/').filter(|p| !p.is_empty()).enumerate() {
            if depth >= MAX_DEPTH {
                return Err(RemoteError::new(RemoteKind::Failed, path, "too deep"));
            }
            if absolute || !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            make(&prefix).await?;
        }
        Ok(())
    }

    pub async fn set_attrs(&self, path: &str, attrs: FileAttributes) -> Result<(), RemoteError> {
        self.raw()
            .setstat(path, attrs)
            .await
            .map(drop)
            .map_err(Self::failed(path))
    }

    pub async fn chmod(&self, path: &str, mode: u32) -> Result<(), RemoteError> {
        self.set_attrs(
            path,
            FileAttributes {
                permissions: Some(mode & 0o7777),
                ..FileAttributes::empty()
            },
        )
        .await
    }

    pub async fn touch(&self, path: &str, mtime: u64) -> Result<(), RemoteError> {
        let secs = u32::try_from(mtime).unwrap_or(u32::MAX);
        self.set_attrs(
            path,
            FileAttributes {
                atime: Some(secs),
                mtime: Some(secs),
                ..FileAttributes::empty()
            },
        )
        .await
    }

    /// Sets `attrs` on `path`: owner and group first where asked (a server
    /// that does not allow it keeps its own, silently, as scp does), then
    /// mode and times, where asked.
    pub async fn set_attributes(
        &self,
        path: &str,
        attrs: &FileAttributes,
    ) -> Result<(), RemoteError> {
        for (attrs, required) in super::transfer::settable(attrs) {
            match self.set_attrs(path, attrs).await {
                Err(error) if required => return Err(error),
                _ => {}
            }
        }
        Ok(())
    }

    /// The path a chain of symlinks at `path` ends at (itself when it is no
    /// link), with what is there; a dangling chain ends where the file
    /// would be created, with nothing there.
    pub async fn follow_links(
        &self,
        path: &str,
    ) -> Result<(String, Option<FileAttributes>), RemoteError> {
        let mut current = path.to_owned();
        for _ in 0..MAX_LINKS {
            match self.existing(&current).await? {
                Some(attrs) if is_symlink(&attrs) => {
                    let target = self.read_link(&current).await?;
                    current = if target.starts_with('/') {
                        target
                    } else {
                        join(parent(&current), &target)
                    };
                }
                found => return Ok((current, found)),
            }
        }
        Err(RemoteError::new(
            RemoteKind::Failed,
            path,
            "too many levels of symbolic links",
        ))
    }

    /// Removes a file, a symlink, or (with `recursive`) a whole tree.
    /// Symlinks are removed, never followed.
    pub async fn remove(&self, path: &str, recursive: bool) -> Result<(), RemoteError> {
        let attrs = self.lstat(path).await?;
        if !is_dir(&attrs) {
            return self.remove_file(path).await;
        }
        if !recursive {
            return Err(RemoteError::new(
                RemoteKind::Failed,
                path,
                "is a directory (use rm -r, or rmdir)",
            ));
        }
        // Depth-first without recursion: directories after their contents.
        let mut stack = vec![(path.to_owned(), false)];
        while let Some((dir, emptied)) = stack.pop() {
            if stack.len() > MAX_DEPTH {
                return Err(RemoteError::new(RemoteKind::Failed, path, "too deep"));
            }
            if emptied {
                self.raw()
                    .rmdir(dir.as_str())
                    .await
                    .map_err(Self::failed(&dir))?;
                continue;
            }
            stack.push((dir.clone(), true));
            for entry in self.list(&dir).await? {
                let child = join(&dir, &entry.name);
                if entry.kind == FileKind::Dir {
                    stack.push((child, false));
                } else {
                    self.remove_file(&child).await?;
                }
            }
        }
        Ok(())
    }

    pub async fn remove_file(&self, path: &str) -> Result<(), RemoteError> {
        self.raw()
            .remove(path)
            .await
            .map(drop)
            .map_err(Self::failed(path))
    }

    pub async fn rmdir(&self, path: &str) -> Result<(), RemoteError> {
        let Err(error) = self.raw().rmdir(path).await else {
            return Ok(());
        };
        let error = RemoteError::from_sftp(path, error);
        if error.kind != RemoteKind::Failed {
            return Err(error);
        }
        // A bare `Failure`: say why, where the server lets us look.
        match self.list(path).await {
            Ok(entries) if !entries.is_empty() => Err(RemoteError::new(
                RemoteKind::NotEmpty,
                path,
                format!(
                    "the directory is not empty ({} entries; `rm -r` removes a tree)",
                    entries.len()
                ),
            )),
            _ => Err(error),
        }
    }

    /// Renames `from` to `to`, replacing a file at `to` the way rename(2)
    /// does. Where the server has no `posix-rename@openssh.com` (plain SFTP
    /// rename refuses an existing target), the old file is first renamed
    /// aside, then the new one in, then the old one removed: the target is
    /// briefly absent, but never half written.
    pub async fn rename(&self, from: &str, to: &str) -> Result<(), RemoteError> {
        // Checked first, so that the error names the path that is wrong.
        if self.existing(from).await?.is_none() {
            return Err(RemoteError::new(
                RemoteKind::NoSuchFile,
                from,
                "no such file or directory",
            ));
        }
        let existing = self.existing(to).await?;
        if existing.as_ref().is_some_and(is_dir) {
            return Err(RemoteError::new(
                RemoteKind::Exists,
                to,
                "is a directory: name the new path inside it",
            ));
        }
        self.replace(from, to, existing.is_some()).await
    }

    /// Renames `from` over `to` (whose existence the caller knows), as
    /// [`rename`](Self::rename) does but without its checks: one request
    /// where the server has `posix-rename@openssh.com`.
    pub async fn replace(&self, from: &str, to: &str, exists: bool) -> Result<(), RemoteError> {
        if self.extensions.posix_rename {
            return self.posix_rename(from, to).await;
        }
        if !exists {
            return self
                .raw()
                .rename(from, to)
                .await
                .map(drop)
                .map_err(Self::failed(to));
        }
        let aside = format!(
            "{}/.{}.tether-{}.old",
            parent(to),
            to.rsplit('/').next().unwrap_or(to),
            std::process::id()
        );
        self.raw()
            .rename(to, aside.as_str())
            .await
            .map_err(Self::failed(to))?;
        if let Err(error) = self.raw().rename(from, to).await {
            let _ = self.raw().rename(aside.as_str(), to).await;
            return Err(RemoteError::from_sftp(to, error));
        }
        let _ = self.remove_file(&aside).await;
        Ok(())
    }

    async fn posix_rename(&self, from: &str, to: &str) -> Result<(), RemoteError> {
        let mut data = Vec::new();
        ssh_string(&mut data, from);
        ssh_string(&mut data, to);
        let reply = self
            .raw()
            .extended("posix-rename@openssh.com", data)
            .await
            .map_err(Self::failed(to))?;
        match reply {
            russh_sftp::protocol::Packet::Status(status)
                if status.status_code == StatusCode::Ok =>
            {
                Ok(())
            }
            russh_sftp::protocol::Packet::Status(status) => {
                Err(RemoteError::from_sftp(to, SftpErr::Status(status)))
            }
            _ => Err(RemoteError::new(
                RemoteKind::Failed,
                to,
                "unexpected reply to posix-rename",
            )),
        }
    }

    /// Makes a symlink at `link` pointing to `target`, and checks that the
    /// link made is the link asked for: servers disagree on the order of
    /// SSH_FXP_SYMLINK's paths, and the wrong one makes the reversed link
    /// and still answers OK. A wrong guess is undone and the other order
    /// used, and remembered for this session.
    pub async fn symlink(&self, target: &str, link: &str) -> Result<(), RemoteError> {
        if self.existing(link).await?.is_some() {
            return Err(RemoteError::new(RemoteKind::Exists, link, "exists already"));
        }
        let first = self.order();
        let other = match first {
            SymlinkOrder::OpenSsh => SymlinkOrder::Draft,
            SymlinkOrder::Draft => SymlinkOrder::OpenSsh,
        };
        for order in [first, other] {
            let sent = match order {
                SymlinkOrder::OpenSsh => self.raw().symlink(target, link).await,
                SymlinkOrder::Draft => self.raw().symlink(link, target).await,
            };
            if let Err(error) = sent {
                // An existing `target` makes the reversed request fail.
                if order == first {
                    continue;
                }
                return Err(RemoteError::from_sftp(link, error));
            }
            if self.read_link(link).await.ok().as_deref() == Some(target) {
                self.learn_order(order);
                return Ok(());
            }
            // The reversed link (at `target`, pointing to `link`): undo it,
            // only if it is exactly that.
            if let Ok(Some(attrs)) = self.existing(target).await {
                if is_symlink(&attrs) && self.read_link(target).await.ok().as_deref() == Some(link)
                {
                    let _ = self.remove_file(target).await;
                }
            }
        }
        Err(RemoteError::new(
            RemoteKind::Failed,
            link,
            "the server did not make the symlink asked for",
        ))
    }

    /// Why a write to `path` failed, as precisely as the server lets us
    /// tell: SFTP v3 reports a full disk as a bare `Failure`, so the file
    /// system's free space (`statvfs@openssh.com`, where offered) decides.
    pub async fn explain_write_failure(&self, path: &str, error: RemoteError) -> RemoteError {
        if error.kind != RemoteKind::Failed || !self.extensions.statvfs {
            return error;
        }
        match self.raw().statvfs(parent(path)).await {
            Ok(stat) if stat.blocks_avail == 0 || stat.inodes_avail == 0 => {
                RemoteError::new(RemoteKind::DiskFull, path, "the remote file system is full")
            }
            _ => error,
        }
    }

    /// Opens `path` for writing as `flags` say, with `attrs`.
    pub async fn open_write(
        &self,
        path: &str,
        flags: OpenFlags,
        attrs: FileAttributes,
    ) -> Result<String, RemoteError> {
        Ok(self
            .raw()
            .open(path, flags | OpenFlags::WRITE, attrs)
            .await
            .map_err(Self::failed(path))?
            .handle)
    }

    /// Opens `path` for reading.
    pub async fn open_read(&self, path: &str) -> Result<String, RemoteError> {
        Ok(self
            .raw()
            .open(path, OpenFlags::READ, FileAttributes::empty())
            .await
            .map_err(Self::failed(path))?
            .handle)
    }

    /// Closes a handle (a written file is synced by
    /// [`Writer::finish`](super::transfer::Writer::finish), behind its last
    /// write).
    pub async fn close(&self, handle: String, path: &str) -> Result<(), RemoteError> {
        self.raw()
            .close(handle)
            .await
            .map(drop)
            .map_err(Self::failed(path))
    }
}

impl Sftp {
    /// A small file's bytes; a file over `limit` is an error.
    pub async fn read_small(&self, path: &str, limit: usize) -> Result<Vec<u8>, RemoteError> {
        let handle = self.open_read(path).await?;
        let mut reader = self.reader(handle, path, None);
        let mut out = Vec::new();
        let read = async {
            while let Some(chunk) = reader.next_chunk().await? {
                out.extend_from_slice(&chunk);
                if out.len() > limit {
                    return Err(RemoteError::new(
                        RemoteKind::Failed,
                        path,
                        format!("is over {limit} bytes"),
                    ));
                }
            }
            Ok(())
        }
        .await;
        let _ = self.close(reader.into_handle(), path).await;
        read.map(|()| out)
    }

    /// Replaces `path` whole with `bytes`, with `mode`: written to a
    /// temporary file beside it (owner-only while written), synced, given
    /// its mode, and renamed over it, so a reader sees the old file or the
    /// new one.
    pub async fn replace_small(
        &self,
        path: &str,
        bytes: &[u8],
        mode: u32,
    ) -> Result<(), RemoteError> {
        let name = path.rsplit('/').next().unwrap_or(path);
        let temporary = join(
            parent(path),
            &format!(".{name}.tether-{}", std::process::id()),
        );
        let flags = OpenFlags::CREATE | OpenFlags::TRUNCATE | OpenFlags::EXCLUDE;
        let handle = self
            .open_write(&temporary, flags, private_attributes())
            .await?;
        let mut writer = self.writer(handle, &temporary);
        let written = async {
            writer.write(bytes).await?;
            let attrs = FileAttributes {
                permissions: Some(mode & 0o7777),
                ..FileAttributes::empty()
            };
            let (_, handle) = writer
                .finish(&attrs, self.extensions.fsync)
                .await
                .map_err(|(error, _)| error)?;
            self.close(handle, &temporary).await?;
            self.rename(&temporary, path).await
        }
        .await;
        if written.is_err() {
            let _ = self.remove_file(&temporary).await;
        }
        written
    }
}

/// The SSH string encoding, for extension payloads.
fn ssh_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}
