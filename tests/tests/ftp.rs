//! FTP and FTPS profiles against real servers: vsftpd as plain FTP,
//! explicit and implicit FTPS (once requiring TLS session reuse), and
//! Pure-FTPd. The same `tether cp` and `tether files` as over SFTP, the
//! certificate pinned, the password sealed.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tether_e2e::ftp::{FtpServer, Tls, VsftpdOptions};
use tether_e2e::{Daemon, assert_absent_below, test_password, wait_until};

use crate::access::{SOCKET_GROUP, as_user, enroll};

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 13) as u8)
        .collect()
}

fn sha256(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A local tree with what trips FTP clients: spaces, non-ASCII names, a
/// dotfile, an empty file, an empty directory and modes.
fn awkward_tree(root: &Path) -> PathBuf {
    let tree = root.join("site");
    fs::create_dir_all(tree.join("sub dir/ünï cödé")).unwrap();
    fs::create_dir_all(tree.join("empty")).unwrap();
    fs::write(tree.join("index.html"), b"<h1>hello</h1>\n").unwrap();
    fs::write(tree.join(".htaccess"), b"Deny from all\n").unwrap();
    fs::write(tree.join("sub dir/empty file"), b"").unwrap();
    fs::write(
        tree.join("sub dir/ünï cödé/😀 data.bin"),
        pattern(70_000, 3),
    )
    .unwrap();
    fs::write(tree.join("run.sh"), b"#!/bin/sh\necho ran\n").unwrap();
    fs::set_permissions(tree.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    tree
}

/// Every file and directory below `a` is in `b`, files with the same bytes.
#[track_caller]
fn assert_same_tree(a: &Path, b: &Path) {
    let mut count = 0;
    for file in tether_e2e::files_below(a) {
        let other = b.join(file.strip_prefix(a).unwrap());
        assert_eq!(
            fs::read(&file).unwrap(),
            fs::read(&other).unwrap_or_else(|e| panic!("{}: {e}", other.display())),
            "{} differs",
            file.display()
        );
        count += 1;
    }
    assert!(count >= 5, "{count} files below {}", a.display());
    assert!(b.join("empty").is_dir(), "the empty directory came along");
}

/// The battery every FTP server gets: sizes at the edges each way, a tree
/// both ways, stdin and stdout, listing, and the single operations.
fn battery(server: &FtpServer, daemon: &Daemon, name: &str) {
    let remote = server.user_dir("remote");
    let local = tempfile::tempdir().unwrap();
    let r = |p: &str| format!("{name}:{}/{p}", remote.display());

    for (i, len) in [0usize, 1, 65_535, 65_536, 65_537].into_iter().enumerate() {
        let data = pattern(len, i as u32);
        let up = local.path().join(format!("up-{len}"));
        fs::write(&up, &data).unwrap();
        daemon.run(&["cp", s(&up), &r(&format!("f-{len}"))]).ok();
        assert_eq!(
            sha256(&fs::read(remote.join(format!("f-{len}"))).unwrap()),
            sha256(&data),
            "{len} bytes up"
        );
        let down = local.path().join(format!("down-{len}"));
        daemon.run(&["cp", &r(&format!("f-{len}")), s(&down)]).ok();
        assert_eq!(
            sha256(&fs::read(&down).unwrap()),
            sha256(&data),
            "{len} bytes down"
        );
    }

    // A tree up and back, with a progress bar nobody sees.
    let tree = awkward_tree(local.path());
    daemon.run(&["cp", "-r", s(&tree), &r("www")]).ok();
    assert_same_tree(&tree, &remote.join("www"));
    let back = local.path().join("back");
    daemon.run(&["cp", "-r", &r("www"), s(&back)]).ok();
    assert_same_tree(&tree, &back);
    assert_eq!(
        fs::metadata(back.join("run.sh"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o755,
        "the executable stayed executable"
    );

    // stdin and stdout.
    daemon
        .run_with_stdin(&["cp", "-", &r("from-stdin")], b"piped bytes")
        .ok();
    let piped = daemon.run(&["cp", &r("from-stdin"), "-"]);
    piped.ok();
    assert_eq!(piped.stdout, b"piped bytes");

    // Listing, with names as they are.
    let listed = daemon.run(&[
        "files",
        name,
        "ls",
        "--json",
        &format!("{}/www/sub dir", remote.display()),
    ]);
    listed.ok();
    let names: Vec<String> = listed
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["empty file", "ünï cödé"], "{}", listed.stdout());
    let long = daemon.run(&[
        "files",
        name,
        "ls",
        "-l",
        &format!("{}/www", remote.display()),
    ]);
    long.ok();
    assert!(
        long.stdout().contains("index.html") && long.stdout().contains("sub dir"),
        "{}",
        long.stdout()
    );
    let stat = daemon.run(&[
        "files",
        name,
        "stat",
        "--json",
        &format!("{}/f-65537", remote.display()),
    ]);
    stat.ok();
    assert_eq!(stat.json()["size"], 65_537);
    assert_eq!(stat.json()["kind"], "file");

    // The single operations.
    let p = |rel: &str| format!("{}/{rel}", remote.display());
    daemon
        .run(&["files", name, "mkdir", "-p", &p("a/b/c")])
        .ok();
    assert!(remote.join("a/b/c").is_dir());
    daemon
        .run(&["files", name, "mv", &p("f-1"), &p("a/b/moved")])
        .ok();
    assert!(remote.join("a/b/moved").is_file() && !remote.join("f-1").exists());
    daemon
        .run(&["files", name, "chmod", "600", &p("a/b/moved")])
        .ok();
    assert_eq!(
        fs::metadata(remote.join("a/b/moved"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    daemon
        .run(&["files", name, "rmdir", &p("a")])
        .fails_with("directory_not_empty");
    daemon.run(&["files", name, "rm", "-r", &p("a")]).ok();
    assert!(!remote.join("a").exists());
    daemon
        .run(&["files", name, "stat", &p("nothing-here")])
        .fails_with("no_such_file");
    daemon
        .run(&["cp", &r("nothing-here"), s(&local.path().join("x"))])
        .fails_with("no_such_file");

    // An upload over an existing file keeps that file's mode.
    fs::set_permissions(remote.join("f-0"), fs::Permissions::from_mode(0o640)).unwrap();
    daemon
        .run(&["cp", s(&local.path().join("up-1")), &r("f-0")])
        .ok();
    assert_eq!(
        fs::metadata(remote.join("f-0"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o640
    );
    assert!(
        fs::read_dir(&remote).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains(".tether-")),
        "no temporary file is left"
    );

    // The password is nowhere but sealed; nothing logs it.
    assert_absent_below(&daemon.state_dir, test_password().as_bytes());
    assert!(!daemon.log().contains(test_password()));
    let shown = daemon.run(&["profile", "show", name, "--json"]);
    assert!(!shown.stdout().contains(test_password()));
}

fn daemon_with(server: &FtpServer, name: &str) -> Daemon {
    let daemon = Daemon::start();
    let added = server.add_profile(&daemon, name, &["--json"]);
    added.ok();
    let info = added.json();
    assert_eq!(info["protocol"], server.protocol().replace('-', "_"));
    if server.tls != Tls::None {
        assert_eq!(
            info["host_keys"][0]["fingerprint"],
            server.fingerprint().as_str()
        );
        assert_eq!(info["host_keys"][0]["algorithm"], "x509");
    } else {
        assert_eq!(info["host_keys"], serde_json::json!([]));
    }
    daemon
}

#[test]
fn vsftpd_plain_ftp() {
    let Some(server) = FtpServer::vsftpd(Tls::None) else {
        return;
    };
    let daemon = daemon_with(&server, "ftp1");
    battery(&server, &daemon, "ftp1");
}

#[test]
fn vsftpd_explicit_ftps() {
    let Some(server) = FtpServer::vsftpd(Tls::Explicit) else {
        return;
    };
    let daemon = daemon_with(&server, "ftp1");
    battery(&server, &daemon, "ftp1");
}

#[test]
fn vsftpd_implicit_ftps() {
    let Some(server) = FtpServer::vsftpd(Tls::Implicit) else {
        return;
    };
    let daemon = daemon_with(&server, "ftp1");
    battery(&server, &daemon, "ftp1");
}

/// vsftpd's own default: a data connection that does not resume the
/// control connection's TLS session is refused.
#[test]
fn vsftpd_requiring_tls_session_reuse_with_a_hundred_mebibytes() {
    let Some(server) = FtpServer::vsftpd_with(VsftpdOptions {
        require_ssl_reuse: true,
        ..VsftpdOptions::new(Tls::Explicit)
    }) else {
        return;
    };
    let daemon = daemon_with(&server, "ftp1");
    battery(&server, &daemon, "ftp1");
    hundred_mebibytes(&server, &daemon, "ftp1");
}

#[test]
fn pure_ftpd_explicit_ftps_with_a_hundred_mebibytes() {
    let Some(server) = FtpServer::pure_ftpd() else {
        return;
    };
    let daemon = daemon_with(&server, "pure");
    battery(&server, &daemon, "pure");
    hundred_mebibytes(&server, &daemon, "pure");
    // Pure-FTPd offers MFMT: -p keeps times (vsftpd cannot, and says so).
    let local = tempfile::tempdir().unwrap();
    let file = local.path().join("old");
    fs::write(&file, b"old").unwrap();
    let old = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_500_000_000);
    fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let remote = server.user_dir("times");
    let copied = daemon.run(&[
        "cp",
        "-p",
        s(&file),
        &format!("pure:{}/old", remote.display()),
    ]);
    copied.ok();
    assert!(!copied.stderr.contains("warning"), "{}", copied.stderr);
    assert_eq!(
        fs::metadata(remote.join("old"))
            .unwrap()
            .modified()
            .unwrap(),
        old
    );
}

fn hundred_mebibytes(server: &FtpServer, daemon: &Daemon, name: &str) {
    let remote = server.user_dir("big");
    let local = tempfile::tempdir().unwrap();
    let data = pattern(100 * 1024 * 1024, 7);
    let up = local.path().join("up");
    fs::write(&up, &data).unwrap();
    daemon
        .run(&["cp", s(&up), &format!("{name}:{}/big", remote.display())])
        .ok();
    assert_eq!(
        sha256(&fs::read(remote.join("big")).unwrap()),
        sha256(&data)
    );
    let down = local.path().join("down");
    daemon
        .run(&["cp", &format!("{name}:{}/big", remote.display()), s(&down)])
        .ok();
    assert_eq!(sha256(&fs::read(&down).unwrap()), sha256(&data));
    // The trail has both, with their sizes and hashes.
    let trail = daemon.run(&["audit", "--json", "--profile", name]).json();
    let ends: Vec<&serde_json::Value> = trail
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            (e["op"] == "ftp.upload.end" || e["op"] == "ftp.download.end")
                && e["details"]["bytes"] == 100 * 1024 * 1024
        })
        .collect();
    assert_eq!(ends.len(), 2, "{trail}");
    assert!(
        ends.iter()
            .all(|e| e["details"]["sha256"] == sha256(&data).as_str())
    );
}

#[test]
fn vsftpd_cannot_keep_times_and_says_so() {
    let Some(server) = FtpServer::vsftpd(Tls::Explicit) else {
        return;
    };
    let daemon = daemon_with(&server, "ftp1");
    let local = tempfile::tempdir().unwrap();
    let file = local.path().join("f");
    fs::write(&file, b"x").unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o640)).unwrap();
    let remote = server.user_dir("times");
    let copied = daemon.run(&[
        "cp",
        "-p",
        s(&file),
        &format!("ftp1:{}/f", remote.display()),
    ]);
    copied.ok();
    assert!(
        copied.stderr.contains("modification time not kept") && copied.stderr.contains("MFMT"),
        "{}",
        copied.stderr
    );
    // SITE CHMOD it has: the mode came along.
    assert_eq!(
        fs::metadata(remote.join("f")).unwrap().permissions().mode() & 0o777,
        0o640
    );
}

/// A changed certificate stops everything before the password is sent;
/// `profile trust` re-learns it with the fingerprint given.
#[test]
fn a_changed_certificate_stops_everything_before_the_password() {
    let Some(mut server) = FtpServer::vsftpd(Tls::Explicit) else {
        return;
    };
    let daemon = daemon_with(&server, "ftp1");
    let remote = server.user_dir("remote");
    let target = format!("ftp1:{}/f", remote.display());
    daemon.run_with_stdin(&["cp", "-", &target], b"before").ok();
    let old = server.fingerprint();
    server.replace_certificate(false);
    let new = server.fingerprint();
    assert_ne!(old, new);
    let logins_before = server.log().matches("OK LOGIN").count();

    let refused = daemon.run_with_stdin(&["cp", "-", &target], b"after");
    refused.fails_with("certificate_mismatch");
    assert!(
        refused.stderr.contains(&old) && refused.stderr.contains(&new),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("tether profile trust ftp1"),
        "{}",
        refused.stderr
    );
    daemon
        .run(&["files", "ftp1", "ls", s(&remote)])
        .fails_with("certificate_mismatch");
    assert_eq!(fs::read(remote.join("f")).unwrap(), b"before");
    // The server saw no login at all: no USER, no PASS.
    let log = server.log();
    assert_eq!(log.matches("OK LOGIN").count(), logins_before, "{log}");
    assert!(!log.contains("FAIL LOGIN"), "{log}");
    let trail = daemon.run(&["audit", "--json", "--profile", "ftp1"]).json();
    let last_connect = trail
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|e| e["op"] == "ftp.connect")
        .unwrap();
    assert_eq!(last_connect["result"], "certificate_mismatch");
    assert_eq!(last_connect["details"]["sent"], false);
    assert_eq!(last_connect["details"]["certificate"], new.as_str());

    // A wrong fingerprint given to trust is refused; the right one works.
    daemon
        .run(&["profile", "trust", "ftp1", "--cert-fingerprint", &old])
        .fails_with("certificate_mismatch");
    daemon
        .run(&[
            "profile",
            "trust",
            "ftp1",
            "--cert-fingerprint",
            &new.to_lowercase(),
        ])
        .ok();
    daemon.run_with_stdin(&["cp", "-", &target], b"after").ok();
    assert_eq!(fs::read(remote.join("f")).unwrap(), b"after");
}

/// `--ca FILE` trusts the authority and the host name instead of one
/// certificate: a renewed certificate is fine, one from elsewhere is not.
#[test]
fn authorities_instead_of_a_pin() {
    let Some(mut server) = FtpServer::vsftpd(Tls::Explicit) else {
        return;
    };
    let daemon = Daemon::start();
    let authority = server.authority();
    let added = server.add_profile(&daemon, "byca", &["--ca", s(&authority), "--json"]);
    added.ok();
    assert_eq!(added.json()["ca"], "file");
    assert_eq!(added.json()["host_keys"], serde_json::json!([]));
    let remote = server.user_dir("remote");
    let target = format!("byca:{}/f", remote.display());
    daemon.run_with_stdin(&["cp", "-", &target], b"one").ok();

    server.replace_certificate(false);
    daemon.run(&["session", "close", "byca"]).ok();
    daemon.run_with_stdin(&["cp", "-", &target], b"two").ok();

    server.replace_certificate(true);
    daemon.run(&["session", "close", "byca"]).ok();
    let refused = daemon.run_with_stdin(&["cp", "-", &target], b"three");
    refused.fails_with("certificate_mismatch");
    assert!(
        refused.stderr.contains("not valid for the authorities"),
        "{}",
        refused.stderr
    );
    assert_eq!(fs::read(remote.join("f")).unwrap(), b"two");

    // The system's authorities do not know the test authority.
    let port = server.port.to_string();
    daemon
        .run_with_stdin(
            &[
                "profile",
                "add",
                "sys",
                "--protocol",
                "ftps",
                "--host",
                "127.0.0.1",
                "--port",
                &port,
                "--user",
                tether_e2e::TEST_USER,
                "--password-stdin",
                "--ca",
                "system",
            ],
            test_password().as_bytes(),
        )
        .fails_with("certificate_mismatch");
    daemon
        .run(&["profile", "show", "sys"])
        .fails_with("profile_not_found");
}

#[test]
fn plaintext_and_tls_mixups_are_refused_before_a_password_is_sent() {
    let Some(plain) = FtpServer::vsftpd(Tls::None) else {
        return;
    };
    let Some(explicit) = FtpServer::vsftpd(Tls::Explicit) else {
        return;
    };
    let daemon = Daemon::start();
    let add = |protocol: &str, port: u16, extra: &[&str]| {
        let port = port.to_string();
        let mut args = vec![
            "profile",
            "add",
            "p",
            "--protocol",
            protocol,
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--user",
            tether_e2e::TEST_USER,
            "--password-stdin",
        ];
        args.extend(extra);
        daemon.run_with_stdin(&args, test_password().as_bytes())
    };
    // Plain FTP needs the flag that says the password goes in clear.
    let refused = add("ftp", plain.port, &[]);
    refused.fails_with("usage");
    assert!(
        refused.stderr.contains("--allow-plaintext"),
        "{}",
        refused.stderr
    );
    // FTPS against a server without TLS: it says what the server answered.
    let fingerprint = explicit.fingerprint();
    add("ftps", plain.port, &["--cert-fingerprint", &fingerprint]).fails_with("tls_failed");
    // Implicit TLS against an explicit server, and the other way round.
    add(
        "ftps-implicit",
        explicit.port,
        &["--cert-fingerprint", &fingerprint],
    )
    .fails_with("tls_failed");
    // A key is not an FTP credential; an SSH host key is not a certificate.
    let key = tether_e2e::keygen(daemon.dir.path(), "id", "ed25519", "");
    let port = explicit.port.to_string();
    daemon
        .run(&[
            "profile",
            "add",
            "p",
            "--protocol",
            "ftps",
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--user",
            "u",
            "--key-file",
            s(&key.private),
            "--accept-new",
        ])
        .fails_with("bad_request");
    let host_key = add(
        "ftps",
        explicit.port,
        &[
            "--host-key",
            "SHA256:Wi3Rnsy2OJYP/9Yi9/bRv8W7ext+HxNKM62J8ITXFPA",
        ],
    );
    host_key.fails_with("usage");
    daemon.run(&["profile", "list", "--json"]).ok();
    assert_eq!(
        daemon.run(&["profile", "list", "--json"]).json()["profiles"],
        serde_json::json!([])
    );
    // None of it reached a login.
    for server in [&plain, &explicit] {
        let log = server.log();
        assert!(
            !log.contains("OK LOGIN") && !log.contains("FAIL LOGIN"),
            "{log}"
        );
    }
}

#[test]
fn commands_shells_and_keys_are_not_for_ftp_profiles() {
    let Some(server) = FtpServer::vsftpd(Tls::Explicit) else {
        return;
    };
    let daemon = daemon_with(&server, "ftp1");
    daemon
        .run(&["exec", "ftp1", "--", "id"])
        .fails_with("not_supported");
    daemon
        .run(&["profile", "rotate", "ftp1"])
        .fails_with("not_supported");
    daemon
        .run(&["profile", "show", "ftp1", "--public-key"])
        .fails_with("not_supported");
    let shell = daemon.run(&["shell", "ftp1"]);
    assert_eq!(shell.code, 255, "{}", shell.stderr);
    let remote = server.user_dir("remote");
    let local = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("index.html", local.path().join("link")).unwrap();
    daemon
        .run(&[
            "cp",
            s(&local.path().join("link")),
            &format!("ftp1:{}/link", remote.display()),
        ])
        .fails_with("not_supported");
}

/// An upload from stdin into `target` (which holds "the old version"),
/// stopped once its temporary file exists beside the target.
struct HalfUpload {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    remote: PathBuf,
    target: PathBuf,
}

fn half_upload(server: &FtpServer, daemon: &Daemon) -> HalfUpload {
    let remote = server.user_dir("remote");
    let target = remote.join("data");
    fs::write(&target, b"the old version").unwrap();
    server.give(&target);
    let mut child = daemon
        .tether()
        .args(["cp", "-", &format!("ftp1:{}", s(&target))])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&pattern(4 * 1024 * 1024, 9)).unwrap();
    stdin.flush().unwrap();
    wait_until(
        "a temporary file to appear",
        Duration::from_secs(10),
        || fs::read_dir(&remote).unwrap().count() == 2,
    );
    HalfUpload {
        child,
        stdin,
        remote,
        target,
    }
}

