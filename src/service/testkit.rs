//! In-memory stand-ins for the service's traits, for native tests of the
//! flows' decisions. The D1 store itself is proven end to end.
//!
//! Every store and KV call goes through `Faults`, which records the
//! sequence of calls and can fail the Nth one; the store can also hold a
//! flow after a named call (`Gate`), so that a test can run another flow
//! in between, as two concurrent requests would interleave.

use super::{Later, Service};
use crate::config::Config;
use crate::domain::api_key::{ApiKey, Channels, KeyOptions, NewApiKey};
use crate::domain::audit::{Audit, Event, EventFilter, EventPage, StoredEvent};
use crate::domain::channel::Channel;
use crate::domain::client_registration::RegistrationCaps;
use crate::domain::code::{app_scope, Code, CodeKey, CORE_SCOPE};
use crate::domain::email::Email;
use crate::domain::jwk::SigningKey;
use crate::domain::oidc_client::Client;
use crate::domain::recovery_code::RecoveryCode;
use crate::domain::sealed::SealKey;
use crate::domain::session::{Audience, Presented};
use crate::domain::sign_in_budget::{FailureBudget, Failures};
use crate::domain::test_recipient::TestRecipient;
use crate::domain::totp::{TotpCode, TotpSecret};
use crate::error::{ApiError, ApiResult};
use crate::ports::clock::Clock;
use crate::ports::human::HumanCheck;
use crate::ports::limits::{Counters, SendCount};
use crate::ports::sealer::Sealer;
use crate::ports::signer::Signer;
use crate::ports::store::{
    AccountStore, Admitted, AppStore, AuditStore, Cleanup, ClientProof, ClientStore, Consumed,
    DeliveryStore, Effect, FactorClaim, FactorProof, FactorStore, FactorSummary, Filed, FiledCode,
    Grant, GrantStore, NewAuthCode, NewCode, NewSession, PasswordAttempt, PasswordLookup,
    PasswordStart, PendingCode, Redeemed, Redemption, Registered, Registration, RenewedCode,
    Requested, Revoked, Rotated, Rotation, SendEvent, SendRecord, SendStats, SeriesPoint,
    SessionStore, Stats, TestRecipientPut, TicketClaim, TotpFactor, User, UserStats,
};
use crate::providers::locale::Locale;
use crate::providers::mail::{Mailer, Message};
use crate::providers::text::{TextChannel, TextMessage, Texter};
use crate::service::diagnostics::Diagnostics;
use futures_util::future::LocalBoxFuture;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

type CodeId = (String, &'static str, String, String);

fn code_id(k: &CodeKey<'_>) -> CodeId {
    (
        k.scope.into(),
        k.channel.as_str(),
        k.purpose.into(),
        k.address.into(),
    )
}

/// What a call crosses the network to: in production, a round trip each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    D1,
    Kv,
    /// A mail API, Twilio: the delivery.
    Outbound,
}

/// One call to D1, KV or a provider, and the round it went out in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Traced {
    pub round: usize,
    pub on: Resource,
    pub op: &'static str,
}

/// Every call the flows make to D1, KV and the providers, grouped into
/// rounds: a call that starts while another is in flight (awaited together
/// with `join`) shares its round; one that starts after the others ended
/// begins the next. With `concurrent` on, each call yields once before it
/// completes, as a real round trip would, so that joined calls overlap.
#[derive(Default)]
pub struct Rounds {
    pub concurrent: Cell<bool>,
    in_flight: Cell<usize>,
    round: Cell<usize>,
    calls: RefCell<Vec<Traced>>,
}

impl Rounds {
    async fn call(&self, on: Resource, op: &'static str) -> InFlight<'_> {
        if self.in_flight.get() == 0 {
            self.round.set(self.round.get() + 1);
        }
        self.in_flight.set(self.in_flight.get() + 1);
        self.calls.borrow_mut().push(Traced {
            round: self.round.get(),
            on,
            op,
        });
        let call = InFlight(self);
        if self.concurrent.get() {
            YieldOnce(false).await;
        }
        call
    }

    /// The calls since the last `take`; the next call starts a new round.
    pub fn take(&self) -> Vec<Traced> {
        self.calls.take()
    }
}

/// A call in flight; it ends when dropped, at the end of the adapter's method.
pub struct InFlight<'a>(&'a Rounds);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.set(self.0.in_flight.get() - 1);
    }
}

struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match std::mem::replace(&mut self.0, true) {
            true => Poll::Ready(()),
            false => {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }
}

/// The calls the flows make to D1 and KV, in order, and the one to fail.
#[derive(Default)]
pub struct Faults {
    calls: RefCell<Vec<&'static str>>,
    fail_at: Cell<Option<usize>>,
    pub rounds: Rc<Rounds>,
}

impl Faults {
    /// One call to `on`: counted, failed if it is the one to fail, traced.
    async fn call(&self, on: Resource, op: &'static str) -> ApiResult<InFlight<'_>> {
        self.tick(op)?;
        Ok(self.rounds.call(on, op).await)
    }

    fn tick(&self, op: &'static str) -> ApiResult<()> {
        let mut calls = self.calls.borrow_mut();
        calls.push(op);
        match self.fail_at.get() == Some(calls.len()) {
            true => Err(ApiError::StorageUnavailable(format!(
                "injected failure of {op}"
            ))),
            false => Ok(()),
        }
    }

    /// Fails the `n`th call from now (1-based); forgets the calls so far.
    pub fn fail_call(&self, n: usize) {
        self.calls.borrow_mut().clear();
        self.fail_at.set(Some(n));
    }

    /// The calls since the last `take` or `fail_call`.
    pub fn take(&self) -> Vec<&'static str> {
        self.fail_at.set(None);
        self.calls.take()
    }
}

/// Holds a flow after the store call named `after`, until `release`.
#[derive(Default)]
pub struct Gate {
    after: Cell<Option<&'static str>>,
    held: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Gate {
    pub fn hold_after(&self, op: &'static str) {
        self.after.set(Some(op));
    }

    pub fn is_holding(&self) -> bool {
        self.held.get()
    }

    pub fn release(&self) {
        self.held.set(false);
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    async fn pass(&self, op: &'static str) {
        if self.after.get() == Some(op) {
            self.after.set(None);
            self.held.set(true);
            Held(self).await
        }
    }
}

struct Held<'a>(&'a Gate);

impl Future for Held<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.0.held.get() {
            true => {
                *self.0.waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
            false => Poll::Ready(()),
        }
    }
}

/// Polls a future once, as a runtime would before it has to wait.
pub fn poll_once<F: Future>(f: Pin<&mut F>) -> Poll<F::Output> {
    f.poll(&mut Context::from_waker(Waker::noop()))
}

/// What filing a code does to a live code under the same key (as the D1
/// store's `OnLive`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnLive {
    Replace,
    KeepClock,
    Keep,
}

/// Mirrors the D1 store's semantics closely enough to test decisions.
#[derive(Default)]
pub struct MemoryStore {
    pub users: RefCell<HashMap<String, User>>,
    pub codes: RefCell<HashMap<CodeId, (PendingCode, u64)>>,
    /// Sessions by token hash: (account id, expiry, `issued_to` as D1 stores it).
    pub sessions: RefCell<HashMap<String, (String, u64, String)>>,
    pub keys: RefCell<Vec<(String, ApiKey)>>,
    /// OpenID Connect clients, oldest first, with their secrets' hashes.
    pub oidc_clients: RefCell<Vec<(Client, Option<String>)>>,
    /// Who registered each self-registered client, by client id.
    pub registered_from: RefCell<HashMap<String, String>>,
    pub events: RefCell<Vec<StoredEvent>>,
    /// The unix time of each of `events`, for the chart's buckets.
    pub event_times: RefCell<Vec<u64>>,
    /// When and how each session's sign-in was made (`created_at`, `amr`).
    pub sign_ins: RefCell<HashMap<String, (u64, String)>>,
    /// Authorization codes by hash.
    pub oauth_codes: RefCell<HashMap<String, StoredAuthCode>>,
    /// Grants by id (their account as it was when they were made).
    pub grants: RefCell<HashMap<String, StoredGrant>>,
    /// Refresh tokens by hash: (grant id, expiry, used).
    pub refresh_tokens: RefCell<HashMap<String, (String, u64, bool)>>,
    /// Send counts by (counter, hour).
    pub counts: RefCell<HashMap<(String, u64), u32>>,
    /// Test recipients: (key id, recipient, fixed code's digest).
    pub test_recipients: RefCell<Vec<(String, TestRecipient, String)>>,
    /// Failed password sign-ins by address pseudonym.
    pub failures: RefCell<HashMap<String, Failures>>,
    /// The addresses of contested unverified accounts (`users.contested`).
    pub contested: RefCell<HashSet<String>>,
    /// Authenticators by account id, with the account's second-factor
    /// failures (`totp_factors`).
    pub totp: RefCell<HashMap<String, (TotpFactor, Failures)>>,
    /// Recovery codes: (account id, digest, used).
    pub recovery_codes: RefCell<Vec<(String, String, bool)>>,
    /// Second-step tickets by hash.
    pub tickets: RefCell<HashMap<String, StoredTicket>>,
    pub faults: Rc<Faults>,
    pub gate: Gate,
}

