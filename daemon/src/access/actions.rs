//! Named actions: argv templates with typed parameters.
//!
//! A template is a list of words. A word is literal text with placeholders
//! `{name:pattern}`; `{{` and `}}` are literal braces. `{name!:pattern}`
//! marks a parameter sensitive: the audit trail records an HMAC of its value,
//! never the value. A parameter's pattern
//! is a regular expression the whole value must match; a parameter used twice
//! gives its pattern once (or the same one each time).
//!
//! A request is `ACTION [key=value ...]` and nothing else: every word after
//! the action is `key=value` with a known key, each key once, every key
//! present. Values are substituted into their words, and every word is then
//! quoted for the remote shell: a value is never shell text.

use std::collections::{BTreeMap, BTreeSet};

use regex_lite::Regex;

/// Longest value accepted for a parameter.
pub const MAX_VALUE_LEN: usize = 4096;
/// Most words in a template.
pub const MAX_WORDS: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Param(String),
}

/// A checked template, ready to render.
#[derive(Debug, Clone)]
pub struct Template {
    words: Vec<Vec<Piece>>,
    params: BTreeMap<String, Regex>,
    sensitive: BTreeSet<String>,
    /// Parameters whose value may begin a word with `-`.
    dashes: BTreeSet<String>,
}

fn valid_param_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'_'))
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
        && name.len() <= 64
}

/// A name for an action: like a profile name.
pub fn valid_action_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && !name.starts_with(['-', '.'])
}

impl Template {
    pub fn parse(argv: &[String]) -> Result<Template, String> {
        if argv.is_empty() || argv[0].is_empty() {
            return Err("an action needs a command: its first word".into());
        }
        if argv.len() > MAX_WORDS {
            return Err(format!("an action has at most {MAX_WORDS} words"));
        }
        let mut patterns: BTreeMap<String, String> = BTreeMap::new();
        let mut marks = Marks::default();
        let mut words = Vec::new();
        for word in argv {
            if word.contains('\0') {
                return Err("a template word contains a NUL byte".into());
            }
            words.push(parse_word(word, &mut patterns, &mut marks)?);
        }
        if let Some(Piece::Param(_)) = words[0].first() {
            return Err("the command itself (the first word) cannot start with a parameter".into());
        }
        let mut params = BTreeMap::new();
        for (name, pattern) in patterns {
            if pattern.is_empty() {
                return Err(format!(
                    "parameter {name} has no pattern: write {{{name}:PATTERN}}"
                ));
            }
            let regex = Regex::new(&format!("^(?:{pattern})$"))
                .map_err(|e| format!("parameter {name}: bad pattern {pattern:?}: {e}"))?;
            params.insert(name, regex);
        }
        Ok(Template {
            words,
            params,
            sensitive: marks.sensitive,
            dashes: marks.dashes,
        })
    }

    /// Whether the audit trail must hide this parameter's value.
    pub fn is_sensitive(&self, name: &str) -> bool {
        self.sensitive.contains(name)
    }

    pub fn param_names(&self) -> impl Iterator<Item = &str> {
        self.params.keys().map(String::as_str)
    }

    /// The argv for `args` (the `key=value` words of a request).
    pub fn render(&self, args: &[String]) -> Result<Vec<String>, String> {
        let mut values: BTreeMap<&str, &str> = BTreeMap::new();
        for (n, arg) in args.iter().enumerate() {
            // Never the argument itself: it may be a sensitive value typed
            // without its key, and this message reaches the log.
            let Some((key, value)) = arg.split_once('=') else {
                return Err(format!(
                    "parameter {} is not key=value (the action takes {})",
                    n + 1,
                    self.usage()
                ));
            };
            let Some(regex) = self.params.get(key) else {
                let known: Vec<&str> = self.param_names().collect();
                return Err(if known.is_empty() {
                    format!("unknown parameter {key:?}: this action takes none")
                } else {
                    format!("unknown parameter {key:?}; it takes {}", known.join(", "))
                });
            };
            if values.insert(key, value).is_some() {
                return Err(format!("parameter {key} is given twice"));
            }
            if value.len() > MAX_VALUE_LEN || value.contains('\0') || !regex.is_match(value) {
                return Err(format!(
                    "the value of {key} does not match its pattern {}",
                    pattern_of(regex)
                ));
            }
        }
        let missing: Vec<&str> = self
            .param_names()
            .filter(|name| !values.contains_key(name))
            .collect();
        if !missing.is_empty() {
            return Err(format!("missing parameter(s): {}", missing.join(", ")));
        }
        let mut argv = Vec::with_capacity(self.words.len());
        for pieces in &self.words {
            let mut word = String::new();
            for piece in pieces {
                match piece {
                    Piece::Text(text) => word.push_str(text),
                    Piece::Param(name) => {
                        let value = values.get(name.as_str()).copied().unwrap_or("");
                        if word.is_empty() && value.starts_with('-') && !self.dashes.contains(name)
                        {
                            return Err(format!(
                                "the value of {name} starts with '-', which would read as an \
                                 option there; the action does not allow that"
                            ));
                        }
                        word.push_str(value);
                    }
                }
            }
            argv.push(word);
        }
        Ok(argv)
    }

