//! The OpenID Provider: the authorization code a signed-in browser earns
//! for a client, the token endpoint (codes and refresh tokens for signed
//! tokens), userinfo and revocation. The pages run the person's part
//! (`/oauth/authorize`); everything that decides is here.

use super::Service;
use crate::domain::audit::{Event, EventKind};
use crate::domain::jwk::{Alg, SigningKey};
use crate::domain::jwt::{self, Unverified, ACCESS_TOKEN_TYP};
use crate::domain::oauth::{
    has_scope, with_params, AuthorizationRequest, OAuthCode, OAuthError, ACCESS_TOKEN_TTL_SECS,
    CODE_TTL_SECS, HINT_GRACE_SECS, ID_TOKEN_TTL_SECS, REFRESH_TOKEN_TTL_SECS,
};
use crate::domain::oidc_client::{Client, ClientSecret};
use crate::domain::pkce::CodeVerifier;
use crate::domain::session::{token_hash, Presented, Token};
use crate::error::{ApiError, ApiResult};
use crate::ports::clock::Clock;
use crate::ports::limits::Counters;
use crate::ports::store::{
    ClientProof, Grant, NewAuthCode, NewRefresh, Redeemed, Redemption, Revoked, Rotated, Rotation,
    Store,
};
use crate::providers::mail::Mailer;
use crate::providers::text::Texter;
use serde_json::{json, Value};

/// How a client proved who it is at the token or revocation endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCredentials {
    pub client_id: String,
    pub secret: Option<String>,
    /// `client_secret_basic`: a failure is answered with `WWW-Authenticate`.
    pub basic: bool,
}

/// What a client asks the token endpoint for.
#[derive(Debug)]
pub enum GrantRequest {
    AuthorizationCode {
        code: String,
        redirect_uri: String,
        verifier: Option<CodeVerifier>,
        /// RFC 8707: the resource the access token is for, which must be
        /// the one the authorization request named.
        resource: Option<String>,
    },
    RefreshToken {
        refresh_token: String,
        resource: Option<String>,
    },
}

/// Whether the person agreed, on our consent page, to this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consent {
    NotAsked,
    Given,
}

/// Where a browser's authorization request goes next.
#[derive(Debug, Clone)]
pub enum Authorized {
    /// Back to the client, with a code.
    Redirect(String),
    /// To the sign-in page: no session answers the request.
    SignIn,
    /// To the consent page, for the account signed in here.
    Consent(Box<crate::ports::store::User>),
}

impl Authorized {
    /// Where the browser goes with a code, if it does.
    pub fn redirect(self) -> Option<String> {
        match self {
            Self::Redirect(to) => Some(to),
            _ => None,
        }
    }
}

/// The token endpoint's answer (RFC 6749 §5.1, OpenID Connect Core §3.1.3.3).
#[derive(Debug)]
pub struct Tokens {
    pub access_token: String,
    pub id_token: Option<String>,
    pub refresh_token: Option<Token>,
    pub scope: String,
}

fn oauth(code: OAuthCode, description: &str) -> ApiError {
    ApiError::OAuth(OAuthError::new(code, description))
}

fn invalid_grant(description: &str) -> ApiError {
    oauth(OAuthCode::InvalidGrant, description)
}

