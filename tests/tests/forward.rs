//! `tether forward` (-L, -D) and `tether proxy` against a real OpenSSH
//! server: the connections are made by the server (`direct-tcpip`) and
//! carried by tetherd; the CLI only listens and hands them over.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;

use sha2::{Digest, Sha256};
use tether_e2e::{Daemon, Run, keygen, run_command, stop_child, tether_bin, which};

/// An echo server on loopback: what a forward carries comes back.
fn echo_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut reader = stream.try_clone().unwrap();
                let mut writer = stream;
                let _ = std::io::copy(&mut reader, &mut writer);
                let _ = writer.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    port
}

/// `tether forward ARGS --json`, running; the addresses it listens on.
fn forward(daemon: &Daemon, args: &[&str]) -> (Child, Vec<String>) {
    forward_as(daemon, None, args)
}

fn forward_as(daemon: &Daemon, user: Option<&str>, args: &[&str]) -> (Child, Vec<String>) {
    let mut command = match user {
        Some(user) => {
            // As `Daemon::run_as`: the same login session, where the
            // user's MFA session is.
            let mut command = Command::new("setpriv");
            command
                .args(["--reuid", user, "--regid", user, "--init-groups"])
                .arg(daemon.shared_cli());
            command
        }
        None => Command::new(tether_bin()),
    };
    let listeners = args.iter().filter(|a| **a == "-L" || **a == "-D").count();
    let mut child = command
        .arg("--socket")
        .arg(&daemon.socket)
        .arg("forward")
        .args(args)
        .arg("--json")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let bound = (0..listeners)
        .map(|_| {
            let line = lines.next().unwrap().unwrap();
            let value: serde_json::Value = serde_json::from_str(&line).unwrap();
            value["listen"].as_str().unwrap().to_owned()
        })
        .collect();
    (child, bound)
}

/// Ends a forward as Ctrl-C does; its exit status and what it said.
fn interrupt(mut child: Child) -> (Option<i32>, String) {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status.code(), stderr)
}

/// Sends `message` through `address` and reads it back.
fn round_trip(address: &str, message: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.write_all(message).unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut back = Vec::new();
    stream.read_to_end(&mut back).unwrap();
    back
}

/// Whether a connection to `address` is closed without an answer (a
/// refused forward: closed at once, or reset).
fn refused(address: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(address) else {
        return true;
    };
    let _ = stream.write_all(b"hello");
    let mut back = Vec::new();
    stream
        .read_to_end(&mut back)
        .map_or(true, |_| back.is_empty())
}

