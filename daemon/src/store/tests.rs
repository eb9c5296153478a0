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
        protocol: Default::default(),
        tls_ca: None,
        jump: None,
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
            .append_audit_events(&[(seq, format!("{{\"seq\":{seq}}}").into_bytes())], b"{}")
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

/// A store with a record in every table.
async fn full_store(dir: &Path) -> Store {
    let store = store_with(dir, &["web1", "web2"]).await;
    let grant = access::GrantRecord {
        role: tether_api::access::Role::Operator,
        shell: false,
        exec: tether_api::access::ExecPolicy::Any,
        sftp: tether_api::access::SftpAccess::None,
        paths: Vec::new(),
        unattended: false,
        agent_forwarding: false,
        forward: vec![],
    };
    store
        .put_grant("web1", tether_api::access::Subject::User(1000), &grant)
        .await
        .unwrap();
    store
        .put_action("web1", "hello", &["echo".into(), "hello".into()])
        .await
        .unwrap();
    let pending = access::PendingEnrolment {
        secret: "JBSWY3DPEHPK3PXP".into(),
        started_at: 1,
    };
    store.put_pending_enrolment(1000, &pending).await.unwrap();
    let lockout = access::Lockout {
        failures: 2,
        locked_until: 0,
    };
    store.put_lockout(1000, &lockout).await.unwrap();
    store
}

#[tokio::test]
async fn after_a_rekey_every_record_opens_and_the_old_key_opens_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = full_store(dir.path()).await;
    let old_key = std::fs::read(dir.path().join(master_key::KEY_FILE)).unwrap();
    let done = store.rekey(None).unwrap();
    assert_eq!(done.records, 10);
    assert_ne!(done.old_key_id, done.new_key_id);
    // Served on, then after a restart with the new key file.
    assert!(store.credential("web1").is_ok());
    drop(store);
    assert!(!dir.path().join(master_key::NEW_KEY_FILE).exists());
    let store = Store::open(dir.path()).unwrap();
    assert!(store.damage().is_none());
    assert!(matches!(
        store.credential("web2").unwrap(),
        Credential::Password(_)
    ));
    assert_eq!(store.grants(None).unwrap().len(), 1);
    assert!(store.grants(None).unwrap()[0].2.is_ok());
    assert_eq!(store.action("web1", "hello").unwrap().unwrap().len(), 2);
    assert!(store.pending_enrolment(1000).unwrap().is_some());
    assert_eq!(store.lockout(1000).unwrap().failures, 2);
    drop(store);

    let copy = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), copy.path());
    std::fs::write(copy.path().join(master_key::KEY_FILE), &old_key).unwrap();
    assert!(matches!(
        Store::open(copy.path()),
        Err(StoreError::WrongKey { .. })
    ));
}

#[tokio::test]
async fn a_rekey_stopped_at_either_side_of_its_commit_keeps_the_key_that_opens() {
    // Before the commit: a new key file beside an unchanged store.
    let dir = tempfile::tempdir().unwrap();
    drop(full_store(dir.path()).await);
    let stray = MasterKey::generate().unwrap();
    master_key::write_new_key(&dir.path().join(master_key::NEW_KEY_FILE), &stray).unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert!(store.credential("web1").is_ok());
    assert!(!dir.path().join(master_key::NEW_KEY_FILE).exists());

    // After the commit, before the rename: the old key file beside a store
    // sealed with the new one.
    let old_key = std::fs::read(dir.path().join(master_key::KEY_FILE)).unwrap();
    store.rekey(None).unwrap();
    drop(store);
    let new_key = std::fs::read(dir.path().join(master_key::KEY_FILE)).unwrap();
    let private = |name: &str, bytes: &[u8]| {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let path = dir.path().join(name);
        let _ = std::fs::remove_file(&path);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .unwrap();
        file.write_all(bytes).unwrap();
    };
    private(master_key::NEW_KEY_FILE, &new_key);
    private(master_key::KEY_FILE, &old_key);
    let store = Store::open(dir.path()).unwrap();
    assert!(store.credential("web1").is_ok());
    assert_eq!(
        std::fs::read(dir.path().join(master_key::KEY_FILE)).unwrap(),
        new_key
    );
    assert!(!dir.path().join(master_key::NEW_KEY_FILE).exists());
}

#[tokio::test]
async fn a_backup_restores_into_an_empty_directory_and_nothing_else() {
    use backup::{RestoreKey, restore};
    let dir = tempfile::tempdir().unwrap();
    let store = full_store(dir.path()).await;
    store
        .append_audit_events(&[(0, b"{\"seq\":0}".to_vec())], b"{}")
        .await
        .unwrap();
    let (header, bytes) = store.backup().unwrap();
    assert_eq!((header.records, header.events), (10, 1));
    // Ciphertext only: no record name, secret or event in the clear.
    for needle in [SECRET.as_bytes(), b"web1".as_slice(), b"seq".as_slice()] {
        assert!(!bytes.windows(needle.len()).any(|w| w == needle));
    }
    let file = dir.path().join("backup");
    std::fs::write(&file, &bytes).unwrap();
    let key_file = dir.path().join(master_key::KEY_FILE);

    let fresh = tempfile::tempdir().unwrap();
    let target = fresh.path().join("state");
    let restored = restore(&target, &file, RestoreKey::File(key_file.clone())).unwrap();
    assert_eq!(restored.records, 10);
    let back = Store::open(&target).unwrap();
    assert!(back.damage().is_none());
    assert!(back.credential("web1").is_ok());
    assert_eq!(back.audit_len(), 1);
    assert_eq!(back.generation(), store.generation());
    drop(back);
    // Never over a store.
    let again = restore(&target, &file, RestoreKey::Found).unwrap_err();
    assert!(
        again.to_string().contains("already holds a store"),
        "{again}"
    );

    let nothing_written = |state: &Path| !state.join(db::FILE).exists();
    // A wrong key.
    let other = fresh.path().join("other.key");
    master_key::write_new_key(&other, &MasterKey::generate().unwrap()).unwrap();
    let target = fresh.path().join("wrong-key");
    let error = restore(&target, &file, RestoreKey::File(other)).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("sealed with the master key of id"),
        "{error}"
    );
    assert!(nothing_written(&target));
    // Damaged, cut inside a chunk, or cut at a chunk's end.
    let header_end = bytes.iter().position(|&b| b == b'\n').unwrap();
    let mut flipped = bytes.clone();
    flipped[header_end + 40] ^= 1;
    let cut = bytes[..bytes.len() - 10].to_vec();
    let no_chunks = bytes[..=header_end].to_vec();
    for (name, damaged) in [("flipped", flipped), ("cut", cut), ("empty", no_chunks)] {
        let path = fresh.path().join(name);
        std::fs::write(&path, damaged).unwrap();
        let target = fresh.path().join(format!("state-{name}"));
        let error = restore(&target, &path, RestoreKey::File(key_file.clone())).unwrap_err();
        assert!(matches!(error, StoreError::Backup(_)), "{name}: {error}");
        assert!(nothing_written(&target), "{name}");
    }
}