#[test]
fn an_interrupted_upload_leaves_no_half_target() {
    let Some(server) = FtpServer::vsftpd(Tls::Explicit) else {
        return;
    };
    let daemon = daemon_with(&server, "ftp1");
    let HalfUpload {
        mut child,
        stdin,
        remote,
        target,
    } = half_upload(&server, &daemon);
    child.kill().unwrap();
    child.wait().unwrap();
    drop(stdin);
    wait_until(
        "the temporary file to be removed",
        Duration::from_secs(10),
        || fs::read_dir(&remote).unwrap().count() == 1,
    );
    assert_eq!(fs::read(&target).unwrap(), b"the old version");
    // The next command works on the pooled connection.
    daemon.run(&["files", "ftp1", "ls", s(&remote)]).ok();
}

/// A download whose reader goes away mid-file: the server's reply to the
/// cut-off transfer must not answer the next command on a pooled
/// connection.
#[test]
fn an_abandoned_download_leaves_no_reply_behind() {
    let Some(server) = FtpServer::vsftpd(Tls::Explicit) else {
        return;
    };
    let daemon = daemon_with(&server, "ftp1");
    let remote = server.user_dir("remote");
    let big = remote.join("big");
    fs::write(&big, pattern(64 * 1024 * 1024, 3)).unwrap();
    server.give(&big);
    let small = remote.join("small");
    fs::write(&small, b"small and whole").unwrap();
    server.give(&small);
    for _round in 0..3 {
        // Its output is never read: the transfer stalls, then is cut off.
        let mut child = daemon
            .tether()
            .args(["cp", &format!("ftp1:{}", s(&big)), "-"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(500));
        child.kill().unwrap();
        child.wait().unwrap();
        std::thread::sleep(Duration::from_millis(200));
        daemon.run(&["files", "ftp1", "ls", s(&remote)]).ok();
        let run = daemon.run(&["cp", &format!("ftp1:{}", s(&small)), "-"]);
        run.ok();
        assert_eq!(run.stdout(), "small and whole");
    }
}

/// The server's side of the connection dies mid-upload: the message says
/// the target is as it was, and the partial file is removed over a new
/// connection.
#[test]
fn a_connection_lost_mid_upload_says_what_became_of_the_target() {
    let Some(server) = FtpServer::vsftpd(Tls::Explicit) else {
        return;
    };
    let daemon = daemon_with(&server, "ftp1");
    let HalfUpload {
        child,
        mut stdin,
        remote,
        target,
    } = half_upload(&server, &daemon);
    server.kill_sessions();
    // The rest of the input meets a connection that is gone.
    let _ = stdin.write_all(&pattern(4 * 1024 * 1024, 6));
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(255), "{stderr}");
    assert!(stderr.contains("error[ftp_error]"), "{stderr}");
    assert!(stderr.contains("was left as it was"), "{stderr}");
    assert!(!stderr.contains("could not be removed"), "{stderr}");
    assert_eq!(fs::read(&target).unwrap(), b"the old version");
    assert_eq!(
        fs::read_dir(&remote).unwrap().count(),
        1,
        "the partial file is gone"
    );
}

