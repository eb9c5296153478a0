//! Logging in with what the profile holds: a key (with its OpenSSH
//! certificate, where it has one), a password, or both.
//!
//! The server says what it takes: a `none` request first (OpenSSH does not
//! count it against MaxAuthTries) lists the methods. A key goes as
//! `publickey` (or the certificate as `publickey` with the certificate); a
//! password as `password`, or as the answer to a single
//! `keyboard-interactive` prompt when that is all the server allows. Where
//! the server wants two methods (`AuthenticationMethods publickey,password`)
//! a profile holding both gives them in the order the server asks; one
//! holding only one says that the server wants more. Each credential is
//! offered once: no retry storm that would trip MaxAuthTries.

use std::sync::Arc;

use russh::MethodKind;
use russh::client::{AuthResult, KeyboardInteractiveAuthResponse};
use russh::keys::{Certificate, HashAlg, PrivateKeyWithHashAlg};

use super::SshError;
use super::client::{ConnectSettings, Connected, SshHandle, with_timeout};
use crate::store::Credential;

/// How many keyboard-interactive rounds are answered before giving up; a
/// server asking more is not asking for a password.
const MAX_KBD_ROUNDS: usize = 4;

/// What one method's attempt came to.
enum Step {
    Done,
    /// Accepted, but the server wants more: these methods.
    Partial(Vec<MethodKind>),
}

/// Authenticates as `user` with `credential` (and `certificate`, an OpenSSH
/// user certificate for its key).
pub async fn authenticate(
    connected: &mut Connected,
    user: &str,
    credential: &Credential,
    certificate: Option<&str>,
    settings: &ConnectSettings,
) -> Result<(), SshError> {
    let addr = connected.addr.clone();
    let handle = &mut connected.handle;
    let auth = async {
        let ctx = Ctx {
            user,
            addr: &addr,
            credential,
            certificate,
        };
        // What the server allows, without spending a try.
        let mut allowed = match handle
            .authenticate_none(user)
            .await
            .map_err(|e| SshError::from_russh(&addr, e))?
        {
            AuthResult::Success => return Ok(()),
            AuthResult::Failure {
                remaining_methods, ..
            } => remaining_methods.iter().cloned().collect::<Vec<_>>(),
        };
        let mut key_used = false;
        let mut password_used = false;
        loop {
            let wants_key = allowed.contains(&MethodKind::PublicKey);
            let wants_password = allowed.contains(&MethodKind::Password)
                || allowed.contains(&MethodKind::KeyboardInteractive);
            let step = match (credential.key(), credential.password()) {
                (Some(_), _) if wants_key && !key_used => {
                    key_used = true;
                    ctx.key(handle).await?
                }
                (_, Some(password)) if wants_password && !password_used => {
                    password_used = true;
                    ctx.password(handle, password, &allowed).await?
                }
                _ => return Err(ctx.nothing_left(&allowed, key_used || password_used)),
            };
            match step {
                Step::Done => return Ok(()),
                Step::Partial(next) => allowed = next,
            }
        }
    };
    with_timeout(&addr, settings.connect_timeout, "authentication", auth).await
}

struct Ctx<'a> {
    user: &'a str,
    addr: &'a str,
    credential: &'a Credential,
    certificate: Option<&'a str>,
}

fn names(methods: &[MethodKind]) -> String {
    let names: Vec<&str> = methods.iter().map(<&str>::from).collect();
    names.join(", ")
}

