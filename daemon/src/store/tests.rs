//! The store's own tests: records, keys, damage.

use super::*;

fn record() -> ProfileRecord {
    ProfileRecord {
        host: "127.0.0.1".into(),
        port: 22,
        user: "alice".into(),
        auth: AuthKind::Password,
        public_key: None,
        created_at: 1,
        updated_at: 1,
        connect_timeout_secs: None,
        keepalive_secs: None,
        certificate: None,
    }
}

fn pins() -> Vec<PinnedHostKey> {
    vec![PinnedHostKey {
        algorithm: "ssh-ed25519".into(),
        fingerprint: "SHA256:abc".into(),
        added_at: 1,
    }]
}

const SECRET: &str = "correct horse battery staple";

async fn store_with(dir: &Path, names: &[&str]) -> Store {
    let store = Store::open(dir).unwrap();
    for name in names {
        let cred = Credential::Password(Zeroizing::new(SECRET.into()));
        store
            .add_profile(name, &record(), &cred, &pins())
            .await
            .unwrap();
    }
    store
}

#[tokio::test]
async fn profiles_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    drop(store_with(dir.path(), &["web1", "web2"]).await);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.profile("web1").unwrap(), Some(record()));
    assert_eq!(store.host_keys("web2").unwrap(), pins());
    assert!(
        matches!(store.credential("web1").unwrap(), Credential::Password(p) if p.as_str() == SECRET)
    );
    assert!(store.profile("nope").unwrap().is_none());
}

#[tokio::test]
async fn duplicate_names_are_refused_and_nothing_changes() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), &["web1"]).await;
    let other = ProfileRecord {
        host: "evil".into(),
        ..record()
    };
    let cred = Credential::Password(Zeroizing::new("x".into()));
    let err = store
        .add_profile("web1", &other, &cred, &[])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Exists(_)));
    assert_eq!(store.profile("web1").unwrap(), Some(record()));
}

#[tokio::test]
async fn remove_takes_everything() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), &["web1"]).await;
    assert!(store.remove_profile("web1").await.unwrap());
    assert!(!store.remove_profile("web1").await.unwrap());
    assert!(store.raw_get(SECRETS, "web1").unwrap().is_none());
    assert!(store.raw_get(HOSTKEYS, "web1").unwrap().is_none());
    assert_eq!(store.profile_count(), 0);
}

#[tokio::test]
async fn a_tampered_record_is_corrupt_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), &["web1", "web2"]).await;
    let mut bytes = store.raw_get(PROFILES, "web1").unwrap().unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    store.raw_put(PROFILES, "web1", Some(&bytes)).unwrap();
    assert!(matches!(
        store.profile("web1"),
        Err(StoreError::Corrupt { tree: PROFILES, .. })
    ));
    assert_eq!(store.profile("web2").unwrap(), Some(record()));
    let listed = store.profiles().unwrap();
    assert!(listed[0].1.is_err() && listed[1].1.is_ok());
}

#[tokio::test]
async fn a_record_moved_to_another_name_does_not_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), &["web1", "web2"]).await;
    let web1 = store.raw_get(SECRETS, "web1").unwrap().unwrap();
    store.raw_put(SECRETS, "web2", Some(&web1)).unwrap();
    assert!(matches!(
        store.credential("web2"),
        Err(StoreError::Corrupt { tree: SECRETS, .. })
    ));
    assert!(store.credential("web1").is_ok());
}

