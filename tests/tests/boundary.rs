//! The trust boundary, attacked as hostile local users would: a profile
//! owner re-pointing a stored secret, MFA delegated away, groups from a
//! process's gid, sensitive values in the log, `/` under a path grant, and
//! enrolment by invite. Needs root (other uids, the system daemon).

use std::fs::Permissions;
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::access::{as_user, enroll, login, settle, setup, setup_with, totp};
use tether_e2e::{Daemon, Run, Sshd, ensure_user, is_root, skip, stop_child, test_password};

const ALICE: &str = "tether-alice";

fn connects(daemon: &Daemon) -> Vec<serde_json::Value> {
    daemon
        .run(&["audit", "--op", "ssh.connect", "--json"])
        .json()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn a_stored_secret_goes_only_where_it_was_stored_for() {
    let Some((mut sshd, daemon)) = setup() else {
        return;
    };
    daemon
        .add_password_profile("pw", &sshd, test_password())
        .ok();
    for profile in ["pw", "web1"] {
        daemon
            .run(&["grant", "add", profile, "--user", ALICE, "--role", "owner"])
            .ok();
    }
    enroll(&daemon, ALICE);
    // A server of the owner's choosing: it logs every login attempt.
    let evil = Sshd::start().unwrap();
    let evil_port = evil.port.to_string();
    let evil_key = evil.host_fingerprint();
    // (The harness's own readiness probe is one connection.)
    let probes = evil.connections_accepted();
    for args in [
        &["profile", "set", "pw", "--port", &evil_port, "--accept-new"][..],
        &[
            "profile",
            "set",
            "pw",
            "--port",
            &evil_port,
            "--host-key",
            &evil_key,
        ],
        &["profile", "set", "pw", "--user", "root"],
        &[
            "profile",
            "set",
            "pw",
            "--host",
            "127.0.0.2",
            "--accept-new",
        ],
        &["profile", "trust", "pw", "--host-key", &evil_key],
        &[
            "profile",
            "set",
            "web1",
            "--port",
            &evil_port,
            "--accept-new",
        ],
    ] {
        let run = as_user(&daemon, ALICE, args);
        run.fails_with("forbidden");
        assert!(run.stderr.contains("new credential"), "{}", run.stderr);
    }
    assert_eq!(evil.connections_accepted(), probes, "{}", evil.log());
    let shown = daemon.run(&["profile", "show", "pw", "--json"]).json();
    assert_eq!(shown["port"], sshd.port, "nothing changed");
    daemon.run(&["exec", "pw", "--", "true"]).ok();

    // With a credential of her own in the same request, the owner may move
    // the profile: the new server gets that credential, never the stored one.
    daemon
        .run_as(
            ALICE,
            &[
                "profile",
                "set",
                "pw",
                "--port",
                &evil_port,
                "--accept-new",
                "--password-stdin",
            ],
            b"not-the-stored-password\n",
            false,
        )
        .fails_with("auth_failed");
    assert!(evil.log().contains("Failed password"), "{}", evil.log());
    let attempt = connects(&daemon)
        .into_iter()
        .rfind(|e| e["op"] == "ssh.connect" && e["details"]["port"] == evil.port)
        .unwrap();
    assert_eq!(attempt["details"]["credential"], "given");
    assert_eq!(attempt["details"]["purpose"], "verify");
    assert_eq!(attempt["details"]["host_key"], evil_key);
    assert_eq!(attempt["uid"], ensure_user(ALICE, &[]));

    // Root decides where a secret may go.
    daemon
        .run(&["profile", "set", "pw", "--port", &evil_port, "--accept-new"])
        .ok();
    assert!(evil.log().contains("Accepted password"), "{}", evil.log());
    let moved = connects(&daemon)
        .into_iter()
        .rfind(|e| e["op"] == "ssh.connect" && e["details"]["port"] == evil.port)
        .unwrap();
    assert_eq!(moved["details"]["credential"], "stored");
    assert_eq!(moved["uid"], 0);

    // --accept-new never accepts a changed key, for anyone.
    sshd.replace_host_key();
    let run = daemon.run(&["profile", "set", "web1", "--accept-new"]);
    run.fails_with("host_key_mismatch");
    assert!(
        run.stderr.contains("tether profile trust web1"),
        "{}",
        run.stderr
    );
    let run = daemon.run(&["exec", "web1", "--", "true"]);
    run.fails_with("host_key_mismatch");
    assert!(run.stderr.contains("tether profile trust web1"));
    daemon
        .run(&[
            "profile",
            "trust",
            "web1",
            "--host-key",
            &sshd.host_fingerprint(),
        ])
        .ok();
    daemon.run(&["exec", "web1", "--", "true"]).ok();
}

#[test]
fn mfa_cannot_be_delegated_away() {
    let Some((_sshd, daemon)) = setup() else {
        return;
    };
    daemon
        .run(&["grant", "add", "web1", "--user", ALICE, "--role", "owner"])
        .ok();
    enroll(&daemon, ALICE);
    let cron = "tether-cron";
    let unattended = [
        "grant",
        "add",
        "web1",
        "--user",
        cron,
        "--role",
        "operator",
        "--exec",
        "backup",
        "--unattended",
    ];
    as_user(&daemon, ALICE, &unattended).fails_with("forbidden");
    as_user(
        &daemon,
        ALICE,
        &[
            "action", "add", "web1", "backup", "--", "sh", "-c", "{c:.*}",
        ],
    )
    .fails_with("forbidden");
    // An owner still grants what needs MFA.
    as_user(
        &daemon,
        ALICE,
        &[
            "grant", "add", "web1", "--user", cron, "--role", "operator", "--exec", "any",
        ],
    )
    .ok();
    // Root's unattended grant cannot be turned into another by an owner.
    let mut replace = unattended;
    replace[1] = "set";
    daemon.run(&replace).ok();
    as_user(
        &daemon,
        ALICE,
        &[
            "grant", "set", "web1", "--user", cron, "--role", "operator", "--exec", "any",
        ],
    )
    .fails_with("forbidden");
    daemon
        .run(&["action", "add", "web1", "backup", "--", "true"])
        .ok();
}

#[test]
fn groups_come_from_the_user_database_not_the_process() {
    let Some((_sshd, daemon)) = setup() else {
        return;
    };
    // A group the user is not in, granted the profile; a process running
    // with that gid (as a setgid program would) gets nothing from it.
    ensure_user("tether-gidtest", &[]);
    daemon
        .run(&[
            "grant",
            "add",
            "web1",
            "--group",
            "tether-gidtest",
            "--role",
            "viewer",
        ])
        .ok();
    let run = tether_e2e::run_command(
        std::process::Command::new("setpriv")
            .args([
                "--reuid",
                "tether-carol",
                "--regid",
                "tether-gidtest",
                "--init-groups",
            ])
            .arg(daemon.shared_cli())
            .arg("--socket")
            .arg(&daemon.socket)
            .args(["profile", "show", "web1"]),
    );
    run.fails_with("profile_not_found");
}

#[test]
fn sensitive_values_stay_out_of_logs_and_slash_means_the_root() {
    let Some((sshd, daemon)) = setup() else {
        return;
    };
    daemon
        .run(&[
            "action",
            "add",
            "web1",
            "login",
            "--",
            "true",
            "{token!:[a-z0-9]+}",
        ])
        .ok();
    let secret = "s3cretvalue42";
    daemon
        .run(&["run", "web1", "login", secret])
        .fails_with("bad_request");
    daemon
        .run(&["run", "web1", "login", &format!("token={secret}!")])
        .fails_with("bad_request");
    let trail = daemon.run(&["audit", "--json"]).stdout();
    assert!(!trail.contains(secret), "{trail}");
    assert!(!daemon.log().contains(secret), "{}", daemon.log());

    // `/` under a grant limited to `/` is the root, not the login directory.
    daemon
        .run(&[
            "grant", "add", "web1", "--user", ALICE, "--role", "operator", "--sftp", "read",
            "--path", "/",
        ])
        .ok();
    enroll(&daemon, ALICE);
    let listed = as_user(&daemon, ALICE, &["sftp", "web1", "ls", "/"]);
    listed.ok();
    assert!(
        listed.stdout().lines().any(|l| l == "etc"),
        "{}",
        listed.stdout()
    );
    let ls = daemon.run(&["audit", "--op", "sftp.ls", "--json"]).json();
    let end = ls
        .as_array()
        .unwrap()
        .iter()
        .rfind(|e| e["op"] == "sftp.ls.end")
        .unwrap()
        .clone();
    assert_eq!(end["details"]["resolved"], serde_json::json!(["/"]));
    let _ = sshd;
}

#[test]
fn a_first_enrolment_can_require_an_invite() {
    let Some((_sshd, daemon)) = setup_with("[mfa]\nenrolment = \"invite\"\n") else {
        return;
    };
    as_user(&daemon, ALICE, &["mfa", "enroll", "--json"]).fails_with("mfa_invite_required");
    daemon
        .run(&["mfa", "invite", "nosuchuser-x"])
        .fails_with("no_such_user");
    as_user(&daemon, "tether-bob", &["mfa", "invite", ALICE]).fails_with("forbidden");
    let invite = daemon.run(&["mfa", "invite", ALICE, "--json"]).json();
    let code = invite["code"].as_str().unwrap().to_owned();
    // Another user's invite is not theirs; a wrong one counts as a failure.
    daemon
        .run_as(
            "tether-bob",
            &["mfa", "enroll", "--invite", "--json"],
            format!("{code}\n").as_bytes(),
            false,
        )
        .fails_with("mfa_invalid");
    let started = daemon.run_as(
        ALICE,
        &["mfa", "enroll", "--invite", "--json"],
        format!("{code}\n").as_bytes(),
        false,
    );
    started.ok();
    let secret = started.json()["secret"].as_str().unwrap().to_owned();
    settle();
    daemon
        .run_as(
            ALICE,
            &["mfa", "confirm"],
            format!("{}\n", totp(&secret, 0)).as_bytes(),
            false,
        )
        .ok();
    // Used up.
    daemon
        .run_as(
            "tether-carol",
            &["mfa", "enroll", "--invite", "--json"],
            format!("{code}\n").as_bytes(),
            false,
        )
        .fails_with("mfa_invalid");
    as_user(&daemon, ALICE, &["logout"]).ok();
    login(&daemon, ALICE, &totp(&secret, 1)).ok();
    let trail = daemon.run(&["audit", "--op", "mfa", "--json"]).stdout();
    assert!(
        trail.contains("mfa.invite") && !trail.contains(&code),
        "{trail}"
    );
}

/// A listener of `user`'s at `socket` that counts the bytes it receives
/// into `count` (a hostile user's stand-in for tetherd).
/// Ends its process when dropped, also when the test panics.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        stop_child(&mut self.0);
    }
}

