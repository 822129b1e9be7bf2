//! What the flows need from the database, as one small trait. D1 implements
//! it in `edge::d1_store`; every multi-step change is one atomic call here.

use crate::domain::api_key::{ApiKey, NewApiKey};
use crate::domain::audit::{Event, EventFilter, EventPage, StoredEvent};
use crate::domain::channel::Channel;
use crate::domain::code::CodeKey;
use crate::domain::email::Email;
use crate::domain::session::{Audience, Presented};
use crate::domain::sign_in_budget::FailureBudget;
use crate::domain::test_recipient::TestRecipient;
use crate::error::ApiResult;
use crate::ports::limits::SendCount;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub email: String,
    /// Argon2id PHC. `None` once a code sign-in proved the address and
    /// dropped a password set before the proof: the owner sets one through
    /// a password reset.
    pub password_hash: Option<String>,
    pub verified: bool,
    pub created_at: u64,
}

/// What a password login reads: the account, and for equal timing a
/// decoy, a stored hash whose parameters the dummy hash copies (see
/// `Hasher::burn`).
#[derive(Debug, Clone, Default)]
pub struct PasswordLookup {
    pub user: Option<User>,
    pub decoy: Option<String>,
}

/// A password sign-in's first round (`Store::begin_password_login`).
#[derive(Debug, Clone)]
pub struct PasswordAttempt<'a> {
    pub email: &'a Email,
    /// The pseudonym the address's failures are counted under.
    pub address_hash: &'a str,
    /// Picks the decoy hash (`PasswordLookup::decoy`).
    pub decoy_seed: u32,
    pub budget: FailureBudget,
    pub now: u64,
    /// A verification code for the address that nobody is sent, filed
    /// only if none is live, for every sign-in alike: so a right password
    /// on an unverified account can renew its live code unseen (see
    /// `Service::password_login`).
    pub decoy_code: NewCode<'a>,
    pub attempts_window_secs: u64,
}

/// What a password sign-in's first round found and did.
#[derive(Debug, Clone, Default)]
pub struct PasswordStart {
    /// The address is locked, for this many more seconds: the attempt was
    /// not counted and the password must not be compared.
    pub locked_for: Option<u64>,
    pub lookup: PasswordLookup,
}

/// After a right password on an unverified account, once the answer is
/// out: a new code for its pending verification (`Store::renew_code`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenewedCode {
    pub email: String,
    pub id: String,
    /// Bound to `password_hash` (`Pepper::bound_code_digest`).
    pub digest: String,
    /// The account's hash the password matched.
    pub password_hash: String,
    pub now: u64,
    pub max_attempts: u32,
}
#[derive(Debug, Clone)]
pub struct NewSession {
    pub token_hash: String,
    pub now: u64,
    pub expires_at: u64,
    pub issued_to: Audience,
}

/// `register`'s one write: the account (created, or a stale unverified one
/// replaced), its verification code, and the message counted.
#[derive(Debug, Clone)]
pub struct Registration<'a> {
    pub user_id: &'a str,
    pub email: &'a Email,
    pub password_hash: &'a str,
    pub code: NewCode<'a>,
    pub attempts_window_secs: u64,
    pub count: &'a SendCount,
}

/// What `register` found and did, decided inside the transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    /// A new account, or one whose earlier registration's code had
    /// expired: the password is this request's, and so is the code.
    CodeIssued,
    /// Another registration's code is still live: nothing changed, and no
    /// code goes out that could verify this request's password.
    PendingKept,
    /// The address is verified: the account is unchanged. The code is
    /// filed as a decoy nobody is sent, bound to a hash the account does
    /// not hold, so that a guess at it answers as for any other address.
    AlreadyVerified,
    /// An hourly cap is reached: nothing was written or counted.
    Capped,
}

#[derive(Debug, Clone)]
pub struct PendingCode {
    pub id: String,
    pub digest: String,
    pub attempts: u32,
    pub expires_at: u64,
    /// For a code of the core flows: the account's password hash now, which
    /// a code bound to a password (`Pepper::bound_code_digest`) must have
    /// been issued for.
    pub account_password: Option<String>,
    /// A test recipient's code: its digest is `Pepper::test_code_digest`'s.
    pub test: bool,
    /// For a code of the core flows: the id of the address's account, if
    /// it has one, read in the same statement that claims the attempt.
    pub account_id: Option<String>,
}

