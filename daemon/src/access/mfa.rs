//! MFA: TOTP enrolment, backup codes, login sessions, replay and lockout.
//!
//! - A TOTP time step is accepted once per uid (`last_step`, persisted), and
//!   every verification runs under one lock, so two concurrent submissions
//!   of one code cannot both pass.
//! - Failed codes are counted per uid in the store; from the fifth on, the
//!   uid is locked for 30 s, doubling with each further failure up to an
//!   hour. A locked uid's codes are not even checked, and the answer is the
//!   same `mfa_invalid` as for a wrong code.
//! - An MFA session lives in memory only, keyed by uid and login session,
//!   with an absolute and an idle limit on the monotonic clock. Only uses
//!   that need it refresh it; status calls do not.
//! - Where `[mfa] enrolment = "invite"`, a first enrolment needs a one-time
//!   code root issued (`tether mfa invite USER`), so that a terminal left
//!   open is not enough to become someone's second factor. The code is
//!   hashed like a backup code, expires, is used up when the enrolment
//!   starts, and a wrong one counts as a failed code.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::{Algorithm, Argon2, Params, Version};
use tether_api::access::{EnrollConfirmed, EnrollStarted, MfaSession, MfaStatus};
use tether_api::secret::Secret;
use totp_rs::TOTP;
use zeroize::Zeroizing;

use super::{Caller, LoginSession};
use crate::config::{AccessSettings, Enrolment};
use crate::error::Error;
use crate::store::access::{BackupCode, Invite, Lockout, MfaRecord, PendingEnrolment};
use crate::store::envelope::hex;
use crate::store::{Store, now};

const STEP: u64 = 30;
const DIGITS: usize = 6;
const SECRET_BYTES: usize = 20;
const BACKUP_CODES: usize = 10;
/// Failures before the lockout starts.
const FREE_FAILURES: u32 = 4;
const FIRST_LOCK_SECS: u64 = 30;
const MAX_LOCK_SECS: u64 = 3600;
/// How long an unconfirmed enrolment stays valid.
const PENDING_SECS: u64 = 600;

#[derive(Debug, Clone, Copy)]
struct Times {
    opened: Instant,
    used: Instant,
}

pub struct Mfa {
    sessions: Mutex<HashMap<(u32, LoginSession), Times>>,
    verify: tokio::sync::Mutex<()>,
    session_ttl: Duration,
    idle_ttl: Duration,
    issuer: String,
}

fn totp(secret_base32: &str) -> Result<TOTP, Error> {
    let bytes = totp_rs::Secret::Encoded(secret_base32.to_owned())
        .to_bytes()
        .map_err(|_| Error::Internal("a stored TOTP secret is not base32".into()))?;
    Ok(TOTP::new_unchecked(
        totp_rs::Algorithm::SHA1,
        DIGITS,
        0,
        STEP,
        bytes,
    ))
}

/// The step a TOTP code belongs to, within one step of now; constant-time
/// comparison.
fn matching_step(totp: &TOTP, code: &str, unix: u64) -> Option<u64> {
    let current = unix / STEP;
    [current.saturating_sub(1), current, current + 1]
        .into_iter()
        .find(|step| {
            let expected = Zeroizing::new(totp.generate(step * STEP));
            constant_time_eq(expected.as_bytes(), code.as_bytes())
        })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}

fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

fn hash_backup(code: &str, salt: &[u8]) -> Result<String, Error> {
    let mut out = Zeroizing::new([0u8; 32]);
    argon2()
        .hash_password_into(code.as_bytes(), salt, out.as_mut())
        .map_err(|e| Error::Internal(format!("argon2: {e}")))?;
    Ok(hex(out.as_ref()))
}

fn random(len: usize) -> Result<Zeroizing<Vec<u8>>, Error> {
    let mut bytes = Zeroizing::new(vec![0u8; len]);
    getrandom::fill(&mut bytes).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(bytes)
}

/// `abcde-fghij`: ten letters and digits without look-alikes.
fn new_backup_code() -> Result<Zeroizing<String>, Error> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let bytes = random(10)?;
    let mut code = Zeroizing::new(String::with_capacity(11));
    for (i, b) in bytes.iter().enumerate() {
        if i == 5 {
            code.push('-');
        }
        code.push(ALPHABET[*b as usize % ALPHABET.len()] as char);
    }
    Ok(code)
}

