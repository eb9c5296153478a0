//! Reading OpenSSH's client configuration (ssh_config(5)) as far as
//! `tether profile import` needs it: `Host` blocks, `Include`, and the
//! first value of each keyword for a host, as ssh takes it.
//!
//! `Match` blocks are not evaluated: their lines are set aside and named in
//! the import's summary, never applied by guess.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// How deep `Include` may nest (ssh's limit too).
const MAX_INCLUDE_DEPTH: usize = 16;

/// One `Host` (or `Match`) block's lines, in file order.
#[derive(Debug, Default)]
struct Block {
    /// `None` for a `Match` block (not evaluated).
    patterns: Option<Vec<String>>,
    options: Vec<(String, String)>,
}

#[derive(Debug, Default)]
pub struct SshConfig {
    blocks: Vec<Block>,
    /// What could not be taken as ssh would take it, for the summary.
    pub notes: Vec<String>,
}

impl SshConfig {
    /// Reads `path` and what it includes; `home` is where `~` and relative
    /// `Include`s of a user's configuration point.
    pub fn read(path: &Path, home: &Path) -> std::io::Result<SshConfig> {
        let mut config = SshConfig {
            blocks: vec![Block {
                patterns: Some(vec!["*".into()]),
                options: Vec::new(),
            }],
            notes: Vec::new(),
        };
        let text = std::fs::read_to_string(path)?;
        config.parse(&text, path, home, 0);
        Ok(config)
    }

    fn parse(&mut self, text: &str, file: &Path, home: &Path, depth: usize) {
        for (number, line) in text.lines().enumerate() {
            let Some((keyword, value)) = split_line(line) else {
                continue;
            };
            let keyword = keyword.to_ascii_lowercase();
            match keyword.as_str() {
                "host" => self.blocks.push(Block {
                    patterns: Some(words(&value)),
                    options: Vec::new(),
                }),
                "match" => {
                    self.notes.push(format!(
                        "{}:{}: `Match {value}` is not evaluated; its lines are not used",
                        file.display(),
                        number + 1
                    ));
                    self.blocks.push(Block::default());
                }
                "include" => {
                    for pattern in words(&value) {
                        self.include(&pattern, file, home, depth);
                    }
                }
                _ => {
                    if let Some(block) = self.blocks.last_mut() {
                        block.options.push((keyword, value));
                    }
                }
            }
        }
    }

    fn include(&mut self, pattern: &str, file: &Path, home: &Path, depth: usize) {
        if depth >= MAX_INCLUDE_DEPTH {
            self.notes.push(format!(
                "{}: Include {pattern} nests too deep",
                file.display()
            ));
            return;
        }
        let path = expand_tilde(pattern, home);
        // Relative paths are in ~/.ssh for a user's configuration.
        let path = if path.is_absolute() {
            path
        } else {
            home.join(".ssh").join(path)
        };
        let (dir, name) = match (path.parent(), path.file_name().and_then(|n| n.to_str())) {
            (Some(dir), Some(name)) => (dir.to_path_buf(), name.to_owned()),
            _ => return,
        };
        if dir.to_string_lossy().contains(['*', '?']) {
            self.notes.push(format!(
                "Include {pattern}: wildcards are read in the last part of a path only"
            ));
            return;
        }
        let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
            Ok(entries) => entries
                .flatten()
                .filter(|e| e.file_name().to_str().is_some_and(|n| glob(&name, n)))
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect(),
            Err(_) => Vec::new(),
        };
        // glob(3) sorts, and so does ssh.
        files.sort();
        for included in files {
            match std::fs::read_to_string(&included) {
                // An included file's lines belong to the block it sits in
                // until its own first Host.
                Ok(text) => self.parse(&text, &included, home, depth + 1),
                Err(error) => self
                    .notes
                    .push(format!("cannot read {}: {error}", included.display())),
            }
        }
    }

    /// The names a `Host` line names literally (no wildcard, no `!`): the
    /// hosts an import offers.
    pub fn hosts(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for block in &self.blocks {
            for pattern in block.patterns.iter().flatten() {
                let literal = !pattern.contains(['*', '?', '!']);
                if literal && !out.contains(pattern) {
                    out.push(pattern.clone());
                }
            }
        }
        out
    }

    /// The options that apply to `host`, first value of each keyword first
    /// (IdentityFile keeps every value, in order), as ssh reads them.
    pub fn options_for(&self, host: &str) -> Options {
        let mut values: HashMap<String, Vec<String>> = HashMap::new();
        for block in &self.blocks {
            let Some(patterns) = &block.patterns else {
                continue;
            };
            if !host_matches(patterns, host) {
                continue;
            }
            for (keyword, value) in &block.options {
                let entry = values.entry(keyword.clone()).or_default();
                if entry.is_empty() || keyword == "identityfile" {
                    entry.push(value.clone());
                }
            }
        }
        Options { values }
    }
}

/// A host's options: keywords in lower case.
#[derive(Debug, Default)]
pub struct Options {
    values: HashMap<String, Vec<String>>,
}

