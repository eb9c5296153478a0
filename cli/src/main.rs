//! `tether`: use SSH credentials held by tetherd.
//!
//! One file per command group; `main` parses, runs, and turns every failure
//! into `tether: error[CODE]: MESSAGE` on stderr with exit status 255 (like
//! ssh), so that a remote command's own exit status is never confused with
//! tether's.

mod access;
mod action;
mod agent;
mod audit;
mod complete;
mod cp;
mod escape;
mod exec;
mod failure;
mod files;
mod forward;
mod manual;
mod mfa;
mod output;
mod profile;
mod progress;
mod prompt;
mod session;
mod shell;
mod socket;
mod status;
mod stream;
mod terminal;
mod vault;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tether_api::client::Client;

/// tether runs commands on SSH servers through tetherd, which holds the
/// credentials and the connections: no key files, no passwords in scripts.
#[derive(Debug, Parser)]
#[command(name = "tether", version, about, long_about = None, propagate_version = true)]
struct Cli {
    /// The daemon's socket [default: /run/tether/tether.sock if it exists,
    /// else the `tetherd --user` socket]
    #[arg(long, global = true, env = tether_api::paths::SOCKET_ENV, value_name = "PATH")]
    socket: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show the daemon's mode, socket, store and who you are to it
    Status(status::StatusArgs),
    /// Add, list, show and remove server profiles
    #[command(subcommand)]
    Profile(profile::ProfileCommand),
    /// Run a command on a profile's server; its exit status is tether's
    Exec(exec::ExecArgs),
    /// Open an interactive terminal session (a login shell, or COMMAND on a
    /// pseudo-terminal); `~.` at the start of a line disconnects
    Shell(shell::ShellArgs),
    /// Copy files to or from a server: upload LOCAL... NAME:PATH, download
    /// NAME:PATH... LOCAL; `-` is stdin or stdout
    Cp(cp::CpArgs),
    /// One file operation on a server: ls, stat, mkdir, rm, rmdir, mv,
    /// chmod, ln -s (also as `tether sftp`)
    #[command(alias = "sftp")]
    Files(files::FilesArgs),
    /// Forward local ports through a server, as ssh -L and -D: each
    /// connection is made by the server and carried by tetherd; until
    /// Ctrl-C
    Forward(forward::ForwardArgs),
    /// Connect stdin and stdout to HOST PORT through a server, as ssh -W:
    /// for ProxyCommand (`ProxyCommand tether proxy bastion %h %p`)
    Proxy(forward::ProxyArgs),
    /// Serve an ssh-agent socket with your profiles' keys, for ssh, git and
    /// the rest: eval "$(tether agent)"; each key signs only logins to its
    /// profile's pinned host
    Agent(agent::AgentArgs),
    /// Who may use which profile, and how (root and profile owners)
    #[command(subcommand)]
    Grant(access::GrantCommand),
    /// Named actions: argv templates that cron jobs and restricted users run
    #[command(subcommand)]
    Action(action::ActionCommand),
    /// Run a named action: tether run PROFILE ACTION [key=value ...]
    Run(action::RunArgs),
    /// TOTP enrolment and status
    #[command(subcommand)]
    Mfa(mfa::MfaCommand),
    /// Open an MFA session for this login session with a TOTP or backup code
    Login(profile::JsonFlag),
    /// End this login session's MFA session
    Logout,
    /// Who the daemon sees: uid, groups, MFA state, grants
    Whoami(profile::JsonFlag),
    /// The audit trail: who used which credential for what, and when
    Audit(audit::AuditArgs),
    /// List and close the daemon's live SSH connections
    #[command(subcommand)]
    Session(session::SessionCommand),
    /// Root: wipe the daemon's master key from memory and close every SSH
    /// connection (as SIGUSR1 does); `tether unseal` gives it back
    Seal,
    /// Root: give a sealed daemon its master key: the passphrase (tetherd
    /// --passphrase; the first sets it), or its key file read again
    Unseal,
    /// Root: the passphrase that wraps the master key (tetherd --passphrase)
    #[command(subcommand)]
    Passphrase(vault::PassphraseCommand),
    /// Root: seal the whole store under a new master key; the old key opens
    /// nothing in it afterwards (backups made before still need it)
    Rekey(vault::RekeyArgs),
    /// Root: write a backup of the store (one sealed snapshot, useless
    /// without the master key); restore it with `tetherd restore`
    Backup(vault::BackupArgs),
    /// Print a shell completion script to stdout (edits no file); it asks
    /// tether itself for candidates, profile names and remote paths included
    Completions {
        #[arg(value_enum)]
        shell: CompletionShell,
    },
    /// Print the API's endpoints as a Markdown table (for the README)
    #[command(hide = true)]
    Endpoints,
    /// Print the tether(1) manual page (roff) to stdout; with --out-dir,
    /// write it and one page per command there
    #[command(hide = true)]
    Man {
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    // `COMPLETE=bash tether ...` is the shell asking what may come next.
    {
        use clap::CommandFactory;
        clap_complete::CompleteEnv::with_factory(Cli::command)
            .completer("tether")
            .complete();
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            use clap::error::ErrorKind;
            if matches!(
                error.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
            ) {
                let _ = error.print();
                return ExitCode::SUCCESS;
            }
            let text = error.render().to_string();
            let text = text.strip_prefix("error: ").unwrap_or(&text);
            eprint!("tether: error[usage]: {text}");
            return ExitCode::from(255);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("tether: error[internal]: cannot start: {error}");
            return ExitCode::from(255);
        }
    };
    let code = runtime.block_on(run(cli));
    // Do not wait for a blocked stdin reader thread: exit now.
    runtime.shutdown_background();
    ExitCode::from(code)
}

