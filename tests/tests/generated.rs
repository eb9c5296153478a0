//! The committed shell completions and manual pages are what the clap
//! definitions generate now; when one is stale, run `bash completions/update.sh`.

use std::path::Path;
use std::process::Command;

use tether_e2e::{tether_bin, tetherd_bin};

fn generated(binary: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new(binary).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn completions_and_manual_pages_are_current() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let cases: [(&str, &Path, &[&str]); 5] = [
        (
            "completions/tether.bash",
            &tether_bin(),
            &["completions", "bash"],
        ),
        (
            "completions/_tether",
            &tether_bin(),
            &["completions", "zsh"],
        ),
        (
            "completions/tether.fish",
            &tether_bin(),
            &["completions", "fish"],
        ),
        ("man/tether.1", &tether_bin(), &["man"]),
        ("man/tetherd.8", &tetherd_bin(), &["man"]),
    ];
    for (file, binary, args) in cases {
        let committed = std::fs::read(repo.join(file)).unwrap_or_default();
        assert!(
            committed == generated(binary, args),
            "{file} is stale: run `bash completions/update.sh` and commit the result"
        );
    }
}

#[test]
fn completions_need_no_daemon_and_edit_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(tether_bin())
        .args(["--socket", "/nonexistent/socket", "completions", "bash"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("_tether()"));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
