//! Load: 200 concurrent callers across 10 profiles (exec, cp, status mixed)
//! for LOAD_SECS seconds (60 by default): no failures, no leaked file
//! descriptors or SSH connections, and the p99 latency reported.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tether_e2e::{Daemon, Sshd, SshdOptions, keygen};

const CALLERS: usize = 200;
const PROFILES: usize = 10;

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

#[test]
fn two_hundred_callers_across_ten_profiles() {
    let options = SshdOptions {
        extra_config: vec!["MaxSessions 50".into()],
        ..Default::default()
    };
    let Some(sshd) = Sshd::start_with(options) else {
        return;
    };
    let secs: u64 = std::env::var("LOAD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let daemon = Daemon::start_with_config("[limits]\nmax_connections_per_uid = 1024\n");
    let key = keygen(sshd.dir.path(), "id", "ed25519", "");
    for i in 0..PROFILES {
        daemon.add_key_profile(&format!("p{i}"), &sshd, &key).ok();
    }
    let remote = sshd.user_dir("remote");
    let pid = daemon.pid().unwrap();
    // Warm: every profile connected once, then all closed; the baseline.
    for i in 0..PROFILES {
        daemon.run(&["exec", &format!("p{i}"), "--", "true"]).ok();
        daemon.run(&["session", "close", &format!("p{i}")]).ok();
    }
    std::thread::sleep(Duration::from_millis(500));
    let fds_before = open_fds(pid);

    let latencies = Mutex::new(Vec::new());
    let failures = Mutex::new(Vec::new());
    let deadline = Instant::now() + Duration::from_secs(secs);
    std::thread::scope(|scope| {
        for caller in 0..CALLERS {
            let (daemon, remote, latencies, failures) = (&daemon, &remote, &latencies, &failures);
            scope.spawn(move || {
                let mut round = 0usize;
                while Instant::now() < deadline {
                    let profile = format!("p{}", (caller + round) % PROFILES);
                    let target = format!("{profile}:{}/f{caller}", remote.display());
                    let started = Instant::now();
                    let run = match (caller + round) % 4 {
                        0 | 1 => daemon.run(&["exec", &profile, "--", "echo", "ok"]),
                        2 => daemon.run_with_stdin(&["cp", "-", &target], b"load test data\n"),
                        _ => daemon.run(&["status", "--json"]),
                    };
                    let took = started.elapsed();
                    if run.code != 0 {
                        failures.lock().unwrap().push(run.stderr.clone());
                    }
                    latencies.lock().unwrap().push(took);
                    round += 1;
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    let mut latencies = latencies.into_inner().unwrap();
    latencies.sort();
    let p = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    eprintln!(
        "load: {} requests in {secs} s by {CALLERS} callers; p50 {:?}, p99 {:?}, max {:?}; {} failures",
        latencies.len(),
        p(0.5),
        p(0.99),
        latencies.last().unwrap(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} failures, first: {}",
        failures.len(),
        failures[0]
    );
    assert!(latencies.len() > CALLERS, "too few requests finished");

    // Nothing leaked: connections close on request, descriptors return.
    for i in 0..PROFILES {
        daemon.run(&["session", "close", &format!("p{i}")]).ok();
    }
    let sessions = daemon.run(&["session", "list", "--json"]).json();
    assert_eq!(sessions["sessions"].as_array().unwrap().len(), 0);
    tether_e2e::wait_until("descriptors to return", Duration::from_secs(10), || {
        open_fds(pid) <= fds_before
    });
    daemon.run(&["audit", "verify"]).ok();
}
