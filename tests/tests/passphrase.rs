//! A master key kept only wrapped by a passphrase: a daemon that starts
//! sealed, `tether unseal`, the lockout, `tether passphrase change`.

use tether_e2e::Daemon;

const PASSPHRASE: &str = "correct horse battery staple";

#[test]
fn a_passphrase_daemon_starts_sealed_and_unseal_opens_it() {
    let Some(sshd) = tether_e2e::Sshd::start() else {
        return;
    };
    let mut daemon = Daemon::start_with_config("passphrase = true\n");
    let status = daemon.run(&["status", "--json"]);
    assert_eq!(status.json()["sealed"], true, "{}", status.stdout());
    assert_eq!(status.json()["master_key"], "passphrase_unset");
    daemon.run(&["profile", "list"]).fails_with("sealed");
    // Too short a first passphrase is refused, and nothing is set.
    daemon
        .run_with_stdin(&["unseal"], b"short\n")
        .fails_with("bad_request");
    let set = daemon.run_with_stdin(&["unseal"], format!("{PASSPHRASE}\n").as_bytes());
    set.ok();
    assert!(
        set.stdout().contains("passphrase is set"),
        "{}",
        set.stdout()
    );
    // No plaintext key anywhere: only the wrapped one.
    assert!(!daemon.state_dir.join("master.key").exists());
    let wrapped = std::fs::read_to_string(daemon.state_dir.join("master.key.wrapped")).unwrap();
    assert!(wrapped.contains("argon2id"), "{wrapped}");
    let key = tether_e2e::keygen(sshd.dir.path(), "id_ed25519", "ed25519", "");
    daemon.add_key_profile("web1", &sshd, &key).ok();
    daemon.run(&["exec", "web1", "true"]).ok();

    // A restart is sealed again; wrong passphrases are refused and counted.
    daemon.restart();
    daemon.run(&["exec", "web1", "true"]).fails_with("sealed");
    for _ in 0..2 {
        daemon
            .run_with_stdin(&["unseal"], b"not the passphrase\n")
            .fails_with("wrong_passphrase");
    }
    daemon
        .run_with_stdin(&["unseal"], format!("{PASSPHRASE}\n").as_bytes())
        .ok();
    daemon.run(&["exec", "web1", "true"]).ok();
    let unseals = daemon.run(&["audit", "--op", "daemon.unseal", "--json"]);
    assert!(!unseals.json().as_array().unwrap().is_empty());

    // `tether seal`, then `tether unseal` without a restart.
    daemon.run(&["seal"]).ok();
    daemon.run(&["exec", "web1", "true"]).fails_with("sealed");
    daemon
        .run_with_stdin(&["unseal"], format!("{PASSPHRASE}\n").as_bytes())
        .ok();
    daemon.run(&["exec", "web1", "true"]).ok();

    // A new passphrase: the old one must be right; afterwards only the new
    // one opens.
    let new = "another long passphrase";
    daemon
        .run_with_stdin(
            &["passphrase", "change"],
            format!("wrong one here\n{new}\n").as_bytes(),
        )
        .fails_with("wrong_passphrase");
    daemon
        .run_with_stdin(
            &["passphrase", "change"],
            format!("{PASSPHRASE}\n{new}\n").as_bytes(),
        )
        .ok();
    // A rekey needs the passphrase to wrap the new key.
    daemon
        .run_with_stdin(&["rekey"], format!("{new}\n").as_bytes())
        .ok();
    daemon.restart();
    daemon
        .run_with_stdin(&["unseal"], format!("{PASSPHRASE}\n").as_bytes())
        .fails_with("wrong_passphrase");
    daemon
        .run_with_stdin(&["unseal"], format!("{new}\n").as_bytes())
        .ok();
    daemon.run(&["exec", "web1", "true"]).ok();
    daemon.run(&["audit", "verify"]).ok();

    // Past the limit of wrong passphrases, even the right one waits.
    daemon.restart();
    for _ in 0..5 {
        daemon
            .run_with_stdin(&["unseal"], b"not the passphrase\n")
            .fails_with("wrong_passphrase");
    }
    let locked = daemon.run_with_stdin(&["unseal"], format!("{new}\n").as_bytes());
    locked.fails_with("too_many_attempts");
    assert!(locked.stderr.contains("try again in"), "{}", locked.stderr);
    // The count outlives a restart (root can clear it: it is a file).
    daemon.restart();
    daemon
        .run_with_stdin(&["unseal"], format!("{new}\n").as_bytes())
        .fails_with("too_many_attempts");
    std::fs::remove_file(daemon.state_dir.join("unseal.lockout")).unwrap();
    daemon
        .run_with_stdin(&["unseal"], format!("{new}\n").as_bytes())
        .ok();

    // Offline, `tetherd check` asks for the passphrase too.
    daemon.stop();
    let mut check = std::process::Command::new(tether_e2e::tetherd_bin());
    check
        .args(["--user", "--passphrase", "--state-dir"])
        .arg(&daemon.state_dir)
        .arg("check");
    let checked = tether_e2e::run_with_input(check, format!("{new}\n").as_bytes());
    checked.ok();
    assert!(checked.stdout().contains("intact"), "{}", checked.stdout());
}

#[test]
fn a_socket_activated_passphrase_daemon_is_unsealed_through_its_socket() {
    let daemon = Daemon::new();
    let mut child = daemon.spawn_activated(&["--passphrase"], std::process::Stdio::null());
    tether_e2e::wait_until(
        "activated tetherd to answer",
        std::time::Duration::from_secs(20),
        || daemon.run(&["status"]).code == 0,
    );
    assert_eq!(daemon.run(&["status", "--json"]).json()["sealed"], true);
    daemon
        .run_with_stdin(&["unseal"], format!("{PASSPHRASE}\n").as_bytes())
        .ok();
    assert_eq!(daemon.run(&["status", "--json"]).json()["sealed"], false);
    tether_e2e::stop_child(&mut child);
}
