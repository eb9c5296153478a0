//! What the remote file systems (SFTP and FTP) share: why an operation
//! failed, what `session list` shows of a pooled connection, the checks
//! and arithmetic on server paths, and the one question path confinement
//! asks of a server ([`Resolve`]).

use std::time::Duration;

use tether_api::files::{FileInfo, is_entry_name};

/// Why a remote file operation failed, for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteKind {
    NoSuchFile,
    PermissionDenied,
    Exists,
    NotEmpty,
    DiskFull,
    Failed,
}

#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct RemoteError {
    pub kind: RemoteKind,
    pub path: String,
    pub message: String,
}

impl RemoteError {
    pub fn new(kind: RemoteKind, path: &str, message: impl Into<String>) -> Self {
        Self {
            kind,
            path: path.to_owned(),
            message: message.into(),
        }
    }
}

/// A snapshot of one pooled connection (SSH or FTP), for `session list`.
#[derive(Debug, Clone)]
pub struct SessionSnapshot {
    pub id: u64,
    pub profile: String,
    pub remote: String,
    pub age: Duration,
    pub idle: Duration,
    pub channels: usize,
    pub stalled: usize,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// How deep `rm -r` and `mkdir -p` go before refusing.
pub const MAX_DEPTH: usize = 128;
/// Symlinks followed in a row before giving up, as the kernel does.
pub const MAX_LINKS: usize = 40;

/// What path confinement needs of a server: where a path really is.
pub trait Resolve {
    /// `path` with `.`, `..` and symlinks resolved by the server; an error
    /// of kind [`RemoteKind::NoSuchFile`] when it does not exist.
    fn realpath(&mut self, path: &str) -> impl Future<Output = Result<String, RemoteError>> + Send;
}

/// The single operations of `tether files`, as each protocol does them;
/// the server layer confines paths and dispatches the same way for both.
pub trait Files: Resolve + Send {
    type Error: Into<crate::error::Error> + Send;

    /// `path` with a leading `~` read from the login directory.
    fn expand(&mut self, path: &str) -> impl Future<Output = Result<String, Self::Error>> + Send;
    fn list(
        &mut self,
        path: &str,
    ) -> impl Future<Output = Result<Vec<FileInfo>, Self::Error>> + Send;
    fn stat(
        &mut self,
        path: &str,
        follow: bool,
    ) -> impl Future<Output = Result<FileInfo, Self::Error>> + Send;
    fn mkdir(
        &mut self,
        path: &str,
        parents: bool,
        mode: Option<u32>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
    fn remove(
        &mut self,
        path: &str,
        recursive: bool,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
    fn rmdir(&mut self, path: &str) -> impl Future<Output = Result<(), Self::Error>> + Send;
    fn rename(
        &mut self,
        from: &str,
        to: &str,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
    fn chmod(
        &mut self,
        path: &str,
        mode: u32,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
    fn symlink(
        &mut self,
        target: &str,
        link: &str,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
    fn touch(
        &mut self,
        path: &str,
        mtime: u64,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

pub fn check_path(path: &str) -> Result<(), RemoteError> {
    if path.is_empty() || path.contains('\0') || path.len() > 4096 {
        return Err(RemoteError::new(
            RemoteKind::Failed,
            path,
            "not a usable path (empty, NUL or over 4096 bytes)",
        ));
    }
    Ok(())
}

/// Joins a directory and a name the way the server's paths read.
pub fn join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// The directory part of a server path (`.` for a bare name).
pub fn parent(path: &str) -> &str {
    match path.trim_end_matches('/').rsplit_once('/') {
        Some(("", _)) => "/",
        Some((dir, _)) => dir,
        None => ".",
    }
}

/// The last component of a server path.
pub fn base_name(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    trimmed.rsplit_once('/').map_or(trimmed, |(_, base)| base)
}

/// Whether a listing of `dir` keeps the entry the server named `name`:
/// not `.` or `..`, nor a name that is not an entry's at all
/// ([`is_entry_name`]: `../x`, `a/b`), which a lying server sends and
/// which is logged.
pub fn listed(dir: &str, name: &str) -> bool {
    if is_entry_name(name) {
        return true;
    }
    if name != "." && name != ".." {
        tracing::warn!(%dir, ?name, "the server listed a name that is not an entry's; left out");
    }
    false
}

/// A listing sorted by name, each name once: a name twice is a server's
/// lie too, and the first is kept.
pub fn sort_listing(entries: &mut Vec<FileInfo>) {
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    entries.dedup_by(|later, first| later.name == first.name);
}

/// User and group names from an `ls -l`-style line: an SFTP `longname`
/// (OpenSSH gives one) or an FTP `LIST` line: `-rw-r--r--  1 alice staff  12 Jan 1 00:00 x`.
pub fn owner_and_group(longname: &str) -> (Option<String>, Option<String>) {
    let fields: Vec<&str> = longname.split_whitespace().collect();
    let plausible =
        fields.len() >= 9 && fields[0].len() >= 10 && fields[1].bytes().all(|b| b.is_ascii_digit());
    if plausible {
        (Some(fields[2].to_owned()), Some(fields[3].to_owned()))
    } else {
        (None, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A listing's names and sizes, sorted, each name once: the first
    /// the server sent is kept.
    #[test]
    fn a_listing_names_each_entry_once() {
        let entry = |name: &str, size: u64| -> FileInfo {
            let sent = serde_json::json!({
                "name": name, "kind": "file", "size": size, "mode": 420, "mtime": 0, "uid": 0,
                "gid": 0,
            });
            serde_json::from_value(sent).unwrap()
        };
        let mut entries = vec![entry("b", 1), entry("a", 2), entry("b", 3)];
        sort_listing(&mut entries);
        let kept: Vec<_> = entries.iter().map(|e| (e.name.as_str(), e.size)).collect();
        assert_eq!(kept, [("a", 2), ("b", 1)]);
        assert!(listed("/srv", "a") && listed("/srv", ".a"));
        for lie in [".", "..", "../x", "a/b", ""] {
            assert!(!listed("/srv", lie), "{lie:?}");
        }
    }

    #[test]
    fn parents_of_server_paths() {
        assert_eq!(parent("/a/b"), "/a");
        assert_eq!(parent("/a"), "/");
        assert_eq!(parent("a"), ".");
        assert_eq!(parent("a/b/"), "a");
        assert_eq!(base_name("/a/b/"), "b");
        assert_eq!(base_name("b"), "b");
    }

    #[test]
    fn longnames_give_names_where_they_can() {
        assert_eq!(
            owner_and_group("-rw-r--r--    1 alice    staff        12 Jan  1 00:00 x y"),
            (Some("alice".into()), Some("staff".into()))
        );
        assert_eq!(owner_and_group("x"), (None, None));
        assert_eq!(owner_and_group(""), (None, None));
    }
}
