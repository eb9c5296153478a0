//! Crash safety: tetherd killed with SIGKILL at random points during 1000
//! profile and secret writes, restarted each time; the store must always
//! open, and every write the CLI saw acknowledged must be there.

use std::collections::BTreeMap;
use std::time::Duration;

use tether_e2e::{Daemon, KeyPair, Run, Sshd, keygen};

/// A small deterministic generator (no dependency, reproducible by seed).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What a profile's secret may be after the writes so far: the last
/// acknowledged key, or any key written later whose answer was lost.
#[derive(Debug, Default, Clone)]
struct Expected {
    acked: Option<String>,
    maybe: Vec<String>,
}

fn check(daemon: &Daemon, expected: &BTreeMap<String, Expected>, keys: &[(KeyPair, String)]) {
    let run = daemon.run(&["profile", "list", "--json"]);
    run.ok();
    let list = run.json();
    assert_eq!(
        list["corrupt"].as_array().map_or(0, Vec::len),
        0,
        "a record did not survive: {list}"
    );
    let present: BTreeMap<String, String> = list["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["public_key"]["fingerprint"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for (name, want) in expected {
        match (&want.acked, present.get(name)) {
            (Some(acked), Some(found)) => assert!(
                found == acked || want.maybe.contains(found),
                "{name}: key {found}, acknowledged {acked}"
            ),
            (Some(_), None) => panic!("{name} was acknowledged and is gone"),
            (None, Some(found)) => assert!(want.maybe.contains(found), "{name}: unknown key"),
            (None, None) => {}
        }
    }
    assert!(
        present.values().all(|f| keys.iter().any(|(_, k)| k == f)),
        "a key nobody wrote"
    );
}

#[test]
fn every_acknowledged_write_survives_sigkill() {
    let Some(sshd) = Sshd::start() else {
        return;
    };
    let keys: Vec<(KeyPair, String)> = (0..2)
        .map(|i| {
            let key = keygen(sshd.dir.path(), &format!("id{i}"), "ed25519", "");
            sshd.authorize(&key);
            let fingerprint = tether_e2e::fingerprint(&key.private.with_extension("pub"));
            (key, fingerprint)
        })
        .collect();
    let mut daemon = Daemon::start();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("crash test seed {seed}");
    let mut rng = Rng(seed);
    let mut expected: BTreeMap<String, Expected> = BTreeMap::new();
    let mut kills = 0;
    for i in 0..1000 {
        // A new profile, or a new secret for an existing one.
        let existing: Vec<String> = expected
            .iter()
            .filter(|(_, e)| e.acked.is_some())
            .map(|(n, _)| n.clone())
            .collect();
        let rotate = !existing.is_empty() && rng.below(2) == 0;
        let (name, key_index) = if rotate {
            (
                existing[rng.below(existing.len() as u64) as usize].clone(),
                rng.below(2) as usize,
            )
        } else {
            (format!("p{i}"), rng.below(2) as usize)
        };
        let (key, fingerprint) = &keys[key_index];
        let args: Vec<String> = if rotate {
            [
                "profile",
                "set",
                &name,
                "--key-file",
                key.private.to_str().unwrap(),
            ]
            .map(str::to_owned)
            .to_vec()
        } else {
            tether_e2e::key_profile_args(&name, &sshd, key)
        };
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let entry = expected.entry(name.clone()).or_default();
        if rng.below(15) == 0 {
            // Killed somewhere in this write.
            let child = daemon
                .tether()
                .args(&args)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_micros(rng.below(60_000)));
            daemon.kill();
            let run = Run::from(child.wait_with_output().unwrap());
            if run.code == 0 {
                entry.acked = Some(fingerprint.clone());
                entry.maybe.clear();
            } else {
                entry.maybe.push(fingerprint.clone());
            }
            daemon.spawn_and_wait();
            kills += 1;
            check(&daemon, &expected, &keys);
        } else {
            daemon.run(&args).ok();
            entry.acked = Some(fingerprint.clone());
            entry.maybe.clear();
        }
    }
    daemon.kill();
    daemon.spawn_and_wait();
    check(&daemon, &expected, &keys);
    assert!(kills >= 30, "only {kills} kills");
    daemon.run(&["audit", "verify"]).ok();
}