fn squatter(user: &str, socket: &std::path::Path, count: &std::path::Path) -> Killed {
    let script = r#"
import os, socket, sys
path, count = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX)
s.bind(path)
os.chmod(path, 0o777)
s.listen(16)
total = 0
open(count, "w").write("0")
while True:
    c, _ = s.accept()
    c.settimeout(2)
    try:
        while True:
            data = c.recv(65536)
            if not data:
                break
            total += len(data)
            open(count, "w").write(str(total))
    except OSError:
        pass
    c.close()
"#;
    let child = Command::new("setpriv")
        .args(["--reuid", user, "--regid", user, "--init-groups"])
        .args(["/usr/bin/python3", "-c", script])
        .arg(socket)
        .arg(count)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let child = Killed(child);
    tether_e2e::wait_until("the squatter to listen", Duration::from_secs(10), || {
        count.exists()
    });
    child
}

fn as_user_with_env(
    user: &str,
    program: &std::path::Path,
    args: &[&str],
    tmp: &std::path::Path,
) -> Run {
    tether_e2e::run_command(
        Command::new("setpriv")
            .args(["--reuid", user, "--regid", user, "--init-groups"])
            .arg(program)
            .args(args)
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("TETHER_SOCKET")
            .env("TMPDIR", tmp),
    )
}