impl Options {
    pub fn first(&self, keyword: &str) -> Option<&str> {
        self.values
            .get(keyword)
            .and_then(|v| v.first())
            .map(String::as_str)
    }

    pub fn all(&self, keyword: &str) -> &[String] {
        self.values.get(keyword).map_or(&[], Vec::as_slice)
    }
}

/// `Keyword value` or `Keyword=value`; `None` for blanks and comments.
fn split_line(line: &str) -> Option<(String, String)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let at = line.find(|c: char| c.is_whitespace() || c == '=')?;
    let keyword = &line[..at];
    let rest = line[at..].trim_start();
    let rest = rest.strip_prefix('=').unwrap_or(rest).trim();
    Some((keyword.to_owned(), rest.to_owned()))
}

/// Whitespace-separated words, `"..."` keeping spaces.
pub fn words(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in value.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    out.push(std::mem::take(&mut current));
                    any = false;
                }
            }
            c => {
                current.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(current);
    }
    out
}

/// Whether `host` matches a `Host` line: some pattern matches and no
/// negated one does.
fn host_matches(patterns: &[String], host: &str) -> bool {
    let mut matched = false;
    for pattern in patterns {
        match pattern.strip_prefix('!') {
            Some(negated) if glob(negated, host) => return false,
            Some(_) => {}
            None => matched |= glob(pattern, host),
        }
    }
    matched
}

/// `*` and `?` wildcards, as ssh's `match_pattern` (case-insensitive for
/// host names).
pub fn glob(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

/// `~` and `~/...` as the home directory.
pub fn expand_tilde(path: &str, home: &Path) -> PathBuf {
    match path.strip_prefix('~') {
        Some("") => home.to_path_buf(),
        Some(rest) if rest.starts_with('/') => home.join(rest.trim_start_matches('/')),
        _ => PathBuf::from(path),
    }
}

/// ssh's `%` tokens in a value, for those an import can know: `%h` the
/// host name, `%p` the port, `%r` the remote user, `%n` the alias, `%u`
/// the local user, `%d` the home directory, `%%` a percent sign. Any other
/// token is an error naming it.
pub fn expand_tokens(value: &str, tokens: &[(char, &str)]) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some(token) => match tokens.iter().find(|(t, _)| *t == token) {
                Some((_, value)) => out.push_str(value),
                None => return Err(format!("%{token} in {value:?} is not known to tether")),
            },
            None => return Err(format!("{value:?} ends with a lone %")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> SshConfig {
        let mut config = SshConfig {
            blocks: vec![Block {
                patterns: Some(vec!["*".into()]),
                options: Vec::new(),
            }],
            notes: Vec::new(),
        };
        config.parse(text, Path::new("config"), Path::new("/home/u"), 0);
        config
    }

    #[test]
    fn the_first_value_wins_and_wildcards_apply_as_ssh_applies_them() {
        let config = config(
            "# a comment\n\
             Port 2200\n\
             Host db1 db2\n  HostName 10.0.0.5\n  User=postgres\n  IdentityFile ~/.ssh/db\n\
             Host db*  !db2\n  User other\n  ConnectTimeout 7\n\
             Match host db1\n  User matched\n\
             Host *\n  User fallback\n  IdentityFile ~/.ssh/id\n  ProxyJump \"bastion\"\n",
        );
        assert_eq!(config.hosts(), ["db1", "db2"]);
        let db1 = config.options_for("db1");
        assert_eq!(db1.first("hostname"), Some("10.0.0.5"));
        assert_eq!(db1.first("user"), Some("postgres"));
        assert_eq!(db1.first("port"), Some("2200"));
        assert_eq!(db1.first("connecttimeout"), Some("7"));
        assert_eq!(db1.all("identityfile"), ["~/.ssh/db", "~/.ssh/id"]);
        assert_eq!(db1.first("proxyjump"), Some("\"bastion\""));
        // The negation keeps db2 out of `db*`.
        assert_eq!(config.options_for("db2").first("connecttimeout"), None);
        assert_eq!(config.options_for("other").first("user"), Some("fallback"));
        assert_eq!(config.notes.len(), 1, "{:?}", config.notes);
    }

    #[test]
    fn globs_words_and_tokens() {
        assert!(glob("*.example.net", "db.EXAMPLE.net"));
        assert!(glob("db?", "db1"));
        assert!(!glob("db?", "db12"));
        assert_eq!(words("a \"b c\" d"), ["a", "b c", "d"]);
        assert_eq!(
            expand_tokens(
                "%d/.ssh/%h_%r%%",
                &[('d', "/home/u"), ('h', "db"), ('r', "pg")]
            )
            .unwrap(),
            "/home/u/.ssh/db_pg%"
        );
        assert!(expand_tokens("%C", &[]).is_err());
        assert_eq!(
            expand_tilde("~/.ssh/x", Path::new("/home/u")),
            Path::new("/home/u/.ssh/x")
        );
    }
}
