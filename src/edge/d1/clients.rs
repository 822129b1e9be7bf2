//! The operator's OpenID Connect clients in D1.

use super::*;
use crate::domain::client_registration::RegistrationCaps;
use crate::domain::jwk::Alg;
use crate::domain::oidc_client::{Client, ClientKind};
use crate::ports::store::ClientStore;
use crate::ports::store::MAX_LISTED_CLIENTS;

const CLIENT_COLUMNS: &str = "id, name, kind, redirect_uris, post_logout_redirect_uris, api_key_id, created_at, self_registered, id_token_alg";

fn list(uris: &[String]) -> String {
    serde_json::to_string(uris).unwrap_or_else(|_| "[]".into())
}

#[derive(Deserialize)]
struct ClientRow {
    id: String,
    name: String,
    kind: String,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    api_key_id: Option<String>,
    created_at: f64,
    self_registered: f64,
    id_token_alg: String,
    /// Selected only by `oidc_client`.
    #[serde(default)]
    secret_hash: Option<String>,
}

impl From<ClientRow> for Client {
    fn from(r: ClientRow) -> Self {
        // The rows were written from checked values; a list that does not
        // parse is read as empty, which no redirect ever matches.
        let uris = |json: &str| serde_json::from_str::<Vec<String>>(json).unwrap_or_default();
        Self {
            kind: match r.kind.as_str() {
                "confidential" => ClientKind::Confidential,
                _ => ClientKind::Public,
            },
            redirect_uris: uris(&r.redirect_uris),
            post_logout_redirect_uris: uris(&r.post_logout_redirect_uris),
            id: r.id,
            name: r.name,
            api_key_id: r.api_key_id,
            created_at: r.created_at as u64,
            self_registered: r.self_registered != 0.0,
            id_token_alg: Alg::parse(&r.id_token_alg).unwrap_or(Alg::Rs256),
        }
    }
}

impl ClientStore for D1Store {
    async fn create_oidc_client(&self, c: &Client, secret_hash: Option<&str>) -> ApiResult<bool> {
        let created = self
            .write::<serde_json::Value>(
                "create_oidc_client",
                "INSERT INTO oidc_clients (id, name, kind, secret_hash, redirect_uris, post_logout_redirect_uris, api_key_id, created_at, id_token_alg)
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9
                 WHERE ?7 IS NULL OR EXISTS (SELECT 1 FROM api_keys WHERE id = ?7 AND revoked_at IS NULL)
                 RETURNING id",
                &[
                    text(&c.id),
                    text(&c.name),
                    text(c.kind.as_str()),
                    maybe_text(secret_hash),
                    text(&list(&c.redirect_uris)),
                    text(&list(&c.post_logout_redirect_uris)),
                    maybe_text(c.api_key_id.as_deref()),
                    number(c.created_at),
                    text(c.id_token_alg.as_str()),
                ],
            )
            .await?;
        Ok(created.is_some())
    }

    async fn register_oidc_client(
        &self,
        c: &Client,
        from: &str,
        caps: RegistrationCaps,
        since: u64,
    ) -> ApiResult<bool> {
        // The counts read the partial index of self-registered clients,
        // which the overall cap keeps to at most `per_hour` rows an hour.
        let created = self
            .write::<serde_json::Value>(
                "register_oidc_client",
                "INSERT INTO oidc_clients (id, name, kind, secret_hash, redirect_uris, post_logout_redirect_uris, created_at, self_registered, registered_from, id_token_alg)
                 SELECT ?1, ?2, 'public', NULL, ?3, ?4, ?5, 1, ?6, ?7
                 WHERE (SELECT count(*) FROM oidc_clients WHERE self_registered = 1 AND created_at > ?8) < ?9
                   AND (SELECT count(*) FROM oidc_clients WHERE self_registered = 1 AND created_at > ?8 AND registered_from = ?6) < ?10
                 RETURNING id",
                &[
                    text(&c.id),
                    text(&c.name),
                    text(&list(&c.redirect_uris)),
                    text(&list(&c.post_logout_redirect_uris)),
                    number(c.created_at),
                    text(from),
                    text(c.id_token_alg.as_str()),
                    number(since),
                    number(u64::from(caps.per_hour)),
                    number(u64::from(caps.per_client_per_hour)),
                ],
            )
            .await?;
        Ok(created.is_some())
    }

    async fn oidc_client(&self, id: &str) -> ApiResult<Option<(Client, Option<String>)>> {
        let sql = format!("SELECT {CLIENT_COLUMNS}, secret_hash FROM oidc_clients WHERE id = ?1");
        Ok(self
            .read_first::<ClientRow>("oidc_client", &sql, &[text(id)])
            .await?
            .map(|mut r| {
                let secret_hash = r.secret_hash.take();
                (Client::from(r), secret_hash)
            }))
    }

    async fn oidc_clients(&self) -> ApiResult<Vec<Client>> {
        let sql = format!(
            "SELECT {CLIENT_COLUMNS} FROM oidc_clients ORDER BY created_at DESC, id LIMIT {MAX_LISTED_CLIENTS}"
        );
        Ok(self
            .read_all::<ClientRow>("oidc_clients", &sql, &[])
            .await?
            .into_iter()
            .map(Client::from)
            .collect())
    }

    async fn delete_oidc_client(&self, id: &str) -> ApiResult<bool> {
        let deleted = self
            .write::<serde_json::Value>(
                "delete_oidc_client",
                "DELETE FROM oidc_clients WHERE id = ?1 RETURNING id",
                &[text(id)],
            )
            .await?;
        Ok(deleted.is_some())
    }
}
