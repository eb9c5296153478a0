//! `tether status`

use clap::Args;
use tether_api::client::Client;
use tether_api::types::{Mode, Status};

use crate::failure::Result;
use crate::output::print_json;

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print JSON for scripts
    #[arg(long)]
    json: bool,
}

pub async fn run(client: &Client, args: StatusArgs) -> Result<u8> {
    let status: Status = client.get("/v1/status").await?;
    if args.json {
        print_json(&status)?;
        return Ok(0);
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
    if status.sealed {
        println!("SEALED:    the master key is wiped; restart tetherd to use it again");
    }
    Ok(0)
}

fn uptime(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        3600..86400 => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d{:02}h", secs / 86400, secs % 86400 / 3600),
    }
}
