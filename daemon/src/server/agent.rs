//! `POST /v1/agent` and `DELETE /v1/agent`: the caller's ssh-agent sockets
//! (see [`crate::agent`] and [`tether_api::agent`]).

use std::sync::Arc;
use std::time::Duration;

use ::http::{Request, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tether_api::agent::{AGENT_PROTOCOL, AgentReply, AgentRequest, AgentSockets};
use tokio::io::AsyncWriteExt;

use super::App;
use super::http::{Resp, json, read_json, switching, wants_upgrade};
use crate::access::Caller;
use crate::audit::Event;
use crate::error::Error;

/// How long the caller has to send the socket once the upgrade is done.
const HANDOVER_TIMEOUT: Duration = Duration::from_secs(10);

/// Takes the socket the caller bound and serves it.
pub async fn start(
    app: &Arc<App>,
    caller: &Caller,
    mut request: Request<Incoming>,
) -> Result<Resp, Error> {
    // Anyone: the socket serves the caller's own uid, and every signature
    // is checked against their grants.
    let wanted = wants_upgrade(&request, AGENT_PROTOCOL);
    let on_upgrade = hyper::upgrade::on(&mut request);
    let limits = app.config().limits.clone();
    let body: AgentRequest = read_json(request, &limits).await?;
    if !wanted {
        return Err(Error::UpgradeRequired("agent".into(), AGENT_PROTOCOL));
    }
    let app = app.clone();
    let caller = caller.clone();
    app.clone().spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let Ok(parts) = upgraded.downcast::<TokioIo<tokio::net::UnixStream>>() else {
            tracing::warn!("agent hand-over on a connection that is not a Unix socket");
            return;
        };
        let mut stream = parts.io.into_inner();
        let reply = if !parts.read_buf.is_empty() {
            Err(Error::BadRequest(
                "data came before the agent socket".into(),
            ))
        } else {
            match tokio::time::timeout(HANDOVER_TIMEOUT, tether_api::agent::recv_fd(&stream)).await {
                Ok(Ok(fd)) => crate::agent::adopt(&app, &caller, fd).await,
                Ok(Err(error)) => Err(Error::BadRequest(format!(
                    "no agent socket came: {error}"
                ))),
                Err(_) => Err(Error::RequestTimeout(HANDOVER_TIMEOUT.as_secs())),
            }
        };
        let reply = match reply {
            Ok(serving) => AgentReply::Serving(serving),
            Err(error) => {
                tracing::info!(uid = caller.uid, socket = ?body.socket, "agent socket refused: {error}");
                AgentReply::Error(error.to_api())
            }
        };
        let bytes = serde_json::to_vec(&reply).unwrap_or_default();
        let _ = stream.write_all(&bytes).await;
        let _ = stream.shutdown().await;
    });
    Ok(switching(AGENT_PROTOCOL))
}

/// The agent sockets served for the caller.
pub fn list(app: &App, caller: &Caller) -> Resp {
    // Anyone: a caller sees only their own sockets.
    json(
        StatusCode::OK,
        &AgentSockets {
            sockets: app.agents.paths(caller.uid),
        },
    )
}

/// Stops serving every agent socket of the caller's.
pub async fn stop(app: &App, caller: &Caller) -> Result<Resp, Error> {
    // Anyone: a caller stops only their own sockets.
    let sockets = app.agents.stop(caller.uid);
    if !sockets.is_empty() {
        app.record_after(
            Event::new(caller, "agent.stop")
                .result("ok")
                .detail("sockets", sockets.clone()),
        )
        .await;
    }
    Ok(json(StatusCode::OK, &AgentSockets { sockets }))
}
