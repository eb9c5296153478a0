//! The profile commands that change something: `add`, `set` and `trust`,
//! with the prompts they need (credentials from stdin, consent to a host key).

use tether_api::client::Client;
use tether_api::endpoint as ep;
use tether_api::secret::Secret;
use tether_api::types::{
    AddProfile, HostKeyInfo, HostKeyPolicy, NewCredential, ProbeHostKey, ProfileInfo, Protocol,
    UpdateProfile, certificate_fingerprint, host_and_port,
};
use zeroize::Zeroizing;

use super::{
    AddArgs, CredentialArgs, SetArgs, TrustArgs, check_fingerprint, check_name, describe_host_key,
    fetch, target_of,
};
use crate::failure::{Failure, Result};
use crate::output::{banner_lines, print_json};
use crate::prompt;

/// Refuses a private key file that other users may read, as ssh does: a
/// key others could have copied is not a secret worth sealing.
fn check_key_file(path: &std::path::Path, insecure: bool) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).map_err(|e| {
        Failure::new(
            "io_error",
            format!("cannot read key file {}: {e}", path.display()),
        )
    })?;
    if meta.mode() & 0o077 != 0 && !insecure {
        return Err(Failure::new(
            "insecure_key_file",
            format!(
                "permissions {:04o} for {} are too open: other users may have read this key. \
                 `chmod 600 {}` (and consider it exposed), or pass --insecure-key-file",
                meta.mode() & 0o7777,
                path.display(),
                path.display()
            ),
        ));
    }
    Ok(())
}

/// Reads the credential the flags name: a key file (read with the caller's
/// own permissions) and maybe its passphrase, or a password from stdin (or
/// the terminal, asked as `password for WHOM`).
pub(super) fn read_credential(args: &CredentialArgs, whom: &str) -> Result<Option<NewCredential>> {
    if let Some(path) = args.key_file.as_deref() {
        check_key_file(path, args.insecure_key_file)?;
        let key = std::fs::read_to_string(path)
            .map(Zeroizing::new)
            .map_err(|e| {
                Failure::new(
                    "io_error",
                    format!("cannot read key file {}: {e}", path.display()),
                )
            })?;
        let certificate = match &args.certificate {
            Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
                Failure::new(
                    "io_error",
                    format!("cannot read certificate {}: {e}", path.display()),
                )
            })?),
            None => None,
        };
        let passphrase = if args.key_passphrase_stdin {
            Some(prompt::read_secret(&format!(
                "passphrase for key {}",
                path.display()
            ))?)
        } else {
            None
        };
        // Both a key and a password: servers that ask for the two
        // (`AuthenticationMethods publickey,password`).
        let password = if args.password_stdin {
            Some(Secret::new(
                prompt::read_secret(&format!("password for {whom}"))?.to_string(),
            ))
        } else {
            None
        };
        return Ok(Some(NewCredential::PrivateKey {
            key: Secret::new(key.to_string()),
            passphrase: passphrase.map(|p| Secret::new(p.to_string())),
            password,
            certificate,
        }));
    }
    if args.password_stdin {
        let password = prompt::read_secret(&format!("password for {whom}"))?;
        return Ok(Some(NewCredential::Password {
            password: Secret::new(password.to_string()),
        }));
    }
    Ok(None)
}

/// How `add` trusts the server, from its flags, checked before anything
/// is sent; `None` when the person must be asked.
fn trust_flags(args: &AddArgs) -> Result<Option<HostKeyPolicy>> {
    let protocol = args.protocol;
    if protocol.is_ssh() {
        if args.cert_fingerprint.is_some() || args.ca.is_some() || args.allow_plaintext {
            return Err(Failure::usage(
                "--cert-fingerprint, --ca and --allow-plaintext are for FTP profiles \
                 (--protocol ftps, ftps-implicit or ftp); an SSH server is trusted by its host \
                 key (--host-key)",
            ));
        }
        if let Some(fingerprint) = &args.host_key {
            check_fingerprint(fingerprint)?;
        }
        return Ok(match (&args.host_key, args.accept_new) {
            (Some(fingerprint), _) => Some(HostKeyPolicy::Pin {
                fingerprint: fingerprint.clone(),
            }),
            (None, true) => Some(HostKeyPolicy::AcceptNew),
            (None, false) => None,
        });
    }
    if args.host_key.is_some() {
        return Err(Failure::usage(
            "an FTPS server is trusted by its TLS certificate: give --cert-fingerprint (as \
             `openssl x509 -noout -fingerprint -sha256` prints it), not --host-key",
        ));
    }
    if protocol == Protocol::Ftp {
        if !args.allow_plaintext {
            return Err(Failure::usage(
                "plain FTP sends the password across the network in clear: use --protocol ftps \
                 (or ftps-implicit), or pass --allow-plaintext if that is acceptable here",
            ));
        }
        if args.cert_fingerprint.is_some() || args.ca.is_some() {
            return Err(Failure::usage(
                "plain FTP has no certificate to pin or check: use --protocol ftps",
            ));
        }
        // Nothing proves a plain FTP server; nothing is pinned.
        return Ok(Some(HostKeyPolicy::AcceptNew));
    }
    if let Some(given) = &args.cert_fingerprint {
        let fingerprint = certificate_fingerprint(given).map_err(Failure::usage)?;
        return Ok(Some(HostKeyPolicy::Pin { fingerprint }));
    }
    if let Some(ca) = &args.ca {
        let pem = match ca.as_str() {
            "system" => None,
            path => Some(std::fs::read_to_string(path).map_err(|e| {
                Failure::new(
                    "io_error",
                    format!("cannot read the certificate authorities in {path}: {e}"),
                )
            })?),
        };
        return Ok(Some(HostKeyPolicy::Ca { pem }));
    }
    Ok(args.accept_new.then_some(HostKeyPolicy::AcceptNew))
}

