//! The audit trail: events for each operation, the hash chain against
//! edits, removals and reordering, retention, failing closed, and no secret
//! or session byte anywhere.

use std::fs;

use serde_json::Value;
use sha2::{Digest, Sha256};
use tether_e2e::{Daemon, Sshd, assert_absent_below, is_root, skip};

fn setup() -> Option<(Sshd, Daemon)> {
    tether_e2e::with_web1()
}

fn events(daemon: &Daemon, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["audit", "--json"];
    all.extend_from_slice(args);
    let run = daemon.run(&all);
    run.ok();
    run.json().as_array().unwrap().clone()
}

fn find<'a>(events: &'a [Value], op: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["op"] == op).collect()
}

fn hex_sha256(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn each_operation_is_on_record_and_the_chain_verifies() {
    let Some((sshd, daemon)) = setup() else {
        return;
    };
    let remote = sshd.user_dir("remote");
    let target = format!("web1:{}/up", remote.display());
    daemon.run(&["exec", "web1", "--", "echo", "hello"]).ok();
    let data = b"some file contents\n".repeat(1000);
    daemon.run_with_stdin(&["cp", "-", &target], &data).ok();
    daemon.run(&["cp", &target, "-"]).ok();
    daemon
        .run(&["sftp", "web1", "mkdir", &format!("{}/d", remote.display())])
        .ok();
    daemon
        .run(&[
            "action",
            "add",
            "web1",
            "hello",
            "--",
            "echo",
            "{who:[a-z]+}",
            "{token!:[a-z0-9]+}",
        ])
        .ok();
    daemon
        .run(&["run", "web1", "hello", "who=bob", "token=tok3n9secret"])
        .ok();
    daemon
        .run(&["exec", "nosuch", "--", "true"])
        .fails_with("profile_not_found");
    daemon
        .run(&["profile", "set", "web1", "--keepalive", "45"])
        .ok();

    let all = events(&daemon, &[]);
    let ops: Vec<&str> = all.iter().map(|e| e["op"].as_str().unwrap()).collect();
    for op in [
        "profile.add",
        "profile.add.end",
        "ssh.connect",
        "exec",
        "exec.end",
        "sftp.upload",
        "sftp.upload.end",
        "sftp.download",
        "sftp.download.end",
        "sftp.mkdir",
        "sftp.mkdir.end",
        "action.add",
        "run",
        "run.end",
        "request.refused",
        "profile.update",
        "profile.update.end",
    ] {
        assert!(ops.contains(&op), "no {op} in {ops:?}");
    }
    assert_eq!(
        find(&all, "profile.update")[0]["details"]["changed"],
        serde_json::json!(["keepalive_secs"])
    );
    let exec = find(&all, "exec")[0];
    assert_eq!(
        exec["details"]["argv"],
        serde_json::json!(["echo", "hello"])
    );
    assert!(exec["uid"].is_u64() && exec["exe"].as_str().unwrap().ends_with("tether"));
    let end = find(&all, "exec.end")[0];
    assert_eq!(end["result"], "exit 0");
    assert_eq!(end["details"]["bytes_out"], 6);
    assert!(end["details"]["duration_ms"].is_u64());
    let sum = hex_sha256(&data);
    assert_eq!(find(&all, "sftp.upload.end")[0]["details"]["sha256"], sum);
    assert_eq!(find(&all, "sftp.download.end")[0]["details"]["sha256"], sum);
    assert_eq!(
        find(&all, "sftp.upload.end")[0]["details"]["bytes"],
        data.len()
    );
    // Where each credential went, on record before it went: the verify
    // connection of `profile add` and the pooled one, each with the host
    // key the server proved, and each followed by its result.
    let connects = find(&all, "ssh.connect");
    for connect in &connects {
        assert_eq!(connect["result"], "started", "{connect}");
        assert_eq!(connect["details"]["port"], sshd.port);
        assert_eq!(connect["details"]["host"], "127.0.0.1");
        assert_eq!(connect["details"]["host_key"], sshd.host_fingerprint());
    }
    let purposes: Vec<&str> = connects
        .iter()
        .map(|e| e["details"]["purpose"].as_str().unwrap())
        .collect();
    assert!(
        purposes.contains(&"verify") && purposes.contains(&"pool"),
        "{purposes:?}"
    );
    let ends = find(&all, "ssh.connect.end");
    assert_eq!(ends.len(), connects.len());
    for (connect, end) in connects.iter().zip(&ends) {
        assert_eq!(end["result"], "ok");
        assert!(end["seq"].as_u64() > connect["seq"].as_u64());
    }
    // A sensitive parameter is an HMAC root can check, never the value.
    let run = find(&all, "run")[0];
    assert_eq!(run["details"]["params"]["who"], "bob");
    let hidden = run["details"]["params"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(hidden.starts_with("hmac-sha256:"), "{hidden}");
    let check = daemon.run_with_stdin(&["audit", "hmac"], b"tok3n9secret\n");
    check.ok();
    assert_eq!(check.stdout().trim(), hidden);
    assert_absent_below(&daemon.state_dir, b"tok3n9secret");
    assert!(!daemon.log().contains("tok3n9secret"));
    assert!(
        find(&all, "request.refused")
            .iter()
            .any(|e| e["result"] == "profile_not_found"
                && e["details"]["path"] == "/v1/profiles/nosuch/exec"
                && e["profile"] == "nosuch")
    );

    // Filters.
    let sftp = events(&daemon, &["--op", "sftp"]);
    assert!(
        !sftp.is_empty()
            && sftp
                .iter()
                .all(|e| e["op"].as_str().unwrap().starts_with("sftp"))
    );
    let attempt = events(&daemon, &["--profile", "nosuch"]);
    // The attempt on a profile that does not exist: its start, its end and
    // the refusal, all under the name that was tried.
    let attempted: Vec<&str> = attempt.iter().map(|e| e["op"].as_str().unwrap()).collect();
    assert_eq!(attempted, ["exec", "exec.end", "request.refused"]);
    assert_eq!(attempt.last().unwrap()["result"], "profile_not_found");
    assert_eq!(events(&daemon, &["--since", "1h"]).len(), all.len());
    assert_eq!(events(&daemon, &["--until", "2000-01-01"]).len(), 0);
    let human = daemon.run(&["audit", "--op", "exec"]);
    human.ok();
    assert!(human.stdout().contains("exit 0"), "{}", human.stdout());

    let verify = daemon.run(&["audit", "verify", "--json"]);
    verify.ok();
    assert_eq!(verify.json()["ok"], true);
    // Each event also went to the log as one JSON line.
    assert!(daemon.log().contains("\"op\":\"exec.end\""));
}

/// Stops the daemon, changes its store behind its back, starts it again.
fn tamper(daemon: &mut Daemon, change: impl FnOnce(&tetherd::store::Store)) {
    daemon.stop();
    let store = tetherd::store::Store::open(&daemon.state_dir).unwrap();
    change(&store);
    drop(store);
    daemon.spawn_and_wait();
}

fn verify_fails_at(daemon: &Daemon) -> u64 {
    let run = daemon.run(&["audit", "verify", "--json"]);
    assert_eq!(run.code, 1, "verify must fail: {}", run.stdout());
    run.json()["first_bad"].as_u64().unwrap()
}

#[test]
fn edited_removed_and_reordered_events_are_found() {
    let mut daemon = Daemon::start();
    for i in 0..4 {
        daemon
            .run(&["action", "list", &format!("nosuch{i}")])
            .fails_with("profile_not_found");
    }
    daemon.run(&["audit", "verify"]).ok();

    // An edited result.
    let mut original = Vec::new();
    tamper(&mut daemon, |store| {
        original = store.raw_audit(2).unwrap().unwrap();
        let text = String::from_utf8(original.clone()).unwrap();
        let edited = text.replace("profile_not_found", "ok");
        store.raw_put_audit(2, Some(edited.as_bytes())).unwrap();
    });
    assert_eq!(verify_fails_at(&daemon), 2);
    let run = daemon.run(&["audit", "verify"]);
    assert!(run.stdout().contains("altered"), "{}", run.stdout());

    // Put back; swap two events' places.
    tamper(&mut daemon, |store| {
        store.raw_put_audit(2, Some(&original)).unwrap();
    });
    daemon.run(&["audit", "verify"]).ok();
    tamper(&mut daemon, |store| {
        let a = store.raw_audit(1).unwrap().unwrap();
        let b = store.raw_audit(3).unwrap().unwrap();
        store.raw_put_audit(1, Some(&b)).unwrap();
        store.raw_put_audit(3, Some(&a)).unwrap();
    });
    verify_fails_at(&daemon);

    // An event removed, in the middle or from the end: the store no longer
    // holds what its manifest says, and says which.
    for middle in [true, false] {
        let mut daemon = Daemon::start();
        for i in 0..5 {
            daemon
                .run(&["action", "list", &format!("nosuch{i}")])
                .fails_with("profile_not_found");
        }
        let all = events(&daemon, &[]);
        assert!(all.len() >= 3, "{all:?}");
        let seq = match middle {
            true => all[1]["seq"].as_u64().unwrap(),
            false => all[all.len() - 1]["seq"].as_u64().unwrap(),
        };
        tamper(&mut daemon, |store| {
            store.raw_put_audit(seq, None).unwrap();
        });
        let run = daemon.run(&["audit", "verify"]);
        run.fails_with("store_corrupt");
        assert!(
            run.stderr.contains("1 audit event(s) missing"),
            "{}",
            run.stderr
        );
    }
}

/// A head removed or edited (where the trail itself is whole): tetherd
/// records that the head was replaced, and verify fails at that event from
/// then on. (Cutting events with it is a store that does not match its
/// manifest: see above.)
#[test]
fn a_replaced_head_is_on_record() {
    for (edit, why, word) in [
        (false, "head_missing", "missing"),
        (true, "head_invalid", "altered"),
    ] {
        let mut daemon = Daemon::start();
        for i in 0..3 {
            daemon
                .run(&["action", "list", &format!("nosuch{i}")])
                .fails_with("profile_not_found");
        }
        tamper(&mut daemon, |store| {
            if edit {
                let head = store.raw_get("meta", "audit_head").unwrap().unwrap();
                let mut head: Value = serde_json::from_slice(&head).unwrap();
                head["next_seq"] = Value::from(head["next_seq"].as_u64().unwrap() - 1);
                let bytes = serde_json::to_vec(&head).unwrap();
                store.raw_put("meta", "audit_head", Some(&bytes)).unwrap();
            } else {
                store.raw_put("meta", "audit_head", None).unwrap();
            }
        });

        let replaced = events(&daemon, &["--op", "audit.head_replaced"]);
        assert_eq!(replaced.len(), 1, "{replaced:?}");
        assert_eq!(replaced[0]["result"], why);
        let seq = replaced[0]["seq"].as_u64().unwrap();
        assert_eq!(verify_fails_at(&daemon), seq);
        let run = daemon.run(&["audit", "verify"]);
        assert!(run.stdout().contains(word), "{}", run.stdout());
    }
}

#[test]
fn retention_prunes_on_record_and_the_chain_still_verifies() {
    let mut daemon = Daemon::start_with_config("[audit]\nmax_events = 10\n");
    for i in 0..15 {
        daemon
            .run(&["action", "list", &format!("nosuch{i}")])
            .fails_with("profile_not_found");
    }
    daemon.restart();
    let all = events(&daemon, &[]);
    assert!(all.len() <= 11, "{}", all.len());
    assert!(all[0]["seq"].as_u64().unwrap() > 0);
    let prune = find(&all, "audit.prune");
    assert_eq!(prune.len(), 1);
    assert!(prune[0]["details"]["removed"].as_u64().unwrap() >= 5);
    daemon.run(&["audit", "verify"]).ok();
}

#[test]
fn no_secret_or_session_byte_reaches_the_trail_or_the_log() {
    let Some(sshd) = Sshd::start() else {
        return;
    };
    if !sshd.passwords {
        skip("password logins need root");
        return;
    }
    // The system daemon: TOTP secrets are among what it takes.
    let daemon = Daemon::start_system("root");
    let password = tether_e2e::test_password();
    daemon.add_password_profile("db1", &sshd, password).ok();
    let typed = b"session-bytes-7f3a91\n";
    let run = daemon.run_with_stdin(&["exec", "db1", "--", "cat"], typed);
    run.ok();
    assert_eq!(run.stdout, typed);
    let run = daemon.run(&["exec", "db1", "--", "echo", "output-bytes-c0ffee"]);
    run.ok();
    // Every other kind of secret the daemon takes: an encrypted key and its
    // passphrase, a TOTP secret and backup codes, a sensitive parameter.
    let key = tether_e2e::keygen(sshd.dir.path(), "id_enc", "ed25519", "pass-phrase-91b2");
    sshd.authorize(&key);
    let mut args = tether_e2e::key_profile_args("web1", &sshd, &key);
    args.push("--key-passphrase-stdin".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    daemon.run_with_stdin(&args, b"pass-phrase-91b2\n").ok();
    let key_text = fs::read_to_string(&key.private).unwrap();
    let key_line = key_text.lines().nth(2).unwrap().to_owned();
    let enrol = daemon.run(&["mfa", "enroll", "--json"]);
    enrol.ok();
    let totp_secret = enrol.json()["secret"].as_str().unwrap().to_owned();
    let bytes = totp_rs::Secret::Encoded(totp_secret.clone())
        .to_bytes()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let code =
        totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 0, 30, bytes).generate(now);
    let confirmed = daemon.run_with_stdin(
        &["mfa", "confirm", "--json"],
        format!("{code}\n").as_bytes(),
    );
    confirmed.ok();
    let backup = confirmed.json()["backup_codes"][0]
        .as_str()
        .unwrap()
        .to_owned();
    daemon
        .run(&[
            "action",
            "add",
            "web1",
            "tok",
            "--",
            "echo",
            "{t!:[a-z0-9]+}",
        ])
        .ok();
    daemon
        .run(&["run", "web1", "tok", "t=sensitive9value"])
        .ok();

    daemon.run(&["audit", "verify"]).ok();
    let trail = daemon.run(&["audit", "--json"]).stdout();
    for needle in [
        password.as_bytes(),
        b"session-bytes-7f3a91",
        b"c0ffee\n",
        b"pass-phrase-91b2",
        key_line.as_bytes(),
        totp_secret.as_bytes(),
        backup.as_bytes(),
        b"sensitive9value",
    ] {
        assert_absent_below(&daemon.state_dir, needle);
        let log = daemon.log();
        assert!(
            !log.as_bytes().windows(needle.len()).any(|w| w == needle),
            "the log holds {}",
            String::from_utf8_lossy(needle)
        );
        assert!(
            !trail.as_bytes().windows(needle.len()).any(|w| w == needle),
            "the trail holds {}",
            String::from_utf8_lossy(needle)
        );
    }
}

#[test]
fn a_trail_that_cannot_be_written_refuses_the_operation() {
    if !is_root() {
        skip("needs root to mount a small tmpfs");
        return;
    }
    let Some(sshd) = Sshd::start() else {
        return;
    };
    let remote = sshd.user_dir("remote");
    let mut daemon = Daemon::new();
    let mount = daemon.dir.path().join("small");
    let Some(_tmpfs) = tether_e2e::Tmpfs::mount(&mount, "48m") else {
        skip("cannot mount a tmpfs here");
        return;
    };
    daemon.state_dir = mount.join("state");
    daemon.spawn_and_wait();
    let key = tether_e2e::keygen(sshd.dir.path(), "id", "ed25519", "");
    daemon.add_key_profile("web1", &sshd, &key).ok();
    daemon.run(&["exec", "web1", "--", "true"]).ok();

    // Fill the disk.
    let filler = mount.join("filler");
    let _ = std::process::Command::new("dd")
        .args(["if=/dev/zero", "bs=1M", "count=64"])
        .arg(format!("of={}", filler.display()))
        .stderr(std::process::Stdio::null())
        .status();
    // The pages the trail already holds may take a few more events; within
    // a few commands the trail needs a new one, and from then on nothing
    // runs.
    let mut refused = None;
    for i in 0..50 {
        let marker = remote.join(format!("marker{i}"));
        let run = daemon.run(&["exec", "web1", "--", "touch", marker.to_str().unwrap()]);
        if run.code != 0 {
            run.fails_with("audit_unavailable");
            refused = Some(marker);
            break;
        }
    }
    let marker = refused.expect("the trail never ran out of space");
    assert!(!marker.exists(), "the command ran without its audit event");
    daemon
        .run_with_stdin(&["cp", "-", &format!("web1:{}/f", remote.display())], b"x")
        .fails_with("audit_unavailable");
    assert!(!remote.join("f").exists());
    daemon.kill();
}
