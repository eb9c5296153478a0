//! `tether exec` against a real OpenSSH server.

use tether_e2e::{Daemon, Sshd};

fn setup() -> Option<(Sshd, Daemon)> {
    tether_e2e::with_web1()
}

#[test]
fn exit_status_output_and_quoting() {
    let Some((_sshd, daemon)) = setup() else {
        return;
    };

    let run = daemon.run(&[
        "exec", "web1", "--", "printf", "%s|", "a b", "it's", "$HOME", "",
    ]);
    run.ok();
    assert_eq!(run.stdout(), "a b|it's|$HOME||");

    // One word is a command line, as with ssh.
    let run = daemon.run(&["exec", "web1", "--", "echo out; echo err >&2; exit 7"]);
    assert_eq!(run.code, 7);
    assert_eq!(run.stdout(), "out\n");
    assert_eq!(run.stderr, "err\n");

    // A remote signal is 128 + n.
    let run = daemon.run(&["exec", "web1", "--", "kill -TERM $$"]);
    assert_eq!(run.code, 143, "{}", run.stderr);
}

#[test]
fn stdin_round_trips_binary_data() {
    let Some((_sshd, daemon)) = setup() else {
        return;
    };
    // 3 MiB of every byte value, more than any window or buffer.
    let data: Vec<u8> = (0..3 * 1024 * 1024u32)
        .map(|i| (i * 7 + i / 251) as u8)
        .collect();
    let run = daemon.run_with_stdin(&["exec", "web1", "--", "cat"], &data);
    run.ok();
    assert_eq!(run.stdout.len(), data.len());
    assert!(run.stdout == data, "bytes changed in transit");

    let run = daemon.run_with_stdin(&["exec", "web1", "--", "wc -c"], b"");
    assert_eq!(run.stdout().trim(), "0");
}

#[test]
fn unknown_profile_and_bad_names_fail_with_255() {
    let Some((_sshd, daemon)) = setup() else {
        return;
    };
    daemon
        .run(&["exec", "nope", "--", "true"])
        .fails_with("profile_not_found");
    daemon
        .run(&["exec", "../x", "--", "true"])
        .fails_with("usage");
    daemon.run(&["exec", "web1"]).fails_with("usage");
}

#[test]
fn a_changed_host_key_fails_closed_before_auth() {
    let Some((mut sshd, daemon)) = setup() else {
        return;
    };
    let old = sshd.host_fingerprint();
    daemon.run(&["exec", "web1", "--", "true"]).ok();
    let seen = sshd.log().len();

    sshd.replace_host_key();
    let new = sshd.host_fingerprint();
    assert_ne!(old, new);
    let run = daemon.run(&["exec", "web1", "--", "true"]);
    run.fails_with("host_key_mismatch");
    assert!(
        run.stderr.contains(&old) && run.stderr.contains(&new),
        "{}",
        run.stderr
    );

    // The server never saw an authentication attempt.
    let log = sshd.log()[seen..].to_owned();
    assert!(log.contains("Connection from"), "{log}");
    for attempt in ["Accepted", "Failed", "Postponed", "publickey", "password"] {
        assert!(!log.contains(attempt), "{attempt} in {log}");
    }
}

#[test]
fn an_unreachable_server_is_connect_failed() {
    let Some((mut sshd, daemon)) = setup() else {
        return;
    };
    sshd.stop();
    daemon
        .run(&["exec", "web1", "--", "true"])
        .fails_with("connect_failed");
}
