//! `tether profile add|list|show|remove`

use std::path::PathBuf;

use clap::{Args, Subcommand};
use tether_api::client::Client;
use tether_api::secret::Secret;
use tether_api::types::{
    AddProfile, AuthKind, HostKeyInfo, HostKeyPolicy, NewCredential, ProbeHostKey, ProfileInfo,
    ProfileList, UpdateProfile, validate_profile_name,
};
use zeroize::Zeroizing;

use crate::failure::{Failure, Result};
use crate::output::{print_json, print_table, timestamp};
use crate::prompt;

#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// Add a server profile: pins its host key and checks the credential
    /// authenticates before storing anything
    Add(AddArgs),
    /// List profiles
    List(JsonFlag),
    /// Show one profile (never its secret)
    Show {
        name: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Remove a profile and its sealed secret
    Remove { name: String },
    /// Show the host key(s) pinned for a profile
    Hostkey {
        name: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Re-learn a server's changed host key, with explicit consent: shows the
    /// old and new fingerprints and asks, or takes --host-key without a terminal
    Trust(TrustArgs),
    /// Change a profile's fields or rotate its secret; the result must log in
    /// before it is stored
    Set(SetArgs),
}

#[derive(Debug, Args)]
pub struct TrustArgs {
    name: String,
    /// The new host key's fingerprint, as `ssh-keygen -lf` prints it on the server
    #[arg(long, value_name = "SHA256:...")]
    host_key: Option<String>,
    #[command(flatten)]
    json: JsonFlag,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("credential").args(["key_file", "password_stdin"]))]
