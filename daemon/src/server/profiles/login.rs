//! Logging in as a profile says, outside the pool: to verify what is about
//! to be stored, or to install a key; and the profile's record and target.

use super::*;
use crate::ftp::client::Timeouts;
use crate::ftp::tls::Trust as FtpTrust;
use crate::ssh::pool::Open;

/// Loads a profile, turning "absent" into `profile_not_found`.
pub fn load(app: &App, name: &str) -> Result<ProfileRecord, Error> {
    check_name(name)?;
    app.store
        .profile(name)?
        .ok_or_else(|| Error::ProfileNotFound(name.to_owned()))
}

/// Everything the SSH pool needs to reach a profile's server; an FTP
/// profile has no SSH to offer (`exec`, `shell`, `run`, `rotate`).
pub fn target(app: &App, name: &str) -> Result<Target, Error> {
    let record = load(app, name)?;
    require_ssh(name, &record)?;
    target_of(app, name, record, &mut vec![name.to_owned()])
}

/// Most jump hosts on the way to one server.
pub const MAX_JUMPS: usize = 8;

/// `record`'s target, with its chain of jumps; `chain` holds the profiles
/// already on the way (to refuse a circle).
fn target_of(
    app: &App,
    name: &str,
    record: ProfileRecord,
    chain: &mut Vec<String>,
) -> Result<Target, Error> {
    let pins = pinned(app, name)?;
    let jump = match &record.jump {
        Some(jump) => Some(Box::new(jump_target(app, jump, chain)?)),
        None => None,
    };
    Ok(Target {
        profile: name.to_owned(),
        settings: ConnectSettings::new(&app.config().ssh, Some(&record)),
        host: record.host,
        port: record.port,
        user: record.user,
        certificate: record.certificate,
        pins,
        jump,
    })
}

/// The target of `jump`, reached after the profiles in `chain`: an SSH
/// profile not already on the way.
pub(in crate::server) fn jump_target(
    app: &App,
    jump: &str,
    chain: &mut Vec<String>,
) -> Result<Target, Error> {
    let first = chain.first().cloned().unwrap_or_default();
    if chain.iter().any(|hop| hop == jump) {
        chain.push(jump.to_owned());
        return Err(Error::BadRequest(format!(
            "the jumps of {first} go round in a circle: {}",
            chain.join(" -> ")
        )));
    }
    if chain.len() > MAX_JUMPS {
        return Err(Error::BadRequest(format!(
            "{first} has more than {MAX_JUMPS} jump hosts on its way"
        )));
    }
    chain.push(jump.to_owned());
    check_name(jump)?;
    let record = app.store.profile(jump)?.ok_or_else(|| {
        Error::BadRequest(format!(
            "{first} jumps through {jump:?}, which is not a profile; `tether profile set {first} \
             --jump PROFILE` changes it"
        ))
    })?;
    if !record.protocol.is_ssh() {
        return Err(Error::BadRequest(format!(
            "{jump} is an {} profile: only an SSH profile can be a jump host",
            record.protocol
        )));
    }
    target_of(app, jump, record, chain)
}

/// The way to `record`'s server for a login outside the pool: a channel of
/// its jump host's pooled connection, or `None` to connect directly.
async fn tunnel(
    app: &App,
    name: &str,
    record: &ProfileRecord,
    witness: &Recorder<'_>,
) -> Result<Option<client::Tunnel>, Error> {
    let Some(jump) = &record.jump else {
        return Ok(None);
    };
    let jump = jump_target(app, jump, &mut vec![name.to_owned()])?;
    through(app, &jump, &record.host, record.port, witness)
        .await
        .map(Some)
}

/// A tunnel to `host:port` through `jump`'s pooled connection.
pub(in crate::server) async fn through(
    app: &App,
    jump: &Target,
    host: &str,
    port: u16,
    witness: &Recorder<'_>,
) -> Result<client::Tunnel, Error> {
    let open = Open::Tcp {
        host,
        port,
        from: ("127.0.0.1", 0),
    };
    let (channel, lease) = app
        .pool
        .open(jump, open, witness)
        .await
        .map_err(|e| e.in_profile(&jump.profile))?;
    Ok(client::Tunnel {
        stream: channel.into_stream(),
        jump: jump.profile.clone(),
        lease,
    })
}

