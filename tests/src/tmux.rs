//! A real terminal: a tmux pane that runs `tether shell`.

use super::*;

/// A tmux server of our own (`tmux -L`), for driving `tether shell` through
/// a real pseudo-terminal. Killed on drop.
pub struct Tmux {
    socket: String,
    pub dir: TempDir,
}

impl Tmux {
    /// `None` (with a SKIP) when tmux is missing, except in CI.
    pub fn start(command: &str, cols: u16, rows: u16) -> Option<Tmux> {
        if Command::new("tmux").arg("-V").output().is_err() {
            return crate::missing("tmux", "apt-get install tmux");
        }
        let dir = tempfile::Builder::new()
            .prefix("tether-tmux-")
            .tempdir()
            .unwrap();
        let socket = format!("tether-test-{}-{}", std::process::id(), free_port());
        let tmux = Tmux { socket, dir };
        let status = tmux
            .command()
            .args([
                "new-session",
                "-d",
                "-s",
                "t",
                "-x",
                &cols.to_string(),
                "-y",
                &rows.to_string(),
            ])
            .arg(command)
            .env("TERM", "xterm-256color")
            .status()
            .unwrap();
        assert!(status.success(), "tmux new-session");
        Some(tmux)
    }

    fn command(&self) -> Command {
        let mut command = Command::new("tmux");
        command.args(["-L", &self.socket, "-f", "/dev/null"]);
        command
    }

    /// Types `keys` (tmux key names, e.g. "Enter", "C-d").
    pub fn send(&self, keys: &[&str]) {
        let status = self
            .command()
            .args(["send-keys", "-t", "t"])
            .args(keys)
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Types `text` literally.
    pub fn type_text(&self, text: &str) {
        let status = self
            .command()
            .args(["send-keys", "-t", "t", "-l", text])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Pastes `text` as one burst, as a terminal paste would.
    pub fn paste(&self, text: &str) {
        let file = self.dir.path().join("paste");
        std::fs::write(&file, text).unwrap();
        assert!(
            self.command()
                .arg("load-buffer")
                .arg(&file)
                .status()
                .unwrap()
                .success()
        );
        assert!(
            self.command()
                .args(["paste-buffer", "-t", "t", "-d"])
                .status()
                .unwrap()
                .success()
        );
    }

    pub fn resize(&self, cols: u16, rows: u16) {
        let status = self
            .command()
            .args([
                "resize-window",
                "-t",
                "t",
                "-x",
                &cols.to_string(),
                "-y",
                &rows.to_string(),
            ])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// The visible screen and its scrollback.
    pub fn screen(&self) -> String {
        let out = self
            .command()
            .args(["capture-pane", "-t", "t", "-p", "-S", "-200"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits for a shell prompt (`$` or `#` ending the last line), so typed
    /// input is not flushed away by a login that is still starting.
    #[track_caller]
    pub fn wait_for_prompt(&self) {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            let last = screen
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim_end();
            if last.ends_with('$') || last.ends_with('#') {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "waited for a prompt; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the screen shows `text`; panics with the screen if not.
    #[track_caller]
    pub fn wait_for(&self, text: &str) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "waited for {text:?}; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self
            .command()
            .arg("kill-server")
            .stderr(Stdio::null())
            .status();
    }
}
