//! Jump hosts (`--jump`, as ssh's ProxyJump) against real OpenSSH servers
//! in a network namespace: the servers behind the bastion listen on the
//! namespace's own loopback, which the daemon cannot reach, so a command
//! that works went through the bastion.

use std::process::Command;

use tether_e2e::{
    Daemon, KeyPair, Netns, Sshd, SshdOptions, Tmux, key_profile_args_for, keygen, tether_bin,
};

/// A bastion reachable from here, and two servers behind it.
struct Behind {
    netns: Netns,
    bastion: Sshd,
    db: Sshd,
    inner: Sshd,
    key: KeyPair,
}

impl Behind {
    fn start() -> Option<Behind> {
        let netns = Netns::create()?;
        let inside = |listen: &str| SshdOptions {
            namespace: Some(netns.name.clone()),
            listen: Some(listen.to_owned()),
            ..Default::default()
        };
        let bastion = Sshd::start_with(inside(&netns.address))?;
        let db = Sshd::start_with(inside("127.0.0.1"))?;
        let inner = Sshd::start_with(inside("127.0.0.1"))?;
        let key = keygen(bastion.dir.path(), "id_ed25519", "ed25519", "");
        for server in [&bastion, &db, &inner] {
            server.authorize(&key);
        }
        Some(Behind {
            netns,
            bastion,
            db,
            inner,
            key,
        })
    }

    /// `profile add` arguments for `server`, as seen from where it is
    /// reached.
    fn add_args(&self, name: &str, server: &Sshd, jump: Option<&str>) -> Vec<String> {
        let mut args =
            key_profile_args_for(name, server.host(), server.port, &server.user, &self.key);
        if let Some(jump) = jump {
            args.extend(["--jump".to_owned(), jump.to_owned()]);
        }
        args
    }

    /// bastion, db1 behind it, and deep behind db1.
    fn profiles(&self, daemon: &Daemon) {
        let add = |args: Vec<String>| {
            daemon
                .run(&args.iter().map(String::as_str).collect::<Vec<_>>())
                .ok();
        };
        add(self.add_args("bastion", &self.bastion, None));
        add(self.add_args("db1", &self.db, Some("bastion")));
        add(self.add_args("deep", &self.inner, Some("db1")));
    }
}

