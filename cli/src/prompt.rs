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

/// Reads one line from stdin (without its line ending), silently on a terminal.
pub fn read_secret(label: &str) -> Result<Zeroizing<String>> {
    let stdin = std::io::stdin();
    let on_terminal = stdin.is_terminal();
    let saved = if on_terminal {
        eprint!("{label}: ");
        let _ = std::io::stderr().flush();
        let saved = termios::tcgetattr(&stdin).ok();
        if let Some(saved) = &saved {
            let mut quiet = saved.clone();
            quiet.local_modes.remove(LocalModes::ECHO);
            let _ = termios::tcsetattr(&stdin, OptionalActions::Now, &quiet);
        }
        saved
    } else {
        None
    };
    let mut line = Zeroizing::new(String::new());
    let read = stdin
        .lock()
        .take(MAX_SECRET as u64 + 1)
        .read_line(&mut line);
    if let Some(saved) = saved {
        let _ = termios::tcsetattr(&stdin, OptionalActions::Now, &saved);
        eprintln!();
    }
    read.map_err(|e| Failure::new("io_error", format!("cannot read {label} from stdin: {e}")))?;
    if line.len() > MAX_SECRET {
        return Err(Failure::usage(format!(
            "the {label} on stdin is over {MAX_SECRET} bytes"
        )));
    }
    let trimmed = line.trim_end_matches(['\n', '\r']).len();
    line.truncate(trimmed);
    if line.is_empty() {
        return Err(Failure::usage(format!("no {label} on stdin")));
    }
    Ok(line)
}

/// Asks a yes/no question on the controlling terminal. `None` when there is
/// no terminal to ask.
pub fn confirm(question: &str) -> Option<bool> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let tty = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .ok()?;
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