/// A second-step ticket as D1 keeps it.
#[derive(Debug, Clone)]
pub struct StoredTicket {
    pub user_id: String,
    pub issued_to: String,
    pub amr: String,
    pub attempts: u32,
    pub expires_at: u64,
}

/// An authorization code as D1 keeps it.
#[derive(Debug, Clone)]
pub struct StoredAuthCode {
    pub client_id: String,
    pub session_hash: String,
    pub user_id: String,
    pub redirect_uri: String,
    pub challenge: Option<String>,
    pub nonce: Option<String>,
    pub scope: String,
    pub resource: Option<String>,
    pub auth_time: u64,
    pub amr: String,
    pub expires_at: u64,
    /// Set by the first redemption, with the grant it made, if any.
    pub used: bool,
    pub grant_id: Option<String>,
}

/// A grant as D1 keeps it.
#[derive(Debug, Clone)]
pub struct StoredGrant {
    pub client_id: String,
    pub user: User,
    pub scope: String,
    pub resource: Option<String>,
    pub nonce: Option<String>,
    pub auth_time: u64,
    pub amr: String,
    pub expires_at: u64,
}

impl MemoryStore {
    fn note_sign_in(&self, session: &NewSession) {
        self.sign_ins.borrow_mut().insert(
            session.token_hash.clone(),
            (session.now, session.amr.clone()),
        );
    }

    /// Whether the account has a confirmed authenticator.
    fn has_second_factor(&self, user_id: &str) -> bool {
        self.totp
            .borrow()
            .get(user_id)
            .is_some_and(|(f, _)| f.confirmed)
    }

    /// A right first factor: the session, or its ticket if the account
    /// has a second factor (`edge::d1`'s `admit_statements`).
    fn admit(&self, user_id: &str, session: &NewSession) -> Option<Admitted> {
        if self.has_second_factor(user_id) {
            let t = session.ticket.as_ref()?;
            self.tickets.borrow_mut().insert(
                t.token_hash.clone(),
                StoredTicket {
                    user_id: user_id.into(),
                    issued_to: session.issued_to.as_str().into(),
                    amr: session.amr.clone(),
                    attempts: 0,
                    expires_at: t.expires_at,
                },
            );
            return Some(Admitted::SecondStep);
        }
        self.note_sign_in(session);
        self.sessions.borrow_mut().insert(
            session.token_hash.clone(),
            (
                user_id.into(),
                session.expires_at,
                session.issued_to.as_str().into(),
            ),
        );
        Some(Admitted::Session)
    }

    /// Counts a failure on the account's authenticator unless it is locked.
    fn claim_factor(
        &self,
        user_id: &str,
        budget: FailureBudget,
        now: u64,
        count: bool,
    ) -> FactorClaim {
        let mut totp = self.totp.borrow_mut();
        let Some((factor, failures)) = totp.get_mut(user_id) else {
            return FactorClaim::default();
        };
        let locked_for = match count {
            false => None,
            true => {
                let locked = budget.locked_for(*failures, now);
                if locked.is_none() {
                    *failures = budget.counted(*failures, now);
                }
                locked
            }
        };
        FactorClaim {
            locked_for,
            factor: Some(factor.clone()),
        }
    }

    /// Spends `proof` for the account, as `edge::d1`'s `spend` does.
    fn spend(&self, user_id: &str, proof: FactorProof<'_>) -> bool {
        if !self.has_second_factor(user_id) {
            return false;
        }
        match proof {
            FactorProof::Step(step) => {
                let mut totp = self.totp.borrow_mut();
                let Some((f, failures)) = totp.get_mut(user_id) else {
                    return false;
                };
                if f.last_step >= step {
                    return false;
                }
                f.last_step = step;
                failures.count = 0;
                true
            }
            FactorProof::Recovery(digest) => {
                let mut codes = self.recovery_codes.borrow_mut();
                match codes
                    .iter_mut()
                    .find(|(u, d, used)| u == user_id && d == digest && !used)
                {
                    Some(code) => {
                        code.2 = true;
                        true
                    }
                    None => false,
                }
            }
        }
    }

    fn replace_codes(&self, user_id: &str, digests: &[String]) {
        let mut codes = self.recovery_codes.borrow_mut();
        codes.retain(|(u, ..)| u != user_id);
        codes.extend(
            digests
                .iter()
                .map(|d| (user_id.to_owned(), d.clone(), false)),
        );
    }

    fn codes_left(&self, user_id: &str) -> u32 {
        let codes = self.recovery_codes.borrow();
        codes
            .iter()
            .filter(|(u, _, used)| u == user_id && !used)
            .count() as u32
    }

    /// A grant with its account as it is now, as D1's join reads it.
    fn grant_of(&self, id: &str) -> Option<Grant> {
        let grants = self.grants.borrow();
        let g = grants.get(id)?;
        let user = self
            .users
            .borrow()
            .values()
            .find(|u| u.id == g.user.id)
            .cloned()?;
        let id_token_alg = self
            .oidc_clients
            .borrow()
            .iter()
            .find(|(c, _)| c.id == g.client_id)
            .map(|(c, _)| c.id_token_alg)?;
        Some(Grant {
            id: id.to_owned(),
            client_id: g.client_id.clone(),
            id_token_alg,
            user,
            scope: g.scope.clone(),
            resource: g.resource.clone(),
            nonce: g.nonce.clone(),
            auth_time: g.auth_time,
            amr: g.amr.clone(),
            refreshable: self
                .refresh_tokens
                .borrow()
                .values()
                .any(|(gid, ..)| gid == id),
        })
    }

    /// D1's `client_ok`: the client exists and its stored secret hash is
    /// the presented one (both none for a public client).
    fn client_proven(&self, c: &ClientProof<'_>) -> bool {
        self.oidc_clients
            .borrow()
            .iter()
            .any(|(k, hash)| k.id == c.client_id && hash.as_deref() == c.secret_hash)
    }

    fn revoke(&self, grant_id: &str) -> bool {
        self.refresh_tokens
            .borrow_mut()
            .retain(|_, (gid, ..)| gid != grant_id);
        self.grants.borrow_mut().remove(grant_id).is_some()
    }

    /// Counts a message if every counter is under its cap; all or nothing.
    fn count(&self, count: &SendCount) -> bool {
        let mut counts = self.counts.borrow_mut();
        let at = |name: &String| {
            counts
                .get(&(name.clone(), count.hour))
                .copied()
                .unwrap_or(0)
        };
        if count.counters.iter().any(|(name, cap)| at(name) >= *cap) {
            return false;
        }
        for (name, _) in &count.counters {
            *counts.entry((name.clone(), count.hour)).or_insert(0) += 1;
        }
        true
    }

    fn file_code(&self, c: &NewCode<'_>, window: u64) {
        self.file_code_as(c, window, OnLive::Replace);
    }

    /// `file_code`, doing to a live code what `on_live` says (as
    /// `D1Store::code_statement` does).
    fn file_code_as(&self, c: &NewCode<'_>, window: u64, on_live: OnLive) {
        let mut codes = self.codes.borrow_mut();
        let id = code_id(&c.key);
        let live = codes
            .get(&id)
            .map(|(old, _)| old.expires_at)
            .filter(|e| *e > c.now);
        let expires_at = match (on_live, live) {
            (OnLive::Keep, Some(_)) => return,
            (OnLive::KeepClock, Some(expires_at)) => expires_at,
            _ => c.expires_at,
        };
        let (attempts, window_ends) = match codes.get(&id) {
            Some((old, ends)) if *ends > c.now => (old.attempts, *ends),
            _ => (0, c.now + window),
        };
        let code = PendingCode {
            id: c.id.into(),
            digest: c.digest.into(),
            attempts,
            expires_at,
            account_password: None,
            account_id: None,
            test: c.test,
        };
        codes.insert(id, (code, window_ends));
    }

    /// Counts one guess against `key`'s pending code, as `claim_attempt` does.
    fn claim(&self, key: &CodeKey<'_>, max: u32) -> Option<PendingCode> {
        let account_password = match (key.scope, key.channel.as_str()) {
            (CORE_SCOPE, "email") => self
                .users
                .borrow()
                .get(key.address)
                .map(|u| u.password_hash.clone().unwrap_or_default()),
            _ => None,
        };
        let account_id = match (key.scope, key.channel.as_str()) {
            (CORE_SCOPE, "email") => self.users.borrow().get(key.address).map(|u| u.id.clone()),
            _ => None,
        };
        let mut codes = self.codes.borrow_mut();
        codes.get_mut(&code_id(key)).map(|(c, _)| {
            c.attempts = (c.attempts + 1).min(max + 1);
            PendingCode {
                account_password,
                account_id,
                ..c.clone()
            }
        })
    }

