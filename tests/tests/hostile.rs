//! Hostile clients on an exec stream: garbage frames, a client that
//! vanishes mid-stream, and one that stops reading while the command
//! floods it. Each ends with the command's channel closed on the server and
//! the daemon serving others.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use tether_e2e::{Daemon, Sshd, wait_until};

fn channels(daemon: &Daemon) -> u64 {
    let run = daemon.run(&["session", "list", "--json"]);
    run.ok();
    run.json()["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["channels"].as_u64().unwrap())
        .sum()
}

/// Starts `sleep 30` on web1 over a raw upgraded connection; returns the
/// connection once the stream is open.
fn raw_exec(daemon: &Daemon) -> UnixStream {
    raw_exec_body(daemon, r#"{"argv":["sleep","30"]}"#)
}

/// The HTTP request that upgrades to an exec stream of `body` on web1.
fn exec_request(body: &str) -> String {
    format!(
        "POST /v1/profiles/web1/exec HTTP/1.1\r\nHost: t\r\nConnection: upgrade\r\n\
         Upgrade: tether-stream/1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Starts the exec request `body` on web1 over a raw upgraded connection.
fn raw_exec_body(daemon: &Daemon, body: &str) -> UnixStream {
    tether_e2e::raw_upgrade(&daemon.socket, exec_request(body).as_bytes())
}

fn sleeping_on_server(sshd: &Sshd) -> bool {
    tether_e2e::descendants(sshd.pid()).iter().any(|pid| {
        std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.starts_with(b"sleep\x0030"))
    })
}

#[test]
fn garbage_frames_end_the_stream_and_nothing_else() {
    let Some((sshd, daemon)) = tether_e2e::with_web1() else {
        return;
    };
    for garbage in [
        &[99u8, 0, 0, 0, 0][..],                  // an unknown kind
        &[1, 0xff, 0xff, 0xff, 0xff],             // a frame of 4 GiB
        &[5, 0, 0, 0, 4, b'k', b'i', b'l', b'l'], // a signal name in lower case
        &[6, 0, 0, 0, 1, 0],                      // a short resize
    ] {
        let mut stream = raw_exec(&daemon);
        wait_until("the command to start", Duration::from_secs(10), || {
            sleeping_on_server(&sshd)
        });
        stream.write_all(garbage).unwrap();
        // The daemon answers with an error frame at most, then closes.
        let started = Instant::now();
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the stream stayed open"
        );
        wait_until("the channel to close", Duration::from_secs(10), || {
            channels(&daemon) == 0
        });
        daemon.run(&["exec", "web1", "--", "true"]).ok();
    }
}

#[test]
fn a_client_that_vanishes_mid_stream_leaves_nothing_running() {
    let Some((sshd, daemon)) = tether_e2e::with_web1() else {
        return;
    };
    let stream = raw_exec(&daemon);
    wait_until("the command to start", Duration::from_secs(10), || {
        sleeping_on_server(&sshd)
    });
    drop(stream);
    wait_until("the channel to close", Duration::from_secs(10), || {
        channels(&daemon) == 0
    });
    let end = daemon.run(&["audit", "--op", "exec.end", "--json"]).json();
    assert_eq!(end[0]["result"], "caller_gone", "{end}");
    daemon.run(&["exec", "web1", "--", "true"]).ok();
}

/// Opens `request` (an HTTP request on web1) and never reads the answer;
/// meanwhile another caller's command on web1 must run, and the daemon's
/// memory stay bounded.
fn stalled_caller_holds_up_nobody(request: &str, stalls: bool) {
    let Some((_sshd, daemon)) = tether_e2e::with_web1() else {
        return;
    };
    // Warm the pool: the flood and the next caller would share this
    // connection.
    daemon.run(&["exec", "web1", "--", "true"]).ok();
    let mut flood = UnixStream::connect(&daemon.socket).unwrap();
    flood.write_all(request.as_bytes()).unwrap();
    // The answer has begun, and data flows: then the caller stops reading.
    let mut start = vec![0u8; 64 * 1024];
    flood.read_exact(&mut start).unwrap();
    assert!(
        start.starts_with(b"HTTP/1.1 101") || start.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&start[..100])
    );
    // Long enough for every buffer between sshd and the unread socket to fill.
    std::thread::sleep(Duration::from_secs(3));
    // An exec stream stalls its connection, and says so; a download asks for
    // no more than its caller takes, and stalls nothing.
    let list = daemon.run(&["session", "list", "--json"]).json();
    let stalled: u64 = list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stalled"].as_u64().unwrap())
        .sum();
    assert_eq!(stalled, u64::from(stalls), "{list}");

    let (done, finished) = std::sync::mpsc::channel();
    let socket = daemon.socket.clone();
    std::thread::spawn(move || {
        let output = std::process::Command::new(tether_e2e::tether_bin())
            .arg("--socket")
            .arg(&socket)
            .args(["exec", "web1", "--", "echo", "still here"])
            .output()
            .unwrap();
        let _ = done.send(output);
    });
    let output = finished
        .recv_timeout(Duration::from_secs(20))
        .expect("a caller on the same profile waited on one that stopped reading");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(output.stdout, b"still here\n");

    let rss_kib = tether_e2e::rss_kib(daemon.pid().unwrap());
    assert!(
        rss_kib < 150 * 1024,
        "daemon RSS {rss_kib} KiB with a stalled reader"
    );

    drop(flood);
    wait_until(
        "the flood's channel to close",
        Duration::from_secs(15),
        || channels(&daemon) == 0,
    );
}

#[test]
fn a_caller_that_stops_reading_holds_up_nobody_else() {
    stalled_caller_holds_up_nobody(&exec_request(r#"{"argv":["cat","/dev/zero"]}"#), true);
}

#[test]
fn a_download_nobody_reads_holds_up_nobody_else() {
    stalled_caller_holds_up_nobody(
        "GET /v1/profiles/web1/files?path=/dev/zero HTTP/1.1\r\nHost: t\r\n\r\n",
        false,
    );
}

#[test]
fn a_time_limit_holds_while_the_caller_is_not_reading() {
    let Some((sshd, daemon)) = tether_e2e::with_web1() else {
        return;
    };
    let flooding = || {
        tether_e2e::descendants(sshd.pid()).iter().any(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.starts_with(b"cat\x00/dev/zero"))
        })
    };
    let body = r#"{"argv":["cat","/dev/zero"],"timeout_secs":2}"#;
    let flood = raw_exec_body(&daemon, body);
    wait_until("the command to start", Duration::from_secs(10), flooding);
    wait_until(
        "the command to end at its time limit",
        Duration::from_secs(15),
        || !flooding(),
    );
    drop(flood);
}

#[test]
fn a_thousand_idle_connections_do_not_stall_others() {
    let daemon = Daemon::start();
    let mut idle = Vec::new();
    for _ in 0..1000 {
        match UnixStream::connect(&daemon.socket) {
            Ok(stream) => idle.push(stream),
            Err(error) => panic!("connect {}: {error}", idle.len()),
        }
    }
    // Over the per-uid limit the rest are refused at once, and a request
    // from a fresh connection is answered (refused or served) quickly.
    let started = Instant::now();
    let run = daemon.run(&["status"]);
    assert!(
        run.code == 0 || run.stderr.contains("error[too_many_connections]"),
        "{}",
        run.stderr
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    drop(idle);
    wait_until(
        "the idle connections to be released",
        Duration::from_secs(15),
        || daemon.run(&["status"]).code == 0,
    );
}

#[test]
fn a_large_upload_refused_at_the_door_still_gets_its_answer() {
    let daemon = Daemon::start();
    let body = vec![b'x'; 8 * 1024 * 1024];
    let mut stream = UnixStream::connect(&daemon.socket).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    write!(
        stream,
        "PUT /v1/profiles/web1/files?path=/tmp/x HTTP/1.1\r\nHost: t\r\n\
         tether-api-version: 999\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let _ = writer.write_all(&body);
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&answer).contains("unsupported_api_version") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("unsupported_api_version"), "{answer}");
    drop(stream);
    sender.join().unwrap();
    daemon.run(&["status"]).ok();
}

/// An upload hand-over takes only a regular file open for reading (a pipe,
/// which could stall it, or a file opened for writing only is refused, and
/// nothing is written); a download only one open for writing.
#[test]
fn a_handed_over_upload_takes_only_a_readable_regular_file() {
    let Some((sshd, daemon)) = tether_e2e::with_web1() else {
        return;
    };
    let remote = sshd.user_dir("handover");
    let target = remote.join("t");
    let local = tempfile::tempdir().unwrap();
    let write_only = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(local.path().join("w"))
        .unwrap();
    let (pipe_read, _pipe_write) = std::io::pipe().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = tether_api::client::Client::new(&daemon.socket);
    let upload = tether_api::endpoint::UploadHandover {
        name: "web1".into(),
        query: tether_api::files::FileQuery {
            path: target.display().to_string(),
            mode: None,
            mtime: None,
            preserve: false,
            inplace: false,
        },
    };
    for fd in [
        std::os::fd::AsFd::as_fd(&write_only),
        std::os::fd::AsFd::as_fd(&pipe_read),
    ] {
        let refused = runtime.block_on(async {
            let stream = client.hand_over_upload(&upload, fd).await.unwrap();
            tether_api::client::Client::upload_reply(stream).await
        });
        match refused {
            Err(tether_api::client::ClientError::Api(error)) => {
                assert_eq!(error.code.as_str(), "bad_request", "{error:?}")
            }
            other => panic!("not refused: {other:?}"),
        }
    }
    assert!(!target.exists());
    assert_eq!(
        std::fs::read_dir(&remote).unwrap().count(),
        0,
        "no temporary left"
    );

    // A download is written only into a regular file open for writing.
    std::fs::write(remote.join("source"), b"remote bytes").unwrap();
    let read_only = std::fs::File::open(local.path().join("w")).unwrap();
    let fetch = tether_api::endpoint::DownloadHandover {
        name: "web1".into(),
        query: tether_api::files::FileQuery {
            path: remote.join("source").display().to_string(),
            ..Default::default()
        },
    };
    let refused = runtime.block_on(async {
        let mut events = client.hand_over_download(&fetch, &read_only).await.unwrap();
        tether_api::client::Client::fetch_event(&mut events).await
    });
    match refused {
        Err(tether_api::client::ClientError::Api(error)) => {
            assert_eq!(error.code.as_str(), "bad_request", "{error:?}")
        }
        other => panic!("not refused: {other:?}"),
    }
    assert_eq!(std::fs::read(local.path().join("w")).unwrap(), b"");
}
