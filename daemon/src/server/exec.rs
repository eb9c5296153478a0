//! `POST /v1/profiles/{name}/exec`, `/shell` and `/run`: run a command, a
//! login shell on a pseudo-terminal, or a named action, and upgrade to its
//! stream.
//!
//! The channel comes from the connection pool, and the command is started
//! before the `101` is sent, so every failure up to there (host key, auth,
//! refused channel) is an ordinary error response with its code. After the
//! upgrade the connection carries [`tether_api::frame`]s until the command
//! ends. What flows through the stream is never logged.

use std::time::Duration;

use ::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use russh::Channel;
use russh::client::Msg;
use tether_api::STREAM_PROTOCOL;
use tether_api::access::RunRequest;
use tether_api::frame::Notice;
use tether_api::types::{ExecRequest, PtyRequest, ShellRequest};

use super::App;
use super::channel;
use super::http::{Resp, parse_json, read_body, switching, wants_upgrade};
use std::sync::Arc;

use crate::access::Caller;
use crate::access::actions::{Template, valid_action_name};
use crate::access::policy::Op;
use crate::audit::Event;
use crate::error::Error;
use crate::ssh::SshError;
use crate::ssh::exec::{Started, Terminal, bridge, command_line, start};
use crate::ssh::pool::Lease;
use crate::ssh::quote::quote_all;

/// Longest `timeout_secs` accepted (a week).
const MAX_TIMEOUT_SECS: u64 = 7 * 24 * 3600;

/// Which stream a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Exec,
    Shell,
    /// A named action, checked against the caller's grants.
    Run,
}

