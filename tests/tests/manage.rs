//! Changing profiles: host keys shown and re-learned, secrets rotated, fields
//! changed, and logins that only keyboard-interactive allows.

use tether_e2e::{Daemon, Sshd, SshdOptions, keygen, test_password};

#[test]
fn a_changed_host_key_is_relearned_only_with_its_fingerprint() {
    let Some(mut sshd) = Sshd::start() else {
        return;
    };
    let daemon = Daemon::start();
    let key = keygen(sshd.dir.path(), "id_ed25519", "ed25519", "");
    daemon.add_key_profile("web1", &sshd, &key).ok();
    let old = sshd.host_fingerprint();
    let shown = daemon.run(&["profile", "hostkey", "web1"]);
    shown.ok();
    assert_eq!(shown.stdout().trim(), format!("ssh-ed25519 {old}"));

    sshd.replace_host_key();
    let new = sshd.host_fingerprint();
    daemon
        .run(&["exec", "web1", "--", "true"])
        .fails_with("host_key_mismatch");
    // No terminal and no fingerprint: refused.
    daemon
        .run(&["profile", "trust", "web1"])
        .fails_with("usage");
    // A fingerprint the server does not show: refused, nothing changes.
    daemon
        .run(&["profile", "trust", "web1", "--host-key", &old])
        .fails_with("host_key_mismatch");
    daemon
        .run(&["exec", "web1", "--", "true"])
        .fails_with("host_key_mismatch");
    // The server's real new key, as its admin would read it.
    let trusted = daemon.run(&["profile", "trust", "web1", "--host-key", &new]);
    trusted.ok();
    assert!(
        trusted.stdout().contains(&old) && trusted.stdout().contains(&new),
        "{}",
        trusted.stdout()
    );
    daemon.run(&["exec", "web1", "--", "true"]).ok();
    let pins = daemon.run(&["profile", "hostkey", "web1", "--json"]).json();
    assert_eq!(pins[0]["fingerprint"], new);
}

#[test]
fn a_secret_is_rotated_only_when_the_new_one_logs_in() {
    let Some(sshd) = Sshd::start() else {
        return;
    };
    let daemon = Daemon::start();
    let first = keygen(sshd.dir.path(), "id_first", "ed25519", "");
    daemon.add_key_profile("web1", &sshd, &first).ok();
    daemon.run(&["exec", "web1", "--", "true"]).ok();

    // A key the server does not accept: refused, the old one stays.
    let unknown = keygen(sshd.dir.path(), "id_unknown", "ecdsa", "");
    daemon
        .run(&[
            "profile",
            "set",
            "web1",
            "--key-file",
            unknown.private.to_str().unwrap(),
        ])
        .fails_with("auth_failed");
    daemon.run(&["exec", "web1", "--", "true"]).ok();

    let second = keygen(sshd.dir.path(), "id_second", "rsa", "");
    sshd.authorize(&second);
    let set = daemon.run(&[
        "profile",
        "set",
        "web1",
        "--key-file",
        second.private.to_str().unwrap(),
        "--json",
    ]);
    set.ok();
    assert!(
        set.json()["public_key"]["algorithm"]
            .as_str()
            .unwrap()
            .contains("rsa")
    );
    // The pooled connection made with the old key is retired; the next
    // command logs in with the new key.
    let before = sshd.log().matches("Accepted publickey").count();
    daemon.run(&["exec", "web1", "--", "true"]).ok();
    let log = sshd.log();
    assert_eq!(log.matches("Accepted publickey").count(), before + 1);
    assert!(
        log.trim_end()
            .lines()
            .rev()
            .any(|l| l.contains("Accepted publickey") && l.contains("RSA")),
        "{log}"
    );

    daemon.run(&["profile", "set", "web1"]).fails_with("usage");
    daemon
        .run(&["profile", "set", "nope", "--port", "22"])
        .fails_with("profile_not_found");
    let timeouts = daemon.run(&[
        "profile",
        "set",
        "web1",
        "--connect-timeout",
        "5",
        "--keepalive",
        "10",
        "--json",
    ]);
    timeouts.ok();
    assert_eq!(timeouts.json()["connect_timeout_secs"], 5);
    assert_eq!(timeouts.json()["keepalive_secs"], 10);
    daemon
        .run(&["profile", "set", "web1", "--keepalive", "0"])
        .fails_with("bad_request");
}

#[test]
fn a_password_profile_moves_to_a_key() {
    let Some(sshd) = Sshd::start() else {
        return;
    };
    if !sshd.passwords {
        tether_e2e::skip("password logins need root");
        return;
    }
    let daemon = Daemon::start();
    daemon
        .add_password_profile("db1", &sshd, test_password())
        .ok();
    let key = keygen(sshd.dir.path(), "id_ed25519", "ed25519", "");
    sshd.authorize(&key);
    daemon
        .run(&[
            "profile",
            "set",
            "db1",
            "--key-file",
            key.private.to_str().unwrap(),
        ])
        .ok();
    assert_eq!(
        daemon.run(&["profile", "show", "db1", "--json"]).json()["auth"],
        "key"
    );
    daemon.run(&["exec", "db1", "--", "true"]).ok();
}

#[test]
fn keyboard_interactive_only_servers_take_the_password() {
    let options = SshdOptions {
        extra_config: vec![
            "UsePAM yes".into(),
            "PasswordAuthentication no".into(),
            "KbdInteractiveAuthentication yes".into(),
        ],
        ..Default::default()
    };
    let Some(sshd) = Sshd::start_with(options) else {
        return;
    };
    if !sshd.passwords || !std::path::Path::new("/etc/pam.d/sshd").exists() {
        tether_e2e::skip("needs root and sshd's PAM config");
        return;
    }
    let daemon = Daemon::start();
    let add = |password: &str| daemon.add_password_profile("ki", &sshd, password);
    add("wrong").fails_with("auth_failed");
    add(test_password()).ok();
    daemon.run(&["exec", "ki", "--", "true"]).ok();
    assert!(
        sshd.log().contains("Accepted keyboard-interactive"),
        "{}",
        sshd.log()
    );
}
