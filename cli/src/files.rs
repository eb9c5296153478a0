//! `tether files NAME OP ...` (also `tether sftp`): one file operation on a
//! profile's server.
//!
//! Each operation is one `POST /v1/profiles/{name}/sftp`; paths are the
//! server's and are sent as given (relative ones start at the login's home).
//! `ls` hides names starting with `.` unless `-a`, and `ls -l` shows user
//! and group names where the server gives them.

use clap::{Args, Subcommand};
use tether_api::client::Client;
use tether_api::endpoint as ep;
use tether_api::files::{FileInfo, FileKind, SftpRequest, SftpResponse};

use crate::failure::{Failure, Result};
use crate::output::{print_json, print_table, printable, timestamp};
use crate::profile::check_name;
use crate::progress::human;

#[derive(Debug, Args)]
pub struct FilesArgs {
    /// Profile name
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::complete::profiles))]
    name: String,
    #[command(subcommand)]
    op: Op,
}

#[derive(Debug, Subcommand)]
enum Op {
    /// List a directory (or describe one file)
    Ls {
        /// Long listing: kind and mode, owner, size, modification time
        #[arg(short = 'l')]
        long: bool,
        /// Show entries whose names start with `.` too
        #[arg(short = 'a', long = "all")]
        all: bool,
        /// Print JSON for scripts
        #[arg(long)]
        json: bool,
        #[arg(default_value = ".")]
        path: String,
    },
    /// Describe one path (a symlink itself, not what it points to)
    Stat {
        /// Print JSON for scripts
        #[arg(long)]
        json: bool,
        path: String,
    },
    /// Make directories
    Mkdir {
        /// Make missing parents too; an existing directory is no error
        #[arg(short = 'p', long)]
        parents: bool,
        /// Permission bits in octal, e.g. 750
        #[arg(short = 'm', long, value_parser = parse_mode)]
        mode: Option<u32>,
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Remove files or symlinks
    Rm {
        /// Remove directories and everything in them
        #[arg(short = 'r', long)]
        recursive: bool,
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Remove empty directories
    Rmdir {
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Rename or move, replacing TO if it is a file
    Mv { from: String, to: String },
    /// Change permission bits (octal, e.g. 640)
    Chmod {
        #[arg(value_parser = parse_mode)]
        mode: u32,
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Make a symbolic link: ln -s TARGET LINK
    Ln {
        /// Make a symbolic link (the only kind SFTP can make)
        #[arg(short = 's', long = "symbolic", required = true)]
        symbolic: bool,
        target: String,
        link: String,
    },
}

fn parse_mode(text: &str) -> std::result::Result<u32, String> {
    u32::from_str_radix(text, 8)
        .ok()
        .filter(|mode| *mode <= 0o7777)
        .ok_or_else(|| format!("{text:?} is not an octal mode such as 644 or 2750"))
}

pub async fn run(client: &Client, args: FilesArgs) -> Result<u8> {
    check_name(&args.name)?;
    let endpoint = ep::FileOperation {
        name: args.name.clone(),
    };
    let op = async |request: SftpRequest| -> Result<SftpResponse> {
        Ok(client.call(&endpoint, &request).await?)
    };
    match args.op {
        Op::Ls {
            long,
            all,
            json,
            path,
        } => {
            let entries = match op(SftpRequest::Stat {
                path: path.clone(),
                follow: true,
            })
            .await?
            {
                SftpResponse::Info(info) if info.kind != FileKind::Dir => vec![info],
                _ => match op(SftpRequest::Ls { path }).await? {
                    SftpResponse::Entries(entries) => entries
                        .into_iter()
                        .filter(|e| all || !e.name.starts_with('.'))
                        .collect(),
                    _ => return Err(unexpected()),
                },
            };
            if json {
                print_json(&entries)?;
            } else if long {
                print_long(&entries);
            } else {
                for entry in &entries {
                    println!("{}", printable(&entry.name));
                }
            }
        }
        Op::Stat { json, path } => {
            let SftpResponse::Info(info) = op(SftpRequest::Stat {
                path,
                follow: false,
            })
            .await?
            else {
                return Err(unexpected());
            };
            if json {
                print_json(&info)?;
            } else {
                print_stat(&info);
            }
        }
        Op::Mkdir {
            parents,
            mode,
            paths,
        } => {
            for path in paths {
                op(SftpRequest::Mkdir {
                    path,
                    parents,
                    mode,
                })
                .await?;
            }
        }
        Op::Rm { recursive, paths } => {
            for path in paths {
                op(SftpRequest::Rm { path, recursive }).await?;
            }
        }
        Op::Rmdir { paths } => {
            for path in paths {
                op(SftpRequest::Rmdir { path }).await?;
            }
        }
        Op::Mv { from, to } => {
            op(SftpRequest::Mv { from, to }).await?;
        }
        Op::Chmod { mode, paths } => {
            for path in paths {
                op(SftpRequest::Chmod { path, mode }).await?;
            }
        }
        Op::Ln {
            symbolic: _,
            target,
            link,
        } => {
            op(SftpRequest::Symlink { target, link }).await?;
        }
    }
    Ok(0)
}

fn unexpected() -> Failure {
    Failure::new(
        crate::failure::PROTOCOL_ERROR,
        "the daemon answered with the wrong kind of result",
    )
}

/// `drwxr-x---`, as ls shows it.
fn mode_string(kind: FileKind, mode: u32) -> String {
    let mut out = String::with_capacity(10);
    out.push(match kind {
        FileKind::Dir => 'd',
        FileKind::Symlink => 'l',
        FileKind::File => '-',
        FileKind::Other => '?',
    });
    let special = [(0o4000, 's', 'S'), (0o2000, 's', 'S'), (0o1000, 't', 'T')];
    for (i, (bit, set_x, set_no_x)) in special.into_iter().enumerate() {
        let shift = 6 - 3 * i;
        let bits = (mode >> shift) & 7;
        out.push(if bits & 4 != 0 { 'r' } else { '-' });
        out.push(if bits & 2 != 0 { 'w' } else { '-' });
        out.push(match (bits & 1 != 0, mode & bit != 0) {
            (true, true) => set_x,
            (false, true) => set_no_x,
            (true, false) => 'x',
            (false, false) => '-',
        });
    }
    out
}

fn name_with_target(info: &FileInfo) -> String {
    match &info.target {
        Some(target) => format!("{} -> {target}", info.name),
        None => info.name.clone(),
    }
}

fn print_long(entries: &[FileInfo]) {
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            vec![
                mode_string(e.kind, e.mode),
                e.owner.clone().unwrap_or_else(|| e.uid.to_string()),
                e.group.clone().unwrap_or_else(|| e.gid.to_string()),
                human(e.size),
                timestamp(e.mtime),
                name_with_target(e),
            ]
        })
        .collect();
    print_table(
        &["MODE", "USER", "GROUP", "SIZE", "MODIFIED", "NAME"],
        &rows,
    );
}

fn print_stat(info: &FileInfo) {
    println!("path:     {}", printable(&name_with_target(info)));
    println!(
        "kind:     {}",
        match info.kind {
            FileKind::File => "file",
            FileKind::Dir => "directory",
            FileKind::Symlink => "symlink",
            FileKind::Other => "other",
        }
    );
    println!("size:     {} ({})", info.size, human(info.size));
    println!(
        "mode:     {:04o} ({})",
        info.mode,
        mode_string(info.kind, info.mode)
    );
    println!("owner:    uid {} gid {}", info.uid, info.gid);
    println!("modified: {}", timestamp(info.mtime));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_read_as_ls_shows_them() {
        assert_eq!(mode_string(FileKind::Dir, 0o755), "drwxr-xr-x");
        assert_eq!(mode_string(FileKind::File, 0o640), "-rw-r-----");
        assert_eq!(mode_string(FileKind::File, 0o4755), "-rwsr-xr-x");
        assert_eq!(mode_string(FileKind::Dir, 0o1777), "drwxrwxrwt");
        assert_eq!(mode_string(FileKind::File, 0o2644), "-rw-r-Sr--");
    }

    #[test]
    fn modes_are_octal() {
        assert_eq!(parse_mode("644"), Ok(0o644));
        assert_eq!(parse_mode("2750"), Ok(0o2750));
        assert!(parse_mode("9").is_err());
        assert!(parse_mode("17777").is_err());
    }
}
