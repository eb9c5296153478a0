//! Files: a small tmpfs for full-disk tests, and scans of a directory.

use super::*;

/// A small tmpfs (as root), unmounted when dropped: a file system to fill.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`48m`) at `dir`, made if missing; `None`
    /// where mounting is not possible here.
    pub fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).ok()?;
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tether-test"])
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .ok()?
            .success();
        mounted.then(|| Tmpfs(dir.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Every file below `dir`, for scanning the state directory.
pub fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(files_below(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// Asserts no file below `dir` contains `needle`.
#[track_caller]
pub fn assert_absent_below(dir: &Path, needle: &[u8]) {
    for path in files_below(dir) {
        let bytes = std::fs::read(&path).unwrap_or_default();
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "{} contains a secret in plaintext",
            path.display()
        );
    }
}
