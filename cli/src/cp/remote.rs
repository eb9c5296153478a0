//! Remote paths as scp reads them: globs (`*`, `?`, `[...]`) matched on the
//! server's listing, without a shell; and copies from one server to another
//! (or within one), relayed by the daemon file by file.

use tether_api::endpoint as ep;
use tether_api::error::ErrorCode;
use tether_api::files::{CopyRequest, FileInfo, FileKind, SftpRequest, SftpResponse, Uploaded};

use super::{Copier, bump, file_name, join};
use crate::failure::{Failure, Result};

/// Whether a path has glob characters to expand.
pub fn has_glob(path: &str) -> bool {
    path.contains(['*', '?', '['])
}

/// Shell pattern matching of one name: `*`, `?`, `[abc]`, `[a-z]`,
/// `[!x]`, and `\` quoting the next character. A leading `.` is matched
/// only by a pattern that starts with one, as shells do.
pub fn matches(pattern: &str, name: &str) -> bool {
    if name.starts_with('.') && !pattern.starts_with('.') {
        return false;
    }
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    match_from(&pattern, &name)
}

fn match_from(pattern: &[char], name: &[char]) -> bool {
    match pattern.first() {
        None => name.is_empty(),
        Some('*') => (0..=name.len()).any(|skip| match_from(&pattern[1..], &name[skip..])),
        Some('?') => !name.is_empty() && match_from(&pattern[1..], &name[1..]),
        Some('[') => match (class(&pattern[1..]), name.first()) {
            (Some((set, rest)), Some(c)) => set(*c) && match_from(rest, &name[1..]),
            // An unclosed `[` is itself.
            (None, Some('[')) => match_from(&pattern[1..], &name[1..]),
            _ => false,
        },
        Some('\\') if pattern.len() > 1 => {
            name.first() == Some(&pattern[1]) && match_from(&pattern[2..], &name[1..])
        }
        Some(c) => name.first() == Some(c) && match_from(&pattern[1..], &name[1..]),
    }
}

/// A bracket class after its `[`: the test and what follows its `]`.
fn class(pattern: &[char]) -> Option<(impl Fn(char) -> bool + '_, &[char])> {
    let negated = matches!(pattern.first(), Some('!' | '^'));
    let body_start = usize::from(negated);
    // A `]` right after the opening (or its `!`) is a member.
    let close = pattern
        .iter()
        .enumerate()
        .skip(body_start + 1)
        .find(|(_, c)| **c == ']')
        .map(|(i, _)| i)?;
    let body = &pattern[body_start..close];
    let test = move |c: char| {
        let mut i = 0;
        let mut hit = false;
        while i < body.len() {
            if i + 2 < body.len() && body[i + 1] == '-' {
                hit |= body[i] <= c && c <= body[i + 2];
                i += 3;
            } else {
                hit |= body[i] == c;
                i += 1;
            }
        }
        hit != negated
    };
    Some((test, &pattern[close + 1..]))
}