/// A `--cert-fingerprint` in the form it is pinned in.
fn given_certificate(given: Option<&str>) -> Result<Option<String>> {
    given
        .map(certificate_fingerprint)
        .transpose()
        .map_err(Failure::usage)
}

pub(super) async fn add(client: &Client, args: AddArgs) -> Result<u8> {
    check_name(&args.name)?;
    let port = args.port.unwrap_or(args.protocol.default_port());
    // Decide the trust before reading secrets: a refusal costs nothing.
    let host_key = match trust_flags(&args)? {
        Some(policy) => policy,
        None => {
            let probe = ProbeHostKey {
                host: args.host.clone(),
                port,
                protocol: args.protocol,
                jump: args.jump.clone(),
            };
            ask_host_key(client, probe).await?
        }
    };
    // clap requires one of --key-file and --password-stdin.
    let whom = format!("{}@{}", args.user, args.host);
    let credential = read_credential(&args.credential, &whom)?
        .ok_or_else(|| Failure::usage("give --key-file PATH or --password-stdin"))?;
    let request = AddProfile {
        name: args.name,
        protocol: args.protocol,
        allow_plaintext: args.allow_plaintext,
        host: args.host,
        port: args.port,
        user: args.user,
        credential,
        host_key,
        connect_timeout_secs: args.connect_timeout,
        keepalive_secs: args.keepalive,
        generate_key: args.generate_key,
        authorized_keys: args.authorized_keys,
        jump: args.jump,
    };
    let profile: ProfileInfo = client.call(&ep::AddProfileCall {}, &request).await?;
    drop(request);
    if args.json {
        print_json(&profile)?;
    } else {
        // The server's notice reaches the person once, here, and again on
        // each `tether shell`; never in a command's output.
        if let Some(banner) = &profile.banner {
            eprint!("{}", banner_lines(banner, "\n"));
        }
        let trust = match (&profile.ca, profile.host_keys.first()) {
            (Some(ca), _) => format!("certificate checked against authorities ({ca})"),
            (None, Some(key)) => describe_host_key(key),
            (None, None) => "nothing proves the server (plain FTP)".to_owned(),
        };
        println!(
            "added profile {} ({}), {trust}",
            profile.name,
            target_of(&profile)
        );
    }
    Ok(0)
}

