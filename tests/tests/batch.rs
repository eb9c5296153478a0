//! Batches: the files of one `tether cp` on one connection to tetherd. On
//! the trail each file still has its path, bytes and SHA-256; Ctrl-C leaves
//! no half target; a client that breaks the protocol ends its own batch
//! and nothing else.

use std::fs;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};
use tether_api::batch::Batch;
use tether_api::client::{Client, ClientError};
use tether_api::files::{BatchEvent, FILES_IN_FLIGHT, FileQuery};
use tether_e2e::{Daemon, wait_until};

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn events(daemon: &Daemon, op: &str) -> Vec<Value> {
    let run = daemon.run(&["audit", "--json", "--op", op]);
    run.ok();
    run.json().as_array().unwrap().clone()
}

fn hex_sha256(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `count` files of different sizes in two directories below `root`.
fn small_tree(root: &Path, count: usize) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for i in 0..count {
        let name = format!("d{}/f{i}", i % 2);
        let data: Vec<u8> = (0..(i * 97 + 1)).map(|b| (b * 7 + i) as u8).collect();
        let path = root.join(&name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, &data).unwrap();
        files.push((name, data));
    }
    files
}

/// The batch events of `direction` on the trail: the start's sequence
/// number and the end.
fn batch_of(daemon: &Daemon, direction: &str) -> (u64, Value) {
    let starts: Vec<Value> = events(daemon, "sftp.batch")
        .into_iter()
        .filter(|e| e["op"] == "sftp.batch" && e["details"]["direction"] == direction)
        .collect();
    assert_eq!(starts.len(), 1, "one {direction} batch: {starts:?}");
    let ends: Vec<Value> = events(daemon, "sftp.batch.end")
        .into_iter()
        .filter(|e| e["details"]["direction"] == direction)
        .collect();
    assert_eq!(ends.len(), 1, "{ends:?}");
    (starts[0]["seq"].as_u64().unwrap(), ends[0].clone())
}

#[test]
fn a_tree_copy_is_one_batch_with_every_file_on_record() {
    let Some((sshd, daemon)) = tether_e2e::with_web1() else {
        return;
    };
    let local = tempfile::tempdir().unwrap();
    let tree = local.path().join("tree");
    let files = small_tree(&tree, 24);
    let remote = sshd.user_dir("remote");
    let up = remote.join("up");
    daemon
        .run(&["cp", "-r", s(&tree), &format!("web1:{}", s(&up))])
        .ok();
    let back = local.path().join("back");
    daemon
        .run(&["cp", "-r", &format!("web1:{}", s(&up)), s(&back)])
        .ok();

    for (direction, op, root) in [
        ("upload", "sftp.upload.end", &up),
        ("download", "sftp.download.end", &up),
    ] {
        // On record when cp returned: the batch, and each file in it.
        let (seq, end) = batch_of(&daemon, direction);
        assert_eq!(end["result"], "ok", "{end}");
        assert_eq!(end["details"]["files"], files.len() as u64, "{end}");
        assert_eq!(end["details"]["failed"], 0, "{end}");
        let total: usize = files.iter().map(|(_, data)| data.len()).sum();
        assert_eq!(end["details"]["bytes"], total as u64, "{end}");
        let ended = events(&daemon, op);
        for (name, data) in &files {
            let path = format!("{}/{name}", s(root));
            let event = ended
                .iter()
                .find(|e| e["details"]["path"] == path.as_str())
                .unwrap_or_else(|| panic!("no {op} of {path}: {ended:?}"));
            assert_eq!(event["result"], "ok", "{event}");
            assert_eq!(event["details"]["batch"], seq, "{event}");
            assert_eq!(event["details"]["bytes"], data.len() as u64, "{event}");
            assert_eq!(event["details"]["sha256"], hex_sha256(data), "{event}");
            assert_eq!(fs::read(root.join(name)).unwrap(), *data);
            assert_eq!(fs::read(back.join(name)).unwrap(), *data);
        }
    }
    daemon.run(&["audit", "verify"]).ok();
}

