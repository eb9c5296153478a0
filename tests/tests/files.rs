//! `tether cp` and `tether sftp` against a real OpenSSH server.

use std::fs;
use std::path::Path;

use tether_e2e::{Daemon, Sshd};

fn setup() -> Option<(Sshd, Daemon)> {
    tether_e2e::with_web1()
}

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 13) as u8)
        .collect()
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn round_trips_keep_every_byte() {
    let Some((sshd, daemon)) = setup() else {
        return;
    };
    let local = tempfile::tempdir().unwrap();
    let remote = sshd.user_dir("remote");
    for (i, len) in [0, 1, 32 * 1024 - 1, 32 * 1024, 32 * 1024 + 1, 1024 * 1024]
        .into_iter()
        .enumerate()
    {
        let data = pattern(len, i as u32);
        let src = local.path().join(format!("up-{len}"));
        fs::write(&src, &data).unwrap();
        let target = remote.join(format!("file-{len}"));
        daemon
            .run(&["cp", s(&src), &format!("web1:{}", s(&target))])
            .ok();
        assert!(
            fs::read(&target).unwrap() == data,
            "upload of {len} bytes changed"
        );

        let back = local.path().join(format!("down-{len}"));
        daemon
            .run(&["cp", &format!("web1:{}", s(&target)), s(&back)])
            .ok();
        assert!(
            fs::read(&back).unwrap() == data,
            "download of {len} bytes changed"
        );
    }
}

#[test]
fn a_hundred_mebibytes_each_way() {
    let Some((sshd, daemon)) = setup() else {
        return;
    };
    let local = tempfile::tempdir().unwrap();
    let remote = sshd.user_dir("remote");
    let data = pattern(100 * 1024 * 1024, 7);
    let src = local.path().join("big");
    fs::write(&src, &data).unwrap();
    let target = remote.join("big");
    let run = daemon.run(&["cp", "--json", s(&src), &format!("web1:{}", s(&target))]);
    run.ok();
    let summary = run.json();
    assert_eq!(summary["files"], 1);
    assert_eq!(summary["bytes"], data.len() as u64);
    assert!(fs::read(&target).unwrap() == data, "upload changed bytes");

    let back = local.path().join("back");
    daemon
        .run(&["cp", &format!("web1:{}", s(&target)), s(&back)])
        .ok();
    assert!(fs::read(&back).unwrap() == data, "download changed bytes");
    // No temporary file is left on either side.
    assert_eq!(fs::read_dir(&remote).unwrap().count(), 1);
    assert_eq!(fs::read_dir(local.path()).unwrap().count(), 2);
}

#[test]
fn stdin_and_stdout_transfers() {
    let Some((sshd, daemon)) = setup() else {
        return;
    };
    let remote = sshd.user_dir("remote");
    let data = pattern(300_000, 3);
    let target = remote.join("from-stdin");
    daemon
        .run_with_stdin(&["cp", "-", &format!("web1:{}", s(&target))], &data)
        .ok();
    assert!(fs::read(&target).unwrap() == data);

    let run = daemon.run(&["cp", &format!("web1:{}", s(&target)), "-"]);
    run.ok();
    assert!(run.stdout == data, "stdout changed bytes");
    assert_eq!(run.stderr, "", "nothing but data on a pipe");
}

#[test]
fn overwrites_replace_the_target_whole() {
    let Some((sshd, daemon)) = setup() else {
        return;
    };
    let local = tempfile::tempdir().unwrap();
    let remote = sshd.user_dir("remote");
    let target = remote.join("config");
    fs::write(&target, b"old contents that are longer than the new").unwrap();
    let src = local.path().join("config");
    fs::write(&src, b"new").unwrap();
    daemon
        .run(&["cp", s(&src), &format!("web1:{}", s(&target))])
        .ok();
    assert_eq!(fs::read(&target).unwrap(), b"new");

    // Into an existing directory, the file keeps its name.
    daemon
        .run(&["cp", s(&src), &format!("web1:{}", s(&remote))])
        .ok();
    assert_eq!(fs::read(remote.join("config")).unwrap(), b"new");
    let names: Vec<_> = fs::read_dir(&remote).unwrap().collect();
    assert_eq!(names.len(), 1, "no temporary file left behind");
}

