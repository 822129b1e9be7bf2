//! `Store` over the D1 binding `DB`. Unix seconds are bound as f64: D1 has
//! no BigInt and its integer binding is only 32 bits wide.
//!
//! Every multi-statement change is one `batch`, which D1 runs as one
//! transaction. Statements that must all happen or none share one guard
//! expression, evaluated on the same state inside that transaction.

use crate::domain::api_key::{ApiKey, Channels, KeyOptions};
use crate::domain::sign_in_budget::{MAX_DOUBLINGS, MAX_LOCK_SECS};
use crate::error::{ApiError, ApiResult};
use crate::ports::limits::SendCount;
use crate::ports::store::{
    is_transient, nth, read_with_retry, AccountStore, AppStore, AuditStore, DeliveryStore, NewCode,
    PendingCode, SessionStore, User,
};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use worker::wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement, D1Result};

mod accounts;
mod apps;
mod audit;
mod clients;
mod delivery;
mod factors;
mod grants;
mod sessions;

pub struct D1Store(pub D1Database);

/// Every table the migrations create.
const TABLES: [&str; 15] = [
    "users",
    "codes",
    "sessions",
    "api_keys",
    "auth_events",
    "send_counts",
    "test_recipients",
    "login_failures",
    "oidc_clients",
    "oauth_codes",
    "oauth_grants",
    "oauth_refresh_tokens",
    "totp_factors",
    "recovery_codes",
    "mfa_tickets",
];

fn text(v: &str) -> JsValue {
    JsValue::from_str(v)
}

fn number(v: u64) -> JsValue {
    JsValue::from_f64(v as f64)
}

/// `domain::sign_in_budget`'s lock in SQL: the seconds the count in
/// column `count` locks for, from its last failure, with the budget's
/// window and failures before a lock as parameters `window` and `max`.
fn lock_secs_sql(count: &str, window: &str, max: &str) -> String {
    format!(
        "(CASE WHEN {count} >= {max} THEN MIN(CAST({window} AS INTEGER) << MIN(CAST({count} - {max} AS INTEGER), {MAX_DOUBLINGS}), {MAX_LOCK_SECS}) ELSE 0 END)"
    )
}

fn maybe_text(v: Option<&str>) -> JsValue {
    v.map_or(JsValue::NULL, text)
}

/// What a D1 failure in operation `op` answers. A schema that was never
/// applied is an operator's problem, not a bug: 503 saying how to fix it.
/// Anything else is a storage failure the client may retry (503 with
/// Retry-After); the operation and D1's words go to the log.
fn db_error(op: &'static str) -> impl Fn(worker::Error) -> ApiError {
    move |e| {
        let message = e.to_string();
        let schema_errors = ["no such table", "no such column", "has no column named"];
        match schema_errors.iter().any(|s| message.contains(s)) {
            true => ApiError::Unavailable(
                "the D1 schema is missing or outdated: apply the migrations (wrangler d1 migrations apply DB)".into(),
            ),
            false => ApiError::storage(&format!("d1 {op}"), message),
        }
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
            // '' is how a dropped password is stored (the column is NOT NULL).
            password_hash: Some(r.password_hash).filter(|h| !h.is_empty()),
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
    account_password: Option<String>,
    account_id: Option<String>,
    test: f64,
}

impl From<CodeRow> for PendingCode {
    fn from(r: CodeRow) -> Self {
        PendingCode {
            test: r.test != 0.0,
            id: r.id,
            digest: r.digest,
            attempts: r.attempts as u32,
            expires_at: r.expires_at as u64,
            account_password: r.account_password,
            account_id: r.account_id,
        }
    }
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
    sms_domain: Option<String>,
    android_app_hash: Option<String>,
    turnstile_required: f64,
    /// Only `sending_key` selects it: the digest of a test recipient's code.
    #[serde(default)]
    test_digest: Option<String>,
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
            options: KeyOptions::from_stored(
                r.sms_domain.as_deref(),
                r.android_app_hash.as_deref(),
                r.turnstile_required != 0.0,
            ),
        }
    }
}

const KEY_COLUMNS: &str = "id, name, app_name, channels, hint, created_at, revoked_at, sms_domain, android_app_hash, turnstile_required";

#[derive(Deserialize)]
struct Count {
    n: f64,
}

/// One batch's results, read with bounds checks: a short answer is a
/// storage failure (503), never a panic.
struct Results {
    op: &'static str,
    all: Vec<D1Result>,
}

impl Results {
    fn get(&self, i: usize) -> ApiResult<&D1Result> {
        nth(self.op, &self.all, i)
    }

    fn rows<T: DeserializeOwned>(&self, i: usize) -> ApiResult<Vec<T>> {
        rows(self.op, self.get(i)?)
    }

