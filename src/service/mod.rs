//! The flows. Each method parses nothing and speaks no HTTP: it takes domain
//! values, makes the decisions, and drives the store, the limiter and the
//! senders through their traits.
//!
//! `account` holds the service's own account flows, `apps` the generic API
//! of calling apps, `admin` the operator's routes; this file what they share.

mod account;
mod admin;
mod apps;
mod clients;
mod delivery;
pub mod diagnostics;
#[cfg(test)]
mod hijacking;
#[cfg(test)]
mod lockout;
#[cfg(test)]
mod mfa;
mod oauth;
#[cfg(test)]
mod oidc_provider;
#[cfg(test)]
mod oidc_registration;
#[cfg(test)]
mod probes;
#[cfg(test)]
mod rounds;
mod second_factor;
#[cfg(test)]
mod testkit;

pub use account::{LoginSession, Verified};
pub use admin::Activity;
pub use apps::{AppCode, SentCode};
pub use delivery::SendReport;
pub use oauth::{Authorized, ClientCredentials, Consent, GrantRequest, Tokens};
pub use second_factor::TotpEnrolment;

use crate::config::Config;
use crate::domain::audit::{Audit, Event, EventKind};
use crate::domain::channel::Channel;
use crate::domain::code::{digests_match, Code, CodeKey, CodeSpec, Pepper};
use crate::error::{ApiError, ApiResult};
use crate::ports::clock::Clock;
use crate::ports::human::HumanCheck;
use crate::ports::limits::{lane, CounterWrite, Counters, SendCount, SendPolicy};
use crate::ports::sealer::Sealer;
use crate::ports::signer::Signer;
use crate::ports::store::{Admitted, Consumed, Effect, NewCode, PendingCode, RenewedCode, Store};
use crate::providers::locale::Locale;
use crate::providers::mail::{Mailer, Message};
use crate::providers::text::Texter;
use crate::providers::turnstile::token_shape;
use crate::service::diagnostics::Diagnostics;
use std::cell::RefCell;

pub struct Service<'a, S, K, M, T, C> {
    pub cfg: &'a Config,
    pub store: S,
    pub counters: K,
    pub mailer: M,
    pub texter: T,
    pub clock: C,
    /// The request's security events, for the caller to store.
    pub audit: &'a Audit,
    /// Failures the flow absorbed, for the caller to log.
    pub diagnostics: &'a Diagnostics,
    /// Writes for the caller to make after the answer (`Later::write`).
    pub later: &'a Later,
    /// The language of the account flows' messages, from the request's
    /// `Accept-Language` (an app's send names its own `locale`).
    pub language: Locale,
    /// Turnstile's siteverify.
    pub humans: &'a dyn HumanCheck,
    /// The OpenID Provider's token signatures.
    pub signer: &'a dyn Signer,
    /// The authenticator secrets' encryption.
    pub sealer: &'a dyn Sealer,
}

/// The work of a request that its answer does not depend on, made after
/// the answer: the KV writes (the cooldown a delivered send starts), so
/// they add no round trip to it (a cooldown then starts a few milliseconds
/// later than the send, which KV's eventual consistency allows anyway; the
/// hourly caps in D1 stay exact); and the renewal of a verification code
/// after a right password on an unverified account, so that nothing in the
/// answer tells that the password was right.
#[derive(Debug, Default)]
pub struct Later {
    writes: RefCell<Vec<CounterWrite>>,
    renewals: RefCell<Vec<Renewal>>,
}

/// A renewed verification code and the mail that carries it: the mail goes
/// only if the address's cooldown is over (read, never started: the next
/// request would see it) and the code could be renewed (`Store::renew_code`).
#[derive(Debug, Clone)]
pub struct Renewal {
    pub code: RenewedCode,
    pub message: Message,
    pub policy: SendPolicy,
    /// The address's limit tag and the code's lane (`SendPolicy::cooldown`).
    pub tag: String,
    pub lane: String,
}

impl Later {
    fn push(&self, write: CounterWrite) {
        self.writes.borrow_mut().push(write);
    }

