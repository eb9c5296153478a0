//! The local terminal for `exec -t`: raw mode for the session, restored on
//! every way out (the guard's drop runs on return and on panic unwind).

use std::io::IsTerminal;

use rustix::termios::{self, OptionalActions, Termios};

pub struct RawMode {
    saved: Termios,
}

impl RawMode {
    /// Puts stdin's terminal in raw mode; `None` when stdin is not a terminal.
    pub fn enter() -> Option<RawMode> {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return None;
        }
        let saved = termios::tcgetattr(&stdin).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        termios::tcsetattr(&stdin, OptionalActions::Now, &raw).ok()?;
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin(), OptionalActions::Now, &self.saved);
    }
}

/// The size of the terminal on stdout (or stdin), as (cols, rows).
pub fn size() -> Option<(u32, u32)> {
    let from = |fd: rustix::fd::BorrowedFd<'_>| {
        termios::tcgetwinsize(fd)
            .ok()
            .filter(|w| w.ws_col > 0)
            .map(|w| (u32::from(w.ws_col), u32::from(w.ws_row)))
    };
    use std::os::fd::AsFd;
    from(std::io::stdout().as_fd()).or_else(|| from(std::io::stdin().as_fd()))
}

pub fn term() -> String {
    std::env::var("TERM")
        .ok()
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "xterm-256color".to_owned())
}
