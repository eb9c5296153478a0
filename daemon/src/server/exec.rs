//! `POST /v1/profiles/{name}/exec`: run a command and upgrade to its stream.
//!
//! The SSH connection, authentication and channel are set up before the
//! `101` is sent, so every failure there (host key, auth, refused channel)
//! is an ordinary error response with its code. After the upgrade the
//! connection carries [`tether_api::frame`]s until the command ends.

use ::http::header::{CONNECTION, UPGRADE};
use ::http::{HeaderValue, Request, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use russh::Disconnect;
use tether_api::STREAM_PROTOCOL;
use tether_api::types::ExecRequest;

use super::App;
use super::http::{Resp, empty, parse_json, read_body};
use super::profiles;
use crate::error::Error;
use crate::ssh::client::{self, Trust};
use crate::ssh::exec::{bridge, command_line, open_exec};

fn wants_stream(request: &Request<Incoming>) -> bool {
    request
        .headers()
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case(STREAM_PROTOCOL))
}

pub async fn exec(app: &App, name: &str, mut request: Request<Incoming>) -> Result<Resp, Error> {
    if !wants_stream(&request) {
        return Err(Error::UpgradeRequired("exec".into(), STREAM_PROTOCOL));
    }
    let on_upgrade = hyper::upgrade::on(&mut request);
    let (parts, body) = request.into_parts();
    let body = read_body(body, &parts.headers, &app.options.config.limits).await?;
    let exec: ExecRequest = parse_json(&body)?;
    if exec.argv.is_empty() || exec.argv.iter().all(|a| a.is_empty()) {
        return Err(Error::BadRequest("no command given".into()));
    }
    if exec.argv.iter().any(|a| a.contains('\0')) {
        return Err(Error::BadRequest(
            "a command argument contains a NUL byte".into(),
        ));
    }

    let record = profiles::load(app, name)?;
    let pins = app
        .store
        .host_keys(name)?
        .into_iter()
        .map(|pin| pin.fingerprint)
        .collect();
    let credential = app.store.credential(name)?;
    let settings = &app.options.config.ssh;
    let mut connected =
        client::connect(&record.host, record.port, Trust::Pinned(pins), settings).await?;
    let authenticated =
        client::authenticate(&mut connected, &record.user, &credential, settings).await;
    drop(credential);
    let channel = match authenticated {
        Ok(()) => {
            open_exec(
                &connected.handle,
                &connected.addr,
                &command_line(&exec.argv),
            )
            .await
        }
        Err(error) => Err(error),
    };
    let channel = match channel {
        Ok(channel) => channel,
        Err(error) => {
            let _ = connected
                .handle
                .disconnect(Disconnect::ByApplication, "", "en")
                .await;
            return Err(error.into());
        }
    };

    let guard = app.tasks.enter();
    let profile = name.to_owned();
    let program = exec.argv[0]
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let outcome = bridge(channel, TokioIo::new(upgraded)).await;
                tracing::info!(
                    %profile,
                    %program,
                    exit = ?outcome.exit.as_ref().map(|e| e.exit_code()),
                    bytes_in = outcome.bytes_in,
                    bytes_out = outcome.bytes_out,
                    caller_gone = outcome.caller_gone,
                    "exec finished"
                );
            }
            Err(error) => tracing::warn!(%profile, %error, "exec upgrade failed"),
        }
        let _ = connected
            .handle
            .disconnect(Disconnect::ByApplication, "", "en")
            .await;
        drop(guard);
    });

    let mut response = empty(StatusCode::SWITCHING_PROTOCOLS);
    let headers = response.headers_mut();
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(UPGRADE, HeaderValue::from_static(STREAM_PROTOCOL));
    Ok(response)
}
