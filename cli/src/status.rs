//! `tether status`

use clap::Args;
use tether_api::client::Client;
use tether_api::endpoint as ep;
use tether_api::types::{MasterKeyKind, Mode, Status};

use crate::failure::Result;
use crate::output::{print_json, printable};

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print JSON for scripts
    #[arg(long)]
    json: bool,
}

pub async fn run(client: &Client, args: StatusArgs) -> Result<u8> {
    let status: Status = client.call(&ep::GetStatus {}, &()).await?;
    // A damaged store is a failure for monitoring scripts.
    let code = match status.store.as_ref().and_then(|s| s.damaged.as_ref()) {
        Some(_) => 1,
        None => 0,
    };
    if args.json {
        print_json(&status)?;
        return Ok(code);
    }
    let mode = match status.mode {
        Mode::User => "user (tetherd --user)",
        Mode::System => "system",
    };
    println!(
        "tetherd {} (API v{}), running for {}",
        status.daemon_version,
        status.api_version,
        uptime(status.uptime_secs)
    );
    println!("mode:      {mode}, daemon uid {}", status.daemon_uid);
    println!("socket:    {}", status.socket);
    println!("state:     {}", status.state_dir);
    println!("profiles:  {}", status.profiles);
    println!("you:       uid {}", status.caller_uid);
    if let Some(store) = &status.store {
        match &store.damaged {
            None => println!("store:     intact, generation {}", store.generation),
            Some(damage) => {
                println!("store:     DAMAGED, none of its records are served");
                println!("           {}", printable(damage));
                println!(
                    "           restore a backup (`tetherd restore`) or take it as it is \
                     (`tetherd check --state-dir {} --accept`)",
                    printable(&status.state_dir)
                );
            }
        }
    }
    if let Some(kind) = status.master_key {
        let kind = match kind {
            MasterKeyKind::File => "key file",
            MasterKeyKind::Credential => "systemd credential",
            MasterKeyKind::Passphrase => "wrapped by a passphrase",
            MasterKeyKind::PassphraseUnset => "passphrase not set yet",
        };
        println!("key:       {kind}");
    }
    if status.sealed {
        println!("SEALED:    tetherd holds no master key; `tether unseal` gives it back");
    }
    Ok(code)
}

fn uptime(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        3600..86400 => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d{:02}h", secs / 86400, secs % 86400 / 3600),
    }
}
