//! The one module allowed `unsafe`, and the process-level hardening around it.
//!
//! Audited surface: [`take_activated_listener`] adopts file descriptor 3 from
//! systemd socket activation, which no safe API can express (the descriptor is
//! inherited, not opened by us); [`lock_in_memory`] calls mlock(2), which
//! rustix marks unsafe because it takes a raw address range;
//! [`limit_malloc_arenas`] calls glibc's mallopt(3), which has no safe
//! wrapper. Everything else here goes through rustix's safe wrappers.

use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;

use rustix::process::{DumpableBehavior, Resource, Rlimit};

/// Keeps `bytes` out of swap, best effort: mlock(2) needs the range to stay
/// where it is (callers pass a boxed buffer that lives as long as the lock
/// matters) and may be refused by RLIMIT_MEMLOCK; a refusal is logged, not
/// fatal. The pages are unlocked when the process ends.
pub fn lock_in_memory(bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    // SAFETY: mlock only changes the paging of the pages spanning this
    // range, which `bytes` borrows for the duration of the call; it reads
    // and writes no memory, so no aliasing or lifetime rule is touched.
    #[allow(unsafe_code)]
    let locked = unsafe { rustix::mm::mlock(bytes.as_ptr() as *mut _, bytes.len()) };
    if let Err(error) = locked {
        tracing::debug!(%error, "mlock refused; the buffer may be swapped");
    }
}

/// Caps glibc's malloc arenas at one per core (at least two; glibc's own
/// cap is eight per core). Each thread of the blocking pool, which reads
/// and writes handed-over files, may otherwise take an arena of its own and
/// keep what it freed: after 12,000 small-file transfers that was about a
/// tenth of the daemon's memory. Called before the runtime starts, so its
/// threads are created under the cap.
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let arenas = libc::c_int::try_from(cores.max(2)).unwrap_or(libc::c_int::MAX);
        // SAFETY: mallopt takes two integers and sets a limit the allocator
        // reads under its own lock when a thread first needs an arena; no
        // memory of ours is passed or touched.
        #[allow(unsafe_code)]
        let set = unsafe { libc::mallopt(libc::M_ARENA_MAX, arenas) };
        if set != 1 {
            tracing::debug!("mallopt(M_ARENA_MAX) refused");
        }
    }
}

/// First descriptor passed by systemd (`SD_LISTEN_FDS_START`).
const LISTEN_FDS_START: i32 = 3;

/// Makes the process undumpable (no core file, no ptrace by same-uid
/// processes, `/proc/self/mem` closed to them), sets the core limit to zero and
/// the umask to 077, so every file and socket the daemon creates is private
/// from the start. Raises the descriptor limit to its hard maximum, so that
/// many callers (or one hostile one) cannot run the daemon out of them.
pub fn harden_process() -> std::io::Result<()> {
    let files = rustix::process::getrlimit(Resource::Nofile);
    if files.current != files.maximum {
        rustix::process::setrlimit(
            Resource::Nofile,
            Rlimit {
                current: files.maximum,
                maximum: files.maximum,
            },
        )?;
    }
    rustix::process::set_dumpable_behavior(DumpableBehavior::NotDumpable)?;
    rustix::process::setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    )?;
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    Ok(())
}

pub fn getuid() -> u32 {
    rustix::process::getuid().as_raw()
}

/// Sets the umask for the socket about to be bound and returns the old one.
pub fn set_umask(mask: u32) -> u32 {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(mask)).bits()
}

#[derive(Debug, thiserror::Error)]
pub enum ActivationError {
    #[error("LISTEN_FDS={0} is not a number")]
    BadCount(String),
    #[error("systemd passed {0} sockets; tetherd takes exactly one")]
    WrongCount(usize),
    #[error("the socket passed by systemd is not a listening Unix stream socket")]
    NotUnixSocket,
}

/// Adopts the listening socket handed over by systemd, if `LISTEN_PID` names
/// this process. `Ok(None)` when the daemon was not socket-activated.
pub fn take_activated_listener() -> Result<Option<UnixListener>, ActivationError> {
    let pid_matches = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|pid| pid.parse::<u32>().ok())
        .is_some_and(|pid| pid == std::process::id());
    if !pid_matches {
        return Ok(None);
    }
    let count = std::env::var("LISTEN_FDS").unwrap_or_default();
    let count: usize = count
        .parse()
        .map_err(|_| ActivationError::BadCount(count.clone()))?;
    if count != 1 {
        return Err(ActivationError::WrongCount(count));
    }
    // Only adopt a descriptor that is open and is a socket: /proc tells
    // without touching it.
    let is_socket = std::fs::read_link(format!("/proc/self/fd/{LISTEN_FDS_START}"))
        .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"));
    if !is_socket {
        return Err(ActivationError::NotUnixSocket);
    }
    // SAFETY: systemd passes descriptor 3 open and owned by this process
    // (LISTEN_PID matched our pid, /proc shows it open as a socket), nothing
    // else in the daemon refers to it, and this function is the only place
    // that adopts it (it is called once, at start-up).
    #[allow(unsafe_code)]
    let fd = unsafe { OwnedFd::from_raw_fd(LISTEN_FDS_START) };
    let is_unix_stream = rustix::net::sockopt::socket_type(&fd)
        .is_ok_and(|kind| kind == rustix::net::SocketType::STREAM)
        && rustix::net::getsockname(&fd)
            .is_ok_and(|addr| addr.address_family() == rustix::net::AddressFamily::UNIX);
    if !is_unix_stream {
        return Err(ActivationError::NotUnixSocket);
    }
    Ok(Some(UnixListener::from(fd)))
}
