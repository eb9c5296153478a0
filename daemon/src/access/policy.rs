//! The third layer: what a grant lets its holder do on one profile.
//!
//! Every grant that applies to the caller (their uid's, and each of their
//! groups') is weighed on its own; the request is allowed if any one grant
//! allows it. A profile with no grant for the caller does not exist for
//! them: `profile_not_found`, so names do not leak.

use tether_api::access::{ExecPolicy, Role, SftpAccess, Subject};

use super::Caller;
use crate::error::Error;
use crate::store::Store;
use crate::store::access::GrantRecord;

/// What a request wants to do with a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op<'a> {
    /// See it: show, host keys, actions, sessions.
    View,
    /// Change it, its actions or its grants; close its sessions.
    Manage,
    /// Run any command.
    Exec,
    Shell,
    /// Run one named action.
    Run(&'a str),
    /// SFTP read (download, ls, stat) or write (everything else).
    Sftp {
        write: bool,
    },
    /// A signature by the agent for a login, as a shell needs; `forwarded`
    /// when the login is made from a server reached with `ssh -A`.
    Agent {
        forwarded: bool,
    },
    /// A TCP connection made by the profile's server to `host:port`
    /// (`tether forward`, `tether proxy`).
    Forward {
        host: &'a str,
        port: u16,
    },
}

/// What the request may go on with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowed {
    /// SFTP path prefixes the request is limited to; `None` is anywhere.
    pub paths: Option<Vec<String>>,
}

enum Verdict {
    Allow(Option<Vec<String>>),
    NeedMfa,
    Deny(Error),
}

fn who(caller: &Caller) -> String {
    match &caller.user {
        Some(name) => format!("uid {} ({name})", caller.uid),
        None => format!("uid {}", caller.uid),
    }
}

fn weigh(caller: &Caller, profile: &str, op: Op<'_>, grant: &GrantRecord, mfa: bool) -> Verdict {
    let with_mfa = |paths: Option<Vec<String>>| {
        if mfa {
            Verdict::Allow(paths)
        } else {
            Verdict::NeedMfa
        }
    };
    let deny = |what: &str, why: &str| {
        Verdict::Deny(Error::Forbidden(format!(
            "{} may not {what} on {profile}: {why}",
            who(caller)
        )))
    };
    if op == Op::View {
        return Verdict::Allow(None);
    }
    if grant.role < Role::Operator {
        return deny("do this", "the grant is for viewing only");
    }
    match op {
        Op::View => Verdict::Allow(None),
        Op::Manage if grant.role < Role::Owner => {
            deny("change the profile", "that needs the owner role")
        }
        Op::Manage => with_mfa(None),
        Op::Exec if grant.exec != ExecPolicy::Any => {
            Verdict::Deny(Error::ActionNotAllowed(format!(
                "{} may run only named actions on {profile} (`tether run {profile} ACTION`)",
                who(caller)
            )))
        }
        Op::Exec | Op::Shell | Op::Sftp { .. } | Op::Agent { .. } | Op::Forward { .. }
            if grant.unattended =>
        {
            Verdict::Deny(Error::ActionNotAllowed(format!(
                "{}'s grant on {profile} is unattended: it runs named actions only",
                who(caller)
            )))
        }
        Op::Exec => with_mfa(None),
        Op::Shell if !grant.shell => deny("open a shell", "the grant does not allow shells"),
        Op::Shell => with_mfa(None),
        Op::Agent { .. } if !grant.shell => deny(
            "sign with its key through the agent",
            "the grant does not allow shells",
        ),
        Op::Agent { forwarded: true } if !grant.agent_forwarding => deny(
            "sign for a login forwarded from another server (ssh -A)",
            "the grant does not allow agent forwarding",
        ),
        Op::Agent { .. } => with_mfa(None),
        Op::Forward { host, port } => {
            if grant
                .forward
                .iter()
                .any(|d| destination_allows(d, host, port))
            {
                with_mfa(None)
            } else {
                deny(
                    &format!("connect to {host}:{port} through it"),
                    "the grant's --forward does not list it",
                )
            }
        }
        Op::Run(action) => {
            let listed = match &grant.exec {
                ExecPolicy::Any => true,
                ExecPolicy::Actions(names) => names.iter().any(|n| n == action),
                ExecPolicy::None => false,
            };
            if !listed {
                return Verdict::Deny(Error::ActionNotAllowed(format!(
                    "{} may not run action {action:?} on {profile}",
                    who(caller)
                )));
            }
            if grant.unattended {
                Verdict::Allow(None)
            } else {
                with_mfa(None)
            }
        }
        Op::Sftp { write } => {
            let needed = if write {
                SftpAccess::Write
            } else {
                SftpAccess::Read
            };
            if grant.sftp < needed {
                return deny(
                    if write { "write files" } else { "read files" },
                    "the grant does not allow it",
                );
            }
            with_mfa((!grant.paths.is_empty()).then(|| grant.paths.clone()))
        }
    }
}

