//! The connection pool against a real OpenSSH server: reuse, replacement of
//! dead connections, the server's session limit, concurrency, time limits,
//! signals and pseudo-terminals.

use std::process::Command;
use std::time::{Duration, Instant};

use tether_e2e::{Daemon, Sshd, SshdOptions, keygen, wait_until};

fn setup_with(options: SshdOptions, daemon_config: Option<&str>) -> Option<(Sshd, Daemon)> {
    let sshd = Sshd::start_with(options)?;
    let daemon = match daemon_config {
        Some(config) => Daemon::start_with_config(config),
        None => Daemon::start(),
    };
    let key = keygen(sshd.dir.path(), "id_ed25519", "ed25519", "");
    daemon.add_key_profile("web1", &sshd, &key).ok();
    Some((sshd, daemon))
}

fn setup() -> Option<(Sshd, Daemon)> {
    setup_with(SshdOptions::default(), None)
}

fn sessions(daemon: &Daemon) -> Vec<tether_e2e::Value> {
    let run = daemon.run(&["session", "list", "--json"]);
    run.ok();
    run.json()["sessions"].as_array().unwrap().clone()
}

#[test]
fn a_second_command_reuses_the_connection() {
    let Some((sshd, daemon)) = setup() else {
        return;
    };
    let before = sshd.connections_accepted();
    for i in 0..5 {
        let run = daemon.run(&["exec", "web1", "--", "echo", &i.to_string()]);
        run.ok();
        assert_eq!(run.stdout(), format!("{i}\n"));
    }
    assert_eq!(
        sshd.connections_accepted(),
        before + 1,
        "one TCP connection and handshake for five commands"
    );
    let live = sessions(&daemon);
    assert_eq!(live.len(), 1);
    assert_eq!(live[0]["profile"], "web1");
    assert_eq!(live[0]["channels"], 0);
    assert!(live[0]["bytes_out"].as_u64().unwrap() >= 10);

    let human = daemon.run(&["session", "list"]);
    assert!(human.stdout().contains("web1") && human.stdout().contains("CHANNELS"));

    let closed = daemon.run(&["session", "close", "web1", "--json"]);
    closed.ok();
    assert_eq!(closed.json()["closed"], 1);
    assert!(sessions(&daemon).is_empty());
    daemon.run(&["exec", "web1", "--", "true"]).ok();
    assert_eq!(sshd.connections_accepted(), before + 2);
    daemon
        .run(&["session", "close", "nope"])
        .fails_with("profile_not_found");
}

#[test]
fn a_dead_connection_is_replaced_transparently() {
    let Some((mut sshd, daemon)) = setup() else {
        return;
    };
    daemon.run(&["exec", "web1", "--", "true"]).ok();
    // The server goes away and comes back (a reboot): the pooled connection is dead.
    sshd.restart();
    let run = daemon.run(&["exec", "web1", "--", "echo", "again"]);
    run.ok();
    assert_eq!(run.stdout(), "again\n");
    assert_eq!(sessions(&daemon).len(), 1);
}

#[test]
fn a_command_on_a_dying_connection_fails_cleanly() {
    let Some((sshd, daemon)) = setup() else {
        return;
    };
    let child = daemon.spawn(&["exec", "web1", "--", "echo started; sleep 60"]);
    // Started on the server, with every sshd process of the connection in
    // place (a kill while sshd still forks could miss one).
    wait_until("the command to start", Duration::from_secs(10), || {
        tether_e2e::descendants(sshd.pid()).iter().any(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.starts_with(b"sleep\x0060"))
        })
    });
    let start = Instant::now();
    sshd.kill_connections();
    let out = child.wait_with_output().unwrap();
    assert!(start.elapsed() < Duration::from_secs(10), "no hang");
    let run = tether_e2e::Run::from(out);
    run.fails_with("ssh_error");
    // The next command gets a new connection.
    daemon.run(&["exec", "web1", "--", "true"]).ok();
}