/// What to start, from any of the requests.
struct Run {
    argv: Vec<String>,
    pty: Option<PtyRequest>,
    timeout: Option<Duration>,
    /// Quote every word, even a single one: an action's words are never
    /// shell text.
    strict: bool,
    /// Show the server's banner first (a shell, for a person).
    banner: bool,
    /// For the log: the action's name, or the program's.
    label: String,
    /// For the audit trail: the command, or the action and its parameters
    /// (sensitive ones as an HMAC).
    audit: Vec<(&'static str, serde_json::Value)>,
}

fn wants_stream(request: &Request<Incoming>) -> bool {
    wants_upgrade(request, STREAM_PROTOCOL)
}

fn check_argv(argv: &[String], required: bool) -> Result<(), Error> {
    if required && (argv.is_empty() || argv.iter().all(|a| a.is_empty())) {
        return Err(Error::BadRequest("no command given".into()));
    }
    if argv.iter().any(|a| a.contains('\0')) {
        return Err(Error::BadRequest(
            "a command argument contains a NUL byte".into(),
        ));
    }
    Ok(())
}

fn check_pty(pty: &PtyRequest) -> Result<(), Error> {
    let term_ok = !pty.term.is_empty()
        && pty.term.len() <= 64
        && pty.term.bytes().all(|b| b.is_ascii_graphic());
    if !term_ok || pty.cols > 10_000 || pty.rows > 10_000 || pty.modes.len() > 256 {
        return Err(Error::BadRequest(
            "invalid pty: TERM, window size or modes out of range".into(),
        ));
    }
    Ok(())
}

fn check_timeout(timeout_secs: Option<u64>) -> Result<Option<Duration>, Error> {
    if timeout_secs.is_some_and(|t| t == 0 || t > MAX_TIMEOUT_SECS) {
        return Err(Error::BadRequest(format!(
            "timeout_secs must be 1 to {MAX_TIMEOUT_SECS}"
        )));
    }
    Ok(timeout_secs.map(Duration::from_secs))
}

/// The program's name only, for the log: arguments may hold anything.
fn program_of(argv: &[String]) -> String {
    argv.first()
        .and_then(|a| a.split_whitespace().next())
        .unwrap_or("-")
        .to_owned()
}

fn parse(app: &App, caller: &Caller, name: &str, kind: Kind, body: &[u8]) -> Result<Run, Error> {
    match kind {
        Kind::Exec => {
            let exec: ExecRequest = parse_json(body)?;
            check_argv(&exec.argv, true)?;
            let timeout = check_timeout(exec.timeout_secs)?;
            if let Some(pty) = &exec.pty {
                check_pty(pty)?;
            }
            Ok(Run {
                label: program_of(&exec.argv),
                audit: vec![
                    ("argv", exec.argv.clone().into()),
                    ("pty", exec.pty.is_some().into()),
                ],
                argv: exec.argv,
                pty: exec.pty,
                timeout,
                strict: false,
                banner: false,
            })
        }
        Kind::Shell => {
            let shell: ShellRequest = parse_json(body)?;
            check_argv(&shell.argv, false)?;
            check_pty(&shell.pty)?;
            Ok(Run {
                label: program_of(&shell.argv),
                audit: vec![
                    ("argv", shell.argv.clone().into()),
                    ("term", shell.pty.term.clone().into()),
                ],
                argv: shell.argv,
                pty: Some(shell.pty),
                timeout: None,
                strict: false,
                banner: true,
            })
        }
        Kind::Run => {
            let run: RunRequest = parse_json(body)?;
            if !valid_action_name(&run.action) {
                return Err(Error::BadRequest(format!(
                    "{:?} is not an action name",
                    run.action
                )));
            }
            app.authorize(caller, name, Op::Run(&run.action))?;
            let template =
                app.store
                    .action(name, &run.action)?
                    .ok_or_else(|| Error::ActionNotFound {
                        profile: name.to_owned(),
                        action: run.action.clone(),
                    })?;
            let template = Template::parse(&template)
                .map_err(|e| Error::Internal(format!("stored action {}: {e}", run.action)))?;
            let argv = template
                .render(&run.args)
                .map_err(|e| Error::BadRequest(format!("action {}: {e}", run.action)))?;
            let params: serde_json::Map<String, serde_json::Value> = run
                .args
                .iter()
                .filter_map(|arg| arg.split_once('='))
                .map(|(key, value)| {
                    let shown = if template.is_sensitive(key) {
                        app.audit.value_mac(value)
                    } else {
                        value.to_owned()
                    };
                    (key.to_owned(), shown.into())
                })
                .collect();
            Ok(Run {
                argv,
                pty: None,
                timeout: check_timeout(run.timeout_secs)?,
                strict: true,
                banner: false,
                label: format!("action {}", run.action),
                audit: vec![
                    ("action", run.action.clone().into()),
                    ("params", params.into()),
                ],
            })
        }
    }
}

pub async fn stream(
    app: &Arc<App>,
    caller: &Caller,
    name: &str,
    kind: Kind,
    mut request: Request<Incoming>,
) -> Result<Resp, Error> {
    // A named action's grant is checked against the action in the body
    // (`parse`); the others here, first.
    match kind {
        Kind::Exec => drop(app.authorize(caller, name, Op::Exec)?),
        Kind::Shell => drop(app.authorize(caller, name, Op::Shell)?),
        Kind::Run => {}
    }
    let what = match kind {
        Kind::Exec => "exec",
        Kind::Shell => "shell",
        Kind::Run => "run",
    };
    let wanted = wants_stream(&request);
    let on_upgrade = hyper::upgrade::on(&mut request);
    let (parts, body) = request.into_parts();
    let body = read_body(body, &parts.headers, &app.config().limits).await?;
    let mut run = parse(app, caller, name, kind, &body)?;
    if !wanted {
        return Err(Error::UpgradeRequired(what.into(), STREAM_PROTOCOL));
    }
    // Refused before anything is on record or connected: a word that no
    // quoting keeps a word on every login shell.
    let command = match (run.argv.is_empty(), run.strict) {
        (true, _) => None,
        (false, false) => Some(command_line(&run.argv)),
        (false, true) => Some(quote_all(&run.argv)),
    }
    .transpose()
    .map_err(|e| Error::BadRequest(e.to_string()))?;
    // On record before the credential is used; if not, nothing runs.
    let mut start = Event::new(caller, what).profile(name);
    for (key, value) in std::mem::take(&mut run.audit) {
        start = start.detail(key, value);
    }
    app.streamed(start, |end| {
        start_stream(app, caller, name, run, command, on_upgrade, end)
    })
    .await
}

/// A channel on `name`'s pooled connection with `command` (or a shell)
/// started on it. A channel the server closed before answering is not
/// asked again (the server may have run the command), and its connection
/// takes no more ([`crate::ssh::reply`]).
async fn started(
    app: &App,
    caller: &Caller,
    name: &str,
    run: &Run,
    command: Option<&str>,
) -> Result<(Channel<Msg>, Lease, Started), Error> {
    let (mut channel, lease) = channel::open(app, caller, name).await?;
    let connection = &lease.connection;
    let (addr, reply_wait) = (&connection.addr, connection.reply_wait);
    match start(&mut channel, addr, command, run.pty.as_ref(), reply_wait).await {
        Ok(started) => Ok((channel, lease, started)),
        Err(error) => {
            lease.failed(&error);
            Err(match error {
                SshError::ClosedUnanswered { addr, asked } => SshError::Protocol {
                    addr,
                    message: format!(
                        "the server closed the channel instead of answering {asked}; the \
                         command may or may not have run, so it was not sent again"
                    ),
                },
                other => other,
            }
            .into())
        }
    }
}

/// Opens the channel, starts the command and hands the stream to a task
/// that records `end` when the command is over.
async fn start_stream(
    app: &Arc<App>,
    caller: &Caller,
    name: &str,
    run: Run,
    command: Option<String>,
    on_upgrade: hyper::upgrade::OnUpgrade,
    end: Event,
) -> Result<Resp, Error> {
    let (channel, lease, command_started) =
        started(app, caller, name, &run, command.as_deref()).await?;
    let connection = &lease.connection;
    // A shell shows the server's banner first, as ssh does; a command's
    // output is never mixed with it.
    let mut notices = Vec::new();
    if let (true, Some(text)) = (run.banner, &connection.banner) {
        notices.push(Notice::Banner { text: text.clone() });
    }
    if command_started.terminal == Terminal::Refused {
        notices.push(Notice::NoTerminal);
    }

    let tasks = app.tasks.clone();
    let profile = name.to_owned();
    let program = run.label.clone();
    let app = app.clone();
    let started = std::time::Instant::now();
    tasks.spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let outcome = bridge(
                    channel,
                    command_started.early,
                    TokioIo::new(upgraded),
                    notices,
                    run.timeout,
                    &lease,
                )
                .await;
                let result = match &outcome.exit {
                    Some(exit) if exit.timed_out => "timeout".to_owned(),
                    Some(exit) => format!("exit {}", exit.exit_code()),
                    None if outcome.caller_gone => "caller_gone".to_owned(),
                    None => "ssh_error".to_owned(),
                };
                let event = end
                    .result(result)
                    .detail("duration_ms", started.elapsed().as_millis() as u64)
                    .detail("bytes_in", outcome.bytes_in)
                    .detail("bytes_out", outcome.bytes_out);
                app.record_after(event).await;
                let connection = &lease.connection;
                connection
                    .bytes_in
                    .fetch_add(outcome.bytes_in, std::sync::atomic::Ordering::Relaxed);
                connection
                    .bytes_out
                    .fetch_add(outcome.bytes_out, std::sync::atomic::Ordering::Relaxed);
                tracing::info!(
                    %profile,

                    %program,
                    connection = connection.id,
                    exit = ?outcome.exit.as_ref().map(|e| e.exit_code()),
                    bytes_in = outcome.bytes_in,
                    bytes_out = outcome.bytes_out,
                    caller_gone = outcome.caller_gone,
                    "stream finished"
                );
            }
            Err(error) => {
                tracing::warn!(%profile, %error, "upgrade failed");
                app.record_after(end.result("upgrade_failed")).await;
            }
        }
        drop(lease);
    });

    Ok(switching(STREAM_PROTOCOL))
}
