//! Profiles: list, show, add, remove, and the host-key probe that lets the
//! CLI ask a person before trusting a new server.
//!
//! `add` connects once: it pins the host key the caller consented to and
//! proves the credential authenticates. Nothing is stored unless both hold.
//!
//! A stored secret is bound to its destination: host, port, user and pinned
//! host key. `set` may change any of them only with a new credential in the
//! same request, or when root asks; otherwise it is refused before any
//! connection is made, so the stored secret never reaches a destination it
//! was not stored for. `--accept-new` pins a key only where none is pinned
//! for that address (as OpenSSH's `accept-new`): a changed key needs
//! `tether profile trust`.

use ::http::StatusCode;
use tether_api::types::{
    AddProfile, AuthKind, HostKeyInfo, HostKeyPolicy, NewCredential, ProbeHostKey, ProfileInfo,
    ProfileList, UpdateProfile, validate_profile_name,
};
use zeroize::Zeroizing;

use super::App;
use super::channel::{Recorder, Source};
use super::http::{Resp, empty, json};
use crate::access::Caller;
use crate::access::policy::Op;
use crate::audit::Event;
use crate::error::Error;
use crate::ssh::SshError;
use crate::ssh::client::{self, ConnectSettings, Trust};
use crate::ssh::pool::Target;
use crate::ssh::{hostkey, keys};
use crate::store::{Credential, KeyInfo, PinnedHostKey, ProfileRecord, StoreError, TlsCa, now};

mod input;
mod login;

pub use input::check_name;
use input::{
    Checked, check_port, check_protocol, check_secs, check_user, new_credential, not_as_given,
    proof_for,
};
pub(in crate::server) use input::{Proof, check_host};
pub(in crate::server) use login::{Verified, ftp_target, load, login, require_ssh, target, verify};

pub(super) fn info(name: &str, record: ProfileRecord, pins: Vec<PinnedHostKey>) -> ProfileInfo {
    let key_info = |k: KeyInfo| HostKeyInfo {
        algorithm: k.algorithm,
        fingerprint: k.fingerprint,
    };
    ProfileInfo {
        name: name.to_owned(),
        protocol: record.protocol,
        ca: record.tls_ca.as_ref().map(|ca| {
            match ca {
                TlsCa::System => "system",
                TlsCa::Pem(_) => "file",
            }
            .to_owned()
        }),
        host: record.host,
        port: record.port,
        user: record.user,
        auth: record.auth,
        public_key: record.public_key.map(key_info),
        certificate: record
            .certificate
            .as_deref()
            .and_then(keys::certificate_info),
        host_keys: pins
            .into_iter()
            .map(|pin| HostKeyInfo {
                algorithm: pin.algorithm,
                fingerprint: pin.fingerprint,
            })
            .collect(),
        connect_timeout_secs: record.connect_timeout_secs,
        keepalive_secs: record.keepalive_secs,
        jump: record.jump,
        banner: None,
        created_at: record.created_at,
        updated_at: record.updated_at,
    }
}

/// The profiles the caller may see (all, for root).
pub fn list(app: &App, caller: &Caller) -> Result<Resp, Error> {
    let mut profiles = Vec::new();
    let mut corrupt = Vec::new();
    for (name, record) in app.store.profiles()? {
        if app.authorize(caller, &name, Op::View).is_err() {
            continue;
        }
        match record.and_then(|record| Ok((record, app.store.host_keys(&name)?))) {
            Ok((record, pins)) => profiles.push(info(&name, record, pins)),
            Err(StoreError::Corrupt { .. }) => corrupt.push(name),
            Err(other) => return Err(other.into()),
        }
    }
    Ok(json(StatusCode::OK, &ProfileList { profiles, corrupt }))
}

pub fn show(app: &App, caller: &Caller, name: &str) -> Result<Resp, Error> {
    app.authorize(caller, name, Op::View)?;
    let record = load(app, name)?;
    let pins = app.store.host_keys(name)?;
    Ok(json(StatusCode::OK, &info(name, record, pins)))
}

/// `GET /v1/profiles/{name}/public-key`: the key's public half as an
/// authorized_keys line, for installing it on another server. Public data,
/// but derived from the stored private key: nothing is sent anywhere.
pub fn public_key(app: &App, caller: &Caller, name: &str) -> Result<Resp, Error> {
    app.authorize(caller, name, Op::View)?;
    require_ssh(name, &load(app, name)?)?;
    let pem = match app.store.credential(name)? {
        Credential::PrivateKey(pem) | Credential::KeyAndPassword { key: pem, .. } => pem,
        Credential::Password(_) => {
            return Err(Error::BadRequest(format!(
                "{name} logs in with a password and has no key: `tether profile rotate {name} \
                 --to-key` gives it one"
            )));
        }
    };
    let line = keys::public_line_of(&pem, &format!("tether:{name}"))?;
    Ok(json(
        StatusCode::OK,
        &tether_api::types::PublicKey {
            authorized_key: line,
        },
    ))
}

