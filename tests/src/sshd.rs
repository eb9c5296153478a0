//! A real OpenSSH `sshd` on 127.0.0.1 with its own config and host key,
//! and the keys tests log in with.

use super::*;

fn sshd_path() -> Option<PathBuf> {
    ["/usr/sbin/sshd", "/usr/local/sbin/sshd", "/sbin/sshd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Returns `None` (and says why) when the SSH tests must skip.
pub fn sshd_or_skip() -> Option<PathBuf> {
    match sshd_path() {
        Some(path) => Some(path),
        None => crate::missing("OpenSSH sshd", "apt-get install openssh-server"),
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

/// Extra lines for sshd_config, and where it runs.
#[derive(Debug, Default, Clone)]
pub struct SshdOptions {
    pub extra_config: Vec<String>,
    /// Run inside this network namespace ([`crate::Netns`]'s name).
    pub namespace: Option<String>,
    /// The address to listen on [default: 127.0.0.1].
    pub listen: Option<String>,
    /// The SFTP subsystem's command [default: internal-sftp].
    pub sftp: Option<String>,
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
    pub fn start() -> Option<Sshd> {
        Self::start_with(SshdOptions::default())
    }

    pub fn start_with(options: SshdOptions) -> Option<Sshd> {
        let binary = sshd_or_skip()?;
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
            "Port {port}\nListenAddress {listen}\nHostKey {host_key}\n\
             AuthorizedKeysFile {dir}/authorized_keys/%u\nPasswordAuthentication {passwords}\n\
             KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin prohibit-password\n\
             UsePAM no\nStrictModes no\nPidFile none\nLogLevel VERBOSE\nMaxStartups 200:30:400\n\
             Subsystem sftp {sftp}\n",
            sftp = self.options.sftp.as_deref().unwrap_or("internal-sftp"),
            port = self.port,
            listen = self.host(),
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
        let mut command = match &self.options.namespace {
            Some(name) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", name]).arg(&self.binary);
                command
            }
            None => Command::new(&self.binary),
        };
        let child = command
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
        if self.options.namespace.is_some() {
            // Not reachable from here to try: its own word for it.
            let listening = format!("Server listening on {} port {port}", self.host());
            let started = self.log().matches(&listening).count();
            return wait_until("sshd to listen", Duration::from_secs(10), || {
                self.log().matches(&listening).count() > started
            });
        }
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

    /// The address it listens on.
    pub fn host(&self) -> &str {
        self.options.listen.as_deref().unwrap_or("127.0.0.1")
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
            chown_tree(path, &format!("{0}:{0}", self.user));
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

fn whoami() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}
