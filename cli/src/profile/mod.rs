//! `tether profile add|list|show|remove|hostkey|trust|set`: the arguments,
//! and the commands that only read; [`change`] holds those that write.

use std::path::PathBuf;

use clap::builder::TypedValueParser as _;
use clap::{Args, Subcommand};
use tether_api::client::Client;
use tether_api::endpoint as ep;
use tether_api::types::{
    AuthKind, CERTIFICATE_ALGORITHM, HostKeyInfo, ProfileInfo, ProfileList, Protocol,
    validate_profile_name,
};

use crate::failure::{Failure, Result};
use crate::output::{print_json, print_table, printable, timestamp};

mod change;
mod import;
mod known_hosts;
mod ssh_config;

use change::{add, set, trust};

mod rotate;

#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// Add a server profile (SSH, or FTP/FTPS with --protocol): pins its
    /// host key or TLS certificate and checks the credential logs in before
    /// storing anything
    Add(AddArgs),
    /// List profiles
    List(JsonFlag),
    /// Show one profile (never its secret)
    Show {
        #[arg(add = clap_complete::ArgValueCompleter::new(crate::complete::profiles))]
        name: String,
        /// Print only the key's public half as an authorized_keys line, for
        /// installing it on another server
        #[arg(long, conflicts_with = "json")]
        public_key: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Remove a profile and its sealed secret; asks first on a terminal,
    /// and says when the profile holds the only copy of a private key
    Remove {
        #[arg(add = clap_complete::ArgValueCompleter::new(crate::complete::profiles))]
        name: String,
        /// Do not ask (for scripts; without a terminal this is required)
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Show the host key(s) pinned for a profile
    Hostkey {
        #[arg(add = clap_complete::ArgValueCompleter::new(crate::complete::profiles))]
        name: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Re-learn a server's changed host key (or FTPS certificate), with
    /// explicit consent: shows the old and new fingerprints and asks, or
    /// takes --host-key (--cert-fingerprint) without a terminal
    Trust(TrustArgs),
    /// Change a profile's fields or rotate its secret; the result must log in
    /// before it is stored. Changing where the secret goes (host, port, user,
    /// host key) needs root or a new credential in the same command
    Set(SetArgs),
    /// Give a profile a new key made inside tetherd: installed in the
    /// server's authorized_keys over the live connection, proved on a fresh
    /// one, stored; then the old key's line is removed. Any failure before
    /// that leaves the old key working and the profile as it was
    Rotate(rotate::RotateArgs),
    /// Add profiles from an OpenSSH client configuration (~/.ssh/config):
    /// HostName, Port, User, IdentityFile, ProxyJump, ConnectTimeout,
    /// ServerAliveInterval; host keys from known_hosts (hashed names too);
    /// key files read with your permissions. Says what it skipped and why
    Import(import::ImportArgs),
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("credential").multiple(true).args(["key_file", "password_stdin"]))]
pub struct TrustArgs {
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::complete::profiles))]
    name: String,
    /// The new host key's fingerprint, as `ssh-keygen -lf` prints it on the server
    #[arg(long, value_name = "SHA256:...", conflicts_with = "cert_fingerprint")]
    host_key: Option<String>,
    /// FTPS: the new certificate's SHA-256, as `openssl x509 -noout
    /// -fingerprint -sha256` prints it on the server
    #[arg(long, value_name = "AB:CD:...")]
    cert_fingerprint: Option<String>,
    /// A new credential: a stored secret is only sent to the host key it was
    /// stored for, so a profile's owner (not root) re-trusts with a new one
    #[command(flatten)]
    credential: CredentialArgs,
    #[command(flatten)]
    json: JsonFlag,
}

/// A credential to send with a command: a key file read with the caller's
/// own permissions, or a password from stdin.
#[derive(Debug, Args)]
pub struct CredentialArgs {
    /// Private key file (OpenSSH or PEM), read with your own permissions and
    /// sent once; tetherd stores it sealed
    #[arg(long, value_name = "PATH")]
    key_file: Option<PathBuf>,
    /// Read the key's passphrase from stdin (prompted without echo on a terminal)
    #[arg(long, requires = "key_file")]
    key_passphrase_stdin: bool,
    /// Read the password from stdin (prompted without echo on a terminal)
    #[arg(long)]
    password_stdin: bool,
    /// Take a key file that other users may read (ssh refuses those)
    #[arg(long, requires = "key_file")]
    insecure_key_file: bool,
    /// An OpenSSH user certificate for the key (KEY-cert.pub), to log in
    /// where the server trusts a certificate authority
    #[arg(long, value_name = "PATH", requires = "key_file")]
    certificate: Option<PathBuf>,
}

