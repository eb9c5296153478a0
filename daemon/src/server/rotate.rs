//! `POST /v1/profiles/{name}/rotate`: a new ed25519 key, made inside the
//! daemon, installed on the profile's server over its live connection.
//!
//! The order keeps the old key working until the new one is proved and
//! stored: the new key's line is added to the login's authorized_keys
//! (with the old line's options, so its restrictions stay); a fresh
//! connection must log in with the new key; the new key is stored; only
//! then is the old key's line removed. A failure before the store puts the
//! file back as it was and changes nothing; a failure to remove the old
//! line afterwards is said, with the line left in place.
//!
//! `profile add --generate-key` installs a made key the same way, over a
//! connection of its own logged in with the credential given once.

use ::http::StatusCode;
use tether_api::types::{AuthKind, HostKeyInfo, RotateRequest, RotateResult};

use super::App;
use super::channel::Source;
use super::files::session;
use super::http::{Resp, json};
use super::profiles::{Proof, Verified, verify};
use crate::access::Caller;
use crate::audit::Event;
use crate::error::Error;
use crate::ssh::client::Trust;
use crate::ssh::sftp::Sftp;
use crate::ssh::{authorized, keys};
use crate::store::{Credential, KeyInfo, now};

/// The authorized_keys file sshd reads by default, from the login's home.
const DEFAULT_FILE: &str = ".ssh/authorized_keys";
/// A larger authorized_keys file is not one tether edits.
const MAX_FILE: usize = 1 << 20;

fn shown(key: &KeyInfo) -> HostKeyInfo {
    HostKeyInfo {
        algorithm: key.algorithm.clone(),
        fingerprint: key.fingerprint.clone(),
    }
}

pub async fn rotate(
    app: &App,
    caller: &Caller,
    name: &str,
    request: RotateRequest,
) -> Result<Resp, Error> {
    app.authorize(caller, name, crate::access::policy::Op::Manage)?;
    let start = Event::new(caller, "profile.rotate")
        .profile(name)
        .detail("dry_run", request.dry_run)
        .detail("to_key", request.to_key);
    app.audited(start, rotated(app, caller, name, request))
        .await
}