#[test]
fn exec_cp_and_shell_reach_hosts_behind_one_and_two_jumps() {
    let Some(behind) = Behind::start() else {
        return;
    };
    let daemon = Daemon::start();
    // Not reachable directly: the server listens on the namespace's own
    // loopback.
    let direct = behind.add_args("direct", &behind.db, None);
    daemon
        .run(&direct.iter().map(String::as_str).collect::<Vec<_>>())
        .fails_with("connect_failed");
    behind.profiles(&daemon);

    let run = daemon.run(&[
        "exec",
        "db1",
        "--",
        "echo through; hostname -I 2>/dev/null; true",
    ]);
    run.ok();
    assert!(run.stdout().starts_with("through\n"), "{}", run.stdout());
    let run = daemon.run(&["exec", "deep", "--", "echo deeper"]);
    run.ok();
    assert_eq!(run.stdout(), "deeper\n");

    // One connection each, the inner ones inside the outer ones' channels.
    let sessions = daemon.run(&["session", "list", "--json"]);
    sessions.ok();
    let sessions = sessions.json();
    let remote = |profile: &str| {
        sessions["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["profile"] == profile)
            .map(|s| s["remote"].as_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    assert!(remote("db1").ends_with("via bastion"), "{sessions}");
    assert!(remote("deep").ends_with("via db1"), "{sessions}");
    assert_eq!(
        behind.bastion.connections_accepted(),
        1 + 1,
        "{}",
        behind.bastion.log()
    );

    // Files both ways through two jumps, checked byte for byte.
    let local = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 31 + i / 7) as u8).collect();
    let file = local.path().join("blob");
    std::fs::write(&file, &data).unwrap();
    let remote_dir = behind.inner.user_dir("in");
    let target = format!("deep:{}/blob", remote_dir.display());
    daemon.run(&["cp", file.to_str().unwrap(), &target]).ok();
    assert_eq!(std::fs::read(remote_dir.join("blob")).unwrap(), data);
    let back = local.path().join("back");
    daemon.run(&["cp", &target, back.to_str().unwrap()]).ok();
    assert_eq!(std::fs::read(&back).unwrap(), data);

    // The trail names both: the jump's login is on behalf of the profile
    // asked for.
    let events = daemon
        .run(&["audit", "--json", "--op", "ssh.connect"])
        .json();
    let events = events.as_array().unwrap();
    let jump_for = |profile: &str, hop: &str| {
        events.iter().any(|e| {
            e["profile"] == hop
                && e["details"]["purpose"] == "jump"
                && e["details"]["for"] == profile
        })
    };
    assert!(jump_for("db1", "bastion"), "{events:?}");
    assert!(jump_for("deep", "db1"), "{events:?}");

    // A shell, on a real terminal.
    let command = format!(
        "{} --socket {} shell deep; echo EXIT=$?; sleep 600",
        tether_bin().display(),
        daemon.socket.display()
    );
    let Some(tmux) = Tmux::start(&command, 100, 30) else {
        return;
    };
    tmux.wait_for_prompt();
    tmux.type_text("echo inner-$((6*7)); exit 3\n");
    tmux.wait_for("inner-42");
    tmux.wait_for("EXIT=3");
    drop(behind.netns);
}

#[test]
fn circles_foreign_jumps_and_removing_a_used_jump_are_refused() {
    let Some(behind) = Behind::start() else {
        return;
    };
    let daemon = Daemon::start();
    behind.profiles(&daemon);

    let run = daemon.run(&["profile", "set", "bastion", "--jump", "deep"]);
    run.fails_with("bad_request");
    assert!(run.stderr.contains("circle"), "{}", run.stderr);
    assert!(
        run.stderr.contains("bastion -> deep -> db1 -> bastion"),
        "{}",
        run.stderr
    );
    daemon
        .run(&["profile", "set", "db1", "--jump", "db1"])
        .fails_with("bad_request");
    let run = daemon.run(&["profile", "set", "db1", "--jump", "nowhere"]);
    run.fails_with("bad_request");
    assert!(run.stderr.contains("nowhere"), "{}", run.stderr);

    let run = daemon.run(&["profile", "remove", "bastion", "-y"]);
    run.fails_with("bad_request");
    assert!(
        run.stderr.contains("db1 jumps through bastion"),
        "{}",
        run.stderr
    );
    daemon.run(&["profile", "show", "bastion"]).ok();

    // Nothing changed: it still works, and says how it goes.
    daemon.run(&["exec", "deep", "--", "true"]).ok();
    let shown = daemon.run(&["profile", "show", "db1", "--json"]).json();
    assert_eq!(shown["jump"], "bastion");

    // Removing the jump takes effect: db1 is then unreachable.
    daemon
        .run(&["profile", "set", "db1", "--no-jump"])
        .fails_with("connect_failed");
    daemon.run(&["exec", "db1", "--", "true"]).ok();
}

#[test]
fn a_changed_host_key_on_either_hop_fails_closed() {
    let Some(mut behind) = Behind::start() else {
        return;
    };
    let daemon = Daemon::start();
    behind.profiles(&daemon);
    daemon.run(&["exec", "db1", "--", "true"]).ok();
    let db_logins = behind.db.connections_accepted();

    behind.bastion.replace_host_key();
    daemon.run(&["session", "close", "bastion"]).ok();
    daemon.run(&["session", "close", "db1"]).ok();
    let run = daemon.run(&["exec", "db1", "--", "true"]);
    run.fails_with("host_key_mismatch");
    assert!(
        run.stderr.contains("tether profile trust bastion"),
        "{}",
        run.stderr
    );
    assert_eq!(
        behind.db.connections_accepted(),
        db_logins,
        "nothing reached db"
    );

    // Trusted again, the bastion carries; then the target's own key changes.
    let fingerprint = behind.bastion.host_fingerprint();
    daemon
        .run(&["profile", "trust", "bastion", "--host-key", &fingerprint])
        .ok();
    daemon.run(&["exec", "db1", "--", "true"]).ok();
    let accepted = |server: &Sshd| server.log().matches("Accepted publickey").count();
    let logged_in = accepted(&behind.db);
    behind.db.replace_host_key();
    daemon.run(&["session", "close", "db1"]).ok();
    let run = daemon.run(&["exec", "db1", "--", "true"]);
    run.fails_with("host_key_mismatch");
    assert!(
        run.stderr.contains("tether profile trust db1"),
        "{}",
        run.stderr
    );
    assert_eq!(accepted(&behind.db), logged_in, "no key was offered to db");
}

#[test]
fn a_grant_on_the_target_alone_goes_through_the_jump_and_jumps_are_set_by_their_owners() {
    let Some(behind) = Behind::start() else {
        return;
    };
    let alice = "tether-alice";
    tether_e2e::ensure_user(alice, &[crate::access::SOCKET_GROUP]);
    let daemon = Daemon::start_system(crate::access::SOCKET_GROUP);
    behind.profiles(&daemon);
    daemon
        .run(&[
            "grant", "add", "db1", "--user", alice, "--role", "owner", "--exec", "any",
        ])
        .ok();
    crate::access::enroll(&daemon, alice);

    let run = crate::access::as_user(&daemon, alice, &["exec", "db1", "--", "echo granted"]);
    run.ok();
    assert_eq!(run.stdout(), "granted\n");
    // The jump itself stays out of reach, and out of sight.
    crate::access::as_user(&daemon, alice, &["exec", "bastion", "--", "true"])
        .fails_with("profile_not_found");
    // Routing through a profile sends its credential: only one who may
    // change that profile decides it.
    crate::access::as_user(&daemon, alice, &["profile", "set", "db1", "--jump", "deep"])
        .fails_with("bad_request");
    let run = crate::access::as_user(
        &daemon,
        alice,
        &["profile", "set", "db1", "--jump", "bastion"],
    );
    run.fails_with("bad_request");
    assert!(
        run.stderr.contains("no profile named \"bastion\""),
        "{}",
        run.stderr
    );

    let events = daemon
        .run(&["audit", "--json", "--op", "ssh.connect"])
        .json();
    let by_alice = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["profile"] == "bastion" && e["details"]["for"] == "db1")
        .count();
    assert!(by_alice >= 1, "{events}");
}

