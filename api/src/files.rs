//! File transfer and SFTP operations.
//!
//! - `GET /v1/profiles/{name}/files?path=P` streams the file as the response
//!   body, with its size, mode and mtime in [`SIZE_HEADER`], [`MODE_HEADER`]
//!   and [`MTIME_HEADER`].
//! - `PUT /v1/profiles/{name}/files?path=P[&mode=M][&mtime=T]` streams the
//!   request body to a temporary file beside `P` and renames it into place
//!   only when the whole body arrived; the answer is [`Uploaded`].
//! - `POST /v1/profiles/{name}/sftp` runs one [`SftpRequest`]; the answer is
//!   [`SftpResponse`].
//! - `POST /v1/copy` copies one file between two profiles' servers
//!   ([`CopyRequest`]); the answer is [`Uploaded`].
//!
//! The daemon never opens a local path: the CLI reads and writes local files
//! with the caller's own permissions, and only bytes cross the socket.

use serde::{Deserialize, Serialize};

/// Files of a tree `tether cp -r` copies at a time, each one request to
/// tetherd on an SFTP session of its own; tetherd keeps as many sessions
/// between requests.
pub const FILES_IN_FLIGHT: usize = 8;

pub const SIZE_HEADER: &str = "tether-size";
pub const MODE_HEADER: &str = "tether-mode";
pub const MTIME_HEADER: &str = "tether-mtime";

/// The kind of a directory entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    Other,
}

/// What `stat` and `ls` tell about a remote file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    /// The name (for `ls`) or the path asked about (for `stat`).
    pub name: String,
    pub kind: FileKind,
    pub size: u64,
    /// Permission bits, e.g. 0o644.
    pub mode: u32,
    /// Unix seconds.
    pub mtime: u64,
    pub uid: u32,
    pub gid: u32,
    /// The owner's and group's names, where the server gives them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// For symlinks, where they point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum SftpRequest {
    /// List a directory (`.` and `..` left out), sorted by name.
    Ls { path: String },
    /// Stat a path; a final symlink is described, not followed, unless
    /// `follow` is set.
    Stat {
        path: String,
        #[serde(default)]
        follow: bool,
    },
    /// Make a directory; with `parents`, every missing parent too, and an
    /// existing directory is no error.
    Mkdir {
        path: String,
        #[serde(default)]
        parents: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mode: Option<u32>,
    },
    /// Remove a file or symlink; with `recursive`, a directory tree too.
    Rm {
        path: String,
        #[serde(default)]
        recursive: bool,
    },
    /// Remove an empty directory.
    Rmdir { path: String },
    /// Rename, replacing `to` if it exists.
    Mv { from: String, to: String },
    /// Change permission bits.
    Chmod { path: String, mode: u32 },
    /// Make a symlink at `link` pointing to `target`.
    Symlink { target: String, link: String },
    /// Set the modification (and access) time.
    Touch { path: String, mtime: u64 },
}

