//! `GET /v1/sessions` and `DELETE /v1/sessions/{profile}`: the pool's live
//! connections.

use ::http::StatusCode;
use tether_api::types::{SessionInfo, SessionList, SessionsClosed};

use super::App;
use super::http::{Resp, json};
use super::profiles;
use crate::access::Caller;
use crate::access::policy::Op;
use crate::audit::Event;
use crate::error::Error;

/// The live connections of the profiles the caller may see.
pub fn list(app: &App, caller: &Caller) -> Resp {
    let mut all = app.pool.sessions();
    all.extend(app.ftp.sessions());
    all.sort_by(|a, b| a.profile.cmp(&b.profile).then(a.id.cmp(&b.id)));
    let sessions = all
        .into_iter()
        .filter(|s| app.authorize(caller, &s.profile, Op::View).is_ok())
        .map(|s| SessionInfo {
            id: s.id,
            profile: s.profile,
            remote: s.remote,
            age_secs: s.age.as_secs(),
            idle_secs: s.idle.as_secs(),
            channels: s.channels,
            stalled: s.stalled,
            bytes_in: s.bytes_in,
            bytes_out: s.bytes_out,
        })
        .collect();
    json(StatusCode::OK, &SessionList { sessions })
}

pub async fn close(app: &App, caller: &Caller, profile: &str) -> Result<Resp, Error> {
    app.authorize(caller, profile, Op::Manage)?;
    app.audited(
        Event::new(caller, "session.close").profile(profile),
        async {
            profiles::check_name(profile)?;
            let closed = app.pool.close(profile).await + app.ftp.retire(profile);
            if closed == 0 && app.store.profile(profile)?.is_none() {
                return Err(Error::ProfileNotFound(profile.to_owned()));
            }
            tracing::info!(%profile, closed, "sessions closed on request");
            Ok(json(
                StatusCode::OK,
                &SessionsClosed {
                    profile: profile.to_owned(),
                    closed,
                },
            ))
        },
    )
    .await
}
