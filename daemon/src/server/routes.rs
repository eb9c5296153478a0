//! Routing: peer check, API version check, then one endpoint per path, each
//! with the access check its operation needs (see [`crate::access::policy`]).
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
use super::{App, access, audit, exec, files, mfa, profiles, rotate, sessions, status, vault};
use crate::access::Caller;
use crate::access::policy::Op;
use crate::audit::Event;
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

async fn route(app: Arc<App>, caller: &Caller, request: Request<Incoming>) -> Result<Resp, Error> {
    let path = request.uri().path().to_owned();
    let method = request.method().clone();
    let segments: Vec<&str> = path.strip_prefix("/v1/").unwrap_or("").split('/').collect();
    let not_allowed = || Error::MethodNotAllowed {
        method: method.to_string(),
        path: path.clone(),
    };
    let shared = &app;
    let app = &*app;
    let may = |name: &str, op: Op<'_>| app.authorize(caller, name, op);
    let event = |op: &str, profile: &str| Event::new(caller, op).profile(profile);
    match segments.as_slice() {
        ["status"] => match method {
            Method::GET => Ok(status::get(app, caller)),
            _ => Err(not_allowed()),
        },
        ["whoami"] => match method {
            Method::GET => access::whoami(app, caller),
            _ => Err(not_allowed()),
        },
        ["profiles"] => match method {
            Method::GET => profiles::list(app, caller),
            Method::POST => {
                app.admin_only(caller, "add profiles")?;
                profiles::add(app, caller, request).await
            }
            _ => Err(not_allowed()),
        },
        ["profiles", name] => match method {
            Method::GET => {
                may(name, Op::View)?;
                profiles::show(app, name)
            }
            Method::DELETE => {
                app.admin_only(caller, "remove profiles")?;
                app.audited(event("profile.remove", name), profiles::remove(app, name))
                    .await
            }
            Method::PATCH => {
                may(name, Op::Manage)?;
                profiles::update(app, caller, name, request).await
            }
            _ => Err(not_allowed()),
        },
        ["profiles", name, "public-key"] => match method {
            Method::GET => {
                may(name, Op::View)?;
                profiles::public_key(app, name)
            }
            _ => Err(not_allowed()),
        },
        ["profiles", name, "rotate"] => match method {
            Method::POST => {
                may(name, Op::Manage)?;
                rotate::rotate(app, caller, name, request).await
            }
            _ => Err(not_allowed()),
        },
        ["profiles", name, "exec"] => match method {
            Method::POST => {
                may(name, Op::Exec)?;
                exec::stream(shared, caller, name, exec::Kind::Exec, request).await
            }
            _ => Err(not_allowed()),
        },
        ["profiles", name, "shell"] => match method {
            Method::POST => {
                may(name, Op::Shell)?;
                exec::stream(shared, caller, name, exec::Kind::Shell, request).await
            }
            _ => Err(not_allowed()),
        },
        ["profiles", name, "run"] => match method {
            // The action's name is in the body: the stream checks it.
            Method::POST => exec::stream(shared, caller, name, exec::Kind::Run, request).await,
            _ => Err(not_allowed()),
        },
        ["profiles", name, "actions"] => match method {
            Method::GET => {
                may(name, Op::View)?;
                access::list_actions(app, name)
            }
            // An action runs without MFA under an unattended grant: only
            // root defines what may run that way.
            Method::POST => {
                app.admin_only(caller, "define actions")?;
                access::put_action(app, caller, name, request, false).await
            }
            Method::PUT => {
                app.admin_only(caller, "define actions")?;
                access::put_action(app, caller, name, request, true).await
            }
            _ => Err(not_allowed()),
        },
        ["profiles", name, "actions", action] => match method {
            Method::DELETE => {
                may(name, Op::Manage)?;
                app.audited(
                    event("action.remove", name).detail("action", *action),
                    access::remove_action(app, name, action),
                )
                .await
            }
            _ => Err(not_allowed()),
        },
        ["profiles", name, "files"] => match method {
            Method::GET => {
                let allowed = may(name, Op::Sftp { write: false })?;
                files::download(shared, caller, name, &allowed, request).await
            }
            // Authorized inside, where a refusal drains the upload's body.
            Method::PUT => files::upload(app, caller, name, request).await,
            _ => Err(not_allowed()),
        },
        ["profiles", name, "sftp"] => match method {
            // Read or write depends on the operation in the body.
            Method::POST => files::operation(app, caller, name, request).await,
            _ => Err(not_allowed()),
        },
        ["copy"] => match method {
            // Read on one profile and write on another: checked inside.
            Method::POST => files::copy(app, caller, request).await,
            _ => Err(not_allowed()),
        },
        ["sessions"] => match method {
            Method::GET => Ok(sessions::list(app, caller)),
            _ => Err(not_allowed()),
        },
        ["sessions", profile] => match method {
            Method::DELETE => {
                may(profile, Op::Manage)?;
                app.audited(
                    event("session.close", profile),
                    sessions::close(app, profile),
                )
                .await
            }
            _ => Err(not_allowed()),
        },
        ["hostkeys", "probe"] => match method {
            Method::POST => {
                app.admin_only(caller, "probe hosts")?;
                app.audited(
                    Event::new(caller, "hostkey.probe"),
                    profiles::probe(app, request),
                )
                .await
            }
            _ => Err(not_allowed()),
        },
        ["grants"] => match method {
            Method::GET => access::list_grants(app, caller, request.uri().query()),
            Method::POST => access::put_grant(app, caller, request, false).await,
            Method::PUT => access::put_grant(app, caller, request, true).await,
            _ => Err(not_allowed()),
        },
        ["grants", profile] => match method {
            Method::DELETE => {
                let query = request.uri().query().unwrap_or("").to_owned();
                app.audited(
                    event("grant.remove", profile).detail("who", query.as_str()),
                    access::remove_grant(app, caller, profile, Some(&query)),
                )
                .await
            }
            _ => Err(not_allowed()),
        },
        ["seal"] => match method {
            Method::POST => {
                app.admin_only(caller, "seal the daemon")?;
                app.seal(&format!("uid {}", caller.uid)).await;
                Ok(http::empty(::http::StatusCode::NO_CONTENT))
            }
            _ => Err(not_allowed()),
        },
        ["unseal"] => match method {
            Method::POST => vault::unseal(app, caller, request).await,
            _ => Err(not_allowed()),
        },
        ["passphrase"] => match method {
            Method::POST => vault::change_passphrase(app, caller, request).await,
            _ => Err(not_allowed()),
        },
        ["rekey"] => match method {
            Method::POST => vault::rekey(app, caller, request).await,
            _ => Err(not_allowed()),
        },
        ["backup"] => match method {
            Method::GET => vault::backup(app, caller).await,
            _ => Err(not_allowed()),
        },
        ["audit"] => match method {
            Method::GET => audit::list(app, caller, request.uri().query()),
            _ => Err(not_allowed()),
        },
        ["audit", "verify"] => match method {
            Method::GET => audit::verify(app, caller).await,
            _ => Err(not_allowed()),
        },
        ["audit", "hmac"] => match method {
            Method::POST => audit::hmac(app, caller, request).await,
            _ => Err(not_allowed()),
        },
        ["mfa", "enroll"] => match method {
            Method::POST => {
                app.audited(
                    Event::new(caller, "mfa.enroll"),
                    mfa::enroll(app, caller, request),
                )
                .await
            }
            _ => Err(not_allowed()),
        },
        ["mfa", "confirm"] => match method {
            Method::POST => {
                app.audited(
                    Event::new(caller, "mfa.confirm"),
                    mfa::confirm(app, caller, request),
                )
                .await
            }
            _ => Err(not_allowed()),
        },
        ["mfa", "login"] => match method {
            Method::POST => mfa::login(app, caller, request).await,
            _ => Err(not_allowed()),
        },
        ["mfa", "logout"] => match method {
            Method::POST => {
                app.audited(Event::new(caller, "mfa.logout"), async {
                    mfa::logout(app, caller)
                })
                .await
            }
            _ => Err(not_allowed()),
        },
        ["mfa", "status"] => match method {
            Method::GET => mfa::status_endpoint(app, caller),
            _ => Err(not_allowed()),
        },
        ["mfa", "invite"] => match method {
            Method::POST => mfa::invite(app, caller, request).await,
            _ => Err(not_allowed()),
        },
        ["mfa", "reset"] => match method {
            Method::POST => mfa::reset(app, caller, request).await,
            _ => Err(not_allowed()),
        },
        _ => Err(Error::NotFound(path.clone())),
    }
}
