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

pub mod servers;

/// The test user that password and key logins use when the tests run as root.
pub const TEST_USER: &str = "tether-e2e";

pub fn is_root() -> bool {
    rustix::process::getuid().is_root()
}

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
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

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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

fn sshd_path() -> Option<PathBuf> {
    ["/usr/sbin/sshd", "/usr/local/sbin/sshd", "/sbin/sshd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Makes sure the commands a test runs share a login session tetherd can
/// read, as a user's commands in one terminal do. Where the test runner's
/// session leader lives outside this PID namespace (a container started by
/// something else), /proc shows session 0 and tetherd rightly refuses to
/// bind an MFA session to it; the test process then leads a session of its
/// own.
pub fn ensure_login_session() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        if session_leader_readable() {
            return;
        }
        if let Err(error) = rustix::process::setsid() {
            panic!(
                "this test process has no readable login session (its leader is outside \
                 this PID namespace) and cannot start one ({error}); run the tests \
                 under `setsid -w`"
            );
        }
        assert!(session_leader_readable(), "setsid left no readable session");
    });
}

fn session_leader_readable() -> bool {
    // /proc shows the session as this namespace sees it: 0 when the leader
    // is outside.
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let sid = stat
        .rfind(')')
        .and_then(|end| stat[end + 1..].split_whitespace().nth(3))
        .and_then(|field| field.parse::<i32>().ok())
        .unwrap_or(0);
    sid > 0 && Path::new(&format!("/proc/{sid}/stat")).exists()
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
pub fn skip(test: &str, why: &str) {
    let _ = writeln!(std::io::stderr(), "SKIP {test}: {why}");
}

/// Returns `None` (and says why) when the SSH tests must skip.
pub fn sshd_or_skip(test: &str) -> Option<PathBuf> {
    match sshd_path() {
        Some(path) => Some(path),
        None if in_ci() => {
            panic!("{test}: OpenSSH sshd is missing and CI=true: install openssh-server")
        }
        None => {
            skip(
                test,
                "OpenSSH sshd is not installed (apt-get install openssh-server)",
            );
            None
        }
    }
}

/// A private key file made by ssh-keygen.
#[derive(Debug, Clone)]
pub struct KeyPair {
    pub private: PathBuf,
    pub public_line: String,
}

pub fn keygen(dir: &Path, name: &str, kind: &str, passphrase: &str) -> KeyPair {
    let private = dir.join(name);
    let mut args = vec!["-q", "-t", kind, "-N", passphrase, "-C", name, "-f"];
    let path = private.to_str().unwrap().to_owned();
    args.push(&path);
    if kind == "rsa" {
        args.extend(["-b", "3072"]);
    }
    let status = Command::new("ssh-keygen")
        .args(&args)
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "ssh-keygen {kind}");
    let public_line = std::fs::read_to_string(private.with_extension("pub"))
        .unwrap()
        .trim()
        .to_owned();
    KeyPair {
        private,
        public_line,
    }
}

/// SHA256 fingerprint of a public key file, as ssh-keygen prints it.
pub fn fingerprint(public_key: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(public_key)
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned()
}

/// The password of [`TEST_USER`], random per test process.
pub fn test_password() -> &'static str {
    static PASSWORD: OnceLock<String> = OnceLock::new();
    PASSWORD.get_or_init(|| {
        let mut bytes = [0u8; 12];
        std::fs::File::open("/dev/urandom")
            .unwrap()
            .read_exact(&mut bytes)
            .unwrap();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        format!("pw-{hex}")
    })
}

/// Creates [`TEST_USER`] (as root) and sets its password for this process.
pub fn ensure_test_user() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        let exists = Command::new("id")
            .arg(TEST_USER)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success();
        if !exists {
            let status = Command::new("useradd")
                .args(["--create-home", "--shell", "/bin/sh", TEST_USER])
                .status()
                .unwrap();
            assert!(status.success(), "useradd {TEST_USER}");
        }
        let mut chpasswd = Command::new("chpasswd")
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(
            chpasswd.stdin.take().unwrap(),
            "{TEST_USER}:{}",
            test_password()
        )
        .unwrap();
        assert!(chpasswd.wait().unwrap().success(), "chpasswd");
    });
}

