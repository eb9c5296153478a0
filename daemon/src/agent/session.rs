//! One connection to an agent socket: who is at the other end (the
//! kernel's answer, checked against the socket's owner), the sessions the
//! client bound it to (`session-bind@openssh.com`), and its requests.
//!
//! A signature is made only for a login to a server whose host key, proved
//! by its signature over the session identifier, is pinned for a profile
//! of the caller's with the requested key, as that profile's user, within
//! the caller's grant (a shell's, with MFA). Keys never enter or leave:
//! add, remove, lock and unlock are refused. Every signature is on the
//! trail before it is made; every refusal after.

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use ssh_agent_lib::codec::Codec;
use ssh_agent_lib::proto::extension::SessionBind;
use ssh_agent_lib::proto::{Extension, Identity, Request, Response, SignRequest};
use ssh_agent_lib::ssh_encoding::{Decode, Encode};
use ssh_agent_lib::ssh_key::public::KeyData;
use ssh_agent_lib::ssh_key::{HashAlg, Signature};
use tether_api::types::Protocol;
use tokio_util::bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder, Framed};

use super::login::{self, Login};
use crate::access::Caller;
use crate::access::policy::{self, Op};
use crate::audit::Event;
use crate::server::App;
use crate::server::peer::Peer;

/// The largest request read (OpenSSH's agent takes 256 KiB).
const MAX_FRAME: usize = 256 * 1024;
/// Sessions one connection may be bound to (OpenSSH's agent keeps 16).
const MAX_BINDS: usize = 16;

/// Serves one connection to the socket `owner` handed over.
pub async fn serve(app: &Arc<App>, owner: u32, stream: tokio::net::UnixStream) {
    let Ok(peer) = Peer::from_stream(&stream) else {
        return;
    };
    let caller = Caller::resolve(&peer, app.options.mode, app.daemon_uid);
    // The owner passed the daemon's peer check when it handed the socket
    // over; anyone else is refused here.
    if peer.uid != owner {
        let reason = format!(
            "uid {} connected to the agent socket of uid {owner}",
            peer.uid
        );
        tracing::warn!(uid = peer.uid, owner, "agent connection refused: {reason}");
        let event = Event::new(&caller, "agent.connect")
            .result("forbidden")
            .detail("owner", owner)
            .detail("reason", reason);
        app.audit.record_spare(&app.store, event).await;
        return;
    }
    let mut connection = Connection {
        app,
        caller,
        binds: Vec::new(),
    };
    let mut frames = Framed::new(stream, Frames::default());
    let stopping = app.stopping();
    loop {
        let request = tokio::select! {
            () = stopping.cancelled() => return,
            request = frames.next() => request,
        };
        let Some(Ok(request)) = request else {
            return;
        };
        let response = connection.answer(request).await;
        if frames.send(response).await.is_err() {
            return;
        }
    }
}

/// The agent protocol's frames: a length, then a message that
/// ssh-agent-lib decodes. A message it cannot decode is answered with a
/// failure; a frame past [`MAX_FRAME`] ends the connection.
#[derive(Default)]
struct Frames(Codec<Request, Response>);

impl Decoder for Frames {
    type Item = Result<Request, String>;
    type Error = std::io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        let Some(head) = src.get(..4) else {
            return Ok(None);
        };
        let length = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        if length > MAX_FRAME {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("an agent request of {length} bytes"),
            ));
        }
        if src.len() < 4 + length {
            src.reserve(4 + length - src.len());
            return Ok(None);
        }
        let mut frame = src.split_to(4 + length);
        Ok(Some(match self.0.decode(&mut frame) {
            Ok(Some(request)) => Ok(request),
            Ok(None) => Err("a truncated request".into()),
            Err(error) => Err(error.to_string()),
        }))
    }
}

impl Encoder<Response> for Frames {
    type Error = std::io::Error;

    fn encode(&mut self, response: Response, dst: &mut BytesMut) -> Result<(), Self::Error> {
        self.0
            .encode(response, dst)
            .map_err(|e| std::io::Error::other(e.to_string()))
    }
}