pub async fn remove(app: &App, caller: &Caller, name: &str) -> Result<Resp, Error> {
    app.admin_only(caller, "remove profiles")?;
    app.audited(Event::new(caller, "profile.remove").profile(name), async {
        check_name(name)?;
        let through = jumping_through(app, name)?;
        if !through.is_empty() {
            return Err(Error::BadRequest(format!(
                "{} {} through {name}: remove {} first, or give {} another jump with \
                 `tether profile set NAME --jump PROFILE` (or --no-jump); nothing was removed",
                through.join(", "),
                if through.len() == 1 { "jumps" } else { "jump" },
                if through.len() == 1 { "it" } else { "them" },
                if through.len() == 1 { "it" } else { "them" },
            )));
        }
        if !app.store.remove_profile(name).await? {
            return Err(Error::ProfileNotFound(name.to_owned()));
        }
        app.retire(name).await;
        tracing::info!(profile = name, "profile removed");
        Ok(empty(StatusCode::NO_CONTENT))
    })
    .await
}

/// `POST /v1/hostkeys/probe`: the host key a server shows, for a person to
/// check before trusting it.
pub async fn probe(app: &App, caller: &Caller, probe: ProbeHostKey) -> Result<Resp, Error> {
    app.admin_only(caller, "probe hosts")?;
    app.audited(
        Event::new(caller, "hostkey.probe"),
        probed(app, caller, probe),
    )
    .await
}

async fn probed(app: &App, caller: &Caller, probe: ProbeHostKey) -> Result<Resp, Error> {
    check_host(&probe.host)?;
    let settings = ConnectSettings::new(&app.config().ssh, None);
    if probe.protocol.is_ftp() {
        if !probe.protocol.uses_tls() {
            return Err(Error::BadRequest(
                "plain FTP has no certificate to show: nothing proves the server".into(),
            ));
        }
        let timeouts = crate::ftp::client::Timeouts {
            connect: settings.connect_timeout,
            reply: std::time::Duration::from_secs(app.config().ftp.reply_timeout_secs),
        };
        let shown =
            crate::ftp::client::probe(probe.protocol, &probe.host, probe.port, timeouts).await?;
        return Ok(json(
            StatusCode::OK,
            &HostKeyInfo {
                algorithm: shown.algorithm,
                fingerprint: shown.fingerprint,
            },
        ));
    }
    let via = match &probe.jump {
        Some(jump) => {
            let target = login::jump_target(app, jump, &mut Vec::new())?;
            let recorder = Recorder::pooled(app, caller, jump);
            Some(login::through(app, &target, &probe.host, probe.port, &recorder).await?)
        }
        None => None,
    };
    let connected =
        client::connect(&probe.host, probe.port, Trust::AcceptAny, &settings, via).await?;
    let key = connected.host_key.clone();
    client::hang_up(&connected).await;
    Ok(json(
        StatusCode::OK,
        &HostKeyInfo {
            algorithm: key.algorithm,
            fingerprint: key.fingerprint,
        },
    ))
}

pub async fn add(app: &App, caller: &Caller, add: AddProfile) -> Result<Resp, Error> {
    app.admin_only(caller, "add profiles")?;
    check_name(&add.name)?;
    check_host(&add.host)?;
    check_user(&add.user)?;
    let port = add.port.unwrap_or(add.protocol.default_port());
    check_port(port)?;
    if app.store.profile(&add.name)?.is_some() {
        return Err(StoreError::Exists(add.name).into());
    }
    let checked = new_credential(&add.credential)?;
    drop(add.credential);
    check_protocol(add.protocol, add.allow_plaintext, &checked)?;
    if add.protocol.is_ftp() && add.generate_key {
        return Err(Error::BadRequest(
            "--generate-key installs an SSH key; an FTP profile logs in with a password".into(),
        ));
    }
    let Checked {
        credential,
        auth,
        public_key,
        certificate,
    } = checked;
    let generate = add.generate_key.then(|| add.authorized_keys.clone());
    if let Some(jump) = &add.jump {
        check_jump(app, caller, &add.name, add.protocol, jump)?;
    }
    let proof = proof_for(add.protocol, &add.host_key)?;
    let policy = add.host_key.clone();
    let at = now();
    let record = ProfileRecord {
        protocol: add.protocol,
        tls_ca: match &proof {
            Proof::Ftp(crate::ftp::tls::Trust::Authorities(ca)) => Some(ca.clone()),
            _ => None,
        },
        host: add.host,
        port,
        user: add.user,
        auth,
        public_key,
        created_at: at,
        updated_at: at,
        connect_timeout_secs: check_secs("connect_timeout_secs", add.connect_timeout_secs)?,
        keepalive_secs: check_secs("keepalive_secs", add.keepalive_secs)?,
        certificate,
        jump: add.jump,
    };
    // On record before the credential is first used.
    let start = Event::new(caller, "profile.add")
        .profile(&add.name)
        .detail("protocol", record.protocol.as_str())
        .detail("host", record.host.as_str())
        .detail("port", record.port)
        .detail("user", record.user.as_str())
        .detail("auth", format!("{auth:?}").to_lowercase())
        .detail("generate_key", generate.is_some())
        .detail("jump", record.jump.as_deref());
    app.audited(
        start,
        add_checked(app, caller, add.name, record, credential, proof, generate),
    )
    .await
    .map_err(|e| not_as_given(e, &policy))
}