/// Appends `key` to `user`'s own `~/.ssh/authorized_keys` (for servers that
/// read no other file), owned by the user, 0600.
pub fn authorize_in_home(user: &str, key: &KeyPair) {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let home = Command::new("sh")
        .arg("-c")
        .arg(format!("getent passwd {user} | cut -d: -f6"))
        .output()
        .unwrap();
    let home = PathBuf::from(String::from_utf8(home.stdout).unwrap().trim());
    let ssh = home.join(".ssh");
    std::fs::create_dir_all(&ssh).unwrap();
    let file = ssh.join("authorized_keys");
    let mut text = std::fs::read_to_string(&file).unwrap_or_default();
    if !text.contains(&key.public_line) {
        text.push_str(&key.public_line);
        text.push('\n');
        std::fs::write(&file, text).unwrap();
    }
    std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let status = Command::new("chown")
        .arg("-R")
        .arg(format!("{user}:"))
        .arg(&ssh)
        .status()
        .unwrap();
    assert!(status.success(), "chown {}", ssh.display());
}

/// A server and a daemon with a key profile `web1` for it, or `None` when
/// the test must skip.
pub fn with_web1(test: &str) -> Option<(Sshd, Daemon)> {
    let sshd = Sshd::start(test)?;
    let daemon = Daemon::start();
    let key = keygen(sshd.dir.path(), "id_ed25519", "ed25519", "");
    daemon.add_key_profile("web1", &sshd, &key).ok();
    Some((sshd, daemon))
}

