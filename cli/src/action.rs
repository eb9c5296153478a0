//! `tether action` (named actions: add, set, list, remove) and `tether
//! run` (run one, as cron jobs do).

use clap::{Args, Subcommand};
use tether_api::access::{Action, ActionChange, RunRequest};
use tether_api::client::Client;
use tether_api::endpoint as ep;

use crate::failure::Result;
use crate::output::{print_json, print_table};
use crate::profile::{JsonFlag, check_name};
use crate::stream::{Input, pump};

#[derive(Debug, Subcommand)]
pub enum ActionCommand {
    /// Define a named action (root): an argv template where {key:PATTERN} is
    /// a parameter whose value must match PATTERN (e.g. backup -- pg_dump
    /// --dbname={db:[a-z_]+}); refused where the name exists
    Add {
        #[arg(add = clap_complete::ArgValueCompleter::new(crate::complete::profiles))]
        profile: String,
        name: String,
        #[arg(last = true, required = true, value_name = "ARGV-TEMPLATE")]
        argv: Vec<String>,
    },
    /// Replace an action's template (root), and show the old one
    Set {
        #[arg(add = clap_complete::ArgValueCompleter::new(crate::complete::profiles))]
        profile: String,
        name: String,
        #[arg(last = true, required = true, value_name = "ARGV-TEMPLATE")]
        argv: Vec<String>,
    },
    /// List a profile's actions
    List {
        #[arg(add = clap_complete::ArgValueCompleter::new(crate::complete::profiles))]
        profile: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Remove a named action
    Remove { profile: String, name: String },
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Profile name
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::complete::profiles))]
    profile: String,
    /// The action's name
    action: String,
    /// The action's parameters, each key=value
    #[arg(value_name = "KEY=VALUE")]
    args: Vec<String>,
    /// End the action after SECS seconds and exit 124
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=604_800))]
    timeout: Option<u64>,
}

pub async fn action(client: &Client, command: ActionCommand) -> Result<u8> {
    match command {
        ActionCommand::Add {
            profile,
            name,
            argv,
        } => {
            check_name(&profile)?;
            let action: Action = client
                .call(
                    &ep::AddAction {
                        name: profile.clone(),
                    },
                    &Action { name, argv },
                )
                .await?;
            println!(
                "action {} on {profile}: {}",
                action.name,
                action.argv.join(" ")
            );
        }
        ActionCommand::Set {
            profile,
            name,
            argv,
        } => {
            check_name(&profile)?;
            let change: ActionChange = client
                .call(
                    &ep::SetAction {
                        name: profile.clone(),
                    },
                    &Action { name, argv },
                )
                .await?;
            println!(
                "action {} on {profile}: was {}, is now {}",
                change.after.name,
                change.before.argv.join(" "),
                change.after.argv.join(" ")
            );
        }
        ActionCommand::List { profile, json } => {
            check_name(&profile)?;
            let actions: Vec<Action> = client
                .call(
                    &ep::ListActions {
                        name: profile.clone(),
                    },
                    &(),
                )
                .await?;
            if json.json {
                print_json(&actions)?;
            } else if actions.is_empty() {
                println!("no actions on {profile}");
            } else {
                let rows: Vec<Vec<String>> = actions
                    .iter()
                    .map(|a| vec![a.name.clone(), a.argv.join(" ")])
                    .collect();
                print_table(&["ACTION", "ARGV"], &rows);
            }
        }
        ActionCommand::Remove { profile, name } => {
            check_name(&profile)?;
            client
                .call(
                    &ep::RemoveAction {
                        name: profile.clone(),
                        action: name.clone(),
                    },
                    &(),
                )
                .await?;
            println!("action {name} removed from {profile}");
        }
    }
    Ok(0)
}

pub async fn run(client: &Client, args: RunArgs) -> Result<u8> {
    check_name(&args.profile)?;
    let request = RunRequest {
        action: args.action,
        args: args.args,
        timeout_secs: args.timeout,
    };
    let stream = client
        .open_stream(
            &ep::RunAction {
                name: args.profile.clone(),
            },
            &request,
        )
        .await?;
    pump(stream, Input::Plain, false, None).await
}
