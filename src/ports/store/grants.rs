//! The OpenID Provider's authorization codes, grants and refresh tokens.

use super::User;
use crate::error::ApiResult;

/// An authorization code to file for the browser session `session_hash`.
#[derive(Debug)]
pub struct NewAuthCode<'a> {
    pub code_hash: &'a str,
    pub client_id: &'a str,
    pub session_hash: &'a str,
    pub redirect_uri: &'a str,
    pub challenge: Option<&'a str>,
    pub nonce: Option<&'a str>,
    pub scope: &'a str,
    /// The resource server the tokens are for (RFC 8707).
    pub resource: Option<&'a str>,
    /// The session must have been made at or after this (`prompt=login`,
    /// `max_age`): an older one earns no code.
    pub signed_in_since: u64,
    pub now: u64,
    pub expires_at: u64,
}

/// A refresh token to file: its SHA-256 and when it lapses.
#[derive(Debug, Clone)]
pub struct NewRefresh {
    pub token_hash: String,
    pub expires_at: u64,
}

/// How a client proves itself, checked in the same transaction as what it
/// asks: the SHA-256 of its secret, `None` for a public client (whose
/// stored hash is NULL). A wrong proof changes nothing.
#[derive(Debug, Clone, Copy)]
pub struct ClientProof<'a> {
    pub client_id: &'a str,
    pub secret_hash: Option<&'a str>,
}

/// A client's redemption of an authorization code at the token endpoint.
#[derive(Debug)]
pub struct Redemption<'a> {
    pub code_hash: &'a str,
    pub client: ClientProof<'a>,
    pub redirect_uri: &'a str,
    /// The S256 challenge the client's `code_verifier` answers; `None`
    /// without a verifier.
    pub challenge: Option<&'a str>,
    /// The `resource` the client names, which must be the code's.
    pub resource: Option<&'a str>,
    /// The id of the grant the code becomes.
    pub grant_id: &'a str,
    /// When the grant lapses without `offline_access`; with it, it lives
    /// as long as its refresh token.
    pub grant_expires_at: u64,
    /// Filed with the grant when its scope holds `offline_access`.
    pub refresh: &'a NewRefresh,
    pub now: u64,
}

/// What a client holds by a grant.
#[derive(Debug, Clone)]
pub struct Grant {
    pub id: String,
    pub client_id: String,
    /// What the client's ID tokens are signed with.
    pub id_token_alg: crate::domain::jwk::Alg,
    pub user: User,
    pub scope: String,
    pub resource: Option<String>,
    pub nonce: Option<String>,
    pub auth_time: u64,
    pub amr: String,
    /// Whether a refresh token was filed with it (`offline_access`).
    pub refreshable: bool,
}

/// What a redemption found and did.
#[derive(Debug, Clone)]
pub enum Redeemed {
    /// The code was live, this client's, for this redirect URI and
    /// verifier, and its browser session too: here is the grant.
    Granted(Box<Grant>),
    /// The code is unknown, expired, another client's, for another
    /// redirect URI or verifier, or its session ended: spent all the same.
    Refused,
    /// The code was redeemed before: its grant, if any, is revoked now.
    Replayed,
    /// The client's proof failed: nothing was touched.
    ClientRefused,
}

/// A client's refresh: the token it presents and the one that replaces it.
#[derive(Debug)]
pub struct Rotation<'a> {
    pub token_hash: &'a str,
    pub client: ClientProof<'a>,
    /// The `resource` the client names, which must be the grant's.
    pub resource: Option<&'a str>,
    pub next: &'a NewRefresh,
    pub grant_expires_at: u64,
    pub now: u64,
}

#[derive(Debug, Clone)]
pub enum Rotated {
    Rotated(Box<Grant>),
    /// Unknown, expired, another client's, or its grant revoked.
    Refused,
    /// A token rotated before was presented again: its grant is revoked.
    Reused,
    /// The client's proof failed: nothing was touched.
    ClientRefused,
}

/// What a revocation found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    /// The client's proof failed: nothing was touched.
    ClientRefused,
    /// The proof held; whether a grant of the client's was revoked.
    Done(bool),
}

#[allow(async_fn_in_trait)]
pub trait GrantStore {
    /// Files a code only while the session is a live browser session of a
    /// verified account made at or after `signed_in_since`, and the client
    /// is registered; `false`, writing nothing, otherwise.
    async fn file_authorization_code(&self, code: &NewAuthCode<'_>) -> ApiResult<bool>;
    /// In one transaction, all of it only when the client's proof holds: a
    /// code redeemed before revokes the grant it made; otherwise the code is marked redeemed (right or wrong: a code
    /// is tried once), and when everything binds, the grant (and, with
    /// `offline_access`, its refresh token) is filed.
    async fn redeem_authorization_code(&self, r: &Redemption<'_>) -> ApiResult<Redeemed>;
    /// In one transaction, all of it only when the client's proof holds: a
    /// token rotated before revokes its grant; a live one of this client's is marked used, `next` filed, and the
    /// grant's life renewed.
    async fn rotate_refresh_token(&self, r: &Rotation<'_>) -> ApiResult<Rotated>;
    /// The live grant `id`, with its account.
    async fn grant(&self, id: &str, now: u64) -> ApiResult<Option<Grant>>;
    /// Revokes the grant of the refresh token `token_hash` (or, with
    /// `grant_id`, that grant), if the client's proof holds and the grant
    /// is the client's.
    async fn revoke_grant(
        &self,
        token_hash: Option<&str>,
        grant_id: Option<&str>,
        client: ClientProof<'_>,
    ) -> ApiResult<Revoked>;
}