/// Refuses what only SSH offers (commands, shells, keys) on an FTP
/// profile.
pub fn require_ssh(name: &str, record: &ProfileRecord) -> Result<(), Error> {
    if record.protocol.is_ssh() {
        return Ok(());
    }
    Err(Error::NotSupported(format!(
        "{name} is an {} profile: it offers files and transfers (`tether cp`, `tether files`), \
         not commands, shells or keys",
        record.protocol
    )))
}

/// The fingerprints pinned for `name`.
fn pinned(app: &App, name: &str) -> Result<Vec<String>, Error> {
    Ok(app
        .store
        .host_keys(name)?
        .into_iter()
        .map(|pin| pin.fingerprint)
        .collect())
}

/// Everything the FTP pool needs to reach a profile's server.
pub fn ftp_target(app: &App, name: &str) -> Result<crate::ftp::pool::Target, Error> {
    let record = load(app, name)?;
    if record.protocol.is_ssh() {
        return Err(Error::Internal(format!("{name} is not an FTP profile")));
    }
    let pins = pinned(app, name)?;
    let config = app.config();
    let settings = ConnectSettings::new(&config.ssh, Some(&record));
    Ok(crate::ftp::pool::Target {
        profile: name.to_owned(),
        trust: ftp_trust(&record, pins),
        timeouts: ftp_timeouts(app, &record),
        keepalive: settings.keepalive,
        max_connections: config.ftp.max_connections,
        protocol: record.protocol,
        host: record.host,
        port: record.port,
        user: record.user,
    })
}

/// How an FTP profile's server is trusted: by its CA setting, or its pins.
pub(in crate::server) fn ftp_trust(record: &ProfileRecord, pins: Vec<String>) -> FtpTrust {
    match &record.tls_ca {
        Some(ca) => FtpTrust::Authorities(ca.clone()),
        None => FtpTrust::Pinned(pins),
    }
}

pub(in crate::server) fn ftp_timeouts(app: &App, record: &ProfileRecord) -> Timeouts {
    let config = app.config();
    Timeouts {
        connect: ConnectSettings::new(&config.ssh, Some(record)).connect_timeout,
        reply: std::time::Duration::from_secs(config.ftp.reply_timeout_secs),
    }
}

/// What a verifying login saw: the key or certificate the server proved
/// (none for plain FTP), and its banner or greeting.
pub(in crate::server) struct Verified {
    pub host_key: Option<KeyInfo>,
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
    let via = tunnel(app, name, record, &recorder).await?;
    client::login(
        client::Account {
            profile: name,
            host: &record.host,
            port: record.port,
            user: &record.user,
            certificate: record.certificate.as_deref(),
        },
        trust,
        &settings,
        None,
        via,
        &recorder,
    )
    .await
    .map_err(|e| e.in_profile(name))
}

/// Logs in once as `record` says, trusting the server as `proof` says, as
/// a `verify` connection (SSH or FTP), then hangs up.
pub(in crate::server) async fn verify(
    app: &App,
    caller: &Caller,
    name: &str,
    record: &ProfileRecord,
    proof: Proof,
    source: Source<'_>,
) -> Result<Verified, Error> {
    match proof {
        Proof::Ssh(trust) => {
            let connected = login(app, caller, name, record, trust, source, "verify").await?;
            client::hang_up(&connected).await;
            Ok(Verified {
                host_key: Some(connected.host_key.clone()),
                banner: connected.banner(),
            })
        }
        Proof::Ftp(trust) => {
            let recorder = Recorder {
                app,
                caller,
                profile: name,
                purpose: "verify",
                source,
            };
            let account = crate::ftp::client::Account {
                protocol: record.protocol,
                profile: name,
                host: &record.host,
                port: record.port,
                user: &record.user,
            };
            let control = crate::ftp::client::login(
                account,
                &trust,
                ftp_timeouts(app, record),
                None,
                &recorder,
            )
            .await
            .map_err(|e| e.in_profile(name))?;
            let verified = Verified {
                host_key: control.certificate.clone(),
                banner: control.welcome.clone(),
            };
            control.quit().await;
            Ok(verified)
        }
    }
}