impl CredentialArgs {
    /// Whether a credential is given at all.
    fn given(&self) -> bool {
        self.key_file.is_some() || self.password_stdin
    }
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("credential").multiple(true).args(["key_file", "password_stdin"]))]
pub struct SetArgs {
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::complete::profiles))]
    name: String,
    /// New server host name or address
    #[arg(long)]
    host: Option<String>,
    /// New SSH port
    #[arg(long)]
    port: Option<u16>,
    /// New remote user name
    #[arg(long)]
    user: Option<String>,
    /// Rotate the secret to this credential
    #[command(flatten)]
    credential: CredentialArgs,
    /// Pin this host key instead of the current one (for a moved server)
    #[arg(long, value_name = "SHA256:...", conflicts_with_all = ["accept_new", "cert_fingerprint"])]
    host_key: Option<String>,
    /// FTPS: pin this certificate instead of the current one
    #[arg(long, value_name = "AB:CD:...", conflicts_with = "accept_new")]
    cert_fingerprint: Option<String>,
    /// Pin the key the server shows now, where none is pinned for its
    /// address (with a new --host or --port); never accepts a changed key:
    /// that needs `tether profile trust`
    #[arg(long)]
    accept_new: bool,
    /// Seconds to wait for the connection and the SSH handshake
    #[arg(long, value_name = "SECS")]
    connect_timeout: Option<u64>,
    /// Seconds of silence before a keepalive
    #[arg(long, value_name = "SECS")]
    keepalive: Option<u64>,
    /// Reach the server through this SSH profile's connection instead (a
    /// jump host); needs the right to change that profile
    #[arg(long, value_name = "PROFILE", conflicts_with = "no_jump",
          add = clap_complete::ArgValueCompleter::new(crate::complete::profiles))]
    jump: Option<String>,
    /// Connect to the server directly again
    #[arg(long)]
    no_jump: bool,
    #[command(flatten)]
    json: JsonFlag,
}

#[derive(Debug, Args)]
pub struct JsonFlag {
    /// Print JSON for scripts
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("credential").required(true).multiple(true).args(["key_file", "password_stdin"]))]
pub struct AddArgs {
    /// Profile name: letters, digits, '.', '_', '-'
    name: String,
    /// What the server speaks: ssh; ftps (TLS after AUTH TLS); ftps-implicit
    /// (TLS from the first byte); ftp (no TLS: needs --allow-plaintext)
    #[arg(long, default_value = "ssh", value_name = "PROTOCOL",
          value_parser = clap::builder::PossibleValuesParser::new(["ssh", "ftp", "ftps", "ftps-implicit"])
              .map(|name| name.parse::<Protocol>().unwrap_or_default()))]
    protocol: Protocol,
    /// Server host name or address
    #[arg(long)]
    host: String,
    /// Server port [default: 22 for ssh, 21 for ftp and ftps, 990 for ftps-implicit]
    #[arg(long)]
    port: Option<u16>,
    /// Remote user name
    #[arg(long)]
    user: String,
    #[command(flatten)]
    credential: CredentialArgs,
    /// Trust only the host key with this fingerprint (as `ssh-keygen -lf` prints it)
    #[arg(long, value_name = "SHA256:...", conflicts_with_all = ["accept_new", "cert_fingerprint", "ca"])]
    host_key: Option<String>,
    /// FTPS: trust only the TLS certificate with this SHA-256 fingerprint,
    /// as `openssl x509 -noout -fingerprint -sha256` prints it (or SHA256:...)
    #[arg(long, value_name = "AB:CD:...", conflicts_with_all = ["accept_new", "ca"])]
    cert_fingerprint: Option<String>,
    /// FTPS: check the certificate's chain and host name against certificate
    /// authorities instead of pinning it: `system`, or a PEM file of them
    #[arg(long, value_name = "system|FILE", conflicts_with = "accept_new")]
    ca: Option<String>,
    /// FTP without TLS: the password crosses the network in clear
    #[arg(long)]
    allow_plaintext: bool,
    /// Trust the key or certificate the server shows now (trust on first use)
    #[arg(long)]
    accept_new: bool,
    /// Seconds to wait for the connection and the SSH handshake
    /// [default: the daemon's ssh.connect_timeout_secs]
    #[arg(long, value_name = "SECS")]
    connect_timeout: Option<u64>,
    /// Seconds of silence before a keepalive [default: the daemon's ssh.keepalive_secs]
    #[arg(long, value_name = "SECS")]
    keepalive: Option<u64>,
    /// Log in once with the credential given, to install a key made inside
    /// tetherd in the login's authorized_keys; the profile keeps only that
    /// key, which exists nowhere else
    #[arg(long)]
    generate_key: bool,
    /// With --generate-key: the authorized_keys file on the server, relative
    /// to the login's home [default: .ssh/authorized_keys]
    #[arg(long, value_name = "PATH", requires = "generate_key")]
    authorized_keys: Option<String>,
    /// Reach the server through this SSH profile's pooled connection (a
    /// jump host, as ssh's ProxyJump); the host name is resolved there.
    /// A jump may have its own jump
    #[arg(long, value_name = "PROFILE",
          add = clap_complete::ArgValueCompleter::new(crate::complete::profiles))]
    jump: Option<String>,
    /// Print the new profile as JSON
    #[arg(long)]
    json: bool,
}

