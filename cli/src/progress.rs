//! Transfer progress on a terminal, drawn by indicatif: one line that fits
//! the terminal's width (long names are cut, never wrapped), with the total
//! size, rate and time left, and for trees the current file and the count.
//! It clears itself before anything else is printed (an error, Ctrl-C's
//! message) and, unless `-q`, leaves a one-line summary as scp does. Nothing
//! is drawn when stderr is not a terminal.

use std::cell::{Cell, RefCell};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::output::printable;

/// One copy's display. Its methods take `&self`: the files of a tree go
/// several at a time, on one thread.
pub struct Progress {
    bar: RefCell<Option<ProgressBar>>,
    /// Files in the whole copy, where known in advance.
    total_files: Option<u64>,
    files: Cell<u64>,
    bytes: Cell<u64>,
    started: Instant,
    summary: bool,
}

fn style(known_total: bool) -> ProgressStyle {
    let template = if known_total {
        "{wide_msg} {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12} ETA {eta:>4}"
    } else {
        "{wide_msg} {bytes:>10} {binary_bytes_per_sec:>12}"
    };
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

impl Progress {
    /// A display for one copy command; `quiet` (`-q`, `--json`, or data on
    /// stdout) shows nothing and prints no summary.
    pub fn new(quiet: bool, total_bytes: Option<u64>, total_files: Option<u64>) -> Self {
        let shown = !quiet && std::io::stderr().is_terminal();
        let bar = shown.then(|| {
            let bar = ProgressBar::with_draw_target(total_bytes, ProgressDrawTarget::stderr());
            bar.set_style(style(total_bytes.is_some()));
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Self {
            bar: RefCell::new(bar),
            total_files,
            files: Cell::new(0),
            bytes: Cell::new(0),
            started: Instant::now(),
            summary: shown,
        }
    }

    /// A file starts: its name (made printable) is the line's message. For a
    /// copy of one file of unknown size, `size` sets the total.
    pub fn start_file(&self, name: &str, size: Option<u64>) {
        let bar = self.bar.borrow();
        let Some(bar) = bar.as_ref() else {
            return;
        };
        let name = printable(name);
        let files = self.files.get();
        let message = match self.total_files {
            Some(total) if total > 1 => format!("[{}/{total}] {name}", files + 1),
            _ if files > 0 => format!("[{}] {name}", files + 1),
            _ => name.into_owned(),
        };
        bar.set_message(message);
        if bar.length().is_none() && self.total_files.is_none_or(|t| t <= 1) {
            if let Some(size) = size.filter(|s| *s > 0) {
                bar.set_length(size);
                bar.set_style(style(true));
            }
        }
    }

    /// A warning on stderr, above the bar; the text is escaped.
    pub fn warn(&self, text: &str) {
        let line = format!("tether: warning: {}", crate::output::printable(text));
        match self.bar.borrow().as_ref() {
            Some(bar) => bar.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    pub fn add(&self, bytes: u64) {
        self.bytes.set(self.bytes.get() + bytes);
        if let Some(bar) = self.bar.borrow().as_ref() {
            bar.inc(bytes);
        }
    }

    pub fn end_file(&self) {
        self.files.set(self.files.get() + 1);
    }

    /// Removes the line, so that a message can follow on a clean line.
    pub fn clear(&self) {
        if let Some(bar) = self.bar.borrow_mut().take() {
            bar.finish_and_clear();
        }
    }

    /// Clears the line and prints the one-line summary (on a terminal, not
    /// with `-q`).
    pub fn done(&self) {
        self.clear();
        let (files, bytes) = (self.files.get(), self.bytes.get());
        if self.summary && files > 0 {
            let secs = self.started.elapsed().as_secs_f64().max(0.001);
            eprintln!(
                "{} {}, {} in {:.1} s ({}/s)",
                files,
                if files == 1 { "file" } else { "files" },
                human(bytes),
                secs,
                human((bytes as f64 / secs) as u64)
            );
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.clear();
    }
}

pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