#[test]
fn the_servers_session_limit_opens_another_connection() {
    let options = SshdOptions {
        extra_config: vec!["MaxSessions 2".into()],
        ..Default::default()
    };
    let Some((sshd, daemon)) = setup_with(options, None) else {
        return;
    };
    let before = sshd.connections_accepted();
    daemon.side_by_side("web1", 5, "sleep 1; ");
    let opened = sshd.connections_accepted() - before;
    assert!(
        (3..=5).contains(&opened),
        "5 channels at 2 per connection took {opened} connections"
    );
}

#[test]
fn a_hundred_concurrent_commands_all_succeed() {
    let Some((sshd, daemon)) = setup() else {
        return;
    };
    let before = sshd.connections_accepted();
    let children: Vec<_> = (0..100)
        .map(|i| daemon.spawn(&["exec", "web1", "--", &format!("echo {i}; exit {}", i % 7)]))
        .collect();
    for (i, child) in children.into_iter().enumerate() {
        let run = tether_e2e::Run::from(child.wait_with_output().unwrap());
        assert_eq!(run.code, (i % 7) as i32, "command {i}: {}", run.stderr);
        assert_eq!(run.stdout(), format!("{i}\n"));
    }
    let opened = sshd.connections_accepted() - before;
    assert!(opened <= 30, "100 commands took {opened} connections");
    let rss_kib = tether_e2e::rss_kib(daemon.pid().unwrap());
    assert!(
        rss_kib < 200 * 1024,
        "daemon RSS {rss_kib} KiB after 100 concurrent commands"
    );
}

#[test]
fn idle_connections_are_closed() {
    let Some((_sshd, daemon)) = setup_with(
        SshdOptions::default(),
        Some("[ssh]\nidle_timeout_secs = 1\n"),
    ) else {
        return;
    };
    daemon.run(&["exec", "web1", "--", "true"]).ok();
    wait_until(
        "the idle connection to close",
        Duration::from_secs(10),
        || sessions(&daemon).is_empty(),
    );
    daemon.run(&["exec", "web1", "--", "true"]).ok();
}

#[test]
fn timeout_ends_the_command_with_124() {
    let Some((_sshd, daemon)) = setup() else {
        return;
    };
    let start = Instant::now();
    let run = daemon.run(&[
        "exec",
        "web1",
        "--timeout",
        "1",
        "--",
        "echo begun; sleep 30",
    ]);
    assert_eq!(run.code, 124, "{}", run.stderr);
    assert_eq!(run.stdout(), "begun\n");
    assert!(
        run.stderr
            .starts_with("tether: timed out: the command ran past --timeout"),
        "{}",
        run.stderr
    );
    assert!(start.elapsed() < Duration::from_secs(10));
    daemon
        .run(&["exec", "web1", "--timeout", "5", "--", "true"])
        .ok();
    daemon
        .run(&["exec", "web1", "--timeout", "0", "--", "true"])
        .fails_with("usage");
}

