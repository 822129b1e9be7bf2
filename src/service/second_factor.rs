//! Second factors: an authenticator app (TOTP, RFC 6238) enrolled by a
//! signed-in account, its recovery codes, and the second step of a sign-in.
//!
//! Every guess at a second factor is counted before it is compared, on the
//! account (`FactorStore::claim_factor_attempt`, the rules of
//! `domain::sign_in_budget`) and, at sign-in, on the ticket too
//! (`OTP_MAX_ATTEMPTS`): someone who has the password gets no more guesses
//! by asking for more tickets. A code is good once: the store accepts a
//! step only after the last one used, in the statement that spends it.

use super::{Deferred, LoginSession, Service};
use crate::domain::audit::{outcome, Event, EventKind};
use crate::domain::code::CORE_SCOPE;
use crate::domain::recovery_code::{RecoveryCode, SecondFactor};
use crate::domain::sealed::Sealed;
use crate::domain::session::{token_hash, Audience, Presented};
use crate::domain::totp::{TotpCode, TotpSecret};
use crate::error::{ApiError, ApiResult};
use crate::ports::clock::Clock;
use crate::ports::limits::Counters;
use crate::ports::store::{FactorClaim, FactorProof, FactorSummary, NewSession, Store, User};
use crate::providers::mail::{notice_message, Mailer, Notice};
use crate::providers::text::Texter;

/// How long a second step's ticket lives: time to open the app and type.
pub const TICKET_TTL_SECS: u64 = 300;

/// How recent the sign-in of a session that sets up an authenticator app
/// must be: a session token taken long ago cannot put its taker's app on
/// the account (which a password reset would not remove).
pub const FRESH_SIGN_IN_SECS: u64 = 600;

/// A pending authenticator, as the person scans or types it. `Debug`
/// hides the URI, which holds the secret.
pub struct TotpEnrolment {
    pub secret: TotpSecret,
    pub otpauth_uri: String,
}

impl std::fmt::Debug for TotpEnrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpEnrolment(<redacted>)")
    }
}

/// The associated data a secret is sealed with: its account, so a sealed
/// secret copied to another account's row opens nowhere.
fn sealed_for(user_id: &str) -> String {
    format!("totp:{user_id}")
}

fn unreadable() -> ApiError {
    ApiError::Unavailable(
        "an authenticator secret could not be opened: secret MFA_ENCRYPTION_KEY is not the one it was sealed with (see docs/security.md)".into(),
    )
}