async fn rotated(
    app: &App,
    caller: &Caller,
    name: &str,
    request: RotateRequest,
) -> Result<Resp, Error> {
    let path = request
        .authorized_keys
        .clone()
        .unwrap_or_else(|| DEFAULT_FILE.to_owned());
    crate::remote::check_path(&path)?;
    let mut record = super::profiles::load(app, name)?;
    super::profiles::require_ssh(name, &record)?;
    let old = app.store.credential(name)?;
    let (old_key, password) = match &old {
        Credential::PrivateKey(pem) => (Some(pem.clone()), None),
        Credential::KeyAndPassword { key, password } => (Some(key.clone()), Some(password.clone())),
        Credential::Password(_) if request.to_key => (None, None),
        Credential::Password(_) => {
            return Err(Error::BadRequest(format!(
                "{name} logs in with a password: `tether profile rotate {name} --to-key` moves it \
                 to a key made inside tetherd"
            )));
        }
    };
    drop(old);
    let old_public = match &old_key {
        Some(pem) => Some(keys::public_line_of(pem, "")?),
        None => None,
    };
    let old_blob = old_public
        .as_deref()
        .and_then(authorized::key_of)
        .map(|(_, blob)| blob);
    refuse_shared_key(app, name, record.public_key.as_ref())?;

    let (new_key, new_line) = keys::generate(&format!("tether:{name}"))?;
    let (new_type, new_blob) = authorized::key_of(&new_line)
        .ok_or_else(|| Error::Internal("a generated key without a key line".into()))?;
    let session = session(app, caller, name).await?;
    let sftp = &session.sftp;
    let mode = sftp
        .stat_attrs(&path)
        .await
        .ok()
        .and_then(|attrs| attrs.permissions)
        .map_or(0o600, |mode| mode & 0o7777);
    let before = String::from_utf8(sftp.read_small(&path, MAX_FILE).await?).map_err(|_| {
        Error::BadRequest(format!(
            "{path} on the server is not text: not an authorized_keys file"
        ))
    })?;
    let with_new = authorized::with_new_key(
        &before,
        old_blob.as_deref(),
        &format!("{new_type} {new_blob}"),
        &format!("tether:{name}"),
    )
    .map_err(|_| {
        Error::BadRequest(format!(
            "the profile's key is not in {path} on the server (it may be in another file: give \
             --authorized-keys PATH, as AuthorizedKeysFile says); nothing was changed"
        ))
    })?;
    let mut result = RotateResult {
        dry_run: request.dry_run,
        authorized_keys: path.clone(),
        old_key: record.public_key.as_ref().map(shown),
        new_key: shown(&new_key.public),
        authorized_line: new_line.clone(),
        old_line_removed: false,
        warning: None,
    };
    if request.dry_run {
        return Ok(json(StatusCode::OK, &result));
    }

    sftp.replace_small(&path, with_new.as_bytes(), mode).await?;
    let new_credential = match password {
        Some(password) => Credential::KeyAndPassword {
            key: new_key.openssh.clone(),
            password,
        },
        None => Credential::PrivateKey(new_key.openssh.clone()),
    };
    // The new key must log in on a fresh connection before it is kept.
    let pins = app.store.host_keys(name)?;
    let trust = Trust::Pinned(pins.iter().map(|p| p.fingerprint.clone()).collect());
    let proved: Result<Verified, Error> = verify(
        app,
        caller,
        name,
        &record,
        Proof::Ssh(trust),
        Source::Given(&new_credential),
    )
    .await;
    if let Err(error) = proved {
        put_back(sftp, &path, &before, mode).await;
        return Err(error);
    }
    record.public_key = Some(new_key.public.clone());
    record.auth = match record.auth {
        AuthKind::KeyAndPassword => AuthKind::KeyAndPassword,
        _ => AuthKind::Key,
    };
    record.updated_at = now();
    if let Err(error) = app
        .store
        .update_profile(name, &record, Some(&new_credential), &pins)
        .await
    {
        put_back(sftp, &path, &before, mode).await;
        return Err(error.into());
    }
    drop(new_credential);
    app.retire(name).await;

    match &old_blob {
        Some(blob) => {
            let without = authorized::without_key(&with_new, blob);
            match sftp.replace_small(&path, without.as_bytes(), mode).await {
                Ok(()) => result.old_line_removed = true,
                Err(error) => {
                    result.warning = Some(format!(
                        "the new key is in use, but the old key's line could not be removed from \
                         {path}: {error}; remove the line of {} by hand",
                        record_old_fingerprint(&result)
                    ));
                }
            }
        }
        None => result.old_line_removed = true,
    }
    app.record_after(
        Event::new(caller, "profile.rotated")
            .profile(name)
            .detail("new_key", new_key.public.fingerprint.as_str())
            .detail("old_line_removed", result.old_line_removed),
    )
    .await;
    tracing::info!(profile = %name, new = %new_key.public.fingerprint, "key rotated");
    Ok(json(StatusCode::OK, &result))
}

fn record_old_fingerprint(result: &RotateResult) -> String {
    result
        .old_key
        .as_ref()
        .map(|k| k.fingerprint.clone())
        .unwrap_or_default()
}

/// Puts the authorized_keys file back as it was; a failure is logged (the
/// old key still works either way: its line was never removed).
async fn put_back(sftp: &Sftp, path: &str, before: &str, mode: u32) {
    if let Err(error) = sftp.replace_small(path, before.as_bytes(), mode).await {
        tracing::warn!(%path, %error, "cannot take the new key's line out again");
    }
}

/// Profiles that hold the same key would lose their way in when its line
/// is removed: rotating one of them alone is refused, naming them.
fn refuse_shared_key(app: &App, name: &str, key: Option<&KeyInfo>) -> Result<(), Error> {
    let Some(key) = key else { return Ok(()) };
    let sharing: Vec<String> = app
        .store
        .profiles()?
        .into_iter()
        .filter(|(other, record)| {
            other != name
                && record
                    .as_ref()
                    .is_ok_and(|r| r.public_key.as_ref() == Some(key))
        })
        .map(|(other, _)| other)
        .collect();
    if sharing.is_empty() {
        return Ok(());
    }
    Err(Error::BadRequest(format!(
        "profiles {} hold the same key as {name}: removing its line would lock them out too; \
         give each its own key first (tether profile set NAME --key-file ...), then rotate; \
         nothing was changed",
        sharing.join(", ")
    )))
}