async fn add_checked(
    app: &App,
    caller: &Caller,
    name: String,
    mut record: ProfileRecord,
    mut credential: Credential,
    proof: Proof,
    generate: Option<Option<String>>,
) -> Result<Resp, Error> {
    let at = record.created_at;
    let Verified { host_key, banner } = verify(
        app,
        caller,
        &name,
        &record,
        proof,
        Source::Given(&credential),
    )
    .await?;
    // A certificate checked against authorities is not pinned.
    let pins = pins_of(host_key.filter(|_| record.tls_ca.is_none()), at);
    if let Some(path) = generate {
        // The given credential only opens the door for a key made here;
        // the profile keeps that key alone.
        let fingerprints: Vec<String> = pins.iter().map(|p| p.fingerprint.clone()).collect();
        let (made, public) = super::rotate::install_generated(
            app,
            caller,
            &name,
            &record,
            &fingerprints,
            &credential,
            path.as_deref(),
        )
        .await?;
        credential = made;
        record.auth = AuthKind::Key;
        record.public_key = Some(public);
        record.certificate = None;
    }
    app.store
        .add_profile(&name, &record, &credential, &pins)
        .await?;
    tracing::info!(profile = %name, host = %record.host, port = record.port, user = %record.user, "profile added");
    let info = ProfileInfo {
        banner,
        ..info(&name, record, pins)
    };
    Ok(json(StatusCode::CREATED, &info))
}

/// Refuses a jump host for `name` that is not an SSH profile the caller
/// may use, or whose own way leads back to `name`.
fn check_jump(
    app: &App,
    caller: &Caller,
    name: &str,
    protocol: tether_api::types::Protocol,
    jump: &str,
) -> Result<(), Error> {
    if !protocol.is_ssh() {
        return Err(Error::BadRequest(format!(
            "{name} is an {protocol} profile: FTP does not go through jump hosts"
        )));
    }
    check_name(jump)?;
    // Setting a jump sends the jump's credential on the profile's behalf
    // from now on: only someone who may change the jump profile decides
    // that.
    app.authorize(caller, jump, Op::Manage)
        .map_err(|error| match error {
            Error::ProfileNotFound(_) => Error::BadRequest(format!(
                "no profile named {jump:?} to jump through; `tether profile list` shows them"
            )),
            other => other,
        })?;
    login::jump_target(app, jump, &mut vec![name.to_owned()]).map(drop)
}

/// The profiles that reach their server through `name`.
fn jumping_through(app: &App, name: &str) -> Result<Vec<String>, Error> {
    Ok(app
        .store
        .profiles()?
        .into_iter()
        .filter_map(|(profile, record)| {
            record
                .ok()
                .filter(|r| r.jump.as_deref() == Some(name))
                .map(|_| profile)
        })
        .collect())
}

/// What a verifying login proved, as pins.
fn pins_of(proved: Option<KeyInfo>, at: u64) -> Vec<PinnedHostKey> {
    proved
        .map(|key| PinnedHostKey {
            algorithm: key.algorithm,
            fingerprint: key.fingerprint,
            added_at: at,
        })
        .into_iter()
        .collect()
}

/// `PATCH /v1/profiles/{name}`: change fields, rotate the secret, or re-pin
/// the host key. The result is verified by logging in before anything is
/// stored; the profile's pooled connections are retired afterwards.
pub async fn update(
    app: &App,
    caller: &Caller,
    name: &str,
    update: UpdateProfile,
) -> Result<Resp, Error> {
    app.authorize(caller, name, Op::Manage)?;
    // Which fields change, never the secret itself.
    let changed: Vec<&str> = [
        ("host", update.host.is_some()),
        ("port", update.port.is_some()),
        ("user", update.user.is_some()),
        ("secret", update.credential.is_some()),
        ("host_key", update.host_key.is_some()),
        (
            "connect_timeout_secs",
            update.connect_timeout_secs.is_some(),
        ),
        ("keepalive_secs", update.keepalive_secs.is_some()),
        ("jump", update.jump.is_some()),
    ]
    .into_iter()
    .filter_map(|(field, set)| set.then_some(field))
    .collect();
    let start = Event::new(caller, "profile.update")
        .profile(name)
        .detail("changed", changed);
    app.audited(start, apply_update(app, caller, name, update))
        .await
}