fn make_tree(root: &Path) {
    fs::create_dir_all(root.join("a dir/nested/deeper")).unwrap();
    fs::create_dir_all(root.join("empty")).unwrap();
    fs::write(root.join("index.html"), b"<h1>hi</h1>\n").unwrap();
    fs::write(root.join("a dir/file with spaces.txt"), pattern(70_000, 1)).unwrap();
    fs::write(root.join("a dir/nested/ünïcødé ✓.bin"), pattern(5, 2)).unwrap();
    fs::write(root.join("a dir/nested/deeper/zero"), b"").unwrap();
    std::os::unix::fs::symlink("index.html", root.join("link-in-tree")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", root.join("link-out")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(root.join("index.html"), fs::Permissions::from_mode(0o640)).unwrap();
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000);
    fs::File::open(root.join("index.html"))
        .unwrap()
        .set_modified(old)
        .unwrap();
}

/// Every path below `root` with its kind and contents (or link target).
fn snapshot(root: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            let kind = entry.file_type().unwrap();
            let what = if kind.is_symlink() {
                format!("-> {}", fs::read_link(&path).unwrap().display())
            } else if kind.is_dir() {
                stack.push(path);
                "dir".to_owned()
            } else {
                let data = fs::read(&path).unwrap();
                format!(
                    "{} bytes, sum {}",
                    data.len(),
                    data.iter().map(|b| *b as u64).sum::<u64>()
                )
            };
            out.push((rel, what));
        }
    }
    out.sort();
    out
}

