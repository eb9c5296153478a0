//! Hostile or broken SSH servers, scripted over plain TCP: one that stalls
//! after its banner, one that stalls after its KEXINIT, one whose banner
//! never ends, one that announces a 4 GiB packet. Each ends in a typed error within the connect timeout, with the
//! daemon's memory bounded and other callers served.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use tether_e2e::Daemon;
use tetherd::store::{Credential, PinnedHostKey, ProfileRecord, Store};

/// Serves each connection with `script` on a thread; returns the port.
fn scripted(script: fn(std::net::TcpStream)) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || script(stream));
        }
    });
    port
}

fn stall_after_banner(mut stream: std::net::TcpStream) {
    let _ = stream.write_all(b"SSH-2.0-OpenSSH_9.2\r\n");
    std::thread::sleep(Duration::from_secs(30));
}

/// Banner, then a well-formed KEXINIT, then nothing.
fn stall_after_kexinit(mut stream: std::net::TcpStream) {
    let _ = stream.write_all(b"SSH-2.0-OpenSSH_9.2\r\n");
    let mut payload = vec![20u8];
    payload.extend_from_slice(&[7u8; 16]);
    for list in [
        "curve25519-sha256",
        "ssh-ed25519",
        "aes128-gcm@openssh.com",
        "aes128-gcm@openssh.com",
        "hmac-sha2-256",
        "hmac-sha2-256",
        "none",
        "none",
        "",
        "",
    ] {
        payload.extend_from_slice(&(list.len() as u32).to_be_bytes());
        payload.extend_from_slice(list.as_bytes());
    }
    payload.push(0);
    payload.extend_from_slice(&0u32.to_be_bytes());
    let mut padding = 8 - (4 + 1 + payload.len()) % 8;
    if padding < 4 {
        padding += 8;
    }
    let mut packet = ((1 + payload.len() + padding) as u32)
        .to_be_bytes()
        .to_vec();
    packet.push(padding as u8);
    packet.extend_from_slice(&payload);
    packet.extend(std::iter::repeat_n(0u8, padding));
    let _ = stream.write_all(&packet);
    std::thread::sleep(Duration::from_secs(30));
}

fn endless_banner(mut stream: std::net::TcpStream) {
    let line = [b'x'; 200];
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if stream
            .write_all(&line)
            .and_then(|()| stream.write_all(b"\r\n"))
            .is_err()
        {
            return;
        }
    }
}

fn oversized_packet(mut stream: std::net::TcpStream) {
    let _ = stream.write_all(b"SSH-2.0-OpenSSH_9.2\r\n");
    let mut banner = [0u8; 256];
    let _ = stream.read(&mut banner);
    let _ = stream.write_all(&[0xff, 0xff, 0xff, 0xf0, 4]);
    let _ = stream.write_all(&[0u8; 65536]);
    std::thread::sleep(Duration::from_secs(30));
}

/// A password profile for a scripted server, pinned to `fingerprint`.
struct Server<'a> {
    name: &'a str,
    port: u16,
    fingerprint: &'a str,
    connect_timeout_secs: u64,
    password: &'a str,
}

/// A fingerprint no scripted server has: they fail before the host key.
const ANY_PIN: &str = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// A daemon with one profile per server (written to the store directly:
/// `profile add` would refuse a server it cannot log in to).
fn daemon_with(servers: &[Server<'_>]) -> Daemon {
    let mut daemon = Daemon::new();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = Store::open(&daemon.state_dir).unwrap();
        for server in servers {
            let record = ProfileRecord {
                host: "127.0.0.1".into(),
                port: server.port,
                user: "u".into(),
                auth: tether_api::types::AuthKind::Password,
                public_key: None,
                created_at: 1,
                updated_at: 1,
                connect_timeout_secs: Some(server.connect_timeout_secs),
                keepalive_secs: None,
                certificate: None,
                protocol: Default::default(),
                tls_ca: None,
                jump: None,
            };
            let pins = [PinnedHostKey {
                algorithm: "ssh-ed25519".into(),
                fingerprint: server.fingerprint.into(),
                added_at: 1,
            }];
            let credential =
                Credential::Password(zeroize::Zeroizing::new(server.password.to_owned()));
            store
                .add_profile(server.name, &record, &credential, &pins)
                .await
                .unwrap();
        }
    });
    drop(runtime);
    daemon.spawn_and_wait();
    daemon
}

#[test]
fn hostile_servers_end_in_typed_errors_within_the_timeout() {
    let hostile = |name, script| Server {
        name,
        port: scripted(script),
        fingerprint: ANY_PIN,
        connect_timeout_secs: 2,
        password: "pw",
    };
    let daemon = daemon_with(&[
        hostile("stall", stall_after_banner),
        hostile("kexinit", stall_after_kexinit),
        hostile("banner", endless_banner),
        hostile("huge", oversized_packet),
    ]);
    let pid = daemon.pid().unwrap();
    for name in ["stall", "kexinit", "banner", "huge"] {
        let started = Instant::now();
        let run = daemon.run(&["exec", name, "--", "true"]);
        let took = started.elapsed();
        assert_eq!(run.code, 255, "{name}: {}", run.stderr);
        assert!(
            [
                "error[timeout]",
                "error[ssh_error]",
                "error[connect_failed]"
            ]
            .iter()
            .any(|code| run.stderr.contains(code)),
            "{name}: {}",
            run.stderr
        );
        // Two seconds of connect timeout, and again for authentication.
        assert!(took < Duration::from_secs(8), "{name} took {took:?}");
        daemon.run(&["status"]).ok();
        let rss = tether_e2e::rss_kib(pid);
        assert!(rss < 100 * 1024, "{name}: {rss} KiB");
    }
    // The attempts are on record with their results.
    let trail = daemon
        .run(&["audit", "--op", "ssh.connect", "--json"])
        .json();
    assert_eq!(trail.as_array().unwrap().len(), 4, "{trail}");
}

