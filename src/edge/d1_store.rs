//! `Store` over the D1 binding `DB`. Unix seconds are bound as f64: D1 has
//! no BigInt and its integer binding is only 32 bits wide.

use crate::api_key::{ApiKey, Channels, NewApiKey};
use crate::audit::{Event, EventPage, StoredEvent};
use crate::clock::rfc3339;
use crate::code::{app_scope, CodeKey, CORE_SCOPE};
use crate::email::Email;
use crate::error::{ApiError, ApiResult};
use crate::purpose::Purpose;
use crate::store::{Cleanup, Effect, NewCode, PendingCode, Stats, Store, User, UserStats};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::collections::BTreeMap;
use worker::wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement, D1Result};

pub struct D1Store(pub D1Database);

/// Every table schema.sql creates.
const TABLES: [&str; 5] = ["users", "codes", "sessions", "api_keys", "auth_events"];

fn s(v: &str) -> JsValue {
    JsValue::from_str(v)
}

fn n(v: u64) -> JsValue {
    JsValue::from_f64(v as f64)
}

/// A schema that was never applied is an operator's problem, not a bug:
/// answer 503 and say how to fix it.
fn db_error(e: worker::Error) -> ApiError {
    let text = e.to_string();
    let schema_errors = ["no such table", "no such column", "has no column named"];
    if schema_errors.iter().any(|e| text.contains(e)) {
        ApiError::Unavailable("the D1 schema is missing or outdated: apply schema.sql".into())
    } else {
        ApiError::Internal(format!("d1: {text}"))
    }
}

#[derive(Deserialize)]
struct UserRow {
    id: String,
    email: String,
    password_hash: String,
    verified: f64,
    created_at: f64,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        User {
            id: r.id,
            email: r.email,
            password_hash: r.password_hash,
            verified: r.verified != 0.0,
            created_at: r.created_at as u64,
        }
    }
}

#[derive(Deserialize)]
struct CodeRow {
    id: String,
    digest: String,
    attempts: f64,
    expires_at: f64,
}

#[derive(Deserialize)]
struct KeyRow {
    id: String,
    name: String,
    app_name: Option<String>,
    channels: String,
    hint: String,
    created_at: f64,
    revoked_at: Option<f64>,
}

impl From<KeyRow> for ApiKey {
    fn from(r: KeyRow) -> Self {
        ApiKey {
            id: r.id,
            name: r.name,
            app_name: r.app_name,
            channels: Channels::from_stored(&r.channels),
            hint: r.hint,
            created_at: r.created_at as u64,
            revoked_at: r.revoked_at.map(|t| t as u64),
        }
    }
}

const KEY_COLUMNS: &str = "id, name, app_name, channels, hint, created_at, revoked_at";

#[derive(Deserialize)]
struct Count {
    n: f64,
}

impl D1Store {
    fn stmt(&self, sql: &str, args: &[JsValue]) -> ApiResult<D1PreparedStatement> {
        self.0.prepare(sql).bind(args).map_err(db_error)
    }

    async fn first<T: DeserializeOwned>(
        &self,
        sql: &str,
        args: &[JsValue],
    ) -> ApiResult<Option<T>> {
        self.stmt(sql, args)?
            .first::<T>(None)
            .await
            .map_err(db_error)
    }

    async fn batch(&self, statements: Vec<D1PreparedStatement>) -> ApiResult<Vec<D1Result>> {
        self.0.batch(statements).await.map_err(db_error)
    }

    pub async fn health(&self) -> ApiResult<()> {
        #[derive(Deserialize)]
        struct Table {
            name: String,
        }
        let r = self
            .stmt("SELECT name FROM sqlite_master WHERE type = 'table'", &[])?
            .all()
            .await
            .map_err(db_error)?;
        let present: Vec<String> = rows::<Table>(&r)?.into_iter().map(|t| t.name).collect();
        let missing: Vec<&str> = TABLES
            .into_iter()
            .filter(|t| !present.iter().any(|p| p == t))
            .collect();
        match missing.is_empty() {
            true => Ok(()),
            false => Err(ApiError::Unavailable(format!(
                "the D1 schema is missing or outdated (no table {}): apply schema.sql",
                missing.join(", ")
            ))),
        }
    }
}

fn rows<T: DeserializeOwned>(r: &D1Result) -> ApiResult<Vec<T>> {
    r.results::<T>().map_err(db_error)
}

fn changes(r: &D1Result) -> u64 {
    r.meta().ok().flatten().and_then(|m| m.changes).unwrap_or(0) as u64
}

const USER_COLUMNS: &str = "id, email, password_hash, verified, created_at";

