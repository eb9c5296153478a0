//! `tether agent` with OpenSSH's own tools: ssh, ssh-add, ssh-keygen and
//! git log in with no key file, and each key signs only toward its
//! profile's pinned host, as its profile's user.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use tether_e2e::{Daemon, KeyPair, Run, Sshd, fingerprint, keygen, run_command};

/// A daemon serving an agent socket in a directory of its own, with a key
/// profile `web1` whose key file is gone.
pub struct Agent {
    pub sshd: Sshd,
    pub daemon: Daemon,
    pub dir: tempfile::TempDir,
    pub key: KeyPair,
}

impl Agent {
    pub fn start() -> Option<Agent> {
        let sshd = Sshd::start()?;
        let daemon = Daemon::start();
        let key = keygen(sshd.dir.path(), "id_ed25519", "ed25519", "");
        daemon.add_key_profile("web1", &sshd, &key).ok();
        // As a user would: the key lives in tetherd only.
        let public = sshd.dir.path().join("id_ed25519.pub");
        let agent = Agent {
            dir: tempfile::tempdir().unwrap(),
            sshd,
            daemon,
            key,
        };
        fs::copy(&public, agent.public_key()).unwrap();
        fs::remove_file(&agent.key.private).unwrap();
        let run = agent
            .daemon
            .run(&["agent", "-s", "-a", agent.socket().to_str().unwrap()]);
        run.ok();
        assert_eq!(
            run.stdout(),
            format!(
                "SSH_AUTH_SOCK={}; export SSH_AUTH_SOCK;\n",
                agent.socket().display()
            )
        );
        Some(agent)
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("agent.sock")
    }

    /// The profile key's public half, for ssh-keygen -Y sign.
    pub fn public_key(&self) -> PathBuf {
        self.dir.path().join("web1.pub")
    }

    /// `ssh` to `sshd` with the agent and no key file or config of its own.
    pub fn ssh(&self, sshd: &Sshd, user: &str, command: &str) -> Run {
        let mut ssh = Command::new("ssh");
        ssh.env("SSH_AUTH_SOCK", self.socket())
            .args(ssh_options(self.dir.path(), sshd.port))
            .arg(format!("{user}@127.0.0.1"))
            .arg(command)
            .stdin(Stdio::null());
        run_command(&mut ssh)
    }

    pub fn tool(&self, program: &str, args: &[&str]) -> Run {
        let mut command = Command::new(program);
        command
            .env("SSH_AUTH_SOCK", self.socket())
            .args(args)
            .stdin(Stdio::null());
        run_command(&mut command)
    }

    pub fn events(&self, op: &str) -> Vec<Value> {
        let run = self.daemon.run(&["audit", "--json", "--op", op]);
        run.ok();
        run.json().as_array().unwrap().clone()
    }
}

/// ssh options that use nothing of the running user's: no config, no key
/// files, a known_hosts of the test's.
pub fn ssh_options(dir: &Path, port: u16) -> Vec<String> {
    [
        "-F",
        "/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=accept-new",
        "-o",
        &format!("UserKnownHostsFile={}/known_hosts", dir.display()),
        "-o",
        &format!("IdentityFile={}/no-such-key", dir.display()),
        "-o",
        "PasswordAuthentication=no",
        "-o",
        "KbdInteractiveAuthentication=no",
        "-p",
        &port.to_string(),
    ]
    .map(str::to_owned)
    .to_vec()
}

fn accepted_keys(sshd: &Sshd) -> usize {
    sshd.log().matches("Accepted publickey").count()
}

