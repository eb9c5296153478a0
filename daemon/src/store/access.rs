//! Access records: grants, named actions, MFA enrolments and lockouts.
//!
//! | tree | key | sealed value | AAD field |
//! |---|---|---|---|
//! | `grants` | `PROFILE/user/UID` or `PROFILE/group/GID` | JSON [`GrantRecord`] | `grant` |
//! | `actions` | `PROFILE/ACTION` | JSON list of template words | `argv` |
//! | `mfa` | `UID` | JSON [`MfaRecord`] (the TOTP secret inside) | `totp` |
//! | `mfa` | `pending/UID` | JSON [`PendingEnrolment`] | `pending` |
//! | `mfa` | `invite/UID` | JSON [`Invite`] (the code Argon2id-hashed) | `invite` |
//! | `lockout` | `UID` | JSON [`Lockout`] | `lockout` |
//!
//! Profile names hold no `/`, so a profile's records are exactly those under
//! `PROFILE/`.

use serde::{Deserialize, Serialize};
use tether_api::access::{ExecPolicy, SftpAccess, Subject};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::db::Tx;
use super::{Store, StoreError, open_json, seal_json};

pub const GRANTS: &str = "grants";
pub const ACTIONS: &str = "actions";
pub const MFA: &str = "mfa";
pub const LOCKOUT: &str = "lockout";

/// A grant's policy; the profile and the subject are the record's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantRecord {
    pub role: tether_api::access::Role,
    pub shell: bool,
    pub exec: ExecPolicy,
    pub sftp: SftpAccess,
    pub paths: Vec<String>,
    pub unattended: bool,
    /// Lets the agent sign for sessions forwarded from the first server
    /// (`ssh -A`); absent in records from before the agent.
    #[serde(default)]
    pub agent_forwarding: bool,
    /// Where forwards may connect through the profile's server
    /// (`HOST:PORT`, `*` for either part); absent in records from before
    /// forwarding.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forward: Vec<String>,
}

/// One backup code, Argon2id-hashed with its own salt.
#[derive(Clone, Serialize, Deserialize, Zeroize)]
pub struct BackupCode {
    pub salt: String,
    pub hash: String,
    pub used: bool,
}

/// A uid's TOTP enrolment. No `Debug`: it holds the secret.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct MfaRecord {
    /// The TOTP secret, base32.
    pub secret: String,
    pub backup_codes: Vec<BackupCode>,
    /// The last TOTP time step accepted: a step is accepted once.
    pub last_step: u64,
    pub enrolled_at: u64,
}

/// An enrolment waiting for its first code.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct PendingEnrolment {
    pub secret: String,
    pub started_at: u64,
}

/// A one-time enrolment code root issued for a uid, hashed like a backup
/// code.
#[derive(Clone, Serialize, Deserialize)]
pub struct Invite {
    pub code: BackupCode,
    pub expires_at: u64,
    /// Who issued it.
    pub by: u32,
}

/// Failed codes of a uid, counted across connections and restarts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lockout {
    pub failures: u32,
    /// Unix seconds before which no code is accepted.
    pub locked_until: u64,
}

pub fn grant_key(profile: &str, subject: Subject) -> String {
    match subject {
        Subject::User(uid) => format!("{profile}/user/{uid}"),
        Subject::Group(gid) => format!("{profile}/group/{gid}"),
    }
}

fn parse_grant_key(key: &str) -> Option<(String, Subject)> {
    let mut parts = key.splitn(3, '/');
    let profile = parts.next()?.to_owned();
    let kind = parts.next()?;
    let id: u32 = parts.next()?.parse().ok()?;
    let subject = match kind {
        "user" => Subject::User(id),
        "group" => Subject::Group(id),
        _ => return None,
    };
    Some((profile, subject))
}

/// A grant with its key parts, or the error opening it.
pub type ListedGrant = (String, Subject, Result<GrantRecord, StoreError>);

/// Removes a profile's grants and actions, in the transaction that removes
/// the profile (so a later profile of the same name never inherits them).
pub(super) fn remove_access_of(tx: &mut Tx, profile: &str) -> Result<(), StoreError> {
    let prefix = format!("{profile}/");
    for table in [GRANTS, ACTIONS] {
        for key in tx.keys(table, &prefix)? {
            tx.remove(table, &key)?;
        }
    }
    Ok(())
}

impl Store {
    async fn put(
        &self,
        tree: &'static str,
        key: &str,
        field: &str,
        value: &impl Serialize,
    ) -> Result<(), StoreError> {
        self.write(|tx, master| tx.put(tree, key, &seal_json(master, tree, key, field, value)?))
    }

    fn get<T: serde::de::DeserializeOwned>(
        &self,
        tree: &'static str,
        key: &str,
        field: &str,
    ) -> Result<Option<T>, StoreError> {
        self.read_json(tree, key, field)
    }

    async fn delete(&self, tree: &'static str, key: &str) -> Result<bool, StoreError> {
        self.write(|tx, _| tx.remove(tree, key))
    }