#[test]
fn ctrl_c_interrupts_the_remote_command() {
    let Some((sshd, daemon)) = setup() else {
        return;
    };
    if sshd.user == "root" {
        tether_e2e::skip("OpenSSH does not deliver signals to root sessions");
        return;
    }
    let child = daemon.spawn(&["exec", "web1", "--", "sleep", "60"]);
    wait_until("the command to start", Duration::from_secs(10), || {
        sessions(&daemon)
            .first()
            .is_some_and(|s| s["channels"] == 1)
    });
    std::thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let run = tether_e2e::Run::from(child.wait_with_output().unwrap());
    assert_eq!(
        run.code, 130,
        "sleep killed by SIGINT; stderr: {}",
        run.stderr
    );
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_pty_is_given_only_when_asked() {
    let Some((_sshd, daemon)) = setup() else {
        return;
    };
    let run = daemon.run(&["exec", "web1", "-t", "--", "tty"]);
    run.ok();
    assert!(run.stdout().starts_with("/dev/pts/"), "{}", run.stdout());
    let run = daemon.run(&["exec", "web1", "--", "tty"]);
    assert_eq!(run.code, 1);
    assert!(run.stdout().contains("not a tty"));
}

#[test]
fn a_silent_server_is_detected_by_keepalives() {
    let Some((sshd, daemon)) =
        setup_with(SshdOptions::default(), Some("[ssh]\nkeepalive_secs = 1\n"))
    else {
        return;
    };
    daemon.run(&["exec", "web1", "--", "true"]).ok();
    let child = daemon.spawn(&["exec", "web1", "--", "sleep 60"]);
    wait_until("the command to start", Duration::from_secs(10), || {
        sessions(&daemon)
            .first()
            .is_some_and(|s| s["channels"] == 1)
    });
    // Freeze the server's side of the connection: no FIN, no RST, only silence,
    // as when a network path dies.
    let frozen = tether_e2e::descendants(sshd.pid());
    for &pid in &frozen {
        Command::new("kill")
            .args(["-STOP", &pid.to_string()])
            .status()
            .unwrap();
    }
    let start = Instant::now();
    let run = tether_e2e::Run::from(child.wait_with_output().unwrap());
    let waited = start.elapsed();
    for &pid in &frozen {
        Command::new("kill")
            .args(["-CONT", &pid.to_string()])
            .status()
            .unwrap();
    }
    run.fails_with("ssh_error");
    assert!(
        waited < Duration::from_secs(15),
        "detected after {waited:?}"
    );
    // The next command gets a new connection.
    daemon.run(&["exec", "web1", "--", "true"]).ok();
}

#[test]
fn file_requests_reuse_one_sftp_session_and_leave_room_for_commands() {
    let options = SshdOptions {
        extra_config: vec!["MaxSessions 2".into()],
        ..Default::default()
    };
    let Some((sshd, daemon)) = setup_with(options, None) else {
        return;
    };
    let starts = || sshd.log().matches("subsystem 'sftp'").count();
    let remote = sshd.user_dir("files");
    let target = format!("web1:{}/f", remote.display());
    for i in 0..5 {
        daemon
            .run_with_stdin(&["cp", "-", &target], format!("{i}\n").as_bytes())
            .ok();
        let stat = format!("{}/f", remote.display());
        daemon.run(&["files", "web1", "stat", &stat]).ok();
        let back = daemon.run(&["cp", &target, "-"]);
        back.ok();
        assert_eq!(back.stdout(), format!("{i}\n"));
    }
    // Fifteen requests, one or two sessions (a download's session is kept
    // just after its last byte, which the next request may beat).
    let started = starts();
    assert!((1..=2).contains(&started), "{started}: {}", sshd.log());
    // The kept session leaves a slot for a command: no second connection.
    let before = sshd.connections_accepted();
    daemon.run(&["exec", "web1", "--", "true"]).ok();
    assert_eq!(sshd.connections_accepted(), before);
    // A kept session ends with its connection.
    daemon.run(&["session", "close", "web1"]).ok();
    let stat = format!("{}/f", remote.display());
    daemon.run(&["files", "web1", "stat", &stat]).ok();
    assert_eq!(starts(), started + 1, "{}", sshd.log());
}

/// A tree copy reuses its SFTP sessions: one per file in flight, not one
/// per file (on OpenSSH each is a process).
#[test]
fn a_tree_copy_starts_a_session_per_file_in_flight_not_per_file() {
    let Some((sshd, daemon)) = setup_with(SshdOptions::default(), None) else {
        return;
    };
    let starts = || sshd.log().matches("subsystem 'sftp'").count();
    let local = tempfile::tempdir().unwrap();
    let tree = local.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    for i in 0..64 {
        std::fs::write(tree.join(format!("f{i:02}")), format!("{i}\n")).unwrap();
    }
    let remote = sshd.user_dir("files");
    let before = starts();
    daemon
        .run(&[
            "cp",
            "-r",
            &tree.display().to_string(),
            &format!("web1:{}/t", remote.display()),
        ])
        .ok();
    let back = local.path().join("back");
    daemon
        .run(&[
            "cp",
            "-r",
            &format!("web1:{}/t", remote.display()),
            &back.display().to_string(),
        ])
        .ok();
    assert_eq!(std::fs::read_to_string(back.join("f63")).unwrap(), "63\n");
    let started = starts() - before;
    let in_flight = tether_api::files::FILES_IN_FLIGHT;
    assert!(started <= in_flight + 2, "{started} sessions for 128 files");
}

/// A TCP relay to `to` that, once armed, holds the connections it accepts
/// (nothing passes) until `hold` of them are waiting or five seconds have
/// passed, and says how many it held at once.
struct HoldingRelay {
    port: u16,
    armed: std::sync::Arc<std::sync::atomic::AtomicBool>,
    most_held: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl HoldingRelay {
    fn start(to: u16, hold: usize) -> HoldingRelay {
        use std::net::{TcpListener, TcpStream};
        use std::sync::atomic::Ordering;
        use std::sync::{Arc, Mutex};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let armed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let most_held = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let held: Arc<Mutex<(Vec<TcpStream>, Option<Instant>)>> = Arc::default();
        let relay = move |client: TcpStream| {
            let server = TcpStream::connect(("127.0.0.1", to)).unwrap();
            for (mut from, mut into) in [
                (client.try_clone().unwrap(), server.try_clone().unwrap()),
                (server, client),
            ] {
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from, &mut into);
                    let _ = into.shutdown(std::net::Shutdown::Write);
                });
            }
        };
        // Lets the held ones go when enough wait, or when waited too long.
        let release = {
            let (held, armed, most_held) = (held.clone(), armed.clone(), most_held.clone());
            move |force: bool| {
                let mut held = held.lock().unwrap();
                let waited = held.1.is_some_and(|t| t.elapsed() > Duration::from_secs(5));
                if held.0.len() >= hold || (force && waited) {
                    most_held.fetch_max(held.0.len(), Ordering::SeqCst);
                    armed.store(false, Ordering::SeqCst);
                    for client in held.0.drain(..) {
                        relay(client);
                    }
                }
            }
        };
        let timer = release.clone();
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(Duration::from_millis(50));
                timer(true);
            }
        });
        let (accept_armed, accept_held) = (armed.clone(), held.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if accept_armed.load(Ordering::SeqCst) {
                    let mut held = accept_held.lock().unwrap();
                    held.1.get_or_insert_with(Instant::now);
                    held.0.push(client);
                    drop(held);
                    release(false);
                } else {
                    relay(client);
                }
            }
        });
        HoldingRelay {
            port,
            armed,
            most_held,
        }
    }
}