/// A typed code as compared: spaces and dashes dropped, lower case.
fn normalize(code: &str) -> Zeroizing<String> {
    Zeroizing::new(
        code.chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .flat_map(char::to_lowercase)
            .collect(),
    )
}

fn lock_secs(failures: u32) -> u64 {
    if failures <= FREE_FAILURES {
        return 0;
    }
    let doublings = (failures - FREE_FAILURES - 1).min(16);
    (FIRST_LOCK_SECS << doublings).min(MAX_LOCK_SECS)
}

impl Mfa {
    pub fn new(settings: &AccessSettings) -> Mfa {
        Mfa {
            sessions: Mutex::new(HashMap::new()),
            verify: tokio::sync::Mutex::new(()),
            session_ttl: Duration::from_secs(settings.mfa_session_secs),
            idle_ttl: Duration::from_secs(settings.mfa_idle_secs),
            issuer: settings.totp_issuer.clone(),
        }
    }

    fn live_times(&self, caller: &Caller, refresh: bool) -> Option<Times> {
        let session = caller.login_session()?;
        let mut sessions = self.sessions.lock().ok()?;
        let key = (caller.uid, session);
        let now = Instant::now();
        let times = sessions.get_mut(&key)?;
        if now.duration_since(times.opened) >= self.session_ttl
            || now.duration_since(times.used) >= self.idle_ttl
        {
            sessions.remove(&key);
            return None;
        }
        if refresh {
            times.used = now;
        }
        Some(*times)
    }

    /// Whether the caller's login session has a live MFA session; using it
    /// refreshes its idle time.
    pub fn use_session(&self, caller: &Caller) -> bool {
        self.live_times(caller, true).is_some()
    }

