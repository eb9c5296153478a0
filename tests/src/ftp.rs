//! FTP servers for the FTP and FTPS tests: vsftpd (plain, explicit TLS,
//! implicit TLS, with or without TLS session reuse required) and
//! Pure-FTPd, each on 127.0.0.1 with a certificate of its own (signed by a
//! test authority, so `--ca FILE` can be tried too), logging
//! [`crate::TEST_USER`] in with its password. Both need root: they switch
//! to the user they log in.
//!
//! Debian will not install Pure-FTPd beside vsftpd, so `.ci/run` unpacks
//! its package into `target/servers/`; the harness also takes
//! `TETHER_PURE_FTPD` or one on PATH.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::servers::which;
use crate::{Daemon, Run, free_port, missing, skip, stop_child, wait_until};

/// How a server speaks TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    /// Plain FTP.
    None,
    /// `AUTH TLS` on the FTP port.
    Explicit,
    /// TLS from the first byte.
    Implicit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Vsftpd,
    PureFtpd,
}

/// What a test wants of vsftpd.
#[derive(Debug, Clone)]
pub struct VsftpdOptions {
    pub tls: Tls,
    /// `require_ssl_reuse`: data connections must resume the control
    /// connection's TLS session.
    pub require_ssl_reuse: bool,
    /// `idle_session_timeout`: the server hangs up on a silent login.
    pub idle_secs: Option<u32>,
}

impl VsftpdOptions {
    pub fn new(tls: Tls) -> Self {
        VsftpdOptions {
            tls,
            require_ssl_reuse: false,
            idle_secs: None,
        }
    }
}

/// A running FTP server and its files.
pub struct FtpServer {
    pub dir: TempDir,
    pub port: u16,
    pub kind: Kind,
    pub tls: Tls,
    options: VsftpdOptions,
    child: Option<Child>,
}

