//! `tether session list|close`

use clap::Subcommand;
use tether_api::client::Client;
use tether_api::endpoint as ep;
use tether_api::types::{SessionList, SessionsClosed};

use crate::failure::Result;
use crate::output::{print_json, print_table};
use crate::profile::{JsonFlag, check_name};

#[derive(Debug, Subcommand)]
pub enum SessionCommand {
    /// Live connections: profile, server, age, idle time, channels, bytes.
    /// A channel marked stalled has a caller that stopped reading its output:
    /// that connection takes no new commands until the caller reads on.
    List(JsonFlag),
    /// Close a profile's connections now (running commands on them fail)
    Close {
        /// Profile name
        #[arg(add = clap_complete::ArgValueCompleter::new(crate::complete::profiles))]
        name: String,
        #[command(flatten)]
        json: JsonFlag,
    },
}

pub async fn run(client: &Client, command: SessionCommand) -> Result<u8> {
    match command {
        SessionCommand::List(flag) => {
            let list: SessionList = client.call(&ep::ListSessions {}, &()).await?;
            if flag.json {
                return print_json(&list).map(|()| 0);
            }
            if list.sessions.is_empty() {
                println!("no live connections");
                return Ok(0);
            }
            let rows: Vec<Vec<String>> = list
                .sessions
                .iter()
                .map(|s| {
                    vec![
                        s.profile.clone(),
                        s.remote.clone(),
                        duration(s.age_secs),
                        if s.channels > 0 {
                            "-".to_owned()
                        } else {
                            duration(s.idle_secs)
                        },
                        match s.stalled {
                            0 => s.channels.to_string(),
                            n => format!("{} ({n} stalled)", s.channels),
                        },
                        bytes(s.bytes_in),
                        bytes(s.bytes_out),
                    ]
                })
                .collect();
            print_table(
                &["PROFILE", "REMOTE", "AGE", "IDLE", "CHANNELS", "IN", "OUT"],
                &rows,
            );
            Ok(0)
        }
        SessionCommand::Close { name, json } => {
            check_name(&name)?;
            let closed: SessionsClosed = client
                .call(&ep::CloseSessions { name: name.clone() }, &())
                .await?;
            if json.json {
                return print_json(&closed).map(|()| 0);
            }
            match closed.closed {
                0 => println!("{name} had no live connection"),
                1 => println!("closed 1 connection to {name}"),
                n => println!("closed {n} connections to {name}"),
            }
            Ok(0)
        }
    }
}

fn duration(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        _ => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
    }
}

fn bytes(n: u64) -> String {
    match n {
        0..1024 => format!("{n}B"),
        1024..1_048_576 => format!("{:.1}K", n as f64 / 1024.0),
        1_048_576..1_073_741_824 => format!("{:.1}M", n as f64 / 1_048_576.0),
        _ => format!("{:.1}G", n as f64 / 1_073_741_824.0),
    }
}
