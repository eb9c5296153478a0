//! What the store must contain, and the proof that it does.
//!
//! Sealing each record shows that a record was not edited, but not that a
//! record is missing: a database file cut short, or rolled back to an
//! earlier commit, is a smaller store whose every record still opens. So
//! the store keeps a **manifest** in `meta`, written in the same transaction
//! as every change: a generation number, the key of every record in every
//! record table, and the range of the audit trail, authenticated with the
//! store's integrity key. And after each commit the generation goes to a
//! **witness** file beside the database (`store.generation`), so that a
//! database rolled back as a whole (manifest and all) is found too: its
//! generation is behind the witness.
//!
//! At open the content is compared with the manifest and the manifest with
//! the witness. A store that does not match is **damaged**: tetherd starts
//! (so that `tether status` can say what is wrong) but serves none of its
//! records. `tetherd check` reports the same offline; `tetherd check
//! --accept` takes the store as it is (and puts the loss on record).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::envelope::hex;

/// The witness file's name in the state directory.
pub const WITNESS: &str = "store.generation";

/// The keys a store keeps for itself (sealed in `meta` under the master
/// key): they outlive a seal, so that the audit trail and the manifest can
/// still be written by a sealed daemon, and a rekey, which re-seals them,
/// does not change them.
#[derive(Clone, Serialize, Deserialize, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
pub struct StoreKeys {
    /// Authenticates the manifest and the witness.
    pub integrity: [u8; 32],
    /// Keys the audit trail's hash chain.
    pub audit_chain: [u8; 32],
    /// Keys the HMACs that stand in the trail for sensitive values.
    pub audit_values: [u8; 32],
}

impl StoreKeys {
    pub fn generate() -> Result<StoreKeys, getrandom::Error> {
        let mut keys = StoreKeys {
            integrity: [0; 32],
            audit_chain: [0; 32],
            audit_values: [0; 32],
        };
        getrandom::fill(&mut keys.integrity)?;
        getrandom::fill(&mut keys.audit_chain)?;
        getrandom::fill(&mut keys.audit_values)?;
        Ok(keys)
    }
}

fn mac(key: &[u8; 32], label: &[u8], data: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(label);
    mac.update(data);
    hex(&mac.finalize().into_bytes())
}

/// What the store must contain.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// One more with every committed change.
    pub generation: u64,
    /// The key of every record, by table.
    pub tables: BTreeMap<String, BTreeSet<String>>,
    /// The audit trail holds `audit_count` events, the first numbered
    /// `audit_first`, the last `audit_next - 1` (a gap is only ever one
    /// that `tetherd check --accept` took as it was).
    pub audit_first: u64,
    pub audit_next: u64,
    #[serde(default)]
    pub audit_count: u64,
    #[serde(default)]
    pub mac: String,
}

impl Manifest {
    pub fn added(&mut self, table: &str, key: &str) {
        self.tables
            .entry(table.to_owned())
            .or_default()
            .insert(key.to_owned());
    }

    pub fn removed(&mut self, table: &str, key: &str) {
        if let Some(keys) = self.tables.get_mut(table) {
            keys.remove(key);
        }
    }

    pub fn count(&self, table: &str) -> usize {
        self.tables.get(table).map_or(0, BTreeSet::len)
    }

    fn expected_mac(&self, key: &[u8; 32]) -> String {
        let mut unsigned = self.clone();
        unsigned.mac = String::new();
        let bytes = serde_json::to_vec(&unsigned).unwrap_or_default();
        mac(key, b"tether/v1/manifest/", &bytes)
    }

    /// The manifest as stored: JSON with its MAC.
    pub fn signed(&self, key: &[u8; 32]) -> Vec<u8> {
        let mut signed = self.clone();
        signed.mac = self.expected_mac(key);
        serde_json::to_vec(&signed).unwrap_or_default()
    }

    /// A stored manifest, if it parses and its MAC holds.
    pub fn verified(bytes: &[u8], key: &[u8; 32]) -> Option<Manifest> {
        let manifest: Manifest = serde_json::from_slice(bytes).ok()?;
        (manifest.mac == manifest.expected_mac(key)).then_some(manifest)
    }
}

/// The generation as the witness file has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Witnessed {
    Missing,
    /// Present but not authenticated by this store's key.
    Invalid,
    At(u64),
}

/// Reads the witness in `state_dir`.
pub fn read_witness(state_dir: &Path, key: &[u8; 32]) -> Witnessed {
    let Ok(text) = std::fs::read_to_string(state_dir.join(WITNESS)) else {
        return Witnessed::Missing;
    };
    let mut words = text.split_whitespace();
    let (Some(generation), Some(tag)) = (words.next(), words.next()) else {
        return Witnessed::Invalid;
    };
    match generation.parse::<u64>() {
        Ok(n) if mac(key, b"tether/v1/witness/", &n.to_be_bytes()) == tag => Witnessed::At(n),
        _ => Witnessed::Invalid,
    }
}

