//! `/v1/mfa/*`: enrolment, login, logout, status, and root's reset.

use ::http::StatusCode;
use tether_api::access::{CodeRequest, EnrollRequest, Invite, InviteRequest, ResetRequest};
use tether_api::secret::Secret;

use super::App;
use super::http::{Resp, empty, json};
use crate::access::{Caller, lookup_user};
use crate::audit::Event;
use crate::error::Error;

/// Anyone may enrol themselves (the invite policy is checked inside).
pub async fn enroll(
    app: &App,
    caller: &Caller,
    request: Option<EnrollRequest>,
) -> Result<Resp, Error> {
    app.audited(
        Event::new(caller, "mfa.enroll"),
        enrolled(app, caller, request),
    )
    .await
}

async fn enrolled(
    app: &App,
    caller: &Caller,
    request: Option<EnrollRequest>,
) -> Result<Resp, Error> {
    user_mode_has_no_mfa(app)?;
    // No body (or `null`) is an enrolment without an invite.
    let invite = request.and_then(|r| r.invite);
    let enrolment = app.config().mfa.enrolment;
    let started = app
        .mfa
        .enroll(
            &app.store,
            caller,
            enrolment,
            invite.as_ref().map(|code| code.expose()),
        )
        .await?;
    tracing::info!(uid = caller.uid, "MFA enrolment started");
    Ok(json(StatusCode::OK, &started))
}

/// Anyone may confirm their own enrolment.
pub async fn confirm(app: &App, caller: &Caller, request: CodeRequest) -> Result<Resp, Error> {
    app.audited(Event::new(caller, "mfa.confirm"), async {
        user_mode_has_no_mfa(app)?;
        let confirmed = app
            .mfa
            .confirm(&app.store, caller, request.code.expose())
            .await?;
        tracing::info!(uid = caller.uid, "MFA enrolled");
        Ok(json(StatusCode::OK, &confirmed))
    })
    .await
}

/// Anyone may log in with their own code.
pub async fn login(app: &App, caller: &Caller, request: CodeRequest) -> Result<Resp, Error> {
    user_mode_has_no_mfa(app)?;
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

/// MFA guards grants, which only the system daemon has.
fn user_mode_has_no_mfa(app: &App) -> Result<(), Error> {
    super::access::system_mode_only(app, "TOTP and MFA sessions")
}

/// Anyone may end their own MFA session.
pub async fn logout(app: &App, caller: &Caller) -> Result<Resp, Error> {
    app.audited(Event::new(caller, "mfa.logout"), async {
        app.mfa.logout(caller);
        status(app, caller)
    })
    .await
}

/// `GET /v1/mfa/status`.
pub fn status_endpoint(app: &App, caller: &Caller) -> Result<Resp, Error> {
    user_mode_has_no_mfa(app)?;
    status(app, caller)
}

pub fn status(app: &App, caller: &Caller) -> Result<Resp, Error> {
    Ok(json(StatusCode::OK, &app.mfa.status(&app.store, caller)?))
}

/// Longest an invite may stay valid: a week.
const MAX_INVITE_SECS: u64 = 7 * 86_400;

/// `POST /v1/mfa/invite` (root): a one-time code for USER's first enrolment.
pub async fn invite(app: &App, caller: &Caller, invite: InviteRequest) -> Result<Resp, Error> {
    app.admin_only(caller, "issue MFA invites")?;
    user_mode_has_no_mfa(app)?;
    let ttl = invite.ttl_secs.unwrap_or(86_400);
    if !(60..=MAX_INVITE_SECS).contains(&ttl) {
        return Err(Error::BadRequest(format!(
            "an invite lasts 60 to {MAX_INVITE_SECS} seconds"
        )));
    }
    let (uid, user) = lookup_user(&invite.user).ok_or_else(|| {
        Error::NoSuchUser(format!("no user {:?} in the user database", invite.user))
    })?;
    let start = Event::new(caller, "mfa.invite")
        .detail("uid", uid)
        .detail("user", user.as_str())
        .detail("ttl_secs", ttl);
    let (code, expires_at) = app
        .audited(start, app.mfa.invite(&app.store, uid, caller.uid, ttl))
        .await?;
    tracing::info!(uid, by = caller.uid, "MFA invite issued");
    Ok(json(
        StatusCode::OK,
        &Invite {
            user,
            uid,
            code: Secret::new(code.to_string()),
            expires_at,
        },
    ))
}

pub async fn reset(app: &App, caller: &Caller, reset: ResetRequest) -> Result<Resp, Error> {
    app.admin_only(caller, "reset another user's MFA")?;
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
