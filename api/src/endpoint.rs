//! Every endpoint of the API, defined once: its method and path, who may
//! call it, what it takes and what it answers. The CLI calls them through
//! [`crate::client::Client::call`]; the daemon routes with [`Route::parse`],
//! whose `match` must name every endpoint; [`ENDPOINTS`] is the list the
//! README's table is checked against.
//!
//! Adding an endpoint is one entry here, one arm in the daemon's router and
//! one handler.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::access::{
    Action, ActionChange, CodeRequest, EnrollConfirmed, EnrollRequest, EnrollStarted, Grant,
    GrantChange, GrantRequest, Invite, InviteRequest, MfaStatus, ResetRequest, RunRequest, Whoami,
};
use crate::agent::{AgentRequest, AgentSockets};
use crate::audit::{AuditEvent, AuditQuery, AuditVerify, HmacAnswer, HmacRequest};
use crate::files::{CopyRequest, FileQuery, SftpRequest, SftpResponse, Uploaded};
use crate::tunnel::TunnelRequest;
use crate::types::{
    AddProfile, ExecRequest, HostKeyInfo, PassphraseChange, ProbeHostKey, ProfileInfo, ProfileList,
    PublicKey, RekeyRequest, RekeyResult, RotateRequest, RotateResult, SessionList, SessionsClosed,
    ShellRequest, Status, UnsealRequest, UnsealResult, UpdateProfile,
};

/// Who may call an endpoint. The daemon's handler checks it first thing;
/// the route table test calls every endpoint as callers of each kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone the daemon serves (what is answered may depend on who).
    Anyone,
    /// Root (the daemon's owner, for a `--user` daemon).
    Admin,
    /// A grant that lets the caller see the profile.
    View,
    /// The profile's owner.
    Manage,
    /// A grant that runs any command.
    Exec,
    Shell,
    /// A grant for the action named in the body.
    Run,
    SftpRead,
    SftpWrite,
    /// SFTP read or write, as the operation in the body needs.
    Sftp,
    /// SFTP read on one profile and write on another, named in the body.
    Copy,
    /// A grant's `--forward` for the destination named in the body.
    Forward,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Anyone => "anyone",
            Access::Admin => "root",
            Access::View => "view",
            Access::Manage => "owner",
            Access::Exec => "exec",
            Access::Shell => "shell",
            Access::Run => "the action's grant",
            Access::SftpRead => "sftp read",
            Access::SftpWrite => "sftp write",
            Access::Sftp => "sftp read or write",
            Access::Copy => "sftp read and write",
            Access::Forward => "forward to the destination",
        }
    }
}

/// An endpoint as documented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointInfo {
    pub name: &'static str,
    pub method: &'static str,
    pub pattern: &'static str,
    pub access: Access,
    pub summary: &'static str,
}

/// One endpoint: its parameters are the struct's fields.
pub trait Endpoint {
    const INFO: EndpointInfo;
    /// The JSON body (`()` for none).
    type Body: Serialize;
    /// The JSON answer (`()` for none); [`Stream`], [`Binary`] and
    /// [`Download`] mark answers that are not JSON.
    type Answer: DeserializeOwned;
    /// The path to call, parameters and query filled in.
    fn path(&self) -> String;
}

/// The answer is an upgraded, framed stream ([`crate::frame`]).
#[derive(Debug, serde::Deserialize)]
pub enum Stream {}
/// The connection is upgraded to hand a socket over ([`crate::agent`]).
#[derive(Debug, serde::Deserialize)]
pub enum Handover {}
/// The answer is a file's bytes, its size, mode and mtime in headers.
#[derive(Debug, serde::Deserialize)]
pub enum Download {}
/// The answer is bytes (a backup).
#[derive(Debug, serde::Deserialize)]
pub enum Binary {}
/// The body is a file's bytes.
#[derive(Debug, Serialize)]
pub enum Upload {}

/// A query string of an endpoint.
pub trait Query {
    /// `key=value&...`, values percent-encoded; empty for none.
    fn encode(&self) -> String;
}

/// A path parameter, percent-encoded.
fn encode_segment(value: &str) -> String {
    crate::files::encode_query_value(value).replace('/', "%2F")
}

/// `pattern` with `{name}` replaced by its value.
fn fill(pattern: &str, params: &[(&str, &str)]) -> String {
    let mut path = pattern.to_owned();
    for (name, value) in params {
        path = path.replace(&format!("{{{name}}}"), &encode_segment(value));
    }
    path
}

fn with_query(path: String, query: &impl Query) -> String {
    match query.encode() {
        encoded if encoded.is_empty() => path,
        encoded => format!("{path}?{encoded}"),
    }
}

