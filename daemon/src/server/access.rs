//! Grants, named actions and `whoami`.
//!
//! Root (or a `--user` daemon's owner) administers every profile; a
//! profile's owners (role `owner`, with a live MFA session) manage its
//! grants and actions. Everyone else sees only the grants that apply to
//! them, and only through `whoami` or `grant list`.

use ::http::StatusCode;
use tether_api::access::{
    Action, ActionChange, ExecPolicy, Grant, GrantChange, GrantRequest, Role, SftpAccess, Subject,
    Whoami,
};
use tether_api::files::query_value;
use tether_api::types::Mode;

use super::App;
use super::http::{Resp, empty, json};
use super::profiles;
use crate::access::actions::{Template, valid_action_name};
use crate::access::policy::{Op, grants_for, normalize_prefix};
use crate::access::{Caller, group_name, lookup_group, lookup_user, user_name};
use crate::audit::Event;
use crate::error::Error;
use crate::store::access::GrantRecord;

fn named(profile: String, subject: Subject, record: GrantRecord) -> Grant {
    let name = match subject {
        Subject::User(uid) => user_name(uid),
        Subject::Group(gid) => group_name(gid),
    };
    Grant {
        profile,
        subject,
        name,
        role: record.role,
        shell: record.shell,
        exec: record.exec,
        sftp: record.sftp,
        paths: record.paths,
        unattended: record.unattended,
        agent_forwarding: record.agent_forwarding,
        forward: record.forward,
    }
}

fn applies(caller: &Caller, subject: Subject) -> bool {
    match subject {
        Subject::User(uid) => uid == caller.uid,
        Subject::Group(gid) => caller.groups.contains(&gid),
    }
}

fn owns(app: &App, caller: &Caller, profile: &str) -> bool {
    caller.admin
        || grants_for(&app.store, caller, profile)
            .is_ok_and(|grants| grants.iter().any(|g| g.role == Role::Owner))
}

/// The subject a request names with `user` or `group`.
fn subject_of(user: Option<&str>, group: Option<&str>) -> Result<Subject, Error> {
    match (user, group) {
        (Some(user), None) => lookup_user(user)
            .map(|(uid, _)| Subject::User(uid))
            .ok_or_else(|| Error::NoSuchUser(format!("no user {user:?} in the user database"))),
        (None, Some(group)) => lookup_group(group)
            .map(|(gid, _)| Subject::Group(gid))
            .ok_or_else(|| Error::NoSuchUser(format!("no group {group:?} in the user database"))),
        _ => Err(Error::BadRequest(
            "name exactly one of a user and a group".into(),
        )),
    }
}

/// `GET /v1/grants[?profile=P]`: all of them for root and for a profile's
/// owners; otherwise only the caller's own.
pub fn list_grants(app: &App, caller: &Caller, query: &str) -> Result<Resp, Error> {
    // Anyone: what is listed is what the caller may see.
    let profile = query_value(query, "profile").map_err(Error::BadRequest)?;
    if let Some(profile) = &profile {
        profiles::check_name(profile)?;
        app.authorize(caller, profile, Op::View)?;
    }
    let mut out = Vec::new();
    for (name, subject, record) in app.store.grants(profile.as_deref())? {
        if owns(app, caller, &name) || applies(caller, subject) {
            out.push(named(name, subject, record?));
        }
    }
    Ok(json(StatusCode::OK, &out))
}

/// Grants apply to the system daemon only: a `--user` daemon serves its
/// owner (and root), who administers it.
pub fn system_mode_only(app: &App, what: &str) -> Result<(), Error> {
    match app.options.mode {
        Mode::System => Ok(()),
        Mode::User => Err(Error::NotSupported(format!(
            "{what} apply to the system daemon: a tetherd --user serves only its owner (and \
             root), who needs neither"
        ))),
    }
}