#[test]
fn permission_errors_are_typed() {
    let Some(server) = FtpServer::vsftpd(Tls::Explicit) else {
        return;
    };
    let daemon = daemon_with(&server, "ftp1");
    let locked = server.dir.path().join("locked");
    fs::create_dir(&locked).unwrap();
    fs::write(locked.join("root-only"), b"secret").unwrap();
    fs::set_permissions(locked.join("root-only"), fs::Permissions::from_mode(0o600)).unwrap();
    let local = tempfile::tempdir().unwrap();
    daemon
        .run(&[
            "cp",
            &format!("ftp1:{}/root-only", locked.display()),
            s(&local.path().join("x")),
        ])
        .fails_with("permission_denied");
    assert!(!local.path().join("x").exists());
    daemon
        .run_with_stdin(
            &["cp", "-", &format!("ftp1:{}/new", locked.display())],
            b"x",
        )
        .fails_with("permission_denied");
    assert!(!locked.join("new").exists());
    daemon
        .run(&["files", "ftp1", "mkdir", &format!("{}/d", locked.display())])
        .fails_with("permission_denied");
    daemon
        .run(&[
            "files",
            "ftp1",
            "rm",
            &format!("{}/root-only", locked.display()),
        ])
        .fails_with("permission_denied");
    assert!(locked.join("root-only").exists());
}

