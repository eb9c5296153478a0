//! `tether profile ...` against a real OpenSSH server: credentials, host-key
//! consent, and nothing stored when a check fails.

use tether_e2e::{Daemon, Sshd, assert_absent_below, keygen, test_password};

fn port(sshd: &Sshd) -> String {
    sshd.port.to_string()
}

fn no_profiles(daemon: &Daemon) {
    let list = daemon.run(&["profile", "list", "--json"]);
    list.ok();
    assert_eq!(
        list.json()["profiles"].as_array().unwrap().len(),
        0,
        "{}",
        list.stdout()
    );
}

#[test]
fn key_types_authenticate_and_are_shown_without_secrets() {
    let Some(sshd) = Sshd::start() else {
        return;
    };
    let daemon = Daemon::start();
    for (name, kind) in [("ed", "ed25519"), ("ec", "ecdsa"), ("rsa", "rsa")] {
        let key = keygen(sshd.dir.path(), &format!("id_{kind}"), kind, "");
        daemon.add_key_profile(name, &sshd, &key).ok();
        let run = daemon.run(&["exec", name, "--", "echo", kind]);
        run.ok();
        assert_eq!(run.stdout(), format!("{kind}\n"));
    }
    // RSA signed with SHA-2, never ssh-rsa.
    let log = sshd.log();
    assert!(
        log.contains("Accepted publickey") && log.contains("RSA SHA256"),
        "{log}"
    );
    assert!(!log.contains("ssh-rsa SHA256"), "{log}");

    let show = daemon.run(&["profile", "show", "ed", "--json"]);
    show.ok();
    let profile = show.json();
    assert_eq!(profile["auth"], "key");
    assert_eq!(
        profile["host_keys"][0]["fingerprint"],
        sshd.host_fingerprint()
    );
    assert!(!show.stdout().contains("PRIVATE KEY"));

    let list = daemon.run(&["profile", "list"]);
    list.ok();
    assert!(list.stdout().contains("ed") && list.stdout().contains("rsa"));
    let keys: Vec<_> = tether_e2e::files_below(sshd.dir.path())
        .into_iter()
        .filter(|p| {
            p.file_name().is_some_and(|n| {
                n.to_string_lossy().starts_with("id_") && !n.to_string_lossy().ends_with(".pub")
            })
        })
        .collect();
    assert_eq!(keys.len(), 3);
    for key in keys {
        let text = std::fs::read_to_string(&key).unwrap();
        let body = text.lines().nth(2).unwrap();
        assert_absent_below(&daemon.state_dir, body.as_bytes());
        assert!(!daemon.log().contains(body));
    }

    daemon.run(&["profile", "remove", "ec", "--yes"]).ok();
    daemon
        .run(&["profile", "remove", "ec", "--yes"])
        .fails_with("profile_not_found");
    daemon
        .run(&["exec", "ec", "--", "true"])
        .fails_with("profile_not_found");
}

#[test]
fn passwords_come_from_stdin_and_are_never_stored_in_plaintext() {
    let Some(sshd) = Sshd::start() else {
        return;
    };
    if !sshd.passwords {
        tether_e2e::skip("password logins need the tests to run as root");
        return;
    }
    let daemon = Daemon::start();
    let add = |name: &str, password: &str| daemon.add_password_profile(name, &sshd, password);
    add("bad", "wrong-password").fails_with("auth_failed");
    no_profiles(&daemon);
    // Exactly one attempt: no retry storm against MaxAuthTries.
    assert_eq!(
        sshd.log().matches("Failed password").count(),
        1,
        "{}",
        sshd.log()
    );

    add("db1", test_password()).ok();
    let run = daemon.run(&["exec", "db1", "--", "id", "-un"]);
    run.ok();
    assert_eq!(run.stdout().trim(), sshd.user);
    assert_absent_below(&daemon.state_dir, test_password().as_bytes());
    assert!(!daemon.log().contains(test_password()));

    // Empty stdin is refused before anything is sent.
    daemon
        .run_with_stdin(
            &[
                "profile",
                "add",
                "x",
                "--host",
                "127.0.0.1",
                "--user",
                "u",
                "--password-stdin",
                "--accept-new",
            ],
            b"",
        )
        .fails_with("usage");
}

