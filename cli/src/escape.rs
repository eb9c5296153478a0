//! ssh-style escapes for interactive sessions: a `~` typed at the start of a
//! line introduces a command. `~.` disconnects, `~~` sends one `~`, `~?`
//! lists the escapes; `~` before anything else is sent as typed.

/// Shown for `~?`.
pub const HELP: &str = "\r\nSupported escapes:\r\n ~.  disconnect\r\n ~~  send a literal ~\r\n ~?  this message\r\n(only at the start of a line)\r\n";

/// The result of filtering one chunk of input.
#[derive(Debug, PartialEq, Eq)]
pub enum Filtered {
    /// Send these bytes.
    Send(Vec<u8>),
    /// Send these bytes, then disconnect.
    Disconnect(Vec<u8>),
    /// Send these bytes and show the help.
    Help(Vec<u8>),
}

#[derive(Debug)]
pub struct Escape {
    at_line_start: bool,
    pending: bool,
}

impl Default for Escape {
    fn default() -> Self {
        // The very first byte of a session counts as the start of a line.
        Self {
            at_line_start: true,
            pending: false,
        }
    }
}

impl Escape {
    pub fn filter(&mut self, input: &[u8]) -> Filtered {
        let mut out = Vec::with_capacity(input.len());
        let mut help = false;
        for &byte in input {
            if self.pending {
                self.pending = false;
                match byte {
                    b'.' => return Filtered::Disconnect(out),
                    b'~' => out.push(b'~'),
                    b'?' => {
                        help = true;
                        self.at_line_start = false;
                        continue;
                    }
                    other => out.extend_from_slice(&[b'~', other]),
                }
                self.at_line_start = matches!(byte, b'\r' | b'\n');
                continue;
            }
            if byte == b'~' && self.at_line_start {
                self.pending = true;
                continue;
            }
            out.push(byte);
            self.at_line_start = matches!(byte, b'\r' | b'\n');
        }
        if help {
            Filtered::Help(out)
        } else {
            Filtered::Send(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&[u8]]) -> (Vec<u8>, bool) {
        let mut escape = Escape::default();
        let mut sent = Vec::new();
        for chunk in chunks {
            match escape.filter(chunk) {
                Filtered::Send(data) | Filtered::Help(data) => sent.extend(data),
                Filtered::Disconnect(data) => {
                    sent.extend(data);
                    return (sent, true);
                }
            }
        }
        (sent, false)
    }

    #[test]
    fn tilde_dot_at_line_start_disconnects() {
        assert_eq!(run(&[b"~."]), (vec![], true));
        assert_eq!(run(&[b"ls\r~."]), (b"ls\r".to_vec(), true));
        assert_eq!(run(&[b"ls\r", b"~", b"."]), (b"ls\r".to_vec(), true));
    }

    #[test]
    fn tilde_elsewhere_is_plain_text() {
        assert_eq!(run(&[b"cd ~.\r"]), (b"cd ~.\r".to_vec(), false));
        assert_eq!(run(&[b"a~.b"]), (b"a~.b".to_vec(), false));
    }

    #[test]
    fn double_tilde_sends_one_and_others_pass_through() {
        assert_eq!(run(&[b"~~/x"]), (b"~/x".to_vec(), false));
        assert_eq!(run(&[b"~/x"]), (b"~/x".to_vec(), false));
        assert_eq!(run(&[b"\r~", b"~."]), (b"\r~.".to_vec(), false));
    }

    #[test]
    fn help_is_shown_and_not_sent() {
        let mut escape = Escape::default();
        assert_eq!(escape.filter(b"~?"), Filtered::Help(vec![]));
        assert_eq!(escape.filter(b"x"), Filtered::Send(b"x".to_vec()));
    }
}
