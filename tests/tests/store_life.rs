//! The store's life as an administrator lives it: a store of an earlier
//! tetherd migrated, damage reported at start and by `tetherd check`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tether_e2e::{Daemon, is_root, run_command, skip};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sled-store")
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o700)).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else if entry.file_name() != "README.md" {
            std::fs::copy(entry.path(), &target).unwrap();
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
    }
}

/// `tetherd ARGS` (offline commands) on `daemon`'s state directory.
fn tetherd(daemon: &Daemon, args: &[&str]) -> tether_e2e::Run {
    let mut command = std::process::Command::new(tether_e2e::tetherd_bin());
    command.arg("--state-dir").arg(&daemon.state_dir);
    if daemon.config_path().exists() {
        command.arg("--config").arg(daemon.config_path());
    }
    command.args(args);
    run_command(&mut command)
}

#[test]
fn a_sled_store_is_migrated_with_everything_in_it() {
    let test = "a_sled_store_is_migrated_with_everything_in_it";
    if !is_root() {
        skip(test, "the fixture is a system daemon's store");
        return;
    }
    let mut daemon = Daemon::new_system("root", "");
    copy_tree(&fixture(), &daemon.state_dir);
    daemon.spawn_and_wait();

    let list = daemon.run(&["profile", "list", "--json"]);
    list.ok();
    let listed = list.json();
    let names: Vec<&str> = listed["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web1", "web2"]);
    let actions = daemon.run(&["action", "list", "web1", "--json"]);
    actions.ok();
    assert_eq!(actions.json().as_array().unwrap().len(), 2);
    let grants = daemon.run(&["grant", "list", "--json"]);
    assert_eq!(grants.json().as_array().unwrap().len(), 1);
    // The trail's chain still verifies (its keys came along), and goes on.
    let verify = daemon.run(&["audit", "verify", "--json"]);
    verify.ok();
    assert!(verify.json()["events"].as_u64().unwrap() >= 20);
    daemon.run(&["profile", "show", "web1"]).ok();
    daemon.run(&["audit", "verify"]).ok();
    // One way: the old store is gone, the new one is checked at each start.
    assert!(!daemon.state_dir.join("db").exists());
    assert!(daemon.state_dir.join("store.redb").exists());
    daemon.restart();
    let status = daemon.run(&["status", "--json"]);
    status.ok();
    assert!(
        status.json()["store"]["damaged"].is_null(),
        "{}",
        status.stdout()
    );
}

#[test]
fn a_damaged_store_is_reported_at_start_and_serves_nothing() {
    let mut daemon = Daemon::start_system_with("root", "");
    for i in 0..22 {
        daemon
            .run(&["action", "list", &format!("nosuch{i}")])
            .fails_with("profile_not_found");
    }
    daemon.stop();
    // Half the file, as a full disk or a bad copy leaves it.
    let file = daemon.state_dir.join("store.redb");
    let size = std::fs::metadata(&file).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(size / 2)
        .unwrap();
    let check = tetherd(&daemon, &["check"]);
    assert_eq!(check.code, 1, "{}", check.stderr);
    assert!(check.stdout().contains("DAMAGED"), "{}", check.stdout());

    daemon.spawn_and_wait();
    let status = daemon.run(&["status"]);
    assert_eq!(status.code, 1, "{}", status.stdout());
    assert!(status.stdout().contains("DAMAGED"), "{}", status.stdout());
    let refused = daemon.run(&["profile", "list"]);
    refused.fails_with("store_corrupt");
    assert!(
        refused.stderr.contains("cannot be read"),
        "{}",
        refused.stderr
    );
    assert!(
        daemon.log().contains("the store is damaged"),
        "{}",
        daemon.log()
    );
}