#[test]
fn trees_copy_both_ways_with_modes_times_and_links() {
    let Some((sshd, daemon)) = setup() else {
        return;
    };
    use std::os::unix::fs::MetadataExt;
    let local = tempfile::tempdir().unwrap();
    let site = local.path().join("site");
    make_tree(&site);
    let remote = sshd.user_dir("www");

    // Without -r a directory is refused.
    daemon
        .run(&["cp", s(&site), &format!("web1:{}", s(&remote))])
        .fails_with("usage");

    let run = daemon.run(&[
        "cp",
        "-r",
        "-p",
        "--json",
        s(&site),
        &format!("web1:{}", s(&remote)),
    ]);
    run.ok();
    assert_eq!(run.json()["files"], 4);
    let uploaded = remote.join("site");
    assert_eq!(snapshot(&uploaded), snapshot(&site));
    let meta = fs::metadata(uploaded.join("index.html")).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o640);
    assert_eq!(meta.mtime(), 1_600_000_000);
    // Links are copied as links, never followed out of the tree.
    assert_eq!(
        fs::read_link(uploaded.join("link-out")).unwrap(),
        Path::new("/etc/hostname")
    );

    let back = local.path().join("back");
    daemon
        .run(&[
            "cp",
            "-r",
            "-p",
            &format!("web1:{}", s(&uploaded)),
            s(&back),
        ])
        .ok();
    assert_eq!(snapshot(&back), snapshot(&site));
    let meta = fs::metadata(back.join("index.html")).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o640);
    assert_eq!(meta.mtime(), 1_600_000_000);

    // -L copies what a link points to.
    let followed = sshd.user_dir("followed");
    daemon
        .run(&[
            "cp",
            "-L",
            s(&site.join("link-in-tree")),
            &format!("web1:{}/copy", s(&followed)),
        ])
        .ok();
    assert_eq!(fs::read(followed.join("copy")).unwrap(), b"<h1>hi</h1>\n");
    assert!(
        !fs::symlink_metadata(followed.join("copy"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn missing_files_and_refused_paths_are_typed_errors() {
    let Some((sshd, daemon)) = setup() else {
        return;
    };
    let local = tempfile::tempdir().unwrap();
    let remote = sshd.user_dir("remote");
    let missing = remote.join("nope");
    let run = daemon.run(&["cp", &format!("web1:{}", s(&missing)), s(local.path())]);
    run.fails_with("no_such_file");
    assert!(run.stderr.contains("nope"), "{}", run.stderr);
    assert_eq!(fs::read_dir(local.path()).unwrap().count(), 0);

    let src = local.path().join("f");
    fs::write(&src, b"x").unwrap();
    daemon
        .run(&["cp", s(&src), &format!("web1:{}/no/such/dir/f", s(&remote))])
        .fails_with("no_such_file");

    if tether_e2e::is_root() {
        // The login user cannot write to a root-owned directory.
        let locked = sshd.dir.path().join("locked");
        fs::create_dir(&locked).unwrap();
        // Refused before the body is read: the answer still arrives, for a
        // file far larger than any buffer on the way.
        let big = local.path().join("big");
        fs::write(&big, pattern(8 * 1024 * 1024, 8)).unwrap();
        for file in [&src, &big] {
            daemon
                .run(&["cp", s(file), &format!("web1:{}/f", s(&locked))])
                .fails_with("permission_denied");
        }
        assert_eq!(fs::read_dir(&locked).unwrap().count(), 0);
        daemon
            .run(&["cp", "web1:/etc/shadow", s(&local.path().join("shadow"))])
            .fails_with("permission_denied");
        assert!(!local.path().join("shadow").exists());
        fs::remove_file(&big).unwrap();
    }
    // A local destination the caller cannot write is the CLI's own error,
    // and the daemon never opens it.
    let target = remote.join("data");
    fs::write(&target, b"data").unwrap();
    daemon
        .run(&["cp", &format!("web1:{}", s(&target)), "/proc/version/x"])
        .fails_with("io_error");
    // Remote to remote needs both profiles; local to local is not tether's.
    daemon
        .run(&["cp", "web1:/a", "web2:/b"])
        .fails_with("profile_not_found");
    daemon.run(&["cp", "a", "b"]).fails_with("usage");
    daemon
        .run(&["cp", &format!("web1:{}", s(&target)), "nosuch:/x"])
        .fails_with("profile_not_found");
}

#[test]
fn an_interrupted_upload_leaves_the_target_as_it_was() {
    let Some((sshd, daemon)) = setup() else {
        return;
    };
    let remote = sshd.user_dir("remote");
    let target = remote.join("data");
    fs::write(&target, b"the old version").unwrap();

    // A slow writer feeds the upload; it is killed after some bytes arrived.
    let mut child = daemon
        .tether()
        .args(["cp", "-", &format!("web1:{}", s(&target))])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    use std::io::Write;
    stdin.write_all(&pattern(1024 * 1024, 9)).unwrap();
    stdin.flush().unwrap();
    tether_e2e::wait_until(
        "a temporary file to appear",
        std::time::Duration::from_secs(10),
        || fs::read_dir(&remote).unwrap().count() == 2,
    );
    child.kill().unwrap();
    child.wait().unwrap();
    drop(stdin);
    tether_e2e::wait_until(
        "the temporary file to be removed",
        std::time::Duration::from_secs(10),
        || fs::read_dir(&remote).unwrap().count() == 1,
    );
    assert_eq!(fs::read(&target).unwrap(), b"the old version");
}

/// Starts downloading a 64 MiB file into a new local directory, and returns
/// once the temporary file has appeared there.
fn start_big_download(
    sshd: &Sshd,
    daemon: &Daemon,
    local: &Path,
    existing: Option<&[u8]>,
) -> std::process::Child {
    let remote = sshd.user_dir("remote");
    let source = remote.join("big");
    fs::write(&source, pattern(64 * 1024 * 1024, 4)).unwrap();
    let target = local.join("big");
    if let Some(existing) = existing {
        fs::write(&target, existing).unwrap();
    }
    let before = fs::read_dir(local).unwrap().count();
    let child = daemon
        .tether()
        .args(["cp", &format!("web1:{}", s(&source)), s(&target)])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tether_e2e::wait_until(
        "the download to start",
        std::time::Duration::from_secs(10),
        || fs::read_dir(local).unwrap().count() > before,
    );
    child
}

#[test]
fn an_interrupted_download_leaves_no_half_file() {
    let Some((mut sshd, daemon)) = setup() else {
        return;
    };
    let local = tempfile::tempdir().unwrap();
    let target = local.path().join("big");
    // The connection drops mid-transfer.
    let child = start_big_download(&sshd, &daemon, local.path(), Some(b"mine"));
    sshd.stop();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    // (It may have finished before the stop on a fast machine.)
    if output.status.code() != Some(0) {
        assert_eq!(output.status.code(), Some(255), "{stderr}");
        assert!(stderr.contains("left as it was"), "{stderr}");
        assert_eq!(fs::read(&target).unwrap(), b"mine");
    }
    assert_eq!(
        fs::read_dir(local.path()).unwrap().count(),
        1,
        "no .part file left"
    );
}

#[test]
fn ctrl_c_removes_the_partial_download() {
    let Some((sshd, daemon)) = setup() else {
        return;
    };
    let local = tempfile::tempdir().unwrap();
    let child = start_big_download(&sshd, &daemon, local.path(), None);
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::INT);
    let output = child.wait_with_output().unwrap();
    if output.status.code() != Some(0) {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("error[interrupted]"), "{stderr}");
        assert_eq!(
            fs::read_dir(local.path()).unwrap().count(),
            0,
            "no .part file left"
        );
    }
}

#[test]
fn sftp_operations() {
    let Some((sshd, daemon)) = setup() else {
        return;
    };
    let remote = sshd.user_dir("remote");
    let r = |p: &str| format!("{}/{p}", s(&remote));
    daemon
        .run(&["sftp", "web1", "mkdir", "-p", &r("a/b/c")])
        .ok();
    assert!(remote.join("a/b/c").is_dir());
    daemon
        .run(&["sftp", "web1", "mkdir", &r("a")])
        .fails_with("file_exists");
    fs::write(remote.join("a/f.txt"), b"hello").unwrap();
    sshd.give(&remote);

    let run = daemon.run(&["sftp", "web1", "ls", &r("a")]);
    run.ok();
    assert_eq!(run.stdout(), "b\nf.txt\n");
    let run = daemon.run(&["sftp", "web1", "ls", "--json", &r("a")]);
    let entries = run.json();
    assert_eq!(entries[1]["name"], "f.txt");
    assert_eq!(entries[1]["size"], 5);
    assert_eq!(entries[0]["kind"], "dir");
    let run = daemon.run(&["sftp", "web1", "ls", "-l", &r("a")]);
    run.ok();
    assert!(run.stdout().contains("drwx"), "{}", run.stdout());

    daemon
        .run(&["sftp", "web1", "chmod", "600", &r("a/f.txt")])
        .ok();
    let run = daemon.run(&["sftp", "web1", "stat", "--json", &r("a/f.txt")]);
    assert_eq!(run.json()["mode"], 0o600);
    daemon
        .run(&["sftp", "web1", "chmod", "999", &r("a/f.txt")])
        .fails_with("usage");

    daemon
        .run(&["sftp", "web1", "ln", "-s", "f.txt", &r("a/link")])
        .ok();
    assert_eq!(
        fs::read_link(remote.join("a/link")).unwrap(),
        Path::new("f.txt")
    );
    let run = daemon.run(&["sftp", "web1", "stat", "--json", &r("a/link")]);
    assert_eq!(run.json()["kind"], "symlink");
    assert_eq!(run.json()["target"], "f.txt");

    // mv replaces an existing file, as rename(2) does.
    fs::write(remote.join("a/other"), b"other").unwrap();
    sshd.give(&remote);
    daemon
        .run(&["sftp", "web1", "mv", &r("a/other"), &r("a/f.txt")])
        .ok();
    assert_eq!(fs::read(remote.join("a/f.txt")).unwrap(), b"other");

    daemon
        .run(&["sftp", "web1", "rmdir", &r("a")])
        .fails_with("directory_not_empty");
    daemon
        .run(&["sftp", "web1", "rm", &r("a")])
        .fails_with("sftp_error");
    daemon.run(&["sftp", "web1", "rm", "-r", &r("a")]).ok();
    assert!(!remote.join("a").exists());
    daemon
        .run(&["sftp", "web1", "stat", &r("a")])
        .fails_with("no_such_file");
    daemon
        .run(&["sftp", "nosuch", "ls"])
        .fails_with("profile_not_found");
}

/// An sshd whose sftp-server logs every request (`-l DEBUG1`) to the file
/// returned, in the directory returned.
fn sshd_logging_sftp() -> Option<(Sshd, std::path::PathBuf, tempfile::TempDir)> {
    use std::os::unix::fs::PermissionsExt;
    let server = Path::new("/usr/lib/openssh/sftp-server");
    if !server.exists() {
        eprintln!("skipped: no {}", server.display());
        return None;
    }
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("sftp.log");
    fs::write(&log, "").unwrap();
    fs::set_permissions(logs.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&log, fs::Permissions::from_mode(0o666)).unwrap();
    let options = tether_e2e::SshdOptions {
        sftp: Some(format!(
            "{} -e -l DEBUG1 2>>{}",
            server.display(),
            log.display()
        )),
        ..Default::default()
    };
    Some((Sshd::start_with(options)?, log, logs))
}

/// Requests named `what` in an sftp-server log.
fn logged_requests(log: &Path, what: &str) -> usize {
    fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|line| {
            let request = line.split_once(": request ").map_or(*line, |(_, r)| r);
            let request = request.split_once(": ").map_or(request, |(_, r)| r);
            request.starts_with(&format!("{what} "))
        })
        .count()
}

