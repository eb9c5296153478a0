//! `GET /v1/status`: who the daemon is and who is asking.

use ::http::StatusCode;
use tether_api::types::Status;

use super::App;
use super::http::{Resp, json};
use super::peer::Peer;

pub fn get(app: &App, peer: &Peer) -> Resp {
    json(
        StatusCode::OK,
        &Status {
            daemon_version: env!("CARGO_PKG_VERSION").to_owned(),
            api_version: tether_api::API_VERSION,
            mode: app.options.mode,
            daemon_uid: app.daemon_uid,
            caller_uid: peer.uid,
            socket: app.options.socket.display().to_string(),
            state_dir: app.options.state_dir.display().to_string(),
            profiles: app.store.profile_count(),
            uptime_secs: app.started.elapsed().as_secs(),
        },
    )
}