/// The grants that apply to the caller on `profile`.
pub fn grants_for(
    store: &Store,
    caller: &Caller,
    profile: &str,
) -> Result<Vec<GrantRecord>, Error> {
    let mut out = Vec::new();
    for (_, subject, record) in store.grants(Some(profile))? {
        let applies = match subject {
            Subject::User(uid) => uid == caller.uid,
            Subject::Group(gid) => caller.groups.contains(&gid),
        };
        if applies {
            out.push(record?);
        }
    }
    Ok(out)
}

/// Decides `op` on `profile` for `caller`; `mfa` says whether the caller
/// has a live MFA session.
pub fn check(
    store: &Store,
    caller: &Caller,
    profile: &str,
    op: Op<'_>,
    mfa: impl FnOnce() -> bool,
) -> Result<Allowed, Error> {
    if caller.admin {
        return Ok(Allowed { paths: None });
    }
    let grants = grants_for(store, caller, profile)?;
    decide(caller, profile, op, &grants, mfa)
}

/// [`check`] once the caller's grants on `profile` are known.
fn decide(
    caller: &Caller,
    profile: &str,
    op: Op<'_>,
    grants: &[GrantRecord],
    mfa: impl FnOnce() -> bool,
) -> Result<Allowed, Error> {
    if grants.is_empty() {
        return Err(Error::ProfileNotFound(profile.to_owned()));
    }
    let mfa = op != Op::View && mfa();
    let mut allowed: Option<Option<Vec<String>>> = None;
    let mut need_mfa = false;
    // The refusal that explains: the one of the grant with the most power
    // (an operator grant's reason, not a viewer grant's "viewing only"),
    // and among equals a specific one over a plain `forbidden`.
    let mut denial: Option<(Role, Error)> = None;
    for grant in grants {
        match weigh(caller, profile, op, grant, mfa) {
            Verdict::Allow(paths) => {
                allowed = Some(match (allowed, paths) {
                    (Some(None), _) | (_, None) => None,
                    (Some(Some(mut a)), Some(b)) => {
                        a.extend(b);
                        Some(a)
                    }
                    (None, Some(b)) => Some(b),
                });
            }
            Verdict::NeedMfa => need_mfa = true,
            Verdict::Deny(error) => {
                let better = match &denial {
                    None => true,
                    Some((role, previous)) => {
                        grant.role > *role
                            || (grant.role == *role
                                && matches!(previous, Error::Forbidden(_))
                                && !matches!(error, Error::Forbidden(_)))
                    }
                };
                if better {
                    denial = Some((grant.role, error));
                }
            }
        }
    }
    match (allowed, need_mfa, denial) {
        (Some(paths), _, _) => Ok(Allowed { paths }),
        (None, true, _) => Err(Error::MfaRequired(format!("this on {profile}"))),
        (None, false, Some((_, error))) => Err(error),
        (None, false, None) => Err(Error::Forbidden(format!("{} may not do this", who(caller)))),
    }
}

/// Lexically normalizes an absolute SFTP path prefix: no `.` or `..`, no
/// empty components, no trailing `/` (but `/` itself).
pub fn normalize_prefix(prefix: &str) -> Result<String, String> {
    if !prefix.starts_with('/') {
        return Err(format!("path prefix {prefix:?} must be absolute"));
    }
    let mut parts = Vec::new();
    for part in prefix.split('/') {
        match part {
            "" => {}
            "." | ".." => {
                return Err(format!("path prefix {prefix:?} may not hold . or .."));
            }
            part => parts.push(part),
        }
    }
    Ok(format!("/{}", parts.join("/")))
}