#[test]
fn an_sftp_server_that_never_answers_times_out() {
    let options = tether_e2e::SshdOptions {
        extra_config: vec!["ForceCommand /bin/sleep 600".into()],
        ..Default::default()
    };
    let Some(sshd) = tether_e2e::Sshd::start_with(options) else {
        return;
    };
    let daemon = Daemon::start_with_config("[ssh]\nsftp_timeout_secs = 2\n");
    let key = tether_e2e::keygen(sshd.dir.path(), "id", "ed25519", "");
    daemon.add_key_profile("web1", &sshd, &key).ok();
    for args in [
        &["sftp", "web1", "ls", "/"][..],
        &["cp", "web1:/etc/hostname", "-"],
    ] {
        let started = Instant::now();
        let run = daemon.run(args);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{args:?} took {:?}",
            started.elapsed()
        );
        run.fails_with("ssh_error");
        assert!(run.stderr.contains("SFTP"), "{}", run.stderr);
    }
    daemon.run(&["status"]).ok();
}

#[test]
fn a_host_key_of_another_type_is_refused_before_any_credential() {
    let Some((mut sshd, daemon)) = tether_e2e::with_web1() else {
        return;
    };
    daemon.run(&["exec", "web1", "--", "true"]).ok();
    // The server comes back with only an ECDSA host key: the ed25519 pin
    // does not match, whatever the key type.
    let ecdsa = tether_e2e::keygen(sshd.dir.path(), "host_ecdsa", "ecdsa", "");
    sshd.host_key = ecdsa.private.clone();
    sshd.restart();
    let logins_before = sshd.log().matches("Accepted publickey").count();
    let run = daemon.run(&["exec", "web1", "--", "true"]);
    run.fails_with("host_key_mismatch");
    assert!(
        run.stderr.contains("ecdsa") || run.stderr.contains("ECDSA"),
        "{}",
        run.stderr
    );
    assert_eq!(
        sshd.log().matches("Accepted publickey").count(),
        logins_before,
        "a credential was offered to an unpinned key"
    );
    daemon.run(&["status"]).ok();
}

/// A real SSH server (russh) that asks thousands of keyboard-interactive
/// questions instead of one password.
struct PromptFlood;

impl russh::server::Handler for PromptFlood {
    type Error = russh::Error;

    async fn auth_none(&mut self, _user: &str) -> Result<russh::server::Auth, Self::Error> {
        let only = [russh::MethodKind::KeyboardInteractive];
        Ok(russh::server::Auth::Reject {
            proceed_with_methods: Some(russh::MethodSet::from(&only[..])),
            partial_success: false,
        })
    }

    async fn auth_keyboard_interactive<'a>(
        &'a mut self,
        _user: &str,
        _submethods: &str,
        _response: Option<russh::server::Response<'a>>,
    ) -> Result<russh::server::Auth, Self::Error> {
        let prompts: Vec<(std::borrow::Cow<'static, str>, bool)> = (0..5000)
            .map(|i| (std::borrow::Cow::Owned(format!("question {i}: ")), false))
            .collect();
        Ok(russh::server::Auth::Partial {
            name: "".into(),
            instructions: "".into(),
            prompts: prompts.into(),
        })
    }
}

#[test]
fn a_flood_of_keyboard_interactive_prompts_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = tether_e2e::keygen(dir.path(), "host", "ed25519", "");
    let fingerprint = tether_e2e::fingerprint(&key.private.with_extension("pub"));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let host_key = russh::keys::load_secret_key(&key.private, None).unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async move {
            let config = std::sync::Arc::new(russh::server::Config {
                keys: vec![host_key],
                auth_rejection_time: Duration::from_millis(10),
                ..Default::default()
            });
            listener.set_nonblocking(true).unwrap();
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            while let Ok((stream, _)) = listener.accept().await {
                let config = config.clone();
                tokio::spawn(async move {
                    if let Ok(session) =
                        russh::server::run_stream(config, stream, PromptFlood).await
                    {
                        let _ = session.await;
                    }
                });
            }
        });
    });

    let daemon = daemon_with(&[Server {
        name: "flood",
        port,
        fingerprint: &fingerprint,
        connect_timeout_secs: 5,
        password: "pw-never-sent",
    }]);
    let started = Instant::now();
    let run = daemon.run(&["exec", "flood", "--", "true"]);
    run.fails_with("auth_failed");
    assert!(run.stderr.contains("5000 question"), "{}", run.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    daemon.run(&["status"]).ok();
}
