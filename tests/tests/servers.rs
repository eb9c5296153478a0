//! The servers people actually run, and the settings hardened hosts use:
//! one battery of commands and file operations against Dropbear, asyncssh
//! and OpenSSH with `MaxSessions 1`, and OpenSSH in the configurations that
//! change how a login or a session goes (two methods, certificates, a
//! printing login, no terminal, a banner, IPv6).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tether_e2e::servers::{AsyncSsh, Dropbear, daemon_for};
use tether_e2e::{Daemon, KeyPair, Sshd, SshdOptions, Tmux, keygen, tether_bin};

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A local tree of small files (the shape of a configuration directory)
/// with an executable, a private file and nested directories.
fn small_tree(root: &Path) -> PathBuf {
    let tree = root.join("tree");
    fs::create_dir_all(tree.join("sub/deeper")).unwrap();
    for i in 0..40usize {
        let dir = match i % 3 {
            0 => tree.clone(),
            1 => tree.join("sub"),
            _ => tree.join("sub/deeper"),
        };
        let data: Vec<u8> = (0..i * 997).map(|j| (j * 31 + i) as u8).collect();
        fs::write(dir.join(format!("file-{i}")), data).unwrap();
    }
    fs::write(tree.join("run.sh"), "#!/bin/sh\necho ran\n").unwrap();
    fs::set_permissions(tree.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(tree.join("secret"), "s").unwrap();
    fs::set_permissions(tree.join("secret"), fs::Permissions::from_mode(0o600)).unwrap();
    tree
}

/// Every file below `a` is in `b` with the same bytes and permission bits.
#[track_caller]
fn assert_same_tree(a: &Path, b: &Path) {
    let files = tether_e2e::files_below(a);
    assert!(
        files.len() > 40,
        "{} files below {}",
        files.len(),
        a.display()
    );
    for file in files {
        let relative = file.strip_prefix(a).unwrap();
        let other = b.join(relative);
        assert!(
            fs::read(&file).unwrap() == fs::read(&other).unwrap_or_default(),
            "{} differs",
            relative.display()
        );
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&file), mode(&other), "mode of {}", relative.display());
    }
}

/// What every server must do alike: commands with their words, output and
/// status; trees copied repeatedly each way; replacing, renaming and
/// linking; a file whose size stat does not know. `remote` is a directory
/// the login user owns on the (local) server.
fn battery(daemon: &Daemon, profile: &str, remote: &Path) {
    let run = daemon.run(&["exec", profile, "printf", "%s|", "a b", "it's", "$HOME", ""]);
    run.ok();
    assert_eq!(run.stdout(), "a b|it's|$HOME||");
    let run = daemon.run(&["exec", profile, "echo out; echo err >&2; exit 7"]);
    assert_eq!(run.code, 7, "{}", run.stderr);
    assert_eq!(run.stdout(), "out\n");
    assert_eq!(run.stderr, "err\n");
    let run = daemon.run_with_stdin(&["exec", profile, "wc -c"], &[7u8; 100_000]);
    assert_eq!(run.stdout().trim(), "100000");
    for i in 0..20 {
        let run = daemon.run(&["exec", profile, &format!("echo {i}")]);
        run.ok();
        assert_eq!(run.stdout(), format!("{i}\n"));
    }

    // Trees, several times over (a flaky subsystem start shows here).
    let local = tempfile::tempdir().unwrap();
    let tree = small_tree(local.path());
    for round in 0..3 {
        let target = remote.join(format!("tree-{round}"));
        daemon
            .run(&["cp", "-r", s(&tree), &format!("{profile}:{}", s(&target))])
            .ok();
        assert_same_tree(&tree, &target);
    }
    let back = local.path().join("back");
    daemon
        .run(&[
            "cp",
            "-r",
            &format!("{profile}:{}", s(&remote.join("tree-0"))),
            s(&back),
        ])
        .ok();
    assert_same_tree(&tree, &back);

    // A second upload to the same name replaces the file, whole.
    let file = local.path().join("note");
    let target = format!("{profile}:{}", s(&remote.join("note")));
    for text in ["first", "second, longer"] {
        fs::write(&file, text).unwrap();
        daemon.run(&["cp", s(&file), &target]).ok();
        assert_eq!(fs::read_to_string(remote.join("note")).unwrap(), text);
    }
    // mv onto an existing file replaces it, as rename(2) does.
    let r = |name: &str| s(&remote.join(name)).to_owned();
    daemon
        .run(&["files", profile, "mv", &r("tree-1/secret"), &r("note")])
        .ok();
    assert_eq!(fs::read_to_string(remote.join("note")).unwrap(), "s");
    assert!(!remote.join("tree-1/secret").exists());
    let leftovers: Vec<_> = fs::read_dir(remote)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");

    // ln -s makes the link asked for, whatever order the server takes.
    daemon
        .run(&["files", profile, "ln", "-s", "tree-0/run.sh", &r("link")])
        .ok();
    assert_eq!(
        fs::read_link(remote.join("link")).unwrap(),
        Path::new("tree-0/run.sh")
    );
    assert!(
        fs::metadata(remote.join("tree-0/run.sh"))
            .unwrap()
            .is_file()
    );
    let run = daemon.run(&["files", profile, "stat", "--json", &r("link")]);
    run.ok();
    assert_eq!(run.json()["target"], "tree-0/run.sh", "{}", run.stdout());

    // A file stat calls empty: read to its end.
    let run = daemon.run(&["cp", &format!("{profile}:/proc/cpuinfo"), "-"]);
    run.ok();
    assert!(run.stdout().contains("processor"));

    daemon
        .run(&["files", profile, "rm", "-r", &r("tree-2")])
        .ok();
    assert!(!remote.join("tree-2").exists());
}

