//! Every endpoint against every kind of caller, in process: the router is
//! called over a socket pair as a made-up uid (no root, no sshd, no user
//! database), and what each caller gets is checked against the access the
//! endpoint's definition names.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use tether_api::access::{ExecPolicy, Role, SftpAccess, Subject};
use tether_api::endpoint::{Access, ENDPOINTS, EndpointInfo, sample_path};
use tether_api::types::{AuthKind, Mode};
use tetherd::access::Peer;
use tetherd::audit::Audit;
use tetherd::config::{Config, Options};
use tetherd::server::App;
use tetherd::store::access::GrantRecord;
use tetherd::store::{Credential, PinnedHostKey, ProfileRecord, Store};

/// Who calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Root,
    /// A uid with no grant.
    Stranger,
    Viewer,
    Operator,
}

const VIEWER: u32 = 50_001;
const OPERATOR: u32 = 50_002;
const STRANGER: u32 = 50_003;

impl Who {
    fn uid(self) -> u32 {
        match self {
            Who::Root => 0,
            Who::Stranger => STRANGER,
            Who::Viewer => VIEWER,
            Who::Operator => OPERATOR,
        }
    }

    /// Whether the endpoint's access lets this caller past its check.
    fn may(self, access: Access) -> bool {
        matches!(
            (self, access),
            (_, Access::Anyone)
                | (Who::Root, _)
                | (Who::Viewer, Access::View)
                | (
                    Who::Operator,
                    Access::View
                        | Access::Exec
                        | Access::Shell
                        | Access::Run
                        | Access::SftpRead
                        | Access::SftpWrite
                        | Access::Sftp
                        | Access::Copy
                        | Access::Forward,
                )
        )
    }
}

/// A system daemon's app on a fresh store with profile web1 (pointing at a
/// closed port), action hello, and grants for the viewer and the operator.
async fn app(dir: &std::path::Path) -> Arc<App> {
    let state_dir = dir.join("state");
    let store = Store::open(&state_dir).unwrap();
    let record = ProfileRecord {
        host: "127.0.0.1".into(),
        port: 1,
        user: "nobody".into(),
        auth: AuthKind::Password,
        public_key: None,
        created_at: 1,
        updated_at: 1,
        connect_timeout_secs: Some(1),
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
    let secret = Credential::Password(zeroize::Zeroizing::new("pw".into()));
    store
        .add_profile("web1", &record, &secret, &pins)
        .await
        .unwrap();
    store
        .put_action("web1", "hello", &["echo".into(), "hello".into()])
        .await
        .unwrap();
    for (uid, role) in [(VIEWER, Role::Viewer), (OPERATOR, Role::Operator)] {
        let grant = GrantRecord {
            role,
            shell: role == Role::Operator,
            exec: match role {
                Role::Operator => ExecPolicy::Any,
                _ => ExecPolicy::None,
            },
            sftp: match role {
                Role::Operator => SftpAccess::Write,
                _ => SftpAccess::None,
            },
            paths: Vec::new(),
            unattended: false,
            agent_forwarding: false,
            forward: match role {
                Role::Operator => vec!["127.0.0.1:1".into()],
                _ => Vec::new(),
            },
        };
        store
            .put_grant("web1", Subject::User(uid), &grant)
            .await
            .unwrap();
    }
    let options = Options {
        mode: Mode::System,
        socket: dir.join("tether.sock"),
        state_dir: state_dir.clone(),
        config: Config::default(),
        config_path: None,
    };
    let audit = Audit::new(&state_dir, &options.config.audit);
    let app = App::new(options, store, audit, 0);
    app.open_trail().await.unwrap();
    app
}

/// A body each endpoint decodes (what it then does with it is its own
/// business: only the access check is under test).
fn sample_body(info: &EndpointInfo) -> &'static str {
    match info.name {
        "AddProfileCall" => {
            r#"{"name":"web2","host":"127.0.0.1","port":1,"user":"u","credential":{"type":"password","password":"x"},"host_key":{"mode":"accept_new"}}"#
        }
        "UpdateProfileCall" => r#"{"port":2}"#,
        "RotateKey" => r#"{"dry_run":true}"#,
        "Exec" => r#"{"argv":["true"]}"#,
        "Shell" => r#"{"pty":{"term":"xterm","cols":80,"rows":24,"modes":[]},"argv":[]}"#,
        "RunAction" => r#"{"action":"hello","args":[]}"#,
        "AddAction" | "SetAction" => r#"{"name":"bye","argv":["echo","bye"]}"#,
        "FileOperation" => r#"{"op":"stat","path":"/etc/hostname"}"#,
        "CopyFile" => {
            r#"{"from_profile":"web1","from_path":"/a","to_profile":"web1","to_path":"/b"}"#
        }
        "OpenTunnel" => r#"{"host":"127.0.0.1","port":1,"kind":"local"}"#,
        "ProbeHost" => r#"{"host":"127.0.0.1","port":1}"#,
        "AddGrant" | "SetGrant" => r#"{"profile":"web1","user":"50003","role":"viewer"}"#,
        "Unseal" | "Rekey" => "{}",
        "ChangePassphrase" => r#"{"old":"a","new":"b"}"#,
        "AuditHmac" => r#"{"value":"x"}"#,
        "MfaConfirm" | "MfaLogin" => r#"{"code":"123456"}"#,
        "MfaInvite" => r#"{"user":"root"}"#,
        "MfaReset" => r#"{"user":"root","unenroll":false}"#,
        _ => "",
    }
}

fn sample_query(info: &EndpointInfo) -> &'static str {
    match info.name {
        "DownloadFile" | "UploadFile" | "UploadHandover" | "DownloadHandover" => "?path=/tmp/x",
        "RemoveGrant" => "?user=50003",
        _ => "",
    }
}

/// Calls `info` as `who`; the status and the error code.
async fn call(app: Arc<App>, who: Who, info: &EndpointInfo) -> (u16, String) {
    let (ours, theirs) = tokio::net::UnixStream::pair().unwrap();
    let peer = Peer {
        uid: who.uid(),
        pid: None,
    };
    tokio::spawn(tetherd::server::serve_as(app, theirs, peer));
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(ours))
            .await
            .unwrap();
    tokio::spawn(connection);
    let body = sample_body(info);
    let request = hyper::Request::builder()
        .method(info.method)
        .uri(format!("{}{}", sample_path(info), sample_query(info)))
        .header("host", "tetherd")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let code = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
        .unwrap_or_default();
    (status, code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_lets_in_exactly_whom_its_access_names() {
    let mut wrong = Vec::new();
    for info in ENDPOINTS {
        for who in [Who::Stranger, Who::Viewer, Who::Operator, Who::Root] {
            // A fresh daemon each time: root's calls change things (seal,
            // remove, rekey).
            let dir = tempfile::tempdir().unwrap();
            let app = app(dir.path()).await;
            let (status, code) = call(app, who, info).await;
            let refused = matches!(code.as_str(), "forbidden" | "profile_not_found");
            let routed = !matches!(code.as_str(), "not_found" | "method_not_allowed");
            let ok = routed
                && match who.may(info.access) {
                    true => !refused,
                    false => refused || code == "mfa_required",
                };
            if !ok {
                wrong.push(format!(
                    "{} {} as {who:?}: {status} {code}",
                    info.method, info.pattern
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
