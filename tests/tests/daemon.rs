//! tetherd's life cycle as a process: its socket, its store, its callers.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::process::{Command, Stdio};
use std::time::Duration;

use tether_e2e::{Daemon, is_root, tether_bin, wait_until};

#[test]
fn the_socket_is_private_and_removed_on_sigterm() {
    let mut daemon = Daemon::start();
    let meta = std::fs::metadata(&daemon.socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let key = std::fs::metadata(daemon.state_dir.join("master.key")).unwrap();
    assert_eq!(key.permissions().mode() & 0o777, 0o600);

    let status = daemon.stop().unwrap();
    assert!(status.success(), "{status}");
    assert!(!daemon.socket.exists());
    assert!(daemon.log().contains("tetherd stopped"));
}

#[test]
fn status_reports_mode_and_caller() {
    let daemon = Daemon::start();
    let run = daemon.run(&["status", "--json"]);
    run.ok();
    let status = run.json();
    assert_eq!(status["mode"], "user");
    assert_eq!(status["api_version"], 1);
    assert_eq!(status["caller_uid"], rustix::process::getuid().as_raw());
    assert_eq!(status["profiles"], 0);
    let human = daemon.run(&["status"]);
    human.ok();
    assert!(
        human.stdout().contains("mode:      user"),
        "{}",
        human.stdout()
    );
}

#[test]
fn a_second_daemon_on_the_same_socket_is_refused() {
    let daemon = Daemon::start();
    let second = daemon.command().stderr(Stdio::piped()).output().unwrap();
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("another tetherd is serving"), "{stderr}");
    // The first one is unharmed.
    daemon.run(&["status"]).ok();
}

#[test]
fn a_stale_socket_is_replaced() {
    let mut daemon = Daemon::start();
    daemon.kill();
    assert!(daemon.socket.exists(), "SIGKILL leaves the socket behind");
    daemon.spawn_and_wait();
    daemon.run(&["status"]).ok();
    assert!(daemon.log().contains("removing stale socket"));
}

#[test]
fn a_file_in_the_way_is_not_removed() {
    let mut daemon = Daemon::new();
    std::fs::create_dir_all(daemon.socket.parent().unwrap()).unwrap();
    std::fs::write(&daemon.socket, "precious").unwrap();
    let out = daemon.command().stderr(Stdio::piped()).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a socket"));
    assert_eq!(std::fs::read_to_string(&daemon.socket).unwrap(), "precious");
    daemon.stop();
}

#[test]
fn a_wrong_master_key_stops_the_daemon_with_a_clear_message() {
    let mut daemon = Daemon::start();
    daemon.stop();
    std::fs::write(daemon.state_dir.join("master.key"), [7u8; 32]).unwrap();
    let out = daemon.command().stderr(Stdio::piped()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is not the one this store was sealed with"),
        "{stderr}"
    );
    assert!(
        !daemon.socket.exists(),
        "no socket for a daemon that did not start"
    );
}

#[test]
fn a_missing_master_key_is_not_silently_replaced() {
    let mut daemon = Daemon::start();
    daemon.stop();
    std::fs::remove_file(daemon.state_dir.join("master.key")).unwrap();
    let out = daemon.command().stderr(Stdio::piped()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("restore"));
    assert!(!daemon.state_dir.join("master.key").exists());
}

#[test]
fn a_bad_config_names_its_line() {
    let daemon = Daemon::new();
    std::fs::write(
        daemon.config_path(),
        "log = \"info\"\n\n[limits]\nmax_body = 5\n",
    )
    .unwrap();
    let out = daemon
        .command()
        .arg("--config")
        .arg(daemon.config_path())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("line 4") && stderr.contains("max_body"),
        "{stderr}"
    );
}

#[test]
fn no_daemon_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let run = tether_e2e::Run::from(
        Command::new(tether_bin())
            .arg("--socket")
            .arg(dir.path().join("none.sock"))
            .arg("status")
            .output()
            .unwrap(),
    );
    run.fails_with("daemon_unavailable");
    assert!(run.stderr.contains("tetherd --user"), "{}", run.stderr);
}

#[test]
fn the_socket_env_var_is_honoured() {
    let daemon = Daemon::start();
    let out = Command::new(tether_bin())
        .env("TETHER_SOCKET", &daemon.socket)
        .arg("status")
        .output()
        .unwrap();
    assert!(out.status.success());
}

#[test]
fn other_uids_are_forbidden_even_through_a_world_writable_socket() {
    if !is_root() {
        tether_e2e::skip("needs root to run the CLI as another uid");
        return;
    }
    let daemon = Daemon::start();
    // Open every door the file system has: the daemon must still refuse.
    std::fs::set_permissions(daemon.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        daemon.socket.parent().unwrap(),
        std::fs::Permissions::from_mode(0o777),
    )
    .unwrap();
    std::fs::set_permissions(&daemon.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let cli = daemon.dir.path().join("tether");
    tether_e2e::copy_executable(&tether_bin(), &cli);

    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&cli)
        .arg("--socket")
        .arg(&daemon.socket)
        .args(["profile", "list"])
        .output()
        .unwrap();
    let run = tether_e2e::Run::from(out);
    run.fails_with("forbidden");
    assert!(run.stderr.contains("uid 65534"), "{}", run.stderr);
    daemon.run(&["status"]).ok();
}

#[test]
fn a_systemd_activated_socket_is_served_and_left_in_place() {
    let daemon = Daemon::new();
    let mut child =
        daemon.spawn_activated(&["--socket", "/nonexistent/not-used.sock"], Stdio::piped());
    wait_until(
        "activated tetherd to answer",
        Duration::from_secs(20),
        || daemon.run(&["status"]).code == 0,
    );
    tether_e2e::stop_child(&mut child);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("activated=true"), "{stderr}");
    // systemd owns the socket file: the daemon leaves it.
    assert!(daemon.socket.exists());
}

#[test]
fn the_readme_documents_every_error_code() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    for code in tether_api::error::ErrorCode::ALL {
        let row = format!("| `{}` | {} |", code.as_str(), code.status());
        assert!(readme.contains(&row), "README.md lacks the row {row}");
    }
}

#[test]
fn check_config_names_the_line_of_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "log = \"info\"\n[limits]\nmax_body_bytes = \"x\"\n").unwrap();
    let out = Command::new(tether_e2e::tetherd_bin())
        .arg("check-config")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 3"), "{stderr}");

    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "[ssh]\nkeepalive_secs = 5\n[audit]\nmax_events = 10\n",
    )
    .unwrap();
    let out = Command::new(tether_e2e::tetherd_bin())
        .args(["--user", "check-config"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).ends_with(": ok\n"));
}
