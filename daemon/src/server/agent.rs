//! `POST /v1/agent` and `DELETE /v1/agent`: the caller's ssh-agent sockets
//! (see [`crate::agent`] and [`tether_api::agent`]).

use std::sync::Arc;

use ::http::{Request, StatusCode};
use hyper::body::Incoming;
use tether_api::agent::{AGENT_PROTOCOL, AgentReply, AgentRequest, AgentSockets};
use tokio::io::AsyncWriteExt;

use super::App;
use super::http::{Resp, json, read_json, received_fd, switching, upgraded_socket, wants_upgrade};
use crate::access::Caller;
use crate::audit::Event;
use crate::error::Error;

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
        let Some((mut stream, early)) = upgraded_socket(upgraded) else {
            tracing::warn!("agent hand-over on a connection that is not a Unix socket");
            return;
        };
        let reply = match received_fd(&stream, &early, "the agent socket").await {
            Ok(fd) => crate::agent::adopt(&app, &caller, fd).await,
            Err(error) => Err(error),
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