pub async fn run(client: &Client, command: ProfileCommand) -> Result<u8> {
    match command {
        ProfileCommand::Add(args) => add(client, args).await,
        ProfileCommand::List(flag) => list(client, flag.json).await,
        ProfileCommand::Show {
            name,
            public_key: true,
            ..
        } => rotate::public_key(client, &name).await,
        ProfileCommand::Show { name, json, .. } => show(client, &name, json.json).await,
        ProfileCommand::Remove { name, yes } => remove(client, &name, yes).await,
        ProfileCommand::Hostkey { name, json } => hostkey(client, &name, json.json).await,
        ProfileCommand::Trust(args) => trust(client, args).await,
        ProfileCommand::Set(args) => set(client, args).await,
        ProfileCommand::Rotate(args) => rotate::rotate(client, args).await,
        ProfileCommand::Import(args) => import::import(client, args).await,
    }
}

/// Refuses a `--host-key` that is not a fingerprint at all, before anything
/// is sent: a typo is not a changed key.
fn check_fingerprint(fingerprint: &str) -> Result<()> {
    let ok = fingerprint.strip_prefix("SHA256:").is_some_and(|b64| {
        b64.len() == 43
            && b64
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    });
    if ok {
        Ok(())
    } else {
        Err(Failure::usage(format!(
            "{fingerprint:?} is not a host key fingerprint: expected SHA256: and 43 base64 \
             characters, as `ssh-keygen -lf` prints for the server's host key"
        )))
    }
}

pub fn check_name(name: &str) -> Result<()> {
    validate_profile_name(name).map_err(Failure::usage)
}

fn describe_host_key(key: &HostKeyInfo) -> String {
    if key.algorithm == CERTIFICATE_ALGORITHM {
        return format!("certificate SHA-256 {}", key.fingerprint);
    }
    format!("{} {}", key.algorithm, key.fingerprint)
}

/// Where a profile logs in: `user@host:port`, with `ftps://` and the like
/// before it for FTP.
fn target_of(profile: &ProfileInfo) -> String {
    let at = format!(
        "{}@{}",
        profile.user,
        tether_api::types::host_and_port(&profile.host, profile.port)
    );
    match profile.protocol {
        Protocol::Ssh => at,
        other => format!("{other}://{at}"),
    }
}

/// A key or certificate short enough for a table column.
fn short_key(key: &HostKeyInfo) -> String {
    if key.algorithm == CERTIFICATE_ALGORITHM {
        let head: String = key.fingerprint.chars().take(23).collect();
        return format!("cert {head}…");
    }
    key.fingerprint.clone()
}

fn auth_name(auth: AuthKind) -> &'static str {
    match auth {
        AuthKind::Key => "key",
        AuthKind::Password => "password",
        AuthKind::KeyAndPassword => "key and password",
    }
}

async fn list(client: &Client, json: bool) -> Result<u8> {
    let list: ProfileList = client.call(&ep::ListProfiles {}, &()).await?;
    if json {
        print_json(&list)?;
    } else if list.profiles.is_empty() && list.corrupt.is_empty() {
        println!(
            "no profiles yet: add one with `tether profile add NAME --host HOST --user USER --key-file PATH`"
        );
    } else {
        let rows: Vec<Vec<String>> = list
            .profiles
            .iter()
            .map(|p| {
                vec![
                    p.name.clone(),
                    target_of(p),
                    auth_name(p.auth).to_owned(),
                    match (&p.ca, p.host_keys.first()) {
                        (Some(ca), _) => format!("ca {ca}"),
                        (None, Some(key)) => short_key(key),
                        (None, None) => "-".to_owned(),
                    },
                ]
            })
            .collect();
        print_table(&["NAME", "TARGET", "AUTH", "TRUST"], &rows);
        for profile in &list.profiles {
            if let Some(cert) = &profile.certificate {
                warn_expiry(&profile.name, cert);
            }
        }
    }
    for name in &list.corrupt {
        eprintln!(
            "tether: warning: profile {name} failed its integrity check (store_corrupt); \
             `tether profile remove {name}` clears it"
        );
    }
    Ok(0)
}

