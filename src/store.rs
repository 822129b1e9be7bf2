//! What the flows need from the database, as one small trait. D1 implements
//! it in `edge::d1_store`; every multi-step change is one atomic call here.

use crate::api_key::{ApiKey, NewApiKey};
use crate::audit::{Event, EventPage, StoredEvent};
use crate::code::CodeKey;
use crate::email::Email;
use crate::error::ApiResult;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub email: String,
    pub password_hash: String,
    pub verified: bool,
    pub created_at: u64,
}

#[derive(Debug, Clone)]
pub struct PendingCode {
    pub id: String,
    pub digest: String,
    pub attempts: u32,
    pub expires_at: u64,
}

#[derive(Debug, Clone)]
pub struct NewCode<'a> {
    pub id: &'a str,
    pub key: CodeKey<'a>,
    pub digest: &'a str,
    pub now: u64,
    pub expires_at: u64,
}

/// What a consumed code unlocks, applied in the same transaction as the consumption.
#[derive(Debug, Clone)]
pub enum Effect<'a> {
    /// An app's code: consuming it is all there is.
    Nothing,
    MarkVerified {
        email: &'a Email,
    },
    /// Sets the password, marks the address verified (the code proved
    /// ownership) and revokes every session of the account.
    ResetPassword {
        email: &'a Email,
        password_hash: String,
    },
    /// Passwordless sign-in: marks the address verified (the code proved
    /// ownership) and creates the session.
    SignIn {
        user_id: &'a str,
        token_hash: String,
        expires_at: u64,
    },
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Stats {
    pub active_codes: u64,
    pub expired_codes: u64,
    pub by_purpose: BTreeMap<String, u64>,
    pub users: UserStats,
    pub active_sessions: u64,
    pub app_codes: u64,
    pub api_keys: u64,
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
}

#[allow(async_fn_in_trait)]
pub trait Store {
    async fn user_by_email(&self, email: &Email) -> ApiResult<Option<User>>;
    /// Creates the account, or replaces the password of an unverified one.
    /// Returns `false`, changing nothing, when the address is already verified.
    async fn upsert_unverified_user(
        &self,
        id: &str,
        email: &Email,
        password_hash: &str,
        now: u64,
    ) -> ApiResult<bool>;
    async fn set_password_hash(
        &self,
        user_id: &str,
        password_hash: &str,
        now: u64,
    ) -> ApiResult<()>;

    /// Replaces any pending code for (scope, channel, address, purpose). The
    /// failure count carries over while the replaced code's window is open.
    async fn issue_code(&self, code: &NewCode<'_>, attempts_window_secs: u64) -> ApiResult<()>;
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
    /// Deletes the code and applies `effect` in one transaction, only if the
    /// code still exists unspent. Exactly one concurrent caller gets `true`.
    async fn consume_code(
        &self,
        code_id: &str,
        max_attempts: u32,
        effect: Effect<'_>,
        now: u64,
    ) -> ApiResult<bool>;

    async fn create_session(
        &self,
        token_hash: &str,
        user_id: &str,
        now: u64,
        expires_at: u64,
    ) -> ApiResult<()>;
    async fn session_user(&self, token_hash: &str, now: u64) -> ApiResult<Option<User>>;
    /// Ends the session; returns its account's address, `None` if there was no session.
    async fn delete_session(&self, token_hash: &str) -> ApiResult<Option<String>>;

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
    /// Revokes the key and drops its pending codes; `false` if no key has this id.
    async fn revoke_api_key(&self, id: &str, now: u64) -> ApiResult<bool>;

    async fn stats(&self, now: u64) -> ApiResult<Stats>;
    /// Deletes expired codes and sessions, accounts left unverified since
    /// `unverified_before`, and audit events older than `audit_before`.
    async fn cleanup(
        &self,
        now: u64,
        unverified_before: u64,
        audit_before: u64,
    ) -> ApiResult<Cleanup>;

    /// Appends a request's events, all at `now` from `ip`, in one write.
    async fn record_events(&self, events: &[Event], ip: &str, now: u64) -> ApiResult<()>;
    /// Newest first, optionally only those of one address.
    async fn events(
        &self,
        page: &EventPage,
        address_hash: Option<&str>,
    ) -> ApiResult<Vec<StoredEvent>>;
}
