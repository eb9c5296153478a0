//! Logging in as a profile says, outside the pool: to verify what is about
//! to be stored, or to install a key; and the profile's record and target.

use super::*;

/// Loads a profile, turning "absent" into `profile_not_found`.
pub fn load(app: &App, name: &str) -> Result<ProfileRecord, Error> {
    check_name(name)?;
    app.store
        .profile(name)?
        .ok_or_else(|| Error::ProfileNotFound(name.to_owned()))
}

/// Everything the pool needs to reach a profile's server.
pub fn target(app: &App, name: &str) -> Result<Target, Error> {
    let record = load(app, name)?;
    let pins = app
        .store
        .host_keys(name)?
        .into_iter()
        .map(|pin| pin.fingerprint)
        .collect();
    Ok(Target {
        profile: name.to_owned(),
        settings: ConnectSettings::new(&app.config().ssh, Some(&record)),
        host: record.host,
        port: record.port,
        user: record.user,
        certificate: record.certificate,
        pins,
    })
}

/// What a verifying login saw.
pub(in crate::server) struct Verified {
    pub host_key: KeyInfo,
    pub banner: Option<String>,
}

/// Connects once as `record` says, accepting the host key as `trust` says,
/// and logs in with the credential `source` names, on record as a
/// `purpose` connection (not pooled: the caller hangs up).
pub(in crate::server) async fn login(
    app: &App,
    caller: &Caller,
    name: &str,
    record: &ProfileRecord,
    trust: Trust,
    source: Source<'_>,
    purpose: &'static str,
) -> Result<client::Connected, Error> {
    let settings = ConnectSettings::new(&app.config().ssh, Some(record));
    let recorder = Recorder {
        app,
        caller,
        profile: name,
        purpose,
        source,
    };
    client::login(
        client::Account {
            host: &record.host,
            port: record.port,
            user: &record.user,
            certificate: record.certificate.as_deref(),
        },
        trust,
        &settings,
        None,
        &recorder,
    )
    .await
    .map_err(|e| e.in_profile(name))
}

/// [`login()`] as a `verify` connection, then hangs up.
pub(in crate::server) async fn verify(
    app: &App,
    caller: &Caller,
    name: &str,
    record: &ProfileRecord,
    trust: Trust,
    source: Source<'_>,
) -> Result<Verified, Error> {
    let connected = login(app, caller, name, record, trust, source, "verify").await?;
    client::hang_up(&connected).await;
    Ok(Verified {
        host_key: connected.host_key.clone(),
        banner: connected.banner(),
    })
}
