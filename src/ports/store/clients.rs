//! The operator's OpenID Connect clients.

use crate::domain::oidc_client::Client;
use crate::error::ApiResult;

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
    /// The client `id` and the SHA-256 of its secret (a confidential one's).
    async fn oidc_client(&self, id: &str) -> ApiResult<Option<(Client, Option<String>)>>;
    /// Every client, newest first.
    async fn oidc_clients(&self) -> ApiResult<Vec<Client>>;
    /// Deletes the client; `false` if no client has this id.
    async fn delete_oidc_client(&self, id: &str) -> ApiResult<bool>;
}
