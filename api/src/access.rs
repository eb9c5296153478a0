//! Access: grants, named actions, MFA and `whoami`.
//!
//! | method | path | body | answer |
//! |---|---|---|---|
//! | GET | /v1/grants[?profile=P] | | `Vec<`[`Grant`]`>` |
//! | POST | /v1/grants | [`GrantRequest`] | 201 [`Grant`] (`grant_exists` if there is one) |
//! | PUT | /v1/grants | [`GrantRequest`] | [`GrantChange`] (`grant_not_found` if there is none) |
//! | DELETE | /v1/grants/{profile}?user=WHO or ?group=WHO | | 204 |
//! | GET | /v1/profiles/{name}/actions | | `Vec<`[`Action`]`>` |
//! | POST | /v1/profiles/{name}/actions | [`Action`] | 201 [`Action`] (`action_exists` if there is one) |
//! | PUT | /v1/profiles/{name}/actions | [`Action`] | [`ActionChange`] (`action_not_found` if there is none) |
//! | DELETE | /v1/profiles/{name}/actions/{action} | | 204 |
//! | POST | /v1/profiles/{name}/run | [`RunRequest`] | 101, then [`crate::frame`] |
//! | POST | /v1/mfa/enroll | [`EnrollRequest`] (or none) | [`EnrollStarted`] |
//! | POST | /v1/mfa/invite | [`InviteRequest`] | [`Invite`] |
//! | POST | /v1/mfa/confirm | [`CodeRequest`] | [`EnrollConfirmed`] |
//! | POST | /v1/mfa/login | [`CodeRequest`] | [`MfaStatus`] |
//! | POST | /v1/mfa/logout | | [`MfaStatus`] |
//! | GET | /v1/mfa/status | | [`MfaStatus`] |
//! | POST | /v1/mfa/reset | [`ResetRequest`] | 204 |
//! | GET | /v1/whoami | | [`Whoami`] |

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// What a grant lets its holder do with a profile; each role includes the
/// ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// See the profile (name, host, user, host key), its actions and sessions.
    Viewer,
    /// Use the profile within the grant's policy.
    Operator,
    /// Also change the profile, its actions and its grants.
    Owner,
}

/// Which commands a grant may run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecPolicy {
    /// No commands.
    None,
    /// Any command, and every named action.
    Any,
    /// Only these named actions.
    Actions(Vec<String>),
}

/// What a grant may do over SFTP (and `tether cp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SftpAccess {
    None,
    Read,
    Write,
}

/// Who a grant is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "id")]
pub enum Subject {
    User(u32),
    Group(u32),
}

/// `tether grant add`: user or group by name or number; the daemon resolves
/// it in the user database.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    pub profile: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub role: Role,
    #[serde(default)]
    pub shell: bool,
    #[serde(default = "no_exec")]
    pub exec: ExecPolicy,
    #[serde(default = "no_sftp")]
    pub sftp: SftpAccess,
    /// Absolute path prefixes SFTP is limited to; empty means anywhere.
    #[serde(default)]
    pub paths: Vec<String>,
    /// For cron and services: no MFA, named actions only.
    #[serde(default)]
    pub unattended: bool,
    /// The agent may sign for sessions forwarded through the first server
    /// (`ssh -A`); needs `shell`.
    #[serde(default)]
    pub agent_forwarding: bool,
    /// Where `tether forward` and `tether proxy` may connect through the
    /// profile's server: `HOST:PORT`, either part `*` (only on an owner's
    /// grant).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forward: Vec<String>,
}

fn no_exec() -> ExecPolicy {
    ExecPolicy::None
}

fn no_sftp() -> SftpAccess {
    SftpAccess::None
}

/// A grant as stored, with the subject's name where the user database has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub profile: String,
    pub subject: Subject,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub role: Role,
    pub shell: bool,
    pub exec: ExecPolicy,
    pub sftp: SftpAccess,
    pub paths: Vec<String>,
    pub unattended: bool,
    #[serde(default)]
    pub agent_forwarding: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forward: Vec<String>,
}

/// A named action: `tether run PROFILE NAME key=value ...` runs `argv` with
/// each `{key:pattern}` replaced by the checked value, every word quoted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Action {
    pub name: String,
    pub argv: Vec<String>,
}

/// `tether run`: the action and its `key=value` words, exactly as typed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    pub action: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
}

/// The start of an enrolment: shown once, to the enrolling uid only, and not
/// in effect until confirmed with a code.
#[derive(Serialize, Deserialize)]
pub struct EnrollStarted {
    /// `otpauth://totp/...`, for an authenticator app or a QR code.
    pub uri: Secret,
    /// The same secret in base32, for typing in by hand.
    pub secret: Secret,
}

/// Starts an enrolment; where enrolment is by invite, with the one-time
/// code root issued (`tether mfa invite USER`).
#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invite: Option<Secret>,
}

/// Root: let `user` enrol once, within `ttl_secs` (default a day).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InviteRequest {
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_secs: Option<u64>,
}

/// A one-time enrolment code, shown once to root.
#[derive(Serialize, Deserialize)]
pub struct Invite {
    pub user: String,
    pub uid: u32,
    pub code: Secret,
    /// Unix seconds after which the code is void.
    pub expires_at: u64,
}

/// What `grant set` changed: the grant before and after.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GrantChange {
    pub before: Grant,
    pub after: Grant,
}

/// What `action set` changed: the template before and after.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActionChange {
    pub before: Action,
    pub after: Action,
}

/// A TOTP or backup code.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    pub code: Secret,
}

/// Ten single-use backup codes, shown once.
#[derive(Serialize, Deserialize)]
pub struct EnrollConfirmed {
    pub backup_codes: Vec<Secret>,
}

/// The caller's MFA state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MfaStatus {
    pub enrolled: bool,
    pub backup_codes_left: usize,
    /// The MFA session of this login session, if one is open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<MfaSession>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MfaSession {
    /// Seconds until the session ends, whatever its use.
    pub expires_in_secs: u64,
    /// Seconds of disuse after which it ends.
    pub idle_expires_in_secs: u64,
}

/// `tether mfa reset USER` (root): clears the user's lockout; with
/// `unenroll`, removes their TOTP and backup codes too.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    pub user: String,
    #[serde(default)]
    pub unenroll: bool,
}

/// `tether whoami`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Whoami {
    pub uid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    pub groups: Vec<String>,
    /// Root (or the owner of a `--user` daemon): administers everything.
    pub admin: bool,
    pub mfa: MfaStatus,
    /// The grants that apply to the caller, directly or through a group.
    pub grants: Vec<Grant>,
}
