//! The store's own life, for administrators: `POST /v1/rekey` and
//! `GET /v1/backup`.

use ::http::HeaderValue;
use ::http::StatusCode;
use ::http::header::CONTENT_TYPE;
use bytes::Bytes;
use tether_api::types::{BACKUP_GENERATION_HEADER, BACKUP_KEY_ID_HEADER, RekeyResult};

use super::App;
use super::http::{Resp, full, json};
use crate::access::Caller;
use crate::audit::Event;
use crate::error::Error;

/// A new master key; every record re-sealed under it.
pub async fn rekey(app: &App, caller: &Caller) -> Result<Resp, Error> {
    app.admin_only(caller, "rekey the store")?;
    app.audited(Event::new(caller, "store.rekey"), async {
        let done = app.store.rekey()?;
        app.record_after(
            Event::daemon(app.daemon_uid, "store.rekeyed")
                .detail("old_key_id", done.old_key_id.as_str())
                .detail("new_key_id", done.new_key_id.as_str())
                .detail("records", done.records),
        )
        .await;
        Ok(json(
            StatusCode::OK,
            &RekeyResult {
                old_key_id: done.old_key_id,
                new_key_id: done.new_key_id,
                records: done.records as u64,
            },
        ))
    })
    .await
}

/// The store as one sealed snapshot (see `store::backup`).
pub async fn backup(app: &App, caller: &Caller) -> Result<Resp, Error> {
    app.admin_only(caller, "back up the store")?;
    app.audited(Event::new(caller, "store.backup"), async {
        let (header, bytes) = app.store.backup()?;
        let mut response = ::http::Response::new(full(Bytes::from(bytes)));
        *response.status_mut() = StatusCode::OK;
        let headers = response.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        if let Ok(value) = HeaderValue::from_str(&header.generation.to_string()) {
            headers.insert(BACKUP_GENERATION_HEADER, value);
        }
        if let Ok(value) = HeaderValue::from_str(&header.key_id) {
            headers.insert(BACKUP_KEY_ID_HEADER, value);
        }
        Ok(response)
    })
    .await
}
