//! The local terminal for `exec -t`: raw mode for the session, restored on
//! every way out (the guard's drop runs on return and on panic unwind).

use std::io::IsTerminal;

use rustix::termios::{self, OptionalActions, Termios};

pub struct RawMode {
    saved: Termios,
}

impl RawMode {
    /// Puts stdin's terminal in raw mode; `None` when stdin is not a terminal.
    /// A panic restores the terminal before its message is printed.
    pub fn enter() -> Option<RawMode> {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return None;
        }
        let saved = termios::tcgetattr(&stdin).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        termios::tcsetattr(&stdin, OptionalActions::Now, &raw).ok()?;
        let for_panic = saved.clone();
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let _ = termios::tcsetattr(std::io::stdin(), OptionalActions::Now, &for_panic);
            previous(info);
        }));
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

/// The remote pseudo-terminal to ask for: this terminal's TERM, size and
/// line-discipline settings (erase and interrupt keys, echo, ...), read
/// before raw mode is entered.
pub fn pty_request() -> tether_api::types::PtyRequest {
    let (cols, rows) = size().unwrap_or((80, 24));
    tether_api::types::PtyRequest {
        term: term(),
        cols,
        rows,
        modes: modes(),
    }
}

/// RFC 4254 8 opcodes for the local terminal's settings.
fn modes() -> Vec<(u8, u32)> {
    use rustix::termios::{InputModes, LocalModes, OutputModes, SpecialCodeIndex as C};
    let Ok(t) = termios::tcgetattr(std::io::stdin()) else {
        return Vec::new();
    };
    let flag = |on: bool| u32::from(on);
    let mut modes: Vec<(u8, u32)> = [
        (1, C::VINTR),
        (2, C::VQUIT),
        (3, C::VERASE),
        (4, C::VKILL),
        (5, C::VEOF),
        (10, C::VSUSP),
    ]
    .into_iter()
    .map(|(code, index)| (code, u32::from(t.special_codes[index])))
    .collect();
    modes.extend([
        (36, flag(t.input_modes.contains(InputModes::ICRNL))),
        (38, flag(t.input_modes.contains(InputModes::IXON))),
        (50, flag(t.local_modes.contains(LocalModes::ISIG))),
        (51, flag(t.local_modes.contains(LocalModes::ICANON))),
        (53, flag(t.local_modes.contains(LocalModes::ECHO))),
        (54, flag(t.local_modes.contains(LocalModes::ECHOE))),
        (55, flag(t.local_modes.contains(LocalModes::ECHOK))),
        (70, flag(t.output_modes.contains(OutputModes::OPOST))),
        (72, flag(t.output_modes.contains(OutputModes::ONLCR))),
    ]);
    modes
}