#[test]
fn a_squatted_socket_gets_nothing() {
    if !is_root() {
        skip("needs root: other uids");
        return;
    }
    let victim = ensure_user(ALICE, &[]);
    ensure_user("tether-mallory", &[]);
    let daemon = Daemon::new();
    let tmp = daemon.dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    std::fs::set_permissions(daemon.dir.path(), Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&tmp, Permissions::from_mode(0o1777)).unwrap();
    let cli = daemon.shared_cli();
    let tetherd = daemon.dir.path().join("tetherd");
    tether_e2e::copy_executable(&tether_e2e::tetherd_bin(), &tetherd);

    // Mallory makes the victim's fallback directory first, open to all,
    // with a listener of her own in it.
    let squatted = tmp.join(format!("tether-{victim}"));
    tether_e2e::run_command(
        Command::new("setpriv")
            .args([
                "--reuid",
                "tether-mallory",
                "--regid",
                "tether-mallory",
                "--init-groups",
            ])
            .args(["mkdir", "-m", "0777"])
            .arg(&squatted),
    )
    .ok();
    let count = tmp.join("received");
    let listener = squatter("tether-mallory", &squatted.join("tether.sock"), &count);
    let received = || std::fs::read_to_string(&count).unwrap_or_default();

    let run = as_user_with_env(ALICE, &cli, &["status"], &tmp);
    run.fails_with("untrusted_socket");
    assert!(run.stderr.contains("belongs to uid"), "{}", run.stderr);
    // Named outright, the socket is still not trusted: its listener is
    // neither root nor the caller.
    let socket = squatted.join("tether.sock");
    let named = socket.to_str().unwrap();
    for args in [
        &["--socket", named, "status"][..],
        &["--socket", named, "exec", "web1", "--", "true"],
    ] {
        let run = as_user_with_env(ALICE, &cli, args, &tmp);
        run.fails_with("untrusted_socket");
        assert!(run.stderr.contains("nothing was sent"), "{}", run.stderr);
    }
    assert_eq!(received(), "0", "the squatter received bytes");

    // The victim's own daemon will not start there, and says why.
    let state = tmp.join("alice-state");
    let run = as_user_with_env(
        ALICE,
        &tetherd,
        &["--user", "--state-dir", state.to_str().unwrap()],
        &tmp,
    );
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("belongs to uid"), "{}", run.stderr);
    drop(listener);

    // The daemon refuses a socket directory others can write, and a link.
    let open = daemon.dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, Permissions::from_mode(0o777)).unwrap();
    let link = daemon.dir.path().join("link");
    std::os::unix::fs::symlink(&open, &link).unwrap();
    for (dir, why) in [(&open, "other users may write"), (&link, "symbolic link")] {
        let run = tether_e2e::run_command(
            Command::new(tether_e2e::tetherd_bin())
                .arg("--socket")
                .arg(dir.join("s.sock"))
                .arg("--state-dir")
                .arg(daemon.dir.path().join("state"))
                .env_remove("LISTEN_PID"),
        );
        assert_ne!(run.code, 0);
        assert!(run.stderr.contains(why), "{}", run.stderr);
    }
}

