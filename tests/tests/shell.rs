//! `tether shell` driven through a real pseudo-terminal (tmux) against real
//! OpenSSH: typing, output, resizing, escapes, exit codes, and the terminal
//! restored afterwards.

use std::time::Duration;

use tether_e2e::{Daemon, Sshd, Tmux, tether_bin};

fn setup() -> Option<(Sshd, Daemon)> {
    tether_e2e::with_web1()
}

/// A tmux pane that records the terminal settings, runs `tether shell ARGS`,
/// prints its exit status, and records the settings again.
fn shell_in_tmux(daemon: &Daemon, args: &str) -> Option<Pane> {
    let settings = tempfile::tempdir().unwrap();
    let dir = settings.path().display().to_string();
    let command = format!(
        "export TERM=tether-test-term; stty -g > {dir}/before; {tether} --socket {socket} shell {args}; echo EXIT=$?; stty -g > {dir}/after; sleep 600",
        tether = tether_bin().display(),
        socket = daemon.socket.display(),
    );
    let tmux = Tmux::start(&command, 100, 30)?;
    Some(Pane { tmux, settings })
}

/// The tmux pane and the directory where it records its terminal settings.
struct Pane {
    tmux: Tmux,
    settings: tempfile::TempDir,
}

impl std::ops::Deref for Pane {
    type Target = Tmux;
    fn deref(&self) -> &Tmux {
        &self.tmux
    }
}

#[track_caller]
fn assert_terminal_restored(pane: &Pane) {
    let read =
        |name: &str| std::fs::read_to_string(pane.settings.path().join(name)).unwrap_or_default();
    tether_e2e::wait_until(
        "the pane to record its settings",
        Duration::from_secs(10),
        || !read("after").is_empty(),
    );
    assert_eq!(read("before"), read("after"), "terminal settings changed");
}

#[test]
fn a_shell_runs_commands_resizes_and_exits_with_the_remote_status() {
    let Some((_sshd, daemon)) = setup() else {
        return;
    };
    let Some(tmux) = shell_in_tmux(&daemon, "web1") else {
        return;
    };
    tmux.wait_for_prompt();
    tmux.type_text("echo marker-$((6*7))");
    tmux.send(&["Enter"]);
    tmux.wait_for("marker-42");
    tmux.type_text("stty size");
    tmux.send(&["Enter"]);
    tmux.wait_for("30 100");
    tmux.resize(120, 40);
    std::thread::sleep(Duration::from_millis(300));
    // The output differs from the typed line, so the echo cannot match.
    tmux.type_text("echo size-$(stty size | tr ' ' x)");
    tmux.send(&["Enter"]);
    tmux.wait_for("size-40x120");
    tmux.type_text("exit 3");
    tmux.send(&["Enter"]);
    tmux.wait_for("EXIT=3");
    assert_terminal_restored(&tmux);
    // Never a byte of the session in the daemon's log, at debug level.
    assert!(!daemon.log().contains("marker"), "{}", daemon.log());
}

#[test]
fn tilde_dot_disconnects_and_double_tilde_sends_one() {
    let Some((_sshd, daemon)) = setup() else {
        return;
    };
    let Some(tmux) = shell_in_tmux(&daemon, "web1") else {
        return;
    };
    tmux.wait_for_prompt();
    tmux.type_text("echo ready-$((1+1))");
    tmux.send(&["Enter"]);
    tmux.wait_for("ready-2");
    tmux.type_text("~~");
    tmux.type_text("echo tilde");
    tmux.send(&["Enter"]);
    tmux.wait_for("~echo tilde");
    tmux.send(&["C-u"]);
    tmux.send(&["Enter"]);
    tmux.type_text("~.");
    tmux.wait_for("EXIT=255");
    assert!(tmux.screen().contains("[disconnected]"));
    assert_terminal_restored(&tmux);
}

#[test]
fn a_command_on_a_pty_and_its_exit_status() {
    let Some((_sshd, daemon)) = setup() else {
        return;
    };
    let Some(tmux) = shell_in_tmux(&daemon, "web1 -- 'tty; echo term=$TERM; exit 5'") else {
        return;
    };
    let screen = tmux.wait_for("EXIT=5");
    assert!(screen.contains("/dev/pts/"), "{screen}");
    assert!(screen.contains("term=tether-test-term"), "{screen}");
    assert_terminal_restored(&tmux);
}