fn run_openssl(args: &[&str], dir: &Path) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A test certificate authority in `dir` (once) and a server certificate
/// for localhost and 127.0.0.1 signed by it: `cert.pem`, `key.pem`.
/// With `own_authority`, the server certificate is signed by a second,
/// untrusted authority instead.
fn make_certificate(dir: &Path, own_authority: bool) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let ca = if own_authority { "other-ca" } else { "ca" };
    if !dir.join(format!("{ca}.pem")).exists() {
        let mut args = vec!["req", "-x509"];
        args.extend(ec);
        let (key, pem, subject) = (
            format!("{ca}.key"),
            format!("{ca}.pem"),
            format!("/CN=tether test {ca}"),
        );
        args.extend([
            "-keyout",
            &key,
            "-out",
            &pem,
            "-days",
            "2",
            "-subj",
            &subject,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        run_openssl(&args, dir);
    }
    let mut args = vec!["req"];
    args.extend(ec);
    args.extend([
        "-keyout",
        "key.pem",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    run_openssl(&args, dir);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let (ca_pem, ca_key) = (format!("{ca}.pem"), format!("{ca}.key"));
    run_openssl(
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            &ca_pem,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            "cert.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
        dir,
    );
    let both = [
        std::fs::read(dir.join("key.pem")).unwrap(),
        std::fs::read(dir.join("cert.pem")).unwrap(),
    ]
    .concat();
    std::fs::write(dir.join("both.pem"), both).unwrap();
}

fn pure_ftpd_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("TETHER_PURE_FTPD") {
        return Some(PathBuf::from(path));
    }
    if let Some(path) = which("pure-ftpd") {
        return Some(path);
    }
    let unpacked = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/servers/pure-ftpd/usr/sbin/pure-ftpd");
    unpacked.exists().then_some(unpacked)
}

impl FtpServer {
    pub fn vsftpd(tls: Tls) -> Option<FtpServer> {
        Self::vsftpd_with(VsftpdOptions::new(tls))
    }

    pub fn vsftpd_with(options: VsftpdOptions) -> Option<FtpServer> {
        if !crate::is_root() {
            skip("vsftpd logins need root");
            return None;
        }
        if which("vsftpd").is_none() && !Path::new("/usr/sbin/vsftpd").exists() {
            return missing("vsftpd", "apt-get install vsftpd");
        }
        Self::start(Kind::Vsftpd, options)
    }

    /// Pure-FTPd with explicit TLS required for logins and data.
    pub fn pure_ftpd() -> Option<FtpServer> {
        if !crate::is_root() {
            skip("Pure-FTPd logins need root");
            return None;
        }
        if pure_ftpd_path().is_none() {
            return missing(
                "pure-ftpd",
                "`apt-get download pure-ftpd` and unpack it into target/servers/pure-ftpd \
                 (.ci/run does), or set TETHER_PURE_FTPD",
            );
        }
        Self::start(Kind::PureFtpd, VsftpdOptions::new(Tls::Explicit))
    }

    fn start(kind: Kind, options: VsftpdOptions) -> Option<FtpServer> {
        crate::ensure_test_user();
        let dir = tempfile::Builder::new()
            .prefix("tether-ftp-")
            .tempdir()
            .unwrap();
        // The login user must reach its files below.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("empty")).unwrap();
        make_certificate(dir.path(), false);
        let mut server = FtpServer {
            dir,
            port: free_port(),
            kind,
            tls: options.tls,
            options,
            child: None,
        };
        server.spawn();
        Some(server)
    }

    fn spawn(&mut self) {
        let dir = self.dir.path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("server.log"))
            .unwrap();
        let mut command = match self.kind {
            Kind::Vsftpd => {
                let config = dir.join("vsftpd.conf");
                std::fs::write(&config, self.vsftpd_config()).unwrap();
                let mut command = Command::new("vsftpd");
                command.arg(&config);
                command
            }
            Kind::PureFtpd => {
                let mut command = Command::new(pure_ftpd_path().unwrap());
                command
                    .arg("-S")
                    .arg(format!("127.0.0.1,{}", self.port))
                    // Unix accounts, no anonymous logins, no DNS, TLS
                    // required for logins and data.
                    .args(["-l", "unix", "-E", "-H", "-Y", "3", "-2"])
                    .arg(dir.join("both.pem"));
                command
            }
        };
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let port = self.port;
        wait_until("the FTP server to listen", Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
    }

    fn vsftpd_config(&self) -> String {
        let dir = self.dir.path().display();
        let mut config = format!(
            "listen=YES\nlisten_address=127.0.0.1\nlisten_port={port}\nbackground=NO\n\
             local_enable=YES\nwrite_enable=YES\nlocal_umask=022\nchmod_enable=YES\n\
             anonymous_enable=NO\nseccomp_sandbox=NO\nsecure_chroot_dir={dir}/empty\n\
             pam_service_name=vsftpd\nvsftpd_log_file={dir}/vsftpd.log\nxferlog_enable=YES\n\
             utf8_filesystem=YES\n",
            port = self.port
        );
        if let Some(secs) = self.options.idle_secs {
            config.push_str(&format!("idle_session_timeout={secs}\n"));
        }
        if self.tls != Tls::None {
            config.push_str(&format!(
                "ssl_enable=YES\nrsa_cert_file={dir}/cert.pem\nrsa_private_key_file={dir}/key.pem\n\
                 force_local_logins_ssl=YES\nforce_local_data_ssl=YES\nrequire_ssl_reuse={}\n",
                if self.options.require_ssl_reuse {
                    "YES"
                } else {
                    "NO"
                }
            ));
        }
        if self.tls == Tls::Implicit {
            config.push_str("implicit_ssl=YES\n");
        }
        config
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Its per-connection processes too.
            for pid in crate::descendants(child.id()) {
                if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                }
            }
            stop_child(&mut child);
        }
    }

    /// Kills the processes serving connections (as a crash or a lost
    /// network would end them); the server goes on listening.
    pub fn kill_sessions(&self) {
        if let Some(child) = &self.child {
            for pid in crate::descendants(child.id()) {
                if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                }
            }
        }
    }

    /// A new certificate (signed by the same authority, or with
    /// `own_authority` by another), and the server restarted with it.
    pub fn replace_certificate(&mut self, own_authority: bool) {
        self.stop();
        make_certificate(self.dir.path(), own_authority);
        self.spawn();
    }

    /// The `--protocol` for this server.
    pub fn protocol(&self) -> &'static str {
        match self.tls {
            Tls::None => "ftp",
            Tls::Explicit => "ftps",
            Tls::Implicit => "ftps-implicit",
        }
    }

    /// The certificate's SHA-256 as `openssl x509 -fingerprint -sha256`
    /// prints it.
    pub fn fingerprint(&self) -> String {
        let out = Command::new("openssl")
            .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
            .arg(self.dir.path().join("cert.pem"))
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        text.trim().rsplit_once('=').unwrap().1.to_owned()
    }

    /// The test authority's certificate, for `--ca FILE`.
    pub fn authority(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A new directory the login user owns: the remote side of a test.
    pub fn user_dir(&self, name: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::create_dir(&path).unwrap();
        self.give(&path);
        path
    }

    /// Makes the login user own `path` and everything below it.
    pub fn give(&self, path: &Path) {
        crate::chown_tree(path, &format!("{0}:{0}", crate::TEST_USER));
    }

    /// `profile add NAME` for this server: the certificate pinned by its
    /// fingerprint (plain FTP allowed explicitly), and `extra` flags.
    pub fn add_profile(&self, daemon: &Daemon, name: &str, extra: &[&str]) -> Run {
        let port = self.port.to_string();
        let fingerprint = self.fingerprint();
        let mut args = vec![
            "profile",
            "add",
            name,
            "--protocol",
            self.protocol(),
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--user",
            crate::TEST_USER,
            "--password-stdin",
        ];
        if self.tls == Tls::None {
            args.push("--allow-plaintext");
        } else if !extra
            .iter()
            .any(|a| a.starts_with("--ca") || *a == "--accept-new")
        {
            args.extend(["--cert-fingerprint", &fingerprint]);
        }
        args.extend(extra);
        daemon.run_with_stdin(&args, crate::test_password().as_bytes())
    }

    /// The server's log (vsftpd's own, and what either wrote on stderr).
    pub fn log(&self) -> String {
        let read =
            |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        read("vsftpd.log") + &read("server.log")
    }
}

impl Drop for FtpServer {
    fn drop(&mut self) {
        self.stop();
    }
}