/// A directory the server's login user owns.
fn owned_dir(user: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("tether-remote-")
        .tempdir()
        .unwrap();
    if let Some(user) = user {
        tether_e2e::chown_tree(dir.path(), &format!("{user}:"));
    }
    dir
}

#[test]
fn dropbear_passes_the_battery() {
    let Some(server) = Dropbear::start() else {
        return;
    };
    let daemon = daemon_for(&server, "db");
    let remote = owned_dir(Some(&server.user));
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        battery(&daemon, "db", remote.path());
        // Dropbear before 2024.86 closes a new channel whose request has
        // not arrived when another command's process exits, then ends the
        // connection: side by side, each command needs a connection of its
        // own.
        for _round in 0..3 {
            daemon.side_by_side("db", 12, "");
        }
    }));
    if let Err(panic) = outcome {
        eprintln!("dropbear's log:\n{}", server.log());
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn asyncssh_passes_the_battery() {
    let Some(server) = AsyncSsh::start() else {
        return;
    };
    let daemon = daemon_for(&server, "as");
    let remote = owned_dir(None);
    battery(&daemon, "as", remote.path());
}

/// A server that lists names with a `/` in them (`../escaped`) cannot make
/// a tree's download write outside its target, as scp's CVE-2019-6111
/// let one do, nor a recursive removal remove outside the tree: such names
/// are left out of every listing.
#[test]
fn names_a_server_lies_about_stay_inside_the_target() {
    let Some(server) = AsyncSsh::start_with(&["hostile-names"]) else {
        return;
    };
    let daemon = daemon_for(&server, "liar");
    let remote = owned_dir(None);
    let tree = remote.path().join("tree");
    fs::create_dir_all(tree.join("sub")).unwrap();
    fs::write(tree.join("payload"), b"P").unwrap();
    // What the crafted names reach on the server, so that their download
    // would succeed.
    fs::write(remote.path().join("escaped"), b"E").unwrap();
    fs::write(remote.path().join("escaped2"), b"E2").unwrap();
    let local = tempfile::tempdir().unwrap();
    let out = local.path().join("out");
    fs::create_dir(&out).unwrap();
    daemon
        .run(&["cp", "-r", &format!("liar:{}", s(&tree)), s(&out)])
        .ok();
    assert_eq!(fs::read(out.join("tree/payload")).unwrap(), b"P");
    for escaped in ["escaped", "escaped2"] {
        assert!(!out.join(escaped).exists(), "{escaped} written outside");
        assert!(
            !local.path().join(escaped).exists(),
            "{escaped} written outside"
        );
    }
    let listed = daemon
        .run(&["sftp", "liar", "ls", "-a", "--json", s(&tree)])
        .ok()
        .json();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["payload", "sub"], "{listed}");
    // Nor can they make a recursive removal reach outside.
    daemon.run(&["sftp", "liar", "rm", "-r", s(&tree)]).ok();
    assert!(!tree.exists());
    assert_eq!(fs::read(remote.path().join("escaped")).unwrap(), b"E");
    assert_eq!(fs::read(remote.path().join("escaped2")).unwrap(), b"E2");
}