/// A small file is a round trip, not a storm of requests: a download asks
/// for its size and one read beyond it (which finds the end); an upload's
/// attributes and fsync follow its write without waiting, and nothing is
/// stat'ed twice.
#[test]
fn a_small_file_takes_few_requests() {
    let Some((sshd, log, _logs)) = sshd_logging_sftp() else {
        return;
    };
    let daemon = Daemon::start();
    let key = tether_e2e::keygen(sshd.dir.path(), "id_ed25519", "ed25519", "");
    daemon.add_key_profile("web1", &sshd, &key).ok();
    let remote = sshd.user_dir("remote");
    fs::write(remote.join("small"), pattern(3000, 1)).unwrap();
    sshd.give(&remote);
    let local = tempfile::tempdir().unwrap();
    let copy = local.path().join("small");
    let reads = logged_requests(&log, "read");
    daemon
        .run(&["cp", &format!("web1:{}/small", s(&remote)), s(&copy)])
        .ok();
    assert_eq!(fs::read(&copy).unwrap(), pattern(3000, 1));
    assert_eq!(
        logged_requests(&log, "read") - reads,
        2,
        "{}",
        fs::read_to_string(&log).unwrap()
    );

    // The CLI asks once whether the destination is a directory (a stat);
    // the daemon looks at the target once (an lstat) and renames over it
    // without looking again.
    let asked = ["lstat", "stat", "fsetstat", "fsync"].map(|what| logged_requests(&log, what));
    daemon
        .run(&["cp", s(&copy), &format!("web1:{}/up", s(&remote))])
        .ok();
    assert_eq!(fs::read(remote.join("up")).unwrap(), pattern(3000, 1));
    let now = ["lstat", "stat", "fsetstat", "fsync"].map(|what| logged_requests(&log, what));
    let log_text = fs::read_to_string(&log).unwrap();
    assert_eq!(
        [0, 1, 2, 3].map(|i| now[i] - asked[i]),
        [1, 1, 1, 1],
        "{log_text}"
    );
}