#[test]
fn encrypted_keys_need_their_passphrase() {
    let Some(sshd) = Sshd::start() else {
        return;
    };
    let daemon = Daemon::start();
    let key = keygen(sshd.dir.path(), "id_locked", "ed25519", "open sesame");
    sshd.authorize(&key);
    let args = |name: &'static str| {
        vec![
            "profile".to_owned(),
            "add".into(),
            name.into(),
            "--host".into(),
            "127.0.0.1".into(),
            "--port".into(),
            port(&sshd),
            "--user".into(),
            sshd.user.clone(),
            "--key-file".into(),
            key.private.display().to_string(),
            "--accept-new".into(),
        ]
    };
    let strs = |v: &Vec<String>| {
        v.iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("\u{0}")
    };
    let run_args = |v: Vec<String>, stdin: &[u8]| {
        let joined = strs(&v);
        let parts: Vec<&str> = joined.split('\u{0}').collect();
        daemon.run_with_stdin(&parts, stdin)
    };
    run_args(args("k1"), b"").fails_with("bad_passphrase");
    let mut with_pass = args("k1");
    with_pass.push("--key-passphrase-stdin".into());
    run_args(with_pass.clone(), b"wrong\n").fails_with("bad_passphrase");
    no_profiles(&daemon);
    run_args(with_pass, b"open sesame\n").ok();
    daemon.run(&["exec", "k1", "--", "true"]).ok();
    assert_absent_below(&daemon.state_dir, b"open sesame");
}

#[test]
fn host_key_consent_is_required_and_checked() {
    let Some(sshd) = Sshd::start() else {
        return;
    };
    let daemon = Daemon::start();
    let key = keygen(sshd.dir.path(), "id_ed25519", "ed25519", "");
    sshd.authorize(&key);
    let base = |name: &str| {
        vec![
            "profile".to_owned(),
            "add".into(),
            name.into(),
            "--host".into(),
            "127.0.0.1".into(),
            "--port".into(),
            port(&sshd),
            "--user".into(),
            sshd.user.clone(),
            "--key-file".into(),
            key.private.display().to_string(),
        ]
    };
    let run = |args: Vec<String>| {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        daemon.run(&refs)
    };

    // No terminal and no flag: refused, with the way out in the message.
    let refused = run(base("a"));
    refused.fails_with("usage");
    assert!(refused.stderr.contains("--host-key") && refused.stderr.contains("--accept-new"));

    // A pinned fingerprint that the server does not have: nothing stored.
    let mut wrong = base("a");
    wrong.extend([
        "--host-key".into(),
        "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into(),
    ]);
    let mismatch = run(wrong);
    mismatch.fails_with("host_key_mismatch");
    assert!(mismatch.stderr.contains(&sshd.host_fingerprint()));
    no_profiles(&daemon);

    let mut malformed = base("a");
    malformed.extend(["--host-key".into(), "MD5:00:11".into()]);
    run(malformed).fails_with("usage");

    // The right fingerprint, as ssh-keygen -lf prints it on the server.
    let mut right = base("a");
    right.extend(["--host-key".into(), sshd.host_fingerprint()]);
    run(right).ok();
    daemon.run(&["exec", "a", "--", "true"]).ok();

    // A name in use is refused and the profile is unchanged.
    let mut again = base("a");
    again.push("--accept-new".into());
    run(again).fails_with("profile_exists");
}

#[test]
fn bad_credentials_store_nothing() {
    let Some(sshd) = Sshd::start() else {
        return;
    };
    let daemon = Daemon::start();
    // A key the server does not know.
    let stranger = keygen(sshd.dir.path(), "id_stranger", "ed25519", "");
    let run = daemon.run(&[
        "profile",
        "add",
        "s",
        "--host",
        "127.0.0.1",
        "--port",
        &port(&sshd),
        "--user",
        &sshd.user,
        "--key-file",
        stranger.private.to_str().unwrap(),
        "--accept-new",
    ]);
    run.fails_with("auth_failed");
    // Not a key at all.
    let junk = sshd.dir.path().join("junk");
    std::fs::write(&junk, "hello\n").unwrap();
    std::fs::set_permissions(&junk, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    daemon
        .run(&[
            "profile",
            "add",
            "j",
            "--host",
            "127.0.0.1",
            "--user",
            "u",
            "--key-file",
            junk.to_str().unwrap(),
            "--accept-new",
        ])
        .fails_with("invalid_key");
    // A key file that cannot be read.
    daemon
        .run(&[
            "profile",
            "add",
            "m",
            "--host",
            "127.0.0.1",
            "--user",
            "u",
            "--key-file",
            "/nonexistent/key",
            "--accept-new",
        ])
        .fails_with("io_error");
    no_profiles(&daemon);
}
