//! Shell completion that knows the daemon: profile names where a command
//! takes one, and remote paths after `NAME:` in `tether cp` (listed through
//! the daemon, as scp's completion lists them over ssh). Built on
//! clap_complete's dynamic completion: the shell asks `tether` itself (with
//! `COMPLETE=bash|zsh|fish` set) what may come next, so flags and commands
//! are always current and hidden commands are never offered.
//!
//! A completer never waits long: the daemon gets [`DEADLINE`] to answer,
//! and no answer means no candidates.

use std::ffi::OsStr;
use std::time::Duration;

use clap_complete::engine::{CompletionCandidate, PathCompleter, ValueCompleter};
use tether_api::client::Client;
use tether_api::endpoint as ep;
use tether_api::files::{FileKind, SftpRequest, SftpResponse};
use tether_api::types::{ProfileList, validate_profile_name};

/// How long a completion may wait for the daemon.
const DEADLINE: Duration = Duration::from_secs(2);

/// Runs `work` against the daemon, with the deadline; `None` on any failure.
fn ask<T>(work: impl AsyncFnOnce(Client) -> Option<T>) -> Option<T> {
    let named = std::env::var_os(tether_api::paths::SOCKET_ENV).map(std::path::PathBuf::from);
    let socket = crate::socket::resolve(named).ok()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    runtime.block_on(async {
        tokio::time::timeout(DEADLINE, work(Client::new(socket)))
            .await
            .ok()
            .flatten()
    })
}

fn profile_names() -> Vec<String> {
    ask(async |client| {
        let list: ProfileList = client.call(&ep::ListProfiles {}, &()).await.ok()?;
        Some(list.profiles.into_iter().map(|p| p.name).collect())
    })
    .unwrap_or_default()
}

/// Profile names starting with what is typed.
pub fn profiles(current: &OsStr) -> Vec<CompletionCandidate> {
    let typed = current.to_string_lossy();
    profile_names()
        .into_iter()
        .filter(|name| name.starts_with(typed.as_ref()))
        .map(CompletionCandidate::new)
        .collect()
}

/// `tether cp` places: after `NAME:`, the remote directory's entries
/// (directories with a trailing `/`); otherwise local paths and `NAME:`.
pub fn places(current: &OsStr) -> Vec<CompletionCandidate> {
    let typed = current.to_string_lossy().into_owned();
    if let Some((name, path)) = typed.split_once(':') {
        if !name.contains('/') && validate_profile_name(name).is_ok() {
            return remote_entries(name, path);
        }
    }
    let mut out = PathCompleter::any().complete(current);
    out.extend(
        profile_names()
            .into_iter()
            .filter(|name| name.starts_with(&typed))
            .map(|name| CompletionCandidate::new(format!("{name}:"))),
    );
    out
}

fn remote_entries(profile: &str, typed: &str) -> Vec<CompletionCandidate> {
    let (dir, prefix) = match typed.rsplit_once('/') {
        Some((dir, prefix)) => (format!("{dir}/"), prefix.to_owned()),
        None => (String::new(), typed.to_owned()),
    };
    let listed = if dir.is_empty() { "." } else { dir.as_str() };
    let entries = ask(async |client| {
        let answer: SftpResponse = client
            .call(
                &ep::FileOperation {
                    name: profile.to_owned(),
                },
                &SftpRequest::Ls {
                    path: listed.to_owned(),
                },
            )
            .await
            .ok()?;
        match answer {
            SftpResponse::Entries(entries) => Some(entries),
            _ => None,
        }
    })
    .unwrap_or_default();
    entries
        .into_iter()
        .filter(|e| {
            e.name.starts_with(&prefix) && (prefix.starts_with('.') || !e.name.starts_with('.'))
        })
        .map(|e| {
            let slash = if e.kind == FileKind::Dir { "/" } else { "" };
            CompletionCandidate::new(format!("{profile}:{dir}{}{slash}", e.name))
        })
        .collect()
}