/// One profile as the daemon shows it.
pub(crate) async fn fetch(client: &Client, name: &str) -> Result<ProfileInfo> {
    Ok(client
        .call(
            &ep::ShowProfile {
                name: name.to_owned(),
            },
            &(),
        )
        .await?)
}

async fn show(client: &Client, name: &str, json: bool) -> Result<u8> {
    check_name(name)?;
    let profile = fetch(client, name).await?;
    if json {
        print_json(&profile)?;
        return Ok(0);
    }
    println!("name:      {}", profile.name);
    println!("protocol:  {}", profile.protocol);
    println!("host:      {}", profile.host);
    println!("port:      {}", profile.port);
    println!("user:      {}", profile.user);
    println!("auth:      {}", auth_name(profile.auth));
    if let Some(key) = &profile.public_key {
        println!("key:       {}", describe_host_key(key));
    }
    if let Some(cert) = &profile.certificate {
        let principals = if cert.principals.is_empty() {
            "any".to_owned()
        } else {
            cert.principals.join(", ")
        };
        let until = if cert.valid_before == u64::MAX {
            "forever".to_owned()
        } else {
            timestamp(cert.valid_before)
        };
        println!(
            "certificate: {} for {principals}, valid {} to {until}, signed by {}",
            printable(&cert.key_id),
            timestamp(cert.valid_after),
            describe_host_key(&cert.ca)
        );
        warn_expiry(name, cert);
    }
    for key in &profile.host_keys {
        println!("host key:  {}", describe_host_key(key));
    }
    if let Some(ca) = &profile.ca {
        println!("trust:     certificate authorities ({ca}) and the host name");
    }
    if profile.protocol == Protocol::Ftp {
        println!("trust:     none (plain FTP: the password crosses the network in clear)");
    }
    if let Some(secs) = profile.connect_timeout_secs {
        println!("connect timeout: {secs}s");
    }
    if let Some(secs) = profile.keepalive_secs {
        println!("keepalive: {secs}s");
    }
    if let Some(jump) = &profile.jump {
        println!("jump:      {jump}");
    }
    println!("created:   {}", timestamp(profile.created_at));
    println!("updated:   {}", timestamp(profile.updated_at));
    Ok(0)
}

/// Warns (on stderr) when a profile's certificate has expired or will
/// within a week.
fn warn_expiry(name: &str, cert: &tether_api::types::CertificateInfo) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    const WEEK: u64 = 7 * 86_400;
    if cert.valid_before <= now {
        eprintln!(
            "tether: warning: the certificate of {name} expired at {}: logins will fail until \
             it is renewed (`tether profile set {name} --key-file KEY --certificate NEW-cert.pub`)",
            timestamp(cert.valid_before)
        );
    } else if cert.valid_before - now < WEEK {
        eprintln!(
            "tether: warning: the certificate of {name} expires in {} h ({})",
            (cert.valid_before - now) / 3600,
            timestamp(cert.valid_before)
        );
    }
}

async fn remove(client: &Client, name: &str, yes: bool) -> Result<u8> {
    check_name(name)?;
    if !yes {
        if !crate::prompt::can_ask() {
            return Err(Failure::usage(format!(
                "no terminal to confirm removing {name} and its secret: pass --yes"
            )));
        }
        let profile = fetch(client, name).await?;
        crate::prompt::tell(&format!(
            "{name}: {}@{}, {}",
            profile.user,
            tether_api::types::host_and_port(&profile.host, profile.port),
            auth_name(profile.auth)
        ));
        if let Some(key) = &profile.public_key {
            let others: ProfileList = client.call(&ep::ListProfiles {}, &()).await?;
            let shared = others.profiles.iter().any(|p| {
                p.name != name
                    && p.public_key
                        .as_ref()
                        .is_some_and(|k| k.fingerprint == key.fingerprint)
            });
            if !shared {
                crate::prompt::tell(&format!(
                    "It holds the private key {}; no other profile has it. Unless you kept the \
                     key file, this is the only copy, and removing {name} destroys it.",
                    describe_host_key(key)
                ));
            }
        }
        if crate::prompt::confirm(&format!("Remove {name} and its sealed secret?")) != Some(true) {
            return Err(Failure::new("cancelled", "nothing was removed"));
        }
    }
    client
        .call(
            &ep::RemoveProfile {
                name: name.to_owned(),
            },
            &(),
        )
        .await?;
    println!("removed profile {name}");
    Ok(0)
}

async fn hostkey(client: &Client, name: &str, json: bool) -> Result<u8> {
    check_name(name)?;
    let profile = fetch(client, name).await?;
    if json {
        print_json(&profile.host_keys)?;
        return Ok(0);
    }
    for key in &profile.host_keys {
        println!("{}", describe_host_key(key));
    }
    Ok(0)
}
