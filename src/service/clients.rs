//! The operator's OpenID Connect clients, behind `ADMIN_TOKEN`: register
//! one (its secret shown once), list them, delete one.

use super::Service;
use crate::domain::audit::{Event, EventKind};
use crate::domain::oidc_client::{
    is_client_id, new_client_id, Client, ClientKind, ClientSecret, NewClient,
};
use crate::error::{ApiError, ApiResult};
use crate::ports::clock::Clock;
use crate::ports::limits::Counters;
use crate::ports::store::Store;
use crate::providers::mail::Mailer;
use crate::providers::text::Texter;

impl<S: Store, K: Counters, M: Mailer, T: Texter, C: Clock> Service<'_, S, K, M, T, C> {
    /// `POST /v1/admin/oidc-clients`: the client, and its secret when it is
    /// a confidential one. 400 when `api_key_id` names no live key.
    pub async fn create_oidc_client(
        &self,
        bearer: Option<&str>,
        new: &NewClient,
    ) -> ApiResult<(Client, Option<ClientSecret>)> {
        self.admin(bearer)?;
        let secret = match new.kind {
            ClientKind::Confidential => Some(ClientSecret::generate()?),
            ClientKind::Public => None,
        };
        let client = Client {
            id: new_client_id()?,
            name: new.name.clone(),
            kind: new.kind,
            redirect_uris: new.redirect_uris.clone(),
            post_logout_redirect_uris: new.post_logout_redirect_uris.clone(),
            api_key_id: new.api_key_id.clone(),
            created_at: self.clock.now(),
        };
        let hash = secret.as_ref().map(ClientSecret::hash);
        if !self
            .store
            .create_oidc_client(&client, hash.as_deref())
            .await?
        {
            return Err(ApiError::InvalidRequest(
                "field `api_key_id` names no API key that is not revoked".into(),
            ));
        }
        // What someone reviewing the trail needs: where sign-ins may go.
        let uris = client.redirect_uris.join(" ");
        self.audit_client(EventKind::OidcClientCreated, &client.id, Some(uris));
        Ok((client, secret))
    }

    pub async fn oidc_clients(&self, bearer: Option<&str>) -> ApiResult<Vec<Client>> {
        self.admin(bearer)?;
        self.store.oidc_clients().await
    }

    /// `DELETE /v1/admin/oidc-clients/{id}`: 404 for an unknown id, and
    /// for one of the wrong shape alike.
    pub async fn delete_oidc_client(&self, bearer: Option<&str>, id: &str) -> ApiResult<()> {
        self.admin(bearer)?;
        match is_client_id(id) && self.store.delete_oidc_client(id).await? {
            true => {
                self.audit_client(EventKind::OidcClientDeleted, id, None);
                Ok(())
            }
            false => Err(ApiError::ClientNotFound),
        }
    }

    fn audit_client(&self, kind: EventKind, id: &str, detail: Option<String>) {
        self.audit.record(Event {
            scope: Some(format!("client:{id}")),
            detail,
            ..Event::new(kind, "ok")
        });
    }
}

#[cfg(test)]
mod tests {
    use crate::domain::api_key::NewApiKey;
    use crate::domain::oidc_client::{is_client_id, NewClient};
    use crate::error::ApiError;
    use crate::service::testkit::{World, ADMIN};
    use pollster::block_on;

    fn new_client(kind: &str, key: Option<&str>) -> NewClient {
        NewClient::parse("Shop", kind, &["https://shop.example.com/cb"], &[], key).unwrap()
    }

    #[test]
    fn a_confidential_client_gets_a_secret_shown_once_and_stored_hashed() {
        let w = World::new(&[]);
        let svc = w.svc();
        let (client, secret) =
            block_on(svc.create_oidc_client(ADMIN, &new_client("confidential", None))).unwrap();
        let secret = secret.expect("a confidential client has a secret");
        assert!(is_client_id(&client.id));
        let stored = w.store.oidc_clients.borrow();
        assert_eq!(stored[0].1.as_deref(), Some(secret.hash().as_str()));
        assert_ne!(stored[0].1.as_deref(), Some(secret.expose()));
        drop(stored);
        let (_, none) =
            block_on(svc.create_oidc_client(ADMIN, &new_client("public", None))).unwrap();
        assert!(none.is_none(), "a public client has no secret");
        let list = block_on(svc.oidc_clients(ADMIN)).unwrap();
        assert_eq!(list.len(), 2);
    }

    #[test]
    fn only_the_operator_registers_lists_and_deletes_clients() {
        let w = World::new(&[]);
        let svc = w.svc();
        for bearer in [None, Some("wrong")] {
            assert_eq!(
                block_on(svc.create_oidc_client(bearer, &new_client("public", None))).unwrap_err(),
                ApiError::Unauthorized
            );
            assert_eq!(
                block_on(svc.oidc_clients(bearer)).unwrap_err(),
                ApiError::Unauthorized
            );
        }
        assert!(w.store.oidc_clients.borrow().is_empty());
        let (client, _) =
            block_on(svc.create_oidc_client(ADMIN, &new_client("public", None))).unwrap();
        assert_eq!(
            block_on(svc.delete_oidc_client(None, &client.id)).unwrap_err(),
            ApiError::Unauthorized
        );
        block_on(svc.delete_oidc_client(ADMIN, &client.id)).unwrap();
        assert_eq!(
            block_on(svc.delete_oidc_client(ADMIN, &client.id)).unwrap_err(),
            ApiError::ClientNotFound
        );
        assert_eq!(
            block_on(svc.delete_oidc_client(ADMIN, "not-an-id")).unwrap_err(),
            ApiError::ClientNotFound
        );
    }

    #[test]
    fn a_client_names_only_a_live_api_key() {
        let w = World::new(&[]);
        let svc = w.svc();
        let new = NewApiKey::parse("shop", None, &["email"]).unwrap();
        let (key, _) = block_on(svc.create_api_key(ADMIN, &new)).unwrap();
        block_on(svc.create_oidc_client(ADMIN, &new_client("public", Some(&key.id)))).unwrap();
        let unknown = "0123456789abcdef0123456789abcdef";
        assert!(matches!(
            block_on(svc.create_oidc_client(ADMIN, &new_client("public", Some(unknown)))),
            Err(ApiError::InvalidRequest(d)) if d.contains("api_key_id")
        ));
        block_on(svc.revoke_api_key(ADMIN, &key.id)).unwrap();
        assert!(
            block_on(svc.create_oidc_client(ADMIN, &new_client("public", Some(&key.id)))).is_err()
        );
    }
}