/// Refuses a policy that contradicts itself.
fn check_policy(record: &GrantRecord) -> Result<(), Error> {
    let viewer_may_not = [
        (record.shell, "--shell"),
        (record.exec != ExecPolicy::None, "--exec"),
        (record.sftp != SftpAccess::None, "--sftp"),
        (record.unattended, "--unattended"),
        (!record.forward.is_empty(), "--forward"),
    ];
    if record.role == Role::Viewer {
        if let Some((_, flag)) = viewer_may_not.iter().find(|(set, _)| *set) {
            return Err(Error::BadRequest(format!(
                "a viewer only sees the profile: {flag} needs --role operator or owner"
            )));
        }
    }
    if record.unattended {
        let why = if record.shell {
            Some("--shell")
        } else if record.sftp != SftpAccess::None {
            Some("--sftp")
        } else if !matches!(record.exec, ExecPolicy::Actions(_)) {
            Some("--exec any (or none)")
        } else {
            None
        };
        if let Some(flag) = why {
            return Err(Error::BadRequest(format!(
                "an --unattended grant runs named actions only, without MFA: {flag} cannot go \
                 with it; give --exec ACTION,..."
            )));
        }
    }
    if record.agent_forwarding && !record.shell {
        return Err(Error::BadRequest(
            "--agent-forwarding lets the agent sign for logins made from a server the grant \
             opens a shell on: give --shell with it"
                .into(),
        ));
    }
    if record.unattended && !record.forward.is_empty() {
        return Err(Error::BadRequest(
            "an --unattended grant runs named actions only, without MFA: --forward cannot go \
             with it"
                .into(),
        ));
    }
    if record.role != Role::Owner {
        if let Some(wide) = record.forward.iter().find(|d| d.contains('*')) {
            return Err(Error::BadRequest(format!(
                "--forward {wide} reaches anything the server can: only an owner's grant may \
                 have `*`; name the host and port, or give --role owner"
            )));
        }
    }
    if !record.paths.is_empty() && record.sftp == SftpAccess::None {
        return Err(Error::BadRequest(
            "path prefixes limit SFTP: give --sftp read or write with them".into(),
        ));
    }
    Ok(())
}

/// The subject's grant on `profile`, if there is one.
fn existing_grant(
    app: &App,
    profile: &str,
    subject: Subject,
) -> Result<Option<GrantRecord>, Error> {
    for (_, s, record) in app.store.grants(Some(profile))? {
        if s == subject {
            return Ok(Some(record?));
        }
    }
    Ok(None)
}

