//! `GET /v1/audit`, `GET /v1/audit/verify`, `POST /v1/audit/hmac`.
//!
//! Root reads every event; a user reads their own, and the events of the
//! profiles they own.

use std::collections::HashMap;

use ::http::StatusCode;
use tether_api::access::Role;
use tether_api::audit::{AuditQuery, HmacAnswer, HmacRequest};

use super::App;
use super::http::{Resp, json};
use crate::access::policy::grants_for;
use crate::access::{Caller, lookup_user};
use crate::audit::Query;
use crate::error::Error;

/// Most events one query answers.
const MAX_LIMIT: usize = 10_000;

/// Anyone: root reads every event, others their own and their profiles'.
pub fn list(app: &App, caller: &Caller, query: &str) -> Result<Resp, Error> {
    let query = AuditQuery::decode(query).map_err(Error::BadRequest)?;
    let uid =
        match &query.user {
            Some(who) => Some(lookup_user(who).map(|(uid, _)| uid).ok_or_else(|| {
                Error::NoSuchUser(format!("no user {who:?} in the user database"))
            })?),
            None => None,
        };
    let limit = query.limit.map(|l| l as usize).unwrap_or(1000);
    let filters = Query {
        since_ms: query.since.map(|s| s.saturating_mul(1000)),
        until_ms: query
            .until
            .map(|s| s.saturating_mul(1000).saturating_add(999)),
        uid,
        profile: query.profile,
        op: query.op,
        after: query.after,
        limit: limit.clamp(1, MAX_LIMIT),
    };
    let mut owned: HashMap<String, bool> = HashMap::new();
    let events = app.audit.query(&app.store, &filters, |event| {
        if caller.admin || event.uid == caller.uid {
            return true;
        }
        let Some(profile) = &event.profile else {
            return false;
        };
        *owned.entry(profile.clone()).or_insert_with(|| {
            grants_for(&app.store, caller, profile)
                .is_ok_and(|grants| grants.iter().any(|g| g.role == Role::Owner))
        })
    })?;
    Ok(json(StatusCode::OK, &events))
}

pub async fn verify(app: &App, caller: &Caller) -> Result<Resp, Error> {
    app.admin_only(caller, "verify the audit trail")?;
    Ok(json(StatusCode::OK, &app.audit.verify(&app.store).await?))
}

/// Root: the HMAC the trail would hold for a sensitive value, to check one
/// without the trail holding it.
pub async fn hmac(app: &App, caller: &Caller, request: HmacRequest) -> Result<Resp, Error> {
    app.admin_only(caller, "compute audit HMACs")?;
    Ok(json(
        StatusCode::OK,
        &HmacAnswer {
            hmac: app.audit.value_mac(request.value.expose()),
        },
    ))
}
