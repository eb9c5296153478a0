//! A parameter value is never shell text, whatever the remote account's
//! login shell: the injection battery against a real sshd, one account per
//! login shell (sh, dash, bash, zsh, ksh, fish, tcsh, csh, busybox sh).
//! Needs root (it creates the accounts); with CI=true every shell must be
//! installed.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use tether_e2e::servers::which;
use tether_e2e::{Daemon, Sshd, in_ci, is_root, keygen, skip};

/// The login shells, by account suffix and the programs that provide them.
const SHELLS: &[(&str, &str)] = &[
    ("sh", "sh"),
    ("dash", "dash"),
    ("bash", "bash"),
    ("zsh", "zsh"),
    ("ksh", "ksh"),
    ("fish", "fish"),
    ("tcsh", "tcsh"),
    ("csh", "csh"),
    ("busybox", "busybox"),
];

/// The login shell to give the account: busybox runs its `sh` applet when
/// called as `sh`, so it gets a link of that name.
fn login_shell(name: &str, program: &Path, dir: &Path) -> PathBuf {
    if name != "busybox" {
        return program.to_owned();
    }
    let applets = dir.join("busybox");
    std::fs::create_dir_all(&applets).unwrap();
    std::fs::set_permissions(&applets, std::fs::Permissions::from_mode(0o755)).unwrap();
    let sh = applets.join("sh");
    if !sh.exists() {
        std::os::unix::fs::symlink(program, &sh).unwrap();
    }
    sh
}

/// An account `tether-sh-NAME` with `shell` as its login shell and a home.
fn account(name: &str, shell: &Path) -> String {
    let user = format!("tether-sh-{name}");
    let exists = Command::new("id")
        .arg(&user)
        .output()
        .unwrap()
        .status
        .success();
    if !exists {
        let status = Command::new("useradd")
            .args(["--create-home", "--shell"])
            .arg(shell)
            .arg(&user)
            .status()
            .unwrap();
        assert!(status.success(), "useradd {user}");
    } else {
        let status = Command::new("usermod")
            .arg("--shell")
            .arg(shell)
            .arg(&user)
            .status()
            .unwrap();
        assert!(status.success(), "usermod {user}");
    }
    // Not locked (a `!` password makes sshd refuse every login), no
    // password either.
    let status = Command::new("usermod")
        .args(["--password", "*"])
        .arg(&user)
        .status()
        .unwrap();
    assert!(status.success(), "usermod --password {user}");
    user
}

/// Values an attacker would try, as words that must arrive unchanged.
fn battery() -> Vec<String> {
    let mut values: Vec<String> = [
        "$(touch /tmp/tether-pwned)",
        "`touch /tmp/tether-pwned`",
        ";touch /tmp/tether-pwned",
        "|touch /tmp/tether-pwned",
        "&touch /tmp/tether-pwned",
        "'",
        "''",
        "\"",
        "\\",
        "\\'",
        "a\\'b';touch /tmp/tether-pwned;'",
        "!",
        "!!",
        "!$",
        "a!b",
        "\\!",
        "!touch",
        "%self",
        "=ls",
        "^x",
        "~",
        "~root",
        "*",
        "?",
        "[a]",
        "{a,b}",
        "$HOME",
        "$$",
        "${HOME}",
        "#comment",
        "a b  c",
        "tab\there",
        "cr\rhere",
        "\x1b[31mred",
        "bell\x07",
        "é ü 日本語",
        "-n",
        "--version",
        "",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    values.push(
        (1u8..=127)
            .filter(|b| *b != b'\n')
            .map(char::from)
            .collect(),
    );
    values
}

#[test]
fn values_are_words_under_every_login_shell() {
    if !is_root() {
        skip("needs root: it creates one account per login shell");
        return;
    }
    let Some(sshd) = Sshd::start() else {
        return;
    };
    let daemon = Daemon::start();
    let key = keygen(sshd.dir.path(), "id_shells", "ed25519", "");
    let _ = std::fs::remove_file("/tmp/tether-pwned");
    let mut tried = 0;
    for (name, program) in SHELLS {
        let Some(program) = which(program) else {
            assert!(!in_ci(), "{program} is missing and CI=true: install it");
            skip(&format!("{program} is not installed"));
            continue;
        };
        let shell = login_shell(name, &program, daemon.dir.path());
        let user = account(name, &shell);
        std::fs::write(
            sshd.dir.path().join("authorized_keys").join(&user),
            format!("{}\n", key.public_line),
        )
        .unwrap();
        let profile = format!("sh-{name}");
        let port = sshd.port.to_string();
        daemon
            .run(&[
                "profile",
                "add",
                &profile,
                "--host",
                "127.0.0.1",
                "--port",
                &port,
                "--user",
                &user,
                "--key-file",
                key.private.to_str().unwrap(),
                "--accept-new",
            ])
            .ok();
        daemon
            .run(&[
                "action",
                "add",
                &profile,
                "echo",
                "--",
                "printf",
                "[%s]\\n",
                "{v-:(?s).*}",
            ])
            .ok();
        for value in battery() {
            let expected = format!("[{value}]\n");
            let run = daemon.run(&["run", &profile, "echo", &format!("v={value}")]);
            assert_eq!(run.code, 0, "{name}: {value:?}: {}", run.stderr);
            assert_eq!(run.stdout(), expected, "{name}: run with {value:?}");
            // Several argv words to exec are quoted the same way.
            let run = daemon.run(&["exec", &profile, "--", "printf", "[%s]\\n", &value]);
            assert_eq!(run.stdout(), expected, "{name}: exec with {value:?}");
        }
        // A line break has no spelling every shell reads back: refused.
        let run = daemon.run(&["run", &profile, "echo", "v=a\nb"]);
        run.fails_with("bad_request");
        assert!(run.stderr.contains("csh"), "{}", run.stderr);
        tried += 1;
    }
    assert!(
        !Path::new("/tmp/tether-pwned").exists(),
        "a value ran as a command"
    );
    assert!(tried > 0);
}
