//! Access against the real system daemon: grants for several real uids,
//! TOTP, named actions, SFTP path prefixes, lockout. Needs root (to create
//! users and run the system daemon); skips otherwise.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, SystemTime};

use tether_e2e::{Daemon, Run, Sshd, ensure_user, is_root, keygen, skip};

/// The socket's group: only its members can connect at all.
pub(crate) const SOCKET_GROUP: &str = "tether-e2e-sock";
const OPS_GROUP: &str = "tether-e2e-ops";

pub(crate) fn setup() -> Option<(Sshd, Daemon)> {
    setup_with("")
}

/// [`setup`] with more daemon configuration.
pub(crate) fn setup_with(config: &str) -> Option<(Sshd, Daemon)> {
    if !is_root() {
        skip("needs root: it creates users and runs the system daemon");
        return None;
    }
    let sshd = Sshd::start()?;
    for user in ["tether-alice", "tether-carol", "tether-cron"] {
        ensure_user(user, &[SOCKET_GROUP]);
    }
    ensure_user("tether-bob", &[SOCKET_GROUP, OPS_GROUP]);
    ensure_user("tether-outsider", &[]);
    let daemon = Daemon::start_system_with(SOCKET_GROUP, config);
    let key = keygen(sshd.dir.path(), "id_ed25519", "ed25519", "");
    daemon.add_key_profile("web1", &sshd, &key).ok();
    Some((sshd, daemon))
}

pub(crate) fn as_user(daemon: &Daemon, user: &str, args: &[&str]) -> Run {
    daemon.run_as(user, args, b"", false)
}

/// Waits out the last seconds of a TOTP step, so a code computed now is
/// still current when the daemon checks it.
pub(crate) fn settle() {
    let now = unix();
    if now % 30 >= 26 {
        std::thread::sleep(Duration::from_secs(31 - now % 30));
    }
}

pub(crate) fn unix() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The TOTP code `steps` steps from now.
pub(crate) fn totp(secret: &str, steps: i64) -> String {
    let bytes = totp_rs::Secret::Encoded(secret.to_owned())
        .to_bytes()
        .unwrap();
    let totp = totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 0, 30, bytes);
    totp.generate((unix() as i64 + steps * 30) as u64)
}

/// A code that is certainly wrong now.
fn wrong(secret: &str) -> String {
    let good: Vec<String> = (-1..=1).map(|s| totp(secret, s)).collect();
    (0..1000)
        .map(|n| format!("{n:06}"))
        .find(|c| !good.contains(c))
        .unwrap()
}

