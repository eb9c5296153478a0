//! The file operations of `tether files` and `tether cp`, in FTP commands,
//! on one logged-in [`Control`]. Every path is made absolute from the login
//! directory first, so the control connection's working directory (which
//! [`Control::realpath`] moves) never matters.
//!
//! FTP has no `stat`: an entry is read from `MLST` where the server offers
//! it, otherwise from a `LIST -a` of its directory, parsed by suppaftp.
//! Where a path really is comes from `CWD` and `PWD` for directories; a
//! symlink to a file is followed through the target its `LIST` line names.

use std::time::{Duration, UNIX_EPOCH};

use suppaftp::list::{File, ListParser};
use suppaftp::tokio::TransferStream;

use super::read_ahead::Tls;
use suppaftp::{FtpError, FtpResult, Mode, Status};
use tether_api::files::{FileInfo, FileKind};
use tokio::time::error::Elapsed;

use super::client::{Control, Stream};
use super::{Failed, FtpFailure, reply_code, reply_text};
use crate::remote::{
    MAX_DEPTH, MAX_LINKS, RemoteError, RemoteKind, Resolve, base_name, join, listed,
    owner_and_group, parent, sort_listing,
};

/// A data connection of a transfer in progress.
pub type Transfer = TransferStream<Tls>;