    /// The key with this id, if it is not revoked.
    fn live_key(&self, id: &str) -> bool {
        self.keys
            .borrow()
            .iter()
            .any(|(_, k)| k.id == id && k.revoked_at.is_none())
    }

    /// The key behind this hash, if it is not revoked.
    fn key_by_hash(&self, hash: &str) -> Option<ApiKey> {
        self.keys
            .borrow()
            .iter()
            .find(|(h, k)| h == hash && k.revoked_at.is_none())
            .map(|(_, k)| k.clone())
    }

    /// Marks `email`'s unverified account, if any, contested.
    fn contest(&self, email: &Email) {
        let unverified = self
            .users
            .borrow()
            .get(email.as_str())
            .is_some_and(|u| !u.verified);
        if unverified {
            self.contested.borrow_mut().insert(email.as_str().into());
        }
    }

    fn live_code(&self, key: &CodeKey<'_>, now: u64) -> bool {
        self.codes
            .borrow()
            .get(&code_id(key))
            .is_some_and(|(c, _)| c.expires_at > now)
    }
}

impl AccountStore for &MemoryStore {
    async fn begin_password_login(&self, a: &PasswordAttempt<'_>) -> ApiResult<PasswordStart> {
        let _call = self
            .faults
            .call(Resource::D1, "begin_password_login")
            .await?;
        let locked_for = {
            let mut failures = self.failures.borrow_mut();
            let f = failures.entry(a.address_hash.into()).or_default();
            let locked = a.budget.locked_for(*f, a.now);
            if locked.is_none() {
                *f = a.budget.counted(*f, a.now);
            }
            locked
        };
        let lookup = {
            let users = self.users.borrow();
            let mut hashes: Vec<(&String, &String)> = users
                .values()
                .filter_map(|u| u.password_hash.as_ref().map(|h| (&u.id, h)))
                .collect();
            hashes.sort();
            PasswordLookup {
                user: users.get(a.email.as_str()).cloned(),
                decoy: (!hashes.is_empty())
                    .then(|| hashes[a.decoy_seed as usize % hashes.len()].1.clone()),
            }
        };
        self.file_code_as(&a.decoy_code, a.attempts_window_secs, OnLive::Keep);
        self.gate.pass("begin_password_login").await;
        Ok(PasswordStart { locked_for, lookup })
    }

    async fn register(&self, r: &Registration<'_>) -> ApiResult<Registered> {
        let _call = self.faults.call(Resource::D1, "register").await?;
        let existing = self.users.borrow().get(r.email.as_str()).cloned();
        let outcome = match &existing {
            Some(u) if u.verified => Registered::AlreadyVerified,
            Some(_) if self.live_code(&r.code.key, r.code.now) => Registered::PendingKept,
            _ => Registered::CodeIssued,
        };
        // A second sign-up of an unverified address contests it, capped or not.
        self.contest(r.email);
        if !self.count(r.count) {
            return Ok(Registered::Capped);
        }
        if outcome == Registered::CodeIssued {
            let mut users = self.users.borrow_mut();
            let user = users
                .entry(r.email.as_str().into())
                .or_insert_with(|| User {
                    id: r.user_id.into(),
                    email: r.email.as_str().into(),
                    password_hash: None,
                    verified: false,
                    created_at: r.code.now,
                });
            // A stale registration is replaced, but keeps its creation time.
            user.password_hash = Some(r.password_hash.into());
            drop(users);
        }
        // A verified account's code is a decoy nobody is sent (see `D1Store::register`).
        if outcome != Registered::PendingKept {
            self.file_code_as(&r.code, r.attempts_window_secs, OnLive::KeepClock);
        }
        Ok(outcome)
    }

    async fn contest_sign_up(&self, email: &Email) -> ApiResult<()> {
        let _call = self.faults.call(Resource::D1, "contest_sign_up").await?;
        self.contest(email);
        Ok(())
    }

    async fn after_password_login(
        &self,
        user_id: &str,
        verified_hash: &str,
        rehash: Option<&str>,
        session: &NewSession,
        address_hash: &str,
    ) -> ApiResult<Option<Admitted>> {
        let _call = self
            .faults
            .call(Resource::D1, "after_password_login")
            .await?;
        {
            let mut users = self.users.borrow_mut();
            let Some(user) = users
                .values_mut()
                .find(|u| u.id == user_id && u.password_hash.as_deref() == Some(verified_hash))
            else {
                return Ok(None);
            };
            if let Some(fresh) = rehash {
                user.password_hash = Some(fresh.into());
            }
        }
        let admitted = self.admit(user_id, session);
        self.failures.borrow_mut().remove(address_hash);
        Ok(admitted)
    }