    /// `key=VALUE ...` for messages.
    fn usage(&self) -> String {
        let keys: Vec<String> = self.param_names().map(|k| format!("{k}=VALUE")).collect();
        if keys.is_empty() {
            "no parameters".to_owned()
        } else {
            keys.join(" ")
        }
    }
}

/// The pattern as written, for messages.
fn pattern_of(regex: &Regex) -> &str {
    let full = regex.as_str();
    full.strip_prefix("^(?:")
        .and_then(|p| p.strip_suffix(")$"))
        .unwrap_or(full)
}

/// The modifiers written after parameter names.
#[derive(Default)]
struct Marks {
    sensitive: BTreeSet<String>,
    dashes: BTreeSet<String>,
}

fn parse_word(
    word: &str,
    patterns: &mut BTreeMap<String, String>,
    marks: &mut Marks,
) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut chars = word.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '{' if chars.peek().map(|(_, c)| *c) == Some('{') => {
                chars.next();
                text.push('{');
            }
            '}' if chars.peek().map(|(_, c)| *c) == Some('}') => {
                chars.next();
                text.push('}');
            }
            '}' => return Err(format!("unmatched }} in {word:?} (write }}}} for a brace)")),
            '{' => {
                let rest = &word[i + 1..];
                let end = closing_brace(rest)
                    .ok_or_else(|| format!("unclosed {{ in {word:?} (write {{{{ for a brace)"))?;
                let inner = &rest[..end];
                let (name, pattern) = inner.split_once(':').unwrap_or((inner, ""));
                let mut name = name;
                let (mut secret, mut dash) = (false, false);
                loop {
                    if let Some(rest) = name.strip_suffix('!').filter(|_| !secret) {
                        (name, secret) = (rest, true);
                    } else if let Some(rest) = name.strip_suffix('-').filter(|_| !dash) {
                        (name, dash) = (rest, true);
                    } else {
                        break;
                    }
                }
                if secret {
                    marks.sensitive.insert(name.to_owned());
                }
                if dash {
                    marks.dashes.insert(name.to_owned());
                }
                if !valid_param_name(name) {
                    return Err(format!(
                        "bad parameter name {name:?}: lower-case letters, digits and _"
                    ));
                }
                match patterns.get(name) {
                    Some(existing) if !pattern.is_empty() && existing != pattern => {
                        return Err(format!("parameter {name} has two different patterns"));
                    }
                    Some(_) if pattern.is_empty() => {}
                    _ => {
                        if !pattern.is_empty() || !patterns.contains_key(name) {
                            patterns.insert(name.to_owned(), pattern.to_owned());
                        }
                    }
                }
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(Piece::Param(name.to_owned()));
                // Skip what the placeholder spanned.
                let skip_to = i + 1 + end;
                while chars.peek().is_some_and(|(j, _)| *j <= skip_to) {
                    chars.next();
                }
            }
            c => text.push(c),
        }
    }
    if !text.is_empty() || pieces.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

