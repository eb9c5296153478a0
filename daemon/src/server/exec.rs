//! `POST /v1/profiles/{name}/exec`: run a command and upgrade to its stream.
//!
//! The channel comes from the connection pool, and the command is started
//! before the `101` is sent, so every failure up to there (host key, auth,
//! refused channel) is an ordinary error response with its code. After the
//! upgrade the connection carries [`tether_api::frame`]s until the command
//! ends.

use std::time::Duration;

use ::http::header::{CONNECTION, UPGRADE};
use ::http::{HeaderValue, Request, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tether_api::STREAM_PROTOCOL;
use tether_api::types::ExecRequest;

use super::App;
use super::http::{Resp, empty, parse_json, read_body};
use super::profiles;
use crate::error::Error;
use crate::ssh::exec::{bridge, command_line, start};

/// Longest `timeout_secs` accepted (a week).
const MAX_TIMEOUT_SECS: u64 = 7 * 24 * 3600;

fn wants_stream(request: &Request<Incoming>) -> bool {
    request
        .headers()
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case(STREAM_PROTOCOL))
}

fn check(exec: &ExecRequest) -> Result<(), Error> {
    if exec.argv.is_empty() || exec.argv.iter().all(|a| a.is_empty()) {
        return Err(Error::BadRequest("no command given".into()));
    }
    if exec.argv.iter().any(|a| a.contains('\0')) {
        return Err(Error::BadRequest(
            "a command argument contains a NUL byte".into(),
        ));
    }
    if exec
        .timeout_secs
        .is_some_and(|t| t == 0 || t > MAX_TIMEOUT_SECS)
    {
        return Err(Error::BadRequest(format!(
            "timeout_secs must be 1 to {MAX_TIMEOUT_SECS}"
        )));
    }
    if let Some(pty) = &exec.pty {
        let term_ok = !pty.term.is_empty()
            && pty.term.len() <= 64
            && pty.term.bytes().all(|b| b.is_ascii_graphic());
        if !term_ok || pty.cols > 10_000 || pty.rows > 10_000 {
            return Err(Error::BadRequest(
                "invalid pty: TERM or window size out of range".into(),
            ));
        }
    }
    Ok(())
}

pub async fn exec(app: &App, name: &str, mut request: Request<Incoming>) -> Result<Resp, Error> {
    if !wants_stream(&request) {
        return Err(Error::UpgradeRequired("exec".into(), STREAM_PROTOCOL));
    }
    let on_upgrade = hyper::upgrade::on(&mut request);
    let (parts, body) = request.into_parts();
    let body = read_body(body, &parts.headers, &app.options.config.limits).await?;
    let exec: ExecRequest = parse_json(&body)?;
    check(&exec)?;

    let target = profiles::target(app, name)?;
    let (channel, lease) = app
        .pool
        .channel(&target, || Ok(app.store.credential(name)?))
        .await?;
    let addr = lease.connection.addr.clone();
    start(
        &channel,
        &addr,
        &command_line(&exec.argv),
        exec.pty.as_ref(),
    )
    .await?;

    let guard = app.tasks.enter();
    let profile = name.to_owned();
    let program = exec.argv[0]
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    let timeout = exec.timeout_secs.map(Duration::from_secs);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let outcome = bridge(channel, TokioIo::new(upgraded), timeout).await;
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
                    "exec finished"
                );
            }
            Err(error) => tracing::warn!(%profile, %error, "exec upgrade failed"),
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
