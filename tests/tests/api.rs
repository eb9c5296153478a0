//! The HTTP API under abuse: malformed, oversized, slow and excessive
//! requests get a 4xx and never stop the daemon serving others; tampered
//! records are `store_corrupt` alone.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use tether_e2e::{Daemon, Value};

/// Sends raw bytes and reads the whole answer: (status, JSON body or Null).
fn raw(socket: &Path, request: &[u8]) -> (u16, Value) {
    let mut stream = UnixStream::connect(socket).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // The daemon may answer and close before it has read everything.
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn request(method: &str, path: &str, headers: &str, body: &str) -> Vec<u8> {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {}\r\n{headers}\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[track_caller]
fn assert_error(answer: (u16, Value), status: u16, code: &str) {
    assert_eq!(answer.0, status, "{:?}", answer.1);
    assert_eq!(answer.1["error"]["code"], code, "{:?}", answer.1);
    assert!(
        answer.1["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
}

#[test]
fn malformed_requests_get_typed_4xx_and_the_daemon_keeps_serving() {
    let daemon = Daemon::start();
    let s = &daemon.socket;
    assert_eq!(raw(s, &request("GET", "/v1/status", "", "")).0, 200);

    assert_error(
        raw(s, &request("POST", "/v1/profiles", "", "{not json")),
        400,
        "bad_request",
    );
    assert_error(
        raw(s, &request("POST", "/v1/profiles", "", r#"{"name": 5}"#)),
        400,
        "bad_request",
    );
    assert_error(
        raw(
            s,
            &request(
                "POST",
                "/v1/profiles",
                "",
                r#"{"name":"a","host":"h","user":"u","credential":{"type":"password","password":"p"},"host_key":{"mode":"accept_new"},"x":1}"#,
            ),
        ),
        400,
        "bad_request",
    );
    assert_error(
        raw(s, &request("GET", "/v1/nothing", "", "")),
        404,
        "not_found",
    );
    assert_error(raw(s, &request("GET", "/", "", "")), 404, "not_found");
    assert_error(
        raw(s, &request("PUT", "/v1/status", "", "")),
        405,
        "method_not_allowed",
    );
    assert_error(
        raw(s, &request("GET", "/v1/profiles/nope", "", "")),
        404,
        "profile_not_found",
    );
    assert_error(
        raw(s, &request("GET", "/v1/profiles/..%2F", "", "")),
        400,
        "bad_request",
    );
    assert_error(
        raw(
            s,
            &request("POST", "/v1/profiles/a/exec", "", r#"{"argv":["true"]}"#),
        ),
        426,
        "upgrade_required",
    );
    assert_error(
        raw(
            s,
            &request("GET", "/v1/status", "tether-api-version: 99\r\n", ""),
        ),
        400,
        "unsupported_api_version",
    );
    // Garbage that is not HTTP at all: hyper answers 400 and closes.
    let (status, _) = raw(s, b"\x16\x03\x01\x00\xff garbage\r\n\r\n");
    assert!((400..500).contains(&status), "{status}");

    assert_eq!(raw(s, &request("GET", "/v1/status", "", "")).0, 200);
}

#[test]
fn oversized_heads_and_bodies_are_refused() {
    let daemon = Daemon::start();
    let s = &daemon.socket;
    // A body over the cap, declared: refused before it is read.
    let head = "POST /v1/profiles HTTP/1.1\r\nHost: t\r\nContent-Length: 10485760\r\n\r\n";
    assert_error(raw(s, head.as_bytes()), 413, "payload_too_large");
    // A body over the cap, chunked (no length up front).
    let mut chunked = b"POST /v1/profiles HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    for _ in 0..20 {
        chunked.extend_from_slice(format!("{:x}\r\n", 65536).as_bytes());
        chunked.extend(std::iter::repeat_n(b'a', 65536));
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    assert_error(raw(s, &chunked), 413, "payload_too_large");
    // A head over the cap.
    let huge = format!(
        "GET /v1/status HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let (status, _) = raw(s, huge.as_bytes());
    assert!(status == 431 || status == 413, "{status}");

    assert_eq!(raw(s, &request("GET", "/v1/status", "", "")).0, 200);
}

#[test]
fn slow_and_idle_peers_only_hold_themselves_up() {
    let daemon =
        Daemon::start_with_config("[limits]\nheader_timeout_secs = 1\nbody_timeout_secs = 1\n");
    let s = &daemon.socket;
    // Slowloris: half a request head, then nothing.
    let mut slow = UnixStream::connect(s).unwrap();
    slow.write_all(b"GET /v1/status HTTP/1.1\r\nHost: t\r\n")
        .unwrap();
    // An idle connection that never sends a byte.
    let mut idle = UnixStream::connect(s).unwrap();
    // A body that never arrives.
    let mut stalled = UnixStream::connect(s).unwrap();
    stalled
        .write_all(b"POST /v1/profiles HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n{")
        .unwrap();

    let start = Instant::now();
    assert_eq!(raw(s, &request("GET", "/v1/status", "", "")).0, 200);
    assert!(
        start.elapsed() < Duration::from_millis(900),
        "others are served at once"
    );

    for (name, conn) in [
        ("slow", &mut slow),
        ("idle", &mut idle),
        ("stalled", &mut stalled),
    ] {
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut rest = Vec::new();
        let closed = conn.read_to_end(&mut rest);
        assert!(
            closed.is_ok(),
            "{name}: the daemon did not close the connection: {closed:?}"
        );
        if name == "stalled" {
            assert!(
                String::from_utf8_lossy(&rest).contains("request_timeout"),
                "{}",
                String::from_utf8_lossy(&rest)
            );
        }
    }
}

#[test]
fn connections_per_uid_are_capped() {
    let daemon = Daemon::start_with_config("[limits]\nmax_connections_per_uid = 4\n");
    let s = &daemon.socket;
    let held = tether_e2e::hold_connections(s, 4);
    assert_error(
        raw(s, &request("GET", "/v1/status", "", "")),
        429,
        "too_many_connections",
    );
    drop(held);
    tether_e2e::wait_until(
        "the held connections to be released",
        Duration::from_secs(5),
        || raw(s, &request("GET", "/v1/status", "", "")).0 == 200,
    );
}

#[test]
fn a_tampered_record_is_store_corrupt_and_nothing_else_breaks() {
    let daemon = Daemon::new();
    // Two profiles written through the store itself, then one edited on disk.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        use tetherd::store::{Credential, PinnedHostKey, ProfileRecord, Store};
        let store = Store::open(&daemon.state_dir).unwrap();
        for name in ["good", "bad"] {
            let record = ProfileRecord {
                host: "127.0.0.1".into(),
                port: 9,
                user: "u".into(),
                auth: tether_api::types::AuthKind::Password,
                public_key: None,
                created_at: 1,
                updated_at: 1,
                connect_timeout_secs: None,
                keepalive_secs: None,
                certificate: None,
                protocol: Default::default(),
                tls_ca: None,
                jump: None,
            };
            let pins = [PinnedHostKey {
                algorithm: "ssh-ed25519".into(),
                fingerprint: "SHA256:x".into(),
                added_at: 1,
            }];
            let credential = Credential::Password(zeroize::Zeroizing::new("pw".to_owned()));
            store
                .add_profile(name, &record, &credential, &pins)
                .await
                .unwrap();
        }
        let mut bytes = store.raw_get("profiles", "bad").unwrap().unwrap();
        bytes[40] ^= 0x01;
        store.raw_put("profiles", "bad", Some(&bytes)).unwrap();
    });
    drop(runtime);
    let mut daemon = daemon;
    daemon.spawn_and_wait();

    let run = daemon.run(&["profile", "show", "bad"]);
    run.fails_with("store_corrupt");
    daemon
        .run(&["exec", "bad", "--", "true"])
        .fails_with("store_corrupt");
    daemon.run(&["profile", "show", "good"]).ok();
    let list = daemon.run(&["profile", "list", "--json"]);
    list.ok();
    let json = list.json();
    assert_eq!(json["profiles"][0]["name"], "good");
    assert_eq!(json["corrupt"][0], "bad");
    // The way out works on a corrupt record.
    daemon.run(&["profile", "remove", "bad", "--yes"]).ok();
    assert!(daemon.run(&["profile", "list", "--json"]).json()["corrupt"].is_null());
}
