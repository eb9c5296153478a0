//! Harness for the end-to-end tests: the real `tetherd` and `tether`
//! binaries, and a real OpenSSH `sshd` on 127.0.0.1 with its own config, host
//! keys and users.
//!
//! Where `sshd` is missing the SSH tests print why and skip; with `CI=true`
//! a missing `sshd` fails them instead. Every process started here is ended by
//! its PID when its guard drops.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub use serde_json::Value;

mod daemon;
mod fs;
pub mod ftp;
mod netns;
pub mod servers;
mod sshd;
mod tmux;
mod users;

pub use daemon::*;
pub use fs::*;
pub use netns::*;
pub use servers::which;
pub use sshd::*;
pub use tmux::*;
pub use users::*;

/// The test user that password and key logins use when the tests run as root.
pub const TEST_USER: &str = "tether-e2e";

pub fn is_root() -> bool {
    rustix::process::getuid().is_root()
}

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// A server or tool a test needs is not installed: the test skips, saying
/// how to install it; under CI, where it must be there, it fails.
pub fn missing<T>(what: &str, install: &str) -> Option<T> {
    assert!(
        !in_ci(),
        "{}: {what} is missing and CI=true: {install}",
        test_name()
    );
    skip(&format!("{what} is not installed ({install})"));
    None
}

/// `target/<profile>`, where cargo put the binaries.
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_owned()
}

/// Builds the two binaries once per test process (a no-op when they are
/// current), so `cargo test --workspace` always tests what is in the tree.
fn ensure_built() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut command = Command::new(cargo);
        command
            // The same package selection and target kinds as `cargo test --workspace`,
            // so features unify the same way and every artifact is reused.
            .args(["build", "--quiet", "--workspace", "--bins", "--tests"])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        // Cargo gives this test process the package's CARGO_* variables; build
        // scripts that watch them (ring watches CARGO_MANIFEST_DIR) would
        // otherwise see a change and rebuild the world.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            let per_package = [
                "CARGO_MANIFEST_",
                "CARGO_PKG_",
                "CARGO_CRATE_",
                "CARGO_PRIMARY_",
                "CARGO_TARGET_TMPDIR",
                "CARGO_BIN_",
            ];
            if per_package.iter().any(|prefix| name.starts_with(prefix)) {
                command.env_remove(name.as_ref());
            }
        }
        if bin_dir().ends_with("release") {
            command.arg("--release");
        }
        let status = command.status().expect("run cargo build");
        assert!(status.success(), "building tetherd and tether failed");
    });
}

pub fn tetherd_bin() -> PathBuf {
    ensure_built();
    bin_dir().join("tetherd")
}

pub fn tether_bin() -> PathBuf {
    ensure_built();
    bin_dir().join("tether")
}

/// A copy of the executable `from` at `to`, mode 0755, made by another
/// process: a descriptor open for writing in this one would be inherited by
/// every child a parallel test forks meanwhile, and running the copy would
/// fail with "Text file busy".
pub fn copy_executable(from: &Path, to: &Path) {
    let copied = Command::new("install")
        .args(["-m", "0755"])
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(copied.success(), "install {}", to.display());
}

/// A loopback port free now and never handed out before in this process:
/// between this call and a server's bind another test may ask, and a server
/// in a network namespace of its own is not seen here at all.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

pub fn wait_until(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Ends a child we started, by its PID: SIGTERM, then SIGKILL after 5 s.
pub fn stop_child(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A process's resident memory in KiB, from /proc.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// Says that a test is skipped and why. Written straight to stderr so that
/// the test harness's output capture does not hide it.
/// The running test's name, as the test harness names its thread.
pub fn test_name() -> String {
    std::thread::current().name().unwrap_or("a test").to_owned()
}

/// Says on stderr that the running test skips, and why.
pub fn skip(why: &str) {
    let _ = writeln!(std::io::stderr(), "SKIP {}: {why}", test_name());
}

/// A server and a daemon with a key profile `web1` for it, or `None` when
/// the test must skip.
pub fn with_web1() -> Option<(Sshd, Daemon)> {
    let sshd = Sshd::start()?;
    let daemon = Daemon::start();
    let key = keygen(sshd.dir.path(), "id_ed25519", "ed25519", "");
    daemon.add_key_profile("web1", &sshd, &key).ok();
    Some((sshd, daemon))
}

/// Every process below `pid`, from /proc.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut parents = std::collections::HashMap::<u32, Vec<u32>>::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // The fields after the command name, which is in parentheses.
            let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
                continue;
            };
            if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
                parents.entry(ppid).or_default().push(child);
            }
        }
    }
    let mut out = Vec::new();
    let mut queue = vec![pid];
    while let Some(next) = queue.pop() {
        for &child in parents.get(&next).map(Vec::as_slice).unwrap_or_default() {
            out.push(child);
            queue.push(child);
        }
    }
    out
}
