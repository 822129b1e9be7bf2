//! The OpenID Provider's codes, grants and refresh tokens in D1. Each
//! change is one batch (one transaction), guarded so that exactly one of
//! two racing requests can win it.

use super::*;

use crate::domain::jwk::Alg;
use crate::ports::store::{
    ClientProof, Grant, GrantStore, NewAuthCode, Redeemed, Redemption, Revoked, Rotated, Rotation,
    User,
};
use serde::Deserialize;

/// A grant with its account, for `?1` = the grant's id.
const GRANT: &str =
    "SELECT g.id AS id, g.client_id AS client_id, c.id_token_alg AS id_token_alg, g.scope AS scope, g.resource AS resource, g.nonce AS nonce,
       g.auth_time AS auth_time, g.amr AS amr,
       u.id AS user_id, u.email AS email, u.password_hash AS password_hash,
       u.verified AS verified, u.created_at AS created_at,
       EXISTS (SELECT 1 FROM oauth_refresh_tokens t WHERE t.grant_id = g.id) AS refreshable
  FROM oauth_grants g JOIN users u ON u.id = g.user_id JOIN oidc_clients c ON c.id = g.client_id";

#[derive(Deserialize)]
struct GrantRow {
    id: String,
    client_id: String,
    id_token_alg: String,
    scope: String,
    resource: Option<String>,
    nonce: Option<String>,
    auth_time: f64,
    amr: String,
    user_id: String,
    email: String,
    password_hash: String,
    verified: f64,
    created_at: f64,
    refreshable: f64,
}

impl From<GrantRow> for Grant {
    fn from(r: GrantRow) -> Self {
        Grant {
            user: User::from(UserRow {
                id: r.user_id,
                email: r.email,
                password_hash: r.password_hash,
                verified: r.verified,
                created_at: r.created_at,
            }),
            id: r.id,
            client_id: r.client_id,
            id_token_alg: Alg::parse(&r.id_token_alg).unwrap_or(Alg::Rs256),
            scope: r.scope,
            resource: r.resource,
            nonce: r.nonce,
            auth_time: r.auth_time as u64,
            amr: r.amr,
            refreshable: r.refreshable != 0.0,
        }
    }
}

/// Whether client `?a` proves itself with the secret hash `?b` (NULL for a
/// public client, whose stored hash is NULL): every write of the token
/// endpoint is guarded by it, so a wrong proof changes nothing.
fn client_ok(a: u8, b: u8) -> String {
    format!("EXISTS (SELECT 1 FROM oidc_clients WHERE id = ?{a} AND secret_hash IS ?{b})")
}

/// The first statement of a client's batch: whether its proof holds.
fn client_check(
    store: &D1Store,
    op: &'static str,
    c: &ClientProof<'_>,
) -> ApiResult<D1PreparedStatement> {
    store.stmt(
        op,
        &format!("SELECT {} AS n", client_ok(1, 2)),
        &[text(c.client_id), maybe_text(c.secret_hash)],
    )
}