    pub async fn put_grant(
        &self,
        profile: &str,
        subject: Subject,
        grant: &GrantRecord,
    ) -> Result<(), StoreError> {
        self.put(GRANTS, &grant_key(profile, subject), "grant", grant)
            .await
    }

    pub async fn remove_grant(&self, profile: &str, subject: Subject) -> Result<bool, StoreError> {
        self.delete(GRANTS, &grant_key(profile, subject)).await
    }

    /// Every grant, or those of one profile.
    pub fn grants(&self, profile: Option<&str>) -> Result<Vec<ListedGrant>, StoreError> {
        let prefix = profile.map(|p| format!("{p}/")).unwrap_or_default();
        self.with_key(|master| {
            let mut out = Vec::new();
            for (key, sealed) in self.scan_raw(GRANTS, &prefix)? {
                let Some((profile, subject)) = parse_grant_key(&key) else {
                    continue;
                };
                let record = open_json(master, GRANTS, &key, "grant", &sealed);
                out.push((profile, subject, record));
            }
            Ok(out)
        })
    }

    pub async fn put_action(
        &self,
        profile: &str,
        name: &str,
        argv: &[String],
    ) -> Result<(), StoreError> {
        self.put(ACTIONS, &format!("{profile}/{name}"), "argv", &argv)
            .await
    }

    pub fn action(&self, profile: &str, name: &str) -> Result<Option<Vec<String>>, StoreError> {
        self.get(ACTIONS, &format!("{profile}/{name}"), "argv")
    }

    pub async fn remove_action(&self, profile: &str, name: &str) -> Result<bool, StoreError> {
        self.delete(ACTIONS, &format!("{profile}/{name}")).await
    }

    /// A profile's actions by name; a damaged record is an error.
    pub fn actions(&self, profile: &str) -> Result<Vec<(String, Vec<String>)>, StoreError> {
        let prefix = format!("{profile}/");
        self.with_key(|master| {
            let mut out = Vec::new();
            for (key, sealed) in self.scan_raw(ACTIONS, &prefix)? {
                let argv = open_json(master, ACTIONS, &key, "argv", &sealed)?;
                out.push((key[prefix.len()..].to_owned(), argv));
            }
            Ok(out)
        })
    }

    pub fn mfa(&self, uid: u32) -> Result<Option<MfaRecord>, StoreError> {
        self.get(MFA, &uid.to_string(), "totp")
    }

    pub async fn put_mfa(&self, uid: u32, record: &MfaRecord) -> Result<(), StoreError> {
        self.put(MFA, &uid.to_string(), "totp", record).await
    }

    pub async fn remove_mfa(&self, uid: u32) -> Result<(), StoreError> {
        self.write(|tx, _| {
            tx.remove(MFA, &uid.to_string())?;
            tx.remove(MFA, &format!("pending/{uid}"))?;
            Ok(())
        })
    }

    pub fn pending_enrolment(&self, uid: u32) -> Result<Option<PendingEnrolment>, StoreError> {
        self.get(MFA, &format!("pending/{uid}"), "pending")
    }

    pub async fn put_pending_enrolment(
        &self,
        uid: u32,
        pending: &PendingEnrolment,
    ) -> Result<(), StoreError> {
        self.put(MFA, &format!("pending/{uid}"), "pending", pending)
            .await
    }

    /// Makes a pending enrolment the uid's enrolment, in one transaction.
    pub async fn confirm_enrolment(&self, uid: u32, record: &MfaRecord) -> Result<(), StoreError> {
        let key = uid.to_string();
        self.write(|tx, master| {
            tx.put(MFA, &key, &seal_json(master, MFA, &key, "totp", record)?)?;
            tx.remove(MFA, &format!("pending/{uid}"))?;
            Ok(())
        })
    }

    pub fn invite(&self, uid: u32) -> Result<Option<Invite>, StoreError> {
        self.get(MFA, &format!("invite/{uid}"), "invite")
    }

    pub async fn put_invite(&self, uid: u32, invite: &Invite) -> Result<(), StoreError> {
        self.put(MFA, &format!("invite/{uid}"), "invite", invite)
            .await
    }

    pub async fn remove_invite(&self, uid: u32) -> Result<bool, StoreError> {
        self.delete(MFA, &format!("invite/{uid}")).await
    }

    pub fn lockout(&self, uid: u32) -> Result<Lockout, StoreError> {
        Ok(self
            .get(LOCKOUT, &uid.to_string(), "lockout")?
            .unwrap_or_default())
    }

    pub async fn put_lockout(&self, uid: u32, lockout: &Lockout) -> Result<(), StoreError> {
        if *lockout == Lockout::default() {
            self.delete(LOCKOUT, &uid.to_string()).await?;
            return Ok(());
        }
        self.put(LOCKOUT, &uid.to_string(), "lockout", lockout)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_keys_round_trip() {
        for subject in [Subject::User(1000), Subject::Group(27)] {
            let key = grant_key("web1", subject);
            assert_eq!(parse_grant_key(&key), Some(("web1".into(), subject)));
        }
        assert_eq!(parse_grant_key("web1/other/1"), None);
        assert_eq!(parse_grant_key("web1/user/x"), None);
    }
}