#[test]
fn ssh_logs_in_with_no_key_file_and_only_toward_the_pinned_host() {
    let Some(agent) = Agent::start() else {
        return;
    };
    let mode = fs::metadata(agent.socket()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the socket is the caller's alone");

    let listed = agent.tool("ssh-add", &["-l"]);
    listed.ok();
    let fingerprint = fingerprint(&agent.public_key());
    assert!(
        listed.stdout().contains(&fingerprint),
        "{}",
        listed.stdout()
    );
    assert!(
        listed.stdout().contains("tether:web1"),
        "{}",
        listed.stdout()
    );
    assert_eq!(listed.stdout().lines().count(), 1);

    // tetherd's own login when the profile was added is one already.
    let before = accepted_keys(&agent.sshd);
    let run = agent.ssh(&agent.sshd, &agent.sshd.user, "echo hello from $USER");
    run.ok();
    assert_eq!(run.stdout(), format!("hello from {}\n", agent.sshd.user));
    assert!(
        agent.sshd.log().contains(&format!("ED25519 {fingerprint}")),
        "the profile's key logged in: {}",
        agent.sshd.log()
    );
    let signed = agent.events("agent.sign");
    assert_eq!(signed.len(), 1, "{signed:?}");
    assert_eq!(signed[0]["result"], "ok");
    assert_eq!(signed[0]["profile"], "web1");
    assert_eq!(
        signed[0]["details"]["host_key"],
        agent.sshd.host_fingerprint()
    );
    assert!(signed[0]["pid"].as_i64().is_some());
    assert!(
        signed[0]["exe"].as_str().unwrap_or("").contains("ssh"),
        "the program at the other end: {signed:?}"
    );

    // The same user and the same authorized key on a server with another
    // host key: refused, and the server never sees a signature.
    let other = Sshd::start().unwrap();
    other.authorize(&agent.key);
    let run = agent.ssh(&other, &other.user, "true");
    assert_eq!(run.code, 255, "{}", run.stderr);
    assert_eq!(accepted_keys(&other), 0, "{}", other.log());
    let refused = agent.events("agent.sign");
    let refusal = refused.iter().find(|e| e["result"] != "ok").unwrap();
    assert_eq!(refusal["result"], "host_key_mismatch", "{refusal}");
    assert_eq!(refusal["details"]["host_key"], other.host_fingerprint());

    // Another user name on the pinned host, which would take the key for
    // it: refused.
    fs::write(
        agent.sshd.dir.path().join("authorized_keys/root"),
        &agent.key.public_line,
    )
    .unwrap();
    let run = agent.ssh(&agent.sshd, "root", "true");
    assert_eq!(run.code, 255, "{}", run.stderr);
    let refused = agent.events("agent.sign");
    assert!(
        refused.iter().any(|e| e["details"]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("\"root\"")),
        "{refused:?}"
    );
    assert_eq!(accepted_keys(&agent.sshd), before + 1);
}

#[test]
fn signatures_outside_a_login_and_key_changes_are_refused() {
    let Some(agent) = Agent::start() else {
        return;
    };
    // No session bind: ssh-keygen signs a file through the agent.
    let data = agent.dir.path().join("data");
    fs::write(&data, b"payload").unwrap();
    let sign = agent.tool(
        "ssh-keygen",
        &[
            "-Y",
            "sign",
            "-n",
            "file",
            "-f",
            agent.public_key().to_str().unwrap(),
            data.to_str().unwrap(),
        ],
    );
    assert_ne!(sign.code, 0, "{}", sign.stderr);
    assert!(!agent.dir.path().join("data.sig").exists());
    let refused = agent.events("agent.sign");
    assert!(
        refused[0]["details"]["reason"]
            .as_str()
            .unwrap()
            .contains("no session bind"),
        "{refused:?}"
    );

    // Keys never enter or leave.
    let other = keygen(agent.dir.path(), "other", "ed25519", "");
    let add = agent.tool("ssh-add", &[other.private.to_str().unwrap()]);
    assert_ne!(add.code, 0, "{}", add.stdout());
    let remove_all = agent.tool("ssh-add", &["-D"]);
    assert_ne!(remove_all.code, 0);
    let remove = agent.tool("ssh-add", &["-d", agent.public_key().to_str().unwrap()]);
    assert_ne!(remove.code, 0);
    let listed = agent.tool("ssh-add", &["-l"]);
    assert_eq!(listed.stdout().lines().count(), 1, "{}", listed.stdout());
    assert!(listed.stdout().contains("tether:web1"));
    let requests = agent.events("agent.request");
    let asked: Vec<&str> = requests
        .iter()
        .map(|e| e["details"]["request"].as_str().unwrap())
        .collect();
    assert!(asked.contains(&"add a key (ssh-add FILE)"), "{asked:?}");
    assert!(
        asked.contains(&"remove every key (ssh-add -D)"),
        "{asked:?}"
    );
    assert!(
        agent
            .daemon
            .log()
            .contains("tether's agent holds the keys of tether profiles only"),
        "the daemon's log says why"
    );
}

#[test]
fn git_clones_over_ssh_through_the_agent() {
    let Some(agent) = Agent::start() else {
        return;
    };
    let repo = agent.sshd.user_dir("repo.git");
    let init = run_command(
        Command::new("git")
            .args(["init", "-q", "--bare"])
            .arg(&repo),
    );
    init.ok();
    agent.sshd.give(&repo);
    let options = ssh_options(agent.dir.path(), agent.sshd.port).join(" ");
    let dest = agent.dir.path().join("clone");
    let clone = run_command(
        Command::new("git")
            .env("SSH_AUTH_SOCK", agent.socket())
            .env("GIT_SSH_COMMAND", format!("ssh {options}"))
            .args(["clone", "-q"])
            .arg(format!("{}@127.0.0.1:{}", agent.sshd.user, repo.display()))
            .arg(&dest)
            .stdin(Stdio::null()),
    );
    clone.ok();
    assert!(dest.join(".git").is_dir());
}

#[test]
fn the_agent_is_restarted_stopped_and_refuses_what_is_not_its_own() {
    let Some(agent) = Agent::start() else {
        return;
    };
    let socket = agent.socket();
    let path = socket.to_str().unwrap();
    // Asked again for the same socket: nothing changes.
    agent.daemon.run(&["agent", "-a", path, "-s"]).ok();
    let list = agent.daemon.run(&["agent", "--json", "-a", path]);
    list.ok();
    assert_eq!(list.json()["socket"], path);
    assert_eq!(list.json()["sockets"], 1);
    agent.tool("ssh-add", &["-l"]).ok();

    // A file in the way is left alone.
    let file = agent.dir.path().join("file");
    fs::write(&file, b"mine").unwrap();
    agent
        .daemon
        .run(&["agent", "-a", file.to_str().unwrap()])
        .fails_with("file_exists");
    assert_eq!(fs::read(&file).unwrap(), b"mine");

    // csh syntax.
    let other = agent.dir.path().join("second.sock");
    let csh = agent
        .daemon
        .run(&["agent", "-c", "-a", other.to_str().unwrap()]);
    csh.ok();
    assert_eq!(
        csh.stdout(),
        format!("setenv SSH_AUTH_SOCK {};\n", other.display())
    );

    let stop = agent.daemon.run(&["agent", "-k", "-s"]);
    stop.ok();
    assert_eq!(stop.stdout(), "unset SSH_AUTH_SOCK;\n");
    assert!(
        !socket.exists() && !other.exists(),
        "the sockets are removed"
    );
    let gone = agent.tool("ssh-add", &["-l"]);
    assert_ne!(gone.code, 0);
    let again = agent.daemon.run(&["agent", "-s", "-a", path]);
    again.ok();
    agent.tool("ssh-add", &["-l"]).ok();
}

/// `program ARGS...` as `user`, with the agent socket `socket`.
fn as_user(user: &str, socket: &Path, program: &str, args: &[String]) -> Run {
    let mut command = Command::new("setpriv");
    command
        .args(["--reuid", user, "--regid", user, "--init-groups", program])
        .args(args)
        .env("SSH_AUTH_SOCK", socket)
        .stdin(Stdio::null());
    run_command(&mut command)
}

/// A directory of `user`'s own, 0700, and the agent socket `tether agent`
/// bound in it as that user.
fn agent_of(daemon: &Daemon, user: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    run_command(Command::new("chown").arg(user).arg(dir.path())).ok();
    let socket = dir.path().join("agent.sock");
    crate::access::as_user(
        daemon,
        user,
        &["agent", "-s", "-a", socket.to_str().unwrap()],
    )
    .ok();
    (dir, socket)
}

#[test]
fn grants_decide_what_the_agent_lists_and_signs_and_other_uids_get_nothing() {
    let Some((sshd, daemon)) = crate::access::setup() else {
        return;
    };
    let alice = "tether-alice";
    let carol = "tether-carol";
    daemon
        .run(&[
            "grant", "add", "web1", "--user", alice, "--role", "operator", "--shell",
        ])
        .ok();
    daemon
        .run(&[
            "grant", "add", "web1", "--user", carol, "--role", "operator", "--exec", "uptime",
        ])
        .ok();
    let (alice_dir, alice_socket) = agent_of(&daemon, alice);
    let (carol_dir, carol_socket) = agent_of(&daemon, carol);

    let listed = as_user(alice, &alice_socket, "ssh-add", &["-l".into()]);
    listed.ok();
    assert!(
        listed.stdout().contains("tether:web1"),
        "{}",
        listed.stdout()
    );
    let listed = as_user(carol, &carol_socket, "ssh-add", &["-l".into()]);
    assert_eq!(listed.code, 1, "an actions-only grant lists no key");
    assert!(
        listed.stdout().contains("no identities"),
        "{}",
        listed.stdout()
    );

    // A shell grant needs MFA, as `tether shell` does: refused before
    // `tether login`, signed after.
    let mut ssh_args = ssh_options(alice_dir.path(), sshd.port);
    ssh_args.push(format!("{}@127.0.0.1", sshd.user));
    ssh_args.push("echo in".into());
    let before = as_user(alice, &alice_socket, "ssh", &ssh_args);
    assert_eq!(before.code, 255, "{}", before.stderr);
    let events = daemon.run(&["audit", "--json", "--op", "agent.sign"]);
    let events = events.json();
    assert_eq!(events[0]["result"], "mfa_required", "{events}");
    assert_eq!(events[0]["profile"], "web1");
    let (secret, _) = crate::access::enroll(&daemon, alice);
    crate::access::settle();
    crate::access::login(&daemon, alice, &crate::access::totp(&secret, 1)).ok();
    let after = as_user(alice, &alice_socket, "ssh", &ssh_args);
    after.ok();
    assert_eq!(after.stdout(), "in\n");

    // Another uid that reaches alice's socket gets nothing: the daemon
    // checks the peer, whatever the file's mode says.
    fs::set_permissions(alice_dir.path(), fs::Permissions::from_mode(0o711)).unwrap();
    fs::set_permissions(&alice_socket, fs::Permissions::from_mode(0o666)).unwrap();
    let intruder = as_user(carol, &alice_socket, "ssh-add", &["-l".into()]);
    assert_ne!(intruder.code, 0);
    assert!(
        !intruder.stdout().contains("tether:web1"),
        "{}",
        intruder.stdout()
    );
    let mut carol_ssh = ssh_options(carol_dir.path(), sshd.port);
    carol_ssh.push(format!("{}@127.0.0.1", sshd.user));
    carol_ssh.push("true".into());
    assert_eq!(as_user(carol, &alice_socket, "ssh", &carol_ssh).code, 255);
    let refused = daemon.run(&["audit", "--json", "--op", "agent.connect"]);
    let refused = refused.json();
    assert_eq!(refused[0]["result"], "forbidden", "{refused}");
    let carol_uid = tether_e2e::ensure_user(carol, &[crate::access::SOCKET_GROUP]);
    assert_eq!(refused[0]["uid"], carol_uid);
}

/// `ssh -A` to the server, and from there `ssh` on to the same server:
/// the second login is signed through the forwarded connection, which
/// tetherd sees bound first for forwarding and then to the session it
/// signs for. (The daemon's owner needs no grant; a grantee needs
/// `--agent-forwarding`, see the policy's tests.)
#[test]
fn a_login_from_a_forwarded_session_is_signed_for_the_bound_server() {
    let Some(agent) = Agent::start() else {
        return;
    };
    let inner = format!(
        "ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=no \
         -o UserKnownHostsFile=/dev/null -o IdentityFile=/nonexistent -p {} {}@127.0.0.1 \
         echo inner",
        agent.sshd.port, agent.sshd.user
    );
    let mut ssh = Command::new("ssh");
    ssh.env("SSH_AUTH_SOCK", agent.socket())
        .args(ssh_options(agent.dir.path(), agent.sshd.port))
        .arg("-A")
        .arg(format!("{}@127.0.0.1", agent.sshd.user))
        .arg(&inner)
        .stdin(Stdio::null());
    let run = run_command(&mut ssh);
    run.ok();
    assert_eq!(run.stdout(), "inner\n");
    let signed = agent.events("agent.sign");
    let forwarded: Vec<_> = signed
        .iter()
        .filter(|e| e["result"] == "ok" && e["details"]["forwarded"] == true)
        .collect();
    assert_eq!(forwarded.len(), 1, "{signed:?}");
}

/// Without `-a` the socket goes in `$XDG_RUNTIME_DIR/tether`, which must be
/// the caller's alone: open to others, or a symlink, it is refused and
/// nothing is bound there.
#[test]
fn the_default_socket_directory_must_be_the_callers_alone() {
    let Some(agent) = Agent::start() else {
        return;
    };
    let runtime = tempfile::tempdir().unwrap();
    let dir = runtime.path().join("tether");
    let agent_in = |runtime: &Path| {
        let mut command = agent.daemon.tether();
        command
            .env("XDG_RUNTIME_DIR", runtime)
            .args(["agent", "-s"])
            .stdin(Stdio::null());
        run_command(&mut command)
    };

    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    agent_in(runtime.path()).fails_with("untrusted_socket");
    assert!(!dir.join("agent.sock").exists());

    let elsewhere = tempfile::tempdir().unwrap();
    fs::remove_dir(&dir).unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), &dir).unwrap();
    agent_in(runtime.path()).fails_with("untrusted_socket");
    assert!(!elsewhere.path().join("agent.sock").exists());

    fs::remove_file(&dir).unwrap();
    let run = agent_in(runtime.path());
    run.ok();
    let socket = dir.join("agent.sock");
    assert_eq!(
        run.stdout(),
        format!(
            "SSH_AUTH_SOCK={}; export SSH_AUTH_SOCK;\n",
            socket.display()
        )
    );
    let mode = fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "the directory is made private");
}
