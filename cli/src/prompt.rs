//! Reading secrets and consent from a person or a pipe.
//!
//! Secrets come from stdin only, never from argv (visible in `ps`) or the
//! environment. On a terminal the echo is turned off while typing.
//! Consent questions go to the controlling terminal (`/dev/tty`), so they work
//! even when stdin carries a password; without a terminal there is no one to
//! ask, and the caller must say what it wants with a flag.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, IsTerminal, Read, Write};

use rustix::termios::{self, LocalModes, OptionalActions};
use zeroize::Zeroizing;

use crate::failure::{Failure, Result};

/// Longest secret read from stdin: a private key passphrase or a password.
const MAX_SECRET: usize = 64 * 1024;

/// The controlling terminal, for prompts that must reach the person even
/// when stdout or stderr is redirected (as ssh asks there). `None` when the
/// process has none, or when neither stdin nor stderr is a terminal (a
/// script: nobody to ask).
fn tty() -> Option<File> {
    if !std::io::stdin().is_terminal() && !std::io::stderr().is_terminal() {
        return None;
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .ok()
}

/// Reads a secret: typed on the terminal without echo when stdin is one
/// (the prompt `label:` is shown there, wherever stderr goes), else one
/// line from stdin (without its line ending).
pub fn read_secret(label: &str) -> Result<Zeroizing<String>> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        if let Some(tty) = tty() {
            return read_from_terminal(&tty, label);
        }
    }
    let mut line = Zeroizing::new(String::new());
    let read = stdin
        .lock()
        .take(MAX_SECRET as u64 + 1)
        .read_line(&mut line);
    read.map_err(|e| Failure::new("io_error", format!("cannot read {label} from stdin: {e}")))?;
    finish_secret(line, label)
}

fn read_from_terminal(tty: &File, label: &str) -> Result<Zeroizing<String>> {
    let mut writer: &File = tty;
    let _ = write!(writer, "{label}: ");
    let _ = writer.flush();
    let saved = termios::tcgetattr(tty).ok();
    if let Some(saved) = &saved {
        let mut quiet = saved.clone();
        quiet.local_modes.remove(LocalModes::ECHO);
        let _ = termios::tcsetattr(tty, OptionalActions::Now, &quiet);
    }
    let mut line = Zeroizing::new(String::new());
    let read = BufReader::new(tty)
        .take(MAX_SECRET as u64 + 1)
        .read_line(&mut line);
    if let Some(saved) = saved {
        let _ = termios::tcsetattr(tty, OptionalActions::Now, &saved);
    }
    let _ = writeln!(writer);
    read.map_err(|e| Failure::new("io_error", format!("cannot read {label}: {e}")))?;
    finish_secret(line, label)
}

fn finish_secret(mut line: Zeroizing<String>, label: &str) -> Result<Zeroizing<String>> {
    if line.len() > MAX_SECRET {
        return Err(Failure::usage(format!(
            "the {label} is over {MAX_SECRET} bytes"
        )));
    }
    let trimmed = line.trim_end_matches(['\n', '\r']).len();
    line.truncate(trimmed);
    if line.is_empty() {
        return Err(Failure::usage(format!("no {label} given")));
    }
    Ok(line)
}

/// Asks a yes/no question on the controlling terminal. `None` when there is
/// no one to ask (see [`tty`]).
pub fn confirm(question: &str) -> Option<bool> {
    let tty = tty()?;
    let mut writer: &File = &tty;
    write!(writer, "{question} [y/N] ").ok()?;
    writer.flush().ok()?;
    let mut answer = String::new();
    BufReader::new(&tty).read_line(&mut answer).ok()?;
    Some(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// Whether there is a person to ask on the controlling terminal.
pub fn can_ask() -> bool {
    tty().is_some()
}

/// Says something on the controlling terminal (falling back to stderr),
/// for text that belongs with a question asked there.
pub fn tell(text: &str) {
    match tty() {
        Some(tty) => {
            let mut writer: &File = &tty;
            let _ = writeln!(writer, "{text}");
        }
        None => eprintln!("{text}"),
    }
}
