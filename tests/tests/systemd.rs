//! tetherd as a systemd service: the unit files, the hardening score, the
//! notification protocol (ready, reload, watchdog, stopping), and a reload
//! that keeps live sessions.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tether_e2e::{Daemon, in_ci, skip, stop_child, tetherd_bin};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn systemd_analyze() -> Option<PathBuf> {
    let found = Command::new("systemd-analyze")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        return Some(PathBuf::from("systemd-analyze"));
    }
    assert!(
        !in_ci(),
        "{}: systemd-analyze is missing and CI=true",
        tether_e2e::test_name()
    );
    skip("systemd-analyze is not installed");
    None
}

#[test]
fn the_units_parse_and_the_service_is_hardened() {
    let Some(analyze) = systemd_analyze() else {
        return;
    };
    // The units as installed, with tetherd where this build put it.
    let dir = tempfile::tempdir().unwrap();
    for unit in ["tetherd.service", "tetherd.socket"] {
        let text = std::fs::read_to_string(repo().join("systemd").join(unit)).unwrap();
        let text = text.replace("/usr/bin/tetherd", tetherd_bin().to_str().unwrap());
        std::fs::write(dir.path().join(unit), text).unwrap();
    }
    // (The manual page they name is checked against man/ by generated.rs;
    // it is not installed where the tests run.)
    let out = Command::new(&analyze)
        .args(["verify", "--man=no"])
        .arg(dir.path().join("tetherd.socket"))
        .arg(dir.path().join("tetherd.service"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Missing system units (network-online.target in a container) are the
    // host's business, not the files'.
    let problems: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.contains("network-online.target"))
        .collect();
    assert!(problems.is_empty(), "systemd-analyze verify: {stderr}");

    let out = Command::new(&analyze)
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(repo().join("systemd/tetherd.service"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let score: f64 = text
        .lines()
        .find_map(|l| l.split("exposure level for tetherd.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in: {text}"));
    assert!(score <= 2.0, "exposure {score} is over 2.0:\n{text}");

    // The user units, for `systemctl --user`: socket-activated tetherd --user.
    let user = tempfile::tempdir().unwrap();
    for unit in ["tetherd.service", "tetherd.socket"] {
        let text = std::fs::read_to_string(repo().join("systemd/user").join(unit)).unwrap();
        let text = text.replace("/usr/bin/tetherd", tetherd_bin().to_str().unwrap());
        assert!(text.contains("Documentation=man:tetherd(8)"));
        std::fs::write(user.path().join(unit), text).unwrap();
    }
    let out = Command::new(&analyze)
        .args(["verify", "--man=no"])
        .arg(user.path().join("tetherd.socket"))
        .arg(user.path().join("tetherd.service"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let problems: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.contains("default.target"))
        .collect();
    assert!(
        problems.is_empty(),
        "systemd-analyze verify (user units): {stderr}"
    );
    let socket = std::fs::read_to_string(user.path().join("tetherd.socket")).unwrap();
    assert!(socket.contains("ListenStream=%t/tether/tether.sock"));
}

#[test]
fn the_package_uses_the_packaging_helpers() {
    // Maintainer scripts hand the units to deb-systemd-helper and
    // deb-systemd-invoke (#DEBHELPER#) instead of calling systemctl, and
    // the example configuration is a conffile that loads as it is.
    for script in ["postinst", "prerm", "postrm"] {
        let text = std::fs::read_to_string(repo().join("debian").join(script)).unwrap();
        // cargo-deb replaces every occurrence, comments included: the
        // marker must be one line of its own.
        let markers: Vec<&str> = text.lines().filter(|l| l.contains("#DEBHELPER#")).collect();
        assert_eq!(markers, ["#DEBHELPER#"], "{script}");
        assert!(!text.contains("systemctl"), "{script} calls systemctl");
        // As the package has it: still a script sh can read.
        let filled = text.replace(
            "#DEBHELPER#",
            "# Automatically added by cargo-deb\nif [ -d /run/systemd/system ]; then\n\ttrue\nfi\n# End",
        );
        let checked = Command::new("sh")
            .args(["-n", "-c", &filled])
            .output()
            .unwrap();
        assert!(
            checked.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&checked.stderr)
        );
    }
    let manifest = std::fs::read_to_string(repo().join("daemon/Cargo.toml")).unwrap();
    assert!(manifest.contains("conf-files = [\"/etc/tether/tetherd.toml\"]"));
    assert!(manifest.contains("[package.metadata.deb.systemd-units]"));
    let out = Command::new(tetherd_bin())
        .args(["--user", "check-config"])
        .arg(repo().join("debian/tetherd.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A notification socket, as systemd listens on one.
struct Notify {
    socket: UnixDatagram,
    path: PathBuf,
}

impl Notify {
    fn new(dir: &Path) -> Notify {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        Notify { socket, path }
    }

    /// The next message that holds `wanted`, skipping others.
    #[track_caller]
    fn expect(&self, wanted: &str) -> String {
        let mut buf = [0u8; 4096];
        loop {
            let n = self
                .socket
                .recv(&mut buf)
                .unwrap_or_else(|e| panic!("no {wanted}: {e}"));
            let message = String::from_utf8_lossy(&buf[..n]).into_owned();
            if message.lines().any(|l| l == wanted) {
                return message;
            }
        }
    }
}

#[test]
fn tetherd_tells_systemd_ready_reloading_and_stopping_and_feeds_the_watchdog() {
    let daemon = Daemon::new();
    std::fs::write(daemon.config_path(), "[ssh]\nkeepalive_secs = 30\n").unwrap();
    let notify = Notify::new(daemon.dir.path());
    let mut child = daemon
        .command()
        .arg("--config")
        .arg(daemon.config_path())
        .env("NOTIFY_SOCKET", &notify.path)
        .env("WATCHDOG_USEC", "400000")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    notify.expect("READY=1");
    // Ready means served.
    daemon.run(&["status"]).ok();
    notify.expect("WATCHDOG=1");
    notify.expect("WATCHDOG=1");

    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::HUP).unwrap();
    notify.expect("RELOADING=1");
    notify.expect("READY=1");
    daemon.run(&["status"]).ok();

    stop_child(&mut child);
    notify.expect("STOPPING=1");
}

#[test]
fn a_reload_applies_new_limits_and_keeps_live_sessions() {
    let Some(sshd) = tether_e2e::Sshd::start() else {
        return;
    };
    let mut daemon = Daemon::new();
    std::fs::write(
        daemon.config_path(),
        "[limits]\nmax_connections_per_uid = 50\n",
    )
    .unwrap();
    daemon.spawn_and_wait();
    let key = tether_e2e::keygen(sshd.dir.path(), "id", "ed25519", "");
    daemon.add_key_profile("web1", &sshd, &key).ok();
    let running = daemon.spawn(&["exec", "web1", "--", "sleep 2; echo still here"]);
    std::thread::sleep(Duration::from_millis(500));

    // A broken file is refused and changes nothing.
    std::fs::write(
        daemon.config_path(),
        "[limits]\nmax_connections_per_uid = \"x\"\n",
    )
    .unwrap();
    let pid = rustix::process::Pid::from_raw(daemon.pid().unwrap() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::HUP).unwrap();
    tether_e2e::wait_until("the refusal in the log", Duration::from_secs(5), || {
        daemon.log().contains("reload failed")
    });
    daemon.run(&["status"]).ok();

    std::fs::write(
        daemon.config_path(),
        "[limits]\nmax_connections_per_uid = 2\n",
    )
    .unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::HUP).unwrap();
    tether_e2e::wait_until("the reload", Duration::from_secs(5), || {
        daemon.log().contains("configuration reloaded")
    });
    let run = tether_e2e::Run::from(running.wait_with_output().unwrap());
    run.ok();
    assert_eq!(run.stdout(), "still here\n");

    // The new limit: two held connections, and a third is refused.
    let held = tether_e2e::hold_connections(&daemon.socket, 2);
    daemon.run(&["status"]).fails_with("too_many_connections");
    drop(held);
}

#[test]
fn sealing_wipes_the_key_and_closes_connections_until_unsealed() {
    let Some((sshd, mut daemon)) = tether_e2e::with_web1() else {
        return;
    };
    daemon.run(&["exec", "web1", "--", "true"]).ok();
    daemon.run(&["seal"]).ok();
    assert_eq!(daemon.run(&["status", "--json"]).json()["sealed"], true);
    let sessions = daemon.run(&["session", "list", "--json"]).json();
    assert_eq!(sessions["sessions"].as_array().unwrap().len(), 0);
    daemon
        .run(&["exec", "web1", "--", "true"])
        .fails_with("sealed");
    daemon
        .run(&["profile", "show", "web1"])
        .fails_with("sealed");
    // `tether unseal` reads the key file again.
    daemon.run(&["unseal"]).ok();
    daemon.run(&["exec", "web1", "--", "true"]).ok();
    daemon.run(&["unseal"]).fails_with("bad_request");

    // SIGUSR1 does the same; a restart reads the key again.
    daemon.restart();
    daemon.run(&["exec", "web1", "--", "true"]).ok();
    let pid = rustix::process::Pid::from_raw(daemon.pid().unwrap() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::USR1).unwrap();
    tether_e2e::wait_until("the seal", Duration::from_secs(5), || {
        daemon.run(&["status", "--json"]).json()["sealed"] == true
    });
    daemon
        .run(&["exec", "web1", "--", "true"])
        .fails_with("sealed");
    daemon.restart();
    let trail = daemon
        .run(&["audit", "--op", "daemon.seal", "--json"])
        .json();
    assert_eq!(trail.as_array().unwrap().len(), 2);
    daemon.run(&["audit", "verify"]).ok();
    drop(sshd);
}