/// What filing an app's code did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filed {
    Filed,
    /// An hourly cap or the key's quota is reached: nothing was written.
    /// `prefix` when the cap of the number's prefix is among them
    /// (`SendCount::prefix`), the mark of an SMS-pumping run.
    Capped {
        prefix: bool,
    },
    /// The key was revoked since it was looked up: nothing was written,
    /// and no message may go out.
    KeyRevoked,
}

/// What a request for a code of the core flows found and did, in one
/// transaction: the address's account, if any, and whether the code was
/// filed (`false` when an hourly cap is reached: nothing was written).
#[derive(Debug, Clone)]
pub struct Requested {
    pub user: Option<User>,
    pub issued: bool,
}

#[derive(Debug, Clone)]
pub struct NewCode<'a> {
    pub id: &'a str,
    pub key: CodeKey<'a>,
    pub digest: &'a str,
    pub now: u64,
    pub expires_at: u64,
    /// For a test recipient: `digest` is its fixed code's.
    pub test: bool,
}

/// What is known of one send: its code while it is pending, and the audit
/// trail's events about it, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendRecord {
    /// The code, while it is filed.
    pub code: Option<FiledCode>,
    pub events: Vec<SendEvent>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FiledCode {
    pub attempts: u32,
    pub expires_at: u64,
    pub channel: String,
    pub purpose: String,
    pub test: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendEvent {
    pub event: String,
    pub outcome: String,
    pub detail: Option<String>,
    pub at: u64,
    pub channel: Option<String>,
    pub purpose: Option<String>,
    pub test: bool,
}

/// What adding a test recipient did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestRecipientPut {
    /// Added, or its code replaced.
    Put,
    /// No live key has this id.
    NoKey,
    /// The key has `test_recipient::MAX_PER_KEY` already.
    Full,
}

/// What a consumed code unlocks, applied in the same transaction as the consumption.
#[derive(Debug, Clone)]
pub enum Effect<'a> {
    /// An app's code: consuming it is all there is.
    Nothing,
    /// Marks the address verified. With `keep`, the password may stay,
    /// if it is still the account's (see `KeptPassword`). Otherwise the
    /// proof ends what was set before it, as `SignIn` does: the password
    /// and every session. So it does when `keep` does not hold.
    MarkVerified {
        email: &'a Email,
        keep: Option<KeptPassword>,
    },
    /// Sets the password, marks the address verified (the code proved
    /// ownership), revokes every session of the account and forgets the
    /// address's failed sign-ins (`address_hash`).
    ResetPassword {
        email: &'a Email,
        password_hash: String,
        address_hash: String,
    },
    /// Passwordless sign-in: creates the session. On an unverified account
    /// it also marks the address verified (the code proved ownership),
    /// drops the password and revokes every session: whoever set that
    /// password had not proven the address (account pre-hijacking).
    SignIn {
        user_id: String,
        session: NewSession,
    },
}

/// The password a verification may keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptPassword {
    pub password_hash: String,
    /// The request proved the password itself. Without, the code was
    /// bound to it, which keeps it only while the registration is
    /// uncontested (`users.contested`): checked in the transaction.
    pub proven: bool,
}

/// What consuming a code did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consumed {
    /// A concurrent request consumed, replaced or burned the code first,
    /// or it expired: nothing was applied.
    Lost,
    /// The code is spent and its effect applied; for `MarkVerified`,
    /// whether the account kept its password.
    Applied { password_kept: bool },
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Stats {
    pub active_codes: u64,
    pub expired_codes: u64,
    pub by_purpose: BTreeMap<String, u64>,
    pub users: UserStats,
    pub active_sessions: u64,
    pub app_codes: u64,
    /// Pending codes of test recipients, not in `app_codes`.
    pub test_codes: u64,
    pub api_keys: u64,
    /// Apps' sends over the last 24 hours: gone out, to test recipients,
    /// and refused by reason (the problem code, or `prefix_limited`).
    pub sends_24h: SendStats,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct SendStats {
    pub sent: u64,
    pub test: u64,
    pub refused: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct UserStats {
    pub total: u64,
    pub verified: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Cleanup {
    pub expired_codes: u64,
    pub expired_sessions: u64,
    pub unverified_users: u64,
    pub audit_events: u64,
    /// Counts of failed sign-ins long forgotten.
    pub login_failures: u64,
}

/// A hand-off code to file for the browser session `session_hash`.
#[derive(Debug)]
pub struct NewHandoff<'a> {
    pub code_hash: &'a str,
    pub session_hash: &'a str,
    /// The app's `return_to`, normalized (`ReturnTo::url`).
    pub return_to: &'a str,
    pub challenge: Option<&'a str>,
    pub now: u64,
    pub expires_at: u64,
}

/// An app's exchange of a hand-off code: all of it one transaction.
#[derive(Debug)]
pub struct Exchange<'a> {
    pub key_hash: &'a str,
    pub code_hash: &'a str,
    /// The `return_to` the app names, normalized (`ReturnTo::normalize`).
    pub return_to: &'a str,
    /// The challenge the app's verifier answers, `None` without a verifier.
    pub challenge: Option<&'a str>,
    pub session: &'a NewSession,
}

/// A hand-off as it was filed, returned by the exchange that deleted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpentHandoff {
    pub expires_at: u64,
    pub return_to: String,
    pub challenge: Option<String>,
}