/// Enrols `user` (which opens an MFA session); the secret and backup codes.
pub(crate) fn enroll(daemon: &Daemon, user: &str) -> (String, Vec<String>) {
    let run = as_user(daemon, user, &["mfa", "enroll", "--json"]);
    run.ok();
    let started = run.json();
    let secret = started["secret"].as_str().unwrap().to_owned();
    assert!(
        started["uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/")
    );
    settle();
    let code = format!("{}\n", totp(&secret, 0));
    let run = daemon.run_as(user, &["mfa", "confirm", "--json"], code.as_bytes(), false);
    run.ok();
    let backup: Vec<String> = run.json()["backup_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(backup.len(), 10);
    (secret, backup)
}

pub(crate) fn login(daemon: &Daemon, user: &str, code: &str) -> Run {
    daemon.run_as(user, &["login"], format!("{code}\n").as_bytes(), false)
}

#[test]
fn only_granted_uids_see_anything() {
    let Some((_sshd, daemon)) = setup() else {
        return;
    };
    // Layer one: not in the socket's group, no connection at all.
    let run = as_user(&daemon, "tether-outsider", &["status"]);
    run.fails_with("daemon_unavailable");
    // The hint names the socket's own group.
    assert!(
        run.stderr
            .contains(&format!("usermod -aG {SOCKET_GROUP} tether-outsider")),
        "{}",
        run.stderr
    );

    // Layer two: served, but with no grant there is nothing to see.
    let status = as_user(&daemon, "tether-carol", &["status", "--json"]).json();
    assert_eq!(status["profiles"], 0, "not even how many there are");
    let run = as_user(&daemon, "tether-carol", &["profile", "list", "--json"]);
    assert_eq!(run.json()["profiles"].as_array().unwrap().len(), 0);
    for args in [
        &["profile", "show", "web1"][..],
        &["exec", "web1", "--", "true"],
        &["sftp", "web1", "ls", "/"],
        &["action", "list", "web1"],
        &[
            "grant",
            "add",
            "web1",
            "--user",
            "tether-carol",
            "--role",
            "owner",
        ],
    ] {
        as_user(&daemon, "tether-carol", args).fails_with("profile_not_found");
    }
    // Nor copies of trees, which go as one batch each way.
    let local = tempfile::tempdir().unwrap();
    let tree = local.path().join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::write(tree.join("sub/one"), b"1").unwrap();
    std::fs::set_permissions(local.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let tree = tree.to_str().unwrap();
    // Somewhere either user could write, were it allowed.
    let nowhere = format!("/tmp/tether-no-grant-{}", std::process::id());
    let remote_nowhere = format!("web1:{nowhere}");
    let tree_copies = [
        ["cp", "-r", tree, &remote_nowhere],
        ["cp", "-r", "web1:/etc/ssh", &nowhere],
    ];
    for args in &tree_copies {
        as_user(&daemon, "tether-carol", args).fails_with("profile_not_found");
    }
    assert!(!std::path::Path::new(&nowhere).exists());
    as_user(
        &daemon,
        "tether-carol",
        &["profile", "remove", "web1", "--yes"],
    )
    .fails_with("forbidden");
    as_user(&daemon, "tether-carol", &["mfa", "reset", "tether-bob"]).fails_with("forbidden");
    let me = as_user(&daemon, "tether-carol", &["whoami", "--json"]).json();
    assert_eq!(me["user"], "tether-carol");
    assert_eq!(me["admin"], false);
    assert_eq!(me["grants"].as_array().unwrap().len(), 0);

    // A group grant reaches the group's members only.
    daemon
        .run(&[
            "grant", "add", "web1", "--group", OPS_GROUP, "--role", "viewer",
        ])
        .ok();
    let run = as_user(&daemon, "tether-bob", &["profile", "list", "--json"]);
    assert_eq!(run.json()["profiles"][0]["name"], "web1");
    as_user(&daemon, "tether-bob", &["profile", "show", "web1"]).ok();
    // Viewers view.
    as_user(&daemon, "tether-bob", &["exec", "web1", "--", "true"]).fails_with("forbidden");
    for args in &tree_copies {
        as_user(&daemon, "tether-bob", args).fails_with("forbidden");
    }
    assert!(!std::path::Path::new(&nowhere).exists());
    as_user(
        &daemon,
        "tether-bob",
        &[
            "grant",
            "add",
            "web1",
            "--user",
            "tether-bob",
            "--role",
            "owner",
        ],
    )
    .fails_with("forbidden");
    as_user(&daemon, "tether-carol", &["profile", "show", "web1"]).fails_with("profile_not_found");

    let grants = daemon.run(&["grant", "list", "web1", "--json"]).json();
    assert_eq!(grants[0]["subject"]["kind"], "group");
    assert_eq!(grants[0]["name"], OPS_GROUP);
    daemon
        .run(&["grant", "remove", "web1", "--group", OPS_GROUP])
        .ok();
    as_user(&daemon, "tether-bob", &["profile", "show", "web1"]).fails_with("profile_not_found");
    daemon
        .run(&["grant", "remove", "web1", "--group", OPS_GROUP])
        .fails_with("grant_not_found");
    daemon
        .run(&[
            "grant",
            "add",
            "web1",
            "--user",
            "no-such-user-x",
            "--role",
            "viewer",
        ])
        .fails_with("no_such_user");
}

#[test]
fn operators_need_totp_bound_to_their_login_session() {
    let Some((_sshd, daemon)) = setup() else {
        return;
    };
    let alice = "tether-alice";
    daemon
        .run(&[
            "grant", "add", "web1", "--user", alice, "--role", "operator", "--shell", "--exec",
            "any",
        ])
        .ok();
    as_user(&daemon, alice, &["exec", "web1", "--", "true"]).fails_with("mfa_required");
    login(&daemon, alice, "123456").fails_with("mfa_not_enrolled");

    let (secret, backup) = enroll(&daemon, alice);
    let run = as_user(&daemon, alice, &["exec", "web1", "--", "echo", "hi"]);
    run.ok();
    assert_eq!(run.stdout(), "hi\n");
    let me = as_user(&daemon, alice, &["whoami", "--json"]).json();
    assert_eq!(me["grants"][0]["role"], "operator");
    assert!(me["mfa"]["session"].is_object());

    // Another login session of the same user must log in itself.
    daemon
        .run_as(alice, &["exec", "web1", "--", "true"], b"", true)
        .fails_with("mfa_required");

    as_user(&daemon, alice, &["logout"]).ok();
    as_user(&daemon, alice, &["exec", "web1", "--", "true"]).fails_with("mfa_required");
    // The enrolment's code was used: a replay is refused.
    login(&daemon, alice, &totp(&secret, 0)).fails_with("mfa_invalid");
    // Two submissions of one new code at once: exactly one gets in.
    let code = totp(&secret, 1);
    let codes: Vec<i32> = std::thread::scope(|scope| {
        let attempts: Vec<_> = (0..2)
            .map(|_| scope.spawn(|| login(&daemon, alice, &code).code))
            .collect();
        attempts.into_iter().map(|a| a.join().unwrap()).collect()
    });
    let mut sorted = codes.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, vec![0, 255], "{codes:?}");
    as_user(&daemon, alice, &["exec", "web1", "--", "true"]).ok();

    // A backup code works once.
    as_user(&daemon, alice, &["logout"]).ok();
    login(&daemon, alice, &backup[0].to_uppercase()).ok();
    as_user(&daemon, alice, &["logout"]).ok();
    login(&daemon, alice, &backup[0]).fails_with("mfa_invalid");
    let status = as_user(&daemon, alice, &["mfa", "status", "--json"]).json();
    assert_eq!(status["backup_codes_left"], 9);

    // Re-enrolling needs a live session.
    as_user(&daemon, alice, &["mfa", "enroll", "--json"]).fails_with("mfa_required");
}

#[test]
fn failed_codes_lock_out_across_restarts_until_root_resets() {
    let Some((_sshd, mut daemon)) = setup() else {
        return;
    };
    let carol = "tether-carol";
    let (secret, _) = enroll(&daemon, carol);
    as_user(&daemon, carol, &["logout"]).ok();
    for _ in 0..5 {
        login(&daemon, carol, &wrong(&secret)).fails_with("mfa_invalid");
    }
    // Locked: even the right code is refused, with the same answer.
    let run = login(&daemon, carol, &totp(&secret, 1));
    run.fails_with("mfa_invalid");
    daemon.restart();
    login(&daemon, carol, &totp(&secret, 1)).fails_with("mfa_invalid");
    daemon.run(&["mfa", "reset", carol]).ok();
    login(&daemon, carol, &totp(&secret, 1)).ok();
}

#[test]
fn unattended_grants_run_exactly_their_actions() {
    let Some((sshd, daemon)) = setup() else {
        return;
    };
    let cron = "tether-cron";
    daemon
        .run(&[
            "action",
            "add",
            "web1",
            "greet",
            "--",
            "printf",
            "%s|%s\\n",
            "{name:[a-z]+}",
            "{n:[0-9]{1,3}}",
        ])
        .ok();
    daemon
        .run(&[
            "action",
            "add",
            "web1",
            "wipe",
            "--",
            "rm",
            "-rf",
            "{dir:/tmp/[a-z]+}",
        ])
        .ok();
    daemon
        .run(&["action", "add", "web1", "bad", "--", "{cmd:.*}"])
        .fails_with("bad_request");
    daemon
        .run(&[
            "grant",
            "add",
            "web1",
            "--user",
            cron,
            "--role",
            "operator",
            "--exec",
            "greet",
            "--unattended",
        ])
        .ok();

    let run = as_user(&daemon, cron, &["run", "web1", "greet", "name=bob", "n=42"]);
    run.ok();
    assert_eq!(run.stdout(), "bob|42\n");
    // Values are words, never shell text; the grammar is key=value only.
    for args in [
        &["run", "web1", "greet", "name=bob;id", "n=1"][..],
        &["run", "web1", "greet", "name=bob"],
        &["run", "web1", "greet", "name=bob", "n=1", "n=2"],
        &["run", "web1", "greet", "name=bob", "n=1", "extra"],
        &["run", "web1", "greet", "name=bob", "n=1", "x=1"],
        &["run", "web1", "greet", "name=$(id)", "n=1"],
    ] {
        as_user(&daemon, cron, args).fails_with("bad_request");
    }
    as_user(&daemon, cron, &["run", "web1", "wipe", "dir=/tmp/x"]).fails_with("action_not_allowed");
    as_user(&daemon, cron, &["run", "web1", "nope"]).fails_with("action_not_allowed");
    as_user(&daemon, cron, &["exec", "web1", "--", "id"]).fails_with("action_not_allowed");
    as_user(&daemon, cron, &["sftp", "web1", "ls", "/"]).fails_with("action_not_allowed");
    daemon
        .run_as(cron, &["cp", "-", "web1:/tmp/x"], b"x", false)
        .fails_with("action_not_allowed");
    let list = as_user(&daemon, cron, &["action", "list", "web1", "--json"]).json();
    assert_eq!(list.as_array().unwrap().len(), 2);

    // A user reads their own events only; root reads all and verifies.
    let uid = ensure_user(cron, &[SOCKET_GROUP]);
    let mine = as_user(&daemon, cron, &["audit", "--json"]).json();
    let mine = mine.as_array().unwrap();
    assert!(
        mine.iter()
            .any(|e| e["op"] == "run.end" && e["result"] == "exit 0")
    );
    assert!(mine.iter().all(|e| e["uid"] == uid));
    as_user(&daemon, cron, &["audit", "verify"]).fails_with("forbidden");
    let all = daemon.run(&["audit", "--json"]).json();
    assert!(all.as_array().unwrap().iter().any(|e| e["uid"] == 0));
    daemon.run(&["audit", "verify"]).ok();
    let _ = sshd;
}

#[test]
fn sftp_stays_inside_the_granted_paths() {
    let Some((sshd, daemon)) = setup() else {
        return;
    };
    let alice = "tether-alice";
    let remote = sshd.user_dir("remote");
    std::fs::create_dir(remote.join("allowed")).unwrap();
    std::fs::create_dir(remote.join("secret")).unwrap();
    std::fs::write(remote.join("secret/data"), b"secret").unwrap();
    std::fs::write(remote.join("allowed/data"), b"fine").unwrap();
    std::os::unix::fs::symlink("../secret", remote.join("allowed/escape")).unwrap();
    sshd.give(&remote);
    let r = |p: &str| format!("{}/{p}", remote.display());
    let prefix = r("allowed/");
    daemon
        .run(&[
            "grant", "add", "web1", "--user", alice, "--role", "operator", "--sftp", "write",
            "--path", &prefix,
        ])
        .ok();
    enroll(&daemon, alice);
    let w = |p: &str| format!("web1:{}", r(p));

    let run = as_user(&daemon, alice, &["cp", &w("allowed/data"), "-"]);
    run.ok();
    assert_eq!(run.stdout, b"fine");
    daemon
        .run_as(alice, &["cp", "-", &w("allowed/new")], b"new", false)
        .ok();
    assert_eq!(std::fs::read(remote.join("allowed/new")).unwrap(), b"new");
    as_user(
        &daemon,
        alice,
        &["sftp", "web1", "mkdir", "-p", &r("allowed/x/y/z")],
    )
    .ok();
    as_user(&daemon, alice, &["sftp", "web1", "ls", &r("allowed")]).ok();

    for path in [
        "secret/data",
        "allowed/../secret/data",
        "allowed/escape/data",
        "allowed/escape",
    ] {
        as_user(&daemon, alice, &["cp", &w(path), "-"]).fails_with("path_not_allowed");
        daemon
            .run_as(alice, &["cp", "-", &w(path)], b"x", false)
            .fails_with("path_not_allowed");
    }
    as_user(&daemon, alice, &["sftp", "web1", "ls", &r("")]).fails_with("path_not_allowed");
    as_user(&daemon, alice, &["sftp", "web1", "rm", "-r", &r("secret")])
        .fails_with("path_not_allowed");
    as_user(
        &daemon,
        alice,
        &["sftp", "web1", "mv", &r("allowed/data"), &r("secret/x")],
    )
    .fails_with("path_not_allowed");
    as_user(&daemon, alice, &["sftp", "web1", "ls", "/etc"]).fails_with("path_not_allowed");
    as_user(
        &daemon,
        alice,
        &["exec", "web1", "--", "cat", "/etc/hostname"],
    )
    .fails_with("action_not_allowed");
    assert_eq!(
        std::fs::read(remote.join("secret/data")).unwrap(),
        b"secret"
    );

    // Trees go on one batch each way, confined the same.
    let local = tempfile::tempdir().unwrap();
    let tree = local.path().join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::write(tree.join("one"), b"1").unwrap();
    std::fs::write(tree.join("sub/two"), b"2").unwrap();
    std::fs::set_permissions(local.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let back = local.path().join("back");
    std::fs::create_dir(&back).unwrap();
    let uid = ensure_user(alice, &[SOCKET_GROUP]);
    std::os::unix::fs::chown(&back, Some(uid), None).unwrap();
    let (tree, back_tree) = (tree.to_str().unwrap(), back.join("tree"));
    as_user(&daemon, alice, &["cp", "-r", tree, &w("allowed/tree")]).ok();
    assert_eq!(
        std::fs::read(remote.join("allowed/tree/sub/two")).unwrap(),
        b"2"
    );
    as_user(&daemon, alice, &["cp", "-r", tree, &w("secret/tree")]).fails_with("path_not_allowed");
    assert!(!remote.join("secret/tree").exists());
    let back_tree = back_tree.to_str().unwrap();
    as_user(&daemon, alice, &["cp", "-r", &w("allowed/tree"), back_tree]).ok();
    assert_eq!(std::fs::read(back.join("tree/sub/two")).unwrap(), b"2");
    as_user(&daemon, alice, &["cp", "-r", &w("secret"), back_tree]).fails_with("path_not_allowed");
    assert!(!back.join("tree/secret").exists());

    // Read-only grants read.
    daemon
        .run(&[
            "grant", "set", "web1", "--user", alice, "--role", "operator", "--sftp", "read",
            "--path", &prefix,
        ])
        .ok();
    as_user(&daemon, alice, &["cp", &w("allowed/data"), "-"]).ok();
    daemon
        .run_as(alice, &["cp", "-", &w("allowed/other")], b"x", false)
        .fails_with("forbidden");
    as_user(&daemon, alice, &["sftp", "web1", "rm", &r("allowed/data")]).fails_with("forbidden");
    // A tree both ways under it: read, not written.
    as_user(&daemon, alice, &["cp", "-r", tree, &w("allowed/tree2")]).fails_with("forbidden");
    assert!(!remote.join("allowed/tree2").exists());
    std::fs::remove_dir_all(back.join("tree")).unwrap();
    as_user(&daemon, alice, &["cp", "-r", &w("allowed/tree"), back_tree]).ok();
    assert_eq!(std::fs::read(back.join("tree/sub/two")).unwrap(), b"2");
}

#[test]
fn add_never_replaces_and_set_says_what_changed() {
    let Some((_sshd, daemon)) = setup() else {
        return;
    };
    let alice = "tether-alice";
    let shell = [
        "grant", "add", "web1", "--user", alice, "--role", "operator", "--shell", "--sftp", "read",
    ];
    daemon.run(&shell).ok();
    // A second add would have silently replaced a shell+SFTP+MFA grant.
    let run = daemon.run(&[
        "grant",
        "add",
        "web1",
        "--user",
        alice,
        "--role",
        "operator",
        "--exec",
        "x",
        "--unattended",
    ]);
    run.fails_with("grant_exists");
    assert!(run.stderr.contains("tether grant set"), "{}", run.stderr);
    let grants = daemon.run(&["grant", "list", "web1", "--json"]).json();
    assert_eq!(grants[0]["shell"], true, "unchanged");
    let run = daemon.run(&[
        "grant", "set", "web1", "--user", alice, "--role", "operator", "--sftp", "write",
    ]);
    run.ok();
    assert_eq!(
        run.stdout().trim(),
        "user tether-alice on web1: shell yes -> no; sftp read -> write"
    );
    daemon
        .run(&[
            "grant",
            "set",
            "web1",
            "--user",
            "tether-bob",
            "--role",
            "viewer",
        ])
        .fails_with("grant_not_found");
    // Contradictions are refused.
    for args in [
        &["--role", "viewer", "--shell"][..],
        &["--role", "viewer", "--sftp", "read"],
        &["--role", "operator", "--unattended", "--exec", "any"],
        &[
            "--role",
            "operator",
            "--unattended",
            "--exec",
            "a",
            "--shell",
        ],
        &["--role", "operator", "--path", "/srv"],
    ] {
        let mut all = vec!["grant", "add", "web1", "--user", "tether-bob"];
        all.extend_from_slice(args);
        daemon.run(&all).fails_with("bad_request");
    }
    daemon
        .run(&["action", "add", "web1", "hi", "--", "echo", "hi"])
        .ok();
    daemon
        .run(&["action", "add", "web1", "hi", "--", "rm", "-rf", "/"])
        .fails_with("action_exists");
    let run = daemon.run(&["action", "set", "web1", "hi", "--", "echo", "hello"]);
    run.ok();
    assert_eq!(
        run.stdout().trim(),
        "action hi on web1: was echo hi, is now echo hello"
    );
    daemon
        .run(&["action", "set", "web1", "nope", "--", "true"])
        .fails_with("action_not_found");
    let trail = daemon.run(&["audit", "--op", "grant.set", "--json"]).json();
    assert_eq!(trail[0]["details"]["before"]["shell"], true, "{trail}");
}

#[test]
fn grants_and_mfa_are_refused_by_a_user_daemon_with_a_reason() {
    let daemon = Daemon::start();
    for args in [
        &["grant", "add", "web1", "--user", "root", "--role", "viewer"][..],
        &["grant", "remove", "web1", "--user", "root"],
        &["mfa", "enroll", "--json"],
        &["mfa", "status"],
        &["login"],
    ] {
        let run = daemon.run(args);
        run.fails_with("not_supported");
        assert!(
            run.stderr.contains("tetherd --user"),
            "{args:?}: {}",
            run.stderr
        );
    }
}