/// Writes the witness: one line, the generation padded to a u64's widest so
/// that every line is as long, written over the last at the file's start
/// (no new file, no rename: it is rewritten at every commit, and a profile
/// of a tree copy had the create and rename as a tenth of tetherd's time).
/// One write of under a hundred bytes at offset 0 lands whole or not at
/// all, and never leaves a longer old line's tail (no line is longer).
/// Not synced: after a crash it may be behind the database, which is
/// allowed; it is written only after the database's commit is durable, so
/// it is never ahead.
pub fn write_witness(state_dir: &Path, generation: u64, key: &[u8; 32]) -> std::io::Result<()> {
    use std::os::unix::fs::{FileExt, OpenOptionsExt};
    let tag = mac(key, b"tether/v1/witness/", &generation.to_be_bytes());
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(state_dir.join(WITNESS))?;
    file.write_all_at(format!("{generation:020} {tag}\n").as_bytes(), 0)
}

/// What the store holds, as read from the database.
#[derive(Debug, Default)]
pub struct Content {
    pub tables: BTreeMap<String, BTreeSet<String>>,
    pub audit_count: u64,
    pub audit_first: Option<u64>,
    pub audit_last: Option<u64>,
}

/// How a store compares with its manifest and its witness.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub generation: u64,
    /// Records the manifest names that are not there, as `table/key`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
    /// Records that are there but that the manifest does not name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unexpected: Vec<String>,
    /// Audit events missing from the range the manifest names.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub audit_missing: u64,
    /// The witness's generation, where the database is behind it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub witness: Option<u64>,
    /// A problem that is not a count: the manifest or the witness itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Report {
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty()
            && self.unexpected.is_empty()
            && self.audit_missing == 0
            && self.witness.is_none()
            && self.problem.is_none()
    }

    /// One line for logs and errors: what is wrong, the first few names.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if let Some(problem) = &self.problem {
            parts.push(problem.clone());
        }
        if let Some(witness) = self.witness {
            parts.push(format!(
                "the database is at generation {} but was at {witness}: {} committed \
                 change(s) are gone (the file was cut, damaged or replaced by an older copy)",
                self.generation,
                witness.saturating_sub(self.generation)
            ));
        }
        let names = |list: &[String]| {
            let shown: Vec<&str> = list.iter().take(5).map(String::as_str).collect();
            let more = list.len().saturating_sub(shown.len());
            if more > 0 {
                format!("{} and {more} more", shown.join(", "))
            } else {
                shown.join(", ")
            }
        };
        if !self.missing.is_empty() {
            parts.push(format!(
                "{} record(s) missing: {}",
                self.missing.len(),
                names(&self.missing)
            ));
        }
        if !self.unexpected.is_empty() {
            parts.push(format!(
                "{} record(s) not in the manifest: {}",
                self.unexpected.len(),
                names(&self.unexpected)
            ));
        }
        if self.audit_missing > 0 {
            parts.push(format!("{} audit event(s) missing", self.audit_missing));
        }
        parts.join("; ")
    }
}

/// Compares `content` with the stored manifest and the witness.
pub fn check(
    manifest_bytes: Option<&[u8]>,
    content: &Content,
    witness: Witnessed,
    key: &[u8; 32],
) -> Report {
    let Some(bytes) = manifest_bytes else {
        return Report {
            problem: Some("the store has no manifest".into()),
            ..Report::default()
        };
    };
    let Some(manifest) = Manifest::verified(bytes, key) else {
        return Report {
            problem: Some("the manifest fails its integrity check".into()),
            ..Report::default()
        };
    };
    let mut report = Report {
        generation: manifest.generation,
        ..Report::default()
    };
    let empty = BTreeSet::new();
    let names: BTreeSet<&String> = manifest
        .tables
        .keys()
        .chain(content.tables.keys())
        .collect();
    for table in names {
        let expected = manifest.tables.get(table).unwrap_or(&empty);
        let present = content.tables.get(table).unwrap_or(&empty);
        report.missing.extend(
            expected
                .difference(present)
                .map(|key| format!("{table}/{key}")),
        );
        report.unexpected.extend(
            present
                .difference(expected)
                .map(|key| format!("{table}/{key}")),
        );
    }
    let expected_events = manifest.audit_count;
    let in_range = content.audit_count == expected_events
        && (expected_events == 0
            || (content.audit_first == Some(manifest.audit_first)
                && content.audit_last == Some(manifest.audit_next.saturating_sub(1))));
    if !in_range {
        report.audit_missing = expected_events.saturating_sub(content.audit_count).max(1);
    }
    match witness {
        Witnessed::At(at) if at > manifest.generation => report.witness = Some(at),
        Witnessed::At(_) => {}
        Witnessed::Missing if manifest.generation > 0 => {
            report.problem = Some(format!(
                "the witness file {WITNESS} is missing beside a store at generation {}",
                manifest.generation
            ));
        }
        Witnessed::Missing => {}
        Witnessed::Invalid => {
            report.problem = Some(format!(
                "the witness file {WITNESS} fails its integrity check"
            ));
        }
    }
    report
}

