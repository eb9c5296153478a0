//! SSH servers other than OpenSSH's, for the tests that check tether with
//! the servers people actually run: Dropbear (with OpenSSH's sftp-server, as
//! Debian pairs them) and Python asyncssh's server (its own SFTP server,
//! which follows the draft's SSH_FXP_SYMLINK order). Each listens on
//! 127.0.0.1 with its own host key; where one is missing the test says so
//! and skips, except in CI.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::{KeyPair, fingerprint, free_port, keygen, missing, skip, stop_child, wait_until};

/// Where `program` is on PATH, if anywhere.
pub fn which(program: &str) -> Option<PathBuf> {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .output()
        .ok()?;
    let path = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!path.is_empty()).then(|| PathBuf::from(path))
}

/// What the tests need of a server that is not OpenSSH's.
pub trait Server {
    fn dir(&self) -> &Path;
    fn port(&self) -> u16;
    /// The user the tests log in as.
    fn user(&self) -> &str;
    /// Lets `key` log in.
    fn authorize(&self, key: &KeyPair);
    /// Its host key's fingerprint, as ssh-keygen prints it.
    fn host_fingerprint(&self) -> String;
}

/// A daemon with a key profile `name` for `server`, its host key learned
/// (and checked against the server's own).
pub fn daemon_for(server: &impl Server, name: &str) -> crate::Daemon {
    let daemon = crate::Daemon::start();
    let key = keygen(server.dir(), "id_ed25519", "ed25519", "");
    server.authorize(&key);
    let mut args =
        crate::key_profile_args_for(name, "127.0.0.1", server.port(), server.user(), &key);
    args.push("--json".into());
    let run = daemon.run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    run.ok();
    assert_eq!(
        run.json()["host_keys"][0]["fingerprint"],
        server.host_fingerprint().as_str(),
        "the pinned key is the server's"
    );
    daemon
}

fn listening(port: u16) -> bool {
    use std::io::{BufRead, BufReader};
    let Ok(stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut banner = String::new();
    BufReader::new(stream).read_line(&mut banner).is_ok() && banner.starts_with("SSH-2.0")
}

/// A Dropbear server for [`crate::TEST_USER`], logging in with keys from
/// that user's `~/.ssh/authorized_keys` (Dropbear reads no other file).
pub struct Dropbear {
    pub dir: TempDir,
    pub port: u16,
    pub user: String,
    host_public: PathBuf,
    child: Option<Child>,
}

impl Dropbear {
    /// Needs root (Dropbear switches to the user it logs in).
    pub fn start() -> Option<Dropbear> {
        if !crate::is_root() {
            skip("Dropbear logins need root");
            return None;
        }
        let Some(dropbear) = which("dropbear") else {
            return missing("dropbear", "apt-get install dropbear-bin");
        };
        // Debian's Dropbear runs /usr/lib/sftp-server; OpenSSH installs its
        // sftp-server elsewhere. .ci/run links it.
        if !Path::new("/usr/lib/sftp-server").exists() {
            return missing(
                "/usr/lib/sftp-server",
                "ln -s /usr/lib/openssh/sftp-server /usr/lib/sftp-server",
            );
        }
        crate::sshd_or_skip()?;
        let dir = tempfile::Builder::new()
            .prefix("tether-dropbear-")
            .tempdir()
            .unwrap();
        let user = crate::TEST_USER.to_owned();
        crate::ensure_test_user();
        // An OpenSSH key, converted: Dropbear reads its own format.
        let openssh_key = keygen(dir.path(), "host_ed25519", "ed25519", "");
        let host_key = dir.path().join("host.dropbear");
        let converted = Command::new("dropbearconvert")
            .args(["openssh", "dropbear"])
            .arg(&openssh_key.private)
            .arg(&host_key)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(converted, "dropbearconvert");
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("dropbear.log")).unwrap();
        let child = Command::new(dropbear)
            .args(["-F", "-E", "-s"])
            .arg("-p")
            .arg(format!("127.0.0.1:{port}"))
            .arg("-r")
            .arg(&host_key)
            .arg("-P")
            .arg(dir.path().join("dropbear.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let server = Dropbear {
            host_public: openssh_key.private.with_extension("pub"),
            dir,
            port,
            user,
            child: Some(child),
        };
        wait_until("dropbear to listen", Duration::from_secs(10), || {
            listening(port)
        });
        Some(server)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dropbear.log")).unwrap_or_default()
    }
}

impl Server for Dropbear {
    fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn port(&self) -> u16 {
        self.port
    }

    fn user(&self) -> &str {
        &self.user
    }

    /// Appended to the user's own authorized_keys (Dropbear reads no other).
    fn authorize(&self, key: &KeyPair) {
        crate::authorize_in_home(&self.user, key);
    }

    fn host_fingerprint(&self) -> String {
        fingerprint(&self.host_public)
    }
}

impl Drop for Dropbear {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Its per-connection children too.
            for pid in crate::descendants(child.id()) {
                if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                }
            }
            stop_child(&mut child);
        }
    }
}

