//! Store faults: a read-only state directory, and a database damaged on
//! disk. Clear errors, no panic, and what is served stays true.

use std::process::Command;
use std::time::Duration;

use tether_e2e::{Daemon, is_root, skip};

fn make_events(daemon: &Daemon, n: usize) {
    for i in 0..n {
        daemon
            .run(&["action", "list", &format!("nosuch{i}")])
            .fails_with("profile_not_found");
    }
}

#[test]
fn a_read_only_state_directory_stops_the_daemon_with_a_clear_message() {
    if !is_root() {
        skip("needs root for a read-only bind mount");
        return;
    }
    let mut daemon = Daemon::start();
    make_events(&daemon, 3);
    daemon.stop();
    let state = daemon.state_dir.clone();
    let bound = Command::new("mount")
        .args(["--bind"])
        .arg(&state)
        .arg(&state)
        .status()
        .unwrap()
        .success()
        && Command::new("mount")
            .args(["-o", "remount,ro,bind"])
            .arg(&state)
            .status()
            .unwrap()
            .success();
    if !bound {
        let _ = Command::new("umount").arg(&state).status();
        skip("cannot bind-mount here");
        return;
    }
    let out = daemon
        .command()
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let _ = Command::new("umount").arg(&state).status();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot open the store") && stderr.contains("Read-only"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    // Writable again: everything is there.
    daemon.spawn_and_wait();
    daemon.run(&["audit", "verify"]).ok();
}

#[test]
fn a_damaged_database_file_never_panics_and_never_serves_less() {
    let mut daemon = Daemon::start();
    make_events(&daemon, 40);
    daemon.stop();
    let file = daemon.state_dir.join("store.redb");
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    for byte in &mut bytes[middle..middle + 512] {
        *byte ^= 0x5a;
    }
    std::fs::write(&file, &bytes).unwrap();

    // Either the bytes hit nothing in use and everything is served, or the
    // store says it is damaged and serves nothing; never a panic.
    let mut child = daemon
        .command()
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let answered = (0..100).find_map(|_| {
        std::thread::sleep(Duration::from_millis(100));
        let status = daemon.run(&["status", "--json"]);
        (!status.stdout.is_empty()).then_some(status)
    });
    let status = answered.expect("tetherd answers");
    if status.code == 0 {
        daemon.run(&["audit", "verify"]).ok();
    } else {
        assert!(
            status.json()["store"]["damaged"].is_string(),
            "{}",
            status.stdout()
        );
        daemon.run(&["audit", "verify"]).fails_with("store_corrupt");
    }
    tether_e2e::stop_child(&mut child);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}
