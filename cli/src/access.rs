//! `tether grant`, `tether action`, `tether run` and `tether whoami`.

use clap::{Args, Subcommand, ValueEnum};
use tether_api::access::{
    ExecPolicy, Grant, GrantChange, GrantRequest, Role, SftpAccess, Subject, Whoami,
};
use tether_api::client::Client;
use tether_api::endpoint as ep;

use crate::failure::{Failure, Result};
use crate::output::{print_json, print_table};
use crate::profile::{JsonFlag, check_name};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RoleArg {
    Viewer,
    Operator,
    Owner,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SftpArg {
    None,
    Read,
    Write,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("who").required(true).args(["user", "group"]))]
pub struct GrantAddArgs {
    /// Profile name
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::complete::profiles))]
    profile: String,
    /// The user (name or uid) the grant is for
    #[arg(long)]
    user: Option<String>,
    /// The group (name or gid) the grant is for: every member gets it
    #[arg(long)]
    group: Option<String>,
    /// viewer: see the profile; operator: use it within the policy; owner:
    /// also change it, its actions and its grants
    #[arg(long, value_enum)]
    role: RoleArg,
    /// Allow interactive shells
    #[arg(long)]
    shell: bool,
    /// `any` for any command, or a comma-separated list of named actions;
    /// default: none
    #[arg(long, value_name = "any|ACTION,...")]
    exec: Option<String>,
    /// SFTP and `tether cp` access
    #[arg(long, value_enum, default_value = "none")]
    sftp: SftpArg,
    /// Limit SFTP to these absolute path prefixes (symlinks and `..` are
    /// resolved on the server before the check)
    #[arg(long = "path", value_name = "PREFIX")]
    paths: Vec<String>,
    /// For cron and services: no MFA needed, but only named actions may run
    #[arg(long)]
    unattended: bool,
    /// Let `tether agent` sign for logins made from a server reached with
    /// `ssh -A` (needs --shell)
    #[arg(long)]
    agent_forwarding: bool,
    /// Let `tether forward` and `tether proxy` connect to HOST:PORT through
    /// the server (repeatable; HOST as the server resolves it; `*` for
    /// either part only on an owner's grant)
    #[arg(long = "forward", value_name = "HOST:PORT")]
    forward: Vec<String>,
    #[command(flatten)]
    json: JsonFlag,
}

#[derive(Debug, Subcommand)]
pub enum GrantCommand {
    /// Give a user or group access to a profile (refused where they have a
    /// grant there: `grant set` changes one)
    Add(GrantAddArgs),
    /// Replace a user's or group's grant on a profile with the one the
    /// flags describe, and say what changed
    Set(GrantAddArgs),
    /// List grants: all of them for root and a profile's owners, else your own
    List {
        /// Only this profile's grants
        #[arg(add = clap_complete::ArgValueCompleter::new(crate::complete::profiles))]
        profile: Option<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Take a grant away
    #[command(group = clap::ArgGroup::new("who").required(true).args(["user", "group"]))]
    Remove {
        #[arg(add = clap_complete::ArgValueCompleter::new(crate::complete::profiles))]
        profile: String,
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        group: Option<String>,
    },
}

fn exec_policy(text: Option<&str>) -> Result<ExecPolicy> {
    match text {
        None | Some("none") => Ok(ExecPolicy::None),
        Some("any") => Ok(ExecPolicy::Any),
        Some(list) => {
            let names: Vec<String> = list
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
                .collect();
            if names.is_empty() {
                return Err(Failure::usage("--exec takes any, none, or action names"));
            }
            Ok(ExecPolicy::Actions(names))
        }
    }
}

fn subject_text(grant: &Grant) -> String {
    let (kind, id) = match grant.subject {
        Subject::User(uid) => ("user", uid),
        Subject::Group(gid) => ("group", gid),
    };
    match &grant.name {
        Some(name) => format!("{kind} {name}"),
        None => format!("{kind} {id}"),
    }
}

fn role_text(role: Role) -> &'static str {
    match role {
        Role::Viewer => "viewer",
        Role::Operator => "operator",
        Role::Owner => "owner",
    }
}

fn exec_text(exec: &ExecPolicy) -> String {
    match exec {
        ExecPolicy::None => "-".into(),
        ExecPolicy::Any => "any".into(),
        ExecPolicy::Actions(names) => names.join(","),
    }
}

fn forward_text(destinations: &[String]) -> String {
    if destinations.is_empty() {
        "-".into()
    } else {
        destinations.join(",")
    }
}

fn sftp_text(sftp: SftpAccess, paths: &[String]) -> String {
    let access = match sftp {
        SftpAccess::None => return "-".into(),
        SftpAccess::Read => "read",
        SftpAccess::Write => "write",
    };
    if paths.is_empty() {
        access.into()
    } else {
        format!("{access} {}", paths.join(","))
    }
}

pub fn print_grants(grants: &[Grant]) {
    if grants.is_empty() {
        println!("no grants");
        return;
    }
    let rows: Vec<Vec<String>> = grants
        .iter()
        .map(|g| {
            vec![
                g.profile.clone(),
                subject_text(g),
                role_text(g.role).into(),
                match (g.shell, g.agent_forwarding) {
                    (true, true) => "yes+fwd",
                    (true, false) => "yes",
                    _ => "-",
                }
                .into(),
                exec_text(&g.exec),
                sftp_text(g.sftp, &g.paths),
                forward_text(&g.forward),
                if g.unattended { "unattended" } else { "totp" }.into(),
            ]
        })
        .collect();
    print_table(
        &[
            "PROFILE", "FOR", "ROLE", "SHELL", "EXEC", "SFTP", "FORWARD", "MFA",
        ],
        &rows,
    );
}