/// `POST /v1/grants` adds a grant (refused where the subject has one);
/// `PUT /v1/grants` replaces the subject's grant (refused where it has none).
pub async fn put_grant(
    app: &App,
    caller: &Caller,
    add: GrantRequest,
    replace: bool,
) -> Result<Resp, Error> {
    if !caller.admin {
        app.authorize(caller, &add.profile, Op::Manage)?;
    }
    system_mode_only(app, "grants")?;
    profiles::check_name(&add.profile)?;
    if caller.admin {
        profiles::load(app, &add.profile)?;
    }
    let subject = subject_of(add.user.as_deref(), add.group.as_deref())?;
    let existing = existing_grant(app, &add.profile, subject)?;
    if !caller.admin {
        // MFA cannot be delegated away: an owner proved MFA once, and an
        // unattended grant would let others (or a script) skip it for good.
        if add.unattended || existing.as_ref().is_some_and(|g| g.unattended) {
            return Err(Error::Forbidden(
                "only root may create or change unattended grants (they run without MFA)".into(),
            ));
        }
    }
    let who = add.user.clone().or(add.group.clone()).unwrap_or_default();
    match (&existing, replace) {
        (Some(_), false) => {
            return Err(Error::GrantExists(format!(
                "{who} has a grant on {} already; `tether grant set {} ...` changes it",
                add.profile, add.profile
            )));
        }
        (None, true) => {
            return Err(Error::GrantNotFound(format!(
                "{} has no grant for {who}; `tether grant add` makes one",
                add.profile
            )));
        }
        _ => {}
    }
    let paths = add
        .paths
        .iter()
        .map(|p| normalize_prefix(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(Error::BadRequest)?;
    if let ExecPolicy::Actions(names) = &add.exec {
        if let Some(bad) = names.iter().find(|n| !valid_action_name(n)) {
            return Err(Error::BadRequest(format!("{bad:?} is not an action name")));
        }
    }
    let record = GrantRecord {
        role: add.role,
        shell: add.shell,
        exec: add.exec,
        sftp: add.sftp,
        paths,
        unattended: add.unattended,
        agent_forwarding: add.agent_forwarding,
        forward: add
            .forward
            .iter()
            .map(|d| crate::access::policy::normalize_destination(d))
            .collect::<Result<Vec<_>, _>>()
            .map_err(Error::BadRequest)?,
    };
    check_policy(&record)?;
    let mut start = Event::new(caller, if replace { "grant.set" } else { "grant.add" })
        .profile(&add.profile)
        .detail("subject", serde_json::to_value(subject).unwrap_or_default())
        .detail("policy", serde_json::to_value(&record).unwrap_or_default());
    if let Some(before) = &existing {
        start = start.detail("before", serde_json::to_value(before).unwrap_or_default());
    }
    app.audited(start, async {
        Ok(app.store.put_grant(&add.profile, subject, &record).await?)
    })
    .await?;
    tracing::info!(profile = %add.profile, ?subject, role = ?record.role, by = caller.uid, replace, "grant set");
    let after = named(add.profile.clone(), subject, record);
    match existing {
        Some(before) => Ok(json(
            StatusCode::OK,
            &GrantChange {
                before: named(add.profile, subject, before),
                after,
            },
        )),
        None => Ok(json(StatusCode::CREATED, &after)),
    }
}

/// `DELETE /v1/grants/{profile}?user=WHO` or `?group=WHO`.
pub async fn remove_grant(
    app: &App,
    caller: &Caller,
    profile: &str,
    query: &str,
) -> Result<Resp, Error> {
    if !caller.admin {
        app.authorize(caller, profile, Op::Manage)?;
    }
    let start = Event::new(caller, "grant.remove")
        .profile(profile)
        .detail("who", query);
    app.audited(start, removed_grant(app, caller, profile, query))
        .await
}

async fn removed_grant(
    app: &App,
    caller: &Caller,
    profile: &str,
    query: &str,
) -> Result<Resp, Error> {
    system_mode_only(app, "grants")?;
    profiles::check_name(profile)?;
    let user = query_value(query, "user").map_err(Error::BadRequest)?;
    let group = query_value(query, "group").map_err(Error::BadRequest)?;
    let subject = subject_of(user.as_deref(), group.as_deref())?;
    if !app.store.remove_grant(profile, subject).await? {
        return Err(Error::GrantNotFound(format!(
            "{profile} has no grant for {}",
            user.or(group).unwrap_or_default()
        )));
    }
    tracing::info!(%profile, ?subject, by = caller.uid, "grant removed");
    Ok(empty(StatusCode::NO_CONTENT))
}

pub fn list_actions(app: &App, caller: &Caller, profile: &str) -> Result<Resp, Error> {
    app.authorize(caller, profile, Op::View)?;
    profiles::load(app, profile)?;
    let actions: Vec<Action> = app
        .store
        .actions(profile)?
        .into_iter()
        .map(|(name, argv)| Action { name, argv })
        .collect();
    Ok(json(StatusCode::OK, &actions))
}

/// `POST .../actions` defines an action (refused where one of that name
/// exists); `PUT .../actions` replaces one (refused where there is none).
pub async fn put_action(
    app: &App,
    caller: &Caller,
    profile: &str,
    action: Action,
    replace: bool,
) -> Result<Resp, Error> {
    // An action runs without MFA under an unattended grant: only root
    // defines what may run that way.
    app.admin_only(caller, "define actions")?;
    profiles::load(app, profile)?;
    if !valid_action_name(&action.name) {
        return Err(Error::BadRequest(format!(
            "{:?} is not an action name: letters, digits, - _ and .",
            action.name
        )));
    }
    Template::parse(&action.argv).map_err(Error::BadRequest)?;
    let existing = app.store.action(profile, &action.name)?;
    match (&existing, replace) {
        (Some(_), false) => {
            return Err(Error::ActionExists {
                profile: profile.to_owned(),
                action: action.name,
            });
        }
        (None, true) => {
            return Err(Error::ActionNotFound {
                profile: profile.to_owned(),
                action: action.name,
            });
        }
        _ => {}
    }
    let mut start = Event::new(caller, if replace { "action.set" } else { "action.add" })
        .profile(profile)
        .detail("action", action.name.as_str())
        .detail("argv", action.argv.clone());
    if let Some(before) = &existing {
        start = start.detail("before", before.clone());
    }
    app.audited(start, async {
        Ok(app
            .store
            .put_action(profile, &action.name, &action.argv)
            .await?)
    })
    .await?;
    tracing::info!(%profile, action = %action.name, replace, "action set");
    match existing {
        Some(before) => Ok(json(
            StatusCode::OK,
            &ActionChange {
                before: Action {
                    name: action.name.clone(),
                    argv: before,
                },
                after: action,
            },
        )),
        None => Ok(json(StatusCode::CREATED, &action)),
    }
}

pub async fn remove_action(
    app: &App,
    caller: &Caller,
    profile: &str,
    action: &str,
) -> Result<Resp, Error> {
    app.authorize(caller, profile, Op::Manage)?;
    let start = Event::new(caller, "action.remove")
        .profile(profile)
        .detail("action", action);
    app.audited(start, async {
        profiles::load(app, profile)?;
        if !app.store.remove_action(profile, action).await? {
            return Err(Error::ActionNotFound {
                profile: profile.to_owned(),
                action: action.to_owned(),
            });
        }
        tracing::info!(%profile, %action, "action removed");
        Ok(empty(StatusCode::NO_CONTENT))
    })
    .await
}

/// `GET /v1/whoami`: the caller as the daemon sees them.
pub fn whoami(app: &App, caller: &Caller) -> Result<Resp, Error> {
    let mut grants = Vec::new();
    for (profile, subject, record) in app.store.grants(None)? {
        if applies(caller, subject) {
            grants.push(named(profile, subject, record?));
        }
    }
    Ok(json(
        StatusCode::OK,
        &Whoami {
            uid: caller.uid,
            user: caller.user.clone(),
            groups: caller
                .groups
                .iter()
                .map(|gid| group_name(*gid).unwrap_or_else(|| gid.to_string()))
                .collect(),
            admin: caller.admin,
            mfa: app.mfa.status(&app.store, caller)?,
            grants,
        },
    ))
}