#[test]
fn a_server_without_posix_rename_still_replaces_files_whole() {
    let Some(server) = AsyncSsh::start_with(&["no-posix-rename"]) else {
        return;
    };
    let daemon = daemon_for(&server, "plain");
    let remote = owned_dir(None);
    let local = tempfile::tempdir().unwrap();
    let file = local.path().join("config");
    let target = format!("plain:{}", s(&remote.path().join("config")));
    for round in 0..3 {
        let text = format!("version {round}\n").repeat(round + 1);
        fs::write(&file, &text).unwrap();
        daemon.run(&["cp", s(&file), &target]).ok();
        assert_eq!(
            fs::read_to_string(remote.path().join("config")).unwrap(),
            text
        );
    }
    daemon.run(&["cp", "--inplace", s(&file), &target]).ok();
    fs::write(remote.path().join("other"), "other").unwrap();
    daemon
        .run(&[
            "files",
            "plain",
            "mv",
            s(&remote.path().join("other")),
            s(&remote.path().join("config")),
        ])
        .ok();
    assert_eq!(
        fs::read_to_string(remote.path().join("config")).unwrap(),
        "other"
    );
    let names: Vec<_> = fs::read_dir(remote.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["config"], "nothing is left aside");
}

fn openssh_with(extra: &[&str]) -> Option<(Sshd, Daemon)> {
    let options = SshdOptions {
        extra_config: extra.iter().map(|l| l.to_string()).collect(),
        ..Default::default()
    };
    let sshd = Sshd::start_with(options)?;
    Some((sshd, Daemon::start()))
}

/// OpenSSH with `extra` settings, and a key profile `name` for it.
fn openssh_profile(extra: &[&str], name: &str) -> Option<(Sshd, Daemon)> {
    let (sshd, daemon) = openssh_with(extra)?;
    let key = keygen(sshd.dir.path(), "id_ed25519", "ed25519", "");
    daemon.add_key_profile(name, &sshd, &key).ok();
    Some((sshd, daemon))
}

#[test]
fn openssh_with_max_sessions_1_passes_the_battery() {
    let Some((sshd, daemon)) = openssh_profile(&["MaxSessions 1"], "one") else {
        return;
    };
    let remote = sshd.user_dir("remote");
    battery(&daemon, "one", &remote);
    // Side by side: each command gets a connection of its own.
    daemon.side_by_side("one", 6, "sleep 0.5; ");
}

