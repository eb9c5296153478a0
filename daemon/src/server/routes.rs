//! Routing: peer check, API version check, then one endpoint per path.
//!
//! Order matters: the peer is authorized before anything of the request is
//! looked at, so a uid that may not use the daemon learns nothing from it,
//! not even which paths exist.

use std::sync::Arc;

use ::http::{HeaderMap, Method, Request};
use hyper::body::Incoming;
use tether_api::{API_VERSION, API_VERSION_HEADER};

use super::http::{self, Resp};
use super::peer::{self, Peer};
use super::{App, exec, files, profiles, sessions, status};
use crate::error::Error;

pub async fn handle(
    app: Arc<App>,
    peer: Peer,
    over_limit: bool,
    request: Request<Incoming>,
) -> Resp {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    match route(app, peer, over_limit, request).await {
        Ok(response) => {
            tracing::debug!(uid = peer.uid, %method, %path, status = response.status().as_u16(), "request");
            response
        }
        Err(error) => {
            tracing::info!(uid = peer.uid, %method, %path, code = %error.code(), "request refused: {error}");
            http::error(&error)
        }
    }
}

fn check_version(headers: &HeaderMap) -> Result<(), Error> {
    match headers.get(API_VERSION_HEADER) {
        // A client that says nothing (curl) gets the current version.
        None => Ok(()),
        Some(value) if value.as_bytes() == API_VERSION.to_string().as_bytes() => Ok(()),
        Some(value) => Err(Error::ApiVersion(
            String::from_utf8_lossy(value.as_bytes()).into_owned(),
        )),
    }
}

async fn route(
    app: Arc<App>,
    peer: Peer,
    over_limit: bool,
    request: Request<Incoming>,
) -> Result<Resp, Error> {
    if over_limit {
        return Err(Error::TooManyConnections(peer.uid));
    }
    peer::authorize(app.options.mode, app.daemon_uid, &peer)?;
    check_version(request.headers())?;

    let path = request.uri().path().to_owned();
    let method = request.method().clone();
    let segments: Vec<&str> = path.strip_prefix("/v1/").unwrap_or("").split('/').collect();
    let not_allowed = || Error::MethodNotAllowed {
        method: method.to_string(),
        path: path.clone(),
    };
    match segments.as_slice() {
        ["status"] => match method {
            Method::GET => Ok(status::get(&app, &peer)),
            _ => Err(not_allowed()),
        },
        ["profiles"] => match method {
            Method::GET => profiles::list(&app),
            Method::POST => profiles::add(&app, request).await,
            _ => Err(not_allowed()),
        },
        ["profiles", name] => match method {
            Method::GET => profiles::show(&app, name),
            Method::DELETE => profiles::remove(&app, name).await,
            Method::PATCH => profiles::update(&app, name, request).await,
            _ => Err(not_allowed()),
        },
        ["profiles", name, "exec"] => match method {
            Method::POST => exec::stream(&app, name, exec::Kind::Exec, request).await,
            _ => Err(not_allowed()),
        },
        ["profiles", name, "shell"] => match method {
            Method::POST => exec::stream(&app, name, exec::Kind::Shell, request).await,
            _ => Err(not_allowed()),
        },
        ["profiles", name, "files"] => match method {
            Method::GET => files::download(&app, name, request).await,
            Method::PUT => files::upload(&app, name, request).await,
            _ => Err(not_allowed()),
        },
        ["profiles", name, "sftp"] => match method {
            Method::POST => files::operation(&app, name, request).await,
            _ => Err(not_allowed()),
        },
        ["sessions"] => match method {
            Method::GET => Ok(sessions::list(&app)),
            _ => Err(not_allowed()),
        },
        ["sessions", profile] => match method {
            Method::DELETE => sessions::close(&app, profile).await,
            _ => Err(not_allowed()),
        },
        ["hostkeys", "probe"] => match method {
            Method::POST => profiles::probe(&app, request).await,
            _ => Err(not_allowed()),
        },
        _ => Err(Error::NotFound(path.clone())),
    }
}