#[test]
fn records_removed_behind_the_daemons_back_are_named_and_can_be_accepted() {
    let mut daemon = Daemon::start_system_with("root", "");
    for i in 0..3 {
        daemon
            .run(&["action", "list", &format!("nosuch{i}")])
            .fails_with("profile_not_found");
    }
    daemon.stop();
    let store = tetherd::store::Store::open(&daemon.state_dir).unwrap();
    store.raw_put_audit(1, None).unwrap();
    drop(store);

    let check = tetherd(&daemon, &["check", "--json"]);
    assert_eq!(check.code, 1, "{}", check.stderr);
    assert_eq!(
        check.json()["damage"]["audit_missing"],
        1,
        "{}",
        check.stdout()
    );
    // A running daemon says the same, and takes no writes.
    daemon.spawn_and_wait();
    let status = daemon.run(&["status", "--json"]);
    assert!(
        status.json()["store"]["damaged"]
            .as_str()
            .unwrap()
            .contains("1 audit event(s) missing"),
        "{}",
        status.stdout()
    );
    daemon
        .run(&["action", "list", "nosuch"])
        .fails_with("store_corrupt");
    // While it runs, the store is its own.
    let busy = tetherd(&daemon, &["check"]);
    assert!(busy.stderr.contains("stop it first"), "{}", busy.stderr);
    daemon.stop();

    let accepted = tetherd(&daemon, &["check", "--accept"]);
    accepted.ok();
    assert!(
        accepted.stdout().contains("accepted"),
        "{}",
        accepted.stdout()
    );
    let again = tetherd(&daemon, &["check"]);
    assert_eq!(again.code, 0, "{} {}", again.stdout(), again.stderr);
    daemon.spawn_and_wait();
    let events = daemon.run(&["audit", "--op", "store.accepted", "--json"]);
    events.ok();
    assert_eq!(events.json()[0]["details"]["audit_missing"], 1);
    // The chain shows the gap the loss left.
    let verify = daemon.run(&["audit", "verify", "--json"]);
    assert_eq!(verify.code, 1, "{}", verify.stdout());
}

#[test]
fn a_backup_restored_into_a_fresh_directory_runs_commands() {
    let Some((_sshd, daemon)) =
        tether_e2e::with_web1("a_backup_restored_into_a_fresh_directory_runs_commands")
    else {
        return;
    };
    daemon.run(&["exec", "web1", "true"]).ok();
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("tether.backup");
    let made = daemon.run(&["backup", "-o", file.to_str().unwrap()]);
    made.ok();
    assert!(made.stderr.contains("tetherd restore"), "{}", made.stderr);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // To a terminal it is refused; to a pipe it goes.
    let piped = daemon.run(&["backup"]);
    piped.ok();
    assert!(piped.stdout.starts_with(b"{\"magic\":\"tether-backup\""));

    let mut fresh = Daemon::new();
    let key = daemon.state_dir.join("master.key");
    let wrong = out.path().join("wrong.key");
    std::fs::write(&wrong, [7u8; 32]).unwrap();
    std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o600)).unwrap();
    let refused = tetherd(
        &fresh,
        &[
            "restore",
            "--key-file",
            wrong.to_str().unwrap(),
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("nothing was written"),
        "{}",
        refused.stderr
    );
    assert!(!fresh.state_dir.join("store.redb").exists());

    tetherd(
        &fresh,
        &[
            "restore",
            "--key-file",
            key.to_str().unwrap(),
            file.to_str().unwrap(),
        ],
    )
    .ok();
    fresh.spawn_and_wait();
    let run = fresh.run(&["exec", "web1", "echo", "restored"]);
    run.ok();
    assert_eq!(run.stdout(), "restored\n");
    let backups = fresh.run(&["audit", "--op", "store.backup", "--json"]);
    assert!(!backups.json().as_array().unwrap().is_empty());
    fresh.run(&["audit", "verify"]).ok();
    // Not over a store.
    fresh.stop();
    let again = tetherd(&fresh, &["restore", file.to_str().unwrap()]);
    assert!(
        again.stderr.contains("already holds a store"),
        "{}",
        again.stderr
    );
}

/// Adds `n` actions to `profile` with the daemon stopped, straight into its
/// store (500 CLI calls would be the slow part of the test).
fn add_actions(daemon: &mut Daemon, profile: &str, n: usize) {
    daemon.stop();
    let store = tetherd::store::Store::open(&daemon.state_dir).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        for i in 0..n {
            store
                .put_action(
                    profile,
                    &format!("a{i:03}"),
                    &["echo".into(), format!("{i}")],
                )
                .await
                .unwrap();
        }
    });
    drop(store);
    daemon.spawn_and_wait();
}