#[test]
fn a_growing_file_is_read_to_its_end() {
    let Some((sshd, daemon)) = tether_e2e::with_web1() else {
        return;
    };
    let remote = sshd.user_dir("remote");
    let log = remote.join("app.log");
    fs::write(&log, vec![b'x'; 4 << 20]).unwrap();
    sshd.give(&remote);
    let writer = {
        let log = log.clone();
        std::thread::spawn(move || {
            use std::io::Write;
            let mut file = fs::OpenOptions::new().append(true).open(&log).unwrap();
            for _ in 0..100 {
                file.write_all(&[b'y'; 64 << 10]).unwrap();
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let local = tempfile::tempdir().unwrap();
    let copy = local.path().join("app.log");
    daemon
        .run(&["cp", &format!("web1:{}", s(&log)), s(&copy)])
        .ok();
    writer.join().unwrap();
    let got = fs::read(&copy).unwrap();
    let now = fs::read(&log).unwrap();
    assert!(got.len() >= 4 << 20, "only {} bytes", got.len());
    assert!(now.starts_with(&got), "the copy is not the file's start");
}

#[test]
fn two_methods_are_given_in_the_order_the_server_asks() {
    let Some((sshd, daemon)) = openssh_with(&["AuthenticationMethods publickey,password"]) else {
        return;
    };
    if !sshd.passwords {
        tether_e2e::skip("password logins need root");
        return;
    }
    let key = keygen(sshd.dir.path(), "id_ed25519", "ed25519", "");
    sshd.authorize(&key);
    let port = sshd.port.to_string();
    let args = |name: &'static str| {
        vec![
            "profile".to_owned(),
            "add".into(),
            name.into(),
            "--host".into(),
            "127.0.0.1".into(),
            "--port".into(),
            port.clone(),
            "--user".into(),
            sshd.user.clone(),
            "--accept-new".into(),
        ]
    };
    let with = |mut base: Vec<String>, more: &[&str]| {
        base.extend(more.iter().map(|m| m.to_string()));
        base
    };
    let password = format!("{}\n", tether_e2e::test_password());

    // The key alone is accepted, and the error says what else is needed.
    let only_key = with(args("only-key"), &["--key-file", s(&key.private)]);
    let run = daemon.run(&only_key.iter().map(String::as_str).collect::<Vec<_>>());
    run.fails_with("auth_failed");
    assert!(
        run.stderr
            .contains("accepted a key but asks for more (password"),
        "{}",
        run.stderr
    );
    // The password alone is refused: the server wants the key first.
    let only_password = with(args("only-password"), &["--password-stdin"]);
    let run = daemon.run_with_stdin(
        &only_password.iter().map(String::as_str).collect::<Vec<_>>(),
        password.as_bytes(),
    );
    run.fails_with("auth_failed");
    assert!(run.stderr.contains("publickey"), "{}", run.stderr);

    let both = with(
        args("both"),
        &["--key-file", s(&key.private), "--password-stdin", "--json"],
    );
    let run = daemon.run_with_stdin(
        &both.iter().map(String::as_str).collect::<Vec<_>>(),
        password.as_bytes(),
    );
    run.ok();
    assert_eq!(run.json()["auth"], "key_and_password");
    let run = daemon.run(&["exec", "both", "echo", "in"]);
    run.ok();
    assert_eq!(run.stdout(), "in\n");
    let log = sshd.log();
    assert!(
        log.contains("Partial publickey") && log.contains("Accepted password"),
        "{log}"
    );
}

/// Signs `key` with `ca` for `principals`, valid for `validity` (as
/// ssh-keygen -V takes it); returns the certificate's path.
fn certify(ca: &KeyPair, key: &KeyPair, principals: &str, validity: &str) -> PathBuf {
    let status = std::process::Command::new("ssh-keygen")
        .args([
            "-q",
            "-s",
            s(&ca.private),
            "-I",
            "tether-test",
            "-n",
            principals,
            "-V",
            validity,
        ])
        .arg(key.private.with_extension("pub"))
        .status()
        .unwrap();
    assert!(status.success(), "ssh-keygen -s");
    let cert = key.private.with_file_name(format!(
        "{}-cert.pub",
        key.private.file_name().unwrap().to_str().unwrap()
    ));
    assert!(cert.exists(), "{}", cert.display());
    cert
}

#[test]
fn a_user_certificate_logs_in_where_only_its_authority_is_trusted() {
    let dir = tempfile::Builder::new()
        .prefix("tether-ca-")
        .tempdir()
        .unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let ca = keygen(dir.path(), "ca", "ed25519", "");
    let ca_line = format!("TrustedUserCAKeys {}", s(&ca.private.with_extension("pub")));
    let Some((sshd, daemon)) = openssh_with(&[&ca_line]) else {
        return;
    };
    let key = keygen(dir.path(), "id_ed25519", "ed25519", "");
    let add = |name: &str, extra: &[&str]| {
        let mut args = tether_e2e::key_profile_args(name, &sshd, &key);
        args.extend(extra.iter().map(|a| a.to_string()));
        daemon.run(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    // Without the certificate the key is not authorized anywhere.
    add("plain", &[]).fails_with("auth_failed");

    let cert = certify(&ca, &key, &sshd.user, "-5m:+3d");
    add("cert", &["--certificate", s(&cert)]).ok();
    let run = daemon.run(&["exec", "cert", "id", "-un"]);
    run.ok();
    assert_eq!(run.stdout().trim(), sshd.user);
    let show = daemon.run(&["profile", "show", "cert"]);
    show.ok();
    assert!(
        show.stdout().contains(&format!("for {}", sshd.user))
            && show.stdout().contains("tether-test"),
        "{}",
        show.stdout()
    );
    // Expiring within a week: said on show.
    assert!(show.stderr.contains("expires in"), "{}", show.stderr);
    let json = daemon.run(&["profile", "show", "cert", "--json"]);
    assert_eq!(
        json.json()["certificate"]["principals"][0],
        sshd.user.as_str()
    );

    // A certificate for another key is refused before anything is sent.
    let other = keygen(dir.path(), "other", "ed25519", "");
    let other_cert = certify(&ca, &other, &sshd.user, "+1d");
    let run = add("mismatch", &["--certificate", s(&other_cert)]);
    assert_eq!(run.code, 255, "{}", run.stderr);
    assert!(run.stderr.contains("certificate"), "{}", run.stderr);
    // One for another principal: the server refuses it.
    let wrong = keygen(dir.path(), "wrong", "ed25519", "");
    let wrong_cert = certify(&ca, &wrong, "somebody-else", "+1d");
    let port = sshd.port.to_string();
    daemon
        .run(&[
            "profile",
            "add",
            "wrong",
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--user",
            &sshd.user,
            "--key-file",
            s(&wrong.private),
            "--certificate",
            s(&wrong_cert),
            "--accept-new",
        ])
        .fails_with("auth_failed");
}

#[test]
fn a_printing_login_breaks_sftp_with_what_openssh_says() {
    let Some((_sshd, daemon)) = openssh_profile(
        &["ForceCommand echo Welcome; exec /usr/lib/openssh/sftp-server"],
        "chatty",
    ) else {
        return;
    };
    let run = daemon.run(&["files", "chatty", "ls", "/"]);
    assert_eq!(run.code, 255, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("no output for non-interactive sessions"),
        "{}",
        run.stderr
    );
    let local = tempfile::tempdir().unwrap();
    let run = daemon.run(&["cp", "chatty:/etc/hostname", s(&local.path().join("h"))]);
    assert!(
        run.stderr
            .contains("no output for non-interactive sessions"),
        "{}",
        run.stderr
    );
}

/// Printed bytes that read as a packet's length, with the packet never
/// coming, leave the SFTP start waiting: its timeout carries the same hint.
#[test]
fn a_printing_login_that_stalls_sftp_gets_the_same_hint() {
    let options = SshdOptions {
        extra_config: vec![r"ForceCommand printf '\0\0\0\20'; exec sleep 30".to_owned()],
        ..Default::default()
    };
    let Some(sshd) = Sshd::start_with(options) else {
        return;
    };
    let daemon = Daemon::start_with_config("[ssh]\nsftp_timeout_secs = 2\n");
    let key = keygen(sshd.dir.path(), "id_ed25519", "ed25519", "");
    daemon.add_key_profile("stalls", &sshd, &key).ok();
    let run = daemon.run(&["files", "stalls", "ls", "/"]);
    assert_eq!(run.code, 255, "{}", run.stderr);
    assert!(run.stderr.contains("did not answer"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("no output for non-interactive sessions"),
        "{}",
        run.stderr
    );
}

/// A tmux pane running `tether shell NAME`, then holding the pane open.
fn shell_pane(daemon: &Daemon, name: &str) -> Option<Tmux> {
    let command = format!(
        "{tether} --socket {socket} shell {name}; echo EXIT=$?; sleep 600",
        tether = tether_bin().display(),
        socket = daemon.socket.display(),
    );
    Tmux::start(&command, 100, 30)
}

#[test]
fn a_refused_terminal_is_said_and_the_session_goes_on_without() {
    let Some((_sshd, daemon)) = openssh_profile(&["PermitTTY no"], "notty") else {
        return;
    };
    let run = daemon.run(&["exec", "-t", "notty", "tty"]);
    assert_eq!(run.stdout(), "not a tty\n");
    assert!(run.stderr.contains("refused a terminal"), "{}", run.stderr);

    let Some(pane) = shell_pane(&daemon, "notty") else {
        return;
    };
    pane.wait_for("refused a terminal");
    // The local terminal is back in line mode: typed text echoes locally
    // and goes as a line.
    pane.type_text("echo marker-$((6*7))");
    pane.send(&["Enter"]);
    pane.wait_for("marker-42");
    pane.type_text("exit 3");
    pane.send(&["Enter"]);
    pane.wait_for("EXIT=3");
}

#[test]
fn the_banner_reaches_the_person_and_never_a_commands_output() {
    let dir = tempfile::Builder::new()
        .prefix("tether-banner-")
        .tempdir()
        .unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let banner = dir.path().join("banner");
    fs::write(&banner, "Authorized use only.\n\x1b]0;owned\x07Logged.\n").unwrap();
    let line = format!("Banner {}", s(&banner));
    let Some((sshd, daemon)) = openssh_with(&[&line]) else {
        return;
    };
    let key = keygen(sshd.dir.path(), "id_ed25519", "ed25519", "");
    let run = daemon.add_key_profile("legal", &sshd, &key);
    run.ok();
    assert!(
        run.stderr
            .contains("Authorized use only.\n\\x1b]0;owned\\x07Logged.\n"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains('\x1b'));

    let run = daemon.run(&["exec", "legal", "echo", "plain"]);
    run.ok();
    assert_eq!(run.stdout(), "plain\n");
    assert_eq!(run.stderr, "");
    let run = daemon.run(&["exec", "-t", "legal", "echo", "plain"]);
    assert!(!run.stdout().contains("Authorized"), "{}", run.stdout());
    assert!(!run.stderr.contains("Authorized"), "{}", run.stderr);

    let Some(pane) = shell_pane(&daemon, "legal") else {
        return;
    };
    pane.wait_for("Authorized use only.");
    pane.wait_for_prompt();
    pane.type_text("exit");
    pane.send(&["Enter"]);
    pane.wait_for("EXIT=0");
    assert!(pane.screen().contains("\\x1b]0;owned"), "{}", pane.screen());
}

fn has_ipv6_loopback() -> bool {
    std::net::TcpListener::bind("[::1]:0").is_ok()
}

#[test]
fn ipv6_literals_are_printed_in_brackets_and_zones_accepted() {
    if !has_ipv6_loopback() {
        tether_e2e::skip("no IPv6 loopback");
        return;
    }
    let Some((sshd, daemon)) = openssh_with(&["ListenAddress ::1"]) else {
        return;
    };
    let key = keygen(sshd.dir.path(), "id_ed25519", "ed25519", "");
    sshd.authorize(&key);
    let port = sshd.port.to_string();
    let add = |name: &str, host: &str| {
        daemon.run(&[
            "profile",
            "add",
            name,
            "--host",
            host,
            "--port",
            &port,
            "--user",
            &sshd.user,
            "--key-file",
            s(&key.private),
            "--accept-new",
        ])
    };
    let run = add("v6", "::1");
    run.ok();
    assert!(
        run.stdout().contains(&format!("@[::1]:{port}")),
        "{}",
        run.stdout()
    );
    let run = daemon.run(&["exec", "v6", "echo", "six"]);
    run.ok();
    assert_eq!(run.stdout(), "six\n");
    let list = daemon.run(&["profile", "list"]);
    assert!(
        list.stdout().contains(&format!("[::1]:{port}")),
        "{}",
        list.stdout()
    );

    add("zoned", "::1%lo").ok();
    daemon.run(&["exec", "zoned", "true"]).ok();
    let run = add("nowhere", "::1%no-such-if");
    assert_eq!(run.code, 255, "{}", run.stderr);
    assert!(
        run.stderr.contains("no network interface"),
        "{}",
        run.stderr
    );

    // A port nobody listens on: the error prints the address bracketed.
    let closed = tether_e2e::free_port().to_string();
    let run = daemon.run(&[
        "profile",
        "add",
        "closed",
        "--host",
        "::1",
        "--port",
        &closed,
        "--user",
        &sshd.user,
        "--key-file",
        s(&key.private),
        "--accept-new",
    ]);
    assert!(
        run.stderr.contains(&format!("[::1]:{closed}")),
        "{}",
        run.stderr
    );
}
