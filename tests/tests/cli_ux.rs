//! What a person at a terminal sees: the progress line, messages, prompts.

use std::fs;
use std::path::Path;

use tether_e2e::{Tmux, with_web1};

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn progress_fits_the_terminal_and_clears_before_messages() {
    let test = "progress_fits_the_terminal_and_clears_before_messages";
    let Some((sshd, daemon)) = with_web1(test) else {
        return;
    };
    let remote = sshd.user_dir("remote");
    let name = format!("a-very-long-file-name-{}.bin", "x".repeat(100));
    fs::File::create(remote.join(&name))
        .unwrap()
        .set_len(300 << 20)
        .unwrap();
    sshd.give(&remote);
    let local = tempfile::tempdir().unwrap();
    let command = format!(
        "{} --socket {} cp web1:{}/{name} {}/; echo EXIT=$?; sleep 600",
        s(&tether_e2e::tether_bin()),
        s(&daemon.socket),
        s(&remote),
        s(local.path()),
    );
    let Some(tmux) = Tmux::start(test, &command, 60, 30) else {
        return;
    };
    let screen = tmux.wait_for("EXIT=0");
    let lines: Vec<&str> = screen.lines().filter(|l| !l.trim().is_empty()).collect();
    // The progress line is gone; the summary is one line; nothing wrapped.
    assert_eq!(lines.len(), 2, "{screen}");
    assert!(lines[0].starts_with("1 file, 300.0 MiB in "), "{screen}");
    assert_eq!(lines[1], "EXIT=0");

    // Ctrl-C mid-way: the message starts a line of its own.
    fs::remove_file(local.path().join(&name)).unwrap();
    let command = format!(
        "{} --socket {} cp web1:{}/{name} {}/; echo EXIT=$?; sleep 600",
        s(&tether_e2e::tether_bin()),
        s(&daemon.socket),
        s(&remote),
        s(local.path()),
    );
    fs::File::create(remote.join(&name))
        .unwrap()
        .set_len(20 << 30)
        .unwrap();
    let Some(tmux) = Tmux::start(test, &command, 60, 30) else {
        return;
    };
    let screen = tmux.wait_for("/s");
    assert!(screen.lines().all(|l| l.chars().count() <= 60), "{screen}");
    tmux.send(&["C-c"]);
    let screen = tmux.wait_for("EXIT=255");
    let error = screen
        .lines()
        .find(|l| l.contains("error[interrupted]"))
        .unwrap();
    assert!(error.starts_with("tether: error[interrupted]"), "{screen}");
    assert!(!screen.contains("ETA"), "{screen}");
}
