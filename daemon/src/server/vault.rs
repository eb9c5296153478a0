//! The store's own life, for administrators: `POST /v1/unseal`,
//! `POST /v1/passphrase`, `POST /v1/rekey` and `GET /v1/backup`.

use ::http::HeaderValue;
use ::http::StatusCode;
use ::http::header::CONTENT_TYPE;
use bytes::Bytes;
use tether_api::types::{
    BACKUP_GENERATION_HEADER, BACKUP_KEY_ID_HEADER, PassphraseChange, RekeyRequest, RekeyResult,
    UnsealRequest, UnsealResult,
};

use super::App;
use super::http::{Resp, full, json};
use crate::access::Caller;
use crate::audit::Event;
use crate::error::Error;
use crate::store::unseal::Unsealed;

/// Wipes the master key and closes every connection.
pub async fn seal(app: &App, caller: &Caller) -> Result<Resp, Error> {
    app.admin_only(caller, "seal the daemon")?;
    app.seal(&format!("uid {}", caller.uid)).await;
    Ok(super::http::empty(StatusCode::NO_CONTENT))
}

/// Gives a sealed daemon its master key: unwrapped with the passphrase, or
/// read again from its file. On record once the trail is open (a daemon
/// that started sealed has no trail before).
pub async fn unseal(app: &App, caller: &Caller, request: UnsealRequest) -> Result<Resp, Error> {
    app.admin_only(caller, "unseal the daemon")?;
    if !app.store.is_sealed() {
        return Err(Error::BadRequest("tetherd is not sealed".into()));
    }
    let store = &app.store;
    let unsealed = match &request.passphrase {
        Some(passphrase) => {
            let passphrase = passphrase.expose().as_bytes();
            // Argon2id takes its time and its memory: off the runtime.
            crate::store::db::blocking(|| store.unseal_with_passphrase(passphrase))
        }
        None => store.unseal_from_source(),
    };
    let unsealed = match unsealed {
        Ok(unsealed) => unsealed,
        Err(error) => return Err(app.refused_unseal(caller, error).await),
    };
    app.open_trail().await?;
    app.record_after(
        Event::new(caller, "daemon.unseal")
            .result("ok")
            .detail("passphrase_set", unsealed == Unsealed::PassphraseSet),
    )
    .await;
    tracing::warn!(uid = caller.uid, "unsealed");
    Ok(json(
        StatusCode::OK,
        &UnsealResult {
            passphrase_set: unsealed == Unsealed::PassphraseSet,
        },
    ))
}

/// Wraps the master key with a new passphrase.
pub async fn change_passphrase(
    app: &App,
    caller: &Caller,
    change: PassphraseChange,
) -> Result<Resp, Error> {
    app.admin_only(caller, "change the passphrase")?;
    let store = &app.store;
    let changed = crate::store::db::blocking(|| {
        store.change_passphrase(
            change.old.expose().as_bytes(),
            change.new.expose().as_bytes(),
        )
    });
    let end = Event::new(caller, "daemon.passphrase");
    match changed {
        Ok(()) => {
            app.record_after(end.result("ok")).await;
            Ok(super::http::empty(StatusCode::NO_CONTENT))
        }
        Err(error) => {
            let error = Error::from(error);
            app.record_after(end.result(error.code().as_str())).await;
            Err(error)
        }
    }
}

/// A new master key; every record re-sealed under it.
pub async fn rekey(app: &App, caller: &Caller, request: RekeyRequest) -> Result<Resp, Error> {
    app.admin_only(caller, "rekey the store")?;
    app.audited(Event::new(caller, "store.rekey"), async {
        let passphrase = request.passphrase.as_ref().map(|p| p.expose().as_bytes());
        let store = &app.store;
        let done = crate::store::db::blocking(|| store.rekey(passphrase))?;
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