async fn apply_update(
    app: &App,
    caller: &Caller,
    name: &str,
    update: UpdateProfile,
) -> Result<Resp, Error> {
    let old = load(app, name)?;
    let mut record = old.clone();
    let old_pins = app.store.host_keys(name)?;
    if let Some(host) = update.host {
        check_host(&host)?;
        record.host = host;
    }
    if let Some(port) = update.port {
        check_port(port)?;
        record.port = port;
    }
    if let Some(user) = update.user {
        check_user(&user)?;
        record.user = user;
    }
    if let Some(secs) = update.connect_timeout_secs {
        record.connect_timeout_secs = check_secs("connect_timeout_secs", Some(secs))?;
    }
    if let Some(secs) = update.keepalive_secs {
        record.keepalive_secs = check_secs("keepalive_secs", Some(secs))?;
    }
    match update.jump.as_deref() {
        Some("") => record.jump = None,
        Some(jump) => {
            check_jump(app, caller, name, record.protocol, jump)?;
            record.jump = Some(jump.to_owned());
        }
        None => {}
    }
    let new_secret = match &update.credential {
        Some(credential) => {
            let checked = new_credential(credential)?;
            // Plain FTP was allowed when the profile was added.
            check_protocol(record.protocol, true, &checked)?;
            record.auth = checked.auth;
            record.public_key = checked.public_key;
            record.certificate = checked.certificate;
            Some(checked.credential)
        }
        None => None,
    };
    drop(update.credential);
    let pinned: Vec<String> = old_pins.iter().map(|pin| pin.fingerprint.clone()).collect();
    let moved = record.host != old.host || record.port != old.port;
    // Which keys the verify connection accepts, and whether what it sees is
    // pinned afterwards.
    let kept = || match (&record.tls_ca, record.protocol.is_ssh()) {
        (_, true) => Proof::Ssh(Trust::Pinned(pinned.clone())),
        (Some(ca), false) => Proof::Ftp(crate::ftp::tls::Trust::Authorities(ca.clone())),
        (None, false) => Proof::Ftp(crate::ftp::tls::Trust::Pinned(pinned.clone())),
    };
    let (proof, repin) = match &update.host_key {
        Some(policy @ (HostKeyPolicy::Pin { .. } | HostKeyPolicy::Ca { .. })) => {
            (proof_for(record.protocol, policy)?, true)
        }
        Some(policy @ HostKeyPolicy::AcceptNew) if moved || pinned.is_empty() => {
            (proof_for(record.protocol, policy)?, true)
        }
        // accept-new never accepts a changed key: the pins stand.
        Some(HostKeyPolicy::AcceptNew) | None => (kept(), false),
    };
    let new_ca = match &proof {
        Proof::Ftp(crate::ftp::tls::Trust::Authorities(ca)) => Some(ca.clone()),
        _ => None,
    };
    let mut rebound: Vec<&str> = Vec::new();
    if record.host != old.host {
        rebound.push("host");
    }
    if record.port != old.port {
        rebound.push("port");
    }
    if record.user != old.user {
        rebound.push("user");
    }
    if repin && (proof.takes_new_key(&pinned) || new_ca != old.tls_ca) {
        rebound.push(if record.protocol.is_ssh() {
            "host key"
        } else {
            "certificate"
        });
    }
    record.tls_ca = new_ca;
    if !rebound.is_empty() && new_secret.is_none() && !caller.admin {
        return Err(Error::Forbidden(format!(
            "changing the {} of {name} changes where its stored secret is sent: give a new \
             credential in the same command (--key-file or --password-stdin), or ask root; \
             nothing was changed and nothing was sent",
            rebound.join(", ")
        )));
    }
    let source = match &new_secret {
        Some(credential) => Source::Given(credential),
        None => Source::Stored,
    };
    let Verified { host_key, banner } = verify(app, caller, name, &record, proof, source)
        .await
        .map_err(|e| match &update.host_key {
            Some(policy) => not_as_given(e, policy),
            None => e,
        })?;

    let at = now();
    record.updated_at = at;
    let pins = if repin {
        pins_of(host_key.filter(|_| record.tls_ca.is_none()), at)
    } else {
        old_pins
    };
    app.store
        .update_profile(name, &record, new_secret.as_ref(), &pins)
        .await?;
    app.retire(name).await;
    tracing::info!(
        profile = %name,
        secret_rotated = new_secret.is_some(),
        host_key_changed = repin,
        "profile changed"
    );
    let info = ProfileInfo {
        banner,
        ..info(name, record, pins)
    };
    Ok(json(StatusCode::OK, &info))
}