#[test]
fn peer_text_is_escaped() {
    let Some((sshd, daemon)) = tether_e2e::with_web1() else {
        return;
    };
    let remote = sshd.user_dir("remote");
    let crafted = "evil\x1b[2J\x1b]0;title\x07\nFAKE tether line\u{202e}";
    std::fs::write(remote.join(crafted), b"x").unwrap();
    sshd.give(&remote);
    let dir = remote.to_str().unwrap();
    for args in [
        &["sftp", "web1", "ls", dir][..],
        &["sftp", "web1", "ls", "-l", dir],
    ] {
        let run = daemon.run(args);
        run.ok();
        let out = run.stdout();
        assert!(
            !out.contains('\x1b') && !out.contains('\x07') && !out.contains('\u{202e}'),
            "{out:?}"
        );
        assert!(out.contains("evil\\x1b[2J"), "{out:?}");
        assert!(!out.lines().any(|l| l.starts_with("FAKE")), "{out:?}");
    }
    let missing = format!("{dir}/nope\x1b[31m\nFAKE");
    let run = daemon.run(&["cp", &format!("web1:{missing}"), "-"]);
    assert_eq!(run.code, 255);
    assert!(!run.stderr.contains('\x1b'), "{:?}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{:?}", run.stderr);
    let trail = daemon.run(&["audit"]);
    trail.ok();
    assert!(!trail.stdout().contains('\x1b'), "{:?}", trail.stdout());
}