#[test]
fn an_ssh_config_with_a_bastion_and_hashed_known_hosts_is_imported() {
    let Some(behind) = Behind::start() else {
        return;
    };
    let daemon = Daemon::start();
    let dir = tempfile::tempdir().unwrap();
    let known_hosts = dir.path().join("known_hosts");
    let host_line = |server: &Sshd| {
        let public = std::fs::read_to_string(server.host_key.with_extension("pub")).unwrap();
        let mut fields = public.split_whitespace();
        format!(
            "[{}]:{} {} {}\n",
            server.host(),
            server.port,
            fields.next().unwrap(),
            fields.next().unwrap()
        )
    };
    std::fs::write(
        &known_hosts,
        host_line(&behind.bastion) + &host_line(&behind.db),
    )
    .unwrap();
    tether_e2e::run_command(
        Command::new("ssh-keygen")
            .arg("-H")
            .arg("-f")
            .arg(&known_hosts),
    )
    .ok();
    let hashed = std::fs::read_to_string(&known_hosts).unwrap();
    assert!(
        hashed.starts_with("|1|") && !hashed.contains("127.0.0.1"),
        "{hashed}"
    );
    std::fs::create_dir(dir.path().join("conf.d")).unwrap();
    std::fs::write(
        dir.path().join("conf.d/tools"),
        "Host viacommand\n    ProxyCommand nc %h %p\n",
    )
    .unwrap();
    let config = dir.path().join("config");
    std::fs::write(
        &config,
        format!(
            "Include {dir}/conf.d/*\n\
             Host bastion\n    HostName {bastion_host}\n    Port {bastion_port}\n\
             Host db1\n    HostName 127.0.0.1\n    Port {db_port}\n    ProxyJump bastion\n    ConnectTimeout 7\n\
             Host unknown\n    HostName 127.0.0.1\n    Port {inner_port}\n    ProxyJump bastion\n\
             Host *\n    User {user}\n    IdentityFile {key}\n    UserKnownHostsFile {known}\n    ServerAliveInterval 13\n",
            dir = dir.path().display(),
            bastion_host = behind.bastion.host(),
            bastion_port = behind.bastion.port,
            db_port = behind.db.port,
            inner_port = behind.inner.port,
            user = behind.db.user,
            key = behind.key.private.display(),
            known = known_hosts.display(),
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();

    // A dry run says what would happen and changes nothing.
    let run = daemon.run(&[
        "profile",
        "import",
        "--ssh-config",
        config,
        "--dry-run",
        "db1",
    ]);
    run.ok();
    assert!(run.stdout().contains("would import"), "{}", run.stdout());
    let listed = daemon.run(&["profile", "list", "--json"]).json();
    assert_eq!(listed["profiles"].as_array().unwrap().len(), 0, "{listed}");

    let run = daemon.run(&["profile", "import", "--ssh-config", config, "--json"]);
    assert_eq!(run.code, 1, "some hosts are skipped: {}", run.stderr);
    let summary = run.json();
    let result = |host: &str| {
        summary["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["host"] == host)
            .map(|h| {
                (
                    h["result"].as_str().unwrap().to_owned(),
                    h["detail"].as_str().unwrap().to_owned(),
                )
            })
            .unwrap_or_else(|| panic!("{host} is not in {summary}"))
    };
    assert_eq!(result("bastion").0, "imported", "{summary}");
    assert_eq!(result("db1").0, "imported", "{summary}");
    let (unknown, why) = result("unknown");
    assert_eq!(unknown, "skipped");
    assert!(why.contains("--accept-new"), "{why}");
    let (proxied, why) = result("viacommand");
    assert_eq!(proxied, "skipped");
    assert!(why.contains("ProxyCommand"), "{why}");

    let run = daemon.run(&["exec", "db1", "--", "echo imported"]);
    run.ok();
    assert_eq!(run.stdout(), "imported\n");
    let shown = daemon.run(&["profile", "show", "db1", "--json"]).json();
    assert_eq!(shown["jump"], "bastion");
    assert_eq!(shown["connect_timeout_secs"], 7);
    assert_eq!(shown["keepalive_secs"], 13);
    assert_eq!(
        shown["host_keys"][0]["fingerprint"],
        behind.db.host_fingerprint()
    );

    // With consent to trust on first use, the rest comes along.
    let run = daemon.run(&[
        "profile",
        "import",
        "--ssh-config",
        config,
        "--accept-new",
        "unknown",
    ]);
    run.ok();
    daemon.run(&["exec", "unknown", "--", "true"]).ok();
}