impl GrantStore for D1Store {
    async fn file_authorization_code(&self, c: &NewAuthCode<'_>) -> ApiResult<bool> {
        let row: Option<serde_json::Value> = self
            .write(
                "file_authorization_code",
                "INSERT INTO oauth_codes (code_hash, client_id, session_hash, user_id, redirect_uri, challenge,
                                          nonce, scope, resource, auth_time, amr, created_at, expires_at)
                 SELECT ?1, ?2, s.token_hash, s.user_id, ?4, ?5, ?6, ?7, ?11, s.created_at, COALESCE(s.amr, ''), ?8, ?9
                   FROM sessions s JOIN users u ON u.id = s.user_id
                  WHERE s.token_hash = ?3 AND s.expires_at > ?8 AND s.issued_to = 'browser'
                    AND s.created_at >= ?10 AND u.verified = 1
                    AND EXISTS (SELECT 1 FROM oidc_clients WHERE id = ?2)
                 RETURNING code_hash",
                &[
                    text(c.code_hash),
                    text(c.client_id),
                    text(c.session_hash),
                    text(c.redirect_uri),
                    maybe_text(c.challenge),
                    maybe_text(c.nonce),
                    text(c.scope),
                    number(c.now),
                    number(c.expires_at),
                    number(c.signed_in_since),
                    maybe_text(c.resource),
                ],
            )
            .await?;
        Ok(row.is_some())
    }

    async fn redeem_authorization_code(&self, r: &Redemption<'_>) -> ApiResult<Redeemed> {
        const OP: &str = "redeem_authorization_code";
        let c = &r.client;
        let r = self
            .batch(
                OP,
                vec![
                    client_check(self, OP, c)?,
                    self.stmt(
                        OP,
                        "SELECT EXISTS (SELECT 1 FROM oauth_codes WHERE code_hash = ?1 AND used_at IS NOT NULL) AS n",
                        &[text(r.code_hash)],
                    )?,
                    // A replay revokes what the first redemption made.
                    self.stmt(
                        OP,
                        &format!(
                            "DELETE FROM oauth_grants
                              WHERE id = (SELECT grant_id FROM oauth_codes
                                           WHERE code_hash = ?1 AND used_at IS NOT NULL AND client_id = ?2)
                                AND {}",
                            client_ok(2, 3)
                        ),
                        &[text(r.code_hash), text(c.client_id), maybe_text(c.secret_hash)],
                    )?,
                    // Tried once, right or wrong; the grant id is set only
                    // where everything binds.
                    self.stmt(
                        OP,
                        &format!(
                            "UPDATE oauth_codes SET used_at = ?5,
                                    grant_id = CASE WHEN client_id = ?2 AND redirect_uri = ?3 AND challenge IS ?4
                                                     AND expires_at > ?5 AND (?7 IS NULL OR resource = ?7)
                                                     AND EXISTS (SELECT 1 FROM sessions s
                                                                  WHERE s.token_hash = oauth_codes.session_hash
                                                                    AND s.expires_at > ?5 AND s.issued_to = 'browser')
                                               THEN ?6 END
                              WHERE code_hash = ?1 AND used_at IS NULL AND {}",
                            client_ok(2, 8)
                        ),
                        &[
                            text(r.code_hash),
                            text(c.client_id),
                            text(r.redirect_uri),
                            maybe_text(r.challenge),
                            number(r.now),
                            text(r.grant_id),
                            maybe_text(r.resource),
                            maybe_text(c.secret_hash),
                        ],
                    )?,
                    self.stmt(
                        OP,
                        // A grant with a refresh token lives as long as it.
                        "INSERT INTO oauth_grants (id, client_id, user_id, scope, resource, nonce, auth_time, amr, created_at, expires_at)
                         SELECT grant_id, client_id, user_id, scope, resource, nonce, auth_time, amr, ?3,
                                CASE WHEN (' ' || scope || ' ') LIKE '% offline_access %' THEN ?5 ELSE ?4 END
                           FROM oauth_codes WHERE code_hash = ?1 AND grant_id = ?2 AND used_at = ?3",
                        &[
                            text(r.code_hash),
                            text(r.grant_id),
                            number(r.now),
                            number(r.grant_expires_at),
                            number(r.refresh.expires_at),
                        ],
                    )?,
                    self.stmt(
                        OP,
                        "INSERT INTO oauth_refresh_tokens (token_hash, grant_id, created_at, expires_at)
                         SELECT ?2, id, ?3, ?4 FROM oauth_grants
                          WHERE id = ?1 AND (' ' || scope || ' ') LIKE '% offline_access %'",
                        &[
                            text(r.grant_id),
                            text(&r.refresh.token_hash),
                            number(r.now),
                            number(r.refresh.expires_at),
                        ],
                    )?,
                    self.stmt(OP, &format!("{GRANT} WHERE g.id = ?1"), &[text(r.grant_id)])?,
                ],
            )
            .await?;
        if !r.flag(0)? {
            return Ok(Redeemed::ClientRefused);
        }
        if r.flag(1)? {
            return Ok(Redeemed::Replayed);
        }
        Ok(match r.rows::<GrantRow>(6)?.into_iter().next() {
            Some(g) => Redeemed::Granted(Box::new(g.into())),
            None => Redeemed::Refused,
        })
    }

    async fn rotate_refresh_token(&self, r: &Rotation<'_>) -> ApiResult<Rotated> {
        const OP: &str = "rotate_refresh_token";
        let c = &r.client;
        let next = [text(&r.next.token_hash)];
        let r = self
            .batch(
                OP,
                vec![
                    client_check(self, OP, c)?,
                    self.stmt(
                        OP,
                        "SELECT EXISTS (SELECT 1 FROM oauth_refresh_tokens WHERE token_hash = ?1 AND used_at IS NOT NULL) AS n",
                        &[text(r.token_hash)],
                    )?,
                    // A rotated token presented again: someone holds a copy,
                    // so the whole family goes (RFC 9700 §4.14.2).
                    self.stmt(
                        OP,
                        &format!(
                            "DELETE FROM oauth_grants
                              WHERE id = (SELECT grant_id FROM oauth_refresh_tokens WHERE token_hash = ?1 AND used_at IS NOT NULL)
                                AND {}",
                            client_ok(2, 3)
                        ),
                        &[text(r.token_hash), text(c.client_id), maybe_text(c.secret_hash)],
                    )?,
                    self.stmt(
                        OP,
                        &format!(
                            "UPDATE oauth_refresh_tokens SET used_at = ?3
                              WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?3
                                AND grant_id IN (SELECT id FROM oauth_grants WHERE client_id = ?2 AND expires_at > ?3
                                                   AND (?4 IS NULL OR resource = ?4))
                                AND {}",
                            client_ok(2, 5)
                        ),
                        &[
                            text(r.token_hash),
                            text(c.client_id),
                            number(r.now),
                            maybe_text(r.resource),
                            maybe_text(c.secret_hash),
                        ],
                    )?,
                    // `changes()` is the UPDATE's just above: only the
                    // request that marked the token used files the next.
                    self.stmt(
                        OP,
                        "INSERT INTO oauth_refresh_tokens (token_hash, grant_id, created_at, expires_at)
                         SELECT ?2, grant_id, ?3, ?4 FROM oauth_refresh_tokens
                          WHERE changes() = 1 AND token_hash = ?1 AND used_at = ?3",
                        &[
                            text(r.token_hash),
                            text(&r.next.token_hash),
                            number(r.now),
                            number(r.next.expires_at),
                        ],
                    )?,
                    self.stmt(
                        OP,
                        "UPDATE oauth_grants SET expires_at = ?2
                          WHERE id = (SELECT grant_id FROM oauth_refresh_tokens WHERE token_hash = ?1)",
                        &[text(&r.next.token_hash), number(r.grant_expires_at)],
                    )?,
                    self.stmt(
                        OP,
                        &format!(
                            "{GRANT} WHERE g.id = (SELECT grant_id FROM oauth_refresh_tokens WHERE token_hash = ?1)"
                        ),
                        &next,
                    )?,
                ],
            )
            .await?;
        if !r.flag(0)? {
            return Ok(Rotated::ClientRefused);
        }
        if r.flag(1)? {
            return Ok(Rotated::Reused);
        }
        Ok(match r.rows::<GrantRow>(6)?.into_iter().next() {
            Some(g) => Rotated::Rotated(Box::new(g.into())),
            None => Rotated::Refused,
        })
    }

    async fn grant(&self, id: &str, now: u64) -> ApiResult<Option<Grant>> {
        Ok(self
            .read_first::<GrantRow>(
                "grant",
                &format!("{GRANT} WHERE g.id = ?1 AND g.expires_at > ?2"),
                &[text(id), number(now)],
            )
            .await?
            .map(Grant::from))
    }

    async fn revoke_grant(
        &self,
        token_hash: Option<&str>,
        grant_id: Option<&str>,
        c: ClientProof<'_>,
    ) -> ApiResult<Revoked> {
        const OP: &str = "revoke_grant";
        let r = self
            .batch(
                OP,
                vec![
                    client_check(self, OP, &c)?,
                    self.stmt(
                        OP,
                        &format!(
                            "DELETE FROM oauth_grants
                              WHERE client_id = ?3 AND {}
                                AND id = COALESCE(?2, (SELECT grant_id FROM oauth_refresh_tokens WHERE token_hash = ?1))
                             RETURNING id",
                            client_ok(3, 4)
                        ),
                        &[
                            maybe_text(token_hash),
                            maybe_text(grant_id),
                            text(c.client_id),
                            maybe_text(c.secret_hash),
                        ],
                    )?,
                ],
            )
            .await?;
        Ok(match r.flag(0)? {
            false => Revoked::ClientRefused,
            true => Revoked::Done(r.returned(1)?),
        })
    }
}
