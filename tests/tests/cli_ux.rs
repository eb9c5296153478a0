//! What a person at a terminal sees: the progress line, messages, prompts.

use std::fs;
use std::path::Path;

use tether_e2e::{Tmux, with_web1};

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn progress_fits_the_terminal_and_clears_before_messages() {
    let Some((sshd, daemon)) = with_web1() else {
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
    let Some(tmux) = Tmux::start(&command, 60, 30) else {
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
    let Some(tmux) = Tmux::start(&command, 60, 30) else {
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

#[test]
fn sftp_failures_say_what_is_wrong() {
    let Some((sshd, daemon)) = with_web1() else {
        return;
    };
    let remote = sshd.user_dir("remote");
    fs::create_dir(remote.join("dir")).unwrap();
    fs::write(remote.join("dir/inside"), "x").unwrap();
    fs::write(remote.join("file"), "x").unwrap();
    sshd.give(&remote);
    let r = |p: &str| format!("{}/{p}", s(&remote));
    let run = daemon.run(&["sftp", "web1", "ln", "-s", "/etc/hostname", &r("file")]);
    run.fails_with("file_exists");
    let run = daemon.run(&["sftp", "web1", "mv", &r("file"), &r("dir")]);
    run.fails_with("file_exists");
    assert!(run.stderr.contains("is a directory"), "{}", run.stderr);
    let run = daemon.run(&["sftp", "web1", "rmdir", &r("dir")]);
    run.fails_with("directory_not_empty");
    let run = daemon.run(&["sftp", "web1", "mv", &r("missing"), &r("new")]);
    run.fails_with("no_such_file");
    assert!(
        run.stderr.contains(&r("missing")) && !run.stderr.contains(&r("new")),
        "{}",
        run.stderr
    );

    // Several sources need a directory that exists.
    let local = tempfile::tempdir().unwrap();
    let a = local.path().join("a");
    fs::write(&a, "a").unwrap();
    let run = daemon.run(&["cp", s(&a), s(&a), &format!("web1:{}", r("nodir"))]);
    run.fails_with("usage");
    assert!(run.stderr.contains("is not a directory"), "{}", run.stderr);
    let run = daemon.run(&[
        "cp",
        &format!("web1:{}", r("file")),
        &format!("web1:{}", r("dir/inside")),
        s(&local.path().join("nodir")),
    ]);
    run.fails_with("usage");
    assert!(run.stderr.contains("is not a directory"), "{}", run.stderr);

    // A full remote disk is disk_full, and the target is untouched.
    if !tether_e2e::is_root() {
        return;
    }
    let Some(_small) = tether_e2e::Tmpfs::mount(&remote.join("small"), "1m") else {
        tether_e2e::skip("cannot mount a tmpfs here");
        return;
    };
    sshd.give(&remote.join("small"));
    fs::write(remote.join("small/target"), "old").unwrap();
    sshd.give(&remote.join("small/target"));
    let big = local.path().join("big");
    fs::write(&big, vec![1u8; 3 << 20]).unwrap();
    let run = daemon.run(&["cp", s(&big), &format!("web1:{}", r("small/target"))]);
    run.fails_with("disk_full");
    assert_eq!(fs::read(remote.join("small/target")).unwrap(), b"old");
}

#[test]
fn wrong_fingerprints_and_missing_daemons_are_named_for_what_they_are() {
    let Some((sshd, daemon)) = with_web1() else {
        return;
    };
    let key = tether_e2e::keygen(sshd.dir.path(), "id2", "ed25519", "");
    let mut args = tether_e2e::key_profile_args("web2", &sshd, &key);
    args.pop(); // --accept-new
    let with = |fingerprint: &str| {
        let mut all = args.clone();
        all.extend(["--host-key".to_owned(), fingerprint.to_owned()]);
        daemon.run(&all.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let run = with("SHA256:typo");
    run.fails_with("usage");
    assert!(
        run.stderr.contains("not a host key fingerprint"),
        "{}",
        run.stderr
    );
    let wrong = format!("SHA256:{}", "A".repeat(43));
    let run = with(&wrong);
    run.fails_with("host_key_mismatch");
    assert!(
        run.stderr.contains("given with --host-key") && !run.stderr.contains("has changed"),
        "{}",
        run.stderr
    );

    // No daemon: one line that says how to start one.
    let nobody = tempfile::tempdir().unwrap();
    let run = tether_e2e::run_command(
        std::process::Command::new(tether_e2e::tether_bin())
            .arg("status")
            .env_remove("TETHER_SOCKET")
            .env("XDG_RUNTIME_DIR", nobody.path()),
    );
    run.fails_with("daemon_unavailable");
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("systemctl --user start tetherd.socket"),
        "{}",
        run.stderr
    );

    // A second daemon on the same store says so in words.
    let second = tether_e2e::run_command(
        std::process::Command::new(tether_e2e::tetherd_bin())
            .arg("--user")
            .arg("--socket")
            .arg(nobody.path().join("second.sock"))
            .arg("--state-dir")
            .arg(&daemon.state_dir),
    );
    assert_ne!(second.code, 0);
    assert!(
        second.stderr.contains("another tetherd is using the store"),
        "{}",
        second.stderr
    );
    assert!(!second.stderr.contains("Os {"), "{}", second.stderr);

    // check-config: no file is the defaults; a missing socket group is named.
    let run = tether_e2e::run_command(
        std::process::Command::new(tether_e2e::tetherd_bin())
            .args(["--user", "check-config"])
            .env("XDG_CONFIG_HOME", nobody.path())
            .env("HOME", nobody.path()),
    );
    run.ok();
    assert!(run.stdout().contains("defaults"), "{}", run.stdout());
    let config = nobody.path().join("bad.toml");
    fs::write(&config, "[access]\nsocket_group = \"no-such-group-here\"\n").unwrap();
    let run = tether_e2e::run_command(
        std::process::Command::new(tether_e2e::tetherd_bin())
            .arg("check-config")
            .arg(&config),
    );
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("no-such-group-here"), "{}", run.stderr);
}

#[test]
fn prompts_reach_the_terminal_whatever_is_redirected() {
    let Some((sshd, daemon)) = with_web1() else {
        return;
    };
    if !sshd.passwords {
        tether_e2e::skip("password logins need root");
        return;
    }
    let tether = format!(
        "{} --socket {}",
        s(&tether_e2e::tether_bin()),
        s(&daemon.socket)
    );
    // stdout and stderr both redirected: the question and the password
    // prompt still reach the person, on the terminal.
    let command = format!(
        "{tether} profile add pw --host 127.0.0.1 --port {} --user {} --password-stdin \
         >/dev/null 2>/dev/null; echo EXIT=$?; sleep 600",
        sshd.port, sshd.user
    );
    let Some(tmux) = Tmux::start(&command, 100, 30) else {
        return;
    };
    tmux.wait_for("Trust it and pin it for this profile? [y/N]");
    assert!(tmux.screen().contains(&sshd.host_fingerprint()));
    tmux.type_text("y");
    tmux.send(&["Enter"]);
    tmux.wait_for(&format!("password for {}@127.0.0.1:", sshd.user));
    tmux.type_text(tether_e2e::test_password());
    tmux.send(&["Enter"]);
    let screen = tmux.wait_for("EXIT=");
    assert!(screen.contains("EXIT=0"), "{screen}");
    assert!(
        !screen.contains(tether_e2e::test_password()),
        "echoed: {screen}"
    );
    daemon.run(&["exec", "pw", "--", "true"]).ok();

    // A key file others may read is refused, as ssh refuses it.
    let key = tether_e2e::keygen(sshd.dir.path(), "id_open", "ed25519", "");
    sshd.authorize(&key);
    fs::set_permissions(
        &key.private,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let mut args = tether_e2e::key_profile_args("open", &sshd, &key);
    let run = daemon.run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    run.fails_with("insecure_key_file");
    assert!(run.stderr.contains("chmod 600"), "{}", run.stderr);
    args.push("--insecure-key-file".into());
    daemon
        .run(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .ok();

    // Removing asks on a terminal, and says when it is the only copy.
    daemon
        .run(&["profile", "remove", "open"])
        .fails_with("usage");
    let command = format!("{tether} profile remove open; echo EXIT=$?; sleep 600");
    let Some(tmux) = Tmux::start(&command, 120, 30) else {
        return;
    };
    let screen = tmux.wait_for("[y/N]");
    assert!(screen.contains("this is the only copy"), "{screen}");
    tmux.type_text("n");
    tmux.send(&["Enter"]);
    tmux.wait_for("EXIT=255");
    daemon.run(&["profile", "show", "open"]).ok();
    daemon.run(&["profile", "remove", "open", "--yes"]).ok();
}

#[test]
fn command_lines_read_as_ssh_and_scp_read_them() {
    let Some((sshd, daemon)) = with_web1() else {
        return;
    };
    // The first word that is not tether's starts the command; its dashes
    // are its own.
    let run = daemon.run(&["exec", "web1", "echo", "-n", "a", "b"]);
    run.ok();
    assert_eq!(run.stdout(), "a b");
    let run = daemon.run(&["exec", "web1", "--", "echo", "-n", "c"]);
    assert_eq!(run.stdout(), "c");
    let run = daemon.run_with_stdin(&["exec", "-n", "web1", "cat"], b"never read\n");
    run.ok();
    assert_eq!(run.stdout(), "");

    let remote = sshd.user_dir("remote");
    for name in ["a.log", "b.log", "c.txt", ".hidden.log"] {
        fs::write(remote.join(name), name).unwrap();
    }
    sshd.give(&remote);
    let local = tempfile::tempdir().unwrap();
    // Globs are matched on the server's listing, without a shell.
    daemon
        .run(&[
            "cp",
            &format!("web1:{}/*.log", s(&remote)),
            &format!("{}/", s(local.path())),
        ])
        .ok();
    let mut got: Vec<String> = fs::read_dir(local.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    got.sort();
    assert_eq!(got, ["a.log", "b.log"]);
    daemon
        .run(&[
            "cp",
            &format!("web1:{}/*.none", s(&remote)),
            s(local.path()),
        ])
        .fails_with("no_such_file");
    // `~` is the login's home, expanded on the server.
    daemon
        .run_with_stdin(&["cp", "-", "web1:~/tether-tilde-test"], b"home")
        .ok();
    let listed = daemon.run(&["files", "web1", "ls", "~"]);
    listed.ok();
    assert!(
        listed.stdout().lines().any(|l| l == "tether-tilde-test"),
        "{}",
        listed.stdout()
    );
    daemon
        .run(&["files", "web1", "rm", "~/tether-tilde-test"])
        .ok();

    // ls hides dot files unless -a, and -l names the owner.
    let ls = daemon.run(&["sftp", "web1", "ls", s(&remote)]).stdout();
    assert!(!ls.contains(".hidden.log") && ls.contains("a.log"), "{ls}");
    let all = daemon
        .run(&["files", "web1", "ls", "-a", s(&remote)])
        .stdout();
    assert!(all.contains(".hidden.log"), "{all}");
    let long = daemon
        .run(&["files", "web1", "ls", "-l", s(&remote)])
        .stdout();
    assert!(long.lines().nth(1).unwrap().contains(&sshd.user), "{long}");

    // Remote to remote, relayed by the daemon: a file and a tree.
    let key = tether_e2e::keygen(sshd.dir.path(), "id_web2", "ed25519", "");
    daemon.add_key_profile("web2", &sshd, &key).ok();
    let other = sshd.user_dir("other");
    sshd.give(&other);
    daemon
        .run(&[
            "cp",
            &format!("web1:{}/c.txt", s(&remote)),
            &format!("web2:{}/copied.txt", s(&other)),
        ])
        .ok();
    assert_eq!(fs::read(other.join("copied.txt")).unwrap(), b"c.txt");
    daemon
        .run(&[
            "cp",
            "-r",
            &format!("web1:{}", s(&remote)),
            &format!("web2:{}/tree", s(&other)),
        ])
        .ok();
    assert_eq!(fs::read(other.join("tree/b.log")).unwrap(), b"b.log");
    assert_eq!(
        fs::read(other.join("tree/.hidden.log")).unwrap(),
        b".hidden.log"
    );
    let trail = daemon.run(&["audit", "--op", "sftp.copy", "--json"]).json();
    let ops: Vec<&str> = trail
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["op"].as_str().unwrap())
        .collect();
    assert!(
        ops.contains(&"sftp.copy.read") && ops.contains(&"sftp.copy.write.end"),
        "{ops:?}"
    );
}

#[test]
fn shells_complete_profiles_and_remote_paths() {
    let Some((sshd, daemon)) = with_web1() else {
        return;
    };
    let remote = sshd.user_dir("remote");
    fs::write(remote.join("findme.txt"), "x").unwrap();
    fs::create_dir(remote.join("subdir")).unwrap();
    sshd.give(&remote);
    let bin = tether_e2e::tether_bin();
    let bin_dir = bin.parent().unwrap();
    let shells = [
        (
            "bash",
            "bash --norc --noprofile",
            format!(
                "export PATH={}:$PATH TETHER_SOCKET={}; source <(tether completions bash)",
                s(bin_dir),
                s(&daemon.socket)
            ),
        ),
        (
            "zsh",
            "zsh -f",
            format!(
                "export PATH={}:$PATH TETHER_SOCKET={}; autoload -U compinit; compinit -u; \
                 source <(tether completions zsh)",
                s(bin_dir),
                s(&daemon.socket)
            ),
        ),
        (
            "fish",
            "fish --no-config",
            format!(
                "set -x PATH {} $PATH; set -x TETHER_SOCKET {}; tether completions fish | source",
                s(bin_dir),
                s(&daemon.socket)
            ),
        ),
    ];
    for (shell, start, setup) in shells {
        let present = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {shell}"))
            .output()
            .unwrap()
            .status
            .success();
        if !present {
            assert!(!tether_e2e::in_ci(), "{shell} is missing and CI=true");
            tether_e2e::skip(&format!("{shell} is not installed"));
            continue;
        }
        let Some(tmux) = Tmux::start(start, 150, 40) else {
            return;
        };
        std::thread::sleep(std::time::Duration::from_millis(500));
        tmux.type_text(&setup);
        tmux.send(&["Enter"]);
        tmux.type_text("echo REA''DY");
        tmux.send(&["Enter"]);
        tmux.wait_for("READY");
        // A profile name where a command takes one; never a stray `-`.
        tmux.type_text("tether exec we");
        tmux.send(&["Tab"]);
        tmux.wait_for("tether exec web1");
        tmux.send(&["C-u"]);
        // Remote paths after NAME:, listed through the daemon.
        tmux.type_text(&format!("tether cp web1:{}/fin", s(&remote)));
        tmux.send(&["Tab"]);
        let screen = tmux.wait_for(&format!("web1:{}/findme.txt", s(&remote)));
        assert!(!screen.contains("tether exec web1 -"), "{shell}: {screen}");
        tmux.send(&["C-u"]);
    }
}

#[test]
fn a_daemon_on_a_terminal_is_quiet() {
    let Some((sshd, daemon)) = with_web1() else {
        return;
    };
    let _ = sshd;
    // A second daemon of our own, in a terminal: -v off, no log file.
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("run/t.sock");
    let command = format!(
        "{} --user --socket {} --state-dir {}; echo EXIT=$?; sleep 600",
        s(&tether_e2e::tetherd_bin()),
        s(&socket),
        s(&dir.path().join("state"))
    );
    let Some(tmux) = Tmux::start(&command, 120, 30) else {
        return;
    };
    tether_e2e::wait_until("the daemon", std::time::Duration::from_secs(10), || {
        std::os::unix::net::UnixStream::connect(&socket).is_ok()
    });
    let run = tether_e2e::run_command(
        std::process::Command::new(tether_e2e::tether_bin())
            .arg("--socket")
            .arg(&socket)
            .args(["profile", "show", "nosuch"]),
    );
    run.fails_with("profile_not_found");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let screen = tmux.screen();
    assert!(screen.trim().is_empty(), "the terminal shows: {screen}");
    // Ending the terminal would not end the daemon (a hangup makes it read
    // its configuration again): ended here, by the PID the kernel gives
    // for the socket's listener.
    let listener = std::os::unix::net::UnixStream::connect(&socket).unwrap();
    let pid = rustix::net::sockopt::socket_peercred(&listener)
        .unwrap()
        .pid;
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    drop(tmux);

    // With --log-file, what it does goes to the file.
    let log = dir.path().join("tetherd.log");
    let socket2 = dir.path().join("run2/t.sock");
    let mut second = std::process::Command::new(tether_e2e::tetherd_bin())
        .args(["--user", "-v", "--socket"])
        .arg(&socket2)
        .arg("--state-dir")
        .arg(dir.path().join("state2"))
        .arg("--log-file")
        .arg(&log)
        .spawn()
        .unwrap();
    tether_e2e::wait_until(
        "the second daemon",
        std::time::Duration::from_secs(10),
        || std::os::unix::net::UnixStream::connect(&socket2).is_ok(),
    );
    tether_e2e::stop_child(&mut second);
    let text = fs::read_to_string(&log).unwrap();
    assert!(text.contains("tetherd ready"), "{text}");
    let _ = daemon;
}
