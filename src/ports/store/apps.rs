//! Apps: their API keys, their codes and their test recipients.

use super::{NewCode, PendingCode};
use crate::domain::api_key::{ApiKey, NewApiKey};
use crate::domain::channel::Channel;
use crate::domain::code::CodeKey;
use crate::domain::test_recipient::TestRecipient;
use crate::error::ApiResult;
use crate::ports::limits::SendCount;

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

#[allow(async_fn_in_trait)]
pub trait AppStore {
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
}