/// Where the placeholder that starts `rest` ends: the first `}` at brace
/// depth 0, so patterns may hold `{n,m}` repetitions.
fn closing_brace(rest: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut escaped = false;
    for (i, c) in rest.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '{' => depth += 1,
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn renders_values_into_their_words() {
        let t = Template::parse(&words(&[
            "pg_dump",
            "--dbname={db:^[a-z_]+$}",
            "-f",
            "/backup/{db}.sql",
        ]))
        .unwrap();
        assert_eq!(
            t.render(&words(&["db=app"])).unwrap(),
            words(&["pg_dump", "--dbname=app", "-f", "/backup/app.sql"])
        );
    }

    #[test]
    fn refuses_what_the_grammar_does_not_allow() {
        let t = Template::parse(&words(&["echo", "{n:[0-9]{1,3}}"])).unwrap();
        assert_eq!(
            t.render(&words(&["n=123"])).unwrap(),
            words(&["echo", "123"])
        );
        assert!(
            t.render(&words(&["n=1234"])).is_err(),
            "too long for the pattern"
        );
        assert!(t.render(&words(&["n=1;rm"])).is_err());
        assert!(t.render(&words(&[])).is_err(), "missing");
        assert!(t.render(&words(&["n=1", "n=2"])).is_err(), "twice");
        assert!(t.render(&words(&["n=1", "m=2"])).is_err(), "unknown");
        assert!(t.render(&words(&["n=1", "extra"])).is_err(), "extra word");
        assert!(t.render(&words(&["n"])).is_err(), "no value");
    }

    #[test]
    fn sensitive_parameters_are_marked() {
        let t = Template::parse(&words(&[
            "login",
            "--token={token!:[a-f0-9]+}",
            "{user:[a-z]+}",
        ]))
        .unwrap();
        assert!(t.is_sensitive("token"));
        assert!(!t.is_sensitive("user"));
        assert_eq!(
            t.render(&words(&["token=ab12", "user=bob"])).unwrap(),
            words(&["login", "--token=ab12", "bob"])
        );
    }

    #[test]
    fn a_value_may_not_start_its_word_with_a_dash_unless_marked() {
        let t = Template::parse(&words(&[
            "rm",
            "{f:.*}",
            "--file={g:.*}",
            "{a:[a-z]*}{b:.*}",
        ]))
        .unwrap();
        let err = t
            .render(&words(&["f=-rf", "g=x", "a=", "b=y"]))
            .unwrap_err();
        assert!(err.contains("starts with '-'"), "{err}");
        assert!(
            t.render(&words(&["f=x", "g=-x", "a=", "b=y"])).is_ok(),
            "not at a word's start"
        );
        assert!(
            t.render(&words(&["f=x", "g=x", "a=", "b=-y"])).is_err(),
            "after an empty value"
        );
        assert!(t.render(&words(&["f=x", "g=x", "a=a", "b=-y"])).is_ok());
        let marked = Template::parse(&words(&["seq", "{n-:-?[0-9]+}", "{s!-:.*}"])).unwrap();
        assert_eq!(
            marked.render(&words(&["n=-5", "s=-q"])).unwrap(),
            words(&["seq", "-5", "-q"])
        );
        assert!(marked.is_sensitive("s") && !marked.is_sensitive("n"));
    }

    #[test]
    fn refusals_never_repeat_a_value() {
        let t = Template::parse(&words(&["login", "{token!:[a-f0-9]+}"])).unwrap();
        for args in [
            &["hunter2secret"][..],
            &["token=zz-hunter2secret"],
            &["token=-hunter2secret"],
        ] {
            let err = t.render(&words(args)).unwrap_err();
            assert!(!err.contains("hunter2secret"), "{err}");
        }
    }

    #[test]
    fn bad_templates_are_refused() {
        for bad in [
            &["{cmd:.*}"][..],
            &["echo", "{X:a}"],
            &["echo", "{x}"],
            &["echo", "{x:a"],
            &["echo", "x}"],
            &["echo", "{x:a}", "{x:b}"],
            &["echo", "{x:(}"],
            &[],
            &[""],
        ] {
            assert!(Template::parse(&words(bad)).is_err(), "{bad:?}");
        }
        let t = Template::parse(&words(&["echo", "{{literal}}", "{x:a}{x}"])).unwrap();
        assert_eq!(
            t.render(&words(&["x=a"])).unwrap(),
            words(&["echo", "{literal}", "aa"])
        );
    }

    proptest! {
        /// Whatever the value, it lands inside its one word: rendering never
        /// adds or splits words, and a value the pattern refuses is refused.
        #[test]
        fn values_never_change_the_word_count(value in "\\PC{0,40}") {
            let t = Template::parse(&words(&["grep", "-F", "{q-:[^\\x00]*}", "/var/log/app.log"])).unwrap();
            let arg = format!("q={value}");
            let argv = t.render(&[arg]).unwrap();
            prop_assert_eq!(argv.len(), 4);
            prop_assert_eq!(&argv[2], &value);
        }

        #[test]
        fn the_parser_never_panics(template in proptest::collection::vec("\\PC{0,12}", 0..5),
                                   args in proptest::collection::vec("\\PC{0,12}", 0..5)) {
            if let Ok(t) = Template::parse(&template) {
                let _ = t.render(&args);
            }
        }

        #[test]
        fn only_matching_values_render(value in "[a-z0-9;$ ]{0,8}") {
            let t = Template::parse(&words(&["echo", "{v:[a-z]+}"])).unwrap();
            let ok = !value.is_empty() && value.bytes().all(|b| b.is_ascii_lowercase());
            prop_assert_eq!(t.render(&[format!("v={value}")]).is_ok(), ok);
        }
    }
}
