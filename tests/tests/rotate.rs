//! Keys made inside tetherd: `tether profile rotate` and `profile add
//! --generate-key`, against a real sshd whose authorized_keys the login
//! owns.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use tether_e2e::{Daemon, skip};

/// An sshd that reads keys from `<keys>/<user>`, a file the login user owns
/// (as `~/.ssh/authorized_keys` is), holding `line`.
fn sshd_with_own_keys(line: &str) -> Option<(tether_e2e::Sshd, tempfile::TempDir, PathBuf)> {
    let keys = tempfile::Builder::new()
        .prefix("tether-keys-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(keys.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let options = tether_e2e::SshdOptions {
        extra_config: vec![format!(
            "AuthorizedKeysFile {}/%u/authorized_keys",
            keys.path().display()
        )],
        ..Default::default()
    };
    let sshd = tether_e2e::Sshd::start_with(options)?;
    let dir = keys.path().join(&sshd.user);
    std::fs::create_dir(&dir).unwrap();
    let file = dir.join("authorized_keys");
    std::fs::write(&file, format!("# the login's keys\n{line}\n")).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    sshd.give(&dir);
    Some((sshd, keys, file))
}

#[test]
fn rotate_installs_a_new_key_proves_it_and_removes_the_old() {
    let scratch = tempfile::tempdir().unwrap();
    let old = tether_e2e::keygen(scratch.path(), "old", "ed25519", "");
    let line = format!("from=\"127.0.0.1\",no-agent-forwarding {}", old.public_line);
    let Some((sshd, _keys, file)) = sshd_with_own_keys(&line) else {
        return;
    };
    let daemon = Daemon::start();
    let args = tether_e2e::key_profile_args("web1", &sshd, &old);
    daemon
        .run(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .ok();
    let path = file.to_str().unwrap();
    let before = std::fs::read_to_string(&file).unwrap();

    let dry = daemon.run(&[
        "profile",
        "rotate",
        "web1",
        "--authorized-keys",
        path,
        "--dry-run",
    ]);
    dry.ok();
    assert!(
        dry.stdout().contains("Nothing was changed"),
        "{}",
        dry.stdout()
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before);

    // A file without the profile's key: refused, nothing changed.
    let decoy = file.with_file_name("other_keys");
    std::fs::write(&decoy, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBogus x\n").unwrap();
    sshd.give(&decoy);
    let refused = daemon.run(&[
        "profile",
        "rotate",
        "web1",
        "--authorized-keys",
        decoy.to_str().unwrap(),
    ]);
    assert_eq!(refused.code, 255, "{}", refused.stderr);
    assert!(refused.stderr.contains("is not in"), "{}", refused.stderr);

    // A file sshd does not read: the new key cannot log in, so the file is
    // put back and the profile stays as it was.
    std::fs::write(&decoy, format!("{line}\n")).unwrap();
    let unread = daemon.run(&[
        "profile",
        "rotate",
        "web1",
        "--authorized-keys",
        decoy.to_str().unwrap(),
    ]);
    unread.fails_with("auth_failed");
    assert_eq!(
        std::fs::read_to_string(&decoy).unwrap(),
        format!("{line}\n")
    );
    daemon.run(&["exec", "web1", "true"]).ok();

    // Two profiles with one key: rotating one alone would lock the other
    // out, and is refused.
    let args = tether_e2e::key_profile_args("twin", &sshd, &old);
    daemon
        .run(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .ok();
    let shared = daemon.run(&["profile", "rotate", "web1", "--authorized-keys", path]);
    assert_eq!(shared.code, 255, "{}", shared.stderr);
    assert!(
        shared.stderr.contains("profiles twin hold the same key"),
        "{}",
        shared.stderr
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before);
    daemon.run(&["profile", "remove", "twin", "--yes"]).ok();

    let done = daemon.run(&[
        "profile",
        "rotate",
        "web1",
        "--authorized-keys",
        path,
        "--json",
    ]);
    done.ok();
    let result = done.json();
    assert_eq!(result["old_line_removed"], true, "{result}");
    let after = std::fs::read_to_string(&file).unwrap();
    assert!(
        !after.contains(old.public_line.split(' ').nth(1).unwrap()),
        "{after}"
    );
    assert!(after.starts_with("# the login's keys\n"), "{after}");
    let new_line = result["authorized_line"].as_str().unwrap();
    let new_key = new_line.split(' ').nth(1).unwrap();
    assert!(
        after.contains(&format!(
            "from=\"127.0.0.1\",no-agent-forwarding ssh-ed25519 {new_key} tether:web1"
        )),
        "{after}"
    );
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    // The new key works; the old one no longer logs in.
    daemon.run(&["exec", "web1", "true"]).ok();
    let args = tether_e2e::key_profile_args("old", &sshd, &old);
    daemon
        .run(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .fails_with("auth_failed");
    let public = daemon.run(&["profile", "show", "web1", "--public-key"]);
    public.ok();
    assert_eq!(public.stdout().trim(), new_line);
    let trail = daemon.run(&["audit", "--op", "profile.rotate", "--json"]);
    assert!(
        trail.json().as_array().unwrap().len() >= 4,
        "{}",
        trail.stdout()
    );
}

#[test]
fn a_made_key_replaces_the_password_that_let_it_in() {
    let Some((sshd, _keys, file)) = sshd_with_own_keys("# no keys yet") else {
        return;
    };
    if !sshd.passwords {
        skip("password logins need root");
        return;
    }
    let daemon = Daemon::start();
    let password = format!("{}\n", tether_e2e::test_password());
    let path = file.to_str().unwrap();
    let port = sshd.port.to_string();
    let add = |name: &str, generate: bool| {
        let mut args = vec![
            "profile",
            "add",
            name,
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--user",
            &sshd.user,
            "--password-stdin",
            "--accept-new",
            "--json",
        ];
        if generate {
            args.extend(["--generate-key", "--authorized-keys", path]);
        }
        daemon.run_with_stdin(&args, password.as_bytes())
    };

    // --generate-key: the password opens the door once; the profile keeps
    // a key made inside tetherd.
    let made = add("made", true);
    made.ok();
    assert_eq!(made.json()["auth"], "key", "{}", made.stdout());
    let public = daemon.run(&["profile", "show", "made", "--public-key"]);
    public.ok();
    let line = public.stdout().trim().to_owned();
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains(&line), "{text}");
    daemon.run(&["exec", "made", "true"]).ok();

    // --to-key: a password profile moves to a made key.
    add("pw", false).ok();
    let moved = daemon.run(&[
        "profile",
        "rotate",
        "pw",
        "--to-key",
        "--authorized-keys",
        path,
    ]);
    moved.ok();
    let shown = daemon.run(&["profile", "show", "pw", "--json"]);
    assert_eq!(shown.json()["auth"], "key");
    daemon.run(&["exec", "pw", "true"]).ok();
    // Two comment lines and a line per made key.
    assert_eq!(std::fs::read_to_string(&file).unwrap().lines().count(), 4);
    // Without --to-key a password profile is not rotated.
    add("pw2", false).ok();
    let refused = daemon.run(&["profile", "rotate", "pw2", "--authorized-keys", path]);
    assert_eq!(refused.code, 255);
    assert!(refused.stderr.contains("--to-key"), "{}", refused.stderr);
}