    async fn renew_code(&self, c: &RenewedCode) -> ApiResult<bool> {
        let _call = self.faults.call(Resource::D1, "renew_code").await?;
        let unverified_with =
            self.users.borrow().get(&c.email).is_some_and(|u| {
                !u.verified && u.password_hash.as_deref() == Some(&c.password_hash)
            });
        let key = CodeKey {
            scope: CORE_SCOPE,
            channel: Channel::Email,
            purpose: "verify_email",
            address: &c.email,
        };
        let mut codes = self.codes.borrow_mut();
        match codes.get_mut(&code_id(&key)) {
            Some((code, _))
                if unverified_with
                    && code.expires_at > c.now
                    && code.attempts <= c.max_attempts =>
            {
                code.id = c.id.clone();
                code.digest = c.digest.clone();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn request_code(
        &self,
        email: &Email,
        c: &NewCode<'_>,
        window: u64,
        count: &SendCount,
    ) -> ApiResult<Requested> {
        let _call = self.faults.call(Resource::D1, "request_code").await?;
        let user = self.users.borrow().get(email.as_str()).cloned();
        let issued = self.count(count);
        if issued {
            self.file_code(c, window);
        }
        self.gate.pass("request_code").await;
        Ok(Requested { user, issued })
    }

    async fn withdraw_registration(&self, id: &str, email: &Email, hash: &str) -> ApiResult<()> {
        let _call = self
            .faults
            .call(Resource::D1, "withdraw_registration")
            .await?;
        self.codes.borrow_mut().retain(|_, (c, _)| c.id != id);
        self.users.borrow_mut().retain(|_, u| {
            !(u.email == email.as_str() && !u.verified && u.password_hash.as_deref() == Some(hash))
        });
        Ok(())
    }

    async fn claim_attempt(&self, key: &CodeKey<'_>, max: u32) -> ApiResult<Option<PendingCode>> {
        let _call = self.faults.call(Resource::D1, "claim_attempt").await?;
        Ok(self.claim(key, max))
    }

    async fn consume_code(&self, id: &str, effect: Effect<'_>, now: u64) -> ApiResult<Consumed> {
        let _call = self.faults.call(Resource::D1, "consume_code").await?;
        let mut codes = self.codes.borrow_mut();
        let Some(key) = codes
            .iter()
            .find(|(_, (c, _))| c.id == id && c.expires_at > now)
            .map(|(k, _)| k.clone())
        else {
            return Ok(Consumed::Lost);
        };
        let mut password_kept = false;
        let mut admitted = None;
        codes.remove(&key);
        let mut users = self.users.borrow_mut();
        let mut sessions = self.sessions.borrow_mut();
        match effect {
            Effect::Nothing => {}
            Effect::MarkVerified { email, keep } => {
                if let Some(u) = users.get_mut(email.as_str()).filter(|u| !u.verified) {
                    let contested = self.contested.borrow().contains(email.as_str());
                    // The password stays only while it is still the
                    // account's and proven, or bound and uncontested.
                    let kept = keep.filter(|k| {
                        u.password_hash.as_deref() == Some(k.password_hash.as_str())
                            && (k.proven || !contested)
                    });
                    password_kept = kept.is_some();
                    u.verified = true;
                    match kept.and_then(|k| k.session) {
                        // The sign-up's browser is signed in, in the same step.
                        Some(s) => {
                            self.note_sign_in(&s);
                            sessions.insert(
                                s.token_hash,
                                (u.id.clone(), s.expires_at, s.issued_to.as_str().into()),
                            );
                        }
                        None if !password_kept => {
                            u.password_hash = None;
                            sessions.retain(|_, (uid, ..)| *uid != u.id);
                        }
                        None => {}
                    }
                }
            }
            Effect::ResetPassword {
                email,
                password_hash,
                address_hash,
            } => {
                if let Some(u) = users.get_mut(email.as_str()) {
                    u.password_hash = Some(password_hash);
                    u.verified = true;
                    sessions.retain(|_, (uid, ..)| *uid != u.id);
                    self.tickets.borrow_mut().retain(|_, t| t.user_id != u.id);
                    self.grants.borrow_mut().retain(|_, g| g.user.id != u.id);
                }
                self.failures.borrow_mut().remove(&address_hash);
            }
            Effect::SignIn { user_id, session } => {
                for u in users.values_mut().filter(|u| u.id == user_id) {
                    if !u.verified {
                        u.verified = true;
                        u.password_hash = None;
                        sessions.retain(|_, (uid, ..)| *uid != user_id);
                    }
                }
                drop(sessions);
                drop(users);
                admitted = self.admit(&user_id, &session);
            }
        }
        Ok(Consumed::Applied {
            password_kept,
            admitted,
        })
    }
}

impl FactorStore for &MemoryStore {
    async fn factor_summary(
        &self,
        user_id: &str,
    ) -> ApiResult<(Option<TotpFactor>, FactorSummary)> {
        let _call = self.faults.call(Resource::D1, "factor_summary").await?;
        let factor = self.totp.borrow().get(user_id).map(|(f, _)| f.clone());
        let summary = FactorSummary {
            totp: factor.as_ref().is_some_and(|f| f.confirmed),
            recovery_codes_left: self.codes_left(user_id),
        };
        Ok((factor, summary))
    }

    async fn begin_totp(&self, user_id: &str, sealed: &str, _now: u64) -> ApiResult<bool> {
        let _call = self.faults.call(Resource::D1, "begin_totp").await?;
        let mut totp = self.totp.borrow_mut();
        let failures = match totp.get(user_id) {
            Some((f, _)) if f.confirmed => return Ok(false),
            Some((_, failures)) => *failures,
            None => Failures::default(),
        };
        let factor = TotpFactor {
            sealed: sealed.into(),
            confirmed: false,
            last_step: 0,
        };
        totp.insert(user_id.into(), (factor, failures));
        Ok(true)
    }

    async fn claim_factor_attempt(
        &self,
        user_id: &str,
        budget: FailureBudget,
        now: u64,
    ) -> ApiResult<FactorClaim> {
        let _call = self
            .faults
            .call(Resource::D1, "claim_factor_attempt")
            .await?;
        Ok(self.claim_factor(user_id, budget, now, true))
    }

    async fn confirm_totp(
        &self,
        user_id: &str,
        sealed: &str,
        step: u64,
        digests: &[String],
        _now: u64,
    ) -> ApiResult<bool> {
        let _call = self.faults.call(Resource::D1, "confirm_totp").await?;
        {
            let mut totp = self.totp.borrow_mut();
            let Some((f, failures)) = totp
                .get_mut(user_id)
                .filter(|(f, _)| !f.confirmed && f.sealed == sealed)
            else {
                return Ok(false);
            };
            f.confirmed = true;
            f.last_step = step;
            failures.count = 0;
        }
        self.replace_codes(user_id, digests);
        Ok(true)
    }

    async fn replace_recovery_codes(
        &self,
        user_id: &str,
        step: u64,
        digests: &[String],
        _now: u64,
    ) -> ApiResult<bool> {
        let _call = self
            .faults
            .call(Resource::D1, "replace_recovery_codes")
            .await?;
        if !self.spend(user_id, FactorProof::Step(step)) {
            return Ok(false);
        }
        self.replace_codes(user_id, digests);
        Ok(true)
    }

    async fn remove_totp(
        &self,
        user_id: &str,
        proof: FactorProof<'_>,
        _now: u64,
    ) -> ApiResult<bool> {
        let _call = self.faults.call(Resource::D1, "remove_totp").await?;
        if !self.spend(user_id, proof) {
            return Ok(false);
        }
        self.totp.borrow_mut().remove(user_id);
        self.replace_codes(user_id, &[]);
        Ok(true)
    }

    async fn claim_ticket_attempt(
        &self,
        ticket_hash: &str,
        issued_to: &str,
        max_attempts: u32,
        budget: FailureBudget,
        now: u64,
    ) -> ApiResult<Option<TicketClaim>> {
        let _call = self
            .faults
            .call(Resource::D1, "claim_ticket_attempt")
            .await?;
        let ticket = {
            let mut tickets = self.tickets.borrow_mut();
            let Some(t) = tickets
                .get_mut(ticket_hash)
                .filter(|t| t.expires_at > now && t.issued_to == issued_to)
            else {
                return Ok(None);
            };
            t.attempts = (t.attempts + 1).min(max_attempts + 1);
            t.clone()
        };
        let Some(user) = self
            .users
            .borrow()
            .values()
            .find(|u| u.id == ticket.user_id)
            .cloned()
        else {
            return Ok(None);
        };
        let within = ticket.attempts <= max_attempts;
        let claim = self.claim_factor(&ticket.user_id, budget, now, within);
        self.gate.pass("claim_ticket_attempt").await;
        Ok(Some(TicketClaim {
            user,
            amr: ticket.amr,
            attempts: ticket.attempts,
            claim,
        }))
    }

    async fn complete_ticket(
        &self,
        ticket_hash: &str,
        proof: FactorProof<'_>,
        session: &NewSession,
        now: u64,
    ) -> ApiResult<Option<u32>> {
        let _call = self.faults.call(Resource::D1, "complete_ticket").await?;
        let Some(ticket) = self
            .tickets
            .borrow()
            .get(ticket_hash)
            .filter(|t| t.expires_at > now)
            .cloned()
        else {
            return Ok(None);
        };
        if !self.spend(&ticket.user_id, proof) {
            return Ok(None);
        }
        self.tickets.borrow_mut().remove(ticket_hash);
        if let Some((_, failures)) = self.totp.borrow_mut().get_mut(&ticket.user_id) {
            failures.count = 0;
        }
        self.note_sign_in(session);
        self.sessions.borrow_mut().insert(
            session.token_hash.clone(),
            (ticket.user_id.clone(), session.expires_at, ticket.issued_to),
        );
        Ok(Some(self.codes_left(&ticket.user_id)))
    }
}

impl SessionStore for &MemoryStore {
    async fn session_user(&self, hash: &str, now: u64, by: Presented) -> ApiResult<Option<User>> {
        let _call = self.faults.call(Resource::D1, "session_user").await?;
        let sessions = self.sessions.borrow();
        let live = |(_, exp, to): &&(String, u64, String)| *exp > now && by.accepts(to);
        let Some((uid, ..)) = sessions.get(hash).filter(live) else {
            return Ok(None);
        };
        Ok(self.users.borrow().values().find(|u| &u.id == uid).cloned())
    }

    async fn session_since(
        &self,
        hash: &str,
        now: u64,
        since: u64,
        by: Presented,
    ) -> ApiResult<Option<User>> {
        let _call = self.faults.call(Resource::D1, "session_since").await?;
        let signed_in = self.sign_ins.borrow().get(hash).map(|(at, _)| *at);
        let sessions = self.sessions.borrow();
        let live = |(_, exp, to): &&(String, u64, String)| {
            *exp > now && by.accepts(to) && signed_in.is_some_and(|at| at >= since)
        };
        let Some((uid, ..)) = sessions.get(hash).filter(live) else {
            return Ok(None);
        };
        Ok(self.users.borrow().values().find(|u| &u.id == uid).cloned())
    }

    async fn delete_session(&self, hash: &str, by: Presented) -> ApiResult<Option<String>> {
        let _call = self.faults.call(Resource::D1, "delete_session").await?;
        let mut sessions = self.sessions.borrow_mut();
        if !sessions.get(hash).is_some_and(|(_, _, to)| by.accepts(to)) {
            return Ok(None);
        }
        let Some((uid, ..)) = sessions.remove(hash) else {
            return Ok(None);
        };
        let users = self.users.borrow();
        Ok(users
            .values()
            .find(|u| u.id == uid)
            .map(|u| u.email.clone()))
    }
}

impl AppStore for &MemoryStore {
    async fn issue_app_code(
        &self,
        c: &NewCode<'_>,
        window: u64,
        count: &SendCount,
        key_id: &str,
    ) -> ApiResult<Filed> {
        let _call = self.faults.call(Resource::D1, "issue_app_code").await?;
        let alive = self.live_key(key_id);
        if !alive {
            return Ok(Filed::KeyRevoked);
        }
        // A test code only while its recipient still has this digest.
        if c.test {
            let current = self.test_recipients.borrow().iter().any(|(id, t, d)| {
                *id == key_id
                    && t.channel == c.key.channel
                    && t.address == c.key.address
                    && d == c.digest
            });
            if !current {
                return Ok(Filed::Capped { prefix: false });
            }
        }
        let prefix_full = count
            .prefix
            .and_then(|i| count.counters.get(i))
            .is_some_and(|(name, cap)| {
                self.counts
                    .borrow()
                    .get(&(name.clone(), count.hour))
                    .copied()
                    .unwrap_or(0)
                    >= *cap
            });
        if !self.count(count) {
            return Ok(Filed::Capped {
                prefix: prefix_full,
            });
        }
        self.file_code(c, window);
        Ok(Filed::Filed)
    }

    async fn claim_app_attempt(
        &self,
        key_hash: &str,
        key: &CodeKey<'_>,
        max: u32,
    ) -> ApiResult<(Option<ApiKey>, Option<PendingCode>)> {
        let _call = self.faults.call(Resource::D1, "claim_app_attempt").await?;
        let found = self.key_by_hash(key_hash);
        let pending = match &found {
            Some(k) if k.channels.allows(key.channel) => {
                let scope = app_scope(&k.id);
                self.claim(
                    &CodeKey {
                        scope: &scope,
                        ..*key
                    },
                    max,
                )
            }
            _ => None,
        };
        self.gate.pass("claim_app_attempt").await;
        Ok((found, pending))
    }

    async fn create_api_key(
        &self,
        id: &str,
        hash: &str,
        hint: &str,
        new: &NewApiKey,
        now: u64,
    ) -> ApiResult<()> {
        let _call = self.faults.call(Resource::D1, "create_api_key").await?;
        let key = ApiKey {
            id: id.into(),
            name: new.name.clone(),
            app_name: new.app_name.clone(),
            channels: new.channels.clone(),
            hint: hint.into(),
            created_at: now,
            revoked_at: None,
            options: new.options.clone(),
        };
        self.keys.borrow_mut().push((hash.into(), key));
        Ok(())
    }

    async fn api_keys(&self) -> ApiResult<Vec<ApiKey>> {
        let _call = self.faults.call(Resource::D1, "api_keys").await?;
        Ok(self
            .keys
            .borrow()
            .iter()
            .rev()
            .map(|(_, k)| k.clone())
            .collect())
    }

    async fn api_key_by_hash(&self, hash: &str) -> ApiResult<Option<ApiKey>> {
        let _call = self.faults.call(Resource::D1, "api_key_by_hash").await?;
        let found = self.key_by_hash(hash);
        self.gate.pass("api_key_by_hash").await;
        Ok(found)
    }

    async fn sending_key(
        &self,
        hash: &str,
        channel: Channel,
        address: &str,
    ) -> ApiResult<Option<(ApiKey, Option<String>)>> {
        let _call = self.faults.call(Resource::D1, "sending_key").await?;
        let found = self.key_by_hash(hash);
        let found = found.map(|k| {
            let digest = self
                .test_recipients
                .borrow()
                .iter()
                .find(|(id, t, _)| *id == k.id && t.channel == channel && t.address == address)
                .map(|(.., d)| d.clone());
            (k, digest)
        });
        self.gate.pass("sending_key").await;
        Ok(found)
    }

    async fn put_test_recipient(
        &self,
        key_id: &str,
        t: &TestRecipient,
        digest: &str,
        max: u32,
    ) -> ApiResult<TestRecipientPut> {
        let _call = self.faults.call(Resource::D1, "put_test_recipient").await?;
        let alive = self.live_key(key_id);
        if !alive {
            return Ok(TestRecipientPut::NoKey);
        }
        let mut all = self.test_recipients.borrow_mut();
        let same = |(id, r, _): &(String, TestRecipient, String)| {
            id == key_id && r.channel == t.channel && r.address == t.address
        };
        if let Some(existing) = all.iter_mut().find(|e| same(e)) {
            if existing.2 != digest {
                // The replaced code's pending codes stop working now.
                let scope = app_scope(key_id);
                self.codes.borrow_mut().retain(|(s, c, _, a), (code, _)| {
                    !(*s == scope && *c == t.channel.as_str() && *a == t.address && code.test)
                });
            }
            existing.2 = digest.into();
            return Ok(TestRecipientPut::Put);
        }
        if all.iter().filter(|(id, ..)| id == key_id).count() >= max as usize {
            return Ok(TestRecipientPut::Full);
        }
        all.push((key_id.into(), t.clone(), digest.into()));
        Ok(TestRecipientPut::Put)
    }

    async fn test_recipients(&self, key_id: &str) -> ApiResult<Option<Vec<TestRecipient>>> {
        let _call = self.faults.call(Resource::D1, "test_recipients").await?;
        if !self.live_key(key_id) {
            return Ok(None);
        }
        Ok(Some(
            self.test_recipients
                .borrow()
                .iter()
                .filter(|(id, ..)| id == key_id)
                .map(|(_, t, _)| t.clone())
                .collect(),
        ))
    }

    async fn delete_test_recipient(
        &self,
        key_id: &str,
        channel: Channel,
        address: &str,
    ) -> ApiResult<bool> {
        let _call = self
            .faults
            .call(Resource::D1, "delete_test_recipient")
            .await?;
        let mut all = self.test_recipients.borrow_mut();
        let before = all.len();
        all.retain(|(id, t, _)| !(id == key_id && t.channel == channel && t.address == address));
        let scope = app_scope(key_id);
        self.codes.borrow_mut().retain(|(s, c, _, a), (code, _)| {
            !(*s == scope && *c == channel.as_str() && a == address && code.test)
        });
        Ok(all.len() < before)
    }

    async fn revoke_api_key(&self, id: &str, now: u64) -> ApiResult<bool> {
        let _call = self.faults.call(Resource::D1, "revoke_api_key").await?;
        let mut keys = self.keys.borrow_mut();
        let Some((_, k)) = keys.iter_mut().find(|(_, k)| k.id == id) else {
            return Ok(false);
        };
        k.revoked_at.get_or_insert(now);
        let scope = crate::domain::code::app_scope(id);
        self.codes.borrow_mut().retain(|(s, ..), _| *s != scope);
        Ok(true)
    }
}

impl DeliveryStore for &MemoryStore {
    async fn send_record(
        &self,
        key_hash: &str,
        send_id: &str,
    ) -> ApiResult<(Option<ApiKey>, SendRecord)> {
        let _call = self.faults.call(Resource::D1, "send_record").await?;
        let key = self.key_by_hash(key_hash);
        let Some(key) = key else {
            return Ok((None, SendRecord::default()));
        };
        let scope = app_scope(&key.id);
        let code = self
            .codes
            .borrow()
            .iter()
            .find(|((s, ..), (c, _))| *s == scope && c.id == send_id)
            .map(|((_, channel, purpose, _), (c, _))| FiledCode {
                attempts: c.attempts,
                expires_at: c.expires_at,
                channel: channel.to_string(),
                purpose: purpose.clone(),
                test: c.test,
            });
        let times = self.event_times.borrow();
        let events = self
            .events
            .borrow()
            .iter()
            .zip(times.iter())
            .filter(|(e, _)| {
                e.send_id.as_deref() == Some(send_id)
                    && (e.scope.as_deref() == Some(&scope) || e.event == "code_delivery")
            })
            .map(|(e, at)| SendEvent {
                event: e.event.clone(),
                outcome: e.outcome.clone(),
                detail: e.detail.clone(),
                at: *at,
                channel: e.channel.clone(),
                purpose: e.purpose.clone(),
                test: e.test,
            })
            .collect();
        Ok((Some(key), SendRecord { code, events }))
    }
}

impl ClientStore for &MemoryStore {
    async fn create_oidc_client(
        &self,
        client: &Client,
        secret_hash: Option<&str>,
    ) -> ApiResult<bool> {
        let _call = self.faults.call(Resource::D1, "create_oidc_client").await?;
        let key_alive = |id: &String| {
            self.keys
                .borrow()
                .iter()
                .any(|(_, k)| &k.id == id && k.revoked_at.is_none())
        };
        if !client.api_key_id.as_ref().is_none_or(key_alive) {
            return Ok(false);
        }
        self.oidc_clients
            .borrow_mut()
            .push((client.clone(), secret_hash.map(str::to_owned)));
        Ok(true)
    }

    async fn register_oidc_client(
        &self,
        client: &Client,
        from: &str,
        caps: RegistrationCaps,
        since: u64,
    ) -> ApiResult<bool> {
        let _call = self
            .faults
            .call(Resource::D1, "register_oidc_client")
            .await?;
        let recent: Vec<String> = {
            let from_map = self.registered_from.borrow();
            self.oidc_clients
                .borrow()
                .iter()
                .filter(|(c, _)| c.self_registered && c.created_at > since)
                .filter_map(|(c, _)| from_map.get(&c.id).cloned())
                .collect()
        };
        let theirs = recent.iter().filter(|f| f.as_str() == from).count();
        if recent.len() >= caps.per_hour as usize || theirs >= caps.per_client_per_hour as usize {
            return Ok(false);
        }
        self.registered_from
            .borrow_mut()
            .insert(client.id.clone(), from.to_owned());
        self.oidc_clients.borrow_mut().push((client.clone(), None));
        Ok(true)
    }

    async fn oidc_client(&self, id: &str) -> ApiResult<Option<(Client, Option<String>)>> {
        let _call = self.faults.call(Resource::D1, "oidc_client").await?;
        Ok(self
            .oidc_clients
            .borrow()
            .iter()
            .find(|(c, _)| c.id == id)
            .cloned())
    }

    async fn oidc_clients(&self) -> ApiResult<Vec<Client>> {
        let _call = self.faults.call(Resource::D1, "oidc_clients").await?;
        let mut list: Vec<Client> = self
            .oidc_clients
            .borrow()
            .iter()
            .map(|(c, _)| c.clone())
            .collect();
        list.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        list.truncate(crate::ports::store::MAX_LISTED_CLIENTS);
        Ok(list)
    }

    async fn delete_oidc_client(&self, id: &str) -> ApiResult<bool> {
        let _call = self.faults.call(Resource::D1, "delete_oidc_client").await?;
        let mut clients = self.oidc_clients.borrow_mut();
        let before = clients.len();
        clients.retain(|(c, _)| c.id != id);
        Ok(clients.len() < before)
    }
}

impl GrantStore for &MemoryStore {
    async fn file_authorization_code(&self, c: &NewAuthCode<'_>) -> ApiResult<bool> {
        let _call = self
            .faults
            .call(Resource::D1, "file_authorization_code")
            .await?;
        let sessions = self.sessions.borrow();
        let Some((uid, exp, to)) = sessions.get(c.session_hash) else {
            return Ok(false);
        };
        let (created_at, amr) = self
            .sign_ins
            .borrow()
            .get(c.session_hash)
            .cloned()
            .unwrap_or_default();
        let verified = self
            .users
            .borrow()
            .values()
            .any(|u| &u.id == uid && u.verified);
        let client = self
            .oidc_clients
            .borrow()
            .iter()
            .any(|(k, _)| k.id == c.client_id);
        if *exp <= c.now
            || !Presented::Cookie.accepts(to)
            || created_at < c.signed_in_since
            || !verified
            || !client
        {
            return Ok(false);
        }
        self.oauth_codes.borrow_mut().insert(
            c.code_hash.into(),
            StoredAuthCode {
                client_id: c.client_id.into(),
                session_hash: c.session_hash.into(),
                user_id: uid.clone(),
                redirect_uri: c.redirect_uri.into(),
                challenge: c.challenge.map(str::to_owned),
                nonce: c.nonce.map(str::to_owned),
                scope: c.scope.into(),
                resource: c.resource.map(str::to_owned),
                auth_time: created_at,
                amr,
                expires_at: c.expires_at,
                used: false,
                grant_id: None,
            },
        );
        Ok(true)
    }

    async fn redeem_authorization_code(&self, r: &Redemption<'_>) -> ApiResult<Redeemed> {
        let _call = self
            .faults
            .call(Resource::D1, "redeem_authorization_code")
            .await?;
        if !self.client_proven(&r.client) {
            return Ok(Redeemed::ClientRefused);
        }
        let mut codes = self.oauth_codes.borrow_mut();
        let Some(code) = codes.get_mut(r.code_hash) else {
            return Ok(Redeemed::Refused);
        };
        if code.used {
            if let Some(grant) = code
                .grant_id
                .as_ref()
                .filter(|_| code.client_id == r.client.client_id)
            {
                self.revoke(grant);
            }
            return Ok(Redeemed::Replayed);
        }
        code.used = true;
        let session_live = self
            .sessions
            .borrow()
            .get(&code.session_hash)
            .is_some_and(|(_, exp, to)| *exp > r.now && Presented::Cookie.accepts(to));
        let binds = code.client_id == r.client.client_id
            && code.redirect_uri == r.redirect_uri
            && code.challenge.as_deref() == r.challenge
            && code.expires_at > r.now
            && r.resource
                .is_none_or(|res| code.resource.as_deref() == Some(res))
            && session_live;
        let user = self
            .users
            .borrow()
            .values()
            .find(|u| u.id == code.user_id)
            .cloned();
        let (true, Some(user)) = (binds, user) else {
            return Ok(Redeemed::Refused);
        };
        code.grant_id = Some(r.grant_id.into());
        self.grants.borrow_mut().insert(
            r.grant_id.into(),
            StoredGrant {
                client_id: code.client_id.clone(),
                user,
                scope: code.scope.clone(),
                resource: code.resource.clone(),
                nonce: code.nonce.clone(),
                auth_time: code.auth_time,
                amr: code.amr.clone(),
                expires_at: match crate::domain::oauth::has_scope(&code.scope, "offline_access") {
                    true => r.refresh.expires_at,
                    false => r.grant_expires_at,
                },
            },
        );
        if crate::domain::oauth::has_scope(&code.scope, "offline_access") {
            self.refresh_tokens.borrow_mut().insert(
                r.refresh.token_hash.clone(),
                (r.grant_id.into(), r.refresh.expires_at, false),
            );
        }
        drop(codes);
        Ok(self
            .grant_of(r.grant_id)
            .map_or(Redeemed::Refused, |g| Redeemed::Granted(Box::new(g))))
    }

    async fn rotate_refresh_token(&self, r: &Rotation<'_>) -> ApiResult<Rotated> {
        let _call = self
            .faults
            .call(Resource::D1, "rotate_refresh_token")
            .await?;
        if !self.client_proven(&r.client) {
            return Ok(Rotated::ClientRefused);
        }
        let found = self.refresh_tokens.borrow().get(r.token_hash).cloned();
        let Some((grant_id, expires_at, used)) = found else {
            return Ok(Rotated::Refused);
        };
        if used {
            self.revoke(&grant_id);
            return Ok(Rotated::Reused);
        }
        let grant_ok = self.grants.borrow().get(&grant_id).is_some_and(|g| {
            g.client_id == r.client.client_id
                && g.expires_at > r.now
                && r.resource
                    .is_none_or(|res| g.resource.as_deref() == Some(res))
        });
        if expires_at <= r.now || !grant_ok {
            return Ok(Rotated::Refused);
        }
        let mut tokens = self.refresh_tokens.borrow_mut();
        if let Some(t) = tokens.get_mut(r.token_hash) {
            t.2 = true;
        }
        tokens.insert(
            r.next.token_hash.clone(),
            (grant_id.clone(), r.next.expires_at, false),
        );
        drop(tokens);
        if let Some(g) = self.grants.borrow_mut().get_mut(&grant_id) {
            g.expires_at = r.grant_expires_at;
        }
        Ok(self
            .grant_of(&grant_id)
            .map_or(Rotated::Refused, |g| Rotated::Rotated(Box::new(g))))
    }

    async fn grant(&self, id: &str, now: u64) -> ApiResult<Option<Grant>> {
        let _call = self.faults.call(Resource::D1, "grant").await?;
        let live = self
            .grants
            .borrow()
            .get(id)
            .is_some_and(|g| g.expires_at > now);
        Ok(self.grant_of(id).filter(|_| live))
    }

    async fn revoke_grant(
        &self,
        token_hash: Option<&str>,
        grant_id: Option<&str>,
        client: ClientProof<'_>,
    ) -> ApiResult<Revoked> {
        let _call = self.faults.call(Resource::D1, "revoke_grant").await?;
        if !self.client_proven(&client) {
            return Ok(Revoked::ClientRefused);
        }
        let id = match grant_id {
            Some(id) => Some(id.to_owned()),
            None => {
                token_hash.and_then(|h| self.refresh_tokens.borrow().get(h).map(|t| t.0.clone()))
            }
        };
        let Some(id) = id else {
            return Ok(Revoked::Done(false));
        };
        let theirs = self
            .grants
            .borrow()
            .get(&id)
            .is_some_and(|g| g.client_id == client.client_id);
        Ok(Revoked::Done(theirs && self.revoke(&id)))
    }
}

impl AuditStore for &MemoryStore {
    async fn stats(&self, now: u64) -> ApiResult<Stats> {
        let _call = self.faults.call(Resource::D1, "stats").await?;
        let users = self.users.borrow();
        Ok(Stats {
            active_codes: self.codes.borrow().len() as u64,
            expired_codes: 0,
            by_purpose: BTreeMap::new(),
            users: UserStats {
                total: users.len() as u64,
                verified: users.values().filter(|u| u.verified).count() as u64,
                with_totp: self
                    .totp
                    .borrow()
                    .values()
                    .filter(|(f, _)| f.confirmed)
                    .count() as u64,
            },
            sign_ins_24h: {
                let mut by = BTreeMap::new();
                let events = self.events.borrow();
                let times = self.event_times.borrow();
                for (e, _) in events
                    .iter()
                    .zip(times.iter())
                    .filter(|(e, at)| e.event == "login_ok" && **at > now.saturating_sub(86_400))
                {
                    if let Some(p) = &e.purpose {
                        *by.entry(p.clone()).or_default() += 1;
                    }
                }
                by
            },
            active_sessions: self.sessions.borrow().len() as u64,
            app_codes: 0,
            test_codes: self
                .codes
                .borrow()
                .values()
                .filter(|(c, _)| c.test && c.expires_at > now)
                .count() as u64,
            api_keys: self.keys.borrow().len() as u64,
            sends_24h: {
                let mut stats = SendStats::default();
                // As D1's `SEND_OUTCOMES`: apps' sends of the last 24 hours.
                let events = self.events.borrow();
                let times = self.event_times.borrow();
                for (e, _) in events.iter().zip(times.iter()).filter(|(e, at)| {
                    e.event == "code_sent"
                        && e.scope.as_deref() != Some(CORE_SCOPE)
                        && **at > now.saturating_sub(86_400)
                }) {
                    match (e.test, e.outcome.as_str()) {
                        (true, _) => stats.test += 1,
                        (false, "sent" | "queued") => stats.sent += 1,
                        (false, r) => *stats.refused.entry(r.into()).or_default() += 1,
                    }
                }
                stats
            },
        })
    }

    async fn cleanup(
        &self,
        _now: u64,
        _before: u64,
        _audit_before: u64,
        _clients_before: u64,
    ) -> ApiResult<Cleanup> {
        unimplemented!("the cron is tested end to end")
    }

    async fn record_events(&self, events: &[Event], ip: &str, now: u64) -> ApiResult<()> {
        let _call = self.faults.call(Resource::D1, "record_events").await?;
        let mut stored = self.events.borrow_mut();
        for e in events {
            let id = stored.len() as u64 + 1;
            self.event_times.borrow_mut().push(now);
            stored.push(StoredEvent {
                id,
                at: crate::ports::clock::rfc3339(now),
                event: e.kind.as_str().into(),
                outcome: e.outcome.into(),
                scope: e.scope.clone(),
                purpose: e.purpose.clone(),
                channel: e.channel.map(|c| c.as_str().into()),
                address_hash: e.address_hash.clone(),
                ip: Some(ip.into()),
                send_id: e.send_id.clone(),
                detail: e.detail.clone(),
                test: e.test,
            });
        }
        Ok(())
    }

    async fn events(&self, page: &EventPage, filter: &EventFilter) -> ApiResult<Vec<StoredEvent>> {
        let _call = self.faults.call(Resource::D1, "events").await?;
        Ok(self
            .events
            .borrow()
            .iter()
            .rev()
            .filter(|e| page.before.is_none_or(|b| e.id < b))
            .filter(|e| {
                filter
                    .address_hash
                    .as_deref()
                    .is_none_or(|h| e.address_hash.as_deref() == Some(h))
            })
            .filter(|e| filter.kind.is_none_or(|k| e.event == k.as_str()))
            .take(page.limit as usize)
            .cloned()
            .collect())
    }

    async fn event_series(&self, since: u64, bucket_secs: u64) -> ApiResult<Vec<SeriesPoint>> {
        let _call = self.faults.call(Resource::D1, "event_series").await?;
        let mut buckets: BTreeMap<u64, SeriesPoint> = BTreeMap::new();
        let times = self.event_times.borrow();
        for (e, at) in self.events.borrow().iter().zip(times.iter()) {
            if *at < since {
                continue;
            }
            let start = at / bucket_secs * bucket_secs;
            let point = buckets.entry(start).or_insert(SeriesPoint {
                start,
                ..Default::default()
            });
            match (e.event.as_str(), e.outcome.as_str()) {
                ("code_sent", "sent" | "queued") => point.sent += 1,
                ("code_verified", _) => point.verified += 1,
                ("code_failed" | "code_burned", _) => point.failed += 1,
                _ => {}
            }
        }
        Ok(buckets.into_values().collect())
    }
}

/// KV, in memory, behind the same `Faults` as the store.
#[derive(Default)]
pub struct MemoryKv {
    pub entries: RefCell<HashMap<String, String>>,
    pub faults: Rc<Faults>,
}

impl Counters for &MemoryKv {
    async fn get(&self, key: &str) -> ApiResult<Option<String>> {
        let _call = self.faults.call(Resource::Kv, "kv_get").await?;
        Ok(self.entries.borrow().get(key).cloned())
    }
    async fn put(&self, key: &str, value: &str, _ttl: u64) -> ApiResult<()> {
        let _call = self.faults.call(Resource::Kv, "kv_put").await?;
        self.entries.borrow_mut().insert(key.into(), value.into());
        Ok(())
    }
}

/// Siteverify as Cloudflare answers it: each token in `valid` passes once
/// (then it is spent); `down` makes it unreachable.
#[derive(Default)]
pub struct Humans {
    pub valid: RefCell<Vec<String>>,
    pub asked: RefCell<Vec<String>>,
    pub down: Cell<bool>,
}

impl HumanCheck for Humans {
    fn check<'a>(&'a self, token: &'a str) -> LocalBoxFuture<'a, ApiResult<bool>> {
        Box::pin(async move {
            self.asked.borrow_mut().push(token.into());
            if self.down.get() {
                return Err(ApiError::Unavailable("siteverify did not answer".into()));
            }
            let mut valid = self.valid.borrow_mut();
            let found = valid.iter().position(|t| t == token);
            Ok(found.map(|i| valid.remove(i)).is_some())
        })
    }
}

/// Stands in for WebCrypto: an HMAC-SHA256 under the key's id. The
/// native tests check which claims are signed and that a changed token is
/// refused; the end-to-end tests check the real RS256 and ES256 signatures
/// with a third-party JOSE library.
#[derive(Default)]
pub struct TestSigner;

impl TestSigner {
    fn mac(key: &SigningKey, input: &[u8]) -> Vec<u8> {
        use hmac::Mac as _;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.kid.as_bytes())
            .expect("HMAC takes a key of any size");
        mac.update(input);
        mac.finalize().into_bytes().to_vec()
    }
}

/// WebCrypto's AES-GCM, in the RustCrypto implementation of the same
/// algorithm: what is sealed natively opens on Workers and back.
impl Sealer for TestSigner {
    fn seal<'a>(
        &'a self,
        key: &'a SealKey,
        nonce: &'a [u8; 12],
        plaintext: &'a [u8],
        aad: &'a [u8],
    ) -> LocalBoxFuture<'a, ApiResult<Vec<u8>>> {
        use aes_gcm::aead::{Aead, KeyInit, Payload};
        Box::pin(async move {
            let cipher = aes_gcm::Aes256Gcm::new(key.bytes().into());
            cipher
                .encrypt(
                    nonce.into(),
                    Payload {
                        msg: plaintext,
                        aad,
                    },
                )
                .map_err(|e| ApiError::internal("aes-gcm", e))
        })
    }

