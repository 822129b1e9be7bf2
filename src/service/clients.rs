//! The OpenID Connect clients: the operator's, behind `ADMIN_TOKEN`
//! (register one, its secret shown once; list them; delete one), and
//! those that register themselves (RFC 7591), when the operator allows it.

use super::Service;
use crate::domain::audit::{Event, EventKind};
use crate::domain::client_registration::{Registration, RegistrationCaps};
use crate::domain::jwk::Alg;
use crate::domain::oauth_error::{OAuthCode, OAuthError};
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
        self.signs_with(new.id_token_alg).map_err(|e| match e {
            ApiError::OAuth(e) => ApiError::InvalidRequest(e.description),
            e => e,
        })?;
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
            self_registered: false,
            id_token_alg: new.id_token_alg,
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

    /// `POST /oauth/register` (RFC 7591): a public client, registered by
    /// whoever asks, when `OIDC_DYNAMIC_REGISTRATION` is on (404 when
    /// off). `network_client` is the caller's address key
    /// (`limits::client_key`), kept only as a keyed pseudonym to cap
    /// registrations per hour from one place; past a cap, 429.
    pub async fn register_client(
        &self,
        r: &Registration,
        network_client: Option<&str>,
    ) -> ApiResult<Client> {
        let caps = self.registration_caps()?;
        // Only a working provider takes registrations.
        self.cfg.oidc_issuer()?;
        self.cfg.oidc_keys()?;
        self.signs_with(r.id_token_alg)?;
        let pepper = self.cfg.pepper()?;
        let from = pepper.address_tag(&format!("registered-from:{}", network_client.unwrap_or("")));
        let now = self.clock.now();
        let client = Client {
            id: new_client_id()?,
            name: r.name.clone(),
            kind: ClientKind::Public,
            redirect_uris: r.redirect_uris.clone(),
            post_logout_redirect_uris: r.post_logout_redirect_uris.clone(),
            api_key_id: None,
            created_at: now,
            self_registered: true,
            id_token_alg: r.id_token_alg,
        };
        let since = now.saturating_sub(crate::ports::limits::HOUR);
        if !self
            .store
            .register_oidc_client(&client, &from, caps, since)
            .await?
        {
            // No detail: a refusal's row stays small, whatever was sent.
            self.audit
                .record(Event::new(EventKind::OidcClientRegistered, "rate_limited"));
            return Err(ApiError::RateLimited {
                retry_after_secs: crate::ports::limits::HOUR,
            });
        }
        let uris = client.redirect_uris.join(" ");
        self.audit_client(EventKind::OidcClientRegistered, &client.id, Some(uris));
        Ok(client)
    }

    /// The caps of dynamic registration; 404 when it is off, as if the
    /// route did not exist (checked before the body is read).
    pub fn registration_caps(&self) -> ApiResult<RegistrationCaps> {
        self.cfg.oidc_registration.ok_or(ApiError::NotFound)
    }

    /// Whether the signing keys can sign a client's ID tokens with `alg`:
    /// a client is refused what would fail at its first token.
    fn signs_with(&self, alg: Alg) -> ApiResult<()> {
        if alg == Alg::Rs256 {
            return Ok(());
        }
        match self.cfg.oidc_keys() {
            Ok(keys) if keys.signer(alg).is_some() => Ok(()),
            _ => Err(ApiError::OAuth(OAuthError::new(
                OAuthCode::InvalidClientMetadata,
                format!(
                    "`id_token_signed_response_alg`: no {} key is configured",
                    alg.as_str()
                ),
            ))),
        }
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