#[test]
fn a_local_forward_carries_fifty_parallel_connections_and_a_hundred_mebibytes() {
    let Some((_sshd, daemon)) = tether_e2e::with_web1() else {
        return;
    };
    let echo = echo_server();
    let to = format!("0:127.0.0.1:{echo}");
    let (child, bound) = forward(&daemon, &["web1", "-L", &to]);
    let address = bound[0].clone();

    let parallel: Vec<_> = (0..50)
        .map(|n| {
            let address = address.clone();
            thread::spawn(move || {
                let message = format!("connection {n} ").repeat(1000).into_bytes();
                assert_eq!(round_trip(&address, &message), message, "connection {n}");
            })
        })
        .collect();
    for handle in parallel {
        handle.join().unwrap();
    }

    // 100 MiB each way at once, checked by SHA-256.
    const SIZE: usize = 100 * 1024 * 1024;
    let stream = TcpStream::connect(&address).unwrap();
    let mut reader = stream.try_clone().unwrap();
    let receiving = thread::spawn(move || {
        let mut hash = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0;
        loop {
            let n = reader.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            hash.update(&buf[..n]);
            total += n;
        }
        (total, hash.finalize())
    });
    let mut writer = stream;
    let mut sent = Sha256::new();
    let chunk: Vec<u8> = (0..1024 * 1024u32)
        .map(|i| (i * 7 + i / 4099) as u8)
        .collect();
    for n in 0..SIZE / chunk.len() {
        let mut piece = chunk.clone();
        piece[0] = n as u8;
        sent.update(&piece);
        writer.write_all(&piece).unwrap();
    }
    writer.shutdown(std::net::Shutdown::Write).unwrap();
    let (total, received) = receiving.join().unwrap();
    assert_eq!(total, SIZE);
    assert_eq!(received, sent.finalize());

    // Each connection on the trail at its end: where to, bytes, duration;
    // one SSH connection carried them all. The last is recorded as its
    // connection ends, which the client need not wait for.
    let recorded = || daemon.run(&["audit", "--json", "--op", "forward"]).json();
    tether_e2e::wait_until("51 records", std::time::Duration::from_secs(10), || {
        recorded()
            .as_array()
            .is_some_and(|events| events.len() >= 51)
    });
    let events = recorded();
    let events = events.as_array().unwrap();
    assert_eq!(events.len(), 51, "{events:?}");
    let big = events
        .iter()
        .find(|e| e["details"]["bytes_out"] == SIZE as u64)
        .unwrap_or_else(|| panic!("{events:?}"));
    assert_eq!(big["details"]["bytes_in"], SIZE as u64);
    assert_eq!(big["details"]["to"], format!("127.0.0.1:{echo}"));
    assert_eq!(big["details"]["kind"], "local");
    assert!(big["details"]["ms"].is_u64());
    let sessions = daemon.run(&["session", "list", "--json"]).json();
    assert_eq!(
        sessions["sessions"].as_array().unwrap().len(),
        1,
        "{sessions}"
    );

    let (code, stderr) = interrupt(child);
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn a_socks_forward_serves_curl_and_a_closed_port_is_refused_politely() {
    let Some((_sshd, daemon)) = tether_e2e::with_web1() else {
        return;
    };
    let Some(curl) = which("curl").or_else(|| tether_e2e::missing("curl", "apt-get install curl"))
    else {
        return;
    };
    let site = tempfile::tempdir().unwrap();
    std::fs::write(site.path().join("hello.txt"), "through the server\n").unwrap();
    let http_port = tether_e2e::free_port();
    let mut http = Command::new("python3")
        .args(["-m", "http.server", "--bind", "127.0.0.1"])
        .arg(http_port.to_string())
        .current_dir(site.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    tether_e2e::wait_until("the web server", std::time::Duration::from_secs(10), || {
        TcpStream::connect(("127.0.0.1", http_port)).is_ok()
    });
    let (child, bound) = forward(&daemon, &["web1", "-D", "0"]);
    let proxy = format!("socks5h://{}", bound[0]);
    let url = format!("http://localhost:{http_port}/hello.txt");
    let run = run_command(Command::new(&curl).args(["-sS", "--proxy", &proxy, &url]));
    run.ok();
    assert_eq!(run.stdout(), "through the server\n");

    // Nothing listens there: the SOCKS client is told, the forward goes on.
    let closed = format!("http://127.0.0.1:{}/", tether_e2e::free_port());
    let run = run_command(Command::new(&curl).args(["-sS", "--proxy", &proxy, &closed]));
    assert_ne!(run.code, 0);
    // curl's "(5)": the SOCKS reply "connection refused".
    assert!(run.stderr.contains("(5)"), "{}", run.stderr);
    let run = run_command(Command::new(&curl).args(["-sS", "--proxy", &proxy, &url]));
    run.ok();

    stop_child(&mut http);
    let (code, stderr) = interrupt(child);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("error[connect_failed]"), "{stderr}");
}

#[test]
fn ssh_reaches_its_server_through_tether_proxy() {
    let Some((sshd, daemon)) = tether_e2e::with_web1() else {
        return;
    };
    let Some(ssh) = which("ssh") else {
        tether_e2e::missing::<()>("ssh", "apt-get install openssh-client");
        return;
    };
    let key = keygen(sshd.dir.path(), "id_proxy", "ed25519", "");
    sshd.authorize(&key);
    let dir = tempfile::tempdir().unwrap();
    let proxy_command = format!(
        "{} --socket {} proxy web1 %h %p",
        tether_bin().display(),
        daemon.socket.display()
    );
    let run = run_command(
        Command::new(ssh)
            .args(["-F", "/dev/null", "-o", "BatchMode=yes"])
            .args(["-o", "StrictHostKeyChecking=accept-new"])
            .arg("-o")
            .arg(format!(
                "UserKnownHostsFile={}/known_hosts",
                dir.path().display()
            ))
            .arg("-o")
            .arg(format!("ProxyCommand={proxy_command}"))
            .arg("-i")
            .arg(&key.private)
            .args(["-p", &sshd.port.to_string()])
            .arg(format!("{}@127.0.0.1", sshd.user))
            .arg("echo over the proxy; head -c 2000000 /dev/zero | wc -c")
            .stdin(Stdio::null()),
    );
    run.ok();
    assert_eq!(run.stdout(), "over the proxy\n2000000\n");
    // Recorded as the connection ends, which ssh need not wait for.
    let recorded = || daemon.run(&["audit", "--json", "--op", "forward"]).json();
    tether_e2e::wait_until(
        "the proxy's record",
        std::time::Duration::from_secs(10),
        || {
            recorded()
                .as_array()
                .is_some_and(|events| !events.is_empty())
        },
    );
    let events = recorded();
    assert_eq!(events[0]["details"]["kind"], "proxy", "{events}");
    assert_eq!(events[0]["result"], "ok", "{events}");
}

#[test]
fn forwards_need_the_grant_for_their_destination() {
    let Some((_sshd, daemon)) = crate::access::setup() else {
        return;
    };
    let alice = "tether-alice";
    let echo = echo_server();
    let destination = format!("127.0.0.1:{echo}");
    daemon
        .run(&[
            "grant", "add", "web1", "--user", alice, "--role", "operator", "--exec", "any",
        ])
        .ok();
    crate::access::enroll(&daemon, alice);

    // Without --forward: the connection is closed and the reason shown.
    let to = format!("0:{destination}");
    let (child, bound) = forward_as(&daemon, Some(alice), &["web1", "-L", &to]);
    assert!(refused(&bound[0]));
    let (_, stderr) = interrupt(child);
    assert!(stderr.contains("error[forbidden]"), "{stderr}");
    assert!(stderr.contains("--forward"), "{stderr}");
    let proxied = daemon.run_as(
        alice,
        &["proxy", "web1", "127.0.0.1", &echo.to_string()],
        b"",
        false,
    );
    proxied.fails_with("forbidden");

    // `*` is an owner's; a named destination is an operator's.
    let operator_forwarding = |destination: &str| {
        daemon.run(&[
            "grant",
            "set",
            "web1",
            "--user",
            alice,
            "--role",
            "operator",
            "--exec",
            "any",
            "--forward",
            destination,
        ])
    };
    operator_forwarding("*:*").fails_with("bad_request");
    operator_forwarding(&destination).ok();
    let (child, bound) = forward_as(&daemon, Some(alice), &["web1", "-L", &to]);
    assert_eq!(round_trip(&bound[0], b"hello"), b"hello");
    // Another port of the same host is not the granted one.
    let other = format!("0:127.0.0.1:{}", echo_server());
    let (second, other_bound) = forward_as(&daemon, Some(alice), &["web1", "-L", &other]);
    assert!(refused(&other_bound[0]));
    let (_, stderr) = interrupt(second);
    assert!(stderr.contains("error[forbidden]"), "{stderr}");
    let (code, _) = interrupt(child);
    assert_eq!(code, Some(0));
    let proxied: Run = daemon.run_as(
        alice,
        &["proxy", "web1", "127.0.0.1", &echo.to_string()],
        b"ping",
        false,
    );
    proxied.ok();
    assert_eq!(proxied.stdout(), "ping");
}

/// A forward whose port is taken fails at once, naming it.
#[test]
fn a_taken_port_fails_the_forward_before_anything_else() {
    let Some((_sshd, daemon)) = tether_e2e::with_web1() else {
        return;
    };
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let run = daemon.run(&["forward", "web1", "-L", &format!("{port}:127.0.0.1:22")]);
    run.fails_with("io_error");
    assert!(
        run.stderr.contains(&format!("127.0.0.1:{port}")),
        "{}",
        run.stderr
    );
}