    fn open<'a>(
        &'a self,
        key: &'a SealKey,
        nonce: &'a [u8; 12],
        sealed: &'a [u8],
        aad: &'a [u8],
    ) -> LocalBoxFuture<'a, ApiResult<Option<Vec<u8>>>> {
        use aes_gcm::aead::{Aead, KeyInit, Payload};
        Box::pin(async move {
            let cipher = aes_gcm::Aes256Gcm::new(key.bytes().into());
            Ok(cipher
                .decrypt(nonce.into(), Payload { msg: sealed, aad })
                .ok())
        })
    }
}

impl Signer for TestSigner {
    fn sign<'a>(
        &'a self,
        key: &'a SigningKey,
        input: &'a [u8],
    ) -> LocalBoxFuture<'a, ApiResult<Vec<u8>>> {
        Box::pin(async move { Ok(Self::mac(key, input)) })
    }

    fn verify<'a>(
        &'a self,
        key: &'a SigningKey,
        input: &'a [u8],
        signature: &'a [u8],
    ) -> LocalBoxFuture<'a, ApiResult<bool>> {
        Box::pin(async move { Ok(Self::mac(key, input) == signature) })
    }
}

/// Captures every mail and text; `fail_next` makes the next send fail.
#[derive(Default)]
pub struct Outbox {
    pub mails: RefCell<Vec<Message>>,
    pub texts: RefCell<Vec<TextMessage>>,
    pub fail_next: Cell<bool>,
    /// The next this-many text messages are refused, as Twilio answering
    /// with an error; `fail_next` is a send without an answer.
    pub text_failures: Cell<u32>,
    pub rounds: Rc<Rounds>,
}

