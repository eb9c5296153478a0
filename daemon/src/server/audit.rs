//! `GET /v1/audit`, `GET /v1/audit/verify`, `POST /v1/audit/hmac`.
//!
//! Root reads every event; a user reads their own, and the events of the
//! profiles they own.

use std::collections::HashMap;

use ::http::{Request, StatusCode};
use hyper::body::Incoming;
use serde::{Deserialize, Serialize};
use tether_api::access::Role;
use tether_api::files::query_value;
use tether_api::secret::Secret;

use super::App;
use super::http::{Resp, json, query_number, read_json};
use crate::access::policy::grants_for;
use crate::access::{Caller, lookup_user};
use crate::audit::Query;
use crate::error::Error;

/// Most events one query answers.
const MAX_LIMIT: usize = 10_000;

pub fn list(app: &App, caller: &Caller, query: Option<&str>) -> Result<Resp, Error> {
    let query = query.unwrap_or("");
    let uid =
        match query_value(query, "user").map_err(Error::BadRequest)? {
            Some(who) => Some(lookup_user(&who).map(|(uid, _)| uid).ok_or_else(|| {
                Error::NoSuchUser(format!("no user {who:?} in the user database"))
            })?),
            None => None,
        };
    let limit = query_number(query, "limit")?
        .map(|l| l as usize)
        .unwrap_or(1000);
    let filters = Query {
        since_ms: query_number(query, "since")?.map(|s| s.saturating_mul(1000)),
        until_ms: query_number(query, "until")?.map(|s| s.saturating_mul(1000).saturating_add(999)),
        uid,
        profile: query_value(query, "profile").map_err(Error::BadRequest)?,
        op: query_value(query, "op").map_err(Error::BadRequest)?,
        after: query_number(query, "after")?,
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HmacRequest {
    value: Secret,
}

#[derive(Serialize)]
struct HmacAnswer {
    hmac: String,
}

/// Root: the HMAC the trail would hold for a sensitive value, to check one
/// without the trail holding it.
pub async fn hmac(app: &App, caller: &Caller, request: Request<Incoming>) -> Result<Resp, Error> {
    app.admin_only(caller, "compute audit HMACs")?;
    let request: HmacRequest = read_json(request, &app.config().limits).await?;
    Ok(json(
        StatusCode::OK,
        &HmacAnswer {
            hmac: app.audit.value_mac(request.value.expose()),
        },
    ))
}
