//! The store's own life (root): `tether seal`, `tether unseal`, `tether
//! passphrase change`, `tether rekey`, `tether backup`.

use std::io::{IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use clap::Args;
use http_body_util::BodyExt;
use tether_api::client::Client;
use tether_api::endpoint as ep;
use tether_api::secret::Secret;
use tether_api::types::{
    BACKUP_GENERATION_HEADER, BACKUP_KEY_ID_HEADER, MasterKeyKind, PassphraseChange, RekeyRequest,
    RekeyResult, Status, UnsealRequest, UnsealResult,
};

use crate::failure::{Failure, Result};
use crate::output::{print_json, printable};
use crate::prompt;

#[derive(Debug, Args)]
pub struct RekeyArgs {
    /// Print JSON for scripts
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Subcommand)]
pub enum PassphraseCommand {
    /// Wrap the master key with a new passphrase (the old one first; the
    /// new one twice on a terminal, or two lines of stdin)
    Change,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Write the backup to FILE (created 0600, replaced whole) instead of
    /// stdout
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
}

pub async fn seal(client: &Client) -> Result<u8> {
    client.call(&ep::Seal {}, &()).await?;
    println!(
        "sealed: the master key is wiped and every connection closed; `tether unseal` gives \
         it back"
    );
    Ok(0)
}

/// Where the daemon's key comes from (asked of the daemon: only root sees
/// it).
async fn master_key(client: &Client) -> Result<Option<MasterKeyKind>> {
    let status: Status = client.call(&ep::GetStatus {}, &()).await?;
    Ok(status.master_key)
}

/// A new passphrase: twice on a terminal (they must match), one line of
/// stdin otherwise.
fn new_passphrase(label: &str) -> Result<Secret> {
    let first = prompt::read_secret(label)?;
    if std::io::stdin().is_terminal() {
        let again = prompt::read_secret(&format!("{label} (again)"))?;
        if *again != *first {
            return Err(Failure::usage(
                "the two passphrases differ; nothing was changed",
            ));
        }
    }
    Ok(Secret::new(first.to_string()))
}

pub async fn unseal(client: &Client) -> Result<u8> {
    let request = match master_key(client).await? {
        Some(MasterKeyKind::PassphraseUnset) => {
            prompt::tell(
                "tetherd has no passphrase yet: the one you give now will wrap its master key \
                 (at least 10 characters; keep it safe, nothing can open the store without it)",
            );
            UnsealRequest {
                passphrase: Some(new_passphrase("new passphrase")?),
            }
        }
        Some(MasterKeyKind::Passphrase) => UnsealRequest {
            passphrase: Some(Secret::new(prompt::read_secret("passphrase")?.to_string())),
        },
        _ => UnsealRequest::default(),
    };
    let done: UnsealResult = client.call(&ep::Unseal {}, &request).await?;
    drop(request);
    if done.passphrase_set {
        println!("unsealed; the passphrase is set and the master key is kept only wrapped");
    } else {
        println!("unsealed");
    }
    Ok(0)
}

pub async fn passphrase(client: &Client, command: PassphraseCommand) -> Result<u8> {
    match command {
        PassphraseCommand::Change => {
            let old = Secret::new(prompt::read_secret("current passphrase")?.to_string());
            let new = new_passphrase("new passphrase")?;
            client
                .call(&ep::ChangePassphrase {}, &PassphraseChange { old, new })
                .await?;
            println!("the master key is wrapped with the new passphrase");
            Ok(0)
        }
    }
}

pub async fn rekey(client: &Client, args: RekeyArgs) -> Result<u8> {
    let request = match master_key(client).await? {
        Some(MasterKeyKind::Passphrase) => RekeyRequest {
            passphrase: Some(Secret::new(prompt::read_secret("passphrase")?.to_string())),
        },
        _ => RekeyRequest::default(),
    };
    let done: RekeyResult = client.call(&ep::Rekey {}, &request).await?;
    if args.json {
        print_json(&done)?;
        return Ok(0);
    }
    println!(
        "rekeyed: {} records are sealed under the new master key (id {}); the old key (id {}) \
         opens nothing in the store now",
        done.records, done.new_key_id, done.old_key_id
    );
    println!(
        "backups made before need the old key: keep it as long as you keep them; make a new \
         backup now (tether backup -o FILE)"
    );
    Ok(0)
}

pub async fn backup(client: &Client, args: BackupArgs) -> Result<u8> {
    if args.output.is_none() && std::io::stdout().is_terminal() {
        return Err(Failure::usage(
            "a backup is binary: give -o FILE, or redirect stdout to a file",
        ));
    }
    let (headers, body) = client.call_binary(&ep::Backup {}).await?;
    let bytes = body
        .collect()
        .await
        .map_err(|e| Failure::new("daemon_unavailable", format!("the backup was cut off: {e}")))?
        .to_bytes();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("?")
            .to_owned()
    };
    let where_to = match &args.output {
        Some(path) => {
            write_private(path, &bytes)?;
            path.display().to_string()
        }
        None => {
            let mut stdout = std::io::stdout();
            stdout
                .write_all(&bytes)
                .and_then(|()| stdout.flush())
                .map_err(|e| Failure::new("io_error", format!("cannot write stdout: {e}")))?;
            "stdout".to_owned()
        }
    };
    eprintln!(
        "backup of generation {} ({} bytes) written to {}; it needs the master key with id {} \
         to restore: tetherd restore --state-dir DIR FILE",
        header(BACKUP_GENERATION_HEADER),
        bytes.len(),
        printable(&where_to),
        header(BACKUP_KEY_ID_HEADER)
    );
    Ok(0)
}

/// Writes `bytes` to `path` whole: a 0600 file beside it, synced, renamed
/// over it.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    let failed = |e: std::io::Error| {
        Failure::new(
            "io_error",
            format!(
                "cannot write {}: {e}",
                printable(&path.display().to_string())
            ),
        )
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "backup".into());
    let temporary = dir.join(format!(".{name}.tether-{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(failed)?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&temporary, path));
    if let Err(error) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(failed(error));
    }
    Ok(())
}
