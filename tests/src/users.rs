//! Local users: the test login, password logins, other uids calling the
//! system daemon, and the login session MFA binds to.

use super::*;

/// Makes sure the commands a test runs share a login session tetherd can
/// read, as a user's commands in one terminal do. Where the test runner's
/// session leader lives outside this PID namespace (a container started by
/// something else), /proc shows session 0 and tetherd rightly refuses to
/// bind an MFA session to it; the test process then leads a session of its
/// own.
pub fn ensure_login_session() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        if session_leader_readable() {
            return;
        }
        if let Err(error) = rustix::process::setsid() {
            panic!(
                "this test process has no readable login session (its leader is outside \
                 this PID namespace) and cannot start one ({error}); run the tests \
                 under `setsid -w`"
            );
        }
        assert!(session_leader_readable(), "setsid left no readable session");
    });
}

fn session_leader_readable() -> bool {
    // /proc shows the session as this namespace sees it: 0 when the leader
    // is outside.
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let sid = stat
        .rfind(')')
        .and_then(|end| stat[end + 1..].split_whitespace().nth(3))
        .and_then(|field| field.parse::<i32>().ok())
        .unwrap_or(0);
    sid > 0 && Path::new(&format!("/proc/{sid}/stat")).exists()
}

/// The password of [`TEST_USER`], random per test process.
pub fn test_password() -> &'static str {
    static PASSWORD: OnceLock<String> = OnceLock::new();
    PASSWORD.get_or_init(|| {
        let mut bytes = [0u8; 12];
        std::fs::File::open("/dev/urandom")
            .unwrap()
            .read_exact(&mut bytes)
            .unwrap();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        format!("pw-{hex}")
    })
}

/// Creates [`TEST_USER`] (as root) and sets its password for this process.
pub fn ensure_test_user() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        let exists = Command::new("id")
            .arg(TEST_USER)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success();
        if !exists {
            let status = Command::new("useradd")
                .args(["--create-home", "--shell", "/bin/sh", TEST_USER])
                .status()
                .unwrap();
            assert!(status.success(), "useradd {TEST_USER}");
        }
        let mut chpasswd = Command::new("chpasswd")
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(
            chpasswd.stdin.take().unwrap(),
            "{TEST_USER}:{}",
            test_password()
        )
        .unwrap();
        assert!(chpasswd.wait().unwrap().success(), "chpasswd");
    });
}

/// Appends `key` to `user`'s own `~/.ssh/authorized_keys` (for servers that
/// read no other file), owned by the user, 0600.
pub fn authorize_in_home(user: &str, key: &KeyPair) {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let home = Command::new("sh")
        .arg("-c")
        .arg(format!("getent passwd {user} | cut -d: -f6"))
        .output()
        .unwrap();
    let home = PathBuf::from(String::from_utf8(home.stdout).unwrap().trim());
    let ssh = home.join(".ssh");
    std::fs::create_dir_all(&ssh).unwrap();
    let file = ssh.join("authorized_keys");
    let mut text = std::fs::read_to_string(&file).unwrap_or_default();
    if !text.contains(&key.public_line) {
        text.push_str(&key.public_line);
        text.push('\n');
        std::fs::write(&file, text).unwrap();
    }
    std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    chown_tree(&ssh, &format!("{user}:"));
}

/// `chown -R OWNER PATH` (OWNER as chown takes it: `user:`, `user:group`).
pub fn chown_tree(path: &std::path::Path, owner: &str) {
    let status = Command::new("chown")
        .arg("-R")
        .arg(owner)
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success(), "chown {}", path.display());
}

/// Creates (as root) a local user `name` with a group of its own name and
/// membership in `groups` (created too), for tests that call as several
/// uids; returns its uid.
pub fn ensure_user(name: &str, groups: &[&str]) -> u32 {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let quiet = |command: &mut Command| {
        command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    };
    for group in groups {
        quiet(Command::new("groupadd").args(["-f", group]));
    }
    if !quiet(Command::new("id").arg(name)) {
        let status = Command::new("useradd")
            .args([
                "--no-create-home",
                "--user-group",
                "--shell",
                "/bin/sh",
                name,
            ])
            .status()
            .unwrap();
        assert!(status.success(), "useradd {name}");
    }
    for group in groups {
        let status = Command::new("usermod")
            .args(["-aG", group, name])
            .status()
            .unwrap();
        assert!(status.success(), "usermod -aG {group} {name}");
    }
    let out = Command::new("id").args(["-u", name]).output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}
