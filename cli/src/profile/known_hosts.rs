//! Host keys from OpenSSH's known_hosts files (sshd(8), "SSH_KNOWN_HOSTS
//! FILE FORMAT"), for `tether profile import`: plain and hashed
//! (`|1|salt|hash`) names, `[host]:port`, wildcards and negations. Keys
//! marked `@revoked` are never taken; `@cert-authority` lines are not host
//! keys and are passed over.

use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Digest;
use tether_api::types::{decode_base64, encode_base64_unpadded};

use super::ssh_config::glob;

/// A key known for a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownKey {
    pub algorithm: String,
    /// `SHA256:` and unpadded base64, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
    pub file: PathBuf,
    pub line: usize,
}

/// What the files say about one host.
#[derive(Debug, Default)]
pub struct Known {
    pub keys: Vec<KnownKey>,
    /// Fingerprints marked `@revoked` for it (or for anyone).
    pub revoked: Vec<String>,
}

impl Known {
    /// The key to pin: the strongest known one that is not revoked, in the
    /// order tetherd asks servers for theirs.
    pub fn preferred(&self) -> Option<&KnownKey> {
        let rank = |algorithm: &str| match algorithm {
            "ssh-ed25519" => 0,
            a if a.starts_with("ecdsa-sha2-") => 1,
            "ssh-rsa" => 2,
            _ => 3,
        };
        self.keys
            .iter()
            .filter(|k| !self.revoked.contains(&k.fingerprint) && rank(&k.algorithm) < 3)
            .min_by_key(|k| rank(&k.algorithm))
    }
}

/// The keys `files` hold for `host` on `port`.
pub fn lookup(files: &[PathBuf], host: &str, port: u16) -> Known {
    let name = if port == 22 {
        host.to_owned()
    } else {
        format!("[{host}]:{port}")
    };
    let mut known = Known::default();
    for file in files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for (number, line) in text.lines().enumerate() {
            read_line(&mut known, file, number + 1, line, &name);
        }
    }
    known
}

fn read_line(known: &mut Known, file: &Path, number: usize, line: &str, name: &str) {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return;
    }
    let mut fields = line.split_whitespace();
    let mut first = fields.next().unwrap_or_default();
    let marker = first.strip_prefix('@');
    if marker.is_some() {
        first = fields.next().unwrap_or_default();
    }
    let (Some(algorithm), Some(blob)) = (fields.next(), fields.next()) else {
        return;
    };
    let Some(blob) = decode_base64(blob) else {
        return;
    };
    if !names_match(first, name) {
        return;
    }
    let fingerprint = format!(
        "SHA256:{}",
        encode_base64_unpadded(&sha2::Sha256::digest(&blob))
    );
    match marker {
        None => known.keys.push(KnownKey {
            algorithm: algorithm.to_owned(),
            fingerprint,
            file: file.to_path_buf(),
            line: number,
        }),
        Some("revoked") => known.revoked.push(fingerprint),
        Some(_) => {}
    }
}

/// Whether a line's host field names `name`: a hashed name, or a list of
/// patterns where some matches and no negated one does.
fn names_match(field: &str, name: &str) -> bool {
    if let Some(hashed) = field.strip_prefix("|1|") {
        return hashed_match(hashed, name);
    }
    let mut matched = false;
    for pattern in field.split(',') {
        match pattern.strip_prefix('!') {
            Some(negated) if glob(negated, name) => return false,
            Some(_) => {}
            None => matched |= glob(pattern, name),
        }
    }
    matched
}

/// `salt|hash`: HMAC-SHA1 of the name under the salt.
fn hashed_match(hashed: &str, name: &str) -> bool {
    let Some((salt, hash)) = hashed.split_once('|') else {
        return false;
    };
    let (Some(salt), Some(hash)) = (decode_base64(salt), decode_base64(hash)) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(&salt) else {
        return false;
    };
    mac.update(name.as_bytes());
    mac.verify_slice(&hash).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    // `ssh-keygen -H` of "[db.example.net]:2222" with a fixed salt.
    fn hashed(name: &str) -> String {
        let salt = [7u8; 20];
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(&salt).unwrap();
        mac.update(name.as_bytes());
        format!(
            "|1|{}|{}",
            tether_api::types::encode_base64_unpadded(&salt) + "=",
            tether_api::types::encode_base64_unpadded(&mac.finalize().into_bytes()) + "="
        )
    }

    #[test]
    fn plain_hashed_ported_and_revoked_entries() {
        let dir = tempfile_dir();
        let file = dir.join("known_hosts");
        let ed = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
        let rsa = "AAAAB3NzaC1yc2EAAAADAQABAAAAgQC7";
        std::fs::write(
            &file,
            format!(
                "# comment\n\
                 web1,10.0.0.4 ssh-ed25519 {ed}\n\
                 {} ssh-ed25519 {ed} hashed\n\
                 [db.example.net]:2222 ssh-rsa {rsa}\n\
                 *.example.net,!skip.example.net ssh-ed25519 {ed}\n\
                 @cert-authority *.example.net ssh-ed25519 {ed}\n",
                hashed("[db.example.net]:2222")
            ),
        )
        .unwrap();
        let files = [file.clone()];
        let web1 = lookup(&files, "web1", 22);
        assert_eq!(web1.keys.len(), 1);
        assert_eq!(web1.keys[0].line, 2);
        assert!(web1.keys[0].fingerprint.starts_with("SHA256:"));
        let db = lookup(&files, "db.example.net", 2222);
        assert_eq!(db.keys.len(), 2, "{db:?}");
        assert_eq!(db.preferred().unwrap().algorithm, "ssh-ed25519");
        assert!(
            lookup(&files, "db.example.net", 22).keys.len() == 1,
            "the wildcard line"
        );
        assert!(lookup(&files, "skip.example.net", 22).keys.is_empty());
        assert!(lookup(&files, "other", 22).keys.is_empty());

        std::fs::write(
            &file,
            format!("web1 ssh-ed25519 {ed}\n@revoked * ssh-ed25519 {ed}\n"),
        )
        .unwrap();
        let web1 = lookup(&files, "web1", 22);
        assert_eq!(web1.keys.len(), 1);
        assert!(web1.preferred().is_none(), "a revoked key is never pinned");
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tether-known-hosts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