impl SftpRequest {
    /// The operation's name, as the audit trail has it: `ls`, `mv`.
    pub fn name(&self) -> &'static str {
        match self {
            SftpRequest::Ls { .. } => "ls",
            SftpRequest::Stat { .. } => "stat",
            SftpRequest::Mkdir { .. } => "mkdir",
            SftpRequest::Rm { .. } => "rm",
            SftpRequest::Rmdir { .. } => "rmdir",
            SftpRequest::Mv { .. } => "mv",
            SftpRequest::Chmod { .. } => "chmod",
            SftpRequest::Symlink { .. } => "symlink",
            SftpRequest::Touch { .. } => "touch",
        }
    }

    /// Every path the request names (a symlink's target too).
    pub fn paths(&self) -> Vec<&str> {
        match self {
            SftpRequest::Mv { from, to } => vec![from, to],
            SftpRequest::Symlink { target, link } => vec![target, link],
            SftpRequest::Ls { path }
            | SftpRequest::Stat { path, .. }
            | SftpRequest::Mkdir { path, .. }
            | SftpRequest::Rm { path, .. }
            | SftpRequest::Rmdir { path }
            | SftpRequest::Chmod { path, .. }
            | SftpRequest::Touch { path, .. } => vec![path],
        }
    }

    /// The paths the operation acts on, to be resolved and confined (a
    /// symlink's target is text; reading through the link is what counts).
    pub fn acted_on_mut(&mut self) -> Vec<&mut String> {
        match self {
            SftpRequest::Mv { from, to } => vec![from, to],
            SftpRequest::Ls { path }
            | SftpRequest::Stat { path, .. }
            | SftpRequest::Mkdir { path, .. }
            | SftpRequest::Rm { path, .. }
            | SftpRequest::Rmdir { path }
            | SftpRequest::Chmod { path, .. }
            | SftpRequest::Touch { path, .. }
            | SftpRequest::Symlink { link: path, .. } => vec![path],
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SftpResponse {
    Entries(Vec<FileInfo>),
    Info(FileInfo),
    Done,
}

/// `POST /v1/copy`: a file copied from one profile's server to another's
/// (or within one), relayed by the daemon; the answer is [`Uploaded`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CopyRequest {
    pub from_profile: String,
    pub from_path: String,
    pub to_profile: String,
    pub to_path: String,
    /// Keep the source's mode and times (`cp -p`).
    #[serde(default)]
    pub preserve: bool,
    /// Write into the target instead of renaming over it.
    #[serde(default)]
    pub inplace: bool,
}

/// The answer to an upload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Uploaded {
    pub path: String,
    pub bytes: u64,
    /// SHA-256 of what was written, hex.
    pub sha256: String,
    /// What could not be done as asked, though the file is complete (an FTP
    /// server that cannot set modes or times).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// `Upgrade:` token of an upload whose local file the CLI hands over
/// (`POST /v1/profiles/{name}/files/handover`): after the upgrade, one byte
/// carrying the open file's descriptor (`SCM_RIGHTS`, as
/// [`crate::agent::send_fd`]); tetherd reads it from where it stands to its
/// end (the CLI watches the descriptor's offset for progress), writes the
/// target as an upload does, answers one JSON [`UploadReply`] and closes.
/// The CLI closing its side first ends the upload, the target untouched.
pub const HANDOVER_PROTOCOL: &str = "tether-file/1";

/// A download into a local file the CLI created and hands over, open for
/// writing (`POST /v1/profiles/{name}/files/fetch`, upgraded to
/// [`HANDOVER_PROTOCOL`]): tetherd answers with JSON lines, a
/// [`FetchEvent::Started`] once the remote file is open, then `Done` or
/// `Error`. The CLI then gives the file its attributes and renames it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FetchEvent {
    Started(FetchStarted),
    Done(Downloaded),
    Error(crate::error::ApiError),
}

/// The remote file being fetched, as stat saw it when it was opened.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FetchStarted {
    pub size: u64,
    pub mode: u32,
    pub mtime: u64,
}

/// A finished fetch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Downloaded {
    /// The remote path as the server resolved it.
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}

/// `Upgrade:` token of a batch: the files of one copy, each handed over as
/// in [`HANDOVER_PROTOCOL`], on one connection
/// (`POST /v1/profiles/{name}/files/batch/upload` or `.../download`).
///
/// The CLI sends items: a 4-byte big-endian length, that many bytes of a
/// JSON [`BatchItem`], then one byte carrying the open local file
/// (`SCM_RIGHTS`, as [`crate::agent::send_fd`]); an item of length 0 says
/// that no more come. tetherd works on up to [`FILES_IN_FLIGHT`] items at a
/// time and answers JSON lines of [`BatchEvent`], each naming its item;
/// after the last item's answer it writes the batch's audit records to
/// disk, answers [`BatchEvent::Finished`] and closes. The CLI closing its
/// side before the empty item ends the batch: files under way are left as
/// a broken single transfer leaves them (no half target).
pub const BATCH_PROTOCOL: &str = "tether-batch/1";

/// Longest item a batch takes.
pub const MAX_BATCH_ITEM: usize = 64 * 1024;

/// One file of a batch: an upload's target (with its mode and time) or a
/// download's source (`path` alone).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchItem {
    /// The CLI's number for it, unique within the batch.
    pub id: u64,
    pub query: FileQuery,
}