/// The registration script for `shell`: what `COMPLETE=SHELL tether`
/// prints, a few lines that make the shell ask `tether` for candidates.
fn print_completions(shell: CompletionShell) -> u8 {
    let name = match shell {
        CompletionShell::Bash => "bash",
        CompletionShell::Zsh => "zsh",
        CompletionShell::Fish => "fish",
    };
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("tether"));
    match std::process::Command::new(exe)
        .env("COMPLETE", name)
        .stderr(std::process::Stdio::inherit())
        .output()
    {
        Ok(out) if out.status.success() => {
            use std::io::Write;
            let _ = std::io::stdout().write_all(&out.stdout);
            0
        }
        _ => {
            eprintln!("tether: error[internal]: cannot produce the {name} completion script");
            255
        }
    }
}

/// The shells whose completion scripts tether prints.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

/// What needs no daemon: completions, the manual page, the endpoint list.
fn offline(command: &Command) -> Option<u8> {
    use clap::CommandFactory;
    match command {
        Command::Completions { shell } => Some(print_completions(*shell)),
        Command::Endpoints => {
            print!("{}", tether_api::endpoint::markdown_table());
            Some(0)
        }
        Command::Man { out_dir } => {
            let written = match out_dir {
                Some(dir) => manual::write_all(Cli::command(), dir).map(drop),
                None => {
                    use std::io::Write;
                    let pages = manual::pages(Cli::command());
                    std::io::stdout().write_all(&pages[0].1)
                }
            };
            match written {
                Ok(()) => Some(0),
                Err(error) => {
                    eprintln!("tether: error[io_error]: {error}");
                    Some(255)
                }
            }
        }
        _ => None,
    }
}

async fn run(cli: Cli) -> u8 {
    if let Some(code) = offline(&cli.command) {
        return code;
    }
    let client = match socket::resolve(cli.socket) {
        Ok(socket) => Client::new(socket),
        Err(failure) => {
            failure.print();
            return 255;
        }
    };
    let result = match cli.command {
        Command::Status(args) => status::run(&client, args).await,
        Command::Profile(command) => profile::run(&client, command).await,
        Command::Exec(args) => exec::run(&client, args).await,
        Command::Session(command) => session::run(&client, command).await,
        Command::Shell(args) => shell::run(&client, args).await,
        Command::Cp(args) => cp::run(&client, args).await,
        Command::Files(args) => files::run(&client, args).await,
        Command::Agent(args) => agent::run(&client, args).await,
        Command::Forward(args) => forward::forward(&client, args).await,
        Command::Proxy(args) => forward::proxy(&client, args).await,
        Command::Grant(command) => access::grant(&client, command).await,
        Command::Action(command) => action::action(&client, command).await,
        Command::Run(args) => action::run(&client, args).await,
        Command::Mfa(command) => mfa::mfa(&client, command).await,
        Command::Login(flag) => mfa::login(&client, flag.json).await,
        Command::Logout => mfa::logout(&client).await,
        Command::Whoami(flag) => access::whoami(&client, flag.json).await,
        Command::Audit(args) => audit::run(&client, args).await,
        Command::Completions { .. } | Command::Man { .. } | Command::Endpoints => Ok(0),
        Command::Seal => vault::seal(&client).await,
        Command::Unseal => vault::unseal(&client).await,
        Command::Passphrase(command) => vault::passphrase(&client, command).await,
        Command::Rekey(args) => vault::rekey(&client, args).await,
        Command::Backup(args) => vault::backup(&client, args).await,
    };
    match result {
        Ok(code) => code,
        Err(failure) => {
            failure.print();
            255
        }
    }
}
