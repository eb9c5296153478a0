//! systemd's notification protocol (sd_notify): `READY=1` once the socket
//! and the store are up, `RELOADING=1`/`READY=1` around a reload,
//! `STOPPING=1` on the way out, and `WATCHDOG=1` pings at half the
//! watchdog interval. Without `NOTIFY_SOCKET` (not under systemd) every call
//! does nothing.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

fn send(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(socket) = UnixDatagram::unbound() else {
        return;
    };
    let bytes = path.as_encoded_bytes();
    let sent = if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(name)
            .and_then(|addr| socket.send_to_addr(state.as_bytes(), &addr))
    } else {
        socket.send_to(state.as_bytes(), &path)
    };
    if let Err(error) = sent {
        tracing::debug!(%error, state, "sd_notify failed");
    }
}

pub fn ready() {
    send("READY=1\nSTATUS=serving");
}

pub fn reloading() {
    send("RELOADING=1\nSTATUS=reloading the configuration");
}

pub fn stopping() {
    send("STOPPING=1\nSTATUS=draining running sessions");
}

/// The watchdog interval systemd asked for, if it asked this process.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.parse::<u32>().ok()? != std::process::id() {
            return None;
        }
    }
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// Pings the watchdog at half its interval, for as long as the runtime
/// serves (a wedged runtime stops pinging, and systemd restarts it).
pub async fn keep_watchdog_fed(interval: Duration) {
    let mut ticker = tokio::time::interval(interval / 2);
    loop {
        ticker.tick().await;
        send("WATCHDOG=1");
    }
}