/// What tetherd answers on a batch, a JSON line each.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchEvent {
    /// A download's remote file is open.
    Started { id: u64, started: FetchStarted },
    /// An upload is in place.
    Uploaded { id: u64, uploaded: Uploaded },
    /// A download is written into its handed-over file.
    Downloaded { id: u64, downloaded: Downloaded },
    /// An item failed; the others go on.
    Failed {
        id: u64,
        error: crate::error::ApiError,
    },
    /// Every item is answered and on the audit trail, on disk.
    Finished,
    /// The batch as a whole failed: what the items' answers said did
    /// happen, but is not on record as it should be.
    Error(crate::error::ApiError),
}

/// What tetherd answers on a hand-over's upgraded connection.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UploadReply {
    Done(Uploaded),
    Error(crate::error::ApiError),
}

/// Whether `name`, as a server listed it in a directory, names an entry of
/// that directory: not empty, not `.` or `..`, no `/` and no NUL. A name
/// that is not (`../x`, `a/b`) is a server's lie; joined to a local target
/// it would reach outside it (scp's CVE-2019-6111), so a listing leaves it
/// out and a tree's copy refuses it.
pub fn is_entry_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0'])
}

/// Percent-encodes a query value (everything but unreserved characters).
pub fn encode_query_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Reads `key` from a query string, percent-decoded; `Err` for a malformed
/// escape or invalid UTF-8, `Ok(None)` when absent.
pub fn query_value(query: &str, key: &str) -> Result<Option<String>, String> {
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k != key {
            continue;
        }
        let bytes = v.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'%' => {
                    let hex = bytes
                        .get(i + 1..i + 3)
                        .and_then(|h| std::str::from_utf8(h).ok())
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                        .ok_or_else(|| format!("malformed %-escape in {key}"))?;
                    out.push(hex);
                    i += 3;
                }
                b'+' => {
                    out.push(b' ');
                    i += 1;
                }
                b => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        return String::from_utf8(out)
            .map(Some)
            .map_err(|_| format!("{key} is not UTF-8"));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn only_names_of_entries_are_entry_names() {
        for name in ["a", ".hidden", "...", "a b", "a\\b", "é", "-rf"] {
            assert!(is_entry_name(name), "{name}");
        }
        for name in ["", ".", "..", "../x", "a/b", "/etc", "a/", "a\0b"] {
            assert!(!is_entry_name(name), "{name:?}");
        }
    }

    #[test]
    fn paths_survive_the_query_string() {
        for path in ["/srv/www/a b.txt", "/tmp/ünï 😀", "a&b=c%d+e", ""] {
            let query = format!("x=1&path={}&y=2", encode_query_value(path));
            assert_eq!(query_value(&query, "path").unwrap().as_deref(), Some(path));
        }
        assert_eq!(query_value("a=1", "path").unwrap(), None);
        assert!(query_value("path=%zz", "path").is_err());
        assert!(query_value("path=%ff", "path").is_err());
    }

    proptest! {
        #[test]
        fn any_string_round_trips(path in "\\PC{0,40}") {
            let query = format!("path={}", encode_query_value(&path));
            prop_assert_eq!(query_value(&query, "path").unwrap(), Some(path));
        }
    }
}

/// The query of `GET`/`PUT /v1/profiles/{name}/files`: the remote path,
/// and for an upload the mode and mtime to give it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileQuery {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime: Option<u64>,
    /// Give the file `mode` and `mtime` even where it exists (`cp -p`).
    #[serde(default)]
    pub preserve: bool,
    /// Write into the file as it is, instead of a new file renamed over it.
    #[serde(default)]
    pub inplace: bool,
}

impl crate::endpoint::Query for FileQuery {
    fn encode(&self) -> String {
        let mut query = format!("path={}", encode_query_value(&self.path));
        if let Some(mode) = self.mode {
            query.push_str(&format!("&mode={mode}"));
        }
        if let Some(mtime) = self.mtime {
            query.push_str(&format!("&mtime={mtime}"));
        }
        if self.preserve {
            query.push_str("&preserve=1");
        }
        if self.inplace {
            query.push_str("&inplace=1");
        }
        query
    }
}
