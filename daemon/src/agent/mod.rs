//! The ssh-agent sockets tetherd serves, one or more per caller.
//!
//! `tether agent` binds the socket as the caller and hands the listening
//! descriptor over (`POST /v1/agent`, [`tether_api::agent`]); [`adopt`]
//! checks it is a listening Unix stream socket and serves it until the
//! caller stops it (`tether agent -k`) or tetherd stops. Every connection's
//! peer is the kernel's answer (SO_PEERCRED) and must be the uid that
//! handed the socket over: the file's mode is a second fence, not the
//! first ([`session`]).
//!
//! - [`session`]: one agent connection: its requests and session binds;
//! - [`login`]: what is signed: the login request inside the data, the keys
//!   of the caller's profiles, the signature.

pub mod login;
pub mod session;

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};

use rustix::net::{AddressFamily, SocketAddrUnix, SocketType};
use tether_api::agent::AgentServing;
use tokio_util::sync::CancellationToken;

use crate::access::Caller;
use crate::audit::Event;
use crate::error::Error;
use crate::server::App;
use crate::server::per_uid::PerUid;

/// Agent sockets one uid may have served at once.
pub const MAX_SOCKETS_PER_UID: usize = 8;
/// Agent connections one uid may have open at once, over all its sockets.
pub const MAX_CONNECTIONS_PER_UID: usize = 64;

struct Served {
    id: u64,
    path: String,
    stop: CancellationToken,
}

/// The agent sockets being served, by the uid that handed them over.
#[derive(Default)]
pub struct Agents {
    served: Mutex<HashMap<u32, Vec<Served>>>,
    connections: PerUid,
    next_id: std::sync::atomic::AtomicU64,
}

impl Agents {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Vec<Served>>> {
        self.served.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a socket; refused past [`MAX_SOCKETS_PER_UID`].
    fn add(&self, uid: u32, path: &str) -> Result<(Ticket, usize), Error> {
        let mut served = self.lock();
        let mine = served.entry(uid).or_default();
        // The same path handed over again (its old socket was replaced):
        // the old listener is stopped.
        mine.retain(|s| {
            let same = s.path == path;
            if same {
                s.stop.cancel();
            }
            !same
        });
        if mine.len() >= MAX_SOCKETS_PER_UID {
            return Err(Error::Forbidden(format!(
                "tetherd serves {MAX_SOCKETS_PER_UID} agent sockets for uid {uid} already: \
                 `tether agent -k` stops them"
            )));
        }
        let ticket = Ticket {
            id: self
                .next_id
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            stop: CancellationToken::new(),
        };
        mine.push(Served {
            id: ticket.id,
            path: path.to_owned(),
            stop: ticket.stop.clone(),
        });
        Ok((ticket, mine.len()))
    }

    fn ended(&self, uid: u32, ticket: &Ticket) {
        let mut served = self.lock();
        if let Some(mine) = served.get_mut(&uid) {
            mine.retain(|s| s.id != ticket.id);
            if mine.is_empty() {
                served.remove(&uid);
            }
        }
    }

    /// Stops every socket `uid` handed over; their paths.
    pub fn stop(&self, uid: u32) -> Vec<String> {
        let mine = self.lock().remove(&uid).unwrap_or_default();
        mine.into_iter()
            .map(|s| {
                s.stop.cancel();
                s.path
            })
            .collect()
    }

