//! `tether audit verify`: the whole chain, its prune anchors, and the head.

use tether_api::audit::{AuditEvent, AuditVerify, Pruned};

use super::{Audit, HEAD_REPLACED, PRUNE, mac_of};

/// The ranges a prune event records: its own, and those it carries forward
/// from prune events it removed.
pub(super) fn ranges_of(event: &AuditEvent) -> Vec<Pruned> {
    let mut out: Vec<Pruned> = event
        .details
        .get("history")
        .and_then(|h| serde_json::from_value(h.clone()).ok())
        .unwrap_or_default();
    let number = |key: &str| event.details.get(key).and_then(|v| v.as_u64());
    if let (Some(through_seq), Some(removed)) = (number("through_seq"), number("removed")) {
        out.push(Pruned {
            from_seq: number("from_seq")
                .unwrap_or_else(|| through_seq.saturating_sub(removed.saturating_sub(1))),
            through_seq,
            removed,
            time_ms: event.time_ms,
            reason: event
                .details
                .get("reason")
                .and_then(|r| r.as_str())
                .unwrap_or("retention")
                .to_owned(),
        });
    }
    out
}

impl Audit {
    /// Checks the whole chain, and the head; a damaged store (events
    /// missing from the range its manifest names) is an error instead.
    pub async fn verify(
        &self,
        store: &crate::store::Store,
    ) -> Result<AuditVerify, crate::store::StoreError> {
        if let Some(report) = store.damage() {
            return Err(crate::store::StoreError::Damaged(report.summary()));
        }
        Ok(self.verify_chain(store).await)
    }

    async fn verify_chain(&self, store: &crate::store::Store) -> AuditVerify {
        let head = self.head.lock().await.clone();
        let mut events = 0u64;
        let bad = |seq: u64, events: u64, problem: String| AuditVerify {
            ok: false,
            events,
            pruned: Vec::new(),
            first_bad: Some(seq),
            problem: Some(problem),
        };
        let mut all = Vec::new();
        let mut invalid = None;
        let scanned = store.audit_scan(0, false, |seq, value| {
            match serde_json::from_slice::<AuditEvent>(value) {
                Ok(event) if event.seq == seq => {
                    all.push(event);
                    true
                }
                _ => {
                    invalid = Some(seq);
                    false
                }
            }
        });
        if let Err(error) = scanned {
            return bad(0, events, format!("the trail cannot be read: {error}"));
        }
        if let Some(seq) = invalid {
            return bad(seq, events, format!("event {seq} is not a valid event"));
        }
        // Anchors announced by prune events: (last removed seq, its mac).
        let anchors: Vec<(u64, String)> = all
            .iter()
            .filter(|e| e.op == PRUNE)
            .filter_map(|e| {
                Some((
                    e.details.get("through_seq")?.as_u64()?,
                    e.details.get("anchor")?.as_str()?.to_owned(),
                ))
            })
            .collect();
        let mut last: Option<&AuditEvent> = None;
        for event in &all {
            if self
                .keys
                .get()
                .is_none_or(|keys| mac_of(&keys.chain, event) != event.mac)
            {
                return bad(
                    event.seq,
                    events,
                    format!("event {} was altered", event.seq),
                );
            }
            if event.op == HEAD_REPLACED {
                return bad(
                    event.seq,
                    events,
                    format!(
                        "at event {} tetherd found the audit head {}: events after event {} \
                         may have been removed from the end",
                        event.seq,
                        if event.result == "head_missing" {
                            "missing"
                        } else {
                            "altered"
                        },
                        event.seq.saturating_sub(1)
                    ),
                );
            }
            match last {
                None if event.seq == 0 => {
                    if !event.prev.is_empty() {
                        return bad(event.seq, events, "the first event links to nothing".into());
                    }
                }
                None => {
                    let pruned = anchors.iter().any(|(through, anchor)| {
                        *through + 1 == event.seq && *anchor == event.prev
                    });
                    if !pruned {
                        return bad(
                            event.seq,
                            events,
                            format!(
                                "events before {} were removed without a prune record",
                                event.seq
                            ),
                        );
                    }
                }
                Some(previous) => {
                    if event.seq != previous.seq + 1 {
                        return bad(
                            previous.seq + 1,
                            events,
                            format!("event {} is missing", previous.seq + 1),
                        );
                    }
                    if event.prev != previous.mac {
                        return bad(
                            event.seq,
                            events,
                            format!("event {} does not follow event {}", event.seq, previous.seq),
                        );
                    }
                }
            }
            last = Some(event);
            events += 1;
        }
        let (end_seq, end_mac) = last
            .map(|e| (e.seq + 1, e.mac.clone()))
            .unwrap_or((head.next_seq, head.last_mac.clone()));
        if head.next_seq != 0 && (end_seq != head.next_seq || end_mac != head.last_mac) {
            return bad(
                end_seq,
                events,
                format!(
                    "the trail ends at event {} but {} were written: events were removed from the end",
                    end_seq.saturating_sub(1),
                    head.next_seq
                ),
            );
        }
        let mut pruned: Vec<Pruned> = all
            .iter()
            .filter(|e| e.op == PRUNE)
            .flat_map(ranges_of)
            .collect();
        pruned.sort_by_key(|p| (p.from_seq, p.through_seq));
        pruned.dedup_by_key(|p| (p.from_seq, p.through_seq));
        AuditVerify {
            ok: true,
            events,
            pruned,
            first_bad: None,
            problem: None,
        }
    }
}
