//! `tether agent`: an ssh-agent socket for ssh, git, rsync and the rest,
//! served by tetherd with the keys of the caller's profiles.
//!
//! The socket is bound here, as the caller, 0600 in a private directory of
//! theirs, and handed to tetherd ([`tether_api::agent`]), which serves it
//! from then on: no process of tether's stays behind in the caller's
//! session. The output is for `eval`, as `ssh-agent -s` (or `-c`) prints.

use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use clap::Args;
use tether_api::agent::{AgentRequest, AgentServing, AgentSockets};
use tether_api::client::Client;
use tether_api::endpoint as ep;
use tether_api::paths;

use crate::failure::{Failure, Result};
use crate::output::print_json;

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Bind the socket here instead of $XDG_RUNTIME_DIR/tether/agent.sock
    #[arg(short = 'a', value_name = "PATH")]
    bind: Option<PathBuf>,
    /// Print Bourne shell commands (the default unless $SHELL is a csh)
    #[arg(short = 's', conflicts_with = "csh")]
    sh: bool,
    /// Print C shell commands
    #[arg(short = 'c')]
    csh: bool,
    /// Stop serving your agent sockets and remove them; prints the
    /// commands that unset SSH_AUTH_SOCK
    #[arg(short = 'k')]
    kill: bool,
    /// Print JSON for scripts
    #[arg(long, conflicts_with_all = ["sh", "csh"])]
    json: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Syntax {
    Sh,
    Csh,
    Json,
}

fn syntax(args: &AgentArgs) -> Syntax {
    if args.json {
        Syntax::Json
    } else if args.csh {
        Syntax::Csh
    } else if args.sh {
        Syntax::Sh
    } else if std::env::var("SHELL").is_ok_and(|shell| shell.ends_with("csh")) {
        Syntax::Csh
    } else {
        Syntax::Sh
    }
}

pub async fn run(client: &Client, args: AgentArgs) -> Result<u8> {
    let syntax = syntax(&args);
    if args.kill {
        return stop(client, syntax).await;
    }
    let socket = match &args.bind {
        Some(path) => absolute(path)?,
        None => default_socket()?,
    };
    let shown = socket.display().to_string();
    let served: AgentSockets = client.call(&ep::ListAgents {}, &()).await?;
    if served.sockets.contains(&shown) && is_live(&socket) {
        let count = served.sockets.len();
        return print(
            syntax,
            &AgentServing {
                socket: shown,
                sockets: count,
            },
        );
    }
    clear_stale(&socket)?;
    let listener = std::os::unix::net::UnixListener::bind(&socket).map_err(|e| {
        Failure::new(
            "io_error",
            format!("cannot bind the agent socket {shown}: {e}"),
        )
    })?;
    let started = std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| Failure::new("io_error", format!("cannot make {shown} 0600: {e}")));
    let started = match started {
        Ok(()) => client
            .start_agent(&AgentRequest { socket: shown }, &listener)
            .await
            .map_err(Failure::from),
        Err(failure) => Err(failure),
    };
    match started {
        Ok(serving) => print(syntax, &serving),
        Err(failure) => {
            let _ = std::fs::remove_file(&socket);
            Err(failure)
        }
    }
}

async fn stop(client: &Client, syntax: Syntax) -> Result<u8> {
    let stopped: AgentSockets = client.call(&ep::StopAgent {}, &()).await?;
    let uid = paths::current_uid();
    for socket in &stopped.sockets {
        // Only a socket of the caller's own: the path is what the kernel
        // named when it was handed over, and may have been replaced since.
        let ours = std::fs::symlink_metadata(socket)
            .is_ok_and(|meta| meta.file_type().is_socket() && meta.uid() == uid);
        if ours {
            let _ = std::fs::remove_file(socket);
        }
    }
    match syntax {
        Syntax::Json => print_json(&stopped)?,
        Syntax::Sh => println!("unset SSH_AUTH_SOCK;"),
        Syntax::Csh => println!("unsetenv SSH_AUTH_SOCK;"),
    }
    if syntax != Syntax::Json && stopped.sockets.is_empty() {
        eprintln!("tether: no agent socket was being served for you");
    }
    Ok(0)
}