/// The pool keeps the control connection; a server that hangs up on an
/// idle login is found out and replaced without the caller noticing.
#[test]
fn the_pool_reconnects_after_the_server_closed_an_idle_connection() {
    let Some(server) = FtpServer::vsftpd_with(VsftpdOptions {
        idle_secs: Some(1),
        ..VsftpdOptions::new(Tls::Explicit)
    }) else {
        return;
    };
    let daemon = daemon_with(&server, "ftp1");
    let remote = server.user_dir("remote");
    daemon.run(&["files", "ftp1", "ls", s(&remote)]).ok();
    daemon.run(&["files", "ftp1", "ls", s(&remote)]).ok();
    let connects = |daemon: &Daemon| {
        let trail = daemon.run(&["audit", "--json", "--profile", "ftp1"]).json();
        trail
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["op"] == "ftp.connect" && e["details"]["purpose"] == "pool")
            .count()
    };
    assert_eq!(connects(&daemon), 1, "two commands, one login");
    let sessions = daemon.run(&["session", "list", "--json"]).json();
    assert_eq!(
        sessions["sessions"].as_array().unwrap().len(),
        1,
        "{sessions}"
    );
    // vsftpd hangs up after a second of silence.
    std::thread::sleep(Duration::from_secs(3));
    daemon.run(&["files", "ftp1", "ls", s(&remote)]).ok();
    daemon
        .run_with_stdin(&["cp", "-", &format!("ftp1:{}/f", remote.display())], b"x")
        .ok();
    assert_eq!(connects(&daemon), 2, "one new login after the hang-up");
    let closed = daemon.run(&["session", "close", "ftp1"]);
    closed.ok();
    let sessions = daemon.run(&["session", "list", "--json"]).json();
    assert_eq!(sessions["sessions"], serde_json::json!([]), "{sessions}");
}