impl Ctx<'_> {
    fn failed(&self, method: &'static str, hint: Option<String>) -> SshError {
        SshError::AuthFailed {
            user: self.user.to_owned(),
            addr: self.addr.to_owned(),
            method,
            hint,
        }
    }

    fn russh(&self, error: russh::Error) -> SshError {
        SshError::from_russh(self.addr, error)
    }

    fn step(&self, method: &'static str, result: AuthResult) -> Result<Step, SshError> {
        match result {
            AuthResult::Success => Ok(Step::Done),
            AuthResult::Failure {
                remaining_methods,
                partial_success: true,
            } => Ok(Step::Partial(remaining_methods.iter().cloned().collect())),
            AuthResult::Failure { .. } => Err(self.failed(method, None)),
        }
    }

    /// Why the login cannot go on: the server wants what the profile does
    /// not hold.
    fn nothing_left(&self, allowed: &[MethodKind], accepted_some: bool) -> SshError {
        let holds = match self.credential {
            Credential::PrivateKey(_) => "a key",
            Credential::Password(_) => "a password",
            Credential::KeyAndPassword { .. } => "a key and a password",
        };
        let hint = if accepted_some {
            format!(
                "the server accepted {holds} but asks for more ({}); give the profile what it \
                 asks for, e.g. `tether profile set NAME --key-file KEY --password-stdin`",
                names(allowed)
            )
        } else {
            format!(
                "the server does not take {holds}; it allows: {}",
                names(allowed)
            )
        };
        let method = match self.credential {
            Credential::Password(_) => "password",
            _ => "public key",
        };
        self.failed(method, Some(hint))
    }

    async fn key(&self, handle: &mut SshHandle) -> Result<Step, SshError> {
        let pem = self.credential.key().unwrap_or_default();
        let key = russh::keys::decode_secret_key(pem, None)
            .map_err(|_| SshError::InvalidKey("the stored key no longer parses".into()))?;
        if let Some(text) = self.certificate {
            let cert = Certificate::from_openssh(text).map_err(|_| {
                SshError::InvalidKey("the stored certificate no longer parses".into())
            })?;
            let result = handle
                .authenticate_openssh_cert(self.user, Arc::new(key), cert)
                .await
                .map_err(|e| self.russh(e))?;
            return self.step("certificate", result);
        }
        let hash = if key.algorithm().is_rsa() {
            match handle
                .best_supported_rsa_hash()
                .await
                .map_err(|e| self.russh(e))?
            {
                Some(Some(hash)) => Some(hash),
                Some(None) => {
                    return Err(self.failed(
                        "public key",
                        Some(
                            "the server accepts RSA keys only with SHA-1 signatures (ssh-rsa), \
                             which tether refuses"
                                .into(),
                        ),
                    ));
                }
                // No server-sig-algs extension: rsa-sha2-256 is the safe
                // choice every OpenSSH since 7.2 accepts.
                None => Some(HashAlg::Sha256),
            }
        } else {
            None
        };
        let result = handle
            .authenticate_publickey(self.user, PrivateKeyWithHashAlg::new(Arc::new(key), hash))
            .await
            .map_err(|e| self.russh(e))?;
        self.step("public key", result)
    }

    async fn password(
        &self,
        handle: &mut SshHandle,
        password: &str,
        allowed: &[MethodKind],
    ) -> Result<Step, SshError> {
        if allowed.contains(&MethodKind::Password) {
            let result = handle
                .authenticate_password(self.user, password)
                .await
                .map_err(|e| self.russh(e))?;
            return self.step("password", result);
        }
        keyboard_interactive(handle, self.user, password)
            .await
            .map_err(|e| match e {
                KbdError::Russh(e) => self.russh(e),
                KbdError::Refused(hint) => self.failed("password (keyboard-interactive)", hint),
            })
    }
}

enum KbdError {
    Russh(russh::Error),
    Refused(Option<String>),
}

async fn keyboard_interactive(
    handle: &mut SshHandle,
    user: &str,
    password: &str,
) -> Result<Step, KbdError> {
    let mut response = handle
        .authenticate_keyboard_interactive_start(user, None)
        .await
        .map_err(KbdError::Russh)?;
    let mut answered = false;
    for _ in 0..MAX_KBD_ROUNDS {
        match response {
            KeyboardInteractiveAuthResponse::Success => return Ok(Step::Done),
            KeyboardInteractiveAuthResponse::Failure {
                remaining_methods,
                partial_success: true,
            } => return Ok(Step::Partial(remaining_methods.iter().cloned().collect())),
            KeyboardInteractiveAuthResponse::Failure { .. } => return Err(KbdError::Refused(None)),
            KeyboardInteractiveAuthResponse::InfoRequest { prompts, .. } => {
                let answers = match prompts.len() {
                    0 => Vec::new(),
                    1 if !answered && !prompts[0].echo => {
                        answered = true;
                        vec![password.to_owned()]
                    }
                    n => {
                        return Err(KbdError::Refused(Some(format!(
                            "the server asks {n} question(s) beyond the password; tether answers \
                             only one password prompt"
                        ))));
                    }
                };
                response = handle
                    .authenticate_keyboard_interactive_respond(answers)
                    .await
                    .map_err(KbdError::Russh)?;
            }
        }
    }
    Err(KbdError::Refused(Some(
        "too many keyboard-interactive rounds".into(),
    )))
}
