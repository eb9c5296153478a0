//! `POST /v1/profiles/{name}/exec` and `/shell`: run a command (or a login
//! shell on a pseudo-terminal) and upgrade to its stream.
//!
//! The channel comes from the connection pool, and the command is started
//! before the `101` is sent, so every failure up to there (host key, auth,
//! refused channel) is an ordinary error response with its code. After the
//! upgrade the connection carries [`tether_api::frame`]s until the command
//! ends. What flows through the stream is never logged.

use std::time::Duration;

use ::http::header::{CONNECTION, UPGRADE};
use ::http::{HeaderValue, Request, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tether_api::STREAM_PROTOCOL;
use tether_api::types::{ExecRequest, PtyRequest, ShellRequest};

use super::App;
use super::http::{Resp, empty, parse_json, read_body};
use super::profiles;
use crate::error::Error;
use crate::ssh::exec::{bridge, command_line, start};

/// Longest `timeout_secs` accepted (a week).
const MAX_TIMEOUT_SECS: u64 = 7 * 24 * 3600;

/// Which stream a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Exec,
    Shell,
}

/// What to start, from either request.
struct Run {
    argv: Vec<String>,
    pty: Option<PtyRequest>,
    timeout: Option<Duration>,
}

fn wants_stream(request: &Request<Incoming>) -> bool {
    request
        .headers()
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case(STREAM_PROTOCOL))
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

fn parse(kind: Kind, body: &[u8]) -> Result<Run, Error> {
    match kind {
        Kind::Exec => {
            let exec: ExecRequest = parse_json(body)?;
            check_argv(&exec.argv, true)?;
            if exec
                .timeout_secs
                .is_some_and(|t| t == 0 || t > MAX_TIMEOUT_SECS)
            {
                return Err(Error::BadRequest(format!(
                    "timeout_secs must be 1 to {MAX_TIMEOUT_SECS}"
                )));
            }
            if let Some(pty) = &exec.pty {
                check_pty(pty)?;
            }
            Ok(Run {
                argv: exec.argv,
                pty: exec.pty,
                timeout: exec.timeout_secs.map(Duration::from_secs),
            })
        }
        Kind::Shell => {
            let shell: ShellRequest = parse_json(body)?;
            check_argv(&shell.argv, false)?;
            check_pty(&shell.pty)?;
            Ok(Run {
                argv: shell.argv,
                pty: Some(shell.pty),
                timeout: None,
            })
        }
    }
}

pub async fn stream(
    app: &App,
    name: &str,
    kind: Kind,
    mut request: Request<Incoming>,
) -> Result<Resp, Error> {
    let what = match kind {
        Kind::Exec => "exec",
        Kind::Shell => "shell",
    };
    if !wants_stream(&request) {
        return Err(Error::UpgradeRequired(what.into(), STREAM_PROTOCOL));
    }
    let on_upgrade = hyper::upgrade::on(&mut request);
    let (parts, body) = request.into_parts();
    let body = read_body(body, &parts.headers, &app.options.config.limits).await?;
    let run = parse(kind, &body)?;

    let target = profiles::target(app, name)?;
    let (channel, lease) = app
        .pool
        .channel(&target, || Ok(app.store.credential(name)?))
        .await?;
    let addr = lease.connection.addr.clone();
    let command = (!run.argv.is_empty()).then(|| command_line(&run.argv));
    start(&channel, &addr, command.as_deref(), run.pty.as_ref()).await?;

    let guard = app.tasks.enter();
    let profile = name.to_owned();
    // The program's name only: arguments may hold anything.
    let program = run
        .argv
        .first()
        .and_then(|a| a.split_whitespace().next())
        .unwrap_or("-")
        .to_owned();
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let outcome = bridge(channel, TokioIo::new(upgraded), run.timeout).await;
                let connection = &lease.connection;
                connection
                    .bytes_in
                    .fetch_add(outcome.bytes_in, std::sync::atomic::Ordering::Relaxed);
                connection
                    .bytes_out
                    .fetch_add(outcome.bytes_out, std::sync::atomic::Ordering::Relaxed);
                tracing::info!(
                    %profile,
                    kind = what,
                    %program,
                    connection = connection.id,
                    exit = ?outcome.exit.as_ref().map(|e| e.exit_code()),
                    bytes_in = outcome.bytes_in,
                    bytes_out = outcome.bytes_out,
                    caller_gone = outcome.caller_gone,
                    "stream finished"
                );
            }
            Err(error) => tracing::warn!(%profile, %error, "upgrade failed"),
        }
        drop(lease);
        drop(guard);
    });

    let mut response = empty(StatusCode::SWITCHING_PROTOCOLS);
    let headers = response.headers_mut();
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(UPGRADE, HeaderValue::from_static(STREAM_PROTOCOL));
    Ok(response)
}