    fn renew(&self, renewal: Renewal) {
        self.renewals.borrow_mut().push(renewal);
    }

    pub fn take(&self) -> Vec<CounterWrite> {
        self.writes.take()
    }

    pub fn take_renewals(&self) -> Vec<Renewal> {
        self.renewals.take()
    }

    /// Renews each code and mails it, after the answer. A failure is
    /// recorded for the log: the answer is out, and it said nothing of it.
    pub async fn renew_codes(
        store: &impl Store,
        kv: &impl Counters,
        mailer: &impl Mailer,
        renewals: &[Renewal],
        diagnostics: &Diagnostics,
    ) {
        for r in renewals {
            match r.policy.cooldown(kv, &r.tag, &r.lane, r.code.now).await {
                // A code went out a moment ago, and it still works.
                Ok(Some(_)) => continue,
                Ok(None) => {}
                Err(e) => {
                    diagnostics.record("code_renewal_failed", format!("{e:?}"));
                    continue;
                }
            }
            match store.renew_code(&r.code).await {
                Ok(true) => {
                    if let Err(e) = mailer.send(&r.message).await {
                        diagnostics.record("renewed_code_mail_failed", format!("{e:?}"));
                    }
                }
                // Spent, expired, or the account changed since: nothing to say.
                Ok(false) => {}
                Err(e) => diagnostics.record("code_renewal_failed", format!("{e:?}")),
            }
        }
    }

    /// Makes `writes` (one, for a send), after the answer. The messages
    /// are out, so a failure is recorded for the log, never answered: the
    /// client must not send again.
    pub async fn write(kv: &impl Counters, writes: &[CounterWrite], diagnostics: &Diagnostics) {
        for write in writes {
            if let Err(e) = write.apply(kv).await {
                diagnostics.record("cooldown_write_failed", format!("{e:?}"));
            }
        }
    }
}

/// A mail the caller must deliver after answering, so that the answer's
/// timing does not depend on whether the address has an account.
pub type Deferred = Option<Message>;

/// A code to file: where, in what shape, for how long.
struct Issue<'k> {
    key: CodeKey<'k>,
    spec: CodeSpec,
    ttl_secs: u64,
    /// The password hash a verification code is bound to, when the one who
    /// asked for it holds that password (see `Pepper::bound_code_digest`).
    bound_to: Option<&'k str>,
}

/// What a right code proved, besides the address.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Proof {
    /// The code was bound to this password hash, still the account's.
    Password(String),
    /// Anyone could have asked for the code.
    AddressOnly,
}

/// What the guess's claim read of the address's account (core flows).
#[derive(Debug, Clone, Default)]
struct AccountSeen {
    id: Option<String>,
    /// Its password hash, '' without one.
    password_hash: String,
}

struct Issued {
    id: String,
    code: Code,
    expires_at: u64,
}

