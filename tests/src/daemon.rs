//! A real `tetherd` with its own socket and state directory, and `tether`
//! runs against it.

use super::*;

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
            crate::copy_executable(&tether_bin(), &cli);
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
    /// `count` commands on `profile` side by side, the i-th running
    /// `{before}echo i`: each must succeed and print its own number.
    pub fn side_by_side(&self, profile: &str, count: usize, before: &str) {
        let children: Vec<_> = (0..count)
            .map(|i| self.spawn(&["exec", profile, "--", &format!("{before}echo {i}")]))
            .collect();
        for (i, child) in children.into_iter().enumerate() {
            let run = Run::from(child.wait_with_output().unwrap());
            run.ok();
            assert_eq!(run.stdout(), format!("{i}\n"), "command {i}");
        }
    }

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
/// Sends the HTTP `request` (one that upgrades) on a new connection to
/// `socket` and reads the answer's head, which must be `101`: the
/// connection, upgraded (reads time out after 20 s).
pub fn raw_upgrade(socket: &Path, request: &[u8]) -> std::os::unix::net::UnixStream {
    use std::io::{Read, Write};
    let mut stream = std::os::unix::net::UnixStream::connect(socket).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "no answer");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    stream
}

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