/// What an exchange found and did.
#[derive(Debug, Clone)]
pub struct Exchanged {
    /// The key exists and is not revoked. Without it nothing was touched.
    pub key_ok: bool,
    /// The hand-off the exchange deleted, if the code named one.
    pub spent: Option<SpentHandoff>,
    /// The account of the session it created: only when the code was
    /// live, for this origin and challenge, and its browser session too.
    pub user: Option<User>,
}

/// One bucket of the admin chart: codes sent, verified and failed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SeriesPoint {
    /// Unix seconds where the bucket starts.
    pub start: u64,
    pub sent: u64,
    pub verified: u64,
    pub failed: u64,
}

#[allow(async_fn_in_trait)]
pub trait Store {
    /// A password sign-in's first round, one transaction, the same for
    /// every address: counts the attempt against the address's budget
    /// (`domain::sign_in_budget`) unless it is locked, reads the account
    /// and a decoy hash picked by `decoy_seed` from the stored ones (the
    /// same seed, the same decoy), and files `decoy_code` if the address
    /// has no live verification code.
    async fn begin_password_login(&self, attempt: &PasswordAttempt<'_>)
        -> ApiResult<PasswordStart>;
    /// One transaction: creates the account, or replaces the password of an
    /// unverified one whose verification code is no longer live, issues
    /// the code, and counts the message; or, if an hourly cap is reached,
    /// files nothing else. A live code of an earlier registration keeps that
    /// registration's password (see `Registered`). A registration that
    /// finds an unverified account marks it contested, capped or not. A live code keeps
    /// its expiry and attempts when this registration's code replaces it:
    /// a registration never moves an address's clock.
    async fn register(&self, registration: &Registration<'_>) -> ApiResult<Registered>;
    /// Marks the address's unverified account, if any, contested: a
    /// registration that the cooldown stopped before `register` still
    /// asked for the address, so a code alone no longer keeps a password.
    async fn contest_sign_up(&self, email: &Email) -> ApiResult<()>;
    /// After a right password on a verified account, in one transaction:
    /// replaces the hash with `rehash`, creates `session` and forgets the
    /// address's failed sign-ins (`address_hash`), only if the account's
    /// hash is still `verified_hash`, the one the password was checked
    /// against. `false`, changing nothing, if a reset (or anything else)
    /// changed it since.
    async fn after_password_login(
        &self,
        user_id: &str,
        verified_hash: &str,
        rehash: Option<&str>,
        session: &NewSession,
        address_hash: &str,
    ) -> ApiResult<bool>;
    /// Replaces the digest (and id) of the address's pending verification
    /// code with `renewed`'s, keeping its expiry and attempts, only while
    /// the code is live and not spent and the account still unverified
    /// with `renewed.password_hash`; `false`, changing nothing, otherwise.
    async fn renew_code(&self, renewed: &RenewedCode) -> ApiResult<bool>;

    /// Replaces any pending code for (scope, channel, address, purpose) and
    /// counts its message, in one transaction; `Capped`, writing nothing,
    /// when an hourly cap is reached. The failure count carries over while
    /// the replaced code's window is open. Only while the key `key_id` is
    /// not revoked: a revocation that lands while a send is in flight stops it.
    async fn issue_app_code(
        &self,
        code: &NewCode<'_>,
        attempts_window_secs: u64,
        count: &SendCount,
        key_id: &str,
    ) -> ApiResult<Filed>;
    /// Files a code for `email`'s address as `issue_app_code` does (but
    /// for the core flows: `false` when capped), with its account read in
    /// the same transaction: whether or not there is an account, the same
    /// one round trip (see `Service::request_code`).
    async fn request_code(
        &self,
        email: &Email,
        code: &NewCode<'_>,
        attempts_window_secs: u64,
        count: &SendCount,
    ) -> ApiResult<Requested>;
    /// Undoes a registration whose message could not be delivered, in one
    /// transaction: deletes its code, so that it does not hold a
    /// registration nobody received a code for, and the account if it is
    /// unverified and holds this registration's `password_hash` (salted:
    /// no other's), so that the retry is a first sign-up again, not a
    /// contested one.
    async fn withdraw_registration(
        &self,
        code_id: &str,
        email: &Email,
        password_hash: &str,
    ) -> ApiResult<()>;
    /// Counts one guess against the pending code for `key` and returns the
    /// code with the count that includes this guess, in one atomic write:
    /// a guess is counted before it is compared, so concurrent guesses can
    /// never get more comparisons than the budget. The count stops at
    /// `max_attempts + 1`; a code returned above `max_attempts` is spent
    /// and must not be compared.
    async fn claim_attempt(
        &self,
        key: &CodeKey<'_>,
        max_attempts: u32,
    ) -> ApiResult<Option<PendingCode>>;
    /// `/v1/otp/verify`'s first round, one transaction: the key behind
    /// `key_hash`, if it exists and is not revoked, and, when that key
    /// allows `key.channel`, the guess counted against its pending code
    /// under (`key.channel`, `key.address`, `key.purpose`) as
    /// `claim_attempt` counts it. `key.scope` is ignored: it is the key's,
    /// which this call finds. A wrong key or channel counts no guess.
    async fn claim_app_attempt(
        &self,
        key_hash: &str,
        key: &CodeKey<'_>,
        max_attempts: u32,
    ) -> ApiResult<(Option<ApiKey>, Option<PendingCode>)>;
    /// Deletes the code and applies `effect` in one transaction, only if the
    /// code still exists, unexpired and unreplaced. Exactly one concurrent
    /// caller gets `Applied`. The caller's guess was within the budget when it
    /// was claimed; guesses claimed after it, even past the budget, do not
    /// take that back, or a burst of right guesses would all fail.
    async fn consume_code(
        &self,
        code_id: &str,
        effect: Effect<'_>,
        now: u64,
    ) -> ApiResult<Consumed>;

    /// The account of the live session `token_hash`, if it is one that
    /// may be `presented` that way (`Presented::accepts`).
    async fn session_user(
        &self,
        token_hash: &str,
        now: u64,
        presented: Presented,
    ) -> ApiResult<Option<User>>;
    /// Ends the session, if it may be `presented` that way; returns its
    /// account's address, `None` if there was no such session.
    async fn delete_session(
        &self,
        token_hash: &str,
        presented: Presented,
    ) -> ApiResult<Option<String>>;

    async fn create_api_key(
        &self,
        id: &str,
        key_hash: &str,
        hint: &str,
        new: &NewApiKey,
        now: u64,
    ) -> ApiResult<()>;
    /// Every key, newest first, revoked ones included.
    async fn api_keys(&self) -> ApiResult<Vec<ApiKey>>;
    /// Only a key that is not revoked.
    async fn api_key_by_hash(&self, key_hash: &str) -> ApiResult<Option<ApiKey>>;
    /// `api_key_by_hash` for a send to (`channel`, `address`), in one
    /// statement: with the digest of the address's fixed code when it is
    /// one of the key's test recipients.
    async fn sending_key(
        &self,
        key_hash: &str,
        channel: Channel,
        address: &str,
    ) -> ApiResult<Option<(ApiKey, Option<String>)>>;
    /// Adds a test recipient to the live key `key_id`, or replaces its
    /// code, in one statement.
    async fn put_test_recipient(
        &self,
        key_id: &str,
        recipient: &TestRecipient,
        digest: &str,
        max: u32,
    ) -> ApiResult<TestRecipientPut>;
    /// `GET /v1/otp/{id}`'s one round: the key behind `key_hash`, if live,
    /// and what its scope holds of the send `send_id`.
    async fn send_record(
        &self,
        key_hash: &str,
        send_id: &str,
    ) -> ApiResult<(Option<ApiKey>, SendRecord)>;
    /// The key's test recipients, `None` when no live key has this id (a
    /// revoked key's are gone with it).
    async fn test_recipients(&self, key_id: &str) -> ApiResult<Option<Vec<TestRecipient>>>;
    /// `false` when the key has no such test recipient.
    async fn delete_test_recipient(
        &self,
        key_id: &str,
        channel: Channel,
        address: &str,
    ) -> ApiResult<bool>;
    /// Revokes the key and drops its pending codes; `false` if no key has this id.
    async fn revoke_api_key(&self, id: &str, now: u64) -> ApiResult<bool>;

    async fn stats(&self, now: u64) -> ApiResult<Stats>;
    /// Deletes expired codes and sessions, send counts of past hours,
    /// accounts created before `unverified_before` and still unverified
    /// (with their pending codes; re-registering does not renew an
    /// account), audit events older than `audit_before`, and counts of
    /// failed sign-ins that can no longer lock anything.
    async fn cleanup(
        &self,
        now: u64,
        unverified_before: u64,
        audit_before: u64,
    ) -> ApiResult<Cleanup>;

    /// Appends a request's events, all at `now` from `ip`, in one write.
    async fn record_events(&self, events: &[Event], ip: &str, now: u64) -> ApiResult<()>;
    /// Newest first, optionally only those of one address or one kind.
    async fn events(&self, page: &EventPage, filter: &EventFilter) -> ApiResult<Vec<StoredEvent>>;
    /// Code events since `since`, counted per `bucket_secs`: only the
    /// buckets that had any, oldest first.
    async fn event_series(&self, since: u64, bucket_secs: u64) -> ApiResult<Vec<SeriesPoint>>;

    /// Files a hand-off code, only while the session it hands off is live
    /// and a browser's (`Audience::Browser`); `false`, writing nothing,
    /// otherwise.
    async fn file_handoff(&self, handoff: &NewHandoff<'_>) -> ApiResult<bool>;
    /// In one transaction: checks the key; if it is good, deletes the
    /// hand-off (a code is tried once, right or wrong) and, when the code
    /// was live, issued for this `return_to` and challenge, and its browser
    /// session still is, creates `exchange.session` for its account. A
    /// sign-out or a reset that ends the browser session first leaves the
    /// code worth nothing.
    async fn exchange_handoff(&self, exchange: &Exchange<'_>) -> ApiResult<Exchanged>;
}

/// D1's transient errors, as its documentation lists them: a read that
/// hit one is tried once more (writes are not: a write may have landed).
pub fn is_transient(message: &str) -> bool {
    [
        "Network connection lost",
        "storage caused object to be reset",
        "reset because its code was updated",
    ]
    .iter()
    .any(|m| message.contains(m))
}

/// Runs `read`, and once more if the first try failed transiently.
pub async fn read_with_retry<T, E, Fut>(
    mut read: impl FnMut() -> Fut,
    transient: impl Fn(&E) -> bool,
) -> Result<T, E>
where
    Fut: std::future::Future<Output = Result<T, E>>,
{
    match read().await {
        Err(e) if transient(&e) => read().await,
        other => other,
    }
}

/// Statement `i`'s result of a batch of `op`: an answer with fewer results
/// than statements is a storage failure (503), never an index panic, which
/// would abort the worker.
pub fn nth<'a, T>(op: &str, results: &'a [T], i: usize) -> ApiResult<&'a T> {
    results.get(i).ok_or_else(|| {
        crate::error::ApiError::storage(
            &format!("d1 {op}"),
            format_args!(
                "the batch answered {} results, statement {} has none",
                results.len(),
                i + 1
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pollster::block_on;

    #[test]
    fn a_short_batch_answer_is_a_storage_failure_not_a_panic() {
        let results = [1, 2];
        assert_eq!(nth("stats", &results, 1), Ok(&2));
        let e = nth("stats", &results, 6).unwrap_err();
        assert!(matches!(&e, crate::error::ApiError::StorageUnavailable(d) if d.contains("stats")));
        assert_eq!(e.status(), 503);
    }
    use std::cell::Cell;

    #[test]
    fn a_transient_read_failure_is_tried_once_more_and_others_are_not() {
        for (first, tries, ok) in [
            ("D1_ERROR: Network connection lost.", 2, true),
            ("D1_ERROR: storage caused object to be reset", 2, true),
            ("D1_ERROR: no such table: users", 1, false),
        ] {
            let calls = Cell::new(0);
            let result = block_on(read_with_retry(
                || {
                    calls.set(calls.get() + 1);
                    let n = calls.get();
                    async move {
                        if n == 1 {
                            Err(first.to_string())
                        } else {
                            Ok(n)
                        }
                    }
                },
                |e: &String| is_transient(e),
            ));
            assert_eq!((calls.get(), result.is_ok()), (tries, ok), "{first}");
        }
        // Two transient failures in a row: the second one is the answer.
        let calls = Cell::new(0);
        let result: Result<(), String> = block_on(read_with_retry(
            || {
                calls.set(calls.get() + 1);
                async { Err("Network connection lost".to_string()) }
            },
            |e: &String| is_transient(e),
        ));
        assert!(result.is_err() && calls.get() == 2);
    }
}
