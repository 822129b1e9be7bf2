//! The operator's OpenID Connect clients in D1.

use super::*;
use crate::domain::oidc_client::{Client, ClientKind};
use crate::ports::store::ClientStore;

const CLIENT_COLUMNS: &str =
    "id, name, kind, redirect_uris, post_logout_redirect_uris, api_key_id, created_at";

#[derive(Deserialize)]
struct ClientRow {
    id: String,
    name: String,
    kind: String,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    api_key_id: Option<String>,
    created_at: f64,
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
        }
    }
}

impl ClientStore for D1Store {
    async fn create_oidc_client(&self, c: &Client, secret_hash: Option<&str>) -> ApiResult<bool> {
        let list = |uris: &[String]| serde_json::to_string(uris).unwrap_or_else(|_| "[]".into());
        let created = self
            .write::<serde_json::Value>(
                "create_oidc_client",
                "INSERT INTO oidc_clients (id, name, kind, secret_hash, redirect_uris, post_logout_redirect_uris, api_key_id, created_at)
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8
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
        let sql = format!("SELECT {CLIENT_COLUMNS} FROM oidc_clients ORDER BY created_at DESC, id");
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