    /// Whether statement `i` (one with `RETURNING`) returned a row.
    /// Statement `i`'s one number `n`, as a truth value.
    fn flag(&self, i: usize) -> ApiResult<bool> {
        Ok(self.rows::<Count>(i)?.first().is_some_and(|c| c.n != 0.0))
    }

    fn returned(&self, i: usize) -> ApiResult<bool> {
        Ok(!self.rows::<serde_json::Value>(i)?.is_empty())
    }

    fn changes(&self, i: usize) -> ApiResult<u64> {
        Ok(changes(self.get(i)?))
    }
}

impl D1Store {
    fn stmt(
        &self,
        op: &'static str,
        sql: &str,
        args: &[JsValue],
    ) -> ApiResult<D1PreparedStatement> {
        self.0.prepare(sql).bind(args).map_err(db_error(op))
    }

    /// A read of at most one row, tried once more after a transient failure.
    async fn read_first<T: DeserializeOwned>(
        &self,
        op: &'static str,
        sql: &str,
        args: &[JsValue],
    ) -> ApiResult<Option<T>> {
        let statement = self.stmt(op, sql, args)?;
        read_with_retry(
            || statement.first::<T>(None),
            |e| is_transient(&e.to_string()),
        )
        .await
        .map_err(db_error(op))
    }

    /// A read of every row, tried once more after a transient failure.
    async fn read_all<T: DeserializeOwned>(
        &self,
        op: &'static str,
        sql: &str,
        args: &[JsValue],
    ) -> ApiResult<Vec<T>> {
        let statement = self.stmt(op, sql, args)?;
        let result = read_with_retry(|| statement.all(), |e| is_transient(&e.to_string()))
            .await
            .map_err(db_error(op))?;
        rows(op, &result)
    }

    /// A write of one statement; its first returned row, if any.
    async fn write<T: DeserializeOwned>(
        &self,
        op: &'static str,
        sql: &str,
        args: &[JsValue],
    ) -> ApiResult<Option<T>> {
        self.stmt(op, sql, args)?
            .first::<T>(None)
            .await
            .map_err(db_error(op))
    }

    async fn batch(
        &self,
        op: &'static str,
        statements: Vec<D1PreparedStatement>,
    ) -> ApiResult<Results> {
        let all = self.0.batch(statements).await.map_err(db_error(op))?;
        Ok(Results { op, all })
    }

    pub async fn health(&self) -> ApiResult<()> {
        #[derive(Deserialize)]
        struct Table {
            name: String,
        }
        let present: Vec<String> = self
            .read_all::<Table>(
                "health",
                "SELECT name FROM sqlite_master WHERE type = 'table'",
                &[],
            )
            .await?
            .into_iter()
            .map(|t| t.name)
            .collect();
        let missing: Vec<&str> = TABLES
            .into_iter()
            .filter(|t| !present.iter().any(|p| p == t))
            .collect();
        match missing.is_empty() {
            true => Ok(()),
            false => Err(ApiError::Unavailable(format!(
                "the D1 schema is missing or outdated (no table {}): apply the migrations (wrangler d1 migrations apply DB)",
                missing.join(", ")
            ))),
        }
    }

    /// The statement that counts one message in every counter of `count`,
    /// if each is under its cap; it returns a row per counter when it did.
    /// It must come last in its batch: it changes what the guard reads.
    fn count_statement(
        &self,
        op: &'static str,
        count: &SendCount,
    ) -> ApiResult<D1PreparedStatement> {
        self.count_statement_if(op, count, None, None)
    }

    /// `count_statement`, counting only while `key_id`'s key is not revoked.
    /// `count_statement`, counting only while `key_id`'s key is not
    /// revoked and, for a test recipient's code `test`, while the
    /// recipient still has its digest: the guards of the code's filing.
    fn count_statement_if(
        &self,
        op: &'static str,
        count: &SendCount,
        key_id: Option<&str>,
        test: Option<&NewCode<'_>>,
    ) -> ApiResult<D1PreparedStatement> {
        let (mut guard, mut args) = send_guard(count, 1);
        if let Some(id) = key_id {
            let at = args.len() + 1;
            guard = format!("{guard} AND {}", key_alive(at));
            args.push(text(id));
            if let Some(c) = test {
                guard.push_str(&test_recipient_current(at, at + 1, at + 2, at + 3));
                args.extend([
                    text(c.key.channel.as_str()),
                    text(c.key.address),
                    text(c.digest),
                ]);
            }
        }
        let names: Vec<String> = (0..count.counters.len())
            .map(|i| format!("SELECT ?{} AS counter", 2 + 2 * i))
            .collect();
        let sql = format!(
            "INSERT INTO send_counts (counter, hour, sent) SELECT counter, ?1, 1 FROM ({}) WHERE {guard}
             ON CONFLICT (counter, hour) DO UPDATE SET sent = sent + 1
             RETURNING sent",
            names.join(" UNION ALL ")
        );
        self.stmt(op, &sql, &args)
    }

