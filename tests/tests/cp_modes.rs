//! `tether cp` next to scp: modes kept as scp keeps them, temporary files
//! private while they are written, symlink targets written through, files in
//! directories one may not write, and files whose size changes.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use tether_e2e::{Daemon, wait_until};

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// `tether ARGS` under `umask`.
fn with_umask(daemon: &Daemon, umask: &str, args: &[&str]) -> tether_e2e::Run {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!("umask {umask}; exec \"$0\" \"$@\""))
        .arg(tether_e2e::tether_bin())
        .arg("--socket")
        .arg(&daemon.socket)
        .args(args);
    tether_e2e::run_command(&mut command)
}

/// The one `.NAME.tether-*.part` file in `dir`, once it appears.
fn part_file(dir: &Path, name: &str) -> std::path::PathBuf {
    let prefix = format!(".{name}.tether-");
    let mut found = None;
    wait_until("a temporary file", Duration::from_secs(10), || {
        found = fs::read_dir(dir)
            .unwrap()
            .filter_map(Result::ok)
            .find_map(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                (n.starts_with(&prefix) && n.ends_with(".part")).then(|| e.path())
            });
        found.is_some()
    });
    found.unwrap()
}

#[test]
fn modes_travel_as_with_scp() {
    let Some((sshd, daemon)) = tether_e2e::with_web1() else {
        return;
    };
    let local = tempfile::tempdir().unwrap();
    let remote = sshd.user_dir("remote");
    sshd.give(&remote);
    let r = |name: &str| format!("web1:{}/{name}", s(&remote));

    // A new file gets the source's permission bits, both ways.
    for (name, bits) in [("secret", 0o600), ("script", 0o755), ("shared", 0o640)] {
        let src = local.path().join(name);
        fs::write(&src, name).unwrap();
        chmod(&src, bits);
        daemon.run(&["cp", s(&src), &r(name)]).ok();
        assert_eq!(mode(&remote.join(name)), bits, "upload of {name}");
        let back = local.path().join(format!("{name}.back"));
        with_umask(&daemon, "022", &["cp", &r(name), s(&back)]).ok();
        assert_eq!(mode(&back), bits & !0o022, "download of {name}");
    }
    // ... less the local umask.
    chmod(&remote.join("shared"), 0o666);
    let back = local.path().join("umasked");
    with_umask(&daemon, "027", &["cp", &r("shared"), s(&back)]).ok();
    assert_eq!(mode(&back), 0o640);

    // An existing target keeps its own mode; -p takes the source's.
    let open = local.path().join("open");
    fs::write(&open, "new content").unwrap();
    chmod(&open, 0o644);
    daemon.run(&["cp", s(&open), &r("secret")]).ok();
    assert_eq!(fs::read(remote.join("secret")).unwrap(), b"new content");
    assert_eq!(
        mode(&remote.join("secret")),
        0o600,
        "an existing file keeps its mode"
    );
    let kept = local.path().join("secret.back");
    with_umask(&daemon, "022", &["cp", &r("script"), s(&kept)]).ok();
    assert_eq!(mode(&kept), 0o600, "an existing local file keeps its mode");
    daemon.run(&["cp", "-p", s(&open), &r("secret")]).ok();
    assert_eq!(mode(&remote.join("secret")), 0o644, "-p keeps the source's");

    // Temporary files are owner-only while they are written: a large
    // download caught mid-way, and an upload from a pipe held open.
    let big = remote.join("big");
    fs::File::create(&big).unwrap().set_len(400 << 20).unwrap();
    sshd.give(&big);
    let target = local.path().join("big");
    let download = daemon.spawn(&["cp", &r("big"), s(&target)]);
    let part = part_file(local.path(), "big");
    assert_eq!(mode(&part), 0o600, "the local temporary file");
    tether_e2e::Run::from(download.wait_with_output().unwrap()).ok();
    assert_eq!(fs::metadata(&target).unwrap().len(), 400 << 20);
    fs::remove_file(&big).unwrap();

    let mut upload = daemon
        .tether()
        .args(["cp", "-", &r("from-pipe")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = upload.stdin.take().unwrap();
    stdin.write_all(&[1u8; 300_000]).unwrap();
    let part = part_file(&remote, "from-pipe");
    assert_eq!(mode(&part), 0o600, "the remote temporary file");
    stdin.write_all(&[1u8; 1000]).unwrap();
    drop(stdin);
    tether_e2e::Run::from(upload.wait_with_output().unwrap()).ok();
    assert_eq!(fs::read(remote.join("from-pipe")).unwrap().len(), 301_000);

    // A file whose size is not what stat says is read to its end.
    let cpuinfo = daemon.run(&["cp", "web1:/proc/cpuinfo", "-"]);
    cpuinfo.ok();
    assert!(
        cpuinfo.stdout().contains("processor"),
        "{}",
        cpuinfo.stdout()
    );
    let copy = local.path().join("cpuinfo");
    daemon.run(&["cp", "web1:/proc/cpuinfo", s(&copy)]).ok();
    assert!(fs::read_to_string(&copy).unwrap().contains("processor"));
}

#[test]
fn symlinked_targets_are_written_through() {
    let Some((sshd, daemon)) = tether_e2e::with_web1() else {
        return;
    };
    let local = tempfile::tempdir().unwrap();
    let remote = sshd.user_dir("remote");
    fs::create_dir(remote.join("real")).unwrap();
    fs::write(remote.join("real/config"), "old").unwrap();
    chmod(&remote.join("real/config"), 0o600);
    std::os::unix::fs::symlink("real/config", remote.join("config")).unwrap();
    sshd.give(&remote);
    let src = local.path().join("new");
    fs::write(&src, "new").unwrap();
    daemon
        .run(&["cp", s(&src), &format!("web1:{}/config", s(&remote))])
        .ok();
    assert!(
        fs::symlink_metadata(remote.join("config"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(fs::read(remote.join("real/config")).unwrap(), b"new");
    assert_eq!(mode(&remote.join("real/config")), 0o600);
    // No temporary left beside the link or its end (the first look opens
    // one beside the link, before it knows it is one).
    for dir in [remote.clone(), remote.join("real")] {
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(!names.iter().any(|n| n.contains(".tether-")), "{names:?}");
    }

    fs::create_dir(local.path().join("real")).unwrap();
    fs::write(local.path().join("real/target"), "old").unwrap();
    std::os::unix::fs::symlink("real/target", local.path().join("target")).unwrap();
    daemon
        .run(&[
            "cp",
            &format!("web1:{}/real/config", s(&remote)),
            s(&local.path().join("target")),
        ])
        .ok();
    assert!(
        fs::symlink_metadata(local.path().join("target"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(fs::read(local.path().join("real/target")).unwrap(), b"new");
}

/// A tree's download copies links as links; a later download of the same
/// tree, where the server now has a file or a directory under a link's
/// name, replaces the link and never writes through it: whoever controls
/// the server's files cannot reach outside the target in two steps.
#[test]
fn a_tree_download_never_writes_through_links_the_server_made() {
    let Some((sshd, daemon)) = tether_e2e::with_web1() else {
        return;
    };
    let local = tempfile::tempdir().unwrap();
    let outside = local.path().join("outside");
    fs::create_dir_all(outside.join("dir")).unwrap();
    fs::write(outside.join("victim"), "mine").unwrap();
    let remote = sshd.user_dir("remote");
    let tree = remote.join("t");
    fs::create_dir(&tree).unwrap();
    std::os::unix::fs::symlink(outside.join("victim"), tree.join("x")).unwrap();
    std::os::unix::fs::symlink(outside.join("dir"), tree.join("d")).unwrap();
    let sync = local.path().join("sync");
    fs::create_dir(&sync).unwrap();
    let from = format!("web1:{}", s(&tree));
    daemon.run(&["cp", "-r", &from, s(&sync)]).ok();
    let copied = sync.join("t");
    assert!(fs::symlink_metadata(copied.join("x")).unwrap().is_symlink());
    assert!(fs::symlink_metadata(copied.join("d")).unwrap().is_symlink());
    // The server's side changes: the links become a file and a directory.
    fs::remove_file(tree.join("x")).unwrap();
    fs::remove_file(tree.join("d")).unwrap();
    fs::write(tree.join("x"), "theirs").unwrap();
    fs::create_dir(tree.join("d")).unwrap();
    fs::write(tree.join("d/f"), "theirs").unwrap();
    daemon.run(&["cp", "-r", &from, s(&sync)]).ok();
    assert_eq!(fs::read_to_string(outside.join("victim")).unwrap(), "mine");
    assert!(!outside.join("dir/f").exists());
    assert_eq!(fs::read_to_string(copied.join("x")).unwrap(), "theirs");
    assert_eq!(fs::read_to_string(copied.join("d/f")).unwrap(), "theirs");
    assert!(!fs::symlink_metadata(copied.join("d")).unwrap().is_symlink());
    // In place, a link cannot be replaced: it is refused, not followed.
    fs::remove_file(copied.join("x")).unwrap();
    std::os::unix::fs::symlink(outside.join("victim"), copied.join("x")).unwrap();
    let run = daemon.run(&["cp", "-r", "--inplace", &from, s(&sync)]);
    run.fails_with("io_error");
    assert!(run.stderr.contains("/t/x"), "{}", run.stderr);
    assert_eq!(fs::read_to_string(outside.join("victim")).unwrap(), "mine");
}

#[test]
fn a_writable_file_in_a_locked_directory_takes_inplace() {
    let Some((sshd, daemon)) = tether_e2e::with_web1() else {
        return;
    };
    if !tether_e2e::is_root() {
        // As another user, the remote directory would not be locked for us.
        tether_e2e::skip("needs root");
        return;
    }
    let local = tempfile::tempdir().unwrap();
    let remote = sshd.user_dir("locked");
    fs::write(remote.join("file"), "old").unwrap();
    chmod(&remote.join("file"), 0o644);
    sshd.give(&remote);
    chmod(&remote, 0o555);
    let src = local.path().join("src");
    fs::write(&src, "replaced in place").unwrap();
    let target = format!("web1:{}/file", s(&remote));
    let run = daemon.run(&["cp", s(&src), &target]);
    run.fails_with("permission_denied");
    assert!(
        run.stderr.contains("--inplace") && run.stderr.contains("directory is not writable"),
        "{}",
        run.stderr
    );
    assert_eq!(fs::read(remote.join("file")).unwrap(), b"old");
    daemon.run(&["cp", "--inplace", s(&src), &target]).ok();
    assert_eq!(fs::read(remote.join("file")).unwrap(), b"replaced in place");
    assert_eq!(mode(&remote.join("file")), 0o644);
    chmod(&remote, 0o755);
}

/// A download into a directory the caller may not write, by a user who
/// may write the file itself (root may write anywhere, so: another uid).
#[test]
fn a_local_file_in_a_locked_directory_takes_inplace() {
    let Some((sshd, daemon)) = crate::access::setup() else {
        return;
    };
    let alice = "tether-alice";
    daemon
        .run(&[
            "grant", "add", "web1", "--user", alice, "--role", "operator", "--sftp", "read",
        ])
        .ok();
    crate::access::enroll(&daemon, alice);
    let remote = sshd.user_dir("src");
    fs::write(remote.join("data"), "fresh").unwrap();
    sshd.give(&remote);
    let dir = daemon.dir.path().join("alice-locked");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("data"), "stale").unwrap();
    let uid = tether_e2e::ensure_user(alice, &[]);
    std::os::unix::fs::chown(dir.join("data"), Some(uid), Some(uid)).unwrap();
    chmod(&dir.join("data"), 0o600);
    chmod(&dir, 0o755);
    let from = format!("web1:{}/data", s(&remote));
    let to = dir.join("data");
    let run = crate::access::as_user(&daemon, alice, &["cp", &from, s(&to)]);
    run.fails_with("permission_denied");
    assert!(run.stderr.contains("--inplace"), "{}", run.stderr);
    assert_eq!(fs::read(&to).unwrap(), b"stale");
    crate::access::as_user(&daemon, alice, &["cp", "--inplace", &from, s(&to)]).ok();
    assert_eq!(fs::read(&to).unwrap(), b"fresh");
    assert_eq!(mode(&to), 0o600);
}