impl Outbox {
    fn deliver(&self) -> ApiResult<()> {
        match self.fail_next.replace(false) {
            true => Err(crate::error::ApiError::MailDeliveryFailed),
            false => Ok(()),
        }
    }
}

impl Mailer for &Outbox {
    fn ready(&self) -> ApiResult<()> {
        Ok(())
    }
    async fn send(&self, m: &Message) -> ApiResult<()> {
        let _call = self.rounds.call(Resource::Outbound, "mail").await;
        self.deliver()?;
        self.mails.borrow_mut().push(m.clone());
        Ok(())
    }
}

impl Texter for &Outbox {
    fn ready(&self, _channel: TextChannel) -> ApiResult<()> {
        Ok(())
    }
    async fn send(&self, m: &TextMessage) -> ApiResult<()> {
        let _call = self.rounds.call(Resource::Outbound, "text").await;
        let left = self.text_failures.get();
        if left > 0 {
            self.text_failures.set(left - 1);
            return Err(ApiError::TextRefused(m.channel.channel()));
        }
        if self.fail_next.replace(false) {
            return Err(ApiError::TextDeliveryFailed(m.channel.channel()));
        }
        self.texts.borrow_mut().push(m.clone());
        Ok(())
    }
}

pub struct TestClock(pub Cell<u64>);

