//! Refused requests, aggregated per uid so that nobody can flood the trail.
//!
//! A uid's first refusal in an interval is recorded at once, in full (its
//! path cut to [`MAX_PATH`] characters). Further refusals of that uid in the
//! same interval are only counted; when the interval ends, one
//! `request.refused` event with `count`, the codes seen and the first and
//! last time stands for all of them. A uid refused a thousand times a second
//! thus writes two events a minute, and the trail (and the disk under it)
//! stays for the events that matter.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::Event;
use crate::access::Caller;

/// Longest path kept in a refusal event.
pub const MAX_PATH: usize = 256;
/// Most profiles named in one summary.
const MAX_PROFILES: usize = 16;
/// Most uids tallied at once; beyond it, every tally is written out early.
const MAX_UIDS: usize = 4096;

/// One refused request, as the router saw it.
pub struct Refusal<'a> {
    pub caller: &'a Caller,
    pub method: &'a str,
    pub path: &'a str,
    pub code: &'a str,
    pub profile: Option<&'a str>,
}

/// What the caller does with a refusal.
pub enum Verdict {
    /// Record this event now.
    Record(Event),
    /// Counted into the uid's summary.
    Counted,
}

struct Tally {
    opened: Instant,
    caller: Caller,
    count: u64,
    codes: BTreeMap<String, u64>,
    profiles: BTreeSet<String>,
    first_ms: u64,
    last_ms: u64,
    last_path: String,
}

pub struct Refusals {
    interval: Duration,
    tallies: Mutex<HashMap<u32, Tally>>,
}

fn cut(path: &str) -> String {
    if path.len() <= MAX_PATH {
        return path.to_owned();
    }
    let mut end = MAX_PATH;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &path[..end])
}

fn now_ms() -> u64 {
    super::now_ms()
}

impl Refusals {
    pub fn new(interval: Duration) -> Refusals {
        Refusals {
            interval,
            tallies: Mutex::new(HashMap::new()),
        }
    }

    /// Decides whether `refusal` is recorded now or counted.
    pub fn admit(&self, refusal: &Refusal<'_>) -> Verdict {
        let Ok(mut tallies) = self.tallies.lock() else {
            return Verdict::Record(full_event(refusal));
        };
        let uid = refusal.caller.uid;
        match tallies.get_mut(&uid) {
            Some(tally) if tally.opened.elapsed() < self.interval => {
                tally.count += 1;
                *tally.codes.entry(refusal.code.to_owned()).or_insert(0) += 1;
                if let Some(profile) = refusal.profile {
                    if tally.profiles.len() < MAX_PROFILES {
                        tally.profiles.insert(profile.to_owned());
                    }
                }
                tally.last_ms = now_ms();
                if tally.first_ms == 0 {
                    tally.first_ms = tally.last_ms;
                }
                tally.last_path = cut(refusal.path);
                Verdict::Counted
            }
            _ => {
                // A new interval for this uid: the old tally (if any) is
                // written by the next sweep, this refusal now.
                if tallies.len() >= MAX_UIDS && !tallies.contains_key(&uid) {
                    return Verdict::Record(full_event(refusal));
                }
                let previous = tallies.insert(
                    uid,
                    Tally {
                        opened: Instant::now(),
                        caller: refusal.caller.clone(),
                        count: 0,
                        codes: BTreeMap::new(),
                        profiles: BTreeSet::new(),
                        first_ms: 0,
                        last_ms: 0,
                        last_path: String::new(),
                    },
                );
                let mut event = full_event(refusal);
                if let Some(summary) = previous.and_then(summary) {
                    // The last interval's count travels with this event.
                    event = event.detail("previous", summary);
                }
                Verdict::Record(event)
            }
        }
    }

    /// The summaries of every interval that has ended (all of them with
    /// `all`, at shutdown), to be recorded.
    pub fn sweep(&self, all: bool) -> Vec<Event> {
        let Ok(mut tallies) = self.tallies.lock() else {
            return Vec::new();
        };
        let over = all || tallies.len() >= MAX_UIDS;
        let ended: Vec<u32> = tallies
            .iter()
            .filter(|(_, t)| over || t.opened.elapsed() >= self.interval)
            .map(|(uid, _)| *uid)
            .collect();
        let mut out = Vec::new();
        for uid in ended {
            if let Some(tally) = tallies.remove(&uid) {
                let caller = tally.caller.clone();
                if let Some(summary) = summary(tally) {
                    let count = summary["count"].as_u64().unwrap_or(0);
                    let mut event = Event::new(&caller, "request.refused")
                        .result("aggregated")
                        .detail("count", count);
                    if let serde_json::Value::Object(map) = summary {
                        for (key, value) in map {
                            if key != "count" {
                                event = event.detail(&key, value);
                            }
                        }
                    }
                    out.push(event);
                }
            }
        }
        out
    }
}

/// A tally's summary, or `None` when nothing was counted in it.
fn summary(tally: Tally) -> Option<serde_json::Value> {
    if tally.count == 0 {
        return None;
    }
    Some(serde_json::json!({
        "count": tally.count,
        "codes": tally.codes,
        "profiles": tally.profiles,
        "first_ms": tally.first_ms,
        "last_ms": tally.last_ms,
        "last_path": tally.last_path,
    }))
}

fn full_event(refusal: &Refusal<'_>) -> Event {
    refusal.event()
}

impl Refusal<'_> {
    /// The whole refusal as one event (its path cut to [`MAX_PATH`]).
    pub fn event(&self) -> Event {
        let mut event = Event::new(self.caller, "request.refused")
            .result(self.code)
            .detail("method", self.method)
            .detail("path", cut(self.path));
        if let Some(profile) = self.profile {
            event = event.profile(profile);
        }
        event
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(uid: u32) -> Caller {
        Caller {
            uid,
            pid: None,
            exe: None,
            user: None,
            groups: vec![],
            admin: false,
        }
    }

    fn refuse(refusals: &Refusals, who: &Caller, path: &str) -> bool {
        matches!(
            refusals.admit(&Refusal {
                caller: who,
                method: "GET",
                path,
                code: "profile_not_found",
                profile: None,
            }),
            Verdict::Record(_)
        )
    }

    #[test]
    fn a_flood_is_one_event_and_one_summary() {
        let refusals = Refusals::new(Duration::from_secs(3600));
        let mallory = caller(1001);
        assert!(refuse(&refusals, &mallory, "/v1/profiles/x"));
        for _ in 0..10_000 {
            assert!(!refuse(&refusals, &mallory, "/v1/profiles/x"));
        }
        // Another uid is not held up by the first.
        assert!(refuse(&refusals, &caller(1002), "/v1/status"));
        assert!(
            refusals.sweep(false).is_empty(),
            "the interval is still open"
        );
        let events = refusals.sweep(true);
        assert_eq!(events.len(), 1, "1002 was refused once: nothing to sum up");
        assert_eq!(events[0].0.details["count"], 10_000);
        assert_eq!(events[0].0.uid, 1001);
    }

    #[test]
    fn long_paths_are_cut() {
        let refusals = Refusals::new(Duration::from_secs(3600));
        let path = format!("/v1/{}", "é".repeat(10_000));
        let Verdict::Record(event) = refusals.admit(&Refusal {
            caller: &caller(7),
            method: "GET",
            path: &path,
            code: "not_found",
            profile: None,
        }) else {
            panic!("the first refusal is recorded");
        };
        let kept = event.0.details["path"].as_str().unwrap();
        assert!(kept.len() <= MAX_PATH + 4, "{}", kept.len());
    }
}
