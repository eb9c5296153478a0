//! The audit trail.
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | /v1/audit?since=&until=&uid=&profile=&op=&after=&limit= | `Vec<`[`AuditEvent`]`>` |
//! | GET | /v1/audit/verify | [`AuditVerify`] |
//!
//! `since`/`until` are Unix seconds, `op` a prefix (`sftp` matches every
//! SFTP event), `after` a sequence number (for following the trail).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One event. `mac` is an HMAC over the event (with `mac` empty) keyed from
/// the master key; `prev` is the previous event's `mac`, so an edited,
/// removed or reordered event breaks the chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub seq: u64,
    /// Unix milliseconds.
    pub time_ms: u64,
    pub uid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// The calling program, from /proc/PID/exe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    /// What happened: `exec.start`, `sftp.upload.end`, `grant.add`, ...
    pub op: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// `started`, `ok`, an error code, or `exit N`.
    pub result: String,
    /// What else the event says: command, path, bytes, sha256, ...
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, serde_json::Value>,
    pub prev: String,
    pub mac: String,
}

/// Events removed by retention: `from_seq` to `through_seq`, at `time_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pruned {
    pub from_seq: u64,
    pub through_seq: u64,
    pub removed: u64,
    pub time_ms: u64,
    /// `max_age_days`, `max_events`, or both.
    pub reason: String,
}

/// The answer of `audit verify`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditVerify {
    pub ok: bool,
    /// Events checked.
    pub events: u64,
    /// What retention removed, and when, as the chain itself records it
    /// (oldest first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pruned: Vec<Pruned>,
    /// The first event that fails, by sequence number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_bad: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}