/// The asyncssh server the tests run: keys from a file of its own, exec
/// through /bin/sh, and asyncssh's own SFTP server, all as the test's user.
const ASYNCSSH_SERVER: &str = r#"
import asyncio, sys, asyncssh

port, host_key, authorized = int(sys.argv[1]), sys.argv[2], sys.argv[3]
options = sys.argv[4:]

if "no-posix-rename" in options:
    # A plain SFTP server: rename refuses an existing target.
    handler = asyncssh.sftp.SFTPServerHandler
    handler._extensions = [e for e in handler._extensions
                           if e[0] != b"posix-rename@openssh.com"]

sftp_factory = True
if "hostile-names" in options:
    # A lying SFTP server: beside each file named "payload" a listing
    # names others that climb out of the directory listed, and itself again.
    class HostileSFTP(asyncssh.SFTPServer):
        async def scandir(self, path):
            async for name in super().scandir(path):
                yield name
                if name.filename == b"payload":
                    for crafted in (b"../escaped", b"sub/../../escaped2", b"payload"):
                        yield asyncssh.SFTPName(crafted, attrs=name.attrs)
    sftp_factory = HostileSFTP

class Server(asyncssh.SSHServer):
    def connection_made(self, conn):
        self._conn = conn

    def begin_auth(self, username):
        # Read at each login, so that tests may add keys as they go.
        self._conn.set_authorized_keys(authorized)
        return True

async def pump(source, sink):
    while True:
        data = await source.read(65536)
        if not data:
            break
        sink.write(data)
        await sink.drain()

async def feed(process, proc):
    try:
        await pump(process.stdin, proc.stdin)
        proc.stdin.close()
    except (BrokenPipeError, ConnectionResetError):
        pass

async def run(process):
    proc = await asyncio.create_subprocess_shell(
        process.command or "exec /bin/sh -i",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    feeding = asyncio.ensure_future(feed(process, proc))
    # All of the output is sent before the exit status.
    await asyncio.gather(pump(proc.stdout, process.stdout), pump(proc.stderr, process.stderr))
    status = await proc.wait()
    feeding.cancel()
    process.exit(status)

async def main():
    await asyncssh.listen(
        "127.0.0.1", port,
        server_factory=Server,
        server_host_keys=[host_key],
        sftp_factory=sftp_factory,
        allow_scp=False,
        process_factory=run,
        encoding=None,
    )
    print("listening", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"#;

/// An asyncssh server on 127.0.0.1.
pub struct AsyncSsh {
    pub dir: TempDir,
    pub port: u16,
    /// Any name logs in (asyncssh maps no system users); this one is used.
    pub user: String,
    host_public: PathBuf,
    child: Option<Child>,
}

impl AsyncSsh {
    pub fn start() -> Option<AsyncSsh> {
        Self::start_with(&[])
    }

    /// With `options` for the script: `no-posix-rename` takes that
    /// extension away from its SFTP server; `hostile-names` makes it list,
    /// beside each file named `payload`, names that climb out of the
    /// directory (`../escaped`, `sub/../../escaped2`) and `payload` again.
    pub fn start_with(options: &[&str]) -> Option<AsyncSsh> {
        let has_asyncssh = Command::new("python3")
            .args(["-c", "import asyncssh"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !has_asyncssh {
            return missing("Python asyncssh", "pip install asyncssh");
        }
        let dir = tempfile::Builder::new()
            .prefix("tether-asyncssh-")
            .tempdir()
            .unwrap();
        let host = keygen(dir.path(), "host_ed25519", "ed25519", "");
        let authorized = dir.path().join("authorized_keys");
        std::fs::write(&authorized, "").unwrap();
        let script = dir.path().join("server.py");
        std::fs::write(&script, ASYNCSSH_SERVER).unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("asyncssh.log")).unwrap();
        let child = Command::new("python3")
            .arg(&script)
            .arg(port.to_string())
            .arg(&host.private)
            .arg(&authorized)
            .args(options)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let server = AsyncSsh {
            host_public: host.private.with_extension("pub"),
            dir,
            port,
            user: "tether".to_owned(),
            child: Some(child),
        };
        wait_until("asyncssh to listen", Duration::from_secs(20), || {
            listening(port)
        });
        Some(server)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("asyncssh.log")).unwrap_or_default()
    }
}

impl Server for AsyncSsh {
    fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn port(&self) -> u16 {
        self.port
    }

    fn user(&self) -> &str {
        &self.user
    }

    fn authorize(&self, key: &KeyPair) {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.path().join("authorized_keys"))
            .unwrap();
        writeln!(file, "{}", key.public_line).unwrap();
    }

    fn host_fingerprint(&self) -> String {
        fingerprint(&self.host_public)
    }
}

impl Drop for AsyncSsh {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_child(&mut child);
        }
    }
}
