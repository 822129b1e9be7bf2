//! The flows. Each method parses nothing and speaks no HTTP: it takes domain
//! values, makes the decisions, and drives the store, the limiter and the
//! senders through their traits.
//!
//! `account` holds the service's own account flows, `apps` the generic API
//! of calling apps, `admin` the operator's routes; this file what they share.

mod account;
mod admin;
mod apps;
#[cfg(test)]
mod testkit;

pub use account::LoginSession;
pub use apps::{AppCode, SentCode};

use crate::audit::{Audit, Event, EventKind};
use crate::clock::Clock;
use crate::code::{digests_match, Code, CodeKey, CodeSpec, Pepper};
use crate::config::Config;
use crate::error::{ApiError, ApiResult};
use crate::limits::{lane, Counters, Permit, SendDecision, SendPolicy};
use crate::mail::{Mailer, Message};
use crate::store::{Effect, NewCode, Store};
use crate::text::Texter;

pub struct Service<'a, S, K, M, T, C> {
    pub cfg: &'a Config,
    pub store: S,
    pub counters: K,
    pub mailer: M,
    pub texter: T,
    pub clock: C,
    /// The request's security events, for the caller to store.
    pub audit: &'a Audit,
}

/// A mail the caller must deliver after answering, so that the answer's
/// timing does not depend on whether the address has an account.
pub type Deferred = Option<Message>;

/// A code to file: where, in what shape, for how long.
struct Issue<'k> {
    key: CodeKey<'k>,
    spec: CodeSpec,
    ttl_secs: u64,
}

struct Issued {
    id: String,
    code: Code,
    expires_at: u64,
}

impl<S: Store, K: Counters, M: Mailer, T: Texter, C: Clock> Service<'_, S, K, M, T, C> {
    fn policy(&self) -> SendPolicy {
        SendPolicy {
            cooldown_secs: self.cfg.resend_cooldown_secs,
            max_per_hour: self.cfg.max_sends_per_hour,
        }
    }

    /// Stores a fresh code in place of any pending one under the same key.
    async fn issue_code(&self, pepper: &Pepper, issue: &Issue<'_>, now: u64) -> ApiResult<Issued> {
        let code = Code::generate(issue.spec)?;
        let id = random_id()?;
        let digest = pepper.code_digest(&issue.key, &code);
        let expires_at = now + issue.ttl_secs;
        let new = NewCode {
            id: &id,
            key: issue.key,
            digest: &digest,
            now,
            expires_at,
        };
        self.store.issue_code(&new, issue.ttl_secs).await?;
        Ok(Issued {
            id,
            code,
            expires_at,
        })
    }

    /// The address limits of a send, as a decision the flow acts on.
    async fn check_send(
        &self,
        pepper: &Pepper,
        key: &CodeKey<'_>,
        now: u64,
    ) -> ApiResult<(String, SendDecision)> {
        let tag = pepper.address_tag(key.address);
        let decision = self
            .policy()
            .check(&self.counters, &tag, &lane(key), now)
            .await?;
        Ok((tag, decision))
    }

    async fn record_send(
        &self,
        tag: &str,
        key: &CodeKey<'_>,
        now: u64,
        permit: Permit,
    ) -> ApiResult<()> {
        self.policy()
            .record(&self.counters, tag, &lane(key), now, permit)
            .await
    }

    /// Checks `code` against the pending one and, if right, consumes it
    /// atomically together with the effect `unlock` builds.
    async fn redeem<'e>(
        &self,
        key: &CodeKey<'_>,
        code: &Code,
        unlock: impl FnOnce() -> ApiResult<Effect<'e>>,
    ) -> ApiResult<()> {
        let pepper = self.cfg.pepper()?;
        let max = self.cfg.otp_max_attempts;
        let now = self.clock.now();
        let failed = |outcome, error| {
            self.audit_code(EventKind::CodeFailed, outcome, key);
            Err(error)
        };
        // The guess is counted before it is compared: one write, and a
        // burst of concurrent guesses gets no more comparisons than `max`.
        let Some(pending) = self.store.claim_attempt(key, max).await? else {
            return failed("no_pending_code", ApiError::InvalidCode);
        };
        if pending.attempts > max {
            return failed("too_many_attempts", ApiError::TooManyAttempts);
        }
        if pending.expires_at <= now {
            return failed("expired_code", ApiError::ExpiredCode);
        }
        if !digests_match(&pending.digest, &pepper.code_digest(key, code)) {
            if pending.attempts == max {
                self.audit_code(EventKind::CodeBurned, "too_many_attempts", key);
                return Err(ApiError::TooManyAttempts);
            }
            return failed("invalid_code", ApiError::InvalidCode);
        }
        let effect = match unlock() {
            Ok(effect) => effect,
            Err(e) => return failed(e.code(), e),
        };
        match self
            .store
            .consume_code(&pending.id, max, effect, now)
            .await?
        {
            true => {
                self.audit_code(EventKind::CodeVerified, "ok", key);
                Ok(())
            }
            // A concurrent request consumed, replaced or burned it first.
            false => failed("already_used", ApiError::InvalidCode),
        }
    }

    /// An event about the code filed under `key`.
    fn audit_code(&self, kind: EventKind, outcome: &'static str, key: &CodeKey<'_>) {
        self.audit.record(Event {
            scope: Some(key.scope.to_owned()),
            purpose: Some(key.purpose.to_owned()),
            channel: Some(key.channel),
            address_hash: self.address_hash(key.address),
            ..Event::new(kind, outcome)
        });
    }

    /// The audit trail's pseudonym for an address; none without a pepper.
    fn address_hash(&self, address: &str) -> Option<String> {
        self.cfg.pepper().ok().map(|p| p.address_tag(address))
    }
}

/// 128 random bits, hex: ids that reveal no order or count.
pub fn random_id() -> ApiResult<String> {
    let mut b = [0u8; 16];
    getrandom::getrandom(&mut b).map_err(|e| ApiError::Internal(format!("getrandom: {e}")))?;
    Ok(hex::encode(b))
}