/// `profile add --generate-key`: logs in with `bootstrap` (given, never
/// stored), appends a key made here to the login's authorized_keys, and
/// proves it on a fresh connection. The key, and its public half; on a
/// failure the line is taken out again and nothing is kept.
pub(super) async fn install_generated(
    app: &App,
    caller: &Caller,
    name: &str,
    record: &crate::store::ProfileRecord,
    pins: &[String],
    bootstrap: &Credential,
    path: Option<&str>,
) -> Result<(Credential, KeyInfo), Error> {
    let path = path.unwrap_or(DEFAULT_FILE).to_owned();
    crate::remote::check_path(&path)?;
    let (key, line) = keys::generate(&format!("tether:{name}"))?;
    let (key_type, blob) = authorized::key_of(&line)
        .ok_or_else(|| Error::Internal("a generated key without a key line".into()))?;
    let trust = || Trust::Pinned(pins.to_vec());
    let bootstrap_login = || {
        super::profiles::login(
            app,
            caller,
            name,
            record,
            trust(),
            Source::Given(bootstrap),
            "install",
        )
    };
    // Appended over the bootstrap login.
    let (before, mode) = {
        let connected = bootstrap_login().await?;
        let sftp = direct_sftp(app, &connected).await?;
        let read = existing_file(&sftp, &path).await;
        let appended = match &read {
            Ok((before, mode)) => {
                let with_new = authorized::with_new_key(
                    before,
                    None,
                    &format!("{key_type} {blob}"),
                    &format!("tether:{name}"),
                )
                .unwrap_or_default();
                sftp.replace_small(&path, with_new.as_bytes(), *mode)
                    .await
                    .map_err(Error::from)
            }
            Err(_) => Ok(()),
        };
        crate::ssh::client::hang_up(&connected).await;
        let (before, mode) = read?;
        appended?;
        (before, mode)
    };
    let credential = Credential::PrivateKey(key.openssh.clone());
    let proved = verify(
        app,
        caller,
        name,
        record,
        Proof::Ssh(trust()),
        Source::Given(&credential),
    )
    .await;
    if let Err(error) = proved {
        // Taken out again over the bootstrap login.
        if let Ok(connected) = bootstrap_login().await {
            if let Ok(sftp) = direct_sftp(app, &connected).await {
                put_back(&sftp, &path, &before, mode).await;
            }
            crate::ssh::client::hang_up(&connected).await;
        }
        return Err(error);
    }
    Ok((credential, key.public))
}

/// An SFTP session on a connection of its own.
async fn direct_sftp(app: &App, connected: &crate::ssh::client::Connected) -> Result<Sftp, Error> {
    let channel = connected
        .handle
        .channel_open_session()
        .await
        .map_err(|e| crate::ssh::SshError::from_russh(&connected.addr, e))?;
    let ssh = &app.config().ssh;
    let timeout = std::time::Duration::from_secs(ssh.sftp_timeout_secs);
    let reply_wait = (std::time::Duration::from_secs(ssh.connect_timeout_secs) / 2)
        .max(std::time::Duration::from_secs(1));
    Ok(crate::ssh::sftp::open(channel, &connected.addr, reply_wait, timeout).await?)
}

/// An authorized_keys file's text and mode; a missing one is empty (its
/// directory made, owner-only, as sshd wants it).
async fn existing_file(sftp: &Sftp, path: &str) -> Result<(String, u32), Error> {
    match sftp.stat_attrs(path).await {
        Ok(attrs) => {
            let mode = attrs.permissions.map_or(0o600, |mode| mode & 0o7777);
            let bytes = sftp.read_small(path, MAX_FILE).await?;
            let text = String::from_utf8(bytes)
                .map_err(|_| Error::BadRequest(format!("{path} on the server is not text")))?;
            Ok((text, mode))
        }
        Err(error) if error.kind == crate::remote::RemoteKind::NoSuchFile => {
            let parent = crate::remote::parent(path);
            if parent != "." && parent != "/" {
                sftp.mkdir(parent, true, Some(0o700)).await?;
            }
            Ok((String::new(), 0o600))
        }
        Err(error) => Err(error.into()),
    }
}
