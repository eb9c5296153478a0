//! A count of what each uid holds open (connections to the socket, to its
//! agent sockets), bounded per uid; a slot is given back when its [`Slot`]
//! is dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct PerUid(Arc<Mutex<HashMap<u32, usize>>>);

impl PerUid {
    /// A slot for `uid`, or `None` when it holds `limit` already.
    pub fn admit(&self, uid: u32, limit: usize) -> Option<Slot> {
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts.entry(uid).or_insert(0);
        if *count >= limit {
            return None;
        }
        *count += 1;
        Some(Slot {
            counts: self.0.clone(),
            uid,
        })
    }
}

/// One admitted thing of a uid's; counted out when dropped.
pub struct Slot {
    counts: Arc<Mutex<HashMap<u32, usize>>>,
    uid: u32,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = counts.get_mut(&self.uid) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.uid);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_counted_per_uid_and_given_back() {
        let counts = PerUid::default();
        let a = counts.admit(1000, 2).unwrap();
        let _b = counts.admit(1000, 2).unwrap();
        assert!(counts.admit(1000, 2).is_none());
        assert!(counts.admit(1001, 2).is_some());
        drop(a);
        assert!(counts.admit(1000, 2).is_some());
    }
}
