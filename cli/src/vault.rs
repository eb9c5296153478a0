//! The store's own life (root): `tether seal`, `tether rekey`,
//! `tether backup`.

use std::io::{IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use clap::Args;
use http_body_util::BodyExt;
use tether_api::client::Client;
use tether_api::types::{BACKUP_GENERATION_HEADER, BACKUP_KEY_ID_HEADER, RekeyResult};

use crate::failure::{Failure, Result};
use crate::output::{print_json, printable};

#[derive(Debug, Args)]
pub struct RekeyArgs {
    /// Print JSON for scripts
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Write the backup to FILE (created 0600, replaced whole) instead of
    /// stdout
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
}

pub async fn seal(client: &Client) -> Result<u8> {
    client.post_no_answer("/v1/seal", &()).await?;
    println!(
        "sealed: the master key is wiped and every connection closed; restart tetherd to unseal"
    );
    Ok(0)
}

pub async fn rekey(client: &Client, args: RekeyArgs) -> Result<u8> {
    let done: RekeyResult = client.post("/v1/rekey", &()).await?;
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
    let (headers, body) = client.get_body("/v1/backup").await?;
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