#[test]
fn a_large_paste_arrives_whole_and_in_order() {
    let Some((_sshd, daemon)) = setup() else {
        return;
    };
    let Some(tmux) = shell_in_tmux(&daemon, "web1") else {
        return;
    };
    tmux.wait_for_prompt();
    let file = format!("/tmp/tether-paste-{}", std::process::id());
    tmux.type_text(&format!("cat > {file}"));
    tmux.send(&["Enter"]);
    std::thread::sleep(Duration::from_millis(300));
    let text: String = (0..2000)
        .map(|i| format!("line {i:05} {}\n", "x".repeat(60)))
        .collect();
    tmux.paste(&text);
    std::thread::sleep(Duration::from_millis(500));
    tmux.send(&["C-d"]);
    tmux.type_text(&format!("wc -l < {file}; cksum < {file}; rm -f {file}"));
    tmux.send(&["Enter"]);
    let expected = {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg("cksum")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(text.as_bytes())?;
                child.wait_with_output()
            })
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let screen = tmux.wait_for(&expected);
    assert!(screen.contains("2000"), "{screen}");
    tmux.type_text("exit");
    tmux.send(&["Enter"]);
    tmux.wait_for("EXIT=0");
}

#[test]
fn the_terminal_is_restored_when_the_daemon_dies() {
    let Some((_sshd, mut daemon)) = setup() else {
        return;
    };
    let Some(tmux) = shell_in_tmux(&daemon, "web1") else {
        return;
    };
    tmux.wait_for_prompt();
    tmux.type_text("echo alive-$((1+1))");
    tmux.send(&["Enter"]);
    tmux.wait_for("alive-2");
    daemon.kill();
    let screen = tmux.wait_for("EXIT=255");
    // On a line of its own, not after the remote prompt, and not blaming SSH.
    assert!(
        screen
            .lines()
            .any(|l| l.starts_with("tether: error[daemon_unavailable]: tetherd ended the session")),
        "{screen}"
    );
    assert_terminal_restored(&tmux);
}

#[test]
fn a_full_screen_program_runs_and_quits() {
    let Some((_sshd, daemon)) = setup() else {
        return;
    };
    let Some(tmux) = shell_in_tmux(&daemon, "web1 -- env TERM=xterm top -d 1") else {
        return;
    };
    tmux.wait_for("load average");
    tmux.send(&["q"]);
    tmux.wait_for("EXIT=0");
    assert_terminal_restored(&tmux);
}

#[test]
fn a_shell_needs_a_terminal() {
    let Some((_sshd, daemon)) = setup() else {
        return;
    };
    let run = daemon.run(&["shell", "web1"]);
    run.fails_with("usage");
    assert!(
        run.stderr.contains("not a terminal") && run.stderr.contains("tether exec"),
        "{}",
        run.stderr
    );
}

#[test]
fn vim_edits_a_file_through_the_shell() {
    let Some((_sshd, daemon)) = setup() else {
        return;
    };
    if !std::path::Path::new("/usr/bin/vim").exists()
        && !std::path::Path::new("/usr/bin/vi").exists()
    {
        tether_e2e::skip("vi is not installed");
        return;
    }
    let file = format!("/tmp/tether-vi-{}.txt", std::process::id());
    let _ = std::fs::remove_file(&file);
    let Some(pane) = shell_in_tmux(
        &daemon,
        &format!("web1 -- env TERM=xterm vi -u NONE -N {file}"),
    ) else {
        return;
    };
    std::thread::sleep(Duration::from_millis(800));
    pane.send(&["i"]);
    pane.type_text("written through tether");
    pane.send(&["Escape"]);
    pane.type_text(":wq");
    pane.send(&["Enter"]);
    pane.wait_for("EXIT=0");
    assert_terminal_restored(&pane);
    let written = std::fs::read_to_string(&file).unwrap_or_default();
    let _ = std::fs::remove_file(&file);
    assert_eq!(written.trim(), "written through tether");
}