/// The values of `pattern`'s `{parameters}` in `path`, in order, if it
/// matches; each decoded.
fn capture(pattern: &str, path: &str) -> Option<Vec<String>> {
    let mut wanted = pattern.split('/');
    let mut given = path.split('/');
    let mut values = Vec::new();
    loop {
        match (wanted.next(), given.next()) {
            (None, None) => return Some(values),
            (Some(w), Some(g)) if w.starts_with('{') => {
                if g.is_empty() {
                    return None;
                }
                values.push(decode_segment(g)?);
            }
            (Some(w), Some(g)) if w == g => {}
            _ => return None,
        }
    }
}

/// A path segment, percent-decoded (`+` is a plus in a path).
fn decode_segment(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Why a request has no endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteError {
    NotFound,
    /// The path is an endpoint's, the method is not.
    MethodNotAllowed,
}

macro_rules! endpoints {
    ($(
        $(#[doc = $doc:literal])+
        $name:ident { $($param:ident),* } $(? $query:ty)?
            = $method:ident $pattern:literal, $access:ident, $body:ty => $answer:ty;
    )*) => {
        $(
            $(#[doc = $doc])+
            #[derive(Debug, Clone, PartialEq, Eq)]
            pub struct $name {
                $(pub $param: String,)*
                $(pub query: $query,)?
            }

            impl Endpoint for $name {
                type Body = $body;
                type Answer = $answer;
                const INFO: EndpointInfo = EndpointInfo {
                    name: stringify!($name),
                    method: stringify!($method),
                    pattern: $pattern,
                    access: Access::$access,
                    summary: concat!($($doc),+),
                };
                fn path(&self) -> String {
                    let path = fill($pattern, &[$((stringify!($param), self.$param.as_str())),*]);
                    $(return with_query(path, &self.query as &$query);)?
                    #[allow(unreachable_code)]
                    path
                }
            }
        )*

        /// Every endpoint.
        pub const ENDPOINTS: &[EndpointInfo] = &[$($name::INFO),*];

        /// The endpoint a request is for, with its path's parameters (its
        /// query, where it has one, is the handler's to read).
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Route {
            $($name { $($param: String),* },)*
        }

        impl Route {
            pub fn parse(method: &str, path: &str) -> Result<Route, RouteError> {
                let mut path_known = false;
                $(
                    if let Some(values) = capture($pattern, path) {
                        path_known = true;
                        if method == stringify!($method) {
                            #[allow(unused_mut, unused_variables)]
                            let mut values = values.into_iter();
                            return Ok(Route::$name {
                                $($param: values.next().unwrap_or_default()),*
                            });
                        }
                    }
                )*
                Err(match path_known {
                    true => RouteError::MethodNotAllowed,
                    false => RouteError::NotFound,
                })
            }

            /// The endpoint's documentation.
            pub fn info(&self) -> EndpointInfo {
                match self {
                    $(Route::$name { .. } => $name::INFO,)*
                }
            }
        }
    };
}

endpoints! {
    /// Who the daemon is and who is asking.
    GetStatus {} = GET "/v1/status", Anyone, () => Status;
    /// The caller as the daemon sees them: uid, groups, MFA, grants.
    GetWhoami {} = GET "/v1/whoami", Anyone, () => Whoami;
    /// The profiles the caller may see.
    ListProfiles {} = GET "/v1/profiles", Anyone, () => ProfileList;
    /// Adds a profile once its credential has logged in.
    AddProfileCall {} = POST "/v1/profiles", Admin, AddProfile => ProfileInfo;
    /// One profile (never its secret).
    ShowProfile { name } = GET "/v1/profiles/{name}", View, () => ProfileInfo;
    /// Changes a profile; the result logs in before it is stored.
    UpdateProfileCall { name } = PATCH "/v1/profiles/{name}", Manage, UpdateProfile => ProfileInfo;
    /// Removes a profile, its secret, grants and actions.
    RemoveProfile { name } = DELETE "/v1/profiles/{name}", Admin, () => ();
    /// The profile's key as an authorized_keys line.
    ShowPublicKey { name } = GET "/v1/profiles/{name}/public-key", View, () => PublicKey;
    /// A new key made inside the daemon, installed on the server.
    RotateKey { name } = POST "/v1/profiles/{name}/rotate", Manage, RotateRequest => RotateResult;
    /// Runs a command; the connection becomes a framed stream.
    Exec { name } = POST "/v1/profiles/{name}/exec", Exec, ExecRequest => Stream;
    /// Opens a terminal session; the connection becomes a framed stream.
    Shell { name } = POST "/v1/profiles/{name}/shell", Shell, ShellRequest => Stream;
    /// Runs a named action; the connection becomes a framed stream.
    RunAction { name } = POST "/v1/profiles/{name}/run", Run, RunRequest => Stream;
    /// The profile's named actions.
    ListActions { name } = GET "/v1/profiles/{name}/actions", View, () => Vec<Action>;
    /// Defines a new action.
    AddAction { name } = POST "/v1/profiles/{name}/actions", Admin, Action => Action;
    /// Redefines an action.
    SetAction { name } = PUT "/v1/profiles/{name}/actions", Admin, Action => ActionChange;
    /// Removes an action.
    RemoveAction { name, action } = DELETE "/v1/profiles/{name}/actions/{action}", Manage, () => ();
    /// A remote file's bytes.
    DownloadFile { name } ? FileQuery = GET "/v1/profiles/{name}/files", SftpRead, () => Download;
    /// Writes a remote file whole from the body.
    UploadFile { name } ? FileQuery = PUT "/v1/profiles/{name}/files", SftpWrite, Upload => Uploaded;
    /// Writes a remote file whole from a local file the caller hands over
    /// on the upgraded connection ([`crate::files::HANDOVER_PROTOCOL`]).
    UploadHandover { name } ? FileQuery = POST "/v1/profiles/{name}/files/handover", SftpWrite, () => Handover;
    /// Writes a remote file into a local file the caller created and hands
    /// over ([`crate::files::FetchEvent`]).
    DownloadHandover { name } ? FileQuery = POST "/v1/profiles/{name}/files/fetch", SftpRead, () => Handover;
    /// Writes many remote files from local files the caller hands over on
    /// the upgraded connection ([`crate::files::BATCH_PROTOCOL`]).
    UploadBatch { name } = POST "/v1/profiles/{name}/files/batch/upload", SftpWrite, () => Handover;
    /// Writes many remote files into local files the caller hands over
    /// ([`crate::files::BATCH_PROTOCOL`]).
    DownloadBatch { name } = POST "/v1/profiles/{name}/files/batch/download", SftpRead, () => Handover;
    /// One file operation (ls, stat, mkdir, rm, mv, chmod, ln -s, ...).
    FileOperation { name } = POST "/v1/profiles/{name}/sftp", Sftp, SftpRequest => SftpResponse;
    /// A TCP connection made by the profile's server, bridged to the
    /// caller's ([`crate::tunnel`]).
    OpenTunnel { name } = POST "/v1/profiles/{name}/tunnel", Forward, TunnelRequest => Handover;
    /// Copies a file from one profile's server to another's.
    CopyFile {} = POST "/v1/copy", Copy, CopyRequest => Uploaded;
    /// The live connections the caller may see.
    ListSessions {} = GET "/v1/sessions", Anyone, () => SessionList;
    /// Closes a profile's live connections.
    CloseSessions { name } = DELETE "/v1/sessions/{name}", Manage, () => SessionsClosed;
    /// The host key a server shows, for a person to check.
    ProbeHost {} = POST "/v1/hostkeys/probe", Admin, ProbeHostKey => HostKeyInfo;
    /// The grants the caller may see (one profile's with `profile=`).
    ListGrants {} ? GrantFilter = GET "/v1/grants", Anyone, () => Vec<Grant>;
    /// Adds a grant.
    AddGrant {} = POST "/v1/grants", Manage, GrantRequest => Grant;
    /// Changes a grant.
    SetGrant {} = PUT "/v1/grants", Manage, GrantRequest => GrantChange;
    /// Removes a grant (`user=` or `group=`).
    RemoveGrant { name } ? GrantSubject = DELETE "/v1/grants/{name}", Manage, () => ();
    /// Wipes the master key from memory and closes every connection.
    Seal {} = POST "/v1/seal", Admin, () => ();
    /// Gives a sealed daemon its master key.
    Unseal {} = POST "/v1/unseal", Admin, UnsealRequest => UnsealResult;
    /// Wraps the master key with a new passphrase.
    ChangePassphrase {} = POST "/v1/passphrase", Admin, PassphraseChange => ();
    /// Re-seals the store under a new master key.
    Rekey {} = POST "/v1/rekey", Admin, RekeyRequest => RekeyResult;
    /// One sealed snapshot of the store.
    Backup {} = GET "/v1/backup", Admin, () => Binary;
    /// Audit events the caller may see.
    ListAudit {} ? AuditQuery = GET "/v1/audit", Anyone, () => Vec<AuditEvent>;
    /// Checks the audit trail's chain.
    VerifyAudit {} = GET "/v1/audit/verify", Admin, () => AuditVerify;
    /// The HMAC the trail holds for a sensitive value.
    AuditHmac {} = POST "/v1/audit/hmac", Admin, HmacRequest => HmacAnswer;
    /// Starts a TOTP enrolment for the caller.
    MfaEnroll {} = POST "/v1/mfa/enroll", Anyone, Option<EnrollRequest> => EnrollStarted;
    /// Confirms an enrolment with a first code.
    MfaConfirm {} = POST "/v1/mfa/confirm", Anyone, CodeRequest => EnrollConfirmed;
    /// Opens an MFA session for the caller's login session.
    MfaLogin {} = POST "/v1/mfa/login", Anyone, CodeRequest => MfaStatus;
    /// Ends the caller's MFA session.
    MfaLogout {} = POST "/v1/mfa/logout", Anyone, () => MfaStatus;
    /// Serves an ssh-agent socket the caller bound, handed over on the
    /// upgraded connection ([`crate::agent`]).
    StartAgent {} = POST "/v1/agent", Anyone, AgentRequest => Handover;
    /// The caller's ssh-agent sockets tetherd serves.
    ListAgents {} = GET "/v1/agent", Anyone, () => AgentSockets;
    /// Stops serving the caller's ssh-agent sockets.
    StopAgent {} = DELETE "/v1/agent", Anyone, () => AgentSockets;
    /// The caller's MFA state.
    MfaStatusCall {} = GET "/v1/mfa/status", Anyone, () => MfaStatus;
    /// A one-time enrolment code for a user.
    MfaInvite {} = POST "/v1/mfa/invite", Admin, InviteRequest => Invite;
    /// Clears a user's lockout, or removes their enrolment.
    MfaReset {} = POST "/v1/mfa/reset", Admin, ResetRequest => ();
}

/// `GET /v1/grants` of one profile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrantFilter {
    pub profile: Option<String>,
}

impl Query for GrantFilter {
    fn encode(&self) -> String {
        match &self.profile {
            Some(profile) => format!("profile={}", crate::files::encode_query_value(profile)),
            None => String::new(),
        }
    }
}

/// Whose grant `DELETE /v1/grants/{name}` removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantSubject {
    /// A user name or uid.
    User(String),
    /// A group name or gid.
    Group(String),
}

impl Query for GrantSubject {
    fn encode(&self) -> String {
        let (key, value) = match self {
            GrantSubject::User(user) => ("user", user),
            GrantSubject::Group(group) => ("group", group),
        };
        format!("{key}={}", crate::files::encode_query_value(value))
    }
}

/// The endpoint list as a Markdown table (the README's, kept current by
/// `completions/update.sh` and checked by a test).
pub fn markdown_table() -> String {
    let mut out = String::from("| method | path | who may | what |\n|---|---|---|---|\n");
    for info in ENDPOINTS {
        let what = info.summary.trim().trim_end_matches('.');
        out.push_str(&format!(
            "| {} | `{}` | {} | {what} |\n",
            info.method,
            info.pattern,
            info.access.as_str()
        ));
    }
    out
}

/// Sample parameters that fill every pattern, for tests and the docs.
pub fn sample_path(info: &EndpointInfo) -> String {
    fill(info.pattern, &[("name", "web1"), ("action", "hello")])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_endpoint_routes_to_itself() {
        for info in ENDPOINTS {
            let route = Route::parse(info.method, &sample_path(info)).unwrap();
            assert_eq!(route.info(), *info, "{} {}", info.method, info.pattern);
        }
        let mut seen = std::collections::HashSet::new();
        for info in ENDPOINTS {
            assert!(
                seen.insert((info.method, info.pattern)),
                "{} twice",
                info.pattern
            );
        }
    }

    #[test]
    fn paths_carry_their_parameters_encoded() {
        let remove = RemoveAction {
            name: "web1".into(),
            action: "a b/c".into(),
        };
        assert_eq!(remove.path(), "/v1/profiles/web1/actions/a%20b%2Fc");
        assert_eq!(
            Route::parse("DELETE", &remove.path()),
            Ok(Route::RemoveAction {
                name: "web1".into(),
                action: "a b/c".into()
            })
        );
        assert_eq!(
            Route::parse("GET", "/v1/nothing"),
            Err(RouteError::NotFound)
        );
        assert_eq!(
            Route::parse("POST", "/v1/status"),
            Err(RouteError::MethodNotAllowed)
        );
        assert_eq!(
            Route::parse("GET", "/v1/profiles//exec"),
            Err(RouteError::NotFound)
        );
        let grants = ListGrants {
            query: GrantFilter {
                profile: Some("db 1".into()),
            },
        };
        assert_eq!(grants.path(), "/v1/grants?profile=db%201");
        assert_eq!(
            ListGrants {
                query: GrantFilter::default()
            }
            .path(),
            "/v1/grants"
        );
    }
}