    fn open_session(&self, caller: &Caller) -> Result<(), Error> {
        let session = caller.login_session().ok_or_else(|| {
            Error::Forbidden(
                "your process has no login session tetherd can read (its leader is outside \
                 tetherd's view, as in some containers), so an MFA session cannot be bound to \
                 it; start one with `setsid -w $SHELL` and run tether inside it"
                    .into(),
            )
        })?;
        let now = Instant::now();
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.retain(|_, t| now.duration_since(t.opened) < self.session_ttl);
            sessions.insert(
                (caller.uid, session),
                Times {
                    opened: now,
                    used: now,
                },
            );
        }
        Ok(())
    }

    pub fn logout(&self, caller: &Caller) {
        if let (Some(session), Ok(mut sessions)) = (caller.login_session(), self.sessions.lock()) {
            sessions.remove(&(caller.uid, session));
        }
    }

    fn end_all(&self, uid: u32) {
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.retain(|(u, _), _| *u != uid);
        }
    }

    pub fn status(&self, store: &Store, caller: &Caller) -> Result<MfaStatus, Error> {
        let record = store.mfa(caller.uid)?;
        let now = Instant::now();
        let session = self.live_times(caller, false).map(|t| MfaSession {
            expires_in_secs: self
                .session_ttl
                .saturating_sub(now.duration_since(t.opened))
                .as_secs(),
            idle_expires_in_secs: self
                .idle_ttl
                .saturating_sub(now.duration_since(t.used))
                .as_secs(),
        });
        Ok(MfaStatus {
            enrolled: record.is_some(),
            backup_codes_left: record
                .as_ref()
                .map(|r| r.backup_codes.iter().filter(|c| !c.used).count())
                .unwrap_or(0),
            session,
        })
    }

    /// Root: a one-time code that lets `uid` enrol once before `ttl`
    /// seconds pass; replaces an earlier one. The code is returned once.
    pub async fn invite(
        &self,
        store: &Store,
        uid: u32,
        by: u32,
        ttl: u64,
    ) -> Result<(Zeroizing<String>, u64), Error> {
        let _guard = self.verify.lock().await;
        let code = new_backup_code()?;
        let salt = random(16)?;
        let expires_at = now().saturating_add(ttl);
        let invite = Invite {
            code: BackupCode {
                salt: hex(&salt),
                hash: hash_backup(&normalize(&code), &salt)?,
                used: false,
            },
            expires_at,
            by,
        };
        store.put_invite(uid, &invite).await?;
        Ok((code, expires_at))
    }

    /// Uses up the caller's invite if `code` is it; a wrong or expired code
    /// counts as a failed code.
    async fn redeem_invite(&self, store: &Store, uid: u32, code: &str) -> Result<(), Error> {
        let _guard = self.verify.lock().await;
        let mut lockout = store.lockout(uid)?;
        if now() < lockout.locked_until {
            return Err(Error::MfaInvalid);
        }
        let valid = match store.invite(uid)? {
            Some(invite) if now() < invite.expires_at => {
                let salt = decode_hex(&invite.code.salt);
                let hash = hash_backup(&normalize(code), &salt)?;
                constant_time_eq(hash.as_bytes(), invite.code.hash.as_bytes())
            }
            _ => false,
        };
        if !valid {
            self.fail(store, uid, &mut lockout).await?;
            return Err(Error::MfaInvalid);
        }
        store.remove_invite(uid).await?;
        Ok(())
    }

    /// Starts an enrolment. Replacing an existing one needs a live MFA
    /// session, so that a borrowed terminal cannot swap the second factor; a
    /// first one needs an invite where enrolment is by invite.
    pub async fn enroll(
        &self,
        store: &Store,
        caller: &Caller,
        enrolment: Enrolment,
        invite: Option<&str>,
    ) -> Result<EnrollStarted, Error> {
        let enrolled = store.mfa(caller.uid)?.is_some();
        if enrolled && !self.use_session(caller) {
            return Err(Error::MfaRequired(
                "replacing your TOTP enrolment (or ask root for `tether mfa reset USER --unenroll`)"
                    .into(),
            ));
        }
        match (invite, enrolled, enrolment) {
            (Some(code), _, _) => self.redeem_invite(store, caller.uid, code).await?,
            (None, false, Enrolment::Invite) => return Err(Error::InviteRequired),
            (None, _, _) => {}
        }
        let bytes = random(SECRET_BYTES)?;
        let secret = match &totp_rs::Secret::Raw(bytes.to_vec()).to_encoded() {
            totp_rs::Secret::Encoded(text) => Zeroizing::new(text.clone()),
            totp_rs::Secret::Raw(_) => return Err(Error::Internal("base32".into())),
        };
        store
            .put_pending_enrolment(
                caller.uid,
                &PendingEnrolment {
                    secret: secret.to_string(),
                    started_at: now(),
                },
            )
            .await?;
        let account = caller
            .user
            .clone()
            .unwrap_or_else(|| caller.uid.to_string());
        let host = rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned();
        let label = format!("{}:{account}@{host}", self.issuer);
        let uri = format!(
            "otpauth://totp/{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP}",
            uri_escape(&label),
            secret.as_str(),
            uri_escape(&self.issuer)
        );
        Ok(EnrollStarted {
            uri: Secret::new(uri),
            secret: Secret::new(secret.to_string()),
        })
    }

    /// Confirms a pending enrolment with its first code; answers the backup
    /// codes, once.
    pub async fn confirm(
        &self,
        store: &Store,
        caller: &Caller,
        code: &str,
    ) -> Result<EnrollConfirmed, Error> {
        let _guard = self.verify.lock().await;
        let uid = caller.uid;
        let mut lockout = store.lockout(uid)?;
        let unix = now();
        if unix < lockout.locked_until {
            return Err(Error::MfaInvalid);
        }
        let pending = store
            .pending_enrolment(uid)?
            .filter(|p| unix.saturating_sub(p.started_at) < PENDING_SECS)
            .ok_or_else(|| {
                Error::BadRequest(
                    "no enrolment is waiting for a code (they last 10 minutes): run `tether mfa enroll`"
                        .into(),
                )
            })?;
        let step = matching_step(&totp(&pending.secret)?, &normalize(code), unix);
        let Some(step) = step else {
            self.fail(store, uid, &mut lockout).await?;
            return Err(Error::MfaInvalid);
        };
        let mut shown = Vec::with_capacity(BACKUP_CODES);
        let mut stored = Vec::with_capacity(BACKUP_CODES);
        for _ in 0..BACKUP_CODES {
            let code = new_backup_code()?;
            let salt = random(16)?;
            stored.push(BackupCode {
                salt: hex(&salt),
                hash: hash_backup(&normalize(&code), &salt)?,
                used: false,
            });
            shown.push(Secret::new(code.to_string()));
        }
        let record = MfaRecord {
            secret: pending.secret.clone(),
            backup_codes: stored,
            last_step: step,
            enrolled_at: unix,
        };
        store.confirm_enrolment(uid, &record).await?;
        if lockout != Lockout::default() {
            store.put_lockout(uid, &Lockout::default()).await?;
        }
        self.end_all(uid);
        self.open_session(caller)?;
        Ok(EnrollConfirmed {
            backup_codes: shown,
        })
    }

    /// `tether login`: a TOTP code or a backup code opens an MFA session for
    /// the caller's login session.
    pub async fn login(&self, store: &Store, caller: &Caller, code: &str) -> Result<(), Error> {
        let _guard = self.verify.lock().await;
        let uid = caller.uid;
        let mut record = store.mfa(uid)?.ok_or(Error::NotEnrolled(uid))?;
        let mut lockout = store.lockout(uid)?;
        let unix = now();
        if unix < lockout.locked_until {
            return Err(Error::MfaInvalid);
        }
        let code = normalize(code);
        let accepted = if code.len() == DIGITS && code.bytes().all(|b| b.is_ascii_digit()) {
            match matching_step(&totp(&record.secret)?, &code, unix) {
                Some(step) if step > record.last_step => {
                    record.last_step = step;
                    true
                }
                _ => false,
            }
        } else {
            let mut found = false;
            for backup in record.backup_codes.iter_mut().filter(|c| !c.used) {
                let salt = decode_hex(&backup.salt);
                if constant_time_eq(
                    hash_backup(&code, &salt)?.as_bytes(),
                    backup.hash.as_bytes(),
                ) {
                    backup.used = true;
                    found = true;
                    break;
                }
            }
            found
        };
        if !accepted {
            self.fail(store, uid, &mut lockout).await?;
            return Err(Error::MfaInvalid);
        }
        store.put_mfa(uid, &record).await?;
        if lockout != Lockout::default() {
            store.put_lockout(uid, &Lockout::default()).await?;
        }
        self.open_session(caller)
    }

    async fn fail(&self, store: &Store, uid: u32, lockout: &mut Lockout) -> Result<(), Error> {
        lockout.failures = lockout.failures.saturating_add(1);
        let secs = lock_secs(lockout.failures);
        if secs > 0 {
            lockout.locked_until = now() + secs;
        }
        store.put_lockout(uid, lockout).await?;
        tracing::warn!(
            uid,
            failures = lockout.failures,
            locked_secs = secs,
            "MFA code refused"
        );
        Ok(())
    }

    /// Root: clears a uid's lockout; with `unenroll`, removes its enrolment
    /// and ends its MFA sessions.
    pub async fn reset(&self, store: &Store, uid: u32, unenroll: bool) -> Result<(), Error> {
        let _guard = self.verify.lock().await;
        store.put_lockout(uid, &Lockout::default()).await?;
        if unenroll {
            store.remove_mfa(uid).await?;
            self.end_all(uid);
        }
        Ok(())
    }
}

