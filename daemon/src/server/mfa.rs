//! `/v1/mfa/*`: enrolment, login, logout, status, and root's reset.

use ::http::{Request, StatusCode};
use hyper::body::Incoming;
use tether_api::access::{CodeRequest, ResetRequest};

use super::App;
use super::http::{Resp, empty, json, read_json};
use crate::access::{Caller, lookup_user};
use crate::audit::Event;
use crate::error::Error;

pub async fn enroll(app: &App, caller: &Caller) -> Result<Resp, Error> {
    let started = app.mfa.enroll(&app.store, caller).await?;
    tracing::info!(uid = caller.uid, "MFA enrolment started");
    Ok(json(StatusCode::OK, &started))
}

pub async fn confirm(
    app: &App,
    caller: &Caller,
    request: Request<Incoming>,
) -> Result<Resp, Error> {
    let request: CodeRequest = read_json(request, &app.config().limits).await?;
    let confirmed = app
        .mfa
        .confirm(&app.store, caller, request.code.expose())
        .await?;
    tracing::info!(uid = caller.uid, "MFA enrolled");
    Ok(json(StatusCode::OK, &confirmed))
}

pub async fn login(app: &App, caller: &Caller, request: Request<Incoming>) -> Result<Resp, Error> {
    let request: CodeRequest = read_json(request, &app.config().limits).await?;
    let logged_in = app
        .audited(
            Event::new(caller, "mfa.login"),
            app.mfa.login(&app.store, caller, request.code.expose()),
        )
        .await;
    if let Err(error) = logged_in {
        let lockout = app.store.lockout(caller.uid)?;
        if lockout.locked_until > crate::store::now() {
            let event = Event::new(caller, "mfa.lockout")
                .result("locked")
                .detail("failures", lockout.failures)
                .detail("until", lockout.locked_until);
            app.record_after(event).await;
        }
        return Err(error);
    }
    tracing::info!(uid = caller.uid, "MFA session opened");
    status(app, caller)
}

pub fn logout(app: &App, caller: &Caller) -> Result<Resp, Error> {
    app.mfa.logout(caller);
    status(app, caller)
}

pub fn status(app: &App, caller: &Caller) -> Result<Resp, Error> {
    Ok(json(StatusCode::OK, &app.mfa.status(&app.store, caller)?))
}

pub async fn reset(app: &App, caller: &Caller, request: Request<Incoming>) -> Result<Resp, Error> {
    app.admin_only(caller, "reset another user's MFA")?;
    let reset: ResetRequest = read_json(request, &app.config().limits).await?;
    let (uid, _) = lookup_user(&reset.user).ok_or_else(|| {
        Error::NoSuchUser(format!("no user {:?} in the user database", reset.user))
    })?;
    let start = Event::new(caller, "mfa.reset")
        .detail("uid", uid)
        .detail("user", reset.user.as_str())
        .detail("unenroll", reset.unenroll);
    app.audited(start, app.mfa.reset(&app.store, uid, reset.unenroll))
        .await?;
    tracing::info!(uid, unenroll = reset.unenroll, by = caller.uid, "MFA reset");
    Ok(empty(StatusCode::NO_CONTENT))
}