/// A manifest describing `content` as it is (for a new, migrated,
/// restored or accepted store).
pub fn describe(content: &Content, generation: u64) -> Manifest {
    Manifest {
        generation,
        tables: content.tables.clone(),
        audit_first: content.audit_first.unwrap_or(0),
        audit_next: content.audit_last.map_or(0, |last| last + 1),
        audit_count: content.audit_count,
        mac: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(profiles: &[&str], audit: std::ops::Range<u64>) -> Content {
        let mut tables = BTreeMap::new();
        tables.insert(
            "profiles".to_owned(),
            profiles.iter().map(|p| p.to_string()).collect(),
        );
        Content {
            tables,
            audit_count: audit.end - audit.start,
            audit_first: (!audit.is_empty()).then_some(audit.start),
            audit_last: (!audit.is_empty()).then(|| audit.end - 1),
        }
    }

    #[test]
    fn a_smaller_store_names_what_is_missing() {
        let key = [7u8; 32];
        let full = content(&["web1", "web2", "db1"], 0..10);
        let manifest = describe(&full, 12).signed(&key);
        let clean = check(Some(&manifest), &full, Witnessed::At(12), &key);
        assert!(clean.is_clean(), "{clean:?}");

        let smaller = content(&["web1"], 0..7);
        let report = check(Some(&manifest), &smaller, Witnessed::At(12), &key);
        assert_eq!(report.missing, ["profiles/db1", "profiles/web2"]);
        assert_eq!(report.audit_missing, 3);
        assert!(
            report
                .summary()
                .contains("2 record(s) missing: profiles/db1, profiles/web2")
        );
    }

    #[test]
    fn a_store_behind_its_witness_is_rolled_back() {
        let key = [7u8; 32];
        let old = content(&["web1"], 0..3);
        let manifest = describe(&old, 5).signed(&key);
        let report = check(Some(&manifest), &old, Witnessed::At(9), &key);
        assert_eq!(report.witness, Some(9));
        assert!(report.summary().contains("4 committed change(s) are gone"));
        // Ahead of the witness: a crash between commit and witness.
        assert!(check(Some(&manifest), &old, Witnessed::At(4), &key).is_clean());
        assert!(!check(Some(&manifest), &old, Witnessed::Missing, &key).is_clean());
        assert!(!check(Some(&manifest), &old, Witnessed::Invalid, &key).is_clean());
    }

    #[test]
    fn an_edited_manifest_is_refused() {
        let key = [7u8; 32];
        let full = content(&["web1", "web2"], 0..0);
        let mut manifest = describe(&full, 3);
        let signed = manifest.signed(&key);
        manifest.removed("profiles", "web2");
        manifest.mac = Manifest::verified(&signed, &key).unwrap().mac;
        let forged = serde_json::to_vec(&manifest).unwrap();
        let report = check(Some(&forged), &full, Witnessed::At(3), &key);
        assert!(report.problem.unwrap().contains("integrity"));
        assert!(
            check(Some(&signed), &full, Witnessed::At(3), &[8u8; 32])
                .problem
                .is_some()
        );
    }

    #[test]
    fn the_witness_is_bound_to_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = [1u8; 32];
        assert_eq!(read_witness(dir.path(), &key), Witnessed::Missing);
        write_witness(dir.path(), 42, &key).unwrap();
        assert_eq!(read_witness(dir.path(), &key), Witnessed::At(42));
        assert_eq!(read_witness(dir.path(), &[2u8; 32]), Witnessed::Invalid);
        std::fs::write(dir.path().join(WITNESS), "43 abc\n").unwrap();
        assert_eq!(read_witness(dir.path(), &key), Witnessed::Invalid);
    }

    #[test]
    fn a_witness_written_over_reads_as_its_last_write() {
        let dir = tempfile::tempdir().unwrap();
        let key = [1u8; 32];
        // A line as earlier versions wrote it (unpadded), then longer and
        // shorter generations over it: no old tail survives.
        let tag = mac(&key, b"tether/v1/witness/", &7u64.to_be_bytes());
        std::fs::write(dir.path().join(WITNESS), format!("7 {tag}\n")).unwrap();
        assert_eq!(read_witness(dir.path(), &key), Witnessed::At(7));
        for generation in [8, u64::MAX, 9, 0] {
            write_witness(dir.path(), generation, &key).unwrap();
            assert_eq!(read_witness(dir.path(), &key), Witnessed::At(generation));
        }
        // A symlink planted at its name is not followed.
        let elsewhere = dir.path().join("elsewhere");
        std::fs::remove_file(dir.path().join(WITNESS)).unwrap();
        std::os::unix::fs::symlink(&elsewhere, dir.path().join(WITNESS)).unwrap();
        assert!(write_witness(dir.path(), 10, &key).is_err());
        assert!(!elsewhere.exists());
    }
}
