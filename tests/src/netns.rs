//! A network namespace joined to this one by a veth pair: servers started
//! in it listen on its own loopback, which this namespace cannot reach,
//! and on one address this namespace can. Root only.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::{is_root, missing, run_command, skip, which};

static NEXT: AtomicU32 = AtomicU32::new(1);

/// One namespace; deleted (with its veth pair) on drop.
pub struct Netns {
    pub name: String,
    /// This namespace's end of the pair.
    pub host_address: String,
    /// The namespace's end: the one address of it reachable from here.
    pub address: String,
}

impl Netns {
    /// A new namespace, or `None` when the test must skip (not root, no `ip`).
    pub fn create() -> Option<Netns> {
        if !is_root() {
            skip("needs root: it makes a network namespace");
            return None;
        }
        which("ip").or_else(|| missing("ip (iproute2)", "apt-get install iproute2"))?;
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let name = format!("tether-{pid}-{n}");
        // Interface names have at most 15 characters.
        let (outer, inner) = (format!("tjo{pid}x{n}"), format!("tji{pid}x{n}"));
        let subnet = format!("10.232.{}", (pid % 200 + n) % 250);
        let netns = Netns {
            host_address: format!("{subnet}.1"),
            address: format!("{subnet}.2"),
            name,
        };
        let steps: Vec<Vec<String>> = vec![
            vec!["netns".into(), "add".into(), netns.name.clone()],
            [
                "link",
                "add",
                &outer,
                "type",
                "veth",
                "peer",
                "name",
                &inner,
                "netns",
                &netns.name,
            ]
            .map(str::to_owned)
            .to_vec(),
            [
                "addr",
                "add",
                &format!("{}/24", netns.host_address),
                "dev",
                &outer,
            ]
            .map(str::to_owned)
            .to_vec(),
            ["link", "set", &outer, "up"].map(str::to_owned).to_vec(),
        ];
        for step in steps {
            run_command(Command::new("ip").args(&step)).ok();
        }
        for step in [
            vec![
                "addr",
                "add",
                &format!("{}/24", netns.address),
                "dev",
                &inner,
            ],
            vec!["link", "set", &inner, "up"],
            vec!["link", "set", "lo", "up"],
        ] {
            run_command(
                Command::new("ip")
                    .args(["netns", "exec", &netns.name, "ip"])
                    .args(step),
            )
            .ok();
        }
        Some(netns)
    }

    /// `program` with `args`, run inside the namespace.
    pub fn command(&self, program: &std::path::Path) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name]).arg(program);
        command
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace deletes its end of the pair, and so both.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}