impl<S: Store, K: Counters, M: Mailer, T: Texter, C: Clock> Service<'_, S, K, M, T, C> {
    async fn seal_secret(&self, user_id: &str, secret: &TotpSecret) -> ApiResult<String> {
        let key = self.cfg.totp_key()?;
        let mut nonce = [0u8; 12];
        getrandom::getrandom(&mut nonce).map_err(|e| ApiError::internal("nonce: getrandom", e))?;
        let aad = sealed_for(user_id);
        let ciphertext = self
            .sealer
            .seal(key, &nonce, secret.bytes(), aad.as_bytes())
            .await?;
        Ok(Sealed { nonce, ciphertext }.stored())
    }

    async fn open_secret(&self, user_id: &str, stored: &str) -> ApiResult<TotpSecret> {
        let key = self.cfg.totp_key()?;
        let sealed = Sealed::parse(stored).ok_or_else(unreadable)?;
        let aad = sealed_for(user_id);
        let plain = self
            .sealer
            .open(key, &sealed.nonce, &sealed.ciphertext, aad.as_bytes())
            .await?
            .ok_or_else(unreadable)?;
        TotpSecret::from_bytes(&plain).ok_or_else(unreadable)
    }

    fn enrolment(&self, user: &User, secret: TotpSecret) -> TotpEnrolment {
        let otpauth_uri = secret.otpauth_uri(&self.cfg.app_name, &user.email);
        TotpEnrolment {
            secret,
            otpauth_uri,
        }
    }

    fn audit_factor(&self, kind: EventKind, outcome: &'static str, user: &User, purpose: &str) {
        self.audit.record(Event {
            scope: Some(CORE_SCOPE.to_owned()),
            purpose: Some(purpose.to_owned()),
            address_hash: self.address_hash(&user.email),
            ..Event::new(kind, outcome)
        });
    }

    fn notice(&self, user: &User, notice: Notice, id: &str) -> Deferred {
        Some(notice_message(
            &self.cfg.app_name,
            &user.email,
            notice,
            format!("notice-{id}"),
        ))
    }

    /// The account of the session `token` if its sign-in is at most
    /// `FRESH_SIGN_IN_SECS` old: 403 `fresh_sign_in_required` if older,
    /// 401 if it is no session.
    pub async fn recently_signed_in(&self, token: Option<&str>, by: Presented) -> ApiResult<User> {
        let token = token.ok_or(ApiError::Unauthorized)?;
        let now = self.clock.now();
        let since = now.saturating_sub(FRESH_SIGN_IN_SECS);
        match self
            .store
            .session_since(&token_hash(token), now, since, by)
            .await?
        {
            Some(user) => Ok(user),
            None => {
                self.me(Some(token), by).await?;
                Err(ApiError::FreshSignInRequired)
            }
        }
    }

    /// The account's second factors, for its page and `/v1/me`.
    pub async fn second_factors(&self, user: &User) -> ApiResult<FactorSummary> {
        Ok(self.store.factor_summary(&user.id).await?.1)
    }

    /// `POST /v1/me/totp`: a new secret, pending until a first right code
    /// confirms it (replacing a pending one). 409 if one is confirmed.
    pub async fn begin_totp(&self, user: &User) -> ApiResult<TotpEnrolment> {
        self.cfg.totp_key()?;
        let secret = TotpSecret::generate()?;
        let sealed = self.seal_secret(&user.id, &secret).await?;
        if !self
            .store
            .begin_totp(&user.id, &sealed, self.clock.now())
            .await?
        {
            return Err(ApiError::TotpAlreadyEnabled);
        }
        Ok(self.enrolment(user, secret))
    }

    /// The pending secret, shown again while it is not confirmed (the
    /// enrolment page after a wrong first code); never once confirmed.
    pub async fn pending_totp(&self, user: &User) -> ApiResult<Option<TotpEnrolment>> {
        match self.store.factor_summary(&user.id).await?.0 {
            Some(f) if !f.confirmed => {
                let secret = self.open_secret(&user.id, &f.sealed).await?;
                Ok(Some(self.enrolment(user, secret)))
            }
            _ => Ok(None),
        }
    }

    /// A guess at the account's second factor, counted before it is
    /// compared; refused while the account is locked.
    async fn claim_factor(&self, user: &User) -> ApiResult<FactorClaim> {
        let claim = self
            .store
            .claim_factor_attempt(&user.id, self.cfg.sign_in_budget, self.clock.now())
            .await?;
        match claim.locked_for {
            Some(retry_after_secs) => Err(ApiError::SecondFactorLocked { retry_after_secs }),
            None => Ok(claim),
        }
    }

    /// The step `code` is right for, after the last one used, or
    /// `InvalidCode`.
    async fn accepted_step(
        &self,
        user: &User,
        sealed: &str,
        last_step: u64,
        code: &TotpCode,
    ) -> ApiResult<u64> {
        let secret = self.open_secret(&user.id, sealed).await?;
        secret
            .accepted_step(code, self.clock.now(), last_step)
            .ok_or(ApiError::InvalidCode)
    }

    /// Ten fresh recovery codes and their digests for `user`.
    fn recovery_codes(&self, user: &User) -> ApiResult<(Vec<RecoveryCode>, Vec<String>)> {
        let pepper = self.cfg.pepper()?;
        let codes = RecoveryCode::generate()?;
        let digests = codes.iter().map(|c| c.digest(pepper, &user.id)).collect();
        Ok((codes, digests))
    }

    /// `POST /v1/me/totp/confirm`: a first right code turns the pending
    /// authenticator on, and gives the recovery codes, shown this once.
    pub async fn confirm_totp(
        &self,
        user: &User,
        code: &TotpCode,
    ) -> ApiResult<(Vec<RecoveryCode>, Deferred)> {
        let result = self.confirm(user, code).await;
        self.audit_factor(EventKind::TotpEnabled, outcome(&result), user, "totp");
        result
    }

    async fn confirm(
        &self,
        user: &User,
        code: &TotpCode,
    ) -> ApiResult<(Vec<RecoveryCode>, Deferred)> {
        self.cfg.totp_key()?;
        let claim = self.claim_factor(user).await?;
        let factor = match claim.factor {
            Some(f) if f.confirmed => return Err(ApiError::TotpAlreadyEnabled),
            Some(f) => f,
            None => return Err(ApiError::TotpNotEnabled),
        };
        let step = self
            .accepted_step(user, &factor.sealed, factor.last_step, code)
            .await?;
        let (codes, digests) = self.recovery_codes(user)?;
        let now = self.clock.now();
        if !self
            .store
            .confirm_totp(&user.id, &factor.sealed, step, &digests, now)
            .await?
        {
            // Replaced or confirmed by a concurrent request meanwhile.
            return Err(ApiError::TotpNotEnabled);
        }
        let id = format!("totp-on-{}-{now}", user.id);
        Ok((codes, self.notice(user, Notice::TotpEnabled, &id)))
    }

    /// `POST /v1/me/totp/recovery-codes`: new recovery codes for a fresh
    /// code from the app; the old ones stop working.
    pub async fn replace_recovery_codes(
        &self,
        user: &User,
        code: &TotpCode,
    ) -> ApiResult<(Vec<RecoveryCode>, Deferred)> {
        let result = self.replace_codes(user, code).await;
        self.audit_factor(
            EventKind::RecoveryCodesReplaced,
            outcome(&result),
            user,
            "totp",
        );
        result
    }

    async fn replace_codes(
        &self,
        user: &User,
        code: &TotpCode,
    ) -> ApiResult<(Vec<RecoveryCode>, Deferred)> {
        self.cfg.totp_key()?;
        let claim = self.claim_factor(user).await?;
        let factor = claim
            .factor
            .filter(|f| f.confirmed)
            .ok_or(ApiError::TotpNotEnabled)?;
        let step = self
            .accepted_step(user, &factor.sealed, factor.last_step, code)
            .await?;
        let (codes, digests) = self.recovery_codes(user)?;
        let now = self.clock.now();
        if !self
            .store
            .replace_recovery_codes(&user.id, step, &digests, now)
            .await?
        {
            // A concurrent request used this step first.
            return Err(ApiError::InvalidCode);
        }
        let id = format!("codes-{}-{now}", user.id);
        Ok((codes, self.notice(user, Notice::RecoveryCodesReplaced, &id)))
    }

    /// `DELETE /v1/me/totp`: a fresh code from the app, or a recovery
    /// code, turns the second factor off; the owner is told by mail.
    pub async fn remove_totp(&self, user: &User, proof: &SecondFactor) -> ApiResult<Deferred> {
        let result = self.remove(user, proof).await;
        self.audit_factor(
            EventKind::TotpDisabled,
            outcome(&result),
            user,
            proof.method(),
        );
        result
    }

    async fn remove(&self, user: &User, proof: &SecondFactor) -> ApiResult<Deferred> {
        self.cfg.totp_key()?;
        let pepper = self.cfg.pepper()?;
        let claim = self.claim_factor(user).await?;
        let factor = claim
            .factor
            .filter(|f| f.confirmed)
            .ok_or(ApiError::TotpNotEnabled)?;
        let digest;
        let spent = match proof {
            SecondFactor::Totp(code) => FactorProof::Step(
                self.accepted_step(user, &factor.sealed, factor.last_step, code)
                    .await?,
            ),
            SecondFactor::Recovery(code) => {
                digest = code.digest(pepper, &user.id);
                FactorProof::Recovery(&digest)
            }
        };
        let now = self.clock.now();
        if !self.store.remove_totp(&user.id, spent, now).await? {
            return Err(ApiError::InvalidCode);
        }
        if let FactorProof::Recovery(_) = spent {
            self.audit_factor(EventKind::RecoveryCodeUsed, "ok", user, "totp_disabled");
        }
        let id = format!("totp-off-{}-{now}", user.id);
        Ok(self.notice(user, Notice::TotpDisabled, &id))
    }

    /// `POST /v1/login/mfa`: the second step of a sign-in whose first
    /// factor was right, with the ticket it was given, by the same kind
    /// of caller (`to`: an app's ticket is no browser's). The session, and
    /// a mail to the owner when a recovery code was spent.
    pub async fn login_mfa(
        &self,
        mfa_token: &str,
        proof: &SecondFactor,
        to: Audience,
    ) -> ApiResult<(LoginSession, Deferred)> {
        let pepper = self.cfg.pepper()?;
        self.cfg.totp_key()?;
        let now = self.clock.now();
        let max = self.cfg.otp_max_attempts;
        let ticket_hash = token_hash(mfa_token);
        let ticket = self
            .store
            .claim_ticket_attempt(&ticket_hash, to.as_str(), max, self.cfg.sign_in_budget, now)
            .await?
            .ok_or(ApiError::MfaTokenInvalid)?;
        let user = &ticket.user;
        let result = async {
            if ticket.attempts > max {
                return Err(ApiError::TooManyAttempts);
            }
            if let Some(retry_after_secs) = ticket.claim.locked_for {
                return Err(ApiError::SecondFactorLocked { retry_after_secs });
            }
            // The factor was turned off since the first step.
            let factor = ticket
                .claim
                .factor
                .as_ref()
                .filter(|f| f.confirmed)
                .ok_or(ApiError::MfaTokenInvalid)?;
            let wrong = || match ticket.attempts >= max {
                true => ApiError::TooManyAttempts,
                false => ApiError::WrongCode {
                    attempts_left: max - ticket.attempts,
                },
            };
            let digest;
            let spent = match proof {
                SecondFactor::Totp(code) => {
                    match self
                        .accepted_step(user, &factor.sealed, factor.last_step, code)
                        .await
                    {
                        Ok(step) => FactorProof::Step(step),
                        Err(ApiError::InvalidCode) => return Err(wrong()),
                        Err(e) => return Err(e),
                    }
                }
                SecondFactor::Recovery(code) => {
                    digest = code.digest(pepper, &user.id);
                    FactorProof::Recovery(&digest)
                }
            };
            let (session, stored) = self.new_session(now, to, &amr_with_second(&ticket.amr))?;
            let stored = NewSession {
                ticket: None,
                ..stored
            };
            let left = self
                .store
                .complete_ticket(&ticket_hash, spent, &stored, now)
                .await?
                .ok_or_else(wrong)?;
            let session = LoginSession {
                ticket: None,
                ..session
            };
            Ok((session, matches!(spent, FactorProof::Recovery(_)), left))
        }
        .await;
        match &result {
            Ok(_) => self.audit_factor(EventKind::LoginOk, "ok", user, proof.method()),
            Err(e) => self.audit_factor(EventKind::MfaFailed, e.code(), user, proof.method()),
        }
        let (session, recovery, left) = result?;
        let mail = match recovery {
            true => {
                self.audit_factor(EventKind::RecoveryCodeUsed, "ok", user, "sign_in");
                let id = format!("recovery-{}-{now}-{left}", user.id);
                self.notice(user, Notice::RecoveryCodeUsed { left }, &id)
            }
            false => None,
        };
        Ok((session, mail))
    }
}

/// The `amr` of a sign-in completed by a second factor (RFC 8176): the
/// first factor's, `otp` (the app's code or a recovery code) and `mfa`.
fn amr_with_second(first: &str) -> String {
    let mut amr: Vec<&str> = first.split_whitespace().collect();
    for more in ["otp", "mfa"] {
        if !amr.contains(&more) {
            amr.push(more);
        }
    }
    amr.join(" ")
}

#[cfg(test)]
mod tests {
    use super::amr_with_second;

    #[test]
    fn the_amr_names_both_factors_once() {
        assert_eq!(amr_with_second("pwd"), "pwd otp mfa");
        assert_eq!(amr_with_second("otp"), "otp mfa");
    }
}
