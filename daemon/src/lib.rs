//! tetherd: keeps SSH credentials sealed and lends live connections to
//! kernel-identified callers over a Unix socket.
//!
//! One folder per concern (see ARCHITECTURE.md):
//! - [`agent`]: the ssh-agent sockets served for callers;
//! - [`server`]: accept loop, peer credentials, routing, endpoints;
//! - [`store`]: the sealed redb store, its manifest and the master key;
//! - [`offline`]: what tetherd does to a state directory it is not serving;
//! - [`ssh`]: connecting, host keys, authentication, exec, SFTP;
//! - [`ftp`]: FTP and FTPS: pinned certificates, logins, the pool, files;
//! - [`remote`]: what SFTP and FTP share: remote errors and paths;
//! - [`witness`]: the hand-over of a credential to a proved server;
//! - [`sys`]: process hardening and the one audited `unsafe`.
//!
//! `main.rs` only parses flags, sets up logging and calls [`run`].

pub mod access;
pub mod agent;
pub mod audit;
pub mod config;
pub mod error;
pub mod ftp;
pub mod notify;
pub mod offline;
pub mod pieces;
pub mod remote;
pub mod server;
pub mod ssh;
pub mod store;
pub mod sys;
pub mod witness;

use config::Options;
use server::listener::{self, ListenError};
use store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Listen(#[from] ListenError),
    #[error("socket activation: {0}")]
    Activation(#[from] sys::ActivationError),
    #[error("cannot open the store in {}: {source}", dir.display())]
    Store {
        dir: std::path::PathBuf,
        source: StoreError,
    },
    #[error("cannot start listening: {0}")]
    Io(#[from] std::io::Error),
}

/// Opens the socket and the store, serves until `shutdown` resolves, then
/// drains running requests and removes the socket.
pub async fn run(options: Options, shutdown: impl Future<Output = ()>) -> Result<(), StartError> {
    sys::set_umask(0o077);
    let activated = sys::take_activated_listener()?;
    // Refuse to start beside a live daemon before touching its store.
    if activated.is_none() {
        listener::claim(&options.socket)?;
    }
    let store = open_store(&options).map_err(|source| StartError::Store {
        dir: options.state_dir.clone(),
        source,
    })?;
    let listener = match activated {
        Some(listener) => listener::adopted(listener)?,
        None => listener::bind(
            &options.socket,
            options.mode,
            &options.config.access.socket_group,
        )?,
    };
    let tokio_listener = tokio::net::UnixListener::from_std(listener.listener.try_clone()?)?;
    tracing::info!(
        mode = ?options.mode,
        socket = %options.socket.display(),
        activated = listener.activated,
        state_dir = %options.state_dir.display(),
        master_key = %store.key_source(),
        profiles = store.profile_count(),
        generation = store.generation(),
        damaged = store.damage().is_some(),
        "tetherd ready"
    );
    let audit = audit::Audit::new(&options.state_dir, &options.config.audit);
    let app = server::App::new(options, store, audit, sys::getuid());
    let intact = app.store.damage().is_none();
    if app.store.keys().is_ok() {
        app.open_trail().await.map_err(|source| StartError::Store {
            dir: app.options.state_dir.clone(),
            source,
        })?;
    }
    if intact {
        if let Err(error) = app.audit.prune(&app.store, app.daemon_uid).await {
            tracing::warn!(%error, "audit retention failed");
        }
    }
    let reloads = tokio::spawn(reload_on_hangup(app.clone()));
    let seals = tokio::spawn(seal_on_usr1(app.clone()));
    let watchdog = notify::watchdog_interval().map(|i| tokio::spawn(notify::keep_watchdog_fed(i)));
    notify::ready();
    let shutdown = async move {
        shutdown.await;
        notify::stopping();
    };
    server::serve(app, tokio_listener, shutdown).await;
    reloads.abort();
    seals.abort();
    if let Some(watchdog) = watchdog {
        watchdog.abort();
    }
    listener.cleanup();
    tracing::info!("tetherd stopped");
    Ok(())
}

/// The store, with its key; or, with `passphrase`, sealed until `tether
/// unseal`.
fn open_store(options: &Options) -> Result<Store, StoreError> {
    if !options.config.passphrase {
        return Store::open(&options.state_dir);
    }
    let credential = std::env::var_os("CREDENTIALS_DIRECTORY")
        .map(|dir| std::path::Path::new(&dir).join(store::master_key::CREDENTIAL_NAME))
        .filter(|path| path.exists());
    if let Some(path) = credential {
        return Err(StoreError::Key(format!(
            "passphrase mode and the systemd credential {} are two master keys: use one",
            path.display()
        )));
    }
    let wrapped = options.state_dir.join(store::passphrase::WRAPPED_FILE);
    let store = Store::open_locked(&options.state_dir, store::KeySource::Passphrase(wrapped))?;
    tracing::warn!("started sealed: `tether unseal` gives tetherd its passphrase");
    Ok(store)
}

/// SIGHUP (`systemctl reload`) re-reads the configuration file.
async fn reload_on_hangup(app: std::sync::Arc<server::App>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot handle SIGHUP; reload needs a restart");
        return;
    };
    while hangups.recv().await.is_some() {
        notify::reloading();
        if let Err(error) = app.reload() {
            tracing::error!(%error, "reload failed; the running configuration stays");
        }
        notify::ready();
    }
}

/// SIGUSR1 seals the daemon, as `tether seal` does.
async fn seal_on_usr1(app: std::sync::Arc<server::App>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut usr1) = signal(SignalKind::user_defined1()) else {
        tracing::warn!("cannot handle SIGUSR1; `tether seal` still works");
        return;
    };
    while usr1.recv().await.is_some() {
        app.seal("SIGUSR1").await;
    }
}
