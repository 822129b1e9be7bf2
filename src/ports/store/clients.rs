//! The operator's OpenID Connect clients.

use crate::domain::client_registration::RegistrationCaps;
use crate::domain::oidc_client::Client;
use crate::error::ApiResult;

/// The most clients a list holds, newest first: self-registered ones can
/// be many (the cron deletes the unused).
pub const MAX_LISTED_CLIENTS: usize = 500;

#[allow(async_fn_in_trait)]
pub trait ClientStore {
    /// Registers `client` with the SHA-256 of its secret (a confidential
    /// client's), in one statement, only while its `api_key_id`, if any,
    /// names a key that is not revoked: `false`, writing nothing, otherwise.
    async fn create_oidc_client(
        &self,
        client: &Client,
        secret_hash: Option<&str>,
    ) -> ApiResult<bool>;
    /// Registers a client that registers itself (RFC 7591), from `from`
    /// (a keyed pseudonym of the network client), in one statement, only
    /// while fewer than `caps` self-registered clients came since `since`,
    /// in all and from `from`: `false`, writing nothing, otherwise.
    async fn register_oidc_client(
        &self,
        client: &Client,
        from: &str,
        caps: RegistrationCaps,
        since: u64,
    ) -> ApiResult<bool>;
    /// The client `id` and the SHA-256 of its secret (a confidential one's).
    async fn oidc_client(&self, id: &str) -> ApiResult<Option<(Client, Option<String>)>>;
    /// The newest `MAX_LISTED_CLIENTS` clients, newest first.
    async fn oidc_clients(&self) -> ApiResult<Vec<Client>>;
    /// Deletes the client; `false` if no client has this id.
    async fn delete_oidc_client(&self, id: &str) -> ApiResult<bool>;
}