#[test]
fn a_burst_on_a_cold_profile_opens_its_connections_at_once() {
    let Some(sshd) = Sshd::start() else {
        return;
    };
    let daemon = Daemon::start();
    let key = keygen(sshd.dir.path(), "id_ed25519", "ed25519", "");
    sshd.authorize(&key);
    let relay = HoldingRelay::start(sshd.port, 2);
    let args = tether_e2e::key_profile_args_for("web1", "127.0.0.1", relay.port, &sshd.user, &key);
    daemon
        .run(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .ok();
    daemon.run(&["session", "close", "web1"]).ok();

    // Twelve commands need two connections (ten channels each): both are
    // opened before either has logged in.
    relay.armed.store(true, std::sync::atomic::Ordering::SeqCst);
    daemon.side_by_side("web1", 12, "sleep 1; ");
    assert_eq!(
        relay.most_held.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "connections opened one after another"
    );
    assert_eq!(sessions(&daemon).len(), 2, "{:?}", sessions(&daemon));
}

/// russh keeps a little state for every channel the client closes first
/// until its connection ends, so a connection is replaced after 512
/// channels (`ssh::pool::CHANNELS_PER_CONNECTION`): a long-lived daemon's
/// memory stays bounded.
#[test]
fn a_connection_is_replaced_after_its_five_hundred_and_twelfth_channel() {
    let Some((sshd, daemon)) = setup() else {
        return;
    };
    daemon.run(&["exec", "web1", "--", "true"]).ok();
    let first = sessions(&daemon)[0]["id"].clone();
    let before = sshd.connections_accepted();
    // Five at a time: they all fit on the first connection.
    for _batch in 0..104 {
        daemon.side_by_side("web1", 5, "");
    }
    // Retired, it hangs up once its last channel has ended.
    wait_until(
        "the first connection to go",
        Duration::from_secs(10),
        || sessions(&daemon).iter().all(|s| s["id"] != first),
    );
    assert!(sshd.connections_accepted() > before);
}