/// The code exists, is unexpired and unburned: the guard of every consumption.
const CODE_LIVE: &str =
    "EXISTS (SELECT 1 FROM codes WHERE id = ?1 AND attempts <= ?2 AND expires_at > ?3)";

impl Store for D1Store {
    async fn user_by_email(&self, email: &Email) -> ApiResult<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email = ?1");
        Ok(self
            .first::<UserRow>(&sql, &[s(email.as_str())])
            .await?
            .map(User::from))
    }

    async fn upsert_unverified_user(
        &self,
        id: &str,
        email: &Email,
        password_hash: &str,
        now: u64,
    ) -> ApiResult<bool> {
        let row: Option<serde_json::Value> = self
            .first(
                "INSERT INTO users (id, email, password_hash, verified, created_at, updated_at) VALUES (?1, ?2, ?3, 0, ?4, ?4)
                 ON CONFLICT (email) DO UPDATE SET password_hash = excluded.password_hash, updated_at = excluded.updated_at
                 WHERE users.verified = 0
                 RETURNING id",
                &[s(id), s(email.as_str()), s(password_hash), n(now)],
            )
            .await?;
        Ok(row.is_some())
    }

    async fn set_password_hash(
        &self,
        user_id: &str,
        password_hash: &str,
        now: u64,
    ) -> ApiResult<()> {
        self.stmt(
            "UPDATE users SET password_hash = ?2, updated_at = ?3 WHERE id = ?1",
            &[s(user_id), s(password_hash), n(now)],
        )?
        .run()
        .await
        .map_err(db_error)
        .map(drop)
    }

    async fn issue_code(&self, c: &NewCode<'_>, attempts_window_secs: u64) -> ApiResult<()> {
        self.stmt(
            "INSERT INTO codes (id, scope, channel, address, purpose, digest, attempts, window_ends_at, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, ?8, ?9)
             ON CONFLICT (scope, channel, address, purpose) DO UPDATE SET
               id = excluded.id, digest = excluded.digest, created_at = excluded.created_at, expires_at = excluded.expires_at,
               attempts = CASE WHEN codes.window_ends_at > excluded.created_at THEN codes.attempts ELSE 0 END,
               window_ends_at = CASE WHEN codes.window_ends_at > excluded.created_at THEN codes.window_ends_at ELSE excluded.window_ends_at END",
            &[
                s(c.id),
                s(c.key.scope),
                s(c.key.channel.as_str()),
                s(c.key.address),
                s(c.key.purpose),
                s(c.digest),
                n(c.now + attempts_window_secs),
                n(c.now),
                n(c.expires_at),
            ],
        )?
        .run()
        .await
        .map_err(db_error)
        .map(drop)
    }

    async fn claim_attempt(
        &self,
        key: &CodeKey<'_>,
        max_attempts: u32,
    ) -> ApiResult<Option<PendingCode>> {
        let row: Option<CodeRow> = self
            .first(
                "UPDATE codes SET attempts = MIN(attempts + 1, ?5 + 1)
                 WHERE scope = ?1 AND channel = ?2 AND address = ?3 AND purpose = ?4
                 RETURNING id, digest, attempts, expires_at",
                &[
                    s(key.scope),
                    s(key.channel.as_str()),
                    s(key.address),
                    s(key.purpose),
                    n(max_attempts.into()),
                ],
            )
            .await?;
        Ok(row.map(|r| PendingCode {
            id: r.id,
            digest: r.digest,
            attempts: r.attempts as u32,
            expires_at: r.expires_at as u64,
        }))
    }

    async fn consume_code(
        &self,
        code_id: &str,
        max_attempts: u32,
        effect: Effect<'_>,
        now: u64,
    ) -> ApiResult<bool> {
        let guard = [s(code_id), n(max_attempts.into()), n(now)];
        let with = |extra: &[JsValue]| -> Vec<JsValue> {
            guard.iter().cloned().chain(extra.iter().cloned()).collect()
        };
        // One batch is one transaction: the effect lands if and only if the
        // final DELETE finds the code, which exactly one caller can do.
        let mut statements = match &effect {
            Effect::Nothing => vec![],
            Effect::SignIn { user_id, token_hash, expires_at } => vec![
                self.stmt(
                    &format!("UPDATE users SET verified = 1, updated_at = ?3 WHERE id = ?4 AND {CODE_LIVE}"),
                    &with(&[s(user_id)]),
                )?,
                self.stmt(
                    &format!(
                        "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) SELECT ?5, ?4, ?3, ?6 WHERE {CODE_LIVE}"
                    ),
                    &with(&[s(user_id), s(token_hash), n(*expires_at)]),
                )?,
            ],
            Effect::MarkVerified { email } => vec![self.stmt(
                &format!("UPDATE users SET verified = 1, updated_at = ?3 WHERE email = ?4 AND {CODE_LIVE}"),
                &with(&[s(email.as_str())]),
            )?],
            Effect::ResetPassword { email, password_hash } => vec![
                self.stmt(
                    &format!(
                        "DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE email = ?4) AND {CODE_LIVE}"
                    ),
                    &with(&[s(email.as_str())]),
                )?,
                self.stmt(
                    &format!(
                        "UPDATE users SET password_hash = ?5, verified = 1, updated_at = ?3 WHERE email = ?4 AND {CODE_LIVE}"
                    ),
                    &with(&[s(email.as_str()), s(password_hash)]),
                )?,
            ],
        };
        statements.push(self.stmt(
            "DELETE FROM codes WHERE id = ?1 AND attempts <= ?2 AND expires_at > ?3 RETURNING id",
            &guard,
        )?);
        let results = self.batch(statements).await?;
        let consumed = results
            .last()
            .map(rows::<serde_json::Value>)
            .transpose()?
            .is_some_and(|r| !r.is_empty());
        Ok(consumed)
    }

    async fn create_session(
        &self,
        token_hash: &str,
        user_id: &str,
        now: u64,
        expires_at: u64,
    ) -> ApiResult<()> {
        self.stmt(
            "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
            &[s(token_hash), s(user_id), n(now), n(expires_at)],
        )?
        .run()
        .await
        .map_err(db_error)
        .map(drop)
    }

    async fn session_user(&self, token_hash: &str, now: u64) -> ApiResult<Option<User>> {
        let sql = "SELECT u.id AS id, u.email AS email, u.password_hash AS password_hash, u.verified AS verified, u.created_at AS created_at
                   FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?1 AND s.expires_at > ?2";
        Ok(self
            .first::<UserRow>(sql, &[s(token_hash), n(now)])
            .await?
            .map(User::from))
    }

    async fn delete_session(&self, token_hash: &str) -> ApiResult<Option<String>> {
        #[derive(Deserialize)]
        struct Ended {
            email: Option<String>,
        }
        let row: Option<Ended> = self
            .first(
                "DELETE FROM sessions WHERE token_hash = ?1
                 RETURNING (SELECT email FROM users WHERE users.id = sessions.user_id) AS email",
                &[s(token_hash)],
            )
            .await?;
        Ok(row.map(|r| r.email.unwrap_or_default()))
    }

    async fn create_api_key(
        &self,
        id: &str,
        key_hash: &str,
        hint: &str,
        new: &NewApiKey,
        now: u64,
    ) -> ApiResult<()> {
        let app_name = new.app_name.as_deref().map_or(JsValue::NULL, s);
        self.stmt(
            "INSERT INTO api_keys (id, key_hash, hint, name, app_name, channels, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            &[s(id), s(key_hash), s(hint), s(&new.name), app_name, s(&new.channels.to_stored()), n(now)],
        )?
        .run()
        .await
        .map_err(db_error)
        .map(drop)
    }

    async fn api_keys(&self) -> ApiResult<Vec<ApiKey>> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at DESC, id");
        let result = self.stmt(&sql, &[])?.all().await.map_err(db_error)?;
        Ok(rows::<KeyRow>(&result)?
            .into_iter()
            .map(ApiKey::from)
            .collect())
    }

    async fn api_key_by_hash(&self, key_hash: &str) -> ApiResult<Option<ApiKey>> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = ?1 AND revoked_at IS NULL"
        );
        Ok(self
            .first::<KeyRow>(&sql, &[s(key_hash)])
            .await?
            .map(ApiKey::from))
    }

    async fn revoke_api_key(&self, id: &str, now: u64) -> ApiResult<bool> {
        let r = self
            .batch(vec![
                self.stmt("DELETE FROM codes WHERE scope = ?1", &[s(&app_scope(id))])?,
                self.stmt(
                    "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1 RETURNING id",
                    &[s(id), n(now)],
                )?,
            ])
            .await?;
        Ok(!rows::<serde_json::Value>(&r[1])?.is_empty())
    }

    async fn stats(&self, now: u64) -> ApiResult<Stats> {
        #[derive(Deserialize)]
        struct PurposeCount {
            purpose: String,
            n: f64,
        }
        #[derive(Deserialize)]
        struct Users {
            total: f64,
            verified: f64,
        }
        let t = [n(now)];
        let r = self
            .batch(vec![
                self.stmt("SELECT COUNT(*) AS n FROM codes WHERE expires_at > ?1", &t)?,
                self.stmt("SELECT COUNT(*) AS n FROM codes WHERE expires_at <= ?1", &t)?,
                self.stmt("SELECT purpose, COUNT(*) AS n FROM codes WHERE expires_at > ?1 AND scope = ?2 GROUP BY purpose", &[n(now), s(CORE_SCOPE)])?,
                self.stmt("SELECT COUNT(*) AS total, COALESCE(SUM(verified), 0) AS verified FROM users", &[])?,
                self.stmt("SELECT COUNT(*) AS n FROM sessions WHERE expires_at > ?1", &t)?,
                self.stmt("SELECT COUNT(*) AS n FROM codes WHERE expires_at > ?1 AND scope <> ?2", &[n(now), s(CORE_SCOPE)])?,
                self.stmt("SELECT COUNT(*) AS n FROM api_keys WHERE revoked_at IS NULL", &[])?,
            ])
            .await?;
        let count = |i: usize| -> ApiResult<u64> {
            Ok(rows::<Count>(&r[i])?.first().map_or(0, |c| c.n as u64))
        };
        let mut by_purpose: BTreeMap<String, u64> =
            [Purpose::VerifyEmail, Purpose::ResetPassword, Purpose::Login]
                .iter()
                .map(|p| (p.as_str().to_owned(), 0))
                .collect();
        for pc in rows::<PurposeCount>(&r[2])? {
            by_purpose.insert(pc.purpose, pc.n as u64);
        }
        let users = rows::<Users>(&r[3])?.into_iter().next().map_or(
            UserStats {
                total: 0,
                verified: 0,
            },
            |u| UserStats {
                total: u.total as u64,
                verified: u.verified as u64,
            },
        );
        Ok(Stats {
            active_codes: count(0)?,
            expired_codes: count(1)?,
            by_purpose,
            users,
            active_sessions: count(4)?,
            app_codes: count(5)?,
            api_keys: count(6)?,
        })
    }

    async fn cleanup(
        &self,
        now: u64,
        unverified_before: u64,
        audit_before: u64,
    ) -> ApiResult<Cleanup> {
        let r = self
            .batch(vec![
                self.stmt("DELETE FROM codes WHERE expires_at <= ?1", &[n(now)])?,
                self.stmt("DELETE FROM sessions WHERE expires_at <= ?1", &[n(now)])?,
                self.stmt(
                    "DELETE FROM users WHERE verified = 0 AND updated_at < ?1",
                    &[n(unverified_before)],
                )?,
                self.stmt("DELETE FROM auth_events WHERE at < ?1", &[n(audit_before)])?,
            ])
            .await?;
        Ok(Cleanup {
            expired_codes: changes(&r[0]),
            expired_sessions: changes(&r[1]),
            unverified_users: changes(&r[2]),
            audit_events: changes(&r[3]),
        })
    }

    async fn record_events(&self, events: &[Event], ip: &str, now: u64) -> ApiResult<()> {
        let opt = |v: Option<&str>| v.map_or(JsValue::NULL, s);
        let statements = events
            .iter()
            .map(|e| {
                self.stmt(
                    "INSERT INTO auth_events (at, event, outcome, scope, purpose, channel, address_hash, ip)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    &[
                        n(now),
                        s(e.kind.as_str()),
                        s(e.outcome),
                        opt(e.scope.as_deref()),
                        opt(e.purpose.as_deref()),
                        opt(e.channel.map(|c| c.as_str())),
                        opt(e.address_hash.as_deref()),
                        s(ip),
                    ],
                )
            })
            .collect::<ApiResult<Vec<_>>>()?;
        self.batch(statements).await.map(drop)
    }

    async fn events(
        &self,
        page: &EventPage,
        address_hash: Option<&str>,
    ) -> ApiResult<Vec<StoredEvent>> {
        #[derive(Deserialize)]
        struct Row {
            id: f64,
            at: f64,
            event: String,
            outcome: String,
            scope: Option<String>,
            purpose: Option<String>,
            channel: Option<String>,
            address_hash: Option<String>,
            ip: Option<String>,
        }
        // The cursor is an id, so pages stay stable while events arrive.
        let r = self
            .stmt(
                "SELECT id, at, event, outcome, scope, purpose, channel, address_hash, ip FROM auth_events
                 WHERE (?1 IS NULL OR id < ?1) AND (?2 IS NULL OR address_hash = ?2)
                 ORDER BY id DESC LIMIT ?3",
                &[
                    page.before.map_or(JsValue::NULL, n),
                    address_hash.map_or(JsValue::NULL, s),
                    n(page.limit.into()),
                ],
            )?
            .all()
            .await
            .map_err(db_error)?;
        Ok(rows::<Row>(&r)?
            .into_iter()
            .map(|r| StoredEvent {
                id: r.id as u64,
                at: rfc3339(r.at as u64),
                event: r.event,
                outcome: r.outcome,
                scope: r.scope,
                purpose: r.purpose,
                channel: r.channel,
                address_hash: r.address_hash,
                ip: r.ip,
            })
            .collect())
    }
}
