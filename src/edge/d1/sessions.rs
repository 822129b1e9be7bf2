//! Sessions and the pages' hand-offs in D1.

use super::*;

use crate::domain::session::Presented;
use crate::error::ApiResult;
use crate::ports::store::{Exchange, Exchanged, NewHandoff, SpentHandoff, User};
use serde::Deserialize;
use worker::wasm_bindgen::JsValue;

/// The account of the live session ?1 at ?2, if it is a browser's (?3 = 1)
/// or not (?3 = 0): see `presented`.
const SESSION_USER: &str = "SELECT u.id AS id, u.email AS email, u.password_hash AS password_hash,
       u.verified AS verified, u.created_at AS created_at
  FROM sessions s JOIN users u ON u.id = s.user_id
  WHERE s.token_hash = ?1 AND s.expires_at > ?2 AND (s.issued_to = 'browser') = ?3";

/// The parameter of `SESSION_USER`'s and `delete_session`'s `?3`: 1 where
/// only a browser's session may be presented (the cookie), 0 where any
/// other (a bearer token). Mirrors `Presented::accepts`.
fn presented(p: Presented) -> JsValue {
    number(u64::from(p == Presented::Cookie))
}

impl SessionStore for D1Store {
    async fn session_user(
        &self,
        token_hash: &str,
        now: u64,
        by: Presented,
    ) -> ApiResult<Option<User>> {
        Ok(self
            .read_first::<UserRow>(
                "session_user",
                SESSION_USER,
                &[text(token_hash), number(now), presented(by)],
            )
            .await?
            .map(User::from))
    }

    async fn delete_session(&self, token_hash: &str, by: Presented) -> ApiResult<Option<String>> {
        #[derive(Deserialize)]
        struct Ended {
            email: Option<String>,
        }
        let row: Option<Ended> = self
            .write(
                "delete_session",
                "DELETE FROM sessions WHERE token_hash = ?1 AND (issued_to = 'browser') = ?2
                 RETURNING (SELECT email FROM users WHERE users.id = sessions.user_id) AS email",
                &[text(token_hash), presented(by)],
            )
            .await?;
        Ok(row.map(|r| r.email.unwrap_or_default()))
    }

    async fn file_handoff(&self, h: &NewHandoff<'_>) -> ApiResult<bool> {
        #[derive(Deserialize)]
        struct Filed {
            #[allow(dead_code)]
            code_hash: String,
        }
        let row: Option<Filed> = self
            .write(
                "file_handoff",
                "INSERT INTO handoffs (code_hash, session_hash, user_id, return_to, challenge, created_at, expires_at)
                 SELECT ?1, s.token_hash, s.user_id, ?3, ?4, ?5, ?6 FROM sessions s
                 WHERE s.token_hash = ?2 AND s.expires_at > ?5 AND s.issued_to = 'browser'
                 RETURNING code_hash",
                &[
                    text(h.code_hash),
                    text(h.session_hash),
                    text(h.return_to),
                    maybe_text(h.challenge),
                    number(h.now),
                    number(h.expires_at),
                ],
            )
            .await?;
        Ok(row.is_some())
    }

    async fn exchange_handoff(&self, x: &Exchange<'_>) -> ApiResult<Exchanged> {
        const OP: &str = "exchange_handoff";
        #[derive(Deserialize)]
        struct Spent {
            expires_at: f64,
            return_to: String,
            challenge: Option<String>,
        }
        // The key is checked by every statement, so a wrong key changes
        // nothing. The insert binds ?1 key hash, ?2 new token hash, ?3 now,
        // ?4 session expiry, ?5 code hash, ?6 return_to, ?7 challenge (NULL
        // without a verifier). It runs before the delete, which it reads.
        const KEY_OK: &str =
            "EXISTS (SELECT 1 FROM api_keys WHERE key_hash = ?1 AND revoked_at IS NULL)";
        let args = [
            text(x.key_hash),
            text(&x.session.token_hash),
            number(x.session.now),
            number(x.session.expires_at),
            text(x.code_hash),
            text(x.return_to),
            maybe_text(x.challenge),
        ];
        let r = self
            .batch(
                OP,
                vec![
                    self.stmt(OP, &format!("SELECT {KEY_OK} AS ok"), &[text(x.key_hash)])?,
                    self.stmt(
                        OP,
                        &format!(
                            "INSERT INTO sessions (token_hash, user_id, created_at, expires_at, issued_to)
                             SELECT ?2, h.user_id, ?3, ?4,
                                    'key:' || (SELECT id FROM api_keys WHERE key_hash = ?1 AND revoked_at IS NULL)
                               FROM handoffs h
                             WHERE h.code_hash = ?5 AND h.expires_at > ?3 AND h.return_to = ?6
                               AND h.challenge IS ?7 AND {KEY_OK}
                               AND EXISTS (SELECT 1 FROM sessions s
                                           WHERE s.token_hash = h.session_hash AND s.expires_at > ?3
                                             AND s.issued_to = 'browser')"
                        ),
                        &args,
                    )?,
                    self.stmt(
                        OP,
                        &format!(
                            "DELETE FROM handoffs WHERE code_hash = ?2 AND {KEY_OK}
                             RETURNING expires_at, return_to, challenge"
                        ),
                        &[text(x.key_hash), text(x.code_hash)],
                    )?,
                    self.stmt(
                        OP,
                        SESSION_USER,
                        &[
                            text(&x.session.token_hash),
                            number(x.session.now),
                            presented(Presented::Bearer),
                        ],
                    )?,
                ],
            )
            .await?;
        #[derive(Deserialize)]
        struct KeyOk {
            ok: f64,
        }
        let key_ok = r.rows::<KeyOk>(0)?.first().is_some_and(|k| k.ok != 0.0);
        let spent = r
            .rows::<Spent>(2)?
            .into_iter()
            .next()
            .map(|s| SpentHandoff {
                expires_at: s.expires_at as u64,
                return_to: s.return_to,
                challenge: s.challenge,
            });
        let user = r.rows::<UserRow>(3)?.into_iter().next().map(User::from);
        Ok(Exchanged {
            key_ok,
            spent,
            user,
        })
    }
}
