//! `tether profile rotate NAME` and `tether profile show NAME --public-key`:
//! the profile's key, made and kept inside tetherd.

use clap::Args;
use tether_api::client::Client;
use tether_api::endpoint as ep;
use tether_api::types::{PublicKey, RotateRequest, RotateResult};

use super::{check_name, describe_host_key};
use crate::failure::Result;
use crate::output::{print_json, printable};

#[derive(Debug, Args)]
pub struct RotateArgs {
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::complete::profiles))]
    name: String,
    /// Say what would change on the server and in the profile; change
    /// nothing
    #[arg(long)]
    dry_run: bool,
    /// Move a password profile to a key made inside tetherd (the password
    /// is forgotten once the key logs in)
    #[arg(long)]
    to_key: bool,
    /// The login's authorized_keys file on the server, relative to its home
    /// (as sshd's AuthorizedKeysFile says) [default: .ssh/authorized_keys]
    #[arg(long, value_name = "PATH")]
    authorized_keys: Option<String>,
    /// Print JSON for scripts
    #[arg(long)]
    json: bool,
}

pub(super) async fn rotate(client: &Client, args: RotateArgs) -> Result<u8> {
    check_name(&args.name)?;
    let request = RotateRequest {
        dry_run: args.dry_run,
        to_key: args.to_key,
        authorized_keys: args.authorized_keys,
    };
    let done: RotateResult = client
        .call(
            &ep::RotateKey {
                name: args.name.clone(),
            },
            &request,
        )
        .await?;
    if args.json {
        print_json(&done)?;
        return Ok(if done.warning.is_some() { 1 } else { 0 });
    }
    let file = printable(&done.authorized_keys);
    let old = done
        .old_key
        .as_ref()
        .map(describe_host_key)
        .unwrap_or_else(|| "the password".into());
    let new = describe_host_key(&done.new_key);
    if done.dry_run {
        println!("would add a new key ({new}) to {file}, with the old line's options;");
        println!("log in with it on a fresh connection, store it in place of {old},");
        if done.old_key.is_some() {
            println!("and remove the old key's line from {file}. Nothing was changed.");
        } else {
            println!("and forget the password. Nothing was changed.");
        }
        return Ok(0);
    }
    println!("{}: {old} replaced by {new}", args.name);
    match &done.warning {
        None if done.old_key.is_some() => println!("the old key's line is gone from {file}"),
        None => {}
        Some(warning) => {
            eprintln!("tether: warning: {}", printable(warning));
            return Ok(1);
        }
    }
    Ok(0)
}

pub(super) async fn public_key(client: &Client, name: &str) -> Result<u8> {
    check_name(name)?;
    let key: PublicKey = client
        .call(
            &ep::ShowPublicKey {
                name: name.to_owned(),
            },
            &(),
        )
        .await?;
    println!("{}", printable(&key.authorized_key));
    Ok(0)
}