impl<S: Store, K: Counters, M: Mailer, T: Texter, C: Clock> Service<'_, S, K, M, T, C> {
    /// The Turnstile check of a send, when `required`: the request's
    /// `token` must be one siteverify accepts. Checked before anything is
    /// written or counted, so a bot's requests cost no send and no cap.
    pub async fn check_human(&self, token: Option<&str>, required: bool) -> ApiResult<()> {
        if !required {
            return Ok(());
        }
        self.cfg.turnstile()?;
        let token = token
            .filter(|t| token_shape(t))
            .ok_or(ApiError::TurnstileFailed)?;
        match self.humans.check(token).await? {
            true => Ok(()),
            false => Err(ApiError::TurnstileFailed),
        }
    }

    /// `check_human` for the account flows' sends: on with `TURNSTILE_SECRET`.
    pub async fn check_human_sender(&self, token: Option<&str>) -> ApiResult<()> {
        self.check_human(token, self.cfg.turnstile_on()).await
    }

    fn policy(&self) -> SendPolicy {
        SendPolicy {
            cooldown_secs: self.cfg.resend_cooldown_secs,
            per_scope: self.cfg.max_sends_per_hour,
            per_address: self.cfg.max_sends_per_address_per_hour,
        }
    }

    /// The pseudonym the send limits of `key`'s address are kept under: of
    /// the mailbox, so that `ann+1@` and `ann+2@` share ann's limits.
    fn limit_tag(&self, pepper: &Pepper, key: &CodeKey<'_>) -> String {
        match key.channel {
            Channel::Email => pepper.address_tag(&crate::domain::email::mailbox(key.address)),
            Channel::Sms | Channel::Whatsapp => pepper.address_tag(key.address),
        }
    }

    /// The seconds left of `key`'s cooldown, or `None` when a send may go.
    async fn cooldown(&self, tag: &str, key: &CodeKey<'_>, now: u64) -> ApiResult<Option<u64>> {
        self.policy()
            .cooldown(&self.counters, tag, &lane(key), now)
            .await
    }

    /// The hourly counters of a message to `key`'s address.
    fn send_count(
        &self,
        tag: &str,
        key: &CodeKey<'_>,
        key_quota: Option<u32>,
        now: u64,
    ) -> SendCount {
        self.policy().count(key.scope, tag, key_quota, now)
    }

    /// Starts `key`'s cooldown after a delivered send, once the answer
    /// has gone out (`Later`).
    fn start_cooldown(&self, tag: &str, key: &CodeKey<'_>, now: u64) {
        if let Some(write) = self.policy().cooldown_start(tag, &lane(key), now) {
            self.later.push(write);
        }
    }

    /// Checks `code` against the pending one and, if right, consumes it
    /// atomically together with the effect `unlock` builds from the proof
    /// and, for a code of the core flows, what was read of the address's
    /// account. What the effect did, as `Consumed::Applied` says.
    async fn redeem<'e>(
        &self,
        key: &CodeKey<'_>,
        code: &Code,
        unlock: impl FnOnce(Proof, AccountSeen) -> ApiResult<Effect<'e>>,
    ) -> ApiResult<Unlocked> {
        self.cfg.pepper()?;
        // The guess is counted before it is compared: one write, and a
        // burst of concurrent guesses gets no more comparisons than `max`.
        let pending = self
            .store
            .claim_attempt(key, self.cfg.otp_max_attempts)
            .await?;
        self.settle(key, code, pending, unlock).await
    }

    /// The rest of `redeem`, once the guess is counted: `pending` is the
    /// code filed under `key` with this guess included, if there is one.
    async fn settle<'e>(
        &self,
        key: &CodeKey<'_>,
        code: &Code,
        pending: Option<PendingCode>,
        unlock: impl FnOnce(Proof, AccountSeen) -> ApiResult<Effect<'e>>,
    ) -> ApiResult<Unlocked> {
        let pepper = self.cfg.pepper()?;
        let max = self.cfg.otp_max_attempts;
        let now = self.clock.now();
        let Some(pending) = pending else {
            self.audit_code(EventKind::CodeFailed, "no_pending_code", key);
            return Err(ApiError::InvalidCode);
        };
        // From here every event names the send the guess was about.
        let send = Some(pending.id.as_str());
        let failed = |outcome, error| {
            self.audit_of_send(EventKind::CodeFailed, outcome, key, send);
            Err(error)
        };
        if pending.attempts > max {
            return failed("too_many_attempts", ApiError::TooManyAttempts);
        }
        if pending.expires_at <= now {
            return failed("expired_code", ApiError::ExpiredCode);
        }
        // Both forms are always computed and compared, in constant time.
        let password = pending.account_password.unwrap_or_default();
        let account = AccountSeen {
            id: pending.account_id,
            password_hash: password.clone(),
        };
        // A test recipient's code is its fixed code, for every purpose;
        // where test recipients are off, it matches nothing.
        let expected = match pending.test && self.cfg.test_recipients_allowed {
            true => pepper.test_code_digest(key.scope, key.channel, key.address, code),
            false => pepper.code_digest(key, code),
        };
        let unbound = digests_match(&pending.digest, &expected);
        let bound = !password.is_empty()
            & digests_match(
                &pending.digest,
                &pepper.bound_code_digest(key, code, &password),
            );
        let proof = match (bound, unbound) {
            (true, _) => Proof::Password(password),
            (false, true) => Proof::AddressOnly,
            (false, false) => {
                if pending.attempts == max {
                    self.audit_of_send(EventKind::CodeBurned, "too_many_attempts", key, send);
                    return Err(ApiError::TooManyAttempts);
                }
                return failed(
                    "invalid_code",
                    ApiError::WrongCode {
                        attempts_left: max - pending.attempts,
                    },
                );
            }
        };
        let effect = match unlock(proof, account) {
            Ok(effect) => effect,
            Err(e) => return failed(e.code(), e),
        };
        match self.store.consume_code(&pending.id, effect, now).await? {
            Consumed::Applied {
                password_kept,
                admitted,
            } => {
                self.audit_of_send(EventKind::CodeVerified, "ok", key, send);
                Ok(Unlocked {
                    password_kept,
                    admitted,
                })
            }
            // A concurrent request consumed, replaced or burned it first.
            Consumed::Lost => failed("already_used", ApiError::InvalidCode),
        }
    }

    /// An event about the code filed under `key`.
    fn audit_code(&self, kind: EventKind, outcome: &'static str, key: &CodeKey<'_>) {
        self.audit_of_send(kind, outcome, key, None);
    }

    /// `audit_code`, naming the send (the code's id) when it is known.
    fn audit_of_send(
        &self,
        kind: EventKind,
        outcome: &'static str,
        key: &CodeKey<'_>,
        send: Option<&str>,
    ) {
        self.audit.record(self.code_event(kind, outcome, key, send));
    }

    fn code_event(
        &self,
        kind: EventKind,
        outcome: &'static str,
        key: &CodeKey<'_>,
        send: Option<&str>,
    ) -> Event {
        Event {
            scope: Some(key.scope.to_owned()),
            purpose: Some(key.purpose.to_owned()),
            channel: Some(key.channel),
            address_hash: self.address_hash(key.address),
            send_id: send.map(str::to_owned),
            ..Event::new(kind, outcome)
        }
    }

    /// The audit trail's pseudonym for an address; none without a pepper.
    fn address_hash(&self, address: &str) -> Option<String> {
        self.cfg.pepper().ok().map(|p| p.address_tag(address))
    }
}