    /// The statement that files a code, if `condition` (SQL whose
    /// parameters start at `?10`, bound from `extra`) holds; `on_live`
    /// says what becomes of a live code it finds.
    fn code_statement(
        &self,
        op: &'static str,
        c: &NewCode<'_>,
        attempts_window_secs: u64,
        condition: &str,
        extra: Vec<JsValue>,
        on_live: OnLive,
    ) -> ApiResult<D1PreparedStatement> {
        let test = u8::from(c.test);
        const LIVE: &str = "codes.expires_at > excluded.created_at";
        let (expires_at, only_if) = match on_live {
            OnLive::Replace => ("excluded.expires_at".to_owned(), String::new()),
            OnLive::KeepClock => (
                format!("CASE WHEN {LIVE} THEN codes.expires_at ELSE excluded.expires_at END"),
                String::new(),
            ),
            OnLive::Keep => (
                "excluded.expires_at".to_owned(),
                format!(" WHERE NOT ({LIVE})"),
            ),
        };
        let sql = format!(
            "INSERT INTO codes (id, scope, channel, address, purpose, digest, attempts, window_ends_at, created_at, expires_at, test)
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, ?8, ?9, {test} WHERE {condition}
             ON CONFLICT (scope, channel, address, purpose) DO UPDATE SET
               id = excluded.id, digest = excluded.digest, created_at = excluded.created_at, expires_at = {expires_at},
               test = excluded.test,
               attempts = CASE WHEN codes.window_ends_at > excluded.created_at THEN codes.attempts ELSE 0 END,
               window_ends_at = CASE WHEN codes.window_ends_at > excluded.created_at THEN codes.window_ends_at ELSE excluded.window_ends_at END{only_if}"
        );
        let mut args = vec![
            text(c.id),
            text(c.key.scope),
            text(c.key.channel.as_str()),
            text(c.key.address),
            text(c.key.purpose),
            text(c.digest),
            number(c.now + attempts_window_secs),
            number(c.now),
            number(c.expires_at),
        ];
        args.extend(extra);
        self.stmt(op, &sql, &args)
    }
}

/// What filing a code does to a live code under the same key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnLive {
    /// The new code replaces it, with the new expiry (a resend, an app's send).
    Replace,
    /// The new code replaces it but keeps its expiry (and, as always
    /// within the window, its attempts): a registration, which must not
    /// move an address's clock, since whether it files a code at all
    /// depends on the account (see `Store::register`).
    KeepClock,
    /// It stays; the new code is filed only where none is live (the
    /// decoy of a password sign-in).
    Keep,
}

/// SQL (` AND …`) that holds while the key `?{key}` has the test recipient
/// (`?{channel}`, `?{address}`) with the code digest `?{digest}`.
fn test_recipient_current(key: usize, channel: usize, address: usize, digest: usize) -> String {
    format!(
        " AND EXISTS (SELECT 1 FROM test_recipients WHERE key_id = ?{key} AND channel = ?{channel} AND address = ?{address} AND digest = ?{digest})"
    )
}

/// SQL that holds while the API key whose id is parameter `?{at}` is not revoked.
fn key_alive(at: usize) -> String {
    format!("EXISTS (SELECT 1 FROM api_keys WHERE id = ?{at} AND revoked_at IS NULL)")
}

/// SQL that holds while every counter of `count` is under its cap, and its
/// parameters, numbered from `?{first}`: the hour, then each counter's
/// name and cap.
fn send_guard(count: &SendCount, first: usize) -> (String, Vec<JsValue>) {
    let mut terms = Vec::with_capacity(count.counters.len());
    let mut args = vec![number(count.hour)];
    for (i, (name, cap)) in count.counters.iter().enumerate() {
        let (name_at, cap_at) = (first + 1 + 2 * i, first + 2 + 2 * i);
        terms.push(format!(
            "COALESCE((SELECT sent FROM send_counts WHERE counter = ?{name_at} AND hour = ?{first}), 0) < ?{cap_at}"
        ));
        args.push(text(name));
        args.push(number((*cap).into()));
    }
    (format!("({})", terms.join(" AND ")), args)
}

fn rows<T: DeserializeOwned>(op: &'static str, r: &D1Result) -> ApiResult<Vec<T>> {
    r.results::<T>().map_err(db_error(op))
}

fn changes(r: &D1Result) -> u64 {
    r.meta().ok().flatten().and_then(|m| m.changes).unwrap_or(0) as u64
}

const USER_COLUMNS: &str = "id, email, password_hash, verified, created_at";

/// The code still exists and is unexpired: the guard of every consumption.
/// Its guess was within the budget when it was claimed; guesses claimed
/// after it do not take that back (see `Store::consume_code`).
const CODE_LIVE: &str = "EXISTS (SELECT 1 FROM codes WHERE id = ?1 AND expires_at > ?2)";
