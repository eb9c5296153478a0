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

/// `POST /v1/audit/hmac`. No `Debug`: it holds the value.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HmacRequest {
    pub value: crate::secret::Secret,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HmacAnswer {
    /// `hmac-sha256:HEX`, as the trail holds it.
    pub hmac: String,
}

/// The filters of `GET /v1/audit`, built by the CLI and read by the daemon
/// from the same code: `since`, `until` (Unix seconds, inclusive), `user`
/// (a name or uid), `profile`, `op` (a prefix), `after` (a sequence
/// number: the events after it, oldest first) and `limit`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub since: Option<u64>,
    pub until: Option<u64>,
    pub user: Option<String>,
    pub profile: Option<String>,
    pub op: Option<String>,
    pub after: Option<u64>,
    pub limit: Option<u64>,
}

impl crate::endpoint::Query for AuditQuery {
    fn encode(&self) -> String {
        use crate::files::encode_query_value as encode;
        let mut parts = Vec::new();
        let numbers = [
            ("since", self.since),
            ("until", self.until),
            ("after", self.after),
            ("limit", self.limit),
        ];
        for (key, value) in numbers {
            if let Some(value) = value {
                parts.push(format!("{key}={value}"));
            }
        }
        let texts = [
            ("user", &self.user),
            ("profile", &self.profile),
            ("op", &self.op),
        ];
        for (key, value) in texts {
            if let Some(value) = value {
                parts.push(format!("{key}={}", encode(value)));
            }
        }
        parts.join("&")
    }
}

impl AuditQuery {
    /// Reads a query string; the error names the key that is wrong.
    pub fn decode(query: &str) -> Result<AuditQuery, String> {
        use crate::files::query_value;
        let number = |key: &str| -> Result<Option<u64>, String> {
            query_value(query, key)?
                .map(|v| v.parse().map_err(|_| format!("{key} is not a number")))
                .transpose()
        };
        Ok(AuditQuery {
            since: number("since")?,
            until: number("until")?,
            user: query_value(query, "user")?,
            profile: query_value(query, "profile")?,
            op: query_value(query, "op")?,
            after: number("after")?,
            limit: number("limit")?,
        })
    }
}

#[cfg(test)]
mod query_tests {
    use super::*;
    use crate::endpoint::Query;

    #[test]
    fn a_query_reads_back_as_it_was_built() {
        let query = AuditQuery {
            since: Some(1),
            until: Some(2),
            user: Some("alice smith".into()),
            profile: Some("db1".into()),
            op: Some("exec&x".into()),
            after: Some(9),
            limit: None,
        };
        assert_eq!(AuditQuery::decode(&query.encode()).unwrap(), query);
        assert_eq!(AuditQuery::decode("").unwrap(), AuditQuery::default());
        assert!(AuditQuery::decode("since=x").unwrap_err().contains("since"));
    }
}