#[test]
fn rekey_survives_sigkill_at_any_point_and_the_old_key_opens_nothing() {
    let test = "rekey_survives_sigkill_at_any_point_and_the_old_key_opens_nothing";
    let Some(sshd) = tether_e2e::Sshd::start(test) else {
        return;
    };
    if !is_root() {
        skip(test, "actions are the system daemon's");
        return;
    }
    let mut daemon = Daemon::start_system("root");
    let key = tether_e2e::keygen(sshd.dir.path(), "id_ed25519", "ed25519", "");
    daemon.add_key_profile("web1", &sshd, &key).ok();
    add_actions(&mut daemon, "web1", 500);
    let key_file = daemon.state_dir.join("master.key");
    let before = std::fs::read(&key_file).unwrap();

    // One whole rekey, to know how long one takes.
    let started = std::time::Instant::now();
    let done = daemon.run(&["rekey", "--json"]);
    done.ok();
    let took = started.elapsed();
    // 500 actions and the profile's record, secret and host keys.
    assert_eq!(done.json()["records"], 503);
    assert_ne!(std::fs::read(&key_file).unwrap(), before);

    // The old key opens nothing in the store.
    let copy = tempfile::tempdir().unwrap();
    copy_tree(&daemon.state_dir, copy.path());
    std::fs::write(copy.path().join("master.key"), &before).unwrap();
    let wrong = match tetherd::store::Store::open(copy.path()) {
        Err(error) => error.to_string(),
        Ok(_) => panic!("the old key opened the store"),
    };
    assert!(
        wrong.contains("not the one this store was sealed with"),
        "{wrong}"
    );

    let (mut kept, mut changed) = (0, 0);
    for round in 0..50u64 {
        let key_before = std::fs::read(&key_file).unwrap();
        let mut rekey = daemon.spawn(&["rekey"]);
        // Spread over the rekey's own time, and a little past it.
        let delay = took.mul_f64((round * 7919 % 150) as f64 / 100.0);
        std::thread::sleep(delay);
        daemon.kill();
        let _ = rekey.wait();
        daemon.spawn_and_wait();
        // Exactly one key, and everything there under it.
        assert!(
            !daemon.state_dir.join("master.key.new").exists(),
            "round {round}"
        );
        if std::fs::read(&key_file).unwrap() == key_before {
            kept += 1;
        } else {
            changed += 1;
        }
        let actions = daemon.run(&["action", "list", "web1", "--json"]);
        actions.ok();
        assert_eq!(
            actions.json().as_array().unwrap().len(),
            500,
            "round {round}"
        );
        if round % 10 == 0 {
            daemon.run(&["exec", "web1", "true"]).ok();
        }
        let status = daemon.run(&["status", "--json"]);
        assert!(
            status.json()["store"]["damaged"].is_null(),
            "round {round}: {}",
            status.stdout()
        );
    }
    eprintln!("rekey killed 50 times: {kept} kept the old key, {changed} took the new one");
    daemon.run(&["exec", "web1", "true"]).ok();
    daemon.run(&["audit", "verify"]).ok();
}

const PASSPHRASE: &str = "correct horse battery staple";

#[test]
fn a_passphrase_daemon_starts_sealed_and_unseal_opens_it() {
    let Some(sshd) =
        tether_e2e::Sshd::start("a_passphrase_daemon_starts_sealed_and_unseal_opens_it")
    else {
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

/// An sshd that reads keys from `<keys>/<user>`, a file the login user owns
/// (as `~/.ssh/authorized_keys` is), holding `line`.
fn sshd_with_own_keys(
    test: &str,
    line: &str,
) -> Option<(tether_e2e::Sshd, tempfile::TempDir, PathBuf)> {
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
    };
    let sshd = tether_e2e::Sshd::start_with(test, options)?;
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
    let test = "rotate_installs_a_new_key_proves_it_and_removes_the_old";
    let scratch = tempfile::tempdir().unwrap();
    let old = tether_e2e::keygen(scratch.path(), "old", "ed25519", "");
    let line = format!("from=\"127.0.0.1\",no-agent-forwarding {}", old.public_line);
    let Some((sshd, _keys, file)) = sshd_with_own_keys(test, &line) else {
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
    let test = "a_made_key_replaces_the_password_that_let_it_in";
    let Some((sshd, _keys, file)) = sshd_with_own_keys(test, "# no keys yet") else {
        return;
    };
    if !sshd.passwords {
        skip(test, "password logins need root");
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