fn decode_hex(text: &str) -> Vec<u8> {
    hex::decode(text).unwrap_or_default()
}

fn uri_escape(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockout_grows_and_is_capped() {
        assert_eq!(lock_secs(4), 0);
        assert_eq!(lock_secs(5), 30);
        assert_eq!(lock_secs(6), 60);
        assert_eq!(lock_secs(7), 120);
        assert_eq!(lock_secs(100), MAX_LOCK_SECS);
    }

    #[test]
    fn codes_match_only_their_step_window() {
        let t = TOTP::new_unchecked(
            totp_rs::Algorithm::SHA1,
            6,
            0,
            30,
            b"12345678901234567890".to_vec(),
        );
        // RFC 6238's SHA-1 vector at 59 s is 94287082 (8 digits); 6 digits: 287082.
        assert_eq!(t.generate(59), "287082");
        assert_eq!(matching_step(&t, "287082", 59), Some(1));
        assert_eq!(matching_step(&t, "287082", 89), Some(1), "one step of skew");
        assert_eq!(matching_step(&t, "287082", 120), None);
        assert_eq!(matching_step(&t, "000000", 59), None);
    }

    #[test]
    fn backup_codes_normalize() {
        let code = new_backup_code().unwrap();
        assert_eq!(code.len(), 11);
        assert_eq!(
            normalize(&code.to_uppercase()).as_str(),
            code.replace('-', "")
        );
    }
}