/// A daemon to which every server counts as far (uploads are spread over
/// several sessions), with `web1` on `sshd`, and a remote directory.
fn far_daemon(sshd: &Sshd) -> (Daemon, std::path::PathBuf) {
    let daemon = Daemon::start_with_config("[ssh]\nupload_channels_rtt_ms = 0\n");
    let key = tether_e2e::keygen(sshd.dir.path(), "id_ed25519", "ed25519", "");
    daemon.add_key_profile("web1", sshd, &key).ok();
    let remote = sshd.user_dir("remote");
    sshd.give(&remote);
    (daemon, remote)
}

/// A large upload to a far server is spread over several SFTP sessions
/// (each channel's window carries its share per round trip); the file
/// arrives whole. Here every server counts as far.
#[test]
fn a_large_upload_to_a_far_server_goes_over_several_channels() {
    let Some((sshd, log, _logs)) = sshd_logging_sftp() else {
        return;
    };
    let (daemon, remote) = far_daemon(&sshd);
    let local = tempfile::tempdir().unwrap();
    let big = local.path().join("big");
    let data = pattern(40 << 20, 9);
    fs::write(&big, &data).unwrap();
    daemon
        .run(&["cp", s(&big), &format!("web1:{}/big", s(&remote))])
        .ok();
    assert!(fs::read(remote.join("big")).unwrap() == data);
    // The temporary opened by four sessions: created by one, opened to
    // write by three (40 MiB, 8 MiB per extra session, four at most).
    let text = fs::read_to_string(&log).unwrap();
    let opens = text
        .lines()
        .filter(|line| line.contains("open \"") && line.contains(".tether-"))
        .count();
    assert_eq!(opens, 4, "{text}");
    let names: Vec<_> = fs::read_dir(&remote)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["big"]);
    // And back, and a second time over the target.
    daemon
        .run(&["cp", s(&big), &format!("web1:{}/big", s(&remote))])
        .ok();
    let back = local.path().join("back");
    daemon
        .run(&["cp", &format!("web1:{}/big", s(&remote)), s(&back)])
        .ok();
    assert!(fs::read(&back).unwrap() == data);
}