/// Decodes `bytes` as a connection's requests and reads what a signature
/// and a session bind would be checked against, as [`serve`] does: for
/// the fuzz target. Returns how many requests were read.
#[doc(hidden)]
pub fn read_requests(bytes: &[u8]) -> usize {
    let mut frames = Frames::default();
    let mut src = BytesMut::from(bytes);
    let mut count = 0;
    while let Ok(Some(request)) = frames.decode(&mut src) {
        count += 1;
        match request {
            Ok(Request::SignRequest(request)) => {
                let _ = login::parse_login(&request.data);
                let _ = blob(&request.pubkey);
                let _ = fingerprint(&request.pubkey);
            }
            Ok(Request::Extension(extension)) => {
                if let Ok(Some(bind)) = extension.parse_message::<SessionBind>() {
                    let _ = bind.verify_signature();
                    let _ = fingerprint(&bind.host_key);
                }
            }
            _ => {}
        }
    }
    count
}

/// A session the client bound the connection to, its server's signature
/// checked.
struct Bind {
    host_key: KeyData,
    session_id: Vec<u8>,
    forwarding: bool,
}

struct Connection<'a> {
    app: &'a Arc<App>,
    caller: Caller,
    binds: Vec<Bind>,
}

/// Why a signature was not made, for the trail and the daemon's log.
struct Refusal {
    profile: Option<String>,
    host_key: Option<String>,
    code: String,
    reason: String,
}

impl Refusal {
    fn new(reason: impl Into<String>) -> Refusal {
        Refusal {
            profile: None,
            host_key: None,
            code: "refused".into(),
            reason: reason.into(),
        }
    }

    /// The server the signature was asked for.
    fn toward(mut self, host_key: &str) -> Refusal {
        self.host_key = Some(host_key.to_owned());
        self
    }

    fn on(mut self, profile: &str) -> Refusal {
        self.profile = Some(profile.to_owned());
        self
    }

    fn code(mut self, code: &str) -> Refusal {
        self.code = code.to_owned();
        self
    }
}

/// `items` as a list for a message: `a, b, c`.
fn joined(items: impl Iterator<Item = String>) -> String {
    items.collect::<Vec<_>>().join(", ")
}

/// A key's wire form, as logins carry it.
fn blob(key: &KeyData) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = key.encode(&mut out);
    out
}

fn fingerprint(key: &KeyData) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