fn print(syntax: Syntax, serving: &AgentServing) -> Result<u8> {
    match syntax {
        Syntax::Json => print_json(serving)?,
        Syntax::Sh => println!(
            "SSH_AUTH_SOCK={}; export SSH_AUTH_SOCK;",
            sh_quote(&serving.socket)
        ),
        Syntax::Csh => {
            let quoted = csh_quote(&serving.socket).ok_or_else(|| {
                Failure::usage(format!(
                    "the socket path {:?} cannot be written for a C shell: pick another with -a",
                    serving.socket
                ))
            })?;
            println!("setenv SSH_AUTH_SOCK {quoted};");
        }
    }
    Ok(0)
}

fn plain(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+:@%,=".contains(&b))
}

/// `text` as one word for a Bourne shell.
fn sh_quote(text: &str) -> String {
    if plain(text) {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// `text` as one word for a C shell, where one can be written.
fn csh_quote(text: &str) -> Option<String> {
    if plain(text) {
        return Some(text.to_owned());
    }
    if text.contains(['\'', '!', '\n']) {
        return None;
    }
    Some(format!("'{text}'"))
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path)
        .map_err(|e| Failure::usage(format!("cannot use {}: {e}", path.display())))
}

/// `$XDG_RUNTIME_DIR/tether/agent.sock` (or `$TMPDIR/tether-UID/...`),
/// its directory made 0700 if missing and checked to be the caller's alone.
fn default_socket() -> Result<PathBuf> {
    let uid = paths::current_uid();
    let dir = paths::user_runtime_dir(uid);
    if let Err(e) = std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        if e.kind() != std::io::ErrorKind::AlreadyExists {
            return Err(Failure::new(
                "io_error",
                format!("cannot create {}: {e}", dir.display()),
            ));
        }
    }
    crate::socket::check_private_dir(
        &dir,
        uid,
        "agent socket directory",
        "Set XDG_RUNTIME_DIR to a private directory, or give the socket's path with -a",
    )?;
    Ok(dir.join("agent.sock"))
}

/// Whether something accepts connections on `path`.
fn is_live(path: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(path).is_ok()
}

/// Makes way for a new socket at `path`: a dead socket of the caller's is
/// removed; a live one, or anything that is not a socket, is left alone
/// and refused.
fn clear_stale(path: &Path) -> Result<()> {
    let shown = path.display();
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(Failure::new(
                "io_error",
                format!("cannot check {shown}: {e}"),
            ));
        }
    };
    if !meta.file_type().is_socket() {
        return Err(Failure::new(
            "file_exists",
            format!("{shown} exists and is not a socket: remove it, or give another path with -a"),
        ));
    }
    if is_live(path) {
        return Err(Failure::new(
            "file_exists",
            format!(
                "another program serves {shown} (an ssh-agent?): stop it, or give another path \
                 with -a"
            ),
        ));
    }
    std::fs::remove_file(path).map_err(|e| {
        Failure::new(
            "io_error",
            format!("cannot remove the dead socket {shown}: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_one_word_in_either_shell() {
        assert_eq!(
            sh_quote("/run/user/1000/tether/agent.sock"),
            "/run/user/1000/tether/agent.sock"
        );
        assert_eq!(sh_quote("/tmp/a b"), "'/tmp/a b'");
        assert_eq!(sh_quote("/tmp/it's"), r"'/tmp/it'\''s'");
        assert_eq!(sh_quote("/tmp/$(x)"), "'/tmp/$(x)'");
        assert_eq!(csh_quote("/tmp/a b").as_deref(), Some("'/tmp/a b'"));
        assert_eq!(csh_quote("/tmp/it's"), None);
        assert_eq!(csh_quote("/tmp/a!b"), None);
    }
}
