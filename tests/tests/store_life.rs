//! The store's life as an administrator lives it: a store of an earlier
//! tetherd migrated, damage reported at start and by `tetherd check`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tether_e2e::{Daemon, is_root, run_command, skip};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
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

/// A system daemon on a copy of the committed store `name`, which holds
/// profiles web1 and web2, two actions on web1, a grant, and a trail of at
/// least `events` events.
fn on_fixture(name: &str, events: u64) -> Option<Daemon> {
    if !is_root() {
        skip("the fixture is a system daemon's store");
        return None;
    }
    let mut daemon = Daemon::new_system("root", "");
    copy_tree(&fixture(name), &daemon.state_dir);
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
    assert!(verify.json()["events"].as_u64().unwrap() >= events);
    daemon.run(&["profile", "show", "web1"]).ok();
    daemon.run(&["audit", "verify"]).ok();
    daemon.restart();
    let status = daemon.run(&["status", "--json"]);
    status.ok();
    assert!(
        status.json()["store"]["damaged"].is_null(),
        "{}",
        status.stdout()
    );
    Some(daemon)
}

#[test]
fn a_sled_store_is_migrated_with_everything_in_it() {
    let Some(daemon) = on_fixture("sled-store", 20) else {
        return;
    };
    // One way: the old store is gone, the new one is checked at each start.
    assert!(!daemon.state_dir.join("db").exists());
    assert!(daemon.state_dir.join("store.redb").exists());
}

#[test]
fn a_format_2_store_opens_with_everything_in_it() {
    let Some(daemon) = on_fixture("store-v2", 22) else {
        return;
    };
    let status = daemon.run(&["status", "--json"]);
    assert!(status.json()["store"]["generation"].as_u64().unwrap() >= 28);
    let invited = daemon.run(&["audit", "--op", "mfa.invite", "--json"]);
    assert!(!invited.json().as_array().unwrap().is_empty());
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
    let Some((_sshd, daemon)) = tether_e2e::with_web1() else {
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
    let Some(sshd) = tether_e2e::Sshd::start() else {
        return;
    };
    if !is_root() {
        skip("actions are the system daemon's");
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
