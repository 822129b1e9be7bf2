//! The flows of the core API. Each method parses nothing and speaks no
//! HTTP: it takes domain values, makes the decisions, and drives the store,
//! the limiter and the mailer through their traits.

use crate::clock::{rfc3339, Clock};
use crate::code::{digests_match, Code, Pepper};
use crate::config::Config;
use crate::email::Email;
use crate::error::{ApiError, ApiResult};
use crate::limits::{Counters, SendDecision, SendPolicy};
use crate::mail::{account_exists_message, code_message, Mailer, Message};
use crate::password::{Hasher, Password, Verdict};
use crate::purpose::Purpose;
use crate::session::{token_hash, Token};
use crate::store::{Cleanup, Effect, NewCode, Stats, Store, User};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub struct Service<'a, S, K, M, C> {
    pub cfg: &'a Config,
    pub store: S,
    pub counters: K,
    pub mailer: M,
    pub clock: C,
}

#[derive(Debug)]
pub struct LoginSession {
    pub token: Token,
    pub expires_at: String,
}

/// A mail the caller must deliver after answering, so that the answer's
/// timing does not depend on whether the address has an account.
pub type Deferred = Option<Message>;

impl<S: Store, K: Counters, M: Mailer, C: Clock> Service<'_, S, K, M, C> {
    fn policy(&self) -> SendPolicy {
        SendPolicy {
            cooldown_secs: self.cfg.resend_cooldown_secs,
            max_per_hour: self.cfg.max_sends_per_hour,
        }
    }

    fn hasher(&self) -> Hasher {
        Hasher::new(self.cfg.hash_params)
    }

    fn ttl(&self, purpose: Purpose) -> u64 {
        match purpose {
            Purpose::VerifyEmail => self.cfg.otp_ttl_secs,
            Purpose::ResetPassword => self.cfg.reset_otp_ttl_secs,
        }
    }

    pub async fn register(&self, email: &Email, password: &Password) -> ApiResult<()> {
        let pepper = self.cfg.pepper()?;
        // Hashed before we know whether the account exists: both branches cost the same.
        let hash = self.hasher().hash(password)?;
        let now = self.clock.now();
        let created = self
            .store
            .upsert_unverified_user(&random_id()?, email, &hash, now)
            .await?;
        let tag = pepper.address_tag(email.as_str());
        if self
            .policy()
            .check(&self.counters, &tag, Purpose::VerifyEmail, now)
            .await?
            != SendDecision::Allowed
        {
            return Ok(());
        }
        let message = if created {
            self.issue_code(pepper, Purpose::VerifyEmail, email, now)
                .await?
        } else {
            account_exists_message(self.cfg, email.as_str(), format!("notice-{}", random_id()?))
        };
        self.mailer.send(&message).await?;
        self.policy()
            .record(&self.counters, &tag, Purpose::VerifyEmail, now)
            .await
    }

    pub async fn verify_email(&self, email: &Email, code: &Code) -> ApiResult<()> {
        self.redeem(Purpose::VerifyEmail, email, code, || {
            Ok(Effect::MarkVerified { email })
        })
        .await
    }

    /// `/v1/resend`: within the cooldown, 429 whether or not the account exists.
    pub async fn resend(&self, email: &Email, purpose: Purpose) -> ApiResult<Deferred> {
        self.request_code(email, purpose, true).await
    }

    /// `/v1/password-reset`: always 202; within the limits nothing is sent.
    pub async fn password_reset(&self, email: &Email) -> ApiResult<Deferred> {
        self.request_code(email, Purpose::ResetPassword, false)
            .await
    }

    pub async fn confirm_password_reset(
        &self,
        email: &Email,
        code: &Code,
        new_password: &Password,
    ) -> ApiResult<()> {
        self.redeem(Purpose::ResetPassword, email, code, || {
            let password_hash = self.hasher().hash(new_password)?;
            Ok(Effect::ResetPassword {
                email,
                password_hash,
            })
        })
        .await
    }

    pub async fn login(&self, email: &Email, password: &Password) -> ApiResult<LoginSession> {
        let pepper = self.cfg.pepper()?;
        let hasher = self.hasher();
        let Some(user) = self.store.user_by_email(email).await? else {
            hasher.burn(password)?;
            return Err(ApiError::InvalidCredentials);
        };
        let Verdict::Match { needs_rehash } = hasher.verify(password, &user.password_hash)? else {
            return Err(ApiError::InvalidCredentials);
        };
        let now = self.clock.now();
        if needs_rehash {
            let fresh = hasher.hash(password)?;
            self.store.set_password_hash(&user.id, &fresh, now).await?;
        }
        if !user.verified {
            let tag = pepper.address_tag(email.as_str());
            if self
                .policy()
                .check(&self.counters, &tag, Purpose::VerifyEmail, now)
                .await?
                == SendDecision::Allowed
            {
                let message = self
                    .issue_code(pepper, Purpose::VerifyEmail, email, now)
                    .await?;
                self.mailer.send(&message).await?;
                self.policy()
                    .record(&self.counters, &tag, Purpose::VerifyEmail, now)
                    .await?;
            }
            return Err(ApiError::EmailNotVerified);
        }
        let token = Token::generate()?;
        let expires_at = now + self.cfg.session_ttl_secs;
        self.store
            .create_session(&token_hash(token.expose()), &user.id, now, expires_at)
            .await?;
        Ok(LoginSession {
            token,
            expires_at: rfc3339(expires_at),
        })
    }

    pub async fn me(&self, token: Option<&str>) -> ApiResult<User> {
        let token = token.ok_or(ApiError::Unauthorized)?;
        self.store
            .session_user(&token_hash(token), self.clock.now())
            .await?
            .ok_or(ApiError::Unauthorized)
    }

    pub async fn logout(&self, token: Option<&str>) -> ApiResult<()> {
        let token = token.ok_or(ApiError::Unauthorized)?;
        match self.store.delete_session(&token_hash(token)).await? {
            true => Ok(()),
            false => Err(ApiError::Unauthorized),
        }
    }

    pub async fn admin_stats(&self, bearer: Option<&str>) -> ApiResult<Stats> {
        let expected = self.cfg.admin_token()?;
        let given = bearer.ok_or(ApiError::Unauthorized)?;
        // Hashing first makes the comparison independent of both lengths.
        let same: bool = Sha256::digest(given.as_bytes())
            .ct_eq(&Sha256::digest(expected.as_bytes()))
            .into();
        if !same {
            return Err(ApiError::Unauthorized);
        }
        self.store.stats(self.clock.now()).await
    }

    pub async fn cleanup(&self) -> ApiResult<Cleanup> {
        let now = self.clock.now();
        self.store
            .cleanup(now, now.saturating_sub(self.cfg.unverified_user_ttl_secs))
            .await
    }

    /// Shared by resend and password reset. Known and unknown addresses go
    /// through the same limiter reads and writes and the same D1 write (an
    /// unknown address gets a code nobody is told), so only the deferred
    /// mail differs, and it is sent after the answer.
    async fn request_code(
        &self,
        email: &Email,
        purpose: Purpose,
        cooldown_is_error: bool,
    ) -> ApiResult<Deferred> {
        let pepper = self.cfg.pepper()?;
        let now = self.clock.now();
        let tag = pepper.address_tag(email.as_str());
        let decision = self
            .policy()
            .check(&self.counters, &tag, purpose, now)
            .await?;
        if let Some(retry_after_secs) = decision.retry_after() {
            return match cooldown_is_error {
                true => Err(ApiError::RateLimited { retry_after_secs }),
                false => Ok(None),
            };
        }
        let user = self.store.user_by_email(email).await?;
        let wanted = match (purpose, &user) {
            (Purpose::VerifyEmail, Some(u)) => !u.verified,
            (Purpose::ResetPassword, Some(_)) => true,
            (_, None) => false,
        };
        let message = self.issue_code(pepper, purpose, email, now).await?;
        self.policy()
            .record(&self.counters, &tag, purpose, now)
            .await?;
        Ok(wanted.then_some(message))
    }

    async fn issue_code(
        &self,
        pepper: &Pepper,
        purpose: Purpose,
        email: &Email,
        now: u64,
    ) -> ApiResult<Message> {
        let code = Code::generate(self.cfg.otp_length)?;
        let id = random_id()?;
        let ttl = self.ttl(purpose);
        let digest = pepper.code_digest(purpose, email.as_str(), &code);
        let new = NewCode {
            id: &id,
            purpose,
            address: email.as_str(),
            digest: &digest,
            now,
            expires_at: now + ttl,
        };
        self.store.issue_code(&new, ttl).await?;
        Ok(code_message(
            self.cfg,
            email.as_str(),
            purpose,
            code.expose(),
            ttl,
            format!("code-{id}"),
        ))
    }

    /// Checks `code` against the pending one and, if right, consumes it
    /// atomically together with the effect `unlock` builds.
    async fn redeem<'e>(
        &self,
        purpose: Purpose,
        email: &'e Email,
        code: &Code,
        unlock: impl FnOnce() -> ApiResult<Effect<'e>>,
    ) -> ApiResult<()> {
        let pepper = self.cfg.pepper()?;
        let max = self.cfg.otp_max_attempts;
        let now = self.clock.now();
        let pending = self
            .store
            .pending_code(purpose, email.as_str())
            .await?
            .ok_or(ApiError::InvalidCode)?;
        if pending.attempts >= max {
            return Err(ApiError::TooManyAttempts);
        }
        if pending.expires_at <= now {
            return Err(ApiError::ExpiredCode);
        }
        if !digests_match(
            &pending.digest,
            &pepper.code_digest(purpose, email.as_str(), code),
        ) {
            return match self.store.record_failure(&pending.id, max).await? {
                Some(n) if n < max => Err(ApiError::InvalidCode),
                // This guess used up the budget, or a concurrent one did.
                _ => Err(ApiError::TooManyAttempts),
            };
        }
        let effect = unlock()?;
        match self
            .store
            .consume_code(&pending.id, max, effect, now)
            .await?
        {
            true => Ok(()),
            // A concurrent request consumed, replaced or burned it first.
            false => Err(ApiError::InvalidCode),
        }
    }
}

/// 128 random bits, hex: ids that reveal no order or count.
pub fn random_id() -> ApiResult<String> {
    let mut b = [0u8; 16];
    getrandom::getrandom(&mut b).map_err(|e| ApiError::Internal(format!("getrandom: {e}")))?;
    Ok(hex::encode(b))
}
