//! Quoting words for the remote login shell, whichever it is.
//!
//! SSH delivers one command string, which the account's login shell parses:
//! sh, dash, bash, zsh, ksh, busybox sh, fish, tcsh or csh. Their quoting
//! rules differ in ways that matter:
//! - fish treats `\'` and `\\` as escapes even inside single quotes;
//! - tcsh and csh expand `!` (history) even inside single quotes, and end
//!   the command at a newline even inside quotes;
//! - fish expands `%self` and zsh `=cmd` in bare words.
//!
//! So a word is written as single-quoted runs of everything except `'`, `\`
//! and `!`, which are written outside the quotes, each after a backslash:
//! `it's!` becomes `'it'\''s'\!`. Every one of those shells reads that back
//! as the same word (checked against each real shell by the tests here and
//! by the end-to-end battery against accounts with each login shell).
//! A newline has no spelling that all of them read back (csh and tcsh
//! refuse it inside quotes, and a backslash-newline means something else in
//! each), so a word holding one is refused: [`Unquotable`]. A word of only
//! letters, digits and `_ - . / : @ , +` stays bare.

/// A word that no quoting keeps a word under every login shell.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "an argument contains a line break, which cannot be passed safely to every remote login \
     shell (csh and tcsh end the command there, even inside quotes); pass the text another way, \
     for example on stdin"
)]
pub struct Unquotable;

fn bare(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"_-./:@,+".contains(&b)
}

/// `word` quoted so that every supported login shell reads it back as
/// exactly one word, unchanged.
pub fn quote(word: &str) -> Result<String, Unquotable> {
    if word.contains('\n') {
        return Err(Unquotable);
    }
    if !word.is_empty() && word.bytes().all(bare) {
        return Ok(word.to_owned());
    }
    let mut out = String::with_capacity(word.len() + 2);
    let mut quoted = false;
    for c in word.chars() {
        if matches!(c, '\'' | '\\' | '!') {
            if quoted {
                out.push('\'');
                quoted = false;
            }
            out.push('\\');
            out.push(c);
        } else {
            if !quoted {
                out.push('\'');
                quoted = true;
            }
            out.push(c);
        }
    }
    if quoted {
        out.push('\'');
    }
    if out.is_empty() {
        out.push_str("''");
    }
    Ok(out)
}

/// Every word quoted, joined by spaces: a command line that runs exactly
/// `argv` under any supported login shell.
pub fn quote_all(argv: &[String]) -> Result<String, Unquotable> {
    let words = argv
        .iter()
        .map(|word| quote(word))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(words.join(" "))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The login shells the quoting must hold for, as `(name, argv prefix)`.
    pub(crate) const SHELLS: &[(&str, &[&str])] = &[
        ("sh", &["sh", "-c"]),
        ("dash", &["dash", "-c"]),
        ("bash", &["bash", "-c"]),
        ("zsh", &["zsh", "-c"]),
        ("ksh", &["ksh", "-c"]),
        ("fish", &["fish", "-c"]),
        ("tcsh", &["tcsh", "-c"]),
        ("csh", &["csh", "-c"]),
        ("busybox sh", &["busybox", "sh", "-c"]),
    ];

    fn installed(program: &str) -> bool {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {program} >/dev/null"))
            .status()
            .is_ok_and(|s| s.success())
    }

    /// The shells present here; with CI=true every one of them must be.
    fn shells() -> Vec<(&'static str, &'static [&'static str])> {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
        SHELLS
            .iter()
            .copied()
            .filter(|(name, argv)| {
                let present = installed(argv[0]);
                assert!(present || !ci, "{name} is missing and CI=true");
                present
            })
            .collect()
    }

    /// What `shell` makes of `printf '%s\0' WORDS...`, one entry per word.
    fn round_trip(shell: &[&str], words: &[String]) -> Vec<String> {
        let mut argv = vec!["printf".to_owned(), "%s\\000".to_owned()];
        argv.extend_from_slice(words);
        let (program, args) = shell.split_first().unwrap();
        let output = std::process::Command::new(program)
            .args(args)
            .arg(quote_all(&argv).unwrap())
            .env("LC_ALL", "C.UTF-8")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let mut parts: Vec<String> = text.split('\0').map(str::to_owned).collect();
        parts.pop();
        parts
    }

    #[test]
    fn plain_words_stay_bare_and_others_are_quoted() {
        assert_eq!(quote("db_1.sql").unwrap(), "db_1.sql");
        assert_eq!(quote("").unwrap(), "''");
        assert_eq!(quote("a b").unwrap(), "'a b'");
        assert_eq!(quote("it's!").unwrap(), r"'it'\''s'\!");
        assert_eq!(quote(r"a\b").unwrap(), r"'a'\\'b'");
        assert_eq!(quote("%self").unwrap(), "'%self'");
        assert_eq!(quote("=ls").unwrap(), "'=ls'");
        assert_eq!(quote("a\nb"), Err(Unquotable));
    }

    #[test]
    fn hostile_words_stay_words_in_every_shell() {
        let mut words: Vec<String> = [
            "$(id)",
            "`id`",
            "a;b",
            "'",
            "''",
            "\"",
            "\\",
            "\\'",
            "*",
            "~",
            "~root",
            "-n",
            "!!",
            "!$",
            "a!b",
            "\\!",
            "%self",
            "=ls",
            "^x",
            "{a,b}",
            "$HOME",
            "a\rb",
            "a\tb",
            "#c",
            "|id",
            "&id",
            "\x1b[31m",
            "é ü 日本",
            "\u{f600}",
            "\u{fdd0}",
            "",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        words.extend(
            (1u8..128)
                .filter(|b| *b != b'\n')
                .map(|b| char::from(b).to_string()),
        );
        for (name, shell) in shells() {
            assert_eq!(round_trip(shell, &words), words, "under {name}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn any_word_without_a_newline_survives_every_shell(
            words in proptest::collection::vec("[^\\x00\\n]{0,10}", 1..4)
        ) {
            for (name, shell) in shells() {
                prop_assert_eq!(round_trip(shell, &words), words.clone(), "under {}", name);
            }
        }
    }
}