/// Grants, path prefixes and the audit trail apply as they do to SFTP; the
/// prefix is checked against where the server says a path is.
#[test]
fn a_grantee_is_confined_to_its_path_prefix() {
    if !tether_e2e::is_root() {
        tether_e2e::skip("needs root: it creates users and runs the system daemon");
        return;
    }
    let Some(server) = FtpServer::vsftpd(Tls::Explicit) else {
        return;
    };
    let alice = "tether-alice";
    tether_e2e::ensure_user(alice, &[SOCKET_GROUP]);
    let daemon = Daemon::start_system(SOCKET_GROUP);
    server.add_profile(&daemon, "ftp1", &[]).ok();
    let remote = server.dir.path().join("remote");
    fs::create_dir_all(remote.join("allowed")).unwrap();
    fs::create_dir_all(remote.join("secret")).unwrap();
    fs::write(remote.join("allowed/data"), b"fine").unwrap();
    fs::write(remote.join("secret/data"), b"secret").unwrap();
    std::os::unix::fs::symlink("../secret", remote.join("allowed/escape")).unwrap();
    std::os::unix::fs::symlink("../secret/data", remote.join("allowed/file-escape")).unwrap();
    server.give(&remote);
    let r = |p: &str| format!("{}/{p}", remote.display());
    let prefix = r("allowed/");
    daemon
        .run(&[
            "grant", "add", "ftp1", "--user", alice, "--role", "operator", "--sftp", "write",
            "--path", &prefix,
        ])
        .ok();
    enroll(&daemon, alice);
    let w = |p: &str| format!("ftp1:{}", r(p));

    let read = as_user(&daemon, alice, &["cp", &w("allowed/data"), "-"]);
    read.ok();
    assert_eq!(read.stdout, b"fine");
    daemon
        .run_as(alice, &["cp", "-", &w("allowed/new")], b"new", false)
        .ok();
    assert_eq!(fs::read(remote.join("allowed/new")).unwrap(), b"new");
    as_user(&daemon, alice, &["files", "ftp1", "ls", &r("allowed")]).ok();
    for path in [
        "secret/data",
        "allowed/../secret/data",
        "allowed/escape/data",
        "allowed/file-escape",
    ] {
        as_user(&daemon, alice, &["cp", &w(path), "-"]).fails_with("path_not_allowed");
        daemon
            .run_as(alice, &["cp", "-", &w(path)], b"x", false)
            .fails_with("path_not_allowed");
    }
    as_user(&daemon, alice, &["files", "ftp1", "rm", "-r", &r("secret")])
        .fails_with("path_not_allowed");
    as_user(&daemon, alice, &["files", "ftp1", "ls", "/etc"]).fails_with("path_not_allowed");
    as_user(&daemon, alice, &["exec", "ftp1", "--", "id"]).fails_with("action_not_allowed");
    assert_eq!(fs::read(remote.join("secret/data")).unwrap(), b"secret");
    // The grantee never sees the password, and the trail names who did what.
    let shown = as_user(&daemon, alice, &["profile", "show", "ftp1", "--json"]);
    assert!(!shown.stdout().contains(test_password()));
    let trail = daemon.run(&["audit", "--json", "--profile", "ftp1"]).json();
    assert!(
        trail
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["op"] == "ftp.upload.end"
                && e["details"]["resolved"] == r("allowed/new").as_str())
    );
}