impl Copier<'_> {
    /// Runs one file operation on `profile`'s server.
    pub(super) async fn op_on(&self, profile: &str, request: &SftpRequest) -> Result<SftpResponse> {
        Ok(self
            .client
            .call(
                &ep::FileOperation {
                    name: profile.to_owned(),
                },
                request,
            )
            .await?)
    }

    /// What `path` is on `profile`'s server (through a final link with
    /// `follow`).
    pub(super) async fn stat_on(
        &self,
        profile: &str,
        path: &str,
        follow: bool,
    ) -> Result<FileInfo> {
        match self
            .op_on(
                profile,
                &SftpRequest::Stat {
                    path: path.to_owned(),
                    follow,
                },
            )
            .await?
        {
            SftpResponse::Info(info) => Ok(info),
            _ => Err(Failure::new(
                crate::failure::PROTOCOL_ERROR,
                "stat gave no file information",
            )),
        }
    }

    async fn list_on(&self, profile: &str, dir: &str) -> Result<Vec<FileInfo>> {
        match self
            .op_on(
                profile,
                &SftpRequest::Ls {
                    path: dir.to_owned(),
                },
            )
            .await?
        {
            SftpResponse::Entries(entries) => Ok(entries),
            _ => Err(Failure::new(
                crate::failure::PROTOCOL_ERROR,
                "ls gave no entries",
            )),
        }
    }

    /// The paths a remote `pattern` names on `profile`'s server, matched
    /// component by component on the listings (sorted); an error when
    /// nothing matches, as scp says.
    pub(super) async fn expand_glob(&self, profile: &str, pattern: &str) -> Result<Vec<String>> {
        const MAX_MATCHES: usize = 100_000;
        let absolute = pattern.starts_with('/');
        let mut found: Vec<String> = vec![if absolute { "/".into() } else { String::new() }];
        for part in pattern.split('/').filter(|p| !p.is_empty()) {
            let mut next = Vec::new();
            for prefix in &found {
                if !has_glob(part) {
                    next.push(if prefix.is_empty() {
                        part.to_owned()
                    } else {
                        join(prefix, part)
                    });
                    continue;
                }
                let dir = if prefix.is_empty() {
                    "."
                } else {
                    prefix.as_str()
                };
                let Ok(entries) = self.list_on(profile, dir).await else {
                    continue;
                };
                for entry in entries.iter().filter(|e| matches(part, &e.name)) {
                    next.push(if prefix.is_empty() {
                        entry.name.clone()
                    } else {
                        join(prefix, &entry.name)
                    });
                }
                if next.len() > MAX_MATCHES {
                    return Err(Failure::usage(format!(
                        "{pattern} matches over {MAX_MATCHES} paths"
                    )));
                }
            }
            found = next;
        }
        found.sort();
        if found.is_empty() || found == [String::new()] {
            return Err(Failure::new(
                "no_such_file",
                format!("{profile}:{pattern}: no match"),
            ));
        }
        Ok(found)
    }

    /// Copies remote `sources` (profile, path) to `dest` on `dest_profile`,
    /// the daemon relaying each file.
    pub(super) async fn relay_all(
        &self,
        sources: &[(String, String)],
        dest_profile: &str,
        dest: &str,
        recursive: bool,
    ) -> Result<()> {
        let is_dir = self.remote_dir_on(dest_profile, dest).await?;
        if (sources.len() > 1 || dest.ends_with('/')) && !is_dir {
            return Err(Failure::usage(format!(
                "{dest_profile}:{dest} is not a directory (several sources, or a name ending in \
                 /, need an existing directory)"
            )));
        }
        for (profile, path) in sources {
            let target = if is_dir {
                join(dest, file_name(path)?)
            } else {
                dest.to_owned()
            };
            self.relay_path(profile, path, dest_profile, &target, recursive)
                .await?;
        }
        Ok(())
    }

    pub(super) async fn remote_dir_on(&self, profile: &str, path: &str) -> Result<bool> {
        match self
            .op_on(
                profile,
                &SftpRequest::Stat {
                    path: path.to_owned(),
                    follow: true,
                },
            )
            .await
        {
            Ok(SftpResponse::Info(info)) => Ok(info.kind == FileKind::Dir),
            Err(failure) if failure.is(ErrorCode::NoSuchFile) => Ok(false),
            Err(failure) => Err(failure),
            Ok(_) => Ok(false),
        }
    }

    async fn relay_path(
        &self,
        profile: &str,
        path: &str,
        dest_profile: &str,
        target: &str,
        recursive: bool,
    ) -> Result<()> {
        let info = self.stat_on(profile, path, self.follow).await?;
        match info.kind {
            FileKind::Symlink => {
                self.op_on(
                    dest_profile,
                    &SftpRequest::Symlink {
                        target: info.target.unwrap_or_default(),
                        link: target.to_owned(),
                    },
                )
                .await?;
                bump(&self.summary.symlinks, 1);
                Ok(())
            }
            FileKind::Dir => {
                if !recursive {
                    return Err(Failure::usage(format!(
                        "{profile}:{path} is a directory: copy it with -r"
                    )));
                }
                self.op_on(
                    dest_profile,
                    &SftpRequest::Mkdir {
                        path: target.to_owned(),
                        parents: true,
                        mode: self.preserve.then_some(info.mode),
                    },
                )
                .await?;
                bump(&self.summary.dirs, 1);
                for entry in self.list_on(profile, path).await? {
                    Box::pin(self.relay_path(
                        profile,
                        &join(path, &entry.name),
                        dest_profile,
                        &join(target, &entry.name),
                        true,
                    ))
                    .await?;
                }
                if self.preserve {
                    self.op_on(
                        dest_profile,
                        &SftpRequest::Touch {
                            path: target.to_owned(),
                            mtime: info.mtime,
                        },
                    )
                    .await?;
                }
                Ok(())
            }
            _ => {
                self.progress.start_file(file_name(path)?, Some(info.size));
                let copied: Uploaded = self
                    .client
                    .call(
                        &ep::CopyFile {},
                        &CopyRequest {
                            from_profile: profile.to_owned(),
                            from_path: path.to_owned(),
                            to_profile: dest_profile.to_owned(),
                            to_path: target.to_owned(),
                            preserve: self.preserve,
                            inplace: self.inplace,
                        },
                    )
                    .await?;
                self.progress.add(copied.bytes);
                for warning in &copied.warnings {
                    self.progress.warn(&format!("{}: {warning}", copied.path));
                }
                self.progress.end_file();
                bump(&self.summary.files, 1);
                bump(&self.summary.bytes, copied.bytes);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_as_shells_do() {
        assert!(matches("*.log", "app.log"));
        assert!(!matches("*.log", ".hidden.log"));
        assert!(matches(".*", ".profile"));
        assert!(matches("a?c", "abc"));
        assert!(!matches("a?c", "ac"));
        assert!(matches("[a-c]x", "bx"));
        assert!(!matches("[!a-c]x", "bx"));
        assert!(matches("[!a-c]x", "dx"));
        assert!(matches("[]]", "]"));
        assert!(matches("\\*", "*"));
        assert!(!matches("\\*", "x"));
        assert!(matches("[", "["));
        assert!(matches("*", "日本"));
        assert!(has_glob("/var/log/*.gz") && !has_glob("/etc/hosts"));
    }
}