pub struct SetArgs {
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
    /// Rotate to this private key file
    #[arg(long, value_name = "PATH")]
    key_file: Option<PathBuf>,
    /// Read the new key's passphrase from stdin
    #[arg(long, requires = "key_file")]
    key_passphrase_stdin: bool,
    /// Rotate to a password read from stdin
    #[arg(long)]
    password_stdin: bool,
    /// Pin this host key instead of the current one (for a moved server)
    #[arg(long, value_name = "SHA256:...", conflicts_with = "accept_new")]
    host_key: Option<String>,
    /// Pin whatever key the (new) server shows now
    #[arg(long)]
    accept_new: bool,
    /// Seconds to wait for the connection and the SSH handshake
    #[arg(long, value_name = "SECS")]
    connect_timeout: Option<u64>,
    /// Seconds of silence before a keepalive
    #[arg(long, value_name = "SECS")]
    keepalive: Option<u64>,
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
#[command(group = clap::ArgGroup::new("credential").required(true).args(["key_file", "password_stdin"]))]
pub struct AddArgs {
    /// Profile name: letters, digits, '.', '_', '-'
    name: String,
    /// Server host name or address
    #[arg(long)]
    host: String,
    /// Server SSH port
    #[arg(long, default_value_t = 22)]
    port: u16,
    /// Remote user name
    #[arg(long)]
    user: String,
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
    /// Trust only the host key with this fingerprint (as `ssh-keygen -lf` prints it)
    #[arg(long, value_name = "SHA256:...", conflicts_with = "accept_new")]
    host_key: Option<String>,
    /// Trust the key the server shows now (trust on first use)
    #[arg(long)]
    accept_new: bool,
    /// Seconds to wait for the connection and the SSH handshake
    /// [default: the daemon's ssh.connect_timeout_secs]
    #[arg(long, value_name = "SECS")]
    connect_timeout: Option<u64>,
    /// Seconds of silence before a keepalive [default: the daemon's ssh.keepalive_secs]
    #[arg(long, value_name = "SECS")]
    keepalive: Option<u64>,
    /// Print the new profile as JSON
    #[arg(long)]
    json: bool,
}

pub async fn run(client: &Client, command: ProfileCommand) -> Result<u8> {
    match command {
        ProfileCommand::Add(args) => add(client, args).await,
        ProfileCommand::List(flag) => list(client, flag.json).await,
        ProfileCommand::Show { name, json } => show(client, &name, json.json).await,
        ProfileCommand::Remove { name } => remove(client, &name).await,
        ProfileCommand::Hostkey { name, json } => hostkey(client, &name, json.json).await,
        ProfileCommand::Trust(args) => trust(client, args).await,
        ProfileCommand::Set(args) => set(client, args).await,
    }
}

pub fn check_name(name: &str) -> Result<()> {
    validate_profile_name(name).map_err(Failure::usage)
}

/// Reads the credential the flags name: a key file (read with the caller's
/// own permissions) and maybe its passphrase, or a password from stdin.
fn read_credential(
    key_file: Option<&std::path::Path>,
    key_passphrase_stdin: bool,
    password_stdin: bool,
) -> Result<Option<NewCredential>> {
    if let Some(path) = key_file {
        let key = std::fs::read_to_string(path)
            .map(Zeroizing::new)
            .map_err(|e| {
                Failure::new(
                    "io_error",
                    format!("cannot read key file {}: {e}", path.display()),
                )
            })?;
        let passphrase = if key_passphrase_stdin {
            Some(prompt::read_secret("key passphrase")?)
        } else {
            None
        };
        return Ok(Some(NewCredential::PrivateKey {
            key: Secret::new(key.to_string()),
            passphrase: passphrase.map(|p| Secret::new(p.to_string())),
        }));
    }
    if password_stdin {
        let password = prompt::read_secret("password")?;
        return Ok(Some(NewCredential::Password {
            password: Secret::new(password.to_string()),
        }));
    }
    Ok(None)
}

fn describe_host_key(key: &HostKeyInfo) -> String {
    format!("{} {}", key.algorithm, key.fingerprint)
}

async fn add(client: &Client, args: AddArgs) -> Result<u8> {
    check_name(&args.name)?;
    // Decide the host key before reading secrets: a refusal costs nothing.
    let host_key = match (&args.host_key, args.accept_new) {
        (Some(fingerprint), _) => HostKeyPolicy::Pin {
            fingerprint: fingerprint.clone(),
        },
        (None, true) => HostKeyPolicy::AcceptNew,
        (None, false) => ask_host_key(client, &args.host, args.port).await?,
    };
    let credential = match &args.key_file {
        Some(path) => {
            let key = std::fs::read_to_string(path)
                .map(Zeroizing::new)
                .map_err(|e| {
                    Failure::new(
                        "io_error",
                        format!("cannot read key file {}: {e}", path.display()),
                    )
                })?;
            let passphrase = if args.key_passphrase_stdin {
                Some(prompt::read_secret("key passphrase")?)
            } else {
                None
            };
            NewCredential::PrivateKey {
                key: Secret::new(key.to_string()),
                passphrase: passphrase.map(|p| Secret::new(p.to_string())),
            }
        }
        None => NewCredential::Password {
            password: Secret::new(prompt::read_secret("password")?.to_string()),
        },
    };
    let request = AddProfile {
        name: args.name,
        host: args.host,
        port: args.port,
        user: args.user,
        credential,
        host_key,
        connect_timeout_secs: args.connect_timeout,
        keepalive_secs: args.keepalive,
    };
    let profile: ProfileInfo = client.post("/v1/profiles", &request).await?;
    drop(request);
    if args.json {
        print_json(&profile)?;
    } else {
        println!(
            "added profile {} ({}@{}:{}), host key {}",
            profile.name,
            profile.user,
            profile.host,
            profile.port,
            profile
                .host_keys
                .first()
                .map(describe_host_key)
                .unwrap_or_default()
        );
    }
    Ok(0)
}

/// Shows the server's host key on the terminal and asks whether to trust it.
async fn ask_host_key(client: &Client, host: &str, port: u16) -> Result<HostKeyPolicy> {
    let no_terminal = || {
        Failure::usage(
            "no terminal to confirm the server's host key: pass --host-key SHA256:... \
             (from `ssh-keygen -lf` on the server) or --accept-new to trust the key it shows now",
        )
    };
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return Err(no_terminal());
    }
    let key: HostKeyInfo = client
        .post(
            "/v1/hostkeys/probe",
            &ProbeHostKey {
                host: host.to_owned(),
                port,
            },
        )
        .await?;
    eprintln!("The server {host}:{port} presents this host key:");
    eprintln!("  {}", describe_host_key(&key));
    match prompt::confirm("Trust it and pin it for this profile?") {
        Some(true) => Ok(HostKeyPolicy::Pin {
            fingerprint: key.fingerprint,
        }),
        Some(false) => Err(Failure::new(
            "host_key_refused",
            "host key not trusted; nothing was stored",
        )),
        None => Err(no_terminal()),
    }
}

fn auth_name(auth: AuthKind) -> &'static str {
    match auth {
        AuthKind::Key => "key",
        AuthKind::Password => "password",
    }
}

async fn list(client: &Client, json: bool) -> Result<u8> {
    let list: ProfileList = client.get("/v1/profiles").await?;
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
                    format!("{}@{}:{}", p.user, p.host, p.port),
                    auth_name(p.auth).to_owned(),
                    p.host_keys
                        .first()
                        .map(|k| k.fingerprint.clone())
                        .unwrap_or_default(),
                ]
            })
            .collect();
        print_table(&["NAME", "TARGET", "AUTH", "HOST KEY"], &rows);
    }
    for name in &list.corrupt {
        eprintln!(
            "tether: warning: profile {name} failed its integrity check (store_corrupt); \
             `tether profile remove {name}` clears it"
        );
    }
    Ok(0)
}

async fn show(client: &Client, name: &str, json: bool) -> Result<u8> {
    check_name(name)?;
    let profile: ProfileInfo = client.get(&format!("/v1/profiles/{name}")).await?;
    if json {
        print_json(&profile)?;
        return Ok(0);
    }
    println!("name:      {}", profile.name);
    println!("host:      {}", profile.host);
    println!("port:      {}", profile.port);
    println!("user:      {}", profile.user);
    println!("auth:      {}", auth_name(profile.auth));
    if let Some(key) = &profile.public_key {
        println!("key:       {}", describe_host_key(key));
    }
    for key in &profile.host_keys {
        println!("host key:  {}", describe_host_key(key));
    }
    if let Some(secs) = profile.connect_timeout_secs {
        println!("connect timeout: {secs}s");
    }
    if let Some(secs) = profile.keepalive_secs {
        println!("keepalive: {secs}s");
    }
    println!("created:   {}", timestamp(profile.created_at));
    println!("updated:   {}", timestamp(profile.updated_at));
    Ok(0)
}