    /// The sockets served for `uid`.
    pub fn paths(&self, uid: u32) -> Vec<String> {
        self.lock()
            .get(&uid)
            .map(|mine| mine.iter().map(|s| s.path.clone()).collect())
            .unwrap_or_default()
    }
}

/// A served socket: which one, and its stop.
struct Ticket {
    id: u64,
    stop: CancellationToken,
}

/// The path a listening Unix stream socket is bound to; anything else is
/// refused with what it is.
fn check_listener(fd: &OwnedFd) -> Result<String, String> {
    let domain = rustix::net::sockopt::socket_domain(fd).map_err(|_| "not a socket")?;
    if domain != AddressFamily::UNIX {
        return Err("not a Unix socket".into());
    }
    let kind = rustix::net::sockopt::socket_type(fd).map_err(|_| "not a socket")?;
    if kind != SocketType::STREAM {
        return Err("not a stream socket".into());
    }
    if !rustix::net::sockopt::socket_acceptconn(fd).unwrap_or(false) {
        return Err("not a listening socket".into());
    }
    let address = rustix::net::getsockname(fd).map_err(|_| "a socket without an address")?;
    let unix = SocketAddrUnix::try_from(address).map_err(|_| "not a Unix socket")?;
    match unix.path_bytes() {
        Some(path) => Ok(String::from_utf8_lossy(path).into_owned()),
        None => Err("a socket with no path (bind it to a file)".into()),
    }
}

/// Serves the listening socket `fd` that `caller` handed over.
pub async fn adopt(app: &Arc<App>, caller: &Caller, fd: OwnedFd) -> Result<AgentServing, Error> {
    let path = check_listener(&fd)
        .map_err(|what| Error::BadRequest(format!("the agent socket handed over is {what}")))?;
    let std_listener = std::os::unix::net::UnixListener::from(fd);
    let listener = std_listener
        .set_nonblocking(true)
        .and_then(|()| tokio::net::UnixListener::from_std(std_listener))
        .map_err(|e| Error::Internal(format!("cannot serve the agent socket: {e}")))?;
    let (ticket, sockets) = app.agents.add(caller.uid, &path)?;
    let recorded = app
        .record(Event::new(caller, "agent.start").detail("socket", path.as_str()))
        .await;
    if let Err(error) = recorded {
        app.agents.ended(caller.uid, &ticket);
        return Err(error);
    }
    tracing::info!(uid = caller.uid, socket = ?path, "serving an agent socket");
    let owner = caller.uid;
    let app_for_task = app.clone();
    app.spawn(async move {
        accept_loop(&app_for_task, owner, listener, &ticket.stop).await;
        app_for_task.agents.ended(owner, &ticket);
    });
    Ok(AgentServing {
        socket: path,
        sockets,
    })
}

async fn accept_loop(
    app: &Arc<App>,
    owner: u32,
    listener: tokio::net::UnixListener,
    stop: &CancellationToken,
) {
    let stopping = app.stopping();
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => return,
            () = stopping.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _)) => {
                let Some(admitted) = app.agents.connections.admit(owner, MAX_CONNECTIONS_PER_UID)
                else {
                    tracing::warn!(uid = owner, "agent connection limit reached; turned away");
                    continue;
                };
                let app = app.clone();
                app.clone().spawn(async move {
                    session::serve(&app, owner, stream).await;
                    drop(admitted);
                });
            }
            Err(error) if is_transient(&error) => {
                tracing::warn!(uid = owner, %error, "agent accept failed; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(error) => {
                tracing::warn!(uid = owner, %error, "agent socket failed; no longer served");
                return;
            }
        }
    }
}

/// Accept errors that pass (a connection reset before it was taken, no
/// descriptors or memory for a moment).
fn is_transient(error: &std::io::Error) -> bool {
    use rustix::io::Errno;
    matches!(
        error.raw_os_error().map(Errno::from_raw_os_error),
        Some(
            Errno::CONNABORTED
                | Errno::INTR
                | Errno::MFILE
                | Errno::NFILE
                | Errno::NOBUFS
                | Errno::NOMEM
                | Errno::PROTO
                | Errno::PERM
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_listening_unix_stream_socket_with_a_path_is_served() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        assert_eq!(
            check_listener(&OwnedFd::from(listener)),
            Ok(path.display().to_string())
        );

        let file = std::fs::File::open("/dev/null").unwrap();
        assert_eq!(
            check_listener(&OwnedFd::from(file)).unwrap_err(),
            "not a socket"
        );
        let (connected, _) = std::os::unix::net::UnixStream::pair().unwrap();
        assert_eq!(
            check_listener(&OwnedFd::from(connected)).unwrap_err(),
            "not a listening socket"
        );
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        assert_eq!(
            check_listener(&OwnedFd::from(tcp)).unwrap_err(),
            "not a Unix socket"
        );
        let datagram = std::os::unix::net::UnixDatagram::unbound().unwrap();
        assert_eq!(
            check_listener(&OwnedFd::from(datagram)).unwrap_err(),
            "not a stream socket"
        );
    }

    #[test]
    fn sockets_are_counted_per_uid_and_a_path_handed_over_again_replaces_its_listener() {
        let agents = Agents::default();
        let (first, _) = agents.add(1000, "/run/user/1000/a").unwrap();
        let (again, count) = agents.add(1000, "/run/user/1000/a").unwrap();
        assert!(
            first.stop.is_cancelled(),
            "the old listener of the path stops"
        );
        assert_eq!(count, 1);
        for n in 1..MAX_SOCKETS_PER_UID {
            agents.add(1000, &format!("/tmp/{n}")).unwrap();
        }
        assert!(agents.add(1000, "/tmp/one-more").is_err());
        assert!(agents.add(1001, "/tmp/other-uid").is_ok());
        let stopped = agents.stop(1000);
        assert_eq!(stopped.len(), MAX_SOCKETS_PER_UID);
        assert!(again.stop.is_cancelled());
        assert_eq!(agents.paths(1001), vec!["/tmp/other-uid".to_owned()]);
    }
}