impl Connection<'_> {
    async fn answer(&mut self, request: Result<Request, String>) -> Response {
        let request = match request {
            Ok(request) => request,
            Err(why) => {
                self.refuse_request("an unreadable request", &why).await;
                return Response::Failure;
            }
        };
        let refused = match request {
            Request::RequestIdentities => return Response::IdentitiesAnswer(self.identities()),
            Request::SignRequest(request) => return self.sign(request).await,
            Request::Extension(extension) => return self.extension(extension).await,
            Request::AddIdentity(_) | Request::AddIdConstrained(_) => "add a key (ssh-add FILE)",
            Request::RemoveIdentity(_) => "remove a key (ssh-add -d)",
            Request::RemoveAllIdentities => "remove every key (ssh-add -D)",
            Request::Lock(_) => "lock the agent (ssh-add -x)",
            Request::Unlock(_) => "unlock the agent (ssh-add -X)",
            Request::AddSmartcardKey(_) | Request::AddSmartcardKeyConstrained(_) => {
                "add a smartcard key (ssh-add -s)"
            }
            Request::RemoveSmartcardKey(_) => "remove a smartcard key (ssh-add -e)",
        };
        self.refuse_request(
            refused,
            "tether's agent holds the keys of tether profiles only: they are added with \
             `tether profile add --key-file` and never added, removed, locked or read \
             through the agent",
        )
        .await;
        Response::Failure
    }

    async fn refuse_request(&self, what: &str, why: &str) {
        tracing::warn!(
            uid = self.caller.uid,
            program = ?self.caller.exe,
            "agent request refused: {what}: {why}"
        );
        let event = Event::new(&self.caller, "agent.request")
            .result("refused")
            .detail("request", what)
            .detail("reason", why);
        self.app.audit.record_spare(&self.app.store, event).await;
    }

    /// Whether the caller's grants let them sign with `profile`'s key, MFA
    /// aside (an identity is listed without it; a signature needs it).
    fn may_use(&self, profile: &str) -> bool {
        policy::check(
            &self.app.store,
            &self.caller,
            profile,
            Op::Agent { forwarded: false },
            || true,
        )
        .is_ok()
    }

    /// The SSH profiles with a key that the caller may sign with: one
    /// identity per key, named by its profiles.
    fn identities(&self) -> Vec<Identity> {
        let mut keys: Vec<(Vec<u8>, KeyData, Vec<String>)> = Vec::new();
        let Ok(profiles) = self.app.store.profiles() else {
            return Vec::new();
        };
        for (name, record) in profiles {
            let Ok(record) = record else { continue };
            if record.protocol != Protocol::Ssh || record.public_key.is_none() {
                continue;
            }
            if !self.may_use(&name) {
                continue;
            }
            let Some(blob) = self
                .profile_key(&name)
                .and_then(|key| login::public_blob(&key))
            else {
                continue;
            };
            match keys.iter_mut().find(|(b, _, _)| *b == blob) {
                Some((_, _, names)) => names.push(name),
                None => {
                    let Ok(key) = KeyData::decode(&mut blob.as_slice()) else {
                        continue;
                    };
                    keys.push((blob, key, vec![name]));
                }
            }
        }
        keys.into_iter()
            .map(|(_, pubkey, names)| Identity {
                pubkey,
                comment: format!("tether:{}", names.join(",")),
            })
            .collect()
    }

    /// The private key of `profile`, opened from the store.
    fn profile_key(&self, profile: &str) -> Option<russh::keys::PrivateKey> {
        let credential = self.app.store.credential(profile).ok()?;
        russh::keys::decode_secret_key(credential.key()?, None).ok()
    }

    async fn extension(&mut self, extension: Extension) -> Response {
        let bind = match extension.parse_message::<SessionBind>() {
            Ok(Some(bind)) => bind,
            // Not an extension tether knows: OpenSSH's agent answers so.
            Ok(None) => return Response::Failure,
            Err(error) => {
                self.refuse_request("an unreadable session bind", &error.to_string())
                    .await;
                return Response::Failure;
            }
        };
        if self.binds.len() >= MAX_BINDS {
            self.refuse_request("a session bind", "the connection is bound to 16 sessions")
                .await;
            return Response::Failure;
        }
        if bind.verify_signature().is_err() {
            self.refuse_request(
                "a session bind",
                &format!(
                    "the signature by host key {} over the session does not verify",
                    fingerprint(&bind.host_key)
                ),
            )
            .await;
            return Response::Failure;
        }
        self.binds.push(Bind {
            host_key: bind.host_key,
            session_id: bind.session_id,
            forwarding: bind.is_forwarding,
        });
        Response::Success
    }

    async fn sign(&mut self, request: SignRequest) -> Response {
        match self.decide(&request).await {
            Ok(signature) => Response::SignResponse(signature),
            Err(refusal) => {
                tracing::warn!(
                    uid = self.caller.uid,
                    program = ?self.caller.exe,
                    profile = refusal.profile.as_deref().unwrap_or("-"),
                    host_key = refusal.host_key.as_deref().unwrap_or("-"),
                    "agent signature refused: {}",
                    refusal.reason
                );
                let mut event = Event::new(&self.caller, "agent.sign")
                    .result(refusal.code)
                    .detail("key", fingerprint(&request.pubkey))
                    .detail("reason", refusal.reason);
                if let Some(profile) = &refusal.profile {
                    event = event.profile(profile);
                }
                if let Some(host_key) = refusal.host_key {
                    event = event.detail("host_key", host_key);
                }
                self.app.audit.record_spare(&self.app.store, event).await;
                Response::Failure
            }
        }
    }

    /// The signature `request` asks for, or why not.
    async fn decide(&self, request: &SignRequest) -> Result<Signature, Refusal> {
        let Some(bind) = self.binds.last() else {
            return Err(Refusal::new(
                "no session bind: tether's agent signs only logins by ssh 8.9 or later, which \
                 names the server (not ssh-keygen -Y sign, not older clients)",
            ));
        };
        let host_key = fingerprint(&bind.host_key);
        let refusal = |reason: &str| Refusal::new(reason).toward(&host_key);
        if bind.forwarding {
            return Err(refusal(
                "the connection is bound to a session for forwarding, not for a login",
            ));
        }
        let forwarded = self.binds.iter().any(|b| b.forwarding);
        let login = login::parse_login(&request.data).map_err(refusal)?;
        self.check_login(&login, bind, &blob(&request.pubkey))
            .map_err(refusal)?;
        let key = fingerprint(&request.pubkey);
        let profile = self.profile_for(&key, &host_key, &login.user, forwarded)?;
        let event = Event::new(&self.caller, "agent.sign")
            .profile(&profile)
            .result("ok")
            .detail("key", key.as_str())
            .detail("host_key", host_key.as_str())
            .detail("user", login.user.as_str())
            .detail("forwarded", forwarded);
        // On the trail before the key is used; if it cannot be, no signature.
        self.app.record(event).await.map_err(|error| {
            refusal(&error.to_string())
                .on(&profile)
                .code(error.code().as_str())
        })?;
        let signed = self
            .profile_key(&profile)
            .ok_or("the profile's key could not be opened")
            .and_then(|key| login::sign(&key, &request.data, request.flags))
            .and_then(|bytes| {
                Signature::decode(&mut bytes.as_slice()).map_err(|_| "the key could not sign")
            });
        let signature = signed.map_err(|why| refusal(why).on(&profile).code("sign_failed"))?;
        tracing::info!(
            uid = self.caller.uid,
            %profile,
            host_key = %host_key,
            user = %login.user,
            "agent signed a login"
        );
        Ok(signature)
    }

    /// The login is for the bound session, with the requested key, and (if
    /// host-bound) to the bound server.
    fn check_login(&self, login: &Login, bind: &Bind, key: &[u8]) -> Result<(), &'static str> {
        if login.session_id != bind.session_id {
            return Err("the login is for another session than the one bound");
        }
        if login.key != key {
            return Err("the login offers another key than the one to sign with");
        }
        if let Some(host_key) = &login.host_key {
            if *host_key != blob(&bind.host_key) {
                return Err("the login names another server than the session bound");
            }
        }
        Ok(())
    }

    /// The profile of the caller's that has the key `key`, pins the host key
    /// `host_key` and logs in as `user`, and whose grant allows the
    /// signature; or why there is none.
    fn profile_for(
        &self,
        key: &str,
        host_key: &str,
        user: &str,
        forwarded: bool,
    ) -> Result<String, Refusal> {
        let refusal = |reason: String| Refusal::new(reason).toward(host_key);
        let profiles = self
            .app
            .store
            .profiles()
            .map_err(|e| refusal(e.to_string()).code("store_error"))?;
        let with_key: Vec<_> = profiles
            .into_iter()
            .filter_map(|(name, record)| Some((name, record.ok()?)))
            .filter(|(_, record)| {
                record.protocol == Protocol::Ssh
                    && record
                        .public_key
                        .as_ref()
                        .is_some_and(|k| k.fingerprint == key)
            })
            .filter(|(name, _)| self.may_see(name))
            .collect();
        if with_key.is_empty() {
            return Err(refusal(format!(
                "no profile of uid {}'s has the key {key}",
                self.caller.uid
            )));
        }
        let toward: Vec<_> = with_key
            .iter()
            .filter(|(name, _)| {
                self.app
                    .store
                    .host_keys(name)
                    .is_ok_and(|pins| pins.iter().any(|pin| pin.fingerprint == host_key))
            })
            .collect();
        if toward.is_empty() {
            return Err(refusal(format!(
                "the server's host key {host_key} is pinned for none of the profiles with this \
                 key ({})",
                joined(with_key.iter().map(|(name, _)| name.clone()))
            ))
            .code("host_key_mismatch"));
        }
        let as_user: Vec<_> = toward
            .iter()
            .filter(|(_, record)| record.user == user)
            .collect();
        if as_user.is_empty() {
            return Err(refusal(format!(
                "the login is for user {user:?}, and {} log in as {}",
                joined(toward.iter().map(|(name, _)| name.clone())),
                joined(
                    toward
                        .iter()
                        .map(|(_, record)| format!("{:?}", record.user))
                )
            ))
            .on(&toward[0].0));
        }
        // The first profile whose grant allows it; else the first refusal.
        let mut refused = None;
        for (name, _) in as_user {
            match self
                .app
                .authorize(&self.caller, name, Op::Agent { forwarded })
            {
                Ok(_) => return Ok(name.clone()),
                Err(error) => {
                    refused.get_or_insert_with(|| {
                        refusal(error.to_string())
                            .on(name)
                            .code(error.code().as_str())
                    });
                }
            }
        }
        Err(refused.unwrap_or_else(|| refusal("no grant allows it".into())))
    }

    /// Whether the caller has any grant on `profile` (so naming it leaks
    /// nothing).
    fn may_see(&self, profile: &str) -> bool {
        self.caller.admin
            || policy::grants_for(&self.app.store, &self.caller, profile)
                .is_ok_and(|grants| !grants.is_empty())
    }
}
