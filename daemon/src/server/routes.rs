//! Routing: peer check, API version check, then one endpoint per path, each
//! with the access check its operation needs (see [`crate::access::policy`]).
//!
//! Order matters: the peer is authorized before anything of the request is
//! looked at, so a uid that may not use the daemon learns nothing from it,
//! not even which paths exist.

use std::sync::Arc;

use ::http::{HeaderMap, Request};
use hyper::body::Incoming;
use tether_api::{API_VERSION, API_VERSION_HEADER};

use tether_api::endpoint::{self as ep, Endpoint, Route, RouteError};

use super::exec::Kind;
use super::http::{self, Resp, read_json};
use super::peer::{self, Peer};
use super::{
    App, access, agent, audit, exec, files, mfa, profiles, rotate, sessions, status, tunnel, vault,
};
use crate::access::Caller;
use crate::audit::refusals::Refusal;
use crate::error::Error;

pub async fn handle(app: Arc<App>, peer: Peer, request: Request<Incoming>) -> Resp {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let caller = Caller::resolve(&peer, app.options.mode, app.daemon_uid);
    // Refusals before anything of the request is looked at; the body, which
    // nobody will read, is drained so the client sees the answer.
    let early = peer::authorize(app.options.mode, app.daemon_uid, &peer)
        .and_then(|()| check_version(request.headers()));
    let result = match early {
        Ok(()) => route(app.clone(), &caller, request).await,
        Err(error) => {
            http::drain_in_background(request.into_body());
            Err(error)
        }
    };
    match result {
        Ok(response) => {
            tracing::debug!(uid = peer.uid, %method, %path, status = response.status().as_u16(), "request");
            response
        }
        Err(error) => {
            tracing::info!(uid = peer.uid, %method, %path, code = %error.code(), "request refused: {error}");
            if !matches!(error, Error::AuditUnavailable(_)) {
                // Attempts on a profile are found under its name.
                let profile = path
                    .strip_prefix("/v1/profiles/")
                    .and_then(|rest| rest.split('/').next())
                    .filter(|name| profiles::check_name(name).is_ok());
                app.refused(Refusal {
                    caller: &caller,
                    method: method.as_str(),
                    path: &path,
                    code: error.code().as_str(),
                    profile,
                })
                .await;
            }
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

/// One arm per endpoint of [`tether_api::endpoint`]; each handler's first
/// statement is its access check. Bodies are decoded here, by the
/// endpoint's type; only the streams and the upload take the request.
async fn route(app: Arc<App>, caller: &Caller, request: Request<Incoming>) -> Result<Resp, Error> {
    let path = request.uri().path().to_owned();
    let route = Route::parse(request.method().as_str(), &path).map_err(|error| match error {
        RouteError::NotFound => Error::NotFound(path.clone()),
        RouteError::MethodNotAllowed => Error::MethodNotAllowed {
            method: request.method().to_string(),
            path: path.clone(),
        },
    })?;
    let query = request.uri().query().unwrap_or("").to_owned();
    let limits = app.config().limits.clone();
    let shared = &app;
    let app = &*app;
    macro_rules! body {
        ($endpoint:ty) => {
            read_json::<<$endpoint as Endpoint>::Body>(request, &limits).await?
        };
    }
    match route {
        Route::GetStatus {} => Ok(status::get(app, caller)),
        Route::GetWhoami {} => access::whoami(app, caller),
        Route::ListProfiles {} => profiles::list(app, caller),
        Route::AddProfileCall {} => profiles::add(app, caller, body!(ep::AddProfileCall)).await,
        Route::ShowProfile { name } => profiles::show(app, caller, &name),
        Route::UpdateProfileCall { name } => {
            profiles::update(app, caller, &name, body!(ep::UpdateProfileCall)).await
        }
        Route::RemoveProfile { name } => profiles::remove(app, caller, &name).await,
        Route::ShowPublicKey { name } => profiles::public_key(app, caller, &name),
        Route::RotateKey { name } => rotate::rotate(app, caller, &name, body!(ep::RotateKey)).await,
        Route::Exec { name } => exec::stream(shared, caller, &name, Kind::Exec, request).await,
        Route::Shell { name } => exec::stream(shared, caller, &name, Kind::Shell, request).await,
        Route::RunAction { name } => exec::stream(shared, caller, &name, Kind::Run, request).await,
        Route::ListActions { name } => access::list_actions(app, caller, &name),
        Route::AddAction { name } => {
            access::put_action(app, caller, &name, body!(ep::AddAction), false).await
        }
        Route::SetAction { name } => {
            access::put_action(app, caller, &name, body!(ep::SetAction), true).await
        }
        Route::RemoveAction { name, action } => {
            access::remove_action(app, caller, &name, &action).await
        }
        Route::DownloadFile { name } => files::download(shared, caller, &name, request).await,
        Route::UploadFile { name } => files::upload(app, caller, &name, request).await,
        Route::UploadHandover { name } => files::hand_over(shared, caller, &name, request).await,
        Route::DownloadHandover { name } => files::fetch(shared, caller, &name, request).await,
        Route::UploadBatch { name } => files::upload_batch(shared, caller, &name, request).await,
        Route::DownloadBatch { name } => {
            files::download_batch(shared, caller, &name, request).await
        }
        Route::FileOperation { name } => {
            files::operation(app, caller, &name, body!(ep::FileOperation)).await
        }
        Route::OpenTunnel { name } => tunnel::open(shared, caller, &name, request).await,
        Route::CopyFile {} => files::copy(app, caller, body!(ep::CopyFile)).await,
        Route::ListSessions {} => Ok(sessions::list(app, caller)),
        Route::CloseSessions { name } => sessions::close(app, caller, &name).await,
        Route::ProbeHost {} => profiles::probe(app, caller, body!(ep::ProbeHost)).await,
        Route::ListGrants {} => access::list_grants(app, caller, &query),
        Route::AddGrant {} => access::put_grant(app, caller, body!(ep::AddGrant), false).await,
        Route::SetGrant {} => access::put_grant(app, caller, body!(ep::SetGrant), true).await,
        Route::RemoveGrant { name } => access::remove_grant(app, caller, &name, &query).await,
        Route::Seal {} => vault::seal(app, caller).await,
        Route::Unseal {} => vault::unseal(app, caller, body!(ep::Unseal)).await,
        Route::ChangePassphrase {} => {
            vault::change_passphrase(app, caller, body!(ep::ChangePassphrase)).await
        }
        Route::Rekey {} => vault::rekey(app, caller, body!(ep::Rekey)).await,
        Route::Backup {} => vault::backup(app, caller).await,
        Route::ListAudit {} => audit::list(app, caller, &query),
        Route::VerifyAudit {} => audit::verify(app, caller).await,
        Route::AuditHmac {} => audit::hmac(app, caller, body!(ep::AuditHmac)).await,
        Route::MfaEnroll {} => mfa::enroll(app, caller, body!(ep::MfaEnroll)).await,
        Route::MfaConfirm {} => mfa::confirm(app, caller, body!(ep::MfaConfirm)).await,
        Route::MfaLogin {} => mfa::login(app, caller, body!(ep::MfaLogin)).await,
        Route::MfaLogout {} => mfa::logout(app, caller).await,
        Route::StartAgent {} => agent::start(shared, caller, request).await,
        Route::ListAgents {} => Ok(agent::list(app, caller)),
        Route::StopAgent {} => agent::stop(app, caller).await,
        Route::MfaStatusCall {} => mfa::status_endpoint(app, caller),
        Route::MfaInvite {} => mfa::invite(app, caller, body!(ep::MfaInvite)).await,
        Route::MfaReset {} => mfa::reset(app, caller, body!(ep::MfaReset)).await,
    }
}
