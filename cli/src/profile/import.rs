//! `tether profile import`: profiles from an OpenSSH client configuration
//! (`Host` blocks), host keys from known_hosts, key files read here with
//! the caller's own permissions. Every profile goes through `profile add`
//! (so its key logs in, against the pinned host key, before it is stored);
//! what cannot be taken as ssh would take it is skipped and said why.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::Serialize;
use tether_api::client::Client;
use tether_api::endpoint as ep;
use tether_api::error::ErrorCode;
use tether_api::types::{AddProfile, HostKeyPolicy, ProbeHostKey, ProfileInfo, Protocol};

use super::CredentialArgs;
use super::change::{ask_host_key, read_credential};
use super::known_hosts;
use super::ssh_config::{SshConfig, expand_tilde, expand_tokens, words};
use crate::failure::{Failure, Result};
use crate::output::{print_json, print_table, printable};
use crate::prompt;

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Hosts to import, as `Host` lines name them [default: every host
    /// named without a wildcard]; a ProxyJump host comes along
    hosts: Vec<String>,
    /// The configuration to read [default: ~/.ssh/config]
    #[arg(long, value_name = "FILE")]
    ssh_config: Option<PathBuf>,
    /// Trust the host key a server shows now where known_hosts has none
    #[arg(long)]
    accept_new: bool,
    /// Say what would be imported, and change nothing
    #[arg(long)]
    dry_run: bool,
    /// Print the summary as JSON
    #[arg(long)]
    json: bool,
}

/// One host's outcome.
#[derive(Debug, Serialize)]
struct Outcome {
    host: String,
    result: &'static str,
    detail: String,
}

/// A profile to add, as the configuration gives it.
#[derive(Debug)]
struct Plan {
    name: String,
    host: String,
    port: u16,
    user: String,
    key_file: PathBuf,
    certificate: Option<PathBuf>,
    jump: Option<String>,
    connect_timeout: Option<u64>,
    keepalive: Option<u64>,
    /// A key from known_hosts, or `None` to ask or accept as told.
    known: Option<known_hosts::KnownKey>,
}

pub async fn import(client: &Client, args: ImportArgs) -> Result<u8> {
    let home = home()?;
    let path = args
        .ssh_config
        .clone()
        .unwrap_or_else(|| home.join(".ssh/config"));
    let config = SshConfig::read(&path, &home)
        .map_err(|e| Failure::new("io_error", format!("cannot read {}: {e}", path.display())))?;
    let wanted = if args.hosts.is_empty() {
        config.hosts()
    } else {
        args.hosts.clone()
    };
    let existing: HashSet<String> = client.call(&ep::ListProfiles {}, &()).await.map(
        |list: tether_api::types::ProfileList| list.profiles.into_iter().map(|p| p.name).collect(),
    )?;
    let mut importer = Importer {
        client,
        config: &config,
        home: &home,
        args: &args,
        existing,
        done: Vec::new(),
        visiting: Vec::new(),
    };
    for host in &wanted {
        importer.import(host).await;
    }
    let outcomes = importer.done;
    let failed = outcomes.iter().any(|o| o.result == "skipped");
    if args.json {
        print_json(&serde_json::json!({
            "hosts": outcomes,
            "notes": config.notes,
        }))?;
    } else {
        let rows: Vec<Vec<String>> = outcomes
            .iter()
            .map(|o| {
                vec![
                    printable(&o.host).into_owned(),
                    o.result.to_owned(),
                    printable(&o.detail).into_owned(),
                ]
            })
            .collect();
        if rows.is_empty() {
            println!("no hosts in {}", printable(&path.display().to_string()));
        } else {
            print_table(&["HOST", "RESULT", "DETAIL"], &rows);
        }
        for note in &config.notes {
            eprintln!("tether: note: {}", printable(note));
        }
    }
    Ok(u8::from(failed))
}

fn home() -> Result<PathBuf> {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .filter(|h| h.is_absolute())
        .ok_or_else(|| Failure::usage("HOME is not set: give --ssh-config FILE"))
}

struct Importer<'a> {
    client: &'a Client,
    config: &'a SshConfig,
    home: &'a Path,
    args: &'a ImportArgs,
    /// Profiles the daemon has (and those added here).
    existing: HashSet<String>,
    done: Vec<Outcome>,
    /// Hosts being imported, for jumps that go round in a circle.
    visiting: Vec<String>,
}