#[test]
fn ctrl_c_in_a_tree_upload_leaves_no_half_target() {
    let Some((sshd, daemon)) = tether_e2e::with_web1() else {
        return;
    };
    let local = tempfile::tempdir().unwrap();
    let tree = local.path().join("tree");
    small_tree(&tree, 4);
    // Read faster than it can be sent, but not so fast that it is done
    // before the signal: 2 GiB, sparse.
    let big = fs::File::create(tree.join("big")).unwrap();
    big.set_len(2 << 30).unwrap();
    let remote = sshd.user_dir("remote");
    let target = remote.join("t");
    let child = daemon
        .tether()
        .args(["cp", "-r", s(&tree), &format!("web1:{}", s(&target))])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let temporary = || {
        fs::read_dir(&target).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with(".big.tether-"))
        })
    };
    wait_until(
        "the big file's upload to start",
        Duration::from_secs(20),
        temporary,
    );
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("error[interrupted]"), "{stderr}");
    wait_until(
        "the temporary to be removed",
        Duration::from_secs(20),
        || !temporary(),
    );
    assert!(!target.join("big").exists(), "no half target");
    wait_until("the batch's end on record", Duration::from_secs(20), || {
        !events(&daemon, "sftp.batch.end").is_empty()
    });
    let (_, end) = batch_of(&daemon, "upload");
    assert_eq!(end["result"], "interrupted", "{end}");
    let big_end = events(&daemon, "sftp.upload.end")
        .into_iter()
        .find(|e| {
            e["details"]["path"]
                .as_str()
                .is_some_and(|p| p.ends_with("/big"))
        })
        .expect("the big file's end on record");
    assert_ne!(big_end["result"], "ok", "{big_end}");
}

