//! `GET /v1/status`: who the daemon is and who is asking.

use ::http::StatusCode;
use tether_api::types::{MasterKeyKind, Status, StoreState};

use crate::store::KeySource;
use crate::store::unseal::PassphraseState;

use super::App;
use super::http::{Resp, json};
use crate::access::Caller;
use crate::access::policy::Op;

/// Anyone the daemon serves may ask; the profile count is of the profiles
/// the caller can see, the store's state is for administrators.
pub fn get(app: &App, caller: &Caller) -> Resp {
    let profiles = if caller.admin {
        app.store.profile_count()
    } else {
        app.store
            .profiles()
            .map(|all| {
                all.iter()
                    .filter(|(name, _)| app.authorize(caller, name, Op::View).is_ok())
                    .count()
            })
            .unwrap_or(0)
    };
    json(
        StatusCode::OK,
        &Status {
            daemon_version: env!("CARGO_PKG_VERSION").to_owned(),
            api_version: tether_api::API_VERSION,
            mode: app.options.mode,
            daemon_uid: app.daemon_uid,
            caller_uid: caller.uid,
            socket: app.options.socket.display().to_string(),
            state_dir: app.options.state_dir.display().to_string(),
            profiles,
            sealed: app.store.is_sealed(),
            uptime_secs: app.started.elapsed().as_secs(),
            // Damage is for those who can act on it; others see their
            // requests refused with `store_corrupt`.
            master_key: caller.admin.then(|| match app.store.key_source() {
                KeySource::Credential(_) => MasterKeyKind::Credential,
                KeySource::File(_) | KeySource::Created(_) => MasterKeyKind::File,
                KeySource::Passphrase(_) => match app.store.passphrase_state() {
                    PassphraseState::Unset => MasterKeyKind::PassphraseUnset,
                    _ => MasterKeyKind::Passphrase,
                },
            }),
            store: caller.admin.then(|| StoreState {
                generation: app.store.generation(),
                damaged: app.store.damage().map(|report| report.summary()),
            }),
        },
    )
}