impl<S: Store, K: Counters, M: Mailer, T: Texter, C: Clock> Service<'_, S, K, M, T, C> {
    /// The client an authorization request names, when `redirect_uri` is
    /// exactly one it registered: only then may an error be sent there.
    pub async fn authorization_client(
        &self,
        client_id: Option<&str>,
        redirect_uri: Option<&str>,
    ) -> ApiResult<Option<Client>> {
        let (Some(id), Some(uri)) = (client_id, redirect_uri) else {
            return Ok(None);
        };
        if !crate::domain::oidc_client::is_client_id(id) {
            return Ok(None);
        }
        Ok(self
            .store
            .oidc_client(id)
            .await?
            .map(|(client, _)| client)
            .filter(|c| c.redirect_uris.iter().any(|r| r == uri)))
    }

    /// Where the browser holding `session_token` goes to answer `request`:
    /// the client's redirect URI with a fresh code, its `state` and our
    /// `iss` (RFC 9207); `SignIn` when the session cannot answer it (none,
    /// ended, or older than `prompt=login` or `max_age` allow); `Consent`
    /// when the client registered itself and the person has not agreed in
    /// this request.
    pub async fn authorization_code(
        &self,
        session_token: Option<&str>,
        request: &AuthorizationRequest,
        consent: Consent,
    ) -> ApiResult<Authorized> {
        let Some(session_token) = session_token else {
            return Ok(Authorized::SignIn);
        };
        let since = request.signed_in_since(self.clock.now());
        self.file_code(session_token, request, since, consent).await
    }

    /// `authorization_code` for the session the request's own sign-in has
    /// just made: it answers `prompt=login` and `max_age`, even in the
    /// second the app asked.
    pub async fn fresh_authorization_code(
        &self,
        session_token: &str,
        request: &AuthorizationRequest,
    ) -> ApiResult<Authorized> {
        self.file_code(session_token, request, 0, Consent::NotAsked)
            .await
    }

    async fn file_code(
        &self,
        session_token: &str,
        request: &AuthorizationRequest,
        signed_in_since: u64,
        consent: Consent,
    ) -> ApiResult<Authorized> {
        let issuer = self.cfg.oidc_issuer()?;
        // A self-registered client's name is anyone's claim: no code goes
        // to it before the signed-in person has agreed, on our page.
        // Only a session that could answer the request is asked: an older
        // one than `prompt=login` or `max_age` allow signs in first.
        if request.consent && consent == Consent::NotAsked {
            let user = self
                .store
                .session_since(
                    &token_hash(session_token),
                    self.clock.now(),
                    signed_in_since,
                    Presented::Cookie,
                )
                .await?;
            return Ok(match user {
                Some(user) => Authorized::Consent(Box::new(user)),
                None => Authorized::SignIn,
            });
        }
        let code = Token::generate()?;
        let now = self.clock.now();
        let filed = self
            .store
            .file_authorization_code(&NewAuthCode {
                code_hash: &token_hash(code.expose()),
                client_id: &request.client_id,
                session_hash: &token_hash(session_token),
                redirect_uri: &request.redirect_uri,
                challenge: request.challenge.as_deref(),
                nonce: request.nonce.as_deref(),
                scope: &request.scope,
                resource: request.resource.as_deref(),
                signed_in_since,
                now,
                expires_at: now + CODE_TTL_SECS,
            })
            .await?;
        if !filed {
            return Ok(Authorized::SignIn);
        }
        let mut params = vec![("code", code.expose())];
        if let Some(state) = &request.state {
            params.push(("state", state));
        }
        params.push(("iss", issuer));
        Ok(Authorized::Redirect(with_params(
            &request.redirect_uri,
            &params,
        )))
    }

    /// An error for the client, sent to its redirect URI (RFC 6749
    /// §4.1.2.1) with the request's `state` and our `iss`.
    pub fn authorization_error(
        &self,
        redirect_uri: &str,
        state: Option<&str>,
        error: &OAuthError,
    ) -> ApiResult<String> {
        let issuer = self.cfg.oidc_issuer()?;
        let mut params = vec![
            ("error", error.code.as_str()),
            ("error_description", error.description.as_str()),
        ];
        if let Some(state) = state {
            params.push(("state", state));
        }
        params.push(("iss", issuer));
        Ok(with_params(redirect_uri, &params))
    }

    /// `invalid_client` for these credentials (with `WWW-Authenticate`
    /// after Basic ones, RFC 6749 §5.2).
    fn client_refused(creds: &ClientCredentials) -> ApiError {
        ApiError::OAuth(OAuthError {
            basic: creds.basic,
            ..OAuthError::new(OAuthCode::InvalidClient, "client authentication failed")
        })
    }

    /// What the store checks these credentials by, in the same transaction
    /// as the work they authorize: a confidential client's secret as its
    /// SHA-256 (a public client sends none, and its stored hash is NULL).
    /// `None` for an id that is no client id at all.
    fn client_proof(creds: &ClientCredentials) -> Option<(String, Option<String>)> {
        crate::domain::oidc_client::is_client_id(&creds.client_id).then(|| {
            (
                creds.client_id.clone(),
                creds.secret.as_deref().map(ClientSecret::hash_of),
            )
        })
    }

    /// The token endpoint.
    pub async fn token(
        &self,
        creds: &ClientCredentials,
        request: &GrantRequest,
    ) -> ApiResult<Tokens> {
        let keys = self.cfg.oidc_keys()?;
        self.cfg.oidc_issuer()?;
        let (client_id, secret_hash) =
            Self::client_proof(creds).ok_or_else(|| Self::client_refused(creds))?;
        let client = ClientProof {
            client_id: &client_id,
            secret_hash: secret_hash.as_deref(),
        };
        let (purpose, result) = match request {
            GrantRequest::AuthorizationCode {
                code,
                redirect_uri,
                verifier,
                resource,
            } => (
                "authorization_code",
                match self.cfg.oidc_resources.check(resource.as_deref()) {
                    Ok(resource) => {
                        self.redeem_code(
                            creds,
                            client,
                            code,
                            redirect_uri,
                            verifier.as_ref(),
                            resource,
                        )
                        .await
                    }
                    Err(e) => Err(ApiError::OAuth(e)),
                },
            ),
            GrantRequest::RefreshToken {
                refresh_token,
                resource,
            } => (
                "refresh_token",
                match self.cfg.oidc_resources.check(resource.as_deref()) {
                    Ok(resource) => self.refresh(creds, client, refresh_token, resource).await,
                    Err(e) => Err(ApiError::OAuth(e)),
                },
            ),
        };
        let tokens = match result {
            Ok((grant, refresh)) => self.tokens(keys, &grant, refresh, purpose).await,
            Err(e) => Err(e),
        };
        self.audit.record(Event {
            scope: Some(format!("client:{client_id}")),
            purpose: Some(purpose.to_owned()),
            address_hash: match &tokens {
                Ok((grant, _)) => self.address_hash(&grant.user.email),
                Err(_) => None,
            },
            ..Event::new(
                EventKind::OauthToken,
                match &tokens {
                    Ok(_) => "ok",
                    Err(e) => e.code(),
                },
            )
        });
        tokens.map(|(_, tokens)| tokens)
    }

    async fn redeem_code(
        &self,
        creds: &ClientCredentials,
        client: ClientProof<'_>,
        code: &str,
        redirect_uri: &str,
        verifier: Option<&CodeVerifier>,
        resource: Option<String>,
    ) -> ApiResult<(Grant, Option<Token>)> {
        let now = self.clock.now();
        let refresh = Token::generate()?;
        let grant_id = super::random_id()?;
        let challenge = verifier.map(|v| v.challenge());
        let redeemed = self
            .store
            .redeem_authorization_code(&Redemption {
                code_hash: &token_hash(code),
                client,
                redirect_uri,
                challenge: challenge.as_ref().map(|c| c.as_str()),
                resource: resource.as_deref(),
                grant_id: &grant_id,
                // Without `offline_access` the grant lives as long as its
                // access token: userinfo answers for that long.
                grant_expires_at: now + ACCESS_TOKEN_TTL_SECS,
                refresh: &NewRefresh {
                    token_hash: token_hash(refresh.expose()),
                    expires_at: now + REFRESH_TOKEN_TTL_SECS,
                },
                now,
            })
            .await?;
        match redeemed {
            Redeemed::Granted(grant) => {
                let refresh = grant.refreshable.then_some(refresh);
                Ok((*grant, refresh))
            }
            Redeemed::Refused => Err(invalid_grant(
                "the code is unknown, expired, another client's, or for another redirect_uri, code_verifier or resource",
            )),
            Redeemed::ClientRefused => Err(Self::client_refused(creds)),
            Redeemed::Replayed => {
                self.audit.record(Event {
                    scope: Some(format!("client:{}", client.client_id)),
                    ..Event::new(EventKind::OauthGrantRevoked, "code_replayed")
                });
                Err(invalid_grant(
                    "the code was used before: the tokens issued for it are revoked",
                ))
            }
        }
    }

    async fn refresh(
        &self,
        creds: &ClientCredentials,
        client: ClientProof<'_>,
        refresh_token: &str,
        resource: Option<String>,
    ) -> ApiResult<(Grant, Option<Token>)> {
        let now = self.clock.now();
        let next = Token::generate()?;
        let rotated = self
            .store
            .rotate_refresh_token(&Rotation {
                token_hash: &token_hash(refresh_token),
                client,
                resource: resource.as_deref(),
                next: &NewRefresh {
                    token_hash: token_hash(next.expose()),
                    expires_at: now + REFRESH_TOKEN_TTL_SECS,
                },
                grant_expires_at: now + REFRESH_TOKEN_TTL_SECS,
                now,
            })
            .await?;
        match rotated {
            Rotated::Rotated(grant) => Ok((*grant, Some(next))),
            Rotated::Refused => Err(invalid_grant(
                "the refresh token is unknown, expired, revoked, another client's, or for another resource",
            )),
            Rotated::ClientRefused => Err(Self::client_refused(creds)),
            Rotated::Reused => {
                self.audit.record(Event {
                    scope: Some(format!("client:{}", client.client_id)),
                    ..Event::new(EventKind::OauthGrantRevoked, "refresh_token_reused")
                });
                Err(invalid_grant(
                    "the refresh token was used before: every token of its grant is revoked",
                ))
            }
        }
    }

    /// The signed tokens of `grant`. An ID token goes with `openid`; after
    /// a refresh it carries no `nonce` (OpenID Connect Core §12.2).
    async fn tokens(
        &self,
        keys: &crate::domain::jwk::SigningKeys,
        grant: &Grant,
        refresh: Option<Token>,
        purpose: &str,
    ) -> ApiResult<(Grant, Tokens)> {
        let issuer = self.cfg.oidc_issuer()?;
        let key = keys.signer(Alg::Rs256).ok_or_else(|| {
            ApiError::Unavailable("secret OIDC_SIGNING_KEYS holds no RS256 key".into())
        })?;
        let now = self.clock.now();
        // Audience-restricted (RFC 8707): a token for a resource server is
        // good there, and not at userinfo.
        let audience = grant.resource.as_deref().unwrap_or(&grant.client_id);
        let mut access = json!({
            "iss": issuer,
            "sub": grant.user.id,
            "aud": audience,
            "client_id": grant.client_id,
            "scope": grant.scope,
            "iat": now,
            "exp": now + ACCESS_TOKEN_TTL_SECS,
            "jti": super::random_id()?,
            "sid": grant.id,
            "auth_time": grant.auth_time,
        });
        if grant.amr.is_empty() {
            access.as_object_mut().map(|o| o.remove("auth_time"));
        }
        let access_token = self.sign(key, Some(ACCESS_TOKEN_TYP), &access).await?;
        let id_token = match has_scope(&grant.scope, "openid") {
            true => {
                let mut claims = json!({
                    "iss": issuer,
                    "sub": grant.user.id,
                    "aud": grant.client_id,
                    "azp": grant.client_id,
                    "iat": now,
                    "exp": now + ID_TOKEN_TTL_SECS,
                    "auth_time": grant.auth_time,
                });
                // The session's methods, space-separated as stored
                // (`pwd otp mfa` after a second step).
                let amr: Vec<&str> = grant.amr.split_whitespace().collect();
                if !amr.is_empty() {
                    claims["amr"] = json!(amr);
                }
                if let (Some(nonce), "authorization_code") = (&grant.nonce, purpose) {
                    claims["nonce"] = json!(nonce);
                }
                if has_scope(&grant.scope, "email") {
                    claims["email"] = json!(grant.user.email);
                    claims["email_verified"] = json!(grant.user.verified);
                }
                // The client's choice (`id_token_signed_response_alg`);
                // access tokens stay RS256, which every resource server reads.
                let id_key = match grant.id_token_alg {
                    Alg::Rs256 => key,
                    alg => keys.signer(alg).ok_or_else(|| {
                        ApiError::Unavailable(format!(
                            "secret OIDC_SIGNING_KEYS holds no {} key, which client {} signs its ID tokens with",
                            alg.as_str(),
                            grant.client_id
                        ))
                    })?,
                };
                Some(self.sign(id_key, None, &claims).await?)
            }
            false => None,
        };
        Ok((
            grant.clone(),
            Tokens {
                access_token,
                id_token,
                refresh_token: refresh,
                scope: grant.scope.clone(),
            },
        ))
    }

    async fn sign(&self, key: &SigningKey, typ: Option<&str>, claims: &Value) -> ApiResult<String> {
        let input = jwt::signing_input(key, typ, claims);
        let signature = self.signer.sign(key, input.as_bytes()).await?;
        Ok(jwt::compact(&input, &signature))
    }

    /// An access token of ours, checked: our key's signature, `at+jwt`,
    /// our issuer, not expired. Its claims.
    async fn access_token_claims(&self, token: &str) -> ApiResult<Unverified> {
        let keys = self.cfg.oidc_keys()?;
        let issuer = self.cfg.oidc_issuer()?;
        let invalid = || oauth(OAuthCode::InvalidToken, "the access token is not valid");
        let token = Unverified::parse(token).ok_or_else(invalid)?;
        let key = keys
            .by_kid(&token.kid)
            .filter(|k| k.alg == token.alg)
            .ok_or_else(invalid)?;
        if token.typ.as_deref() != Some(ACCESS_TOKEN_TYP)
            || token.claim_str("iss") != Some(issuer)
            || token.claim_str("aud").is_none()
            || token
                .claim_u64("exp")
                .is_none_or(|exp| exp <= self.clock.now())
        {
            return Err(invalid());
        }
        match self
            .signer
            .verify(key, token.input.as_bytes(), &token.signature)
            .await?
        {
            true => Ok(token),
            false => Err(invalid()),
        }
    }

    /// The client and account an `id_token_hint` names (RP-initiated
    /// logout): an ID token of ours, by its signature and issuer, expired
    /// or not (a hint outlives the token's use); `None` for anything else.
    pub async fn id_token_hint(&self, hint: &str) -> ApiResult<Option<(String, String)>> {
        let keys = self.cfg.oidc_keys()?;
        let issuer = self.cfg.oidc_issuer()?;
        let Some(token) = Unverified::parse(hint) else {
            return Ok(None);
        };
        let Some(key) = keys.by_kid(&token.kid).filter(|k| k.alg == token.alg) else {
            return Ok(None);
        };
        let recent = token
            .claim_u64("exp")
            .is_some_and(|exp| exp + HINT_GRACE_SECS > self.clock.now());
        let claims = (
            token.typ.is_none() && recent,
            token.claim_str("iss") == Some(issuer),
            token.claim_str("aud"),
            token.claim_str("sub"),
        );
        let (true, true, Some(aud), Some(sub)) = claims else {
            return Ok(None);
        };
        let valid = self
            .signer
            .verify(key, token.input.as_bytes(), &token.signature)
            .await?;
        Ok(valid.then(|| (aud.to_owned(), sub.to_owned())))
    }

    /// The client `client_id`, when `uri` is one of its registered
    /// post-logout redirect URIs, exactly.
    pub async fn logout_client(&self, client_id: &str, uri: &str) -> ApiResult<Option<Client>> {
        if !crate::domain::oidc_client::is_client_id(client_id) {
            return Ok(None);
        }
        Ok(self
            .store
            .oidc_client(client_id)
            .await?
            .map(|(client, _)| client)
            .filter(|c| c.post_logout_redirect_uris.iter().any(|r| r == uri)))
    }

    /// `/oauth/userinfo`: the account an access token speaks for, while
    /// its grant stands (a revocation or a password reset ends it).
    pub async fn userinfo(&self, access_token: Option<&str>) -> ApiResult<Value> {
        let invalid = || oauth(OAuthCode::InvalidToken, "the access token is not valid");
        let token = self
            .access_token_claims(access_token.ok_or_else(invalid)?)
            .await?;
        let grant_id = token.claim_str("sid").ok_or_else(invalid)?;
        // Ours only: a token for a resource server (RFC 8707) is not.
        if token.claim_str("aud") != token.claim_str("client_id") {
            return Err(invalid());
        }
        let grant = self
            .store
            .grant(grant_id, self.clock.now())
            .await?
            .filter(|g| token.claim_str("sub") == Some(g.user.id.as_str()))
            .ok_or_else(invalid)?;
        let mut info = json!({"sub": grant.user.id});
        if has_scope(&grant.scope, "email") {
            info["email"] = json!(grant.user.email);
            info["email_verified"] = json!(grant.user.verified);
        }
        Ok(info)
    }

    /// `/oauth/revoke` (RFC 7009): revokes the grant of a refresh token or
    /// an access token the client holds. An unknown token, or another
    /// client's, changes nothing and is answered the same.
    pub async fn revoke(&self, creds: &ClientCredentials, token: &str) -> ApiResult<()> {
        let (client_id, secret_hash) =
            Self::client_proof(creds).ok_or_else(|| Self::client_refused(creds))?;
        let grant_id = match Unverified::parse(token) {
            Some(_) => match self.access_token_claims(token).await {
                Ok(t) => t.claim_str("sid").map(str::to_owned),
                Err(ApiError::OAuth(_)) => None,
                Err(e) => return Err(e),
            },
            None => None,
        };
        let hash = token_hash(token);
        let revoked = self
            .store
            .revoke_grant(
                grant_id.is_none().then_some(hash.as_str()),
                grant_id.as_deref(),
                ClientProof {
                    client_id: &client_id,
                    secret_hash: secret_hash.as_deref(),
                },
            )
            .await?;
        match revoked {
            Revoked::ClientRefused => Err(Self::client_refused(creds)),
            Revoked::Done(false) => Ok(()),
            Revoked::Done(true) => {
                self.audit.record(Event {
                    scope: Some(format!("client:{client_id}")),
                    ..Event::new(EventKind::OauthGrantRevoked, "revoked")
                });
                Ok(())
            }
        }
    }
}