impl Clock for &TestClock {
    fn now(&self) -> u64 {
        self.0.get()
    }
}

pub type TestService<'a> =
    Service<'a, &'a MemoryStore, &'a MemoryKv, &'a Outbox, &'a Outbox, &'a TestClock>;

pub struct World {
    pub cfg: Config,
    pub store: MemoryStore,
    pub counters: MemoryKv,
    pub outbox: Outbox,
    pub clock: TestClock,
    pub audit: Audit,
    pub diagnostics: Diagnostics,
    pub later: Later,
    /// Shared by the store and KV: one sequence of calls.
    pub faults: Rc<Faults>,
    pub humans: Humans,
    pub signer: TestSigner,
}

pub const ADMIN_TOKEN: &str = "admin-secret-0123456789abcdefghij";
pub const ADMIN: Option<&str> = Some(ADMIN_TOKEN);

impl World {
    pub fn new(extra: &[(&str, &str)]) -> Self {
        let mut vars: HashMap<&str, &str> = HashMap::from([
            ("OTP_PEPPER", "0123456789abcdef0123456789abcdef"),
            ("MFA_ENCRYPTION_KEY", "fedcba9876543210fedcba9876543210"),
            ("ADMIN_TOKEN", ADMIN_TOKEN),
            ("ARGON2_MEMORY_KIB", "64"),
            ("ARGON2_ITERATIONS", "1"),
        ]);
        vars.extend(extra.iter().copied());
        let faults = Rc::new(Faults::default());
        let rounds = faults.rounds.clone();
        World {
            cfg: Config::load(|k| vars.get(k).map(|v| v.to_string())).unwrap(),
            store: MemoryStore {
                faults: faults.clone(),
                ..MemoryStore::default()
            },
            counters: MemoryKv {
                faults: faults.clone(),
                ..MemoryKv::default()
            },
            outbox: Outbox {
                rounds,
                ..Outbox::default()
            },
            clock: TestClock(Cell::new(1_800_000_000)),
            audit: Audit::default(),
            diagnostics: Diagnostics::default(),
            later: Later::default(),
            faults,
            humans: Humans::default(),
            signer: TestSigner,
        }
    }

