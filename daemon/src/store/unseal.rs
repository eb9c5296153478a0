//! Giving a sealed daemon its key again: `tether unseal` with the
//! passphrase (`tetherd --passphrase`, see [`super::passphrase`]), or after
//! `tether seal` the key file or credential it started with; and `tether
//! passphrase change`.

use super::envelope::MasterKey;
use super::master_key::{self, KeySource};
use super::passphrase::{self, Lockout, Wrapped};
use super::{Store, StoreError, now};

/// What an unseal did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsealed {
    /// The key was unwrapped (or read) and the store opened.
    Opened,
    /// The first unseal of a passphrase daemon: the passphrase now wraps
    /// the key (a new one, or the key file's, which is removed).
    PassphraseSet,
}

/// How a passphrase daemon stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassphraseState {
    /// Not a passphrase daemon.
    NotUsed,
    /// No passphrase yet: the first unseal sets it.
    Unset,
    Set,
}

impl Store {
    pub fn passphrase_state(&self) -> PassphraseState {
        match self.key_source() {
            KeySource::Passphrase(path) if path.exists() => PassphraseState::Set,
            KeySource::Passphrase(_) => PassphraseState::Unset,
            _ => PassphraseState::NotUsed,
        }
    }

    /// The wrapped key, or why there is none.
    fn wrapped(&self) -> Result<Wrapped, StoreError> {
        let KeySource::Passphrase(path) = self.key_source() else {
            return Err(StoreError::Key("this tetherd keeps no passphrase".into()));
        };
        passphrase::read(&path)?.ok_or_else(|| {
            StoreError::Key("no passphrase is set yet: `tether unseal` sets it".into())
        })
    }

    /// Unwraps with `passphrase`, counting a wrong one toward the lockout.
    fn unwrap_counted(
        &self,
        wrapped: &Wrapped,
        passphrase: &[u8],
    ) -> Result<MasterKey, StoreError> {
        let mut lockout = Lockout::read(&self.state_dir);
        if let Some(wait) = lockout.wait(now()) {
            return Err(StoreError::LockedOut(wait));
        }
        match passphrase::unwrap(wrapped, passphrase)? {
            Some(key) => {
                if lockout.failures > 0 {
                    Lockout::default().save(&self.state_dir);
                }
                Ok(key)
            }
            None => {
                lockout.failed(now());
                lockout.save(&self.state_dir);
                tracing::warn!(failures = lockout.failures, "a wrong passphrase");
                Err(StoreError::WrongPassphrase)
            }
        }
    }

    /// Checks `passphrase` against the wrapped key (for a rekey).
    pub(super) fn check_passphrase(&self, passphrase: &[u8]) -> Result<(), StoreError> {
        let wrapped = self.wrapped()?;
        self.unwrap_counted(&wrapped, passphrase).map(drop)
    }

    /// `tether unseal` on a passphrase daemon. On the first, `passphrase`
    /// becomes the passphrase: it wraps a new key, or the key file's (which
    /// is then removed).
    pub fn unseal_with_passphrase(&self, passphrase: &[u8]) -> Result<Unsealed, StoreError> {
        let KeySource::Passphrase(path) = self.key_source() else {
            return Err(StoreError::Key(
                "this tetherd keeps no passphrase: `tether unseal` needs none".into(),
            ));
        };
        let plain_file = self.state_dir.join(master_key::KEY_FILE);
        if let Some(wrapped) = passphrase::read(&path)? {
            let key = self.unwrap_counted(&wrapped, passphrase)?;
            let key = self.finish_wrapped_rekey(key, passphrase, &path)?;
            self.unlock(key)?;
            if plain_file.exists() {
                tracing::warn!("removing master.key: this tetherd keeps its key wrapped");
                let _ = std::fs::remove_file(&plain_file);
            }
            return Ok(Unsealed::Opened);
        }
        if passphrase.len() < passphrase::MIN_LENGTH {
            return Err(StoreError::WeakPassphrase(passphrase::MIN_LENGTH));
        }
        let key = if plain_file.exists() {
            master_key::read_key_file(&plain_file)?
        } else if self.is_new()? {
            MasterKey::generate()
                .map_err(|e| StoreError::Key(format!("cannot generate a key: {e}")))?
        } else {
            return Err(StoreError::Key(format!(
                "the store in {} was sealed with a master key that is not here: restore {} or \
                 master.key from your backup",
                self.state_dir.display(),
                path.display()
            )));
        };
        // Proved (or made) before the passphrase is kept.
        let copy = MasterKey::from_bytes(zeroize::Zeroizing::new(*key.bytes()));
        self.unlock(key)?;
        passphrase::write(&path, &passphrase::wrap(&copy, passphrase)?)?;
        if plain_file.exists() {
            std::fs::remove_file(&plain_file).map_err(|source| StoreError::Io {
                path: plain_file.clone(),
                source,
            })?;
        }
        tracing::warn!("the passphrase is set: the master key is kept only wrapped");
        Ok(Unsealed::PassphraseSet)
    }

    /// After a rekey that stopped part way: of the wrapped key and the
    /// rekey's new one, the one that opens the store is kept.
    fn finish_wrapped_rekey(
        &self,
        key: MasterKey,
        passphrase: &[u8],
        path: &std::path::Path,
    ) -> Result<MasterKey, StoreError> {
        let new_path = self.state_dir.join(passphrase::NEW_WRAPPED_FILE);
        let Some(new_wrapped) = passphrase::read(&new_path)? else {
            return Ok(key);
        };
        if self.proves(&key) {
            tracing::warn!("a rekey stopped before re-sealing the store; the old key stays");
            let _ = std::fs::remove_file(&new_path);
            return Ok(key);
        }
        match passphrase::unwrap(&new_wrapped, passphrase)? {
            Some(new) if self.proves(&new) => {
                tracing::warn!(
                    "a rekey stopped after re-sealing the store; its new key takes over"
                );
                master_key::install(&new_path, path)?;
                Ok(new)
            }
            _ => Ok(key),
        }
    }

    /// `tether unseal` after `tether seal` on a daemon with a key file or
    /// credential: the key is read again.
    pub fn unseal_from_source(&self) -> Result<Unsealed, StoreError> {
        let (key, source) = master_key::load(&self.state_dir, false, |k| self.proves(k))?;
        *self.key_source.write().unwrap_or_else(|e| e.into_inner()) = source;
        self.unlock(key)?;
        Ok(Unsealed::Opened)
    }

    /// `tether passphrase change`: the key wrapped again, by `new`.
    pub fn change_passphrase(&self, old: &[u8], new: &[u8]) -> Result<(), StoreError> {
        let KeySource::Passphrase(path) = self.key_source() else {
            return Err(StoreError::Key("this tetherd keeps no passphrase".into()));
        };
        if new.len() < passphrase::MIN_LENGTH {
            return Err(StoreError::WeakPassphrase(passphrase::MIN_LENGTH));
        }
        let wrapped = self.wrapped()?;
        let key = self.unwrap_counted(&wrapped, old)?;
        passphrase::write(&path, &passphrase::wrap(&key, new)?)?;
        tracing::warn!("the passphrase was changed");
        Ok(())
    }
}