/// The commands that open a data connection.
enum DataCommand<'a> {
    List(&'a str),
    Mlsd(&'a str),
    Retr(&'a str),
    Stor(&'a str),
}

enum DataAnswer {
    Lines(Vec<String>),
    Transfer(Transfer),
}

async fn send_data(stream: &mut Stream, command: &DataCommand<'_>) -> FtpResult<DataAnswer> {
    Ok(match command {
        // `-a`: entries whose names start with a dot too, as SFTP lists them.
        DataCommand::List(dir) => DataAnswer::Lines(stream.list(Some(&format!("-a {dir}"))).await?),
        DataCommand::Mlsd(dir) => DataAnswer::Lines(stream.mlsd(Some(dir)).await?),
        DataCommand::Retr(path) => DataAnswer::Transfer(stream.retr_as_stream(path).await?),
        DataCommand::Stor(path) => DataAnswer::Transfer(stream.put_with_stream(path).await?),
    })
}

/// A refusal that means the server does not know the command.
fn not_implemented(response: &suppaftp::types::Response) -> bool {
    matches!(reply_code(response), 500 | 502 | 504)
}

/// FTP commands are lines: a path with a line break cannot be named.
fn check(path: &str) -> Result<(), Failed> {
    if path.contains(['\r', '\n']) {
        return Err(Failed::Refused(RemoteError::new(
            RemoteKind::Failed,
            path,
            "FTP cannot name a path with a line break in it",
        )));
    }
    Ok(())
}

/// Unix seconds as MFMT's `YYYYMMDDHHMMSS` (UTC).
fn mfmt_time(secs: u64) -> String {
    let t = tether_api::time::utc(secs);
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

/// suppaftp's entry as the API describes it; `line` is the listing line it
/// came from, for owner and group names.
fn info(name: String, file: &File, line: &str) -> FileInfo {
    use suppaftp::list::PosixPexQuery::{Group, Others, Owner};
    let bits = |who| {
        u32::from(file.can_read(who)) << 2
            | u32::from(file.can_write(who)) << 1
            | u32::from(file.can_execute(who))
    };
    let (owner, group) = owner_and_group(line);
    FileInfo {
        name,
        kind: if file.is_directory() {
            FileKind::Dir
        } else if file.is_symlink() {
            FileKind::Symlink
        } else {
            FileKind::File
        },
        size: file.size() as u64,
        mode: bits(Owner) << 6 | bits(Group) << 3 | bits(Others),
        mtime: file
            .modified()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        uid: file.uid().unwrap_or(0),
        gid: file.gid().unwrap_or(0),
        owner: owner.filter(|o| o.parse::<u32>().is_err()),
        group: group.filter(|g| g.parse::<u32>().is_err()),
        target: file
            .symlink()
            .map(|p| p.to_string_lossy().into_owned())
            .filter(|t| !t.is_empty()),
    }
}

fn root_info(path: &str) -> FileInfo {
    FileInfo {
        name: path.to_owned(),
        kind: FileKind::Dir,
        size: 0,
        mode: 0o755,
        mtime: 0,
        uid: 0,
        gid: 0,
        owner: None,
        group: None,
        target: None,
    }
}

impl Control {
    /// The result of one command: a timeout or a failed connection leaves
    /// the control connection unusable.
    fn settle<T>(
        &mut self,
        result: Result<FtpResult<T>, Elapsed>,
        path: &str,
        stage: &'static str,
    ) -> Result<T, Failed> {
        let failed = match result {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(error)) => Failed::from_ftp(&self.addr, path, error),
            Err(_) => Failed::timeout(&self.addr, self.timeout, stage),
        };
        if matches!(failed, Failed::Connection(_)) {
            self.broken = true;
        }
        Err(failed)
    }

    /// A data command, on EPSV or, where the server does not know it,
    /// PASV.
    async fn data(
        &mut self,
        command: DataCommand<'_>,
        path: &str,
        stage: &'static str,
    ) -> Result<DataAnswer, Failed> {
        loop {
            let answer =
                tokio::time::timeout(self.timeout, send_data(&mut self.stream, &command)).await;
            match answer {
                Ok(Err(FtpError::UnexpectedResponse(response)))
                    if self.extended_passive && not_implemented(&response) =>
                {
                    tracing::debug!(addr = %self.addr, "EPSV refused; using PASV");
                    self.extended_passive = false;
                    self.stream.set_mode(Mode::Passive);
                }
                other => return self.settle(other, path, stage),
            }
        }
    }

    /// `path` with `~` and a relative start read from the login directory.
    pub fn expand(&self, path: &str) -> Result<String, Failed> {
        check(path)?;
        let expanded = match path.strip_prefix('~') {
            Some("") => self.home.clone(),
            Some(rest) if rest.starts_with('/') => {
                format!("{}{rest}", self.home.trim_end_matches('/'))
            }
            Some(_) => {
                return Err(Failed::Refused(RemoteError::new(
                    RemoteKind::Failed,
                    path,
                    "FTP cannot expand ~user: give the full path",
                )));
            }
            None if path.starts_with('/') => path.to_owned(),
            None => join(&self.home, path),
        };
        Ok(expanded)
    }

    /// The server's name for the directory `path`, or `None` when it is not
    /// one the login can enter.
    async fn directory(&mut self, path: &str) -> Result<Option<String>, Failed> {
        let entered = tokio::time::timeout(self.timeout, self.stream.cwd(path)).await;
        match self.settle(entered, path, "CWD") {
            Ok(()) => {}
            Err(Failed::Refused(_)) => return Ok(None),
            Err(failed) => return Err(failed),
        }
        let here = tokio::time::timeout(self.timeout, self.stream.pwd()).await;
        self.settle(here, path, "PWD").map(Some)
    }

    /// The lines of a directory listing and the entries parsed from them
    /// ([`entries_of`]).
    async fn listing(&mut self, dir: &str) -> Result<Vec<(File, String)>, Failed> {
        let (command, mlsd) = if self.offered.mlst {
            (DataCommand::Mlsd(dir), true)
        } else {
            (DataCommand::List(dir), false)
        };
        let DataAnswer::Lines(lines) = self.data(command, dir, "a directory listing").await? else {
            return Ok(Vec::new());
        };
        Ok(entries_of(lines, mlsd, dir))
    }

    /// The entry `base` in the directory `dir`, or `None`.
    async fn entry_in(&mut self, dir: &str, base: &str) -> Result<Option<(File, String)>, Failed> {
        let path = join(dir, base);
        if self.offered.mlst {
            let answer = tokio::time::timeout(self.timeout, self.stream.mlst(Some(&path))).await;
            return match self.settle(answer, &path, "MLST") {
                Ok(line) => Ok(ListParser::parse_mlst(&line).ok().map(|file| (file, line))),
                Err(Failed::Refused(_)) => Ok(None),
                Err(failed) => Err(failed),
            };
        }
        match self.listing(dir).await {
            Ok(entries) => Ok(entries.into_iter().find(|(file, _)| file.name() == base)),
            Err(Failed::Refused(_)) => Ok(None),
            Err(failed) => Err(failed),
        }
    }

    /// Where `path` really is: directories by `CWD` and `PWD`, a symlink to
    /// a file through the target its listing names; a missing last
    /// component is `NoSuchFile`.
    pub async fn realpath(&mut self, path: &str) -> Result<String, Failed> {
        let mut path = self.expand(path)?;
        for _ in 0..MAX_LINKS {
            if let Some(dir) = self.directory(&path).await? {
                return Ok(dir);
            }
            let base = base_name(&path).to_owned();
            let missing = || {
                Failed::Refused(RemoteError::new(
                    RemoteKind::NoSuchFile,
                    &path,
                    "no such file or directory",
                ))
            };
            if base.is_empty() || base == "." || base == ".." {
                return Err(missing());
            }
            let Some(dir) = self.directory(parent(&path)).await? else {
                return Err(missing());
            };
            match self.entry_in(&dir, &base).await? {
                None => return Err(missing()),
                Some((file, _)) => match file.symlink().map(|t| t.to_string_lossy().into_owned()) {
                    Some(target) if !target.is_empty() => {
                        path = if target.starts_with('/') {
                            target
                        } else {
                            join(&dir, &target)
                        };
                    }
                    _ => return Ok(join(&dir, &base)),
                },
            }
        }
        Err(Failed::Refused(RemoteError::new(
            RemoteKind::Failed,
            &path,
            "too many levels of symbolic links",
        )))
    }

    /// What is at `path` (a final symlink described, not followed), or
    /// `None`.
    pub async fn existing(&mut self, path: &str) -> Result<Option<FileInfo>, Failed> {
        let path = self.expand(path)?;
        if path.trim_end_matches('/').is_empty() {
            return Ok(Some(root_info(&path)));
        }
        let base = base_name(&path).to_owned();
        let dir = match self.directory(parent(&path)).await? {
            Some(dir) => dir,
            None => return Ok(None),
        };
        if let Some((file, line)) = self.entry_in(&dir, &base).await? {
            return Ok(Some(info(path.clone(), &file, &line)));
        }
        // Some servers list a directory's entries but not the directory in
        // its parent (a parent the login cannot read).
        Ok(self.directory(&path).await?.map(|_| root_info(&path)))
    }

    pub async fn stat(&mut self, path: &str, follow: bool) -> Result<FileInfo, Failed> {
        let shown = self.expand(path)?;
        let found = if follow {
            let real = self.realpath(&shown).await?;
            self.existing(&real).await?.map(|info| FileInfo {
                name: shown.clone(),
                ..info
            })
        } else {
            self.existing(&shown).await?
        };
        found.ok_or_else(|| {
            Failed::Refused(RemoteError::new(
                RemoteKind::NoSuchFile,
                &shown,
                "no such file or directory",
            ))
        })
    }

    /// A directory's entries (`.` and `..` left out), sorted by name.
    pub async fn list(&mut self, path: &str) -> Result<Vec<FileInfo>, Failed> {
        let path = self.expand(path)?;
        if self.directory(&path).await?.is_none() {
            return Err(match self.existing(&path).await? {
                Some(_) => Failed::Refused(RemoteError::new(
                    RemoteKind::Failed,
                    &path,
                    "not a directory (or one the login cannot enter)",
                )),
                None => Failed::Refused(RemoteError::new(
                    RemoteKind::NoSuchFile,
                    &path,
                    "no such file or directory",
                )),
            });
        }
        let mut entries: Vec<FileInfo> = self
            .listing(&path)
            .await?
            .into_iter()
            .map(|(file, line)| info(file.name().to_owned(), &file, &line))
            .collect();
        sort_listing(&mut entries);
        Ok(entries)
    }

    /// A refusal of a command on `path`, explained: vsftpd says only
    /// "Failed to ..." (550), so whether `path` (or its directory, for a
    /// new entry) exists decides between `NoSuchFile` and
    /// `PermissionDenied`.
    async fn explain(&mut self, failed: Failed, path: &str, creates: bool) -> Failed {
        let Failed::Refused(error) = failed else {
            return failed;
        };
        if error.kind != RemoteKind::Failed {
            return Failed::Refused(error);
        }
        let probe = if creates {
            parent(path).to_owned()
        } else {
            path.to_owned()
        };
        match self.existing(&probe).await {
            Ok(None) => Failed::Refused(RemoteError::new(
                RemoteKind::NoSuchFile,
                &probe,
                "no such file or directory",
            )),
            Ok(Some(_)) if !creates => Failed::Refused(RemoteError::new(
                RemoteKind::PermissionDenied,
                path,
                format!("permission denied ({})", error.message),
            )),
            // The directory is there and the server would not create the
            // entry in it (a full disk says 452 or 552, classified above).
            Ok(Some(_)) => Failed::Refused(RemoteError::new(
                RemoteKind::PermissionDenied,
                path,
                format!("permission denied ({})", error.message),
            )),
            Err(other) => other,
        }
    }

    pub async fn mkdir(
        &mut self,
        path: &str,
        parents: bool,
        mode: Option<u32>,
    ) -> Result<(), Failed> {
        let path = self.expand(path)?;
        if parents {
            let mut missing = Vec::new();
            let mut head = path.trim_end_matches('/').to_owned();
            while !head.is_empty() && self.directory(&head).await?.is_none() {
                if missing.len() >= MAX_DEPTH {
                    return Err(Failed::Refused(RemoteError::new(
                        RemoteKind::Failed,
                        &path,
                        "too deep",
                    )));
                }
                missing.push(head.clone());
                head = parent(&head).to_owned();
                if head == "/" {
                    break;
                }
            }
            for dir in missing.into_iter().rev() {
                self.make_dir(&dir).await?;
                if let Some(mode) = mode {
                    self.chmod(&dir, mode).await?;
                }
            }
            return Ok(());
        }
        self.make_dir(&path).await?;
        if let Some(mode) = mode {
            self.chmod(&path, mode).await?;
        }
        Ok(())
    }

    async fn make_dir(&mut self, path: &str) -> Result<(), Failed> {
        let answer = tokio::time::timeout(self.timeout, self.stream.mkdir(path)).await;
        match self.settle(answer, path, "MKD") {
            Ok(()) => Ok(()),
            Err(Failed::Refused(error)) => match self.existing(path).await? {
                Some(_) => Err(Failed::Refused(RemoteError::new(
                    RemoteKind::Exists,
                    path,
                    "it exists already",
                ))),
                None => Err(self.explain(Failed::Refused(error), path, true).await),
            },
            Err(failed) => Err(failed),
        }
    }

    pub async fn remove_file(&mut self, path: &str) -> Result<(), Failed> {
        let path = self.expand(path)?;
        let answer = tokio::time::timeout(self.timeout, self.stream.rm(&path)).await;
        match self.settle(answer, &path, "DELE") {
            Ok(()) => Ok(()),
            Err(failed) => Err(self.explain(failed, &path, false).await),
        }
    }

    pub async fn rmdir(&mut self, path: &str) -> Result<(), Failed> {
        let path = self.expand(path)?;
        let answer = tokio::time::timeout(self.timeout, self.stream.rmdir(&path)).await;
        match self.settle(answer, &path, "RMD") {
            Ok(()) => Ok(()),
            Err(Failed::Refused(error)) if error.kind == RemoteKind::Failed => {
                // Not empty, or not there, or not allowed.
                match self.existing(&path).await? {
                    None => Err(Failed::Refused(RemoteError::new(
                        RemoteKind::NoSuchFile,
                        &path,
                        "no such file or directory",
                    ))),
                    Some(found) if found.kind == FileKind::Dir => {
                        let empty = self
                            .listing(&path)
                            .await
                            .map(|e| e.is_empty())
                            .unwrap_or(false);
                        Err(Failed::Refused(if empty {
                            RemoteError::new(RemoteKind::PermissionDenied, &path, error.message)
                        } else {
                            RemoteError::new(RemoteKind::NotEmpty, &path, "directory not empty")
                        }))
                    }
                    Some(_) => Err(Failed::Refused(RemoteError::new(
                        RemoteKind::Failed,
                        &path,
                        "not a directory",
                    ))),
                }
            }
            Err(failed) => Err(failed),
        }
    }

    /// Removes a file, or with `recursive` a directory tree.
    pub async fn remove(&mut self, path: &str, recursive: bool) -> Result<(), Failed> {
        let path = self.expand(path)?;
        let Some(found) = self.existing(&path).await? else {
            return Err(Failed::Refused(RemoteError::new(
                RemoteKind::NoSuchFile,
                &path,
                "no such file or directory",
            )));
        };
        if found.kind != FileKind::Dir {
            return self.remove_file(&path).await;
        }
        if !recursive {
            return Err(Failed::Refused(RemoteError::new(
                RemoteKind::Failed,
                &path,
                "is a directory (remove trees with rm -r)",
            )));
        }
        // Depth first, without recursion: directories are removed once
        // their entries are.
        let mut stack = vec![(path.clone(), false)];
        while let Some((dir, emptied)) = stack.pop() {
            if emptied {
                self.rmdir(&dir).await?;
                continue;
            }
            if stack.len() > MAX_DEPTH {
                return Err(Failed::Refused(RemoteError::new(
                    RemoteKind::Failed,
                    &dir,
                    "too deep",
                )));
            }
            stack.push((dir.clone(), true));
            for (file, _) in self.listing(&dir).await? {
                let child = join(&dir, file.name());
                if file.is_directory() {
                    stack.push((child, false));
                } else {
                    self.remove_file(&child).await?;
                }
            }
        }
        Ok(())
    }

    /// `RNFR` and `RNTO`: servers on Unix rename over an existing file.
    pub async fn rename(&mut self, from: &str, to: &str) -> Result<(), Failed> {
        let (from, to) = (self.expand(from)?, self.expand(to)?);
        let answer = tokio::time::timeout(self.timeout, self.stream.rename(&from, &to)).await;
        match self.settle(answer, &from, "RNFR and RNTO") {
            Ok(()) => Ok(()),
            Err(failed) => Err(self.explain(failed, &from, false).await),
        }
    }

    /// `SITE CHMOD`, where the server offers it.
    pub async fn chmod(&mut self, path: &str, mode: u32) -> Result<(), Failed> {
        let path = self.expand(path)?;
        if self.site_chmod == Some(false) {
            return Err(Failed::Unsupported(
                "the server does not offer SITE CHMOD: FTP cannot change modes there".into(),
            ));
        }
        let command = format!("CHMOD {:o} {path}", mode & 0o7777);
        let answer = tokio::time::timeout(self.timeout, self.stream.site(command)).await;
        match answer {
            Ok(Err(FtpError::UnexpectedResponse(response))) if not_implemented(&response) => {
                self.site_chmod = Some(false);
                Err(Failed::Unsupported(format!(
                    "the server does not offer SITE CHMOD (it answered {:?}): FTP cannot change \
                     modes there",
                    reply_text(&response)
                )))
            }
            other => match self.settle(other, &path, "SITE CHMOD") {
                Ok(_) => {
                    self.site_chmod = Some(true);
                    Ok(())
                }
                Err(failed) => Err(self.explain(failed, &path, false).await),
            },
        }
    }

    /// `MFMT`, where the server offers it.
    pub async fn touch(&mut self, path: &str, mtime: u64) -> Result<(), Failed> {
        let path = self.expand(path)?;
        if !self.offered.mfmt {
            return Err(Failed::Unsupported(
                "the server does not offer MFMT: FTP cannot set times there".into(),
            ));
        }
        let command = format!("MFMT {} {path}", mfmt_time(mtime));
        let answer = tokio::time::timeout(
            self.timeout,
            self.stream.custom_command(command, &[Status::File]),
        )
        .await;
        match self.settle(answer, &path, "MFMT") {
            Ok(_) => Ok(()),
            Err(failed) => Err(self.explain(failed, &path, false).await),
        }
    }

    /// `RETR`: the file's data connection; read it to the end, then
    /// [`Control::finish`] it.
    pub async fn open_read(&mut self, path: &str) -> Result<Transfer, Failed> {
        let path = self.expand(path)?;
        match self.data(DataCommand::Retr(&path), &path, "RETR").await {
            Ok(DataAnswer::Transfer(transfer)) => Ok(transfer),
            Ok(DataAnswer::Lines(_)) => Err(Failed::Connection(FtpFailure::Protocol {
                addr: self.addr.clone(),
                message: "RETR opened no data connection".into(),
            })),
            Err(failed) => Err(self.explain(failed, &path, false).await),
        }
    }

    /// `STOR`: a new file's data connection; write it, then
    /// [`Control::finish`] it.
    pub async fn open_write(&mut self, path: &str) -> Result<Transfer, Failed> {
        let path = self.expand(path)?;
        match self.data(DataCommand::Stor(&path), &path, "STOR").await {
            Ok(DataAnswer::Transfer(transfer)) => Ok(transfer),
            Ok(DataAnswer::Lines(_)) => Err(Failed::Connection(FtpFailure::Protocol {
                addr: self.addr.clone(),
                message: "STOR opened no data connection".into(),
            })),
            Err(failed) => Err(self.explain(failed, &path, true).await),
        }
    }

    /// Closes a transfer's data connection and reads the server's verdict
    /// on it (a full disk shows here).
    pub async fn finish(&mut self, transfer: Transfer, path: &str) -> Result<(), Failed> {
        let answer = tokio::time::timeout(self.timeout, transfer.finish()).await;
        self.settle(answer, path, "the end of the transfer")
    }

    /// How long one reply may take.
    pub fn reply_timeout(&self) -> Duration {
        self.timeout
    }
}

impl crate::remote::Files for Control {
    type Error = Failed;

    async fn expand(&mut self, path: &str) -> Result<String, Failed> {
        Control::expand(self, path)
    }

    async fn list(&mut self, path: &str) -> Result<Vec<FileInfo>, Failed> {
        Control::list(self, path).await
    }

    async fn stat(&mut self, path: &str, follow: bool) -> Result<FileInfo, Failed> {
        Control::stat(self, path, follow).await
    }

    async fn mkdir(&mut self, path: &str, parents: bool, mode: Option<u32>) -> Result<(), Failed> {
        Control::mkdir(self, path, parents, mode).await
    }

    async fn remove(&mut self, path: &str, recursive: bool) -> Result<(), Failed> {
        Control::remove(self, path, recursive).await
    }

    async fn rmdir(&mut self, path: &str) -> Result<(), Failed> {
        Control::rmdir(self, path).await
    }

    async fn rename(&mut self, from: &str, to: &str) -> Result<(), Failed> {
        Control::rename(self, from, to).await
    }

    async fn chmod(&mut self, path: &str, mode: u32) -> Result<(), Failed> {
        Control::chmod(self, path, mode).await
    }

    async fn symlink(&mut self, _target: &str, _link: &str) -> Result<(), Failed> {
        Err(Failed::Unsupported(
            "FTP cannot make symlinks (it has no command for them): copy what a link points to \
             with `tether cp -L`"
                .into(),
        ))
    }

    async fn touch(&mut self, path: &str, mtime: u64) -> Result<(), Failed> {
        Control::touch(self, path, mtime).await
    }
}

/// Path confinement asks this of an FTP server.
impl Resolve for Control {
    async fn realpath(&mut self, path: &str) -> Result<String, RemoteError> {
        match Control::realpath(self, path).await {
            Ok(real) => Ok(real),
            Err(Failed::Refused(error)) => Err(error),
            Err(Failed::Unsupported(message)) => {
                Err(RemoteError::new(RemoteKind::Failed, path, message))
            }
            Err(Failed::Connection(error)) => Err(RemoteError::new(
                RemoteKind::Failed,
                path,
                error.to_string(),
            )),
        }
    }
}

/// The entries parsed from a listing's `lines` of `dir` (MLSD's or LIST's),
/// as [`listed`] keeps them; lines suppaftp cannot parse are skipped.
fn entries_of(lines: Vec<String>, mlsd: bool, dir: &str) -> Vec<(File, String)> {
    lines
        .into_iter()
        .filter_map(|line| {
            let parsed = if mlsd {
                ListParser::parse_mlsd(&line)
            } else {
                ListParser::parse_posix(&line).or_else(|_| ListParser::parse_dos(&line))
            };
            match parsed {
                Ok(file) if listed(dir, file.name()) => Some((file, line)),
                Ok(_) => None,
                Err(error) => {
                    tracing::debug!(%error, "unparsed listing line");
                    None
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mfmt_times_are_utc() {
        assert_eq!(mfmt_time(0), "19700101000000");
        assert_eq!(mfmt_time(1_796_132_709), "20261201134509");
    }

    #[test]
    fn listing_lines_become_file_info() {
        let line = "-rw-r-x--- 1 alice staff 1234 Nov 5 2025 a b.txt";
        let file = ListParser::parse_posix(line).unwrap_or_else(|e| panic!("{e}"));
        let shown = info(file.name().to_owned(), &file, line);
        assert_eq!(shown.name, "a b.txt");
        assert_eq!(shown.mode, 0o650);
        assert_eq!(shown.size, 1234);
        assert_eq!(shown.owner.as_deref(), Some("alice"));
        let link = "lrwxrwxrwx 1 1000 1000 4 Nov 5 2025 l -> /etc";
        let file = ListParser::parse_posix(link).unwrap_or_else(|e| panic!("{e}"));
        let shown = info(file.name().to_owned(), &file, link);
        assert_eq!(
            (shown.kind, shown.target.as_deref(), shown.owner),
            (FileKind::Symlink, Some("/etc"), None)
        );
    }

    /// A lying server's names with a `/` in them are left out of a
    /// listing, in LIST's form and in MLSD's.
    #[test]
    fn names_that_climb_out_are_left_out() {
        let list = [
            "-rw-r--r-- 1 u g 1 Nov 5 2025 payload",
            "-rw-r--r-- 1 u g 1 Nov 5 2025 ../escaped",
            "-rw-r--r-- 1 u g 1 Nov 5 2025 sub/../../escaped2",
            "drwxr-xr-x 2 u g 6 Nov 5 2025 ..",
        ];
        let mlsd = [
            "type=file;size=1; payload",
            "type=file;size=1; ../escaped",
            "type=file;size=1; /etc/passwd",
            "type=pdir;size=1; ..",
        ];
        for (lines, is_mlsd) in [(&list[..], false), (&mlsd[..], true)] {
            let lines = lines.iter().map(|l| (*l).to_owned()).collect();
            let names: Vec<String> = entries_of(lines, is_mlsd, "/srv")
                .iter()
                .map(|(file, _)| file.name().to_owned())
                .collect();
            assert_eq!(names, ["payload"], "mlsd: {is_mlsd}");
        }
    }
}