/// A grant's `--forward` destination in the form it is stored: `HOST:PORT`
/// (an IPv6 address in brackets), the host in lower case, either part `*`.
pub fn normalize_destination(text: &str) -> Result<String, String> {
    let bad = || format!("--forward {text:?} is not HOST:PORT (either part may be `*`)");
    if text == "*" {
        return Ok("*:*".into());
    }
    let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port_ok = port == "*" || port.parse::<u16>().is_ok_and(|p| p != 0);
    let host_ok = host == "*"
        || (!host.is_empty()
            && host.len() <= 253
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._:%".contains(c)));
    if !port_ok || !host_ok {
        return Err(bad());
    }
    let host = host.to_ascii_lowercase();
    Ok(if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    })
}

/// Whether a stored `--forward` destination allows `host:port`. Names are
/// compared as written (the server resolves them): a grant for
/// `db.internal:5432` does not allow `10.0.0.5:5432`.
pub fn destination_allows(destination: &str, host: &str, port: u16) -> bool {
    let Some((allowed_host, allowed_port)) = destination.rsplit_once(':') else {
        return false;
    };
    let allowed_host = allowed_host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(allowed_host);
    (allowed_port == "*" || allowed_port.parse::<u16>() == Ok(port))
        && (allowed_host == "*" || allowed_host.eq_ignore_ascii_case(host))
}

