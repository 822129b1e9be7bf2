//! Sessions in D1.

use super::*;

use crate::domain::session::Presented;
use crate::error::ApiResult;
use crate::ports::store::User;
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

    async fn session_since(
        &self,
        token_hash: &str,
        now: u64,
        since: u64,
        by: Presented,
    ) -> ApiResult<Option<User>> {
        let sql = format!("{SESSION_USER} AND s.created_at >= ?4");
        Ok(self
            .read_first::<UserRow>(
                "session_since",
                &sql,
                &[text(token_hash), number(now), presented(by), number(since)],
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
}
