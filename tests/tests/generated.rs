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
    let cases: [(&str, &Path, &[&str]); 4] = [
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
        ("man/tetherd.8", &tetherd_bin(), &["man"]),
    ];
    for (file, binary, args) in cases {
        let committed = std::fs::read(repo.join(file)).unwrap_or_default();
        assert!(
            committed == generated(binary, args),
            "{file} is stale: run `bash completions/update.sh` and commit the result"
        );
    }
    // One page per command, and nothing else in man/ besides tetherd(8).
    let fresh = tempfile::tempdir().unwrap();
    let out = Command::new(tether_bin())
        .args(["man", "--out-dir"])
        .arg(fresh.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let names = |dir: &Path| {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".1"))
            .collect();
        names.sort();
        names
    };
    let man = repo.join("man");
    assert_eq!(
        names(&man),
        names(fresh.path()),
        "run `bash completions/update.sh`"
    );
    for page in names(fresh.path()) {
        assert!(
            std::fs::read(man.join(&page)).unwrap()
                == std::fs::read(fresh.path().join(&page)).unwrap(),
            "man/{page} is stale: run `bash completions/update.sh` and commit the result"
        );
    }
}

#[test]
fn every_command_named_in_a_page_has_its_own_page() {
    let man = Path::new(env!("CARGO_MANIFEST_DIR")).join("../man");
    for entry in std::fs::read_dir(&man).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for word in text.split(|c: char| c.is_whitespace() || c == ',') {
            let word = word
                .replace("\\-", "-")
                .replace("\\fB", "")
                .replace("\\fR", "");
            let Some(name) = word.strip_suffix("(1)") else {
                continue;
            };
            if name.starts_with("tether") {
                assert!(
                    man.join(format!("{name}.1")).exists(),
                    "{name}(1) is named but has no page"
                );
            }
        }
    }
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../systemd/tetherd.service"),
    )
    .unwrap();
    assert!(unit.contains("Documentation=man:tetherd(8)"), "{unit}");
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
    assert!(String::from_utf8_lossy(&out.stdout).contains("_clap_complete_tether"));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn the_readme_lists_every_endpoint() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let table = tether_api::endpoint::markdown_table();
    assert!(
        readme.contains(&format!("<!-- endpoints -->\n{table}<!-- /endpoints -->")),
        "README.md's endpoint table is stale: run bash completions/update.sh"
    );
    assert_eq!(
        table.lines().count(),
        tether_api::endpoint::ENDPOINTS.len() + 2
    );
}