/// Ctrl-C during an upload spread over several sessions: every session
/// stops, the temporary goes, no half target is left, and the next copy
/// works on the same connection.
#[test]
fn ctrl_c_in_a_spread_upload_leaves_no_temporary() {
    let Some(sshd) = Sshd::start() else {
        return;
    };
    let (daemon, remote) = far_daemon(&sshd);
    let local = tempfile::tempdir().unwrap();
    // Read faster than it can be sent, but not so fast that it is done
    // before the signal: 2 GiB, sparse.
    let big = local.path().join("big");
    fs::File::create(&big).unwrap().set_len(2 << 30).unwrap();
    let entries = || {
        fs::read_dir(&remote)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
    };
    let child = daemon
        .tether()
        .args(["cp", s(&big), &format!("web1:{}/big", s(&remote))])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Past the first lane's share, so that every session is writing.
    tether_e2e::wait_until(
        "the upload to be well under way",
        std::time::Duration::from_secs(30),
        || {
            fs::read_dir(&remote).unwrap().flatten().any(|e| {
                e.file_name().to_string_lossy().starts_with(".big.tether-")
                    && e.metadata().is_ok_and(|m| m.len() > 64 << 20)
            })
        },
    );
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("error[interrupted]"), "{stderr}");
    tether_e2e::wait_until(
        "the temporary to be removed",
        std::time::Duration::from_secs(20),
        || entries().is_empty(),
    );
    // Nothing wrote it back afterwards.
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(entries().is_empty(), "{:?}", entries());
    let small = local.path().join("small");
    fs::write(&small, pattern(3000, 2)).unwrap();
    daemon
        .run(&["cp", s(&small), &format!("web1:{}/small", s(&remote))])
        .ok();
    assert_eq!(entries(), ["small"]);
}