fn grant_request(args: GrantAddArgs) -> Result<GrantRequest> {
    Ok(GrantRequest {
        profile: args.profile,
        user: args.user,
        group: args.group,
        role: match args.role {
            RoleArg::Viewer => Role::Viewer,
            RoleArg::Operator => Role::Operator,
            RoleArg::Owner => Role::Owner,
        },
        shell: args.shell,
        exec: exec_policy(args.exec.as_deref())?,
        sftp: match args.sftp {
            SftpArg::None => SftpAccess::None,
            SftpArg::Read => SftpAccess::Read,
            SftpArg::Write => SftpAccess::Write,
        },
        paths: args.paths,
        unattended: args.unattended,
        agent_forwarding: args.agent_forwarding,
        forward: args.forward,
    })
}

/// What changed between two grants, for people: `shell no -> yes; ...`.
fn grant_changes(before: &Grant, after: &Grant) -> Vec<String> {
    let yes = |b: bool| if b { "yes" } else { "no" };
    let mut out = Vec::new();
    let mut field = |name: &str, old: String, new: String| {
        if old != new {
            out.push(format!("{name} {old} -> {new}"));
        }
    };
    field(
        "role",
        role_text(before.role).into(),
        role_text(after.role).into(),
    );
    field("shell", yes(before.shell).into(), yes(after.shell).into());
    field(
        "agent forwarding",
        yes(before.agent_forwarding).into(),
        yes(after.agent_forwarding).into(),
    );
    field("exec", exec_text(&before.exec), exec_text(&after.exec));
    field(
        "forward",
        forward_text(&before.forward),
        forward_text(&after.forward),
    );
    field(
        "sftp",
        sftp_text(before.sftp, &before.paths),
        sftp_text(after.sftp, &after.paths),
    );
    field(
        "mfa",
        if before.unattended {
            "unattended"
        } else {
            "totp"
        }
        .into(),
        if after.unattended {
            "unattended"
        } else {
            "totp"
        }
        .into(),
    );
    out
}

pub async fn grant(client: &Client, command: GrantCommand) -> Result<u8> {
    match command {
        GrantCommand::Set(args) => {
            check_name(&args.profile)?;
            let json = args.json.json;
            let request = grant_request(args)?;
            let change: GrantChange = client.call(&ep::SetGrant {}, &request).await?;
            if json {
                print_json(&change)?;
            } else {
                let changes = grant_changes(&change.before, &change.after);
                println!(
                    "{} on {}: {}",
                    subject_text(&change.after),
                    change.after.profile,
                    if changes.is_empty() {
                        "nothing changed".to_owned()
                    } else {
                        changes.join("; ")
                    }
                );
            }
        }
        GrantCommand::Add(args) => {
            check_name(&args.profile)?;
            let json = args.json.json;
            let request = grant_request(args)?;
            let grant: Grant = client.call(&ep::AddGrant {}, &request).await?;
            if json {
                print_json(&grant)?;
            } else {
                println!(
                    "{} is {} on {}",
                    subject_text(&grant),
                    role_text(grant.role),
                    grant.profile
                );
            }
        }
        GrantCommand::List { profile, json } => {
            if let Some(profile) = &profile {
                check_name(profile)?;
            }
            let list = ep::ListGrants {
                query: ep::GrantFilter { profile },
            };
            let grants: Vec<Grant> = client.call(&list, &()).await?;
            if json.json {
                print_json(&grants)?;
            } else {
                print_grants(&grants);
            }
        }
        GrantCommand::Remove {
            profile,
            user,
            group,
        } => {
            check_name(&profile)?;
            let query = match (user, group) {
                (Some(user), _) => ep::GrantSubject::User(user),
                (_, Some(group)) => ep::GrantSubject::Group(group),
                _ => return Err(Failure::usage("give --user or --group")),
            };
            let remove = ep::RemoveGrant {
                name: profile,
                query,
            };
            client.call(&remove, &()).await?;
            println!("grant removed");
        }
    }
    Ok(0)
}

pub async fn whoami(client: &Client, json: bool) -> Result<u8> {
    let me: Whoami = client.call(&ep::GetWhoami {}, &()).await?;
    if json {
        print_json(&me)?;
        return Ok(0);
    }
    let name = me.user.clone().unwrap_or_else(|| "-".into());
    println!("uid:    {} ({name})", me.uid);
    println!("groups: {}", me.groups.join(", "));
    if me.admin {
        println!("admin:  yes (every profile, no grant or MFA needed)");
    }
    let mfa = match (&me.mfa.session, me.mfa.enrolled) {
        (Some(session), _) => format!(
            "logged in, {} min left ({} min idle)",
            session.expires_in_secs / 60,
            session.idle_expires_in_secs / 60
        ),
        (None, true) => "enrolled, not logged in (`tether login`)".into(),
        (None, false) => "not enrolled (`tether mfa enroll`)".into(),
    };
    println!("mfa:    {mfa}");
    println!();
    print_grants(&me.grants);
    Ok(0)
}
