//! Who a caller is and what they may do: the second and third layers.
//!
//! The uid comes from SO_PEERCRED; the groups from the user database
//! (getgrouplist), never from a PID's state, which a reused PID could fake.
//! The login session (for binding MFA sessions) is read from the caller's
//! PID, checked to belong to the same uid.

pub mod actions;
pub mod mfa;
pub mod policy;

use nix::unistd::{Gid, Group, Uid, User};
use tether_api::types::Mode;

/// The calling process's login session: its session id and the start time
/// of the session's leader (as sudo binds its timestamps), so that a reused
/// session id is a different session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LoginSession {
    pub sid: i32,
    pub leader_start: u64,
}

/// The kernel's word on a connection's process. Its gid is left out on
/// purpose: groups come from the user database ([`Caller`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub pid: Option<i32>,
}

impl Peer {
    pub fn from_stream(stream: &tokio::net::UnixStream) -> std::io::Result<Peer> {
        let cred = stream.peer_cred()?;
        Ok(Peer {
            uid: cred.uid(),
            pid: cred.pid(),
        })
    }
}

#[derive(Debug, Clone)]
pub struct Caller {
    pub uid: u32,
    pub pid: Option<i32>,
    /// The calling program, for the audit trail.
    pub exe: Option<String>,
    pub user: Option<String>,
    /// Every group the user is in, the primary one included.
    pub groups: Vec<u32>,
    /// Root, or the owner of a `--user` daemon: administers everything and
    /// needs no grant and no MFA.
    pub admin: bool,
}

impl Caller {
    pub fn resolve(peer: &Peer, mode: Mode, daemon_uid: u32) -> Caller {
        let Account { name, groups } = look_up(peer.uid);
        let admin = peer.uid == 0 || (mode == Mode::User && peer.uid == daemon_uid);
        let exe = peer.pid.and_then(program_of);
        Caller {
            uid: peer.uid,
            pid: peer.pid,
            exe,
            user: name,
            groups,
            admin,
        }
    }

    /// The caller's login session, if its process can be read and is still
    /// the caller's.
    pub fn login_session(&self) -> Option<LoginSession> {
        let pid = self.pid?;
        let (uid, sid, _) = proc_stat(pid)?;
        if uid != self.uid || sid <= 0 {
            return None;
        }
        let (_, _, leader_start) = proc_stat(sid)?;
        Some(LoginSession { sid, leader_start })
    }
}

/// A uid's name and groups, as the user database gives them.
struct Account {
    name: Option<String>,
    /// Every group the user is in, the primary one included, sorted.
    groups: Vec<u32>,
}

/// `uid`'s account, looked up for each caller. Groups from the user
/// database only: the process's effective gid (SO_PEERCRED) can be
/// anything a setgid program runs with.
fn look_up(uid: u32) -> Account {
    let user = User::from_uid(Uid::from_raw(uid)).ok().flatten();
    let mut groups = Vec::new();
    if let Some(user) = &user {
        groups.push(user.gid.as_raw());
        if let Ok(name) = std::ffi::CString::new(user.name.as_bytes()) {
            if let Ok(list) = nix::unistd::getgrouplist(&name, user.gid) {
                groups.extend(list.into_iter().map(Gid::as_raw));
            }
        }
    }
    groups.sort_unstable();
    groups.dedup();
    Account {
        name: user.map(|u| u.name),
        groups,
    }
}

/// The calling program: its executable's path where the daemon may read it
/// (it needs ptrace rights for other uids, which the hardened service does
/// not keep), else its command name from /proc/PID/stat, in brackets.
fn program_of(pid: i32) -> Option<String> {
    if let Ok(path) = std::fs::read_link(format!("/proc/{pid}/exe")) {
        return Some(path.display().to_string());
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let name = &stat[stat.find('(')? + 1..stat.rfind(')')?];
    Some(format!("[{name}]"))
}

/// The owner uid, session id and start time of a process, from /proc.
fn proc_stat(pid: i32) -> Option<(u32, i32, u64)> {
    use std::os::unix::fs::MetadataExt;
    let dir = format!("/proc/{pid}");
    let uid = std::fs::metadata(&dir).ok()?.uid();
    let stat = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
    // The command name is in parentheses and may hold anything: the fields
    // we want follow its last ')'. After it: state(3) ppid(4) pgrp(5)
    // session(6) ... starttime(22).
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let sid = fields.get(3)?.parse().ok()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((uid, sid, start))
}

/// A user by name or number, from the user database.
pub fn lookup_user(who: &str) -> Option<(u32, String)> {
    let user = match who.parse::<u32>() {
        Ok(uid) => User::from_uid(Uid::from_raw(uid)).ok().flatten(),
        Err(_) => User::from_name(who).ok().flatten(),
    };
    match (user, who.parse::<u32>()) {
        (Some(user), _) => Some((user.uid.as_raw(), user.name)),
        // A uid with no name is still a uid.
        (None, Ok(uid)) => Some((uid, uid.to_string())),
        (None, Err(_)) => None,
    }
}

/// A group by name or number, from the user database.
pub fn lookup_group(who: &str) -> Option<(u32, String)> {
    let group = match who.parse::<u32>() {
        Ok(gid) => Group::from_gid(Gid::from_raw(gid)).ok().flatten(),
        Err(_) => Group::from_name(who).ok().flatten(),
    };
    match (group, who.parse::<u32>()) {
        (Some(group), _) => Some((group.gid.as_raw(), group.name)),
        (None, Ok(gid)) => Some((gid, gid.to_string())),
        (None, Err(_)) => None,
    }
}

pub fn user_name(uid: u32) -> Option<String> {
    User::from_uid(Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
}

pub fn group_name(gid: u32) -> Option<String> {
    Group::from_gid(Gid::from_raw(gid))
        .ok()
        .flatten()
        .map(|g| g.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_login_session_is_found() {
        let uid = rustix::process::getuid().as_raw();
        let caller = Caller {
            uid,
            pid: Some(std::process::id() as i32),
            exe: None,
            user: None,
            groups: vec![],
            admin: false,
        };
        // A test runner may have no session leader left to read; when it
        // has, the session id is ours.
        if let Some(session) = caller.login_session() {
            let (_, sid, _) = proc_stat(std::process::id() as i32).unwrap();
            assert_eq!(session.sid, sid);
        }
        let other = Caller {
            uid: uid + 1,
            ..caller
        };
        assert_eq!(
            other.login_session(),
            None,
            "a process of another uid is not the caller's"
        );
    }

    #[test]
    fn root_is_found_by_name_and_number() {
        assert_eq!(lookup_user("root").map(|u| u.0), Some(0));
        assert_eq!(lookup_user("0").map(|u| u.1), Some("root".into()));
        assert_eq!(lookup_user("no-such-user-here"), None);
        assert_eq!(lookup_group("root").map(|g| g.0), Some(0));
    }
}