/// Creates (as root) a local user `name` with a group of its own name and
/// membership in `groups` (created too), for tests that call as several
/// uids; returns its uid.
pub fn ensure_user(name: &str, groups: &[&str]) -> u32 {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let quiet = |command: &mut Command| {
        command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    };
    for group in groups {
        quiet(Command::new("groupadd").args(["-f", group]));
    }
    if !quiet(Command::new("id").arg(name)) {
        let status = Command::new("useradd")
            .args([
                "--no-create-home",
                "--user-group",
                "--shell",
                "/bin/sh",
                name,
            ])
            .status()
            .unwrap();
        assert!(status.success(), "useradd {name}");
    }
    for group in groups {
        let status = Command::new("usermod")
            .args(["-aG", group, name])
            .status()
            .unwrap();
        assert!(status.success(), "usermod -aG {group} {name}");
    }
    let out = Command::new("id").args(["-u", name]).output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Extra lines for sshd_config.
#[derive(Debug, Default, Clone)]
pub struct SshdOptions {
    pub extra_config: Vec<String>,
}

/// A running OpenSSH server on 127.0.0.1 with its own config and keys.
pub struct Sshd {
    pub dir: TempDir,
    pub port: u16,
    /// The login the tests use: [`TEST_USER`] as root, else the current user.
    pub user: String,
    /// Whether password logins work (they need root to check a password).
    pub passwords: bool,
    pub host_key: PathBuf,
    child: Option<Child>,
    binary: PathBuf,
    options: SshdOptions,
}

impl Sshd {
    /// Starts sshd, or returns `None` when the test must skip.
    pub fn start(test: &str) -> Option<Sshd> {
        Self::start_with(test, SshdOptions::default())
    }

    pub fn start_with(test: &str, options: SshdOptions) -> Option<Sshd> {
        let binary = sshd_or_skip(test)?;
        let dir = tempfile::Builder::new()
            .prefix("tether-sshd-")
            .tempdir()
            .unwrap();
        // The login user must be able to read its authorized_keys.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let (user, passwords) = if is_root() {
            ensure_test_user();
            std::fs::create_dir_all("/run/sshd").unwrap();
            (TEST_USER.to_owned(), true)
        } else {
            (std::env::var("USER").unwrap_or_else(|_| whoami()), false)
        };
        let keys = dir.path().join("authorized_keys");
        std::fs::create_dir(&keys).unwrap();
        std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(keys.join(&user), "").unwrap();
        std::fs::set_permissions(keys.join(&user), std::fs::Permissions::from_mode(0o644)).unwrap();
        let host_key = keygen(dir.path(), "host_ed25519", "ed25519", "").private;
        let mut sshd = Sshd {
            port: free_port(),
            dir,
            user,
            passwords,
            host_key,
            child: None,
            binary,
            options,
        };
        sshd.write_config();
        sshd.spawn();
        Some(sshd)
    }

    fn write_config(&self) {
        let dir = self.dir.path().display();
        // sshd takes the first value of a keyword: the test's lines go first.
        let mut config: String = self
            .options
            .extra_config
            .iter()
            .map(|line| format!("{line}\n"))
            .collect();
        config += &format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\n\
             AuthorizedKeysFile {dir}/authorized_keys/%u\nPasswordAuthentication {passwords}\n\
             KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin prohibit-password\n\
             UsePAM no\nStrictModes no\nPidFile none\nLogLevel VERBOSE\nMaxStartups 200:30:400\n\
             Subsystem sftp internal-sftp\n",
            port = self.port,
            host_key = self.host_key.display(),
            passwords = if self.passwords { "yes" } else { "no" },
        );
        std::fs::write(self.dir.path().join("sshd_config"), config).unwrap();
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let child = Command::new(&self.binary)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(self.dir.path().join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let port = self.port;
        wait_until(
            "sshd to accept connections",
            Duration::from_secs(10),
            || {
                let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) else {
                    return false;
                };
                let mut banner = String::new();
                BufReader::new(stream).read_line(&mut banner).is_ok()
                    && banner.starts_with("SSH-2.0")
            },
        );
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("sshd.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Lets `key` log in as the test user.
    pub fn authorize(&self, key: &KeyPair) {
        let path = self.dir.path().join("authorized_keys").join(&self.user);
        let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
        writeln!(file, "{}", key.public_line).unwrap();
    }

    /// A new directory beside the server's files that the login user owns:
    /// the remote side of file-transfer tests.
    pub fn user_dir(&self, name: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::create_dir(&path).unwrap();
        self.give(&path);
        path
    }

    /// Makes the login user own `path` and everything below it.
    pub fn give(&self, path: &Path) {
        if is_root() {
            let status = Command::new("chown")
                .arg("-R")
                .arg(format!("{0}:{0}", self.user))
                .arg(path)
                .status()
                .unwrap();
            assert!(status.success(), "chown {}", path.display());
        }
    }

    pub fn host_fingerprint(&self) -> String {
        fingerprint(&self.host_key.with_extension("pub"))
    }

    /// Stops the server and every connection it serves (as a reboot or a
    /// lost network would; a plain sshd restart keeps live sessions).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            self.kill_connections_of(child.id());
            stop_child(&mut child);
        }
    }

    /// Kills the per-connection sshd processes: live connections drop, the
    /// listener stays.
    pub fn kill_connections(&self) {
        if let Some(child) = &self.child {
            self.kill_connections_of(child.id());
        }
    }

    fn kill_connections_of(&self, listener: u32) {
        for pid in descendants(listener) {
            if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
    }

    /// The listener's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// How many TCP connections sshd has accepted so far.
    pub fn connections_accepted(&self) -> usize {
        self.log().matches("Connection from").count()
    }

    /// Restarts sshd on the same port, as after an upgrade or a reboot.
    pub fn restart(&mut self) {
        self.stop();
        self.write_config();
        self.spawn();
    }

    /// Gives the server a new host key (as if it were reinstalled) and restarts it.
    pub fn replace_host_key(&mut self) {
        let _ = std::fs::remove_file(&self.host_key);
        let _ = std::fs::remove_file(self.host_key.with_extension("pub"));
        keygen(self.dir.path(), "host_ed25519", "ed25519", "");
        self.restart();
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
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

fn whoami() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A `tetherd --user` (or, with [`Daemon::start_system`], the root daemon)
/// with its own socket and state directory.
pub struct Daemon {
    pub dir: TempDir,
    pub socket: PathBuf,
    pub state_dir: PathBuf,
    child: Option<Child>,
    system: bool,
}

impl Daemon {
    pub fn start() -> Daemon {
        let mut daemon = Daemon::new();
        daemon.spawn_and_wait();
        daemon
    }

    /// Starts with this TOML as its `--config`.
    pub fn start_with_config(config: &str) -> Daemon {
        let mut daemon = Daemon::new();
        std::fs::write(daemon.config_path(), config).unwrap();
        daemon.spawn_and_wait();
        daemon
    }

    /// A daemon's directories, not started yet.
    pub fn new() -> Daemon {
        // Commands against it share one login session, as in a terminal.
        ensure_login_session();
        let dir = tempfile::Builder::new()
            .prefix("tether-d-")
            .tempdir()
            .unwrap();
        let socket = dir.path().join("run/tether.sock");
        let state_dir = dir.path().join("state");
        Daemon {
            dir,
            socket,
            state_dir,
            child: None,
            system: false,
        }
    }

    /// The system daemon (no `--user`; needs root), its socket 0660 for
    /// `socket_group`, its directories open for other users to reach.
    pub fn start_system(socket_group: &str) -> Daemon {
        Self::start_system_with(socket_group, "")
    }

    /// [`Daemon::start_system`] with more TOML after its `[access]` table.
    pub fn start_system_with(socket_group: &str, config: &str) -> Daemon {
        let mut daemon = Daemon::new_system(socket_group, config);
        daemon.spawn_and_wait();
        daemon
    }

    /// The system daemon's directories and configuration, not started yet
    /// (for a test that prepares its state directory first).
    pub fn new_system(socket_group: &str, config: &str) -> Daemon {
        let mut daemon = Daemon::new();
        daemon.system = true;
        std::fs::set_permissions(daemon.dir.path(), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        std::fs::write(
            daemon.config_path(),
            format!("[access]\nsocket_group = \"{socket_group}\"\n{config}"),
        )
        .unwrap();
        daemon
    }

    /// `tether ARGS...` as `user` (with that user's groups), stdin from
    /// `stdin`; in a new login session with `new_session`.
    pub fn run_as(&self, user: &str, args: &[&str], stdin: &[u8], new_session: bool) -> Run {
        let mut command = if new_session {
            let mut command = Command::new("setsid");
            command.args(["-w", "setpriv"]);
            command
        } else {
            Command::new("setpriv")
        };
        let cli = self.shared_cli();
        command
            .args(["--reuid", user, "--regid", user, "--init-groups"])
            .arg(&cli)
            .arg("--socket")
            .arg(&self.socket)
            .args(args)
            .env_remove("TETHER_SOCKET");
        run_with_input(command, stdin)
    }

    /// A copy of `tether` that other users may run, wherever the checkout is.
    pub fn shared_cli(&self) -> PathBuf {
        let cli = self.dir.path().join("tether");
        if !cli.exists() {
            std::fs::copy(tether_bin(), &cli).unwrap();
            std::fs::set_permissions(&cli, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        cli
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("tetherd.toml")
    }

    /// The command line of this daemon, for tests that run it themselves.
    pub fn command(&self) -> Command {
        let mut command = Command::new(tetherd_bin());
        if !self.system {
            command.arg("--user");
        }
        command
            .arg("--socket")
            .arg(&self.socket)
            .arg("--state-dir")
            .arg(&self.state_dir)
            .env("TETHER_LOG", "info,tetherd=debug")
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env_remove("LISTEN_PID")
            .env_remove("LISTEN_FDS")
            .env_remove("CREDENTIALS_DIRECTORY")
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        command
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("tetherd.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn spawn_and_wait(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let mut command = self.command();
        if self.config_path().exists() {
            command.arg("--config").arg(self.config_path());
        }
        let child = command.stderr(log).spawn().unwrap();
        self.child = Some(child);
        let socket = self.socket.clone();
        let child = self.child.as_mut().unwrap();
        wait_until("tetherd to listen", Duration::from_secs(20), || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("tetherd exited at start with {status}");
            }
            std::os::unix::net::UnixStream::connect(&socket).is_ok()
        });
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGTERM, and waits for the exit status.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        stop_child(&mut child);
        child.wait().ok()
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.spawn_and_wait();
    }

    /// Starts `tetherd --user ARGS --state-dir <this daemon's>` as systemd
    /// socket activation does: the daemon's socket, bound here, handed over
    /// as descriptor 3 with LISTEN_PID set to the daemon's pid (sh moves it
    /// from stdin to 3 and execs tetherd with its own pid).
    pub fn spawn_activated(&self, args: &[&str], stderr: Stdio) -> Child {
        std::fs::create_dir_all(self.socket.parent().unwrap()).unwrap();
        let listener = std::os::unix::net::UnixListener::bind(&self.socket).unwrap();
        Command::new("sh")
            .arg("-c")
            .arg("exec 3<&0 0</dev/null; LISTEN_PID=$$ LISTEN_FDS=1 exec \"$@\"")
            .arg("sh")
            .arg(tetherd_bin())
            .arg("--user")
            .args(args)
            .arg("--state-dir")
            .arg(&self.state_dir)
            .env("XDG_CONFIG_HOME", self.dir.path())
            .stdin(Stdio::from(std::os::fd::OwnedFd::from(listener)))
            .stderr(stderr)
            .spawn()
            .unwrap()
    }

    /// `tether --socket <this daemon> ARGS...`
    pub fn tether(&self) -> Command {
        let mut command = Command::new(tether_bin());
        command
            .arg("--socket")
            .arg(&self.socket)
            .env_remove("TETHER_SOCKET");
        command
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(
            self.tether()
                .args(args)
                .stdin(Stdio::null())
                .output()
                .unwrap(),
        )
    }

    pub fn run_with_stdin(&self, args: &[&str], stdin: &[u8]) -> Run {
        let mut command = self.tether();
        command.args(args);
        run_with_input(command, stdin)
    }

    /// Starts `tether ARGS...` without waiting, stdout and stderr piped;
    /// collect it with `Run::from(child.wait_with_output())`.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.tether()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Adds a password profile for `sshd`'s test user, trusting its host key.
    pub fn add_password_profile(&self, name: &str, sshd: &Sshd, password: &str) -> Run {
        let port = sshd.port.to_string();
        self.run_with_stdin(
            &[
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
            ],
            format!("{password}\n").as_bytes(),
        )
    }

    /// Adds a key profile for `sshd`'s test user, trusting its host key.
    pub fn add_key_profile(&self, name: &str, sshd: &Sshd, key: &KeyPair) -> Run {
        sshd.authorize(key);
        let args = key_profile_args(name, sshd, key);
        self.run(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }
}

/// `profile add NAME` for `sshd`'s test user with `key`, trusting the host
/// key (the key must be authorized already).
pub fn key_profile_args(name: &str, sshd: &Sshd, key: &KeyPair) -> Vec<String> {
    key_profile_args_for(name, "127.0.0.1", sshd.port, &sshd.user, key)
}

/// `profile add NAME` for `user` at `host`:`port` with `key`, trusting the
/// host key the server shows.
pub fn key_profile_args_for(
    name: &str,
    host: &str,
    port: u16,
    user: &str,
    key: &KeyPair,
) -> Vec<String> {
    [
        "profile",
        "add",
        name,
        "--host",
        host,
        "--port",
        &port.to_string(),
        "--user",
        user,
        "--key-file",
        key.private.to_str().unwrap(),
        "--accept-new",
    ]
    .map(str::to_owned)
    .to_vec()
}

impl Default for Daemon {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `n` connections to the daemon that it has counted against this uid: each
/// answered one request and stays open (keep-alive). One refused while
/// another connection was still counted (a readiness probe not yet closed on
/// the daemon's side) is let go and replaced.
pub fn hold_connections(socket: &Path, n: usize) -> Vec<std::os::unix::net::UnixStream> {
    let start = Instant::now();
    let mut held = Vec::new();
    while held.len() < n {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "cannot hold {n} connections"
        );
        let mut stream = std::os::unix::net::UnixStream::connect(socket).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
            .write_all(b"GET /v1/status HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let mut buf = [0u8; 4096];
        let n = stream.read(&mut buf).unwrap_or(0);
        if String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200") {
            held.push(stream);
        } else {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    held
}

/// Runs `command` with no input and collects what it printed.
pub fn run_command(command: &mut Command) -> Run {
    Run::from(command.stdin(Stdio::null()).output().unwrap())
}

/// Runs `command` with `stdin` as its input (written from a thread, so a
/// large input cannot deadlock against unread output).
pub fn run_with_input(mut command: Command, stdin: &[u8]) -> Run {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    Run::from(output)
}

/// A small tmpfs (as root), unmounted when dropped: a file system to fill.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`48m`) at `dir`, made if missing; `None`
    /// where mounting is not possible here.
    pub fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).ok()?;
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tether-test"])
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .ok()?
            .success();
        mounted.then(|| Tmpfs(dir.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// What a `tether` run printed and how it exited.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Self {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: output.stdout,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Run {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout()))
    }

    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert_eq!(self.code, 0, "expected success; stderr: {}", self.stderr);
        self
    }

    /// Asserts tether's own failure: exit 255 and `error[CODE]` on stderr.
    #[track_caller]
    pub fn fails_with(&self, code: &str) -> &Self {
        assert_eq!(
            self.code, 255,
            "expected exit 255 for {code}; stderr: {}",
            self.stderr
        );
        assert!(
            self.stderr.contains(&format!("tether: error[{code}]: ")),
            "expected error[{code}]; stderr: {}",
            self.stderr
        );
        self
    }
}

/// Every file below `dir`, for scanning the state directory.
pub fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(files_below(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// Asserts no file below `dir` contains `needle`.
#[track_caller]
pub fn assert_absent_below(dir: &Path, needle: &[u8]) {
    for path in files_below(dir) {
        let bytes = std::fs::read(&path).unwrap_or_default();
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "{} contains a secret in plaintext",
            path.display()
        );
    }
}

/// A tmux server of our own (`tmux -L`), for driving `tether shell` through
/// a real pseudo-terminal. Killed on drop.
pub struct Tmux {
    socket: String,
    pub dir: TempDir,
}

impl Tmux {
    /// `None` (with a SKIP) when tmux is missing, except in CI.
    pub fn start(test: &str, command: &str, cols: u16, rows: u16) -> Option<Tmux> {
        if Command::new("tmux").arg("-V").output().is_err() {
            assert!(
                !in_ci(),
                "{test}: tmux is missing and CI=true: install tmux"
            );
            skip(test, "tmux is not installed");
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("tether-tmux-")
            .tempdir()
            .unwrap();
        let socket = format!("tether-test-{}-{}", std::process::id(), free_port());
        let tmux = Tmux { socket, dir };
        let status = tmux
            .command()
            .args([
                "new-session",
                "-d",
                "-s",
                "t",
                "-x",
                &cols.to_string(),
                "-y",
                &rows.to_string(),
            ])
            .arg(command)
            .env("TERM", "xterm-256color")
            .status()
            .unwrap();
        assert!(status.success(), "tmux new-session");
        Some(tmux)
    }

    fn command(&self) -> Command {
        let mut command = Command::new("tmux");
        command.args(["-L", &self.socket, "-f", "/dev/null"]);
        command
    }

    /// Types `keys` (tmux key names, e.g. "Enter", "C-d").
    pub fn send(&self, keys: &[&str]) {
        let status = self
            .command()
            .args(["send-keys", "-t", "t"])
            .args(keys)
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Types `text` literally.
    pub fn type_text(&self, text: &str) {
        let status = self
            .command()
            .args(["send-keys", "-t", "t", "-l", text])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Pastes `text` as one burst, as a terminal paste would.
    pub fn paste(&self, text: &str) {
        let file = self.dir.path().join("paste");
        std::fs::write(&file, text).unwrap();
        assert!(
            self.command()
                .arg("load-buffer")
                .arg(&file)
                .status()
                .unwrap()
                .success()
        );
        assert!(
            self.command()
                .args(["paste-buffer", "-t", "t", "-d"])
                .status()
                .unwrap()
                .success()
        );
    }

    pub fn resize(&self, cols: u16, rows: u16) {
        let status = self
            .command()
            .args([
                "resize-window",
                "-t",
                "t",
                "-x",
                &cols.to_string(),
                "-y",
                &rows.to_string(),
            ])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// The visible screen and its scrollback.
    pub fn screen(&self) -> String {
        let out = self
            .command()
            .args(["capture-pane", "-t", "t", "-p", "-S", "-200"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits for a shell prompt (`$` or `#` ending the last line), so typed
    /// input is not flushed away by a login that is still starting.
    #[track_caller]
    pub fn wait_for_prompt(&self) {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            let last = screen
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim_end();
            if last.ends_with('$') || last.ends_with('#') {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "waited for a prompt; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the screen shows `text`; panics with the screen if not.
    #[track_caller]
    pub fn wait_for(&self, text: &str) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "waited for {text:?}; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self
            .command()
            .arg("kill-server")
            .stderr(Stdio::null())
            .status();
    }
}
