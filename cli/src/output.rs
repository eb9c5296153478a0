//! Printing for people and for scripts (`--json`).
//!
//! Text that a server or another user controls (file names, program paths,
//! error texts) goes through [`printable`] before it reaches a terminal, so
//! a crafted name can neither forge nor hide a line.

use std::borrow::Cow;

use serde::Serialize;

use crate::failure::{Failure, Result};

/// One JSON value on one line: for output a script reads line by line as
/// it comes.
pub fn print_json_line<T: Serialize>(value: &T) -> Result<()> {
    let text = serde_json::to_string(value)
        .map_err(|e| Failure::new("internal", format!("cannot encode JSON: {e}")))?;
    println!("{text}");
    Ok(())
}

pub fn print_json<T: Serialize>(value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Failure::new("internal", format!("cannot encode JSON: {e}")))?;
    println!("{text}");
    Ok(())
}

/// Whether `c` is shown escaped: control characters (C0, DEL, C1), the
/// backslash that introduces an escape, and the invisible characters that
/// reorder or hide text (bidirectional controls, zero-width marks).
fn needs_escape(c: char) -> bool {
    c.is_control()
        || c == '\\'
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// `text` with every character that could move the cursor, change colours,
/// end a line or hide text written as an escape (`\n`, `\x1b`, `\u{202e}`,
/// `\\`). Everything else stays as it is.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x100 && needs_escape(c) => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:04x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A server's banner as lines for the terminal, each [`printable`] and
/// ended with `end` (`"\r\n"` on a raw terminal): the text is the server's
/// and must not drive the terminal.
pub fn banner_lines(text: &str, end: &str) -> String {
    let mut out = String::new();
    for line in text.trim_end_matches(['\r', '\n']).split('\n') {
        out.push_str(&printable(line.trim_end_matches('\r')));
        out.push_str(end);
    }
    out
}

/// Prints rows as left-aligned columns under a header; every cell is
/// [`printable`].
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|cell| printable(cell).into_owned())
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}  "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// Seconds since the epoch as a UTC timestamp (`2026-11-22 13:05:09Z`).
pub fn timestamp(secs: u64) -> String {
    let t = tether_api::time::utc(secs);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_banner_keeps_its_lines_and_loses_its_escapes() {
        assert_eq!(
            banner_lines(
                "Authorized use only.\r\n\x1b]0;owned\x07\tby policy\r\n",
                "\r\n"
            ),
            "Authorized use only.\r\n\\x1b]0;owned\\x07\\tby policy\r\n"
        );
        assert_eq!(banner_lines("one\ntwo", "\n"), "one\ntwo\n");
        assert_eq!(banner_lines("one\rtwo\n", "\n"), "one\\rtwo\n");
    }

    #[test]
    fn peer_text_cannot_forge_or_hide_lines() {
        assert_eq!(printable("plain name.txt"), "plain name.txt");
        assert_eq!(printable("a\nb"), "a\\nb");
        assert_eq!(printable("\x1b[2J\x07"), "\\x1b[2J\\x07");
        assert_eq!(printable("x\u{9b}31m"), "x\\x9b31m");
        assert_eq!(printable("evil\u{202e}txt.exe"), "evil\\u{202e}txt.exe");
        assert_eq!(printable("back\\slash"), "back\\\\slash");
        assert_eq!(printable("日本語 é"), "日本語 é");
    }

    #[test]
    fn timestamps() {
        assert_eq!(timestamp(0), "1970-01-01 00:00:00Z");
        assert_eq!(timestamp(951_782_400), "2000-02-29 00:00:00Z");
        assert_eq!(timestamp(1_795_353_909), "2026-11-22 13:25:09Z");
    }
}