async fn remove(client: &Client, name: &str) -> Result<u8> {
    check_name(name)?;
    client.delete(&format!("/v1/profiles/{name}")).await?;
    println!("removed profile {name}");
    Ok(0)
}

async fn hostkey(client: &Client, name: &str, json: bool) -> Result<u8> {
    check_name(name)?;
    let profile: ProfileInfo = client.get(&format!("/v1/profiles/{name}")).await?;
    if json {
        print_json(&profile.host_keys)?;
        return Ok(0);
    }
    for key in &profile.host_keys {
        println!("{}", describe_host_key(key));
    }
    Ok(0)
}

async fn trust(client: &Client, args: TrustArgs) -> Result<u8> {
    check_name(&args.name)?;
    let profile: ProfileInfo = client.get(&format!("/v1/profiles/{}", args.name)).await?;
    let old: Vec<String> = profile.host_keys.iter().map(describe_host_key).collect();
    let fingerprint = match args.host_key {
        Some(fingerprint) => fingerprint,
        None => {
            let no_terminal = || {
                Failure::usage(
                    "no terminal to confirm the new host key: pass --host-key SHA256:... \
                     (from `ssh-keygen -lf` on the server)",
                )
            };
            if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
                return Err(no_terminal());
            }
            let probe = ProbeHostKey {
                host: profile.host.clone(),
                port: profile.port,
            };
            let new: HostKeyInfo = client.post("/v1/hostkeys/probe", &probe).await?;
            if profile
                .host_keys
                .iter()
                .any(|k| k.fingerprint == new.fingerprint)
            {
                println!(
                    "the host key of {} is unchanged: {}",
                    args.name,
                    describe_host_key(&new)
                );
                return Ok(0);
            }
            eprintln!(
                "The host key of {} ({}:{}) has changed.",
                args.name, profile.host, profile.port
            );
            eprintln!("  pinned: {}", old.join(", "));
            eprintln!("  now:    {}", describe_host_key(&new));
            eprintln!(
                "Only accept it if you know why it changed (server reinstalled, key rotated)."
            );
            match prompt::confirm("Pin the new key?") {
                Some(true) => new.fingerprint,
                Some(false) => {
                    return Err(Failure::new(
                        "host_key_refused",
                        "host key not trusted; nothing changed",
                    ));
                }
                None => return Err(no_terminal()),
            }
        }
    };
    let update = UpdateProfile {
        host_key: Some(HostKeyPolicy::Pin { fingerprint }),
        ..UpdateProfile::default()
    };
    let updated: ProfileInfo = client
        .patch(&format!("/v1/profiles/{}", args.name), &update)
        .await?;
    if args.json.json {
        print_json(&updated)?;
    } else {
        let new: Vec<String> = updated.host_keys.iter().map(describe_host_key).collect();
        println!(
            "{}: host key was {}, is now {}",
            args.name,
            old.join(", "),
            new.join(", ")
        );
    }
    Ok(0)
}

async fn set(client: &Client, args: SetArgs) -> Result<u8> {
    check_name(&args.name)?;
    let host_key = match (args.host_key, args.accept_new) {
        (Some(fingerprint), _) => Some(HostKeyPolicy::Pin { fingerprint }),
        (None, true) => Some(HostKeyPolicy::AcceptNew),
        (None, false) => None,
    };
    let credential = read_credential(
        args.key_file.as_deref(),
        args.key_passphrase_stdin,
        args.password_stdin,
    )?;
    let update = UpdateProfile {
        host: args.host,
        port: args.port,
        user: args.user,
        credential,
        host_key,
        connect_timeout_secs: args.connect_timeout,
        keepalive_secs: args.keepalive,
    };
    let nothing = update.host.is_none()
        && update.port.is_none()
        && update.user.is_none()
        && update.credential.is_none()
        && update.host_key.is_none()
        && update.connect_timeout_secs.is_none()
        && update.keepalive_secs.is_none();
    if nothing {
        return Err(Failure::usage(
            "nothing to change: see `tether profile set --help`",
        ));
    }
    let rotated = update.credential.is_some();
    let updated: ProfileInfo = client
        .patch(&format!("/v1/profiles/{}", args.name), &update)
        .await?;
    drop(update);
    if args.json.json {
        print_json(&updated)?;
    } else {
        println!(
            "updated profile {} ({}@{}:{}){}",
            updated.name,
            updated.user,
            updated.host,
            updated.port,
            if rotated { ", secret rotated" } else { "" }
        );
    }
    Ok(0)
}