/// Shows the server's host key (or TLS certificate) on the terminal and
/// asks whether to trust it.
pub(super) async fn ask_host_key(client: &Client, probe: ProbeHostKey) -> Result<HostKeyPolicy> {
    let protocol = probe.protocol;
    let no_terminal = || {
        Failure::usage(if protocol.is_ssh() {
            "no terminal to confirm the server's host key: pass --host-key SHA256:... \
             (from `ssh-keygen -lf` on the server) or --accept-new to trust the key it shows now"
        } else {
            "no terminal to confirm the server's TLS certificate: pass --cert-fingerprint \
             (from `openssl x509 -noout -fingerprint -sha256` on the server), --ca system, or \
             --accept-new to trust the certificate it shows now"
        })
    };
    if !prompt::can_ask() {
        return Err(no_terminal());
    }
    let key: HostKeyInfo = client.call(&ep::ProbeHost {}, &probe).await?;
    let what = if protocol.is_ssh() {
        "host key"
    } else {
        "TLS certificate"
    };
    let through = match &probe.jump {
        Some(jump) => format!(" (reached through {jump})"),
        None => String::new(),
    };
    prompt::tell(&format!(
        "The server {}{through} presents this {what}:",
        host_and_port(&probe.host, probe.port)
    ));
    prompt::tell(&format!("  {}", describe_host_key(&key)));
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

pub(super) async fn trust(client: &Client, args: TrustArgs) -> Result<u8> {
    check_name(&args.name)?;
    if let Some(fingerprint) = &args.host_key {
        check_fingerprint(fingerprint)?;
    }
    let given_cert = given_certificate(args.cert_fingerprint.as_deref())?;
    let profile = fetch(client, &args.name).await?;
    let ssh = profile.protocol.is_ssh();
    if profile.protocol == Protocol::Ftp {
        return Err(Failure::usage(format!(
            "{} is a plain FTP profile: there is no certificate to trust",
            args.name
        )));
    }
    if ssh && given_cert.is_some() || !ssh && args.host_key.is_some() {
        return Err(Failure::usage(if ssh {
            "an SSH profile pins a host key: give --host-key, not --cert-fingerprint"
        } else {
            "an FTPS profile pins a certificate: give --cert-fingerprint, not --host-key"
        }));
    }
    let what = if ssh { "host key" } else { "certificate" };
    let old: Vec<String> = profile.host_keys.iter().map(describe_host_key).collect();
    let fingerprint = match args.host_key.or(given_cert) {
        Some(fingerprint) => fingerprint,
        None => {
            let no_terminal = || {
                Failure::usage(if ssh {
                    "no terminal to confirm the new host key: pass --host-key SHA256:... \
                     (from `ssh-keygen -lf` on the server)"
                } else {
                    "no terminal to confirm the new certificate: pass --cert-fingerprint \
                     (from `openssl x509 -noout -fingerprint -sha256` on the server)"
                })
            };
            if !prompt::can_ask() {
                return Err(no_terminal());
            }
            let probe = ProbeHostKey {
                host: profile.host.clone(),
                port: profile.port,
                protocol: profile.protocol,
                jump: profile.jump.clone(),
            };
            let new: HostKeyInfo = client.call(&ep::ProbeHost {}, &probe).await?;
            if profile
                .host_keys
                .iter()
                .any(|k| k.fingerprint == new.fingerprint)
            {
                println!(
                    "the {what} of {} is unchanged: {}",
                    args.name,
                    describe_host_key(&new)
                );
                return Ok(0);
            }
            prompt::tell(&format!(
                "The {what} of {} ({}) has changed.",
                args.name,
                host_and_port(&profile.host, profile.port)
            ));
            prompt::tell(&format!("  pinned: {}", old.join(", ")));
            prompt::tell(&format!("  now:    {}", describe_host_key(&new)));
            prompt::tell(
                "Only accept it if you know why it changed (server reinstalled, key rotated).",
            );
            match prompt::confirm(&format!("Pin the new {what}?")) {
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
    let whom = format!("{}@{}", profile.user, profile.host);
    let credential = read_credential(&args.credential, &whom)?;
    let update = UpdateProfile {
        host_key: Some(HostKeyPolicy::Pin { fingerprint }),
        credential,
        ..UpdateProfile::default()
    };
    let updated: ProfileInfo = client
        .call(
            &ep::UpdateProfileCall {
                name: args.name.clone(),
            },
            &update,
        )
        .await?;
    if args.json.json {
        print_json(&updated)?;
    } else {
        let new: Vec<String> = updated.host_keys.iter().map(describe_host_key).collect();
        println!(
            "{}: {what} was {}, is now {}",
            args.name,
            old.join(", "),
            new.join(", ")
        );
    }
    Ok(0)
}

pub(super) async fn set(client: &Client, args: SetArgs) -> Result<u8> {
    check_name(&args.name)?;
    if let Some(fingerprint) = &args.host_key {
        check_fingerprint(fingerprint)?;
    }
    let given_cert = given_certificate(args.cert_fingerprint.as_deref())?;
    let host_key = match (args.host_key.or(given_cert), args.accept_new) {
        (Some(fingerprint), _) => Some(HostKeyPolicy::Pin { fingerprint }),
        (None, true) => Some(HostKeyPolicy::AcceptNew),
        (None, false) => None,
    };
    let credential = if args.credential.given() {
        let whom = match (&args.user, &args.host) {
            (Some(user), Some(host)) => format!("{user}@{host}"),
            _ => {
                let current = fetch(client, &args.name).await?;
                format!(
                    "{}@{}",
                    args.user.as_deref().unwrap_or(&current.user),
                    args.host.as_deref().unwrap_or(&current.host)
                )
            }
        };
        read_credential(&args.credential, &whom)?
    } else {
        None
    };
    let update = UpdateProfile {
        host: args.host,
        port: args.port,
        user: args.user,
        credential,
        host_key,
        connect_timeout_secs: args.connect_timeout,
        keepalive_secs: args.keepalive,
        jump: match (args.jump, args.no_jump) {
            (Some(jump), _) => Some(jump),
            (None, true) => Some(String::new()),
            (None, false) => None,
        },
    };
    let nothing = update.host.is_none()
        && update.port.is_none()
        && update.user.is_none()
        && update.credential.is_none()
        && update.host_key.is_none()
        && update.connect_timeout_secs.is_none()
        && update.keepalive_secs.is_none()
        && update.jump.is_none();
    if nothing {
        return Err(Failure::usage(
            "nothing to change: see `tether profile set --help`",
        ));
    }
    let rotated = update.credential.is_some();
    let updated: ProfileInfo = client
        .call(
            &ep::UpdateProfileCall {
                name: args.name.clone(),
            },
            &update,
        )
        .await?;
    drop(update);
    if args.json.json {
        print_json(&updated)?;
    } else {
        println!(
            "updated profile {} ({}@{}){}",
            updated.name,
            updated.user,
            host_and_port(&updated.host, updated.port),
            if rotated { ", secret rotated" } else { "" }
        );
    }
    Ok(0)
}
