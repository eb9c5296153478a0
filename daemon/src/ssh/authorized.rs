//! Editing an `authorized_keys` file as sshd reads it (sshd(8),
//! AUTHORIZED_KEYS FILE FORMAT): one key per line, `[options] keytype
//! base64 [comment]`, options comma-separated and possibly quoted (with
//! spaces inside the quotes). Lines are found by their key (type and
//! base64), never by comment; everything else in the file is kept as it
//! was, byte for byte.

/// Key types a line's key may start with.
fn is_key_type(word: &str) -> bool {
    word.starts_with("ssh-")
        || word.starts_with("ecdsa-sha2-")
        || word.starts_with("sk-ssh-")
        || word.starts_with("sk-ecdsa-")
}

/// A line's parts: its options (as written) and its key (type and base64).
struct Line<'a> {
    options: &'a str,
    key_type: &'a str,
    blob: &'a str,
}

/// Splits `line` as sshd does: words separated by spaces or tabs, a double
/// quote keeping them together until the next one.
fn words(line: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => {
                quoted = !quoted;
                start.get_or_insert(i);
            }
            ' ' | '\t' if !quoted => {
                if let Some(s) = start.take() {
                    out.push((s, &line[s..i]));
                }
            }
            _ => {
                start.get_or_insert(i);
            }
        }
    }
    if let Some(s) = start {
        out.push((s, &line[s..]));
    }
    out
}

fn parse(line: &str) -> Option<Line<'_>> {
    let trimmed = line.trim_start();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return None;
    }
    let words = words(line);
    let at = words.iter().position(|(_, w)| is_key_type(w))?;
    let (_, key_type) = words[at];
    let (_, blob) = *words.get(at + 1)?;
    // Everything before the key type, as written.
    let options = match at {
        0 => "",
        _ => {
            let (first, _) = words[0];
            let (last, word) = words[at - 1];
            &line[first..last + word.len()]
        }
    };
    Some(Line {
        options,
        key_type,
        blob,
    })
}

/// The key of a public key line (`type base64 [comment]`).
pub fn key_of(public_line: &str) -> Option<(String, String)> {
    let line = parse(public_line)?;
    Some((line.key_type.to_owned(), line.blob.to_owned()))
}

/// Whether `text` has a line for the key `blob`.
pub fn has_key(text: &str, blob: &str) -> bool {
    text.lines().filter_map(parse).any(|l| l.blob == blob)
}

/// Why a file cannot be changed as asked.
#[derive(Debug, PartialEq, Eq)]
pub struct NotFound;

/// `text` with a line for the new key appended: with the options of the
/// old key's line (`old_blob`), so that restrictions the old key had
/// (`from=`, `command=`, `restrict`) stay on the new one. Without an old
/// key (a password profile moving to a key) the line has no options. The
/// old key's line must be there.
pub fn with_new_key(
    text: &str,
    old_blob: Option<&str>,
    new_key: &str,
    comment: &str,
) -> Result<String, NotFound> {
    let options = match old_blob {
        Some(blob) => text
            .lines()
            .filter_map(parse)
            .find(|l| l.blob == blob)
            .ok_or(NotFound)?
            .options
            .to_owned(),
        None => String::new(),
    };
    let mut out = text.to_owned();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    if !options.is_empty() {
        out.push_str(&options);
        out.push(' ');
    }
    out.push_str(new_key);
    if !comment.is_empty() {
        out.push(' ');
        out.push_str(comment);
    }
    out.push('\n');
    Ok(out)
}

/// `text` without the lines of the key `blob`; every other line as it was.
pub fn without_key(text: &str, blob: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let keep = parse(line.trim_end_matches(['\n', '\r'])).is_none_or(|l| l.blob != blob);
        if keep {
            out.push_str(line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIOLDOLDOLD";
    const OTHER: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIOTHEROTHER";

    fn file() -> String {
        format!(
            "# managed by hand\n\
             ssh-ed25519 {OTHER} alice@laptop\n\
             from=\"10.0.0.0/8,192.168.1.1\",command=\"/usr/bin/backup --at 'x y'\",no-pty ssh-ed25519 {OLD} tether\n\
             \n"
        )
    }

    #[test]
    fn the_new_key_keeps_the_old_keys_options() {
        let text = file();
        let new = with_new_key(&text, Some(OLD), "ssh-ed25519 AAAANEW", "tether:web1").unwrap();
        assert!(new.starts_with(&text));
        assert!(new.ends_with(
            "from=\"10.0.0.0/8,192.168.1.1\",command=\"/usr/bin/backup --at 'x y'\",no-pty \
             ssh-ed25519 AAAANEW tether:web1\n"
        ));
        assert!(has_key(&new, "AAAANEW") && has_key(&new, OLD));
        let done = without_key(&new, OLD);
        assert!(!has_key(&done, OLD));
        assert!(has_key(&done, OTHER) && has_key(&done, "AAAANEW"));
        assert!(done.starts_with("# managed by hand\n"));
        assert_eq!(done.lines().count(), text.lines().count());
    }

    #[test]
    fn a_missing_old_key_is_an_error_and_a_password_profile_gets_a_plain_line() {
        assert_eq!(
            with_new_key(&file(), Some("AAAANOTTHERE"), "ssh-ed25519 AAAANEW", ""),
            Err(NotFound)
        );
        let new = with_new_key("ssh-rsa AAAAB3 x", None, "ssh-ed25519 AAAANEW", "c").unwrap();
        assert_eq!(new, "ssh-rsa AAAAB3 x\nssh-ed25519 AAAANEW c\n");
        assert_eq!(
            with_new_key("", None, "ssh-ed25519 AAAANEW", "").unwrap(),
            "ssh-ed25519 AAAANEW\n"
        );
    }

    #[test]
    fn comments_and_lookalikes_are_not_keys() {
        let text =
            format!("# ssh-ed25519 {OLD}\nenvironment=\"ssh-ed25519 {OLD}\" ssh-rsa AAAAB3 x\n");
        assert!(!has_key(&text, OLD));
        assert_eq!(without_key(&text, OLD), text);
        assert_eq!(
            key_of("ssh-ed25519 AAAAC3 comment here"),
            Some(("ssh-ed25519".into(), "AAAAC3".into()))
        );
    }
}