    pub fn svc(&self) -> TestService<'_> {
        Service {
            cfg: &self.cfg,
            store: &self.store,
            counters: &self.counters,
            mailer: &self.outbox,
            texter: &self.outbox,
            clock: &self.clock,
            audit: &self.audit,
            diagnostics: &self.diagnostics,
            later: &self.later,
            language: Locale::En,
            humans: &self.humans,
            signer: &self.signer,
            sealer: &self.signer,
        }
    }

    /// What the worker does once a request's answer has gone out: the KV
    /// writes the flow left for later (`Later`).
    pub async fn after_answer(&self) {
        let writes = self.later.take();
        Later::write(&&self.counters, &writes, &self.diagnostics).await;
        let renewals = self.later.take_renewals();
        Later::renew_codes(
            &&self.store,
            &&self.counters,
            &&self.outbox,
            &renewals,
            &self.diagnostics,
        )
        .await;
    }

    pub fn after_answer_now(&self) {
        pollster::block_on(self.after_answer());
    }

    /// A session token of `email`'s account, signed in with `password`
    /// through the JSON API (`Audience::Api`).
    pub fn login_token(
        &self,
        email: &Email,
        password: &crate::domain::password::Password,
    ) -> String {
        self.token_for(email, password, Audience::Api)
    }

    /// `login_token` for the pages: a browser's session (`Audience::Browser`).
    pub fn browser_token(
        &self,
        email: &Email,
        password: &crate::domain::password::Password,
    ) -> String {
        self.token_for(email, password, Audience::Browser)
    }

    fn token_for(
        &self,
        email: &Email,
        password: &crate::domain::password::Password,
        to: Audience,
    ) -> String {
        let session = pollster::block_on(self.svc().login(email, password, to)).unwrap();
        session.token.expose().to_owned()
    }

    /// Turns an authenticator app on for `email`'s account, signed in
    /// with `password`: its secret and recovery codes. The clock moves on
    /// a step, so the next code is a fresh one.
    pub fn enrol_totp(
        &self,
        email: &Email,
        password: &crate::domain::password::Password,
    ) -> (TotpSecret, Vec<RecoveryCode>) {
        let token = self.login_token(email, password);
        let svc = self.svc();
        let user = pollster::block_on(svc.me(Some(&token), Presented::Bearer)).unwrap();
        let enrolment = pollster::block_on(svc.begin_totp(&user)).unwrap();
        let code = self.totp_now(&enrolment.secret);
        let (codes, _) = pollster::block_on(svc.confirm_totp(&user, &code)).unwrap();
        self.advance(crate::domain::totp::STEP_SECS);
        (enrolment.secret, codes)
    }

    /// The authenticator's code at the clock's time.
    pub fn totp_now(&self, secret: &TotpSecret) -> TotpCode {
        let step = self.clock.0.get() / crate::domain::totp::STEP_SECS;
        TotpCode::parse(&secret.hotp(step)).unwrap()
    }

    /// The `mfa_token` a first factor's `result` asked a second step with.
    pub fn mfa_token<T: std::fmt::Debug>(result: ApiResult<T>) -> String {
        match result {
            Err(ApiError::MfaRequired { mfa_token }) => mfa_token.0,
            other => panic!("expected mfa_required, got {other:?}"),
        }
    }

    /// Messages of any kind sent so far.
    pub fn sent(&self) -> usize {
        self.outbox.mails.borrow().len() + self.outbox.texts.borrow().len()
    }

    /// The account of `email`, as stored.
    pub fn user(&self, email: &str) -> Option<User> {
        self.store.users.borrow().get(email).cloned()
    }

    /// Whether the account's core code for `purpose` is pending.
    pub fn pending(&self, email: &str, purpose: &str) -> bool {
        self.store.codes.borrow().contains_key(&(
            CORE_SCOPE.into(),
            "email",
            purpose.into(),
            email.into(),
        ))
    }

    /// The kinds and outcomes recorded since the last call.
    pub fn events(&self) -> Vec<(&'static str, &'static str)> {
        self.audit
            .take()
            .into_iter()
            .map(|e| (e.kind.as_str(), e.outcome))
            .collect()
    }

    pub fn last_mail(&self) -> Message {
        self.outbox.mails.borrow().last().expect("a mail").clone()
    }

    /// The code on its own line in the last mail, as typed back.
    pub fn last_code(&self) -> Code {
        let text = self
            .outbox
            .mails
            .borrow()
            .last()
            .expect("a mail")
            .text
            .clone();
        let code = text
            .lines()
            .filter_map(|l| l.strip_prefix("    "))
            .next()
            .expect("a code line");
        Code::parse_any(code).unwrap()
    }

    pub fn last_text_code(&self) -> Code {
        let body = self
            .outbox
            .texts
            .borrow()
            .last()
            .expect("a text")
            .body
            .clone();
        Code::parse_any(body.split(' ').next().unwrap()).unwrap()
    }

    pub fn mails(&self) -> usize {
        self.outbox.mails.borrow().len()
    }

    pub fn keep(&self, deferred: Option<Message>) {
        self.outbox
            .mails
            .borrow_mut()
            .push(deferred.expect("a deferred mail"));
    }

    pub fn advance(&self, secs: u64) {
        self.clock.0.set(self.clock.0.get() + secs);
    }

    pub fn api_key(&self, channels: &[&str]) -> (ApiKey, String) {
        self.api_key_with(channels, KeyOptions::default())
    }

    pub fn api_key_with(&self, channels: &[&str], options: KeyOptions) -> (ApiKey, String) {
        let new = NewApiKey {
            name: "test".into(),
            app_name: Some("Shop".into()),
            channels: Channels::parse(channels).unwrap(),
            options,
        };
        let (key, secret) = pollster::block_on(self.svc().create_api_key(ADMIN, &new)).unwrap();
        (key, secret.expose().to_owned())
    }
}

/// Another code of the same shape: a wrong guess.
pub fn wrong(code: &Code) -> Code {
    let mut s = code.expose().to_owned();
    let last = s.pop().unwrap();
    s.push(if last == '2' { '3' } else { '2' });
    Code::parse_any(&s).unwrap()
}