/// What a right code's effect did (`Consumed::Applied`).
#[derive(Debug, Clone, Copy)]
struct Unlocked {
    /// A verification kept the account's password.
    password_kept: bool,
    /// What a code sign-in was given.
    admitted: Option<Admitted>,
}

/// A fresh code and the row that files it.
struct CodeRow {
    digest: String,
    expires_at: u64,
    now: u64,
}

impl CodeRow {
    fn code<'a>(&'a self, id: &'a str, issue: &Issue<'a>) -> NewCode<'a> {
        NewCode {
            id,
            key: issue.key,
            digest: &self.digest,
            now: self.now,
            expires_at: self.expires_at,
            test: false,
        }
    }
}

fn new_code(pepper: &Pepper, issue: &Issue<'_>, now: u64) -> ApiResult<(Issued, CodeRow)> {
    let code = Code::generate(issue.spec)?;
    let digest = match issue.bound_to {
        Some(hash) => pepper.bound_code_digest(&issue.key, &code, hash),
        None => pepper.code_digest(&issue.key, &code),
    };
    let row = CodeRow {
        digest,
        expires_at: now + issue.ttl_secs,
        now,
    };
    let issued = Issued {
        id: random_id()?,
        code,
        expires_at: row.expires_at,
    };
    Ok((issued, row))
}

/// 128 random bits, hex: ids that reveal no order or count.
pub fn random_id() -> ApiResult<String> {
    let mut b = [0u8; 16];
    getrandom::getrandom(&mut b).map_err(|e| ApiError::internal("random id: getrandom", e))?;
    Ok(hex::encode(b))
}
