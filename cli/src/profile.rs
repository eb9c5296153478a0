//! `tether profile add|list|show|remove`

use std::path::PathBuf;

use clap::{Args, Subcommand};
use tether_api::client::Client;
use tether_api::secret::Secret;
use tether_api::types::{
    AddProfile, AuthKind, HostKeyInfo, HostKeyPolicy, NewCredential, ProbeHostKey, ProfileInfo,
    ProfileList, validate_profile_name,
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
    }
}

pub fn check_name(name: &str) -> Result<()> {
    validate_profile_name(name).map_err(Failure::usage)
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