/// Whether an absolute, resolved path lies under one of `prefixes`.
pub fn within(prefixes: &[String], path: &str) -> bool {
    prefixes.iter().any(|prefix| {
        prefix == "/"
            || path == prefix
            || path
                .strip_prefix(prefix.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller() -> Caller {
        Caller {
            uid: 1001,
            pid: None,
            exe: None,
            user: Some("alice".into()),
            groups: vec![1001],
            admin: false,
        }
    }

    fn grant(role: Role) -> GrantRecord {
        GrantRecord {
            role,
            shell: false,
            exec: ExecPolicy::None,
            sftp: SftpAccess::None,
            paths: vec![],
            unattended: false,
            agent_forwarding: false,
            forward: vec![],
        }
    }

    fn verdict(op: Op<'_>, grant: &GrantRecord, mfa: bool) -> &'static str {
        match weigh(&caller(), "web1", op, grant, mfa) {
            Verdict::Allow(_) => "allow",
            Verdict::NeedMfa => "mfa",
            Verdict::Deny(Error::ActionNotAllowed(_)) => "action_not_allowed",
            Verdict::Deny(Error::Forbidden(_)) => "forbidden",
            Verdict::Deny(_) => "other",
        }
    }

    #[test]
    fn viewers_only_view() {
        let g = grant(Role::Viewer);
        assert_eq!(verdict(Op::View, &g, false), "allow");
        for op in [
            Op::Exec,
            Op::Shell,
            Op::Run("x"),
            Op::Sftp { write: false },
            Op::Manage,
        ] {
            assert_eq!(verdict(op, &g, true), "forbidden", "{op:?}");
        }
    }

    #[test]
    fn operators_need_mfa_and_the_policy() {
        let mut g = grant(Role::Operator);
        g.shell = true;
        g.exec = ExecPolicy::Actions(vec!["backup".into()]);
        g.sftp = SftpAccess::Read;
        assert_eq!(verdict(Op::Shell, &g, false), "mfa");
        assert_eq!(verdict(Op::Shell, &g, true), "allow");
        assert_eq!(verdict(Op::Exec, &g, true), "action_not_allowed");
        assert_eq!(verdict(Op::Run("backup"), &g, false), "mfa");
        assert_eq!(verdict(Op::Run("backup"), &g, true), "allow");
        assert_eq!(verdict(Op::Run("restore"), &g, true), "action_not_allowed");
        assert_eq!(verdict(Op::Sftp { write: false }, &g, true), "allow");
        assert_eq!(verdict(Op::Sftp { write: true }, &g, true), "forbidden");
        assert_eq!(verdict(Op::Manage, &g, true), "forbidden");
    }

    #[test]
    fn unattended_grants_run_their_actions_without_mfa_and_nothing_else() {
        let mut g = grant(Role::Operator);
        g.unattended = true;
        g.shell = true;
        g.exec = ExecPolicy::Actions(vec!["backup".into()]);
        g.sftp = SftpAccess::Write;
        assert_eq!(verdict(Op::Run("backup"), &g, false), "allow");
        assert_eq!(verdict(Op::Run("other"), &g, false), "action_not_allowed");
        assert_eq!(verdict(Op::Shell, &g, true), "action_not_allowed");
        assert_eq!(
            verdict(Op::Sftp { write: false }, &g, true),
            "action_not_allowed"
        );
        g.exec = ExecPolicy::Any;
        assert_eq!(verdict(Op::Exec, &g, true), "action_not_allowed");
        assert_eq!(
            verdict(Op::Agent { forwarded: false }, &g, true),
            "action_not_allowed",
            "an unattended grant never signs"
        );
    }

    #[test]
    fn the_agent_signs_as_a_shell_opens_and_forwarded_logins_need_their_own_flag() {
        let mut g = grant(Role::Operator);
        g.exec = ExecPolicy::Actions(vec!["backup".into()]);
        let direct = Op::Agent { forwarded: false };
        let forwarded = Op::Agent { forwarded: true };
        assert_eq!(verdict(direct, &g, true), "forbidden", "actions only");
        assert_eq!(verdict(direct, &grant(Role::Viewer), true), "forbidden");
        g.shell = true;
        assert_eq!(verdict(direct, &g, false), "mfa");
        assert_eq!(verdict(direct, &g, true), "allow");
        assert_eq!(verdict(forwarded, &g, true), "forbidden");
        g.agent_forwarding = true;
        assert_eq!(verdict(forwarded, &g, false), "mfa");
        assert_eq!(verdict(forwarded, &g, true), "allow");
    }

    #[test]
    fn the_refusal_is_explained_by_the_grant_that_matters() {
        // alice's own operator grant (actions only) and her group's viewer
        // grant: exec is refused for the operator grant's reason.
        let mut operator = grant(Role::Operator);
        operator.exec = ExecPolicy::Actions(vec!["backup".into()]);
        let viewer = grant(Role::Viewer);
        for grants in [
            vec![viewer.clone(), operator.clone()],
            vec![operator.clone(), viewer.clone()],
        ] {
            let refused = decide(&caller(), "web1", Op::Exec, &grants, || true).unwrap_err();
            assert!(matches!(refused, Error::ActionNotAllowed(_)), "{refused}");
            assert!(!refused.to_string().contains("viewing only"), "{refused}");
            // Both plain refusals: the operator grant's says why.
            let refused = decide(&caller(), "web1", Op::Shell, &grants, || true).unwrap_err();
            assert!(
                refused.to_string().contains("does not allow shells"),
                "{refused}"
            );
        }
    }

    #[test]
    fn prefixes_are_normalized_and_matched_by_component() {
        assert_eq!(normalize_prefix("/srv//www/").unwrap(), "/srv/www");
        assert_eq!(normalize_prefix("/").unwrap(), "/");
        assert!(normalize_prefix("srv").is_err());
        assert!(normalize_prefix("/srv/../etc").is_err());
        let p = vec!["/srv/www".to_owned()];
        assert!(within(&p, "/srv/www"));
        assert!(within(&p, "/srv/www/a/b"));
        assert!(!within(&p, "/srv/www2"));
        assert!(!within(&p, "/srv"));
        assert!(within(&["/".to_owned()], "/etc/shadow"));
    }

    #[test]
    fn forward_destinations_allow_what_they_name() {
        assert_eq!(
            normalize_destination("DB.internal:5432").unwrap(),
            "db.internal:5432"
        );
        assert_eq!(normalize_destination("[::1]:22").unwrap(), "[::1]:22");
        assert_eq!(normalize_destination("*").unwrap(), "*:*");
        assert_eq!(normalize_destination("*:443").unwrap(), "*:443");
        for bad in [
            "db", "db:0", "db:x", ":22", "a b:22", "db:65536", "db;rm:22",
        ] {
            assert!(normalize_destination(bad).is_err(), "{bad}");
        }
        assert!(destination_allows("db.internal:5432", "DB.internal", 5432));
        assert!(!destination_allows("db.internal:5432", "db.internal", 5433));
        assert!(!destination_allows("db.internal:5432", "10.0.0.5", 5432));
        assert!(destination_allows("*:443", "anything", 443));
        assert!(destination_allows("[::1]:22", "::1", 22));
        assert!(destination_allows("*:*", "x", 1));

        let db = Op::Forward {
            host: "db",
            port: 5432,
        };
        let other_port = Op::Forward {
            host: "db",
            port: 22,
        };
        let mut g = grant(Role::Operator);
        assert_eq!(verdict(db, &g, true), "forbidden");
        g.forward = vec!["db:5432".into()];
        assert_eq!(verdict(db, &g, false), "mfa");
        assert_eq!(verdict(db, &g, true), "allow");
        assert_eq!(verdict(other_port, &g, true), "forbidden");
        g.unattended = true;
        assert_eq!(verdict(db, &g, true), "action_not_allowed");
    }
}
