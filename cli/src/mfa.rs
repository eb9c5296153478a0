//! `tether mfa enroll|confirm|status|reset`, `tether login`, `tether logout`.
//!
//! Codes are read from stdin (without echo on a terminal), never from the
//! command line.

use std::io::IsTerminal;

use clap::Subcommand;
use qrcode::QrCode;
use qrcode::render::unicode::Dense1x2;
use tether_api::access::{
    CodeRequest, EnrollConfirmed, EnrollRequest, EnrollStarted, Invite, InviteRequest, MfaStatus,
    ResetRequest,
};
use tether_api::client::Client;
use tether_api::endpoint as ep;
use tether_api::secret::Secret;

use crate::failure::{Failure, Result};
use crate::output::{print_json, timestamp};
use crate::profile::JsonFlag;
use crate::prompt::read_secret;

#[derive(Debug, Subcommand)]
pub enum MfaCommand {
    /// Enrol a TOTP authenticator: shows a QR code and the otpauth URI, asks
    /// for a code to confirm, then shows ten backup codes once. With --json,
    /// prints the URI and secret and stops; confirm with `tether mfa confirm`.
    Enroll(EnrollArgs),
    /// Root: a one-time code that lets USER enrol once (for hosts with
    /// `[mfa] enrolment = "invite"`); shown once, void after --ttl
    Invite {
        /// The user (name or uid)
        user: String,
        /// How long the code stays valid: 30m, 12h, 7d (at most 7d)
        #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = parse_duration)]
        ttl: u64,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Confirm a pending enrolment with a code read from stdin
    Confirm(JsonFlag),
    /// Whether you are enrolled and logged in, and for how long
    Status(JsonFlag),
    /// Root: clear USER's lockout; with --unenroll also remove their TOTP
    /// (for a lost phone) and end their MFA sessions
    Reset {
        user: String,
        #[arg(long)]
        unenroll: bool,
    },
}

#[derive(Debug, clap::Args)]
pub struct EnrollArgs {
    /// Read the one-time invite code root gave you from stdin first (where
    /// enrolment is by invite)
    #[arg(long)]
    invite: bool,
    #[command(flatten)]
    json: JsonFlag,
}

/// `90s`, `30m`, `12h`, `7d` or plain seconds.
fn parse_duration(text: &str) -> std::result::Result<u64, String> {
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 30m, 12h or 7d"))?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{text:?} is not a duration such as 30m, 12h or 7d")),
    };
    Ok(number.saturating_mul(scale))
}

fn qr(uri: &str) -> Option<String> {
    let code = QrCode::new(uri.as_bytes()).ok()?;
    Some(
        code.render::<Dense1x2>()
            .dark_color(Dense1x2::Light)
            .light_color(Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
    )
}

async fn confirm(client: &Client, json: bool) -> Result<u8> {
    let code = read_secret("code from your authenticator")?;
    let confirmed: EnrollConfirmed = client
        .call(
            &ep::MfaConfirm {},
            &CodeRequest {
                code: Secret::new(code.to_string()),
            },
        )
        .await?;
    if json {
        print_json(&confirmed)?;
        return Ok(0);
    }
    println!("TOTP enrolled, and you are logged in for this login session.");
    println!();
    println!("Backup codes: each works once, in place of a TOTP code. Keep them somewhere safe;");
    println!("they are not shown again.");
    println!();
    for code in &confirmed.backup_codes {
        println!("    {}", code.expose());
    }
    Ok(0)
}

pub async fn mfa(client: &Client, command: MfaCommand) -> Result<u8> {
    match command {
        MfaCommand::Enroll(args) => {
            let request = Some(EnrollRequest {
                invite: if args.invite {
                    Some(Secret::new(read_secret("invite code")?.to_string()))
                } else {
                    None
                },
            });
            let started: EnrollStarted = client.call(&ep::MfaEnroll {}, &request).await?;
            drop(request);
            let flag = args.json;
            if flag.json {
                print_json(&started)?;
                return Ok(0);
            }
            println!("Scan this with your authenticator app (or enter the secret by hand):");
            println!();
            if let Some(picture) = qr(started.uri.expose()) {
                println!("{picture}");
            }
            println!("secret: {}", started.secret.expose());
            println!("uri:    {}", started.uri.expose());
            println!();
            if !std::io::stdin().is_terminal() {
                eprintln!("Reading the first code from stdin to confirm.");
            }
            confirm(client, false).await
        }
        MfaCommand::Confirm(flag) => confirm(client, flag.json).await,
        MfaCommand::Status(flag) => {
            let status: MfaStatus = client.call(&ep::MfaStatusCall {}, &()).await?;
            print_status(&status, flag.json)
        }
        MfaCommand::Invite { user, ttl, json } => {
            let invite: Invite = client
                .call(
                    &ep::MfaInvite {},
                    &InviteRequest {
                        user,
                        ttl_secs: Some(ttl),
                    },
                )
                .await?;
            if json.json {
                print_json(&invite)?;
            } else {
                println!(
                    "invite for {} (uid {}), valid once until {}:",
                    invite.user,
                    invite.uid,
                    timestamp(invite.expires_at)
                );
                println!();
                println!("    {}", invite.code.expose());
                println!();
                println!(
                    "Give it to them in person or over a channel you trust; they run \
                     `tether mfa enroll --invite` and type it."
                );
            }
            Ok(0)
        }
        MfaCommand::Reset { user, unenroll } => {
            client
                .call(
                    &ep::MfaReset {},
                    &ResetRequest {
                        user: user.clone(),
                        unenroll,
                    },
                )
                .await?;
            if unenroll {
                println!("{user}'s TOTP and backup codes are removed, and the lockout cleared");
            } else {
                println!("{user}'s lockout is cleared");
            }
            Ok(0)
        }
    }
}

fn print_status(status: &MfaStatus, json: bool) -> Result<u8> {
    if json {
        print_json(status)?;
        return Ok(0);
    }
    if !status.enrolled {
        println!("not enrolled: run `tether mfa enroll`");
        return Ok(0);
    }
    println!("enrolled, {} backup codes left", status.backup_codes_left);
    match &status.session {
        Some(session) => println!(
            "logged in: {} min left, ends after {} min unused",
            session.expires_in_secs / 60,
            session.idle_expires_in_secs / 60
        ),
        None => println!("not logged in: run `tether login`"),
    }
    Ok(0)
}

pub async fn login(client: &Client, json: bool) -> Result<u8> {
    // Nothing to type a code for without an enrolment (or on a daemon
    // without MFA): say so before asking.
    let status: MfaStatus = client.call(&ep::MfaStatusCall {}, &()).await?;
    if !status.enrolled {
        return Err(Failure::new(
            "mfa_not_enrolled",
            "you have no TOTP enrolled: run `tether mfa enroll` first",
        ));
    }
    let code = read_secret("TOTP or backup code")?;
    let status: MfaStatus = client
        .call(
            &ep::MfaLogin {},
            &CodeRequest {
                code: Secret::new(code.to_string()),
            },
        )
        .await?;
    print_status(&status, json)
}

pub async fn logout(client: &Client) -> Result<u8> {
    let _: MfaStatus = client.call(&ep::MfaLogout {}, &()).await?;
    println!("logged out: the MFA session of this login session has ended");
    Ok(0)
}