/// A file of `len` bytes (sparse) to hand over.
fn sparse(dir: &Path, name: &str, len: u64) -> fs::File {
    let path = dir.join(name);
    fs::File::create(&path).unwrap().set_len(len).unwrap();
    fs::File::open(path).unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn query(path: &Path) -> FileQuery {
    FileQuery {
        path: s(path).to_owned(),
        ..FileQuery::default()
    }
}

/// Sends each of `fds` for `target`; each item fails as a bad request
/// whose message says what the descriptor should have been.
async fn each_refused<const N: usize>(batch: &Batch, target: &Path, fds: [OwnedFd; N], says: &str) {
    for fd in fds {
        let mut events = batch.send(query(target), fd).await.unwrap();
        match events.next().await {
            Err(ClientError::Api(error)) => {
                assert_eq!(error.code.as_str(), "bad_request", "{error}");
                assert!(error.message.contains(says), "{error}");
            }
            other => panic!("{:?}", other.map(|_| ())),
        }
    }
}

#[test]
fn what_is_not_a_file_fails_its_item_and_the_batch_goes_on() {
    let Some((sshd, daemon)) = tether_e2e::with_web1() else {
        return;
    };
    let local = tempfile::tempdir().unwrap();
    let remote = sshd.user_dir("remote");
    fs::write(local.path().join("a"), b"first").unwrap();
    runtime().block_on(async {
        let client = Client::new(&daemon.socket);
        let batch = client.upload_batch("web1").await.unwrap();
        // A socket, and a file open for writing only: neither is taken.
        let (socket, _other) = UnixStream::pair().unwrap();
        let write_only = fs::OpenOptions::new()
            .write(true)
            .open(local.path().join("a"))
            .unwrap();
        let refused = [OwnedFd::from(socket), OwnedFd::from(write_only)];
        each_refused(&batch, &remote.join("x"), refused, "open for reading").await;
        let file = fs::File::open(local.path().join("a")).unwrap();
        let mut events = batch.send(query(&remote.join("a")), &file).await.unwrap();
        assert!(matches!(
            events.next().await.unwrap(),
            BatchEvent::Uploaded { .. }
        ));
        batch.finish().await.unwrap();
    });
    assert_eq!(fs::read(remote.join("a")).unwrap(), b"first");
    assert!(!remote.join("x").exists());
    let (_, end) = batch_of(&daemon, "upload");
    assert_eq!(end["result"], "ok", "{end}");
    assert_eq!(end["details"]["files"], 1, "{end}");
    assert_eq!(end["details"]["failed"], 2, "{end}");
}

/// A download's sibling: a socket, a file open for reading only and one
/// open for appending (where a write at an offset lands at the end) are
/// not taken, and untouched.
#[test]
fn what_cannot_be_written_at_offsets_fails_its_item_and_the_batch_goes_on() {
    let Some((sshd, daemon)) = tether_e2e::with_web1() else {
        return;
    };
    let local = tempfile::tempdir().unwrap();
    let remote = sshd.user_dir("remote");
    fs::write(remote.join("a"), b"remote").unwrap();
    let mine = local.path().join("mine");
    fs::write(&mine, b"mine").unwrap();
    runtime().block_on(async {
        let client = Client::new(&daemon.socket);
        let batch = client.download_batch("web1").await.unwrap();
        let (socket, _other) = UnixStream::pair().unwrap();
        let read_only = fs::File::open(&mine).unwrap();
        let appending = fs::OpenOptions::new().append(true).open(&mine).unwrap();
        let refused = [
            OwnedFd::from(socket),
            OwnedFd::from(read_only),
            OwnedFd::from(appending),
        ];
        each_refused(&batch, &remote.join("a"), refused, "open for writing").await;
        let target = local.path().join("a");
        let file = fs::File::create(&target).unwrap();
        let mut events = batch.send(query(&remote.join("a")), &file).await.unwrap();
        let started = events.next().await.unwrap();
        assert!(matches!(started, BatchEvent::Started { .. }), "{started:?}");
        let event = events.next().await.unwrap();
        assert!(matches!(event, BatchEvent::Downloaded { .. }), "{event:?}");
        batch.finish().await.unwrap();
    });
    assert_eq!(fs::read(local.path().join("a")).unwrap(), b"remote");
    assert_eq!(fs::read(&mine).unwrap(), b"mine");
    let (_, end) = batch_of(&daemon, "download");
    assert_eq!(end["result"], "ok", "{end}");
    assert_eq!(end["details"]["files"], 1, "{end}");
    assert_eq!(end["details"]["failed"], 3, "{end}");
}

#[test]
fn more_files_at_once_than_allowed_end_the_batch() {
    let Some((sshd, daemon)) = tether_e2e::with_web1() else {
        return;
    };
    let local = tempfile::tempdir().unwrap();
    let remote = sshd.user_dir("remote");
    runtime().block_on(async {
        let client = Client::new(&daemon.socket);
        let batch = client.upload_batch("web1").await.unwrap();
        let mut sent = Vec::new();
        for i in 0..=FILES_IN_FLIGHT {
            let file = sparse(local.path(), &format!("f{i}"), 1 << 30);
            let target = remote.join(format!("f{i}"));
            sent.push(batch.send(query(&target), &file).await.unwrap());
        }
        // Every item ends unfinished, and the batch with an error.
        for mut events in sent {
            assert!(events.next().await.is_err());
        }
        match batch.finish().await {
            Err(ClientError::Api(error)) => {
                assert!(error.message.contains("at once"), "{error}")
            }
            Err(other) => panic!("{other}"),
            Ok(()) => panic!("the batch went on"),
        }
    });
    wait_until("the temporaries to go", Duration::from_secs(20), || {
        fs::read_dir(&remote).unwrap().count() == 0
    });
    // The daemon serves on.
    daemon.run(&["sftp", "web1", "ls", s(&remote)]).ok();
}

/// A raw batch connection to web1, upgraded.
fn raw_batch(daemon: &Daemon) -> UnixStream {
    tether_e2e::raw_upgrade(
        &daemon.socket,
        b"POST /v1/profiles/web1/files/batch/upload HTTP/1.1\r\nHost: t\r\n\
          Connection: upgrade\r\nUpgrade: tether-batch/1\r\nContent-Length: 0\r\n\r\n",
    )
}

#[test]
fn a_malformed_item_ends_its_batch_with_an_error() {
    let Some((_sshd, daemon)) = tether_e2e::with_web1() else {
        return;
    };
    let item = br#"{"id":1,"query":{"path":"/tmp/x"}}"#;
    let mut without_descriptor = (item.len() as u32).to_be_bytes().to_vec();
    without_descriptor.extend_from_slice(item);
    // A plain byte where the descriptor should be.
    without_descriptor.push(0);
    let mut not_json = 5u32.to_be_bytes().to_vec();
    not_json.extend_from_slice(b"hello");
    for (garbage, says) in [
        (u32::MAX.to_be_bytes().to_vec(), "at most"),
        (not_json, "not a batch item"),
        (without_descriptor, "no file came"),
    ] {
        let mut stream = raw_batch(&daemon);
        stream.write_all(&garbage).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let last: Value = serde_json::from_str(answer.lines().last().unwrap()).unwrap();
        let message = last["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{answer}");
    }
    daemon.run(&["status"]).ok();
}

/// A batch keeps nothing for itself once it ended: the descriptors it was
/// handed are closed.
#[test]
fn a_batch_closes_what_it_was_handed() {
    let Some((sshd, daemon)) = tether_e2e::with_web1() else {
        return;
    };
    let local = tempfile::tempdir().unwrap();
    let remote = sshd.user_dir("remote");
    let open_files = || {
        fs::read_dir(format!("/proc/{}/fd", daemon.pid().unwrap()))
            .unwrap()
            .count()
    };
    let before = open_files();
    runtime().block_on(async {
        let client = Client::new(&daemon.socket);
        let batch: Batch = client.upload_batch("web1").await.unwrap();
        for i in 0..20 {
            fs::write(local.path().join(format!("f{i}")), b"x").unwrap();
            let file = fs::File::open(local.path().join(format!("f{i}"))).unwrap();
            let mut events = batch
                .send(query(&remote.join(format!("f{i}"))), &file)
                .await
                .unwrap();
            events.next().await.unwrap();
        }
        batch.finish().await.unwrap();
    });
    // Pooled connections may stay; twenty files may not.
    assert!(open_files() < before + 10, "{before} -> {}", open_files());
}

#[test]
fn a_remote_glob_downloads_its_matches_in_one_batch() {
    let Some((sshd, daemon)) = tether_e2e::with_web1() else {
        return;
    };
    let remote = sshd.user_dir("remote");
    for (name, data) in [("a.txt", "A"), ("b.txt", "B"), ("c.log", "C")] {
        fs::write(remote.join(name), data).unwrap();
    }
    let local = tempfile::tempdir().unwrap();
    let pattern = format!("web1:{}/*.txt", s(&remote));
    daemon.run(&["cp", &pattern, s(local.path())]).ok();
    assert_eq!(fs::read(local.path().join("a.txt")).unwrap(), b"A");
    assert_eq!(fs::read(local.path().join("b.txt")).unwrap(), b"B");
    assert!(!local.path().join("c.log").exists());
    let (_, end) = batch_of(&daemon, "download");
    assert_eq!(end["details"]["files"], 2, "{end}");
}

#[test]
fn a_files_end_is_on_disk_within_a_second_while_its_batch_goes_on() {
    let Some((sshd, daemon)) = tether_e2e::with_web1() else {
        return;
    };
    let local = tempfile::tempdir().unwrap();
    let remote = sshd.user_dir("remote");
    fs::write(local.path().join("a"), b"first").unwrap();
    let target = remote.join("a");
    runtime().block_on(async {
        let client = Client::new(&daemon.socket);
        let batch = client.upload_batch("web1").await.unwrap();
        let file = fs::File::open(local.path().join("a")).unwrap();
        let mut answers = batch.send(query(&target), &file).await.unwrap();
        answers.next().await.unwrap();
        // No other file comes to carry its record along.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let ended = events(&daemon, "sftp.upload.end");
        assert!(
            ended.iter().any(|e| e["details"]["path"] == s(&target)),
            "{ended:?}"
        );
        batch.finish().await.unwrap();
    });
}