#[tokio::test]
async fn a_wrong_master_key_stops_the_store() {
    let dir = tempfile::tempdir().unwrap();
    drop(store_with(dir.path(), &["web1"]).await);
    let key_file = dir.path().join(master_key::KEY_FILE);
    std::fs::write(&key_file, [9u8; 32]).unwrap();
    let err = Store::open(dir.path()).err().unwrap();
    assert!(matches!(err, StoreError::WrongKey { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("not the one this store was sealed with")
    );
}

#[tokio::test]
async fn a_missing_key_for_an_existing_store_is_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    drop(store_with(dir.path(), &["web1"]).await);
    std::fs::remove_file(dir.path().join(master_key::KEY_FILE)).unwrap();
    assert!(matches!(Store::open(dir.path()), Err(StoreError::Key(_))));
    assert!(!dir.path().join(master_key::KEY_FILE).exists());
}

#[tokio::test]
async fn no_plaintext_secret_reaches_the_state_directory() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), &["web1"]).await;
    drop(store);
    for entry in walk(dir.path()) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
            "{}",
            entry.display()
        );
        assert!(
            !bytes.windows(5).any(|w| w == b"alice"),
            "{}",
            entry.display()
        );
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// A store with `n` profiles and a few audit events, closed.
async fn closed_store(dir: &Path, n: usize) -> Vec<String> {
    let names: Vec<String> = (0..n).map(|i| format!("host-{i:03}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let store = store_with(dir, &refs).await;
    for seq in 0..5u64 {
        store
            .append_audit_event(seq, format!("{{\"seq\":{seq}}}").as_bytes(), b"{}")
            .await
            .unwrap();
    }
    drop(store);
    names
}

/// What a damaged copy gives: refused, reported, or everything.
fn served_whole_or_refused(dir: &Path, names: &[String]) -> Result<(), String> {
    let store = match Store::open(dir) {
        Err(_) => return Ok(()),
        Ok(store) => store,
    };
    if let Some(report) = store.damage() {
        // Reported, and nothing served.
        return match store.profiles() {
            Err(StoreError::Damaged(_)) => {
                assert!(!report.summary().is_empty());
                Ok(())
            }
            other => Err(format!(
                "a damaged store served {:?}",
                other.map(|p| p.len())
            )),
        };
    }
    let listed = store.profiles().map_err(|e| e.to_string())?;
    let present: Vec<&String> = listed.iter().map(|(name, _)| name).collect();
    if present.len() != names.len() {
        return Err(format!(
            "served {} of {} profiles without a word",
            present.len(),
            names.len()
        ));
    }
    if store.audit_len() != 5 {
        return Err(format!(
            "served {} of 5 events without a word",
            store.audit_len()
        ));
    }
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.path().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

#[tokio::test]
async fn a_record_removed_behind_the_stores_back_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), &["web1", "web2", "db1"]).await;
    store.raw_put(PROFILES, "web2", None).unwrap();
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    let report = store.damage().expect("the loss is found");
    assert_eq!(report.missing, ["profiles/web2"]);
    let refused = store.profile("web1").unwrap_err();
    assert!(refused.to_string().contains("profiles/web2"), "{refused}");
    // Nothing is written to a damaged store.
    assert!(matches!(
        store.remove_profile("web1").await,
        Err(StoreError::Damaged(_))
    ));

    // Taken as it is: the rest is served again, and the next open is clean.
    let lost = store.accept_damage().unwrap().unwrap();
    assert_eq!(lost.missing, ["profiles/web2"]);
    assert_eq!(store.profiles().unwrap().len(), 2);
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert!(store.damage().is_none());
    assert!(store.profile("web1").unwrap().is_some());
}

#[tokio::test]
async fn a_database_rolled_back_to_an_older_copy_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), &["web1"]).await;
    drop(store);
    let old = std::fs::read(dir.path().join(db::FILE)).unwrap();
    let store = Store::open(dir.path()).unwrap();
    let cred = Credential::Password(Zeroizing::new(SECRET.into()));
    store
        .add_profile("web2", &record(), &cred, &pins())
        .await
        .unwrap();
    drop(store);
    std::fs::write(dir.path().join(db::FILE), old).unwrap();
    let store = Store::open(dir.path()).unwrap();
    let report = store.damage().expect("the rollback is found");
    assert!(report.witness.is_some(), "{report:?}");
    assert!(report.summary().contains("committed change(s) are gone"));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 128,
        failure_persistence: None,
        ..Default::default()
    })]

    /// Cut or overwritten anywhere: everything acknowledged, or a refusal;
    /// never a silently smaller store.
    #[test]
    fn a_damaged_file_is_served_whole_or_refused(
        at in 0.0f64..1.0,
        len in 1usize..8192,
        cut in proptest::bool::ANY,
        byte in proptest::num::u8::ANY,
    ) {
        use std::sync::OnceLock;
        static MADE: OnceLock<(tempfile::TempDir, Vec<String>)> = OnceLock::new();
        let (made, names) = MADE.get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let names = runtime.block_on(closed_store(dir.path(), 40));
            (dir, names)
        });
        let dir = tempfile::tempdir().unwrap();
        copy_dir(made.path(), dir.path());
        let file = dir.path().join(db::FILE);
        let size = std::fs::metadata(&file).unwrap().len();
        let offset = (size as f64 * at) as u64;
        if cut {
            std::fs::OpenOptions::new().write(true).open(&file).unwrap().set_len(offset).unwrap();
        } else {
            use std::io::{Seek, Write};
            let mut f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
            f.seek(std::io::SeekFrom::Start(offset)).unwrap();
            f.write_all(&vec![byte; len]).unwrap();
        }
        let outcome = served_whole_or_refused(dir.path(), names);
        proptest::prop_assert!(outcome.is_ok(), "{:?}", outcome);
    }
}