#[test]
fn a_refusal_flood_is_summed_up_and_retention_is_on_record() {
    let Some((_sshd, mut daemon)) = setup_with(
        "[audit]\nrefusal_interval_secs = 1\nmax_events = 60\n[limits]\nmax_connections_per_uid = 8\n",
    ) else {
        return;
    };
    let carol = ensure_user("tether-carol", &[]);
    let flood = r#"
import socket, sys, threading
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
n = int(sys.argv[2])
request = ("GET /v1/profiles/%s HTTP/1.1\r\nHost: t\r\n\r\n" % ("x" * 3000)).encode()
def send():
    for _ in range(n):
        s.sendall(request)
sender = threading.Thread(target=send)
sender.start()
answers, buffer = 0, b""
while answers < n:
    data = s.recv(65536)
    if not data:
        break
    buffer += data
    answers = buffer.count(b"HTTP/1.1 404")
sender.join()
print(answers)
"#;
    let before = daemon
        .run(&["audit", "--json"])
        .json()
        .as_array()
        .unwrap()
        .len();
    let flood_started = std::time::Instant::now();
    let flooded = tether_e2e::run_command(
        Command::new("setpriv")
            .args([
                "--reuid",
                "tether-carol",
                "--regid",
                "tether-carol",
                "--init-groups",
            ])
            .args(["/usr/bin/python3", "-c", flood])
            .arg(&daemon.socket)
            .arg("2000"),
    );
    flooded.ok();
    assert_eq!(
        flooded.stdout().trim(),
        "2000",
        "every request was answered"
    );
    // At most a full event and a summary per interval (1 s here).
    let bound = 2 * (flood_started.elapsed().as_secs() as usize + 2);
    let summed = |daemon: &Daemon| {
        daemon
            .run(&["audit", "--user", "tether-carol", "--json"])
            .json()
            .as_array()
            .unwrap()
            .clone()
    };
    tether_e2e::wait_until("the summary", Duration::from_secs(10), || {
        summed(&daemon).iter().any(|e| e["result"] == "aggregated")
    });
    let events = summed(&daemon);
    assert!(events.len() <= bound, "{} events: {events:?}", events.len());
    // Each event stands for itself or, summed up, for `count`; a summary
    // that ended as a new interval began travels in that event.
    let total: u64 = events
        .iter()
        .map(|e| {
            e["details"]["count"].as_u64().unwrap_or(1)
                + e["details"]["previous"]["count"].as_u64().unwrap_or(0)
        })
        .sum();
    assert_eq!(total, 2000, "{events:#?}");
    assert!(events.iter().all(|e| e["uid"] == carol));
    for event in &events {
        for key in ["path", "last_path"] {
            if let Some(path) = event["details"][key].as_str() {
                assert!(path.chars().count() <= 257, "{path}");
            }
        }
    }
    let after = daemon
        .run(&["audit", "--json"])
        .json()
        .as_array()
        .unwrap()
        .len();
    assert!(after - before <= bound, "{before} -> {after}");

    // Retention takes the oldest and says so: verify lists range, reason, time.
    for _ in 0..30 {
        daemon.run(&["exec", "web1", "--", "true"]).ok();
    }
    daemon.restart();
    let verdict = daemon.run(&["audit", "verify", "--json"]).json();
    assert_eq!(verdict["ok"], true, "{verdict}");
    let pruned = verdict["pruned"].as_array().unwrap();
    assert_eq!(pruned[0]["from_seq"], 0, "{verdict}");
    assert_eq!(pruned[0]["reason"], "max_events");
    assert!(pruned[0]["time_ms"].as_u64().unwrap() > 0);
    let text = daemon.run(&["audit", "verify"]).stdout();
    assert!(
        text.contains("retention (max_events) removed events 0-"),
        "{text}"
    );

    // Below the disk reserve, refusals are counted, not written; credential
    // use is still on record.
    let config = std::fs::read_to_string(daemon.config_path()).unwrap();
    std::fs::write(
        daemon.config_path(),
        config.replace("[audit]\n", "[audit]\nreserve_mb = 1000000000\n"),
    )
    .unwrap();
    daemon.restart();
    let refused_before = summed(&daemon).len();
    as_user(&daemon, "tether-carol", &["profile", "show", "web1"]).fails_with("profile_not_found");
    daemon.run(&["exec", "web1", "--", "true"]).ok();
    assert_eq!(summed(&daemon).len(), refused_before);
    let last = daemon.run(&["audit", "--json"]).json();
    assert!(
        last.as_array()
            .unwrap()
            .iter()
            .any(|e| e["op"] == "exec.end")
    );
    std::fs::write(daemon.config_path(), &config).unwrap();
    daemon.restart();
    let spared = daemon
        .run(&["audit", "--op", "audit.spared", "--json"])
        .json();
    assert_eq!(spared[0]["details"]["count"], 1, "{spared}");

    // Over the connection cap, connections are answered and closed at once.
    let pid = daemon.pid().unwrap();
    let fds = || {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .count()
    };
    let held = tether_e2e::hold_connections(&daemon.socket, 8);
    let base = fds();
    let started = std::time::Instant::now();
    let run = daemon.run(&["status"]);
    run.fails_with("too_many_connections");
    assert!(started.elapsed() < Duration::from_secs(2));
    // Every time: the answer never races the client's request.
    for _ in 0..20 {
        daemon.run(&["status"]).fails_with("too_many_connections");
    }
    let extra: Vec<_> = (0..200)
        .map(|_| std::os::unix::net::UnixStream::connect(&daemon.socket).unwrap())
        .collect();
    tether_e2e::wait_until(
        "turned-away connections to close",
        Duration::from_secs(5),
        || fds() < base + 20,
    );
    drop(extra);
    drop(held);
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let files = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let numbers: Vec<&str> = files.split_whitespace().skip(3).take(2).collect();
    assert_eq!(numbers[0], numbers[1], "{files}");
}