impl Importer<'_> {
    /// Imports `host` (its jump first); whether it is a profile afterwards.
    async fn import(&mut self, host: &str) -> bool {
        if let Some(done) = self.done.iter().find(|o| o.host == host) {
            return matches!(done.result, "imported" | "would import");
        }
        if self.visiting.iter().any(|h| h == host) {
            let circle = format!("{} -> {host}", self.visiting.join(" -> "));
            self.skip(
                host,
                format!("its ProxyJump goes round in a circle: {circle}"),
            );
            return false;
        }
        self.visiting.push(host.to_owned());
        let result = Box::pin(self.import_one(host)).await;
        self.visiting.pop();
        let outcome = match result {
            Ok(detail) => Outcome {
                host: host.to_owned(),
                result: if self.args.dry_run {
                    "would import"
                } else {
                    "imported"
                },
                detail,
            },
            Err(reason) => Outcome {
                host: host.to_owned(),
                result: "skipped",
                detail: reason,
            },
        };
        let imported = outcome.result != "skipped";
        if imported {
            self.existing.insert(host.to_owned());
        }
        if !self.done.iter().any(|o| o.host == host) {
            self.done.push(outcome);
        }
        imported
    }

    fn skip(&mut self, host: &str, reason: String) {
        self.done.push(Outcome {
            host: host.to_owned(),
            result: "skipped",
            detail: reason,
        });
    }

    async fn import_one(&mut self, alias: &str) -> std::result::Result<String, String> {
        crate::profile::check_name(alias).map_err(|f| f.message)?;
        if self.existing.contains(alias) {
            return Err(format!("a profile named {alias} exists already"));
        }
        let mut plan = self.plan(alias)?;
        if let Some(jump) = plan.jump.clone() {
            let ready = self.existing.contains(&jump) || self.import(&jump).await;
            if !ready {
                return Err(format!("its ProxyJump {jump} could not be imported"));
            }
        }
        let summary = format!(
            "{}@{}{}{}",
            plan.user,
            tether_api::types::host_and_port(&plan.host, plan.port),
            plan.jump
                .as_deref()
                .map(|j| format!(" via {j}"))
                .unwrap_or_default(),
            match &plan.known {
                Some(key) => format!(
                    ", host key {} {} from {}:{}",
                    key.algorithm,
                    key.fingerprint,
                    key.file.display(),
                    key.line
                ),
                None if self.args.accept_new => ", host key as the server shows it".into(),
                None => String::new(),
            }
        );
        if self.args.dry_run {
            return Ok(summary);
        }
        let policy = match plan.known.take() {
            Some(key) => HostKeyPolicy::Pin {
                fingerprint: key.fingerprint,
            },
            None if self.args.accept_new => HostKeyPolicy::AcceptNew,
            None if prompt::can_ask() => {
                let probe = ProbeHostKey {
                    host: plan.host.clone(),
                    port: plan.port,
                    protocol: Protocol::Ssh,
                    jump: plan.jump.clone(),
                };
                ask_host_key(self.client, probe)
                    .await
                    .map_err(|f| f.message)?
            }
            None => {
                return Err(format!(
                    "known_hosts has no key for {}: pass --accept-new, or run the import on a \
                     terminal to check the key",
                    tether_api::types::host_and_port(&plan.host, plan.port)
                ));
            }
        };
        self.add(&plan, policy).await.map(|()| summary)
    }

    /// What the configuration says about `alias`, or why it cannot be
    /// taken.
    fn plan(&self, alias: &str) -> std::result::Result<Plan, String> {
        let options = self.config.options_for(alias);
        let first = |keyword: &str| options.first(keyword).map(|v| words(v).join(" "));
        if let Some(command) = first("proxycommand").filter(|c| c != "none") {
            return Err(format!(
                "ProxyCommand {command:?} is not imported; tether goes through ProxyJump hosts"
            ));
        }
        let host = match first("hostname") {
            Some(name) => expand_tokens(&name, &[('h', alias)])?,
            None => alias.to_owned(),
        };
        let port = match first("port") {
            Some(port) => port
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| format!("Port {port:?} is not a port"))?,
            None => 22,
        };
        let local_user = nix::unistd::User::from_uid(nix::unistd::getuid())
            .ok()
            .flatten()
            .map(|u| u.name)
            .unwrap_or_default();
        let user = first("user").unwrap_or_else(|| local_user.clone());
        let port_text = port.to_string();
        let home = self.home.display().to_string();
        let tokens = [
            ('h', host.as_str()),
            ('p', port_text.as_str()),
            ('r', user.as_str()),
            ('n', alias),
            ('u', local_user.as_str()),
            ('d', home.as_str()),
        ];
        let jump = match first("proxyjump").as_deref() {
            None | Some("none") => None,
            Some(jump) if jump.contains(',') => {
                return Err(format!(
                    "ProxyJump {jump}: a chain is imported as each hop's own ProxyJump; give the \
                     last hop a Host block with ProxyJump to the one before"
                ));
            }
            Some(jump)
                if jump.contains(['@', ':']) || self.config.hosts().iter().all(|h| h != jump) =>
            {
                if self.existing.contains(jump) {
                    Some(jump.to_owned())
                } else {
                    return Err(format!(
                        "ProxyJump {jump} is not a Host of the configuration nor a profile: add \
                         it as a profile first"
                    ));
                }
            }
            Some(jump) => Some(jump.to_owned()),
        };
        let given: Vec<String> = options.all("identityfile").to_vec();
        let candidates: Vec<String> = if given.is_empty() {
            ["~/.ssh/id_ed25519", "~/.ssh/id_ecdsa", "~/.ssh/id_rsa"]
                .map(str::to_owned)
                .to_vec()
        } else {
            given.iter().map(|v| words(v).join(" ")).collect()
        };
        let mut key_file = None;
        for candidate in &candidates {
            let path = expand_tilde(&expand_tokens(candidate, &tokens)?, self.home);
            if path.is_file() {
                key_file = Some(path);
                break;
            }
        }
        let key_file = key_file.ok_or_else(|| {
            format!(
                "no key file ({}); a password profile is added with `tether profile add \
                 {alias} --password-stdin`",
                candidates.join(", ")
            )
        })?;
        let certificate = match first("certificatefile") {
            Some(path) => Some(expand_tilde(&expand_tokens(&path, &tokens)?, self.home)),
            None => {
                let beside = PathBuf::from(format!("{}-cert.pub", key_file.display()));
                beside.is_file().then_some(beside)
            }
        };
        let seconds = |keyword: &str| -> std::result::Result<Option<u64>, String> {
            first(keyword)
                .map(|v| {
                    v.parse::<u64>()
                        .map_err(|_| format!("{keyword} {v:?} is not a number of seconds"))
                })
                .transpose()
                .map(|v| v.filter(|&s| s > 0))
        };
        let files: Vec<PathBuf> = {
            let user_files = match first("userknownhostsfile") {
                Some(value) => words(&value)
                    .iter()
                    .map(|f| expand_tokens(f, &tokens).map(|f| expand_tilde(&f, self.home)))
                    .collect::<std::result::Result<Vec<_>, _>>()?,
                None => vec![
                    self.home.join(".ssh/known_hosts"),
                    self.home.join(".ssh/known_hosts2"),
                ],
            };
            let global = match first("globalknownhostsfile") {
                Some(value) => words(&value).iter().map(PathBuf::from).collect(),
                None => vec![
                    PathBuf::from("/etc/ssh/ssh_known_hosts"),
                    PathBuf::from("/etc/ssh/ssh_known_hosts2"),
                ],
            };
            user_files.into_iter().chain(global).collect()
        };
        let key_name = first("hostkeyalias").unwrap_or_else(|| host.clone());
        let known = known_hosts::lookup(&files, &key_name, port);
        let preferred = known.preferred().cloned();
        if preferred.is_none() && !known.keys.is_empty() {
            return Err(format!(
                "known_hosts has keys for {key_name} that tether will not pin (revoked, or of a \
                 kind it does not use)"
            ));
        }
        Ok(Plan {
            name: alias.to_owned(),
            host,
            port,
            user,
            key_file,
            certificate,
            jump,
            connect_timeout: seconds("connecttimeout")?,
            keepalive: seconds("serveraliveinterval")?,
            known: preferred,
        })
    }

    /// Adds the profile as `tether profile add` does; an encrypted key
    /// asks for its passphrase on a terminal.
    async fn add(&mut self, plan: &Plan, policy: HostKeyPolicy) -> std::result::Result<(), String> {
        let mut credential = CredentialArgs {
            key_file: Some(plan.key_file.clone()),
            key_passphrase_stdin: false,
            password_stdin: false,
            insecure_key_file: false,
            certificate: plan.certificate.clone(),
        };
        loop {
            let whom = format!("{}@{}", plan.user, plan.host);
            let read = read_credential(&credential, &whom)
                .map_err(|f| f.message)?
                .ok_or("no key file")?;
            let request = AddProfile {
                name: plan.name.clone(),
                protocol: Protocol::Ssh,
                allow_plaintext: false,
                host: plan.host.clone(),
                port: Some(plan.port),
                user: plan.user.clone(),
                credential: read,
                host_key: policy.clone(),
                connect_timeout_secs: plan.connect_timeout,
                keepalive_secs: plan.keepalive,
                generate_key: false,
                authorized_keys: None,
                jump: plan.jump.clone(),
            };
            let added: std::result::Result<ProfileInfo, Failure> = self
                .client
                .call(&ep::AddProfileCall {}, &request)
                .await
                .map_err(Failure::from);
            drop(request);
            match added {
                Ok(_) => return Ok(()),
                Err(failure)
                    if failure.is(ErrorCode::BadPassphrase)
                        && !credential.key_passphrase_stdin
                        && prompt::can_ask() =>
                {
                    credential.key_passphrase_stdin = true;
                }
                Err(failure) => {
                    return Err(format!("error[{}]: {}", failure.code, failure.message));
                }
            }
        }
    }
}
