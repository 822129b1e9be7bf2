//! `Store` over the D1 binding `DB`. Unix seconds are bound as f64: D1 has
//! no BigInt and its integer binding is only 32 bits wide.
//!
//! Every multi-statement change is one `batch`, which D1 runs as one
//! transaction. Statements that must all happen or none share one guard
//! expression, evaluated on the same state inside that transaction.

use crate::domain::api_key::{ApiKey, Channels, KeyOptions, NewApiKey};
use crate::domain::audit::{Event, EventFilter, EventPage, StoredEvent};
use crate::domain::channel::Channel;
use crate::domain::code::{app_scope, CodeKey, APP_SCOPE_PREFIX, CORE_SCOPE};
use crate::domain::email::Email;
use crate::domain::purpose::Purpose;
use crate::domain::session::Presented;
use crate::domain::sign_in_budget::{Failures, FORGOTTEN_AFTER_SECS, MAX_DOUBLINGS, MAX_LOCK_SECS};
use crate::domain::test_recipient::TestRecipient;
use crate::error::{ApiError, ApiResult};
use crate::ports::clock::rfc3339;
use crate::ports::limits::{SendCount, HOUR};
use crate::ports::store::{
    is_transient, nth, read_with_retry, Cleanup, Consumed, Effect, Exchange, Exchanged, Filed,
    FiledCode, NewCode, NewHandoff, NewSession, PasswordAttempt, PasswordLookup, PasswordStart,
    PendingCode, Registered, Registration, RenewedCode, Requested, SendEvent, SendRecord,
    SendStats, SeriesPoint, SpentHandoff, Stats, Store, TestRecipientPut, User, UserStats,
};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::collections::BTreeMap;
use worker::wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement, D1Result};

pub struct D1Store(pub D1Database);

/// Every table the migrations create.
const TABLES: [&str; 9] = [
    "users",
    "codes",
    "sessions",
    "api_keys",
    "auth_events",
    "send_counts",
    "handoffs",
    "test_recipients",
    "login_failures",
];

fn text(v: &str) -> JsValue {
    JsValue::from_str(v)
}

fn number(v: u64) -> JsValue {
    JsValue::from_f64(v as f64)
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

/// Marks an unverified account contested: more than one sign-up asked for
/// the address, so a code alone no longer keeps a password (see
/// `Effect::MarkVerified`). Run by every registration, before its upsert
/// (which may create the account) and whether or not a cap or the
/// cooldown stops it: a sign-up the limits swallowed still asked.
fn contest_statement(
    d1: &D1Store,
    op: &'static str,
    email: &Email,
) -> ApiResult<D1PreparedStatement> {
    d1.stmt(
        op,
        "UPDATE users SET contested = 1 WHERE email = ?1 AND verified = 0",
        &[text(email.as_str())],
    )
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

/// Columns of the audit trail, and its four query shapes: one statement
/// per filter, so that SQLite walks the `(address_hash, id)` index for an
/// address instead of scanning the whole retention window.
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

const EVENT_COLUMNS: &str =
    "SELECT id, at, event, outcome, scope, purpose, channel, address_hash, ip, send_id, detail, test FROM auth_events";
pub const EVENTS_NEWEST: &str = "ORDER BY id DESC LIMIT ?1";
pub const EVENTS_BEFORE: &str = "WHERE id < ?2 ORDER BY id DESC LIMIT ?1";
pub const EVENTS_OF_ADDRESS: &str = "WHERE address_hash = ?2 ORDER BY id DESC LIMIT ?1";
pub const EVENTS_OF_ADDRESS_BEFORE: &str =
    "WHERE address_hash = ?2 AND id < ?3 ORDER BY id DESC LIMIT ?1";
pub const EVENTS_OF_KIND: &str = "WHERE event = ?2 ORDER BY id DESC LIMIT ?1";
pub const EVENTS_OF_KIND_BEFORE: &str = "WHERE event = ?2 AND id < ?3 ORDER BY id DESC LIMIT ?1";
// `+event`: the address index narrows far more than the kind's, and the
// unary plus keeps SQLite from picking the kind's.
pub const EVENTS_OF_ADDRESS_KIND: &str =
    "WHERE address_hash = ?2 AND +event = ?3 ORDER BY id DESC LIMIT ?1";
pub const EVENTS_OF_ADDRESS_KIND_BEFORE: &str =
    "WHERE address_hash = ?2 AND +event = ?3 AND id < ?4 ORDER BY id DESC LIMIT ?1";
/// The apps' sends since ?1 by outcome, tests apart: read on the time index.
const SEND_OUTCOMES: &str = "SELECT outcome, test, COUNT(*) AS n FROM auth_events
   WHERE at > ?1 AND event = 'code_sent' AND scope <> 'core' GROUP BY outcome, test";
const DAY: u64 = 86_400;

#[derive(Deserialize)]
struct OutcomeCount {
    outcome: String,
    test: f64,
    n: f64,
}

/// `sends_24h` of the stats: `sent` and `queued` went out; anything else
/// was refused, by reason.
fn send_stats(rows: Vec<OutcomeCount>) -> SendStats {
    let mut stats = SendStats::default();
    for r in rows {
        let n = r.n as u64;
        match (r.test != 0.0, r.outcome.as_str()) {
            (true, _) => stats.test += n,
            (false, "sent" | "queued") => stats.sent += n,
            (false, reason) => *stats.refused.entry(reason.to_owned()).or_default() += n,
        }
    }
    stats
}

/// The admin chart: code events per bucket since ?1, buckets of ?2 seconds
/// (bound as a float, like every number: cast, or `/` would not floor).
pub const EVENT_SERIES: &str = "SELECT (at / CAST(?2 AS INTEGER)) * CAST(?2 AS INTEGER) AS start,
       SUM(event = 'code_sent' AND outcome IN ('sent', 'queued')) AS sent,
       SUM(event = 'code_verified') AS verified,
       SUM(event IN ('code_failed', 'code_burned')) AS failed
  FROM auth_events WHERE at >= ?1
  GROUP BY start ORDER BY start";

/// A proof of the address by a code anyone could have asked for, on an
/// unverified account (`who`, SQL over `users` with `?3`): it ends
/// whatever was set before the proof, every session and then the
/// password, and marks the address verified. Guarded by `CODE_LIVE`, with
/// the guard's parameters `?1` and `?2` in `args`.
fn prove_address(
    store: &D1Store,
    who: &str,
    args: &[JsValue],
) -> ApiResult<Vec<D1PreparedStatement>> {
    const OP: &str = "consume_code";
    Ok(vec![
        store.stmt(
            OP,
            &format!(
                "DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE {who} AND verified = 0) AND {CODE_LIVE}"
            ),
            args,
        )?,
        store.stmt(
            OP,
            &format!(
                "UPDATE users SET verified = 1, password_hash = '', updated_at = ?2 WHERE {who} AND verified = 0 AND {CODE_LIVE}"
            ),
            args,
        )?,
    ])
}

impl Store for D1Store {
    async fn begin_password_login(&self, a: &PasswordAttempt<'_>) -> ApiResult<PasswordStart> {
        const OP: &str = "begin_password_login";
        #[derive(Deserialize)]
        struct Row {
            id: Option<String>,
            email: Option<String>,
            password_hash: Option<String>,
            verified: Option<f64>,
            created_at: Option<f64>,
            decoy: Option<String>,
        }
        #[derive(Deserialize)]
        struct State {
            failures: f64,
            last_at: f64,
        }
        // `domain::sign_in_budget` in SQL: ?1 the address's pseudonym, ?2
        // now, ?3 the window, ?4 the failures before a lock. The lock of a
        // stored count; the attempt is counted unless the address is locked
        // (then nothing is returned), and the count starts over after a
        // quiet window past the lock.
        let lock = format!(
            "(CASE WHEN failures >= ?4 THEN MIN(CAST(?3 AS INTEGER) << MIN(CAST(failures - ?4 AS INTEGER), {MAX_DOUBLINGS}), {MAX_LOCK_SECS}) ELSE 0 END)"
        );
        let budget = [
            text(a.address_hash),
            number(a.now),
            number(a.budget.window_secs),
            number(a.budget.max.into()),
        ];
        let count = self.stmt(
            OP,
            &format!(
                "INSERT INTO login_failures (address_hash, failures, last_at) VALUES (?1, 1, ?2)
                 ON CONFLICT (address_hash) DO UPDATE SET
                   failures = CASE WHEN ?2 >= last_at + {lock} + ?3 THEN 1 ELSE failures + 1 END,
                   last_at = ?2
                 WHERE NOT (failures >= ?4 AND ?2 < last_at + {lock})
                 RETURNING failures"
            ),
            &budget,
        )?;
        let state = self.stmt(
            OP,
            "SELECT failures, last_at FROM login_failures WHERE address_hash = ?1",
            &[text(a.address_hash)],
        )?;
        // One row always: the account if there is one, and the decoy, the
        // first stored hash at or after a row picked by the seed.
        let lookup = self.stmt(
            OP,
            "SELECT u.id AS id, u.email AS email, u.password_hash AS password_hash, u.verified AS verified, u.created_at AS created_at,
               COALESCE(
                 (SELECT password_hash FROM users
                   WHERE rowid > ?2 % (SELECT MAX(rowid) FROM users) AND password_hash <> ''
                   ORDER BY rowid LIMIT 1),
                 (SELECT password_hash FROM users WHERE password_hash <> '' ORDER BY rowid LIMIT 1)
               ) AS decoy
             FROM (SELECT 1) LEFT JOIN users u ON u.email = ?1",
            &[text(a.email.as_str()), number(a.decoy_seed.into())],
        )?;
        let decoy = self.code_statement(
            OP,
            &a.decoy_code,
            a.attempts_window_secs,
            "1",
            vec![],
            OnLive::Keep,
        )?;
        let r = self.batch(OP, vec![count, state, lookup, decoy]).await?;
        let locked_for = match r.returned(0)? {
            true => None,
            false => {
                let s = r.rows::<State>(1)?.into_iter().next().ok_or_else(|| {
                    ApiError::storage("d1 begin_password_login", "no count after the upsert")
                })?;
                let failures = Failures {
                    count: s.failures as u32,
                    last_at: s.last_at as u64,
                };
                // Locked, or it would have been counted: at least a second.
                Some(a.budget.locked_for(failures, a.now).unwrap_or(1))
            }
        };
        let Some(row) = r.rows::<Row>(2)?.into_iter().next() else {
            return Ok(PasswordStart {
                locked_for,
                ..PasswordStart::default()
            });
        };
        let user = match (row.id, row.email, row.password_hash) {
            (Some(id), Some(email), Some(password_hash)) => Some(User::from(UserRow {
                id,
                email,
                password_hash,
                verified: row.verified.unwrap_or(0.0),
                created_at: row.created_at.unwrap_or(0.0),
            })),
            _ => None,
        };
        Ok(PasswordStart {
            locked_for,
            lookup: PasswordLookup {
                user,
                decoy: row.decoy,
            },
        })
    }

    async fn register(&self, r: &Registration<'_>) -> ApiResult<Registered> {
        const OP: &str = "register";
        #[derive(Deserialize)]
        struct Outcome {
            verified: f64,
            ours: f64,
        }
        let email = r.email.as_str();
        let (guard, guard_args) = send_guard(r.count, 5);
        let mut upsert_args = vec![
            text(r.user_id),
            text(email),
            text(r.password_hash),
            number(r.code.now),
        ];
        upsert_args.extend(guard_args);
        // A registration replaces an unverified account's password only
        // when that account's verification code is no longer live; the
        // account keeps its creation time, which the cleanup counts from.
        let stale = format!(
            "NOT EXISTS (SELECT 1 FROM codes WHERE scope = '{CORE_SCOPE}' AND channel = 'email' AND purpose = 'verify_email'
               AND address = excluded.email AND expires_at > excluded.updated_at)"
        );
        let upsert = self.stmt(
            OP,
            &format!(
                "INSERT INTO users (id, email, password_hash, verified, created_at, updated_at)
                 SELECT ?1, ?2, ?3, 0, ?4, ?4 WHERE {guard}
                 ON CONFLICT (email) DO UPDATE SET
                   password_hash = CASE WHEN {stale} THEN excluded.password_hash ELSE users.password_hash END,
                   updated_at = excluded.updated_at
                 WHERE users.verified = 0"
            ),
            &upsert_args,
        )?;
        // The code only if the account now holds this request's hash (its
        // salt makes it unique): a code never verifies someone else's password.
        // A verified account gets it too, never mailed and bound to a hash
        // the account does not hold, so it can never match: every address
        // then has a pending code to guess at, and a wrong guess answers
        // alike (attempts left included) whether or not it has an account.
        // Capped, nothing is filed, whatever the account: the guard again.
        let (code_guard, mut code_args) = send_guard(r.count, 11);
        code_args.insert(0, text(r.password_hash));
        let code = self.code_statement(
            OP,
            &r.code,
            r.attempts_window_secs,
            &format!("EXISTS (SELECT 1 FROM users WHERE email = ?4 AND (verified = 1 OR password_hash = ?10)) AND {code_guard}"),
            code_args,
            OnLive::KeepClock,
        )?;
        let outcome = self.stmt(
            OP,
            "SELECT verified, password_hash = ?2 AS ours FROM users WHERE email = ?1",
            &[text(email), text(r.password_hash)],
        )?;
        let count = self.count_statement(OP, r.count)?;
        let results = self
            .batch(
                OP,
                vec![
                    contest_statement(self, OP, r.email)?,
                    upsert,
                    code,
                    outcome,
                    count,
                ],
            )
            .await?;
        if !results.returned(4)? {
            return Ok(Registered::Capped);
        }
        let found = results
            .rows::<Outcome>(3)?
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::storage("d1 register", "no account after the upsert"))?;
        Ok(match (found.verified != 0.0, found.ours != 0.0) {
            (true, _) => Registered::AlreadyVerified,
            (false, true) => Registered::CodeIssued,
            (false, false) => Registered::PendingKept,
        })
    }

    async fn contest_sign_up(&self, email: &Email) -> ApiResult<()> {
        const OP: &str = "contest_sign_up";
        let statement = contest_statement(self, OP, email)?;
        self.batch(OP, vec![statement]).await?;
        Ok(())
    }

    async fn after_password_login(
        &self,
        user_id: &str,
        verified_hash: &str,
        rehash: Option<&str>,
        session: &NewSession,
        address_hash: &str,
    ) -> ApiResult<bool> {
        const OP: &str = "after_password_login";
        let mut statements = Vec::new();
        if let Some(fresh) = rehash {
            statements.push(self.stmt(
                OP,
                "UPDATE users SET password_hash = ?3 WHERE id = ?1 AND password_hash = ?2",
                &[text(user_id), text(verified_hash), text(fresh)],
            )?);
        }
        // The hash the session depends on: the fresh one, when this batch
        // just wrote it.
        let current = rehash.unwrap_or(verified_hash);
        let created = statements.len();
        statements.push(self.stmt(
            OP,
            "INSERT INTO sessions (token_hash, user_id, created_at, expires_at, issued_to)
             SELECT ?2, ?1, ?3, ?4, ?6 WHERE EXISTS (SELECT 1 FROM users WHERE id = ?1 AND password_hash = ?5)
             RETURNING token_hash",
            &[
                text(user_id),
                text(&session.token_hash),
                number(session.now),
                number(session.expires_at),
                text(current),
                text(session.issued_to.as_str()),
            ],
        )?);
        // A success forgets the failures before it.
        statements.push(self.stmt(
            OP,
            "DELETE FROM login_failures WHERE address_hash = ?1
               AND EXISTS (SELECT 1 FROM sessions WHERE token_hash = ?2)",
            &[text(address_hash), text(&session.token_hash)],
        )?);
        self.batch(OP, statements).await?.returned(created)
    }

    async fn renew_code(&self, c: &RenewedCode) -> ApiResult<bool> {
        #[derive(Deserialize)]
        struct Renewed {
            #[allow(dead_code)]
            id: String,
        }
        let row: Option<Renewed> = self
            .write(
                "renew_code",
                &format!(
                    "UPDATE codes SET id = ?5, digest = ?6
                     WHERE scope = '{CORE_SCOPE}' AND channel = 'email' AND purpose = 'verify_email' AND address = ?1
                       AND expires_at > ?2 AND attempts <= ?3
                       AND EXISTS (SELECT 1 FROM users WHERE email = ?1 AND verified = 0 AND password_hash = ?4)
                     RETURNING id"
                ),
                &[
                    text(&c.email),
                    number(c.now),
                    number(c.max_attempts.into()),
                    text(&c.password_hash),
                    text(&c.id),
                    text(&c.digest),
                ],
            )
            .await?;
        Ok(row.is_some())
    }

    async fn issue_app_code(
        &self,
        c: &NewCode<'_>,
        attempts_window_secs: u64,
        count: &SendCount,
        key_id: &str,
    ) -> ApiResult<Filed> {
        const OP: &str = "issue_app_code";
        let (guard, mut guard_args) = send_guard(count, 10);
        let key_at = 10 + guard_args.len();
        let mut condition = format!("{guard} AND {}", key_alive(key_at));
        // A test recipient's code only while the recipient still has this
        // digest (?6): a removal or a new code that lands mid-send wins.
        if c.test {
            condition.push_str(&test_recipient_current(key_at, 3, 4, 6));
        }
        guard_args.push(text(key_id));
        let code = self.code_statement(
            OP,
            c,
            attempts_window_secs,
            &condition,
            guard_args,
            OnLive::Replace,
        )?;
        let counted = self.count_statement_if(OP, count, Some(key_id), c.test.then_some(c))?;
        // Read only when nothing was filed, so unchanged by the count: why.
        let (prefix, cap) = match count.prefix.and_then(|i| count.counters.get(i)) {
            Some((name, cap)) => (name.as_str(), *cap),
            None => ("", u32::MAX),
        };
        let alive = self.stmt(
            OP,
            &format!("SELECT {} AS n", key_alive(1)),
            &[text(key_id)],
        )?;
        let prefix_full = self.stmt(
            OP,
            "SELECT COALESCE((SELECT sent FROM send_counts WHERE counter = ?1 AND hour = ?2), 0) >= ?3 AS n",
            &[text(prefix), number(count.hour), number(cap.into())],
        )?;
        let results = self
            .batch(OP, vec![code, counted, alive, prefix_full])
            .await?;
        if results.returned(1)? {
            return Ok(Filed::Filed);
        }
        Ok(match results.flag(2)? {
            true => Filed::Capped {
                prefix: results.flag(3)?,
            },
            false => Filed::KeyRevoked,
        })
    }

    async fn request_code(
        &self,
        email: &Email,
        c: &NewCode<'_>,
        attempts_window_secs: u64,
        count: &SendCount,
    ) -> ApiResult<Requested> {
        const OP: &str = "request_code";
        let user = self.stmt(
            OP,
            &format!("SELECT {USER_COLUMNS} FROM users WHERE email = ?1"),
            &[text(email.as_str())],
        )?;
        let (guard, guard_args) = send_guard(count, 10);
        let code = self.code_statement(
            OP,
            c,
            attempts_window_secs,
            &guard,
            guard_args,
            OnLive::Replace,
        )?;
        let count = self.count_statement(OP, count)?;
        let results = self.batch(OP, vec![user, code, count]).await?;
        Ok(Requested {
            user: results
                .rows::<UserRow>(0)?
                .into_iter()
                .next()
                .map(User::from),
            issued: results.returned(2)?,
        })
    }

    async fn withdraw_registration(
        &self,
        code_id: &str,
        email: &Email,
        password_hash: &str,
    ) -> ApiResult<()> {
        const OP: &str = "withdraw_registration";
        let statements = vec![
            self.stmt(OP, "DELETE FROM codes WHERE id = ?1", &[text(code_id)])?,
            self.stmt(
                OP,
                "DELETE FROM users WHERE email = ?1 AND password_hash = ?2 AND verified = 0",
                &[text(email.as_str()), text(password_hash)],
            )?,
        ];
        self.batch(OP, statements).await.map(drop)
    }

    async fn claim_attempt(
        &self,
        key: &CodeKey<'_>,
        max_attempts: u32,
    ) -> ApiResult<Option<PendingCode>> {
        let row: Option<CodeRow> = self
            .write(
                "claim_attempt",
                &format!(
                    "UPDATE codes SET attempts = MIN(attempts + 1, ?5 + 1)
                     WHERE scope = ?1 AND channel = ?2 AND address = ?3 AND purpose = ?4
                     RETURNING id, digest, attempts, expires_at, test,
                       (SELECT password_hash FROM users WHERE users.email = codes.address
                          AND codes.scope = '{CORE_SCOPE}' AND codes.channel = 'email') AS account_password,
                       (SELECT id FROM users WHERE users.email = codes.address
                          AND codes.scope = '{CORE_SCOPE}' AND codes.channel = 'email') AS account_id"
                ),
                &[
                    text(key.scope),
                    text(key.channel.as_str()),
                    text(key.address),
                    text(key.purpose),
                    number(max_attempts.into()),
                ],
            )
            .await?;
        Ok(row.map(PendingCode::from))
    }

    async fn claim_app_attempt(
        &self,
        key_hash: &str,
        key: &CodeKey<'_>,
        max_attempts: u32,
    ) -> ApiResult<(Option<ApiKey>, Option<PendingCode>)> {
        const OP: &str = "claim_app_attempt";
        let active_key = "FROM api_keys WHERE key_hash = ?1 AND revoked_at IS NULL";
        let lookup = self.stmt(
            OP,
            &format!("SELECT {KEY_COLUMNS} {active_key}"),
            &[text(key_hash)],
        )?;
        // The scope is the key's, if the key exists, is not revoked and
        // allows the channel: otherwise no row matches and no guess counts.
        let claim = self.stmt(
            OP,
            &format!(
                "UPDATE codes SET attempts = MIN(attempts + 1, ?5 + 1)
                 WHERE scope = (SELECT '{APP_SCOPE_PREFIX}' || id {active_key}
                                  AND instr(',' || channels || ',', ',' || ?2 || ',') > 0)
                   AND channel = ?2 AND address = ?3 AND purpose = ?4
                 RETURNING id, digest, attempts, expires_at, test, NULL AS account_password, NULL AS account_id"
            ),
            &[
                text(key_hash),
                text(key.channel.as_str()),
                text(key.address),
                text(key.purpose),
                number(max_attempts.into()),
            ],
        )?;
        let results = self.batch(OP, vec![lookup, claim]).await?;
        let found = results
            .rows::<KeyRow>(0)?
            .into_iter()
            .next()
            .map(ApiKey::from);
        let pending = results
            .rows::<CodeRow>(1)?
            .into_iter()
            .next()
            .map(PendingCode::from);
        Ok((found, pending))
    }

    async fn consume_code(
        &self,
        code_id: &str,
        effect: Effect<'_>,
        now: u64,
    ) -> ApiResult<Consumed> {
        const OP: &str = "consume_code";
        let guard = [text(code_id), number(now)];
        let with = |extra: &[JsValue]| -> Vec<JsValue> {
            guard.iter().cloned().chain(extra.iter().cloned()).collect()
        };
        // Whether the first statement tells if the password was kept.
        let mut kept_at = None;
        // One batch is one transaction: the effect lands if and only if the
        // final DELETE finds the code, which exactly one caller can do.
        let mut statements = match &effect {
            Effect::Nothing => vec![],
            Effect::SignIn { user_id, session } => {
                let mut statements = prove_address(self, "id = ?3", &with(&[text(user_id)]))?;
                statements.push(self.stmt(
                    OP,
                    &format!(
                        "INSERT INTO sessions (token_hash, user_id, created_at, expires_at, issued_to) SELECT ?4, ?3, ?2, ?5, ?6 WHERE {CODE_LIVE}"
                    ),
                    &with(&[text(user_id), text(&session.token_hash), number(session.expires_at), text(session.issued_to.as_str())]),
                )?);
                statements
            }
            Effect::MarkVerified { email, keep } => {
                let mut statements = Vec::new();
                // The password stays while it is still the account's and,
                // unless the request proved it, the sign-up uncontested;
                // otherwise the proof of the address ends it, as below.
                if let Some(k) = keep {
                    kept_at = Some(0);
                    statements.push(self.stmt(
                        OP,
                        &format!(
                            "UPDATE users SET verified = 1, updated_at = ?2
                             WHERE email = ?3 AND password_hash = ?4 AND verified = 0 AND (contested = 0 OR ?5 = 1)
                               AND {CODE_LIVE}
                             RETURNING id"
                        ),
                        &with(&[text(email.as_str()), text(&k.password_hash), number(u64::from(k.proven))]),
                    )?);
                }
                statements.extend(prove_address(self, "email = ?3", &with(&[text(email.as_str())]))?);
                statements
            }
            Effect::ResetPassword { email, password_hash, address_hash } => vec![
                self.stmt(
                    OP,
                    &format!(
                        "DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE email = ?3) AND {CODE_LIVE}"
                    ),
                    &with(&[text(email.as_str())]),
                )?,
                self.stmt(
                    OP,
                    &format!(
                        "UPDATE users SET password_hash = ?4, verified = 1, updated_at = ?2 WHERE email = ?3 AND {CODE_LIVE}"
                    ),
                    &with(&[text(email.as_str()), text(password_hash)]),
                )?,
                self.stmt(
                    OP,
                    &format!("DELETE FROM login_failures WHERE address_hash = ?3 AND {CODE_LIVE}"),
                    &with(&[text(address_hash)]),
                )?,
            ],
        };
        statements.push(self.stmt(
            OP,
            "DELETE FROM codes WHERE id = ?1 AND expires_at > ?2 RETURNING id",
            &guard,
        )?);
        let last = statements.len() - 1;
        let results = self.batch(OP, statements).await?;
        if !results.returned(last)? {
            return Ok(Consumed::Lost);
        }
        let password_kept = match kept_at {
            Some(i) => results.returned(i)?,
            None => false,
        };
        Ok(Consumed::Applied { password_kept })
    }

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

    async fn create_api_key(
        &self,
        id: &str,
        key_hash: &str,
        hint: &str,
        new: &NewApiKey,
        now: u64,
    ) -> ApiResult<()> {
        let opt = |v: Option<&str>| v.map_or(JsValue::NULL, text);
        let o = &new.options;
        self.write::<serde_json::Value>(
            "create_api_key",
            "INSERT INTO api_keys (id, key_hash, hint, name, app_name, channels, created_at, sms_domain, android_app_hash, turnstile_required)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            &[
                text(id), text(key_hash), text(hint), text(&new.name), opt(new.app_name.as_deref()),
                text(&new.channels.to_stored()), number(now),
                opt(o.sms_domain.as_ref().map(|d| d.as_str())),
                opt(o.android_app_hash.as_ref().map(|h| h.as_str())),
                number(o.turnstile_required.into()),
            ],
        )
        .await
        .map(drop)
    }

    async fn api_keys(&self) -> ApiResult<Vec<ApiKey>> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at DESC, id");
        Ok(self
            .read_all::<KeyRow>("api_keys", &sql, &[])
            .await?
            .into_iter()
            .map(ApiKey::from)
            .collect())
    }

    async fn api_key_by_hash(&self, key_hash: &str) -> ApiResult<Option<ApiKey>> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = ?1 AND revoked_at IS NULL"
        );
        Ok(self
            .read_first::<KeyRow>("api_key_by_hash", &sql, &[text(key_hash)])
            .await?
            .map(ApiKey::from))
    }

    async fn sending_key(
        &self,
        key_hash: &str,
        channel: Channel,
        address: &str,
    ) -> ApiResult<Option<(ApiKey, Option<String>)>> {
        let sql = format!(
            "SELECT {KEY_COLUMNS},
               (SELECT digest FROM test_recipients
                  WHERE key_id = api_keys.id AND channel = ?2 AND address = ?3) AS test_digest
             FROM api_keys WHERE key_hash = ?1 AND revoked_at IS NULL"
        );
        let args = [text(key_hash), text(channel.as_str()), text(address)];
        Ok(self
            .read_first::<KeyRow>("sending_key", &sql, &args)
            .await?
            .map(|mut r| {
                let digest = r.test_digest.take();
                (ApiKey::from(r), digest)
            }))
    }

    async fn put_test_recipient(
        &self,
        key_id: &str,
        t: &TestRecipient,
        digest: &str,
        max: u32,
    ) -> ApiResult<TestRecipientPut> {
        const OP: &str = "put_test_recipient";
        // Filed while the key is live and has room, or when the recipient
        // is already there (its code is replaced).
        let put = self.stmt(
            OP,
            &format!(
                "INSERT INTO test_recipients (key_id, channel, address, digest, created_at)
                 SELECT ?1, ?2, ?3, ?4, ?5 WHERE {} AND (
                   (SELECT COUNT(*) FROM test_recipients WHERE key_id = ?1) < ?6
                   OR EXISTS (SELECT 1 FROM test_recipients WHERE key_id = ?1 AND channel = ?2 AND address = ?3))
                 ON CONFLICT (key_id, channel, address) DO UPDATE SET digest = excluded.digest
                 RETURNING key_id",
                key_alive(1)
            ),
            &[
                text(key_id),
                text(t.channel.as_str()),
                text(&t.address),
                text(digest),
                number(t.created_at),
                number(max.into()),
            ],
        )?;
        let alive = self.stmt(
            OP,
            &format!("SELECT {} AS n", key_alive(1)),
            &[text(key_id)],
        )?;
        // Pending codes of a replaced fixed code stop working now. It runs
        // first in the batch, reading the digest before the put changes it;
        // it matches nothing unless the recipient exists, when the put
        // always lands.
        let withdrawn = self.stmt(
            OP,
            &format!(
                "DELETE FROM codes WHERE scope = '{APP_SCOPE_PREFIX}' || ?1 AND channel = ?2 AND address = ?3 AND test = 1
                 AND EXISTS (SELECT 1 FROM test_recipients WHERE key_id = ?1 AND channel = ?2 AND address = ?3 AND digest <> ?4)"
            ),
            &[text(key_id), text(t.channel.as_str()), text(&t.address), text(digest)],
        )?;
        let results = self.batch(OP, vec![withdrawn, put, alive]).await?;
        if results.returned(1)? {
            return Ok(TestRecipientPut::Put);
        }
        Ok(if results.flag(2)? {
            TestRecipientPut::Full
        } else {
            TestRecipientPut::NoKey
        })
    }

    async fn send_record(
        &self,
        key_hash: &str,
        send_id: &str,
    ) -> ApiResult<(Option<ApiKey>, SendRecord)> {
        const OP: &str = "send_record";
        #[derive(Deserialize)]
        struct CodeRow {
            attempts: f64,
            expires_at: f64,
            channel: String,
            purpose: String,
            test: f64,
        }
        #[derive(Deserialize)]
        struct EventRow {
            event: String,
            outcome: String,
            detail: Option<String>,
            at: f64,
            channel: Option<String>,
            purpose: Option<String>,
            test: f64,
        }
        let active = "FROM api_keys WHERE key_hash = ?1 AND revoked_at IS NULL";
        let scope = format!("(SELECT '{APP_SCOPE_PREFIX}' || id {active})");
        let args = [text(key_hash), text(send_id)];
        let results = self
            .batch(
                OP,
                vec![
                    self.stmt(OP, &format!("SELECT {KEY_COLUMNS} {active}"), &args[..1])?,
                    self.stmt(
                        OP,
                        &format!("SELECT attempts, expires_at, channel, purpose, test FROM codes WHERE id = ?2 AND scope = {scope}"),
                        &args,
                    )?,
                    // A provider's report names only the send; the service
                    // shows it only beside this scope's own `code_sent`.
                    self.stmt(
                        OP,
                        &format!(
                            "SELECT event, outcome, detail, at, channel, purpose, test FROM auth_events
                             WHERE send_id = ?2 AND (scope = {scope} OR event = 'code_delivery') ORDER BY id"
                        ),
                        &args,
                    )?,
                ],
            )
            .await?;
        let key = results
            .rows::<KeyRow>(0)?
            .into_iter()
            .next()
            .map(ApiKey::from);
        let code = results
            .rows::<CodeRow>(1)?
            .into_iter()
            .next()
            .map(|c| FiledCode {
                attempts: c.attempts as u32,
                expires_at: c.expires_at as u64,
                channel: c.channel,
                purpose: c.purpose,
                test: c.test != 0.0,
            });
        let events = results
            .rows::<EventRow>(2)?
            .into_iter()
            .map(|e| SendEvent {
                event: e.event,
                outcome: e.outcome,
                detail: e.detail,
                at: e.at as u64,
                channel: e.channel,
                purpose: e.purpose,
                test: e.test != 0.0,
            })
            .collect();
        Ok((key, SendRecord { code, events }))
    }

    async fn test_recipients(&self, key_id: &str) -> ApiResult<Option<Vec<TestRecipient>>> {
        const OP: &str = "test_recipients";
        #[derive(Deserialize)]
        struct Row {
            channel: String,
            address: String,
            created_at: f64,
        }
        let results = self
            .batch(
                OP,
                vec![
                    self.stmt(
                        OP,
                        "SELECT 1 AS n FROM api_keys WHERE id = ?1 AND revoked_at IS NULL",
                        &[text(key_id)],
                    )?,
                    self.stmt(
                        OP,
                        "SELECT channel, address, created_at FROM test_recipients WHERE key_id = ?1 ORDER BY created_at, channel, address",
                        &[text(key_id)],
                    )?,
                ],
            )
            .await?;
        if !results.returned(0)? {
            return Ok(None);
        }
        Ok(Some(
            results
                .rows::<Row>(1)?
                .into_iter()
                .filter_map(|r| {
                    Some(TestRecipient {
                        channel: Channel::from_name(&r.channel)?,
                        address: r.address,
                        created_at: r.created_at as u64,
                    })
                })
                .collect(),
        ))
    }

    async fn delete_test_recipient(
        &self,
        key_id: &str,
        channel: Channel,
        address: &str,
    ) -> ApiResult<bool> {
        const OP: &str = "delete_test_recipient";
        let args = [text(key_id), text(channel.as_str()), text(address)];
        // Its pending code goes with it: the fixed code stops working now.
        let results = self
            .batch(
                OP,
                vec![
                    self.stmt(
                        OP,
                        "DELETE FROM test_recipients WHERE key_id = ?1 AND channel = ?2 AND address = ?3 RETURNING key_id",
                        &args,
                    )?,
                    self.stmt(
                        OP,
                        &format!(
                            "DELETE FROM codes WHERE scope = '{APP_SCOPE_PREFIX}' || ?1 AND channel = ?2 AND address = ?3 AND test = 1"
                        ),
                        &args,
                    )?,
                ],
            )
            .await?;
        results.returned(0)
    }

    async fn revoke_api_key(&self, id: &str, now: u64) -> ApiResult<bool> {
        const OP: &str = "revoke_api_key";
        self.batch(
            OP,
            vec![
                self.stmt(OP, "DELETE FROM codes WHERE scope = ?1", &[text(&app_scope(id))])?,
                self.stmt(
                    OP,
                    "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1 RETURNING id",
                    &[text(id), number(now)],
                )?,
            ],
        )
        .await?
        .returned(1)
    }

    async fn stats(&self, now: u64) -> ApiResult<Stats> {
        const OP: &str = "stats";
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
        let t = [number(now)];
        let r = self
            .batch(
                OP,
                vec![
                    self.stmt(OP, "SELECT COUNT(*) AS n FROM codes WHERE expires_at > ?1", &t)?,
                    self.stmt(OP, "SELECT COUNT(*) AS n FROM codes WHERE expires_at <= ?1", &t)?,
                    self.stmt(OP, "SELECT purpose, COUNT(*) AS n FROM codes WHERE expires_at > ?1 AND scope = ?2 GROUP BY purpose", &[number(now), text(CORE_SCOPE)])?,
                    self.stmt(OP, "SELECT COUNT(*) AS total, COALESCE(SUM(verified), 0) AS verified FROM users", &[])?,
                    self.stmt(OP, "SELECT COUNT(*) AS n FROM sessions WHERE expires_at > ?1", &t)?,
                    self.stmt(OP, "SELECT COUNT(*) AS n FROM codes WHERE expires_at > ?1 AND scope <> ?2 AND test = 0", &[number(now), text(CORE_SCOPE)])?,
                    self.stmt(OP, "SELECT COUNT(*) AS n FROM api_keys WHERE revoked_at IS NULL", &[])?,
                    self.stmt(OP, "SELECT COUNT(*) AS n FROM codes WHERE expires_at > ?1 AND test = 1", &t)?,
                    self.stmt(OP, SEND_OUTCOMES, &[number(now.saturating_sub(DAY))])?,
                ],
            )
            .await?;
        let count = |i: usize| -> ApiResult<u64> {
            Ok(r.rows::<Count>(i)?.first().map_or(0, |c| c.n as u64))
        };
        let mut by_purpose: BTreeMap<String, u64> =
            [Purpose::VerifyEmail, Purpose::ResetPassword, Purpose::Login]
                .iter()
                .map(|p| (p.as_str().to_owned(), 0))
                .collect();
        for pc in r.rows::<PurposeCount>(2)? {
            by_purpose.insert(pc.purpose, pc.n as u64);
        }
        let users = r.rows::<Users>(3)?.into_iter().next().map_or(
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
            test_codes: count(7)?,
            sends_24h: send_stats(r.rows::<OutcomeCount>(8)?),
        })
    }

    async fn cleanup(
        &self,
        now: u64,
        unverified_before: u64,
        audit_before: u64,
    ) -> ApiResult<Cleanup> {
        const OP: &str = "cleanup";
        let stale = [number(unverified_before)];
        let r = self
            .batch(
                OP,
                vec![
                    self.stmt(
                        OP,
                        "DELETE FROM codes WHERE expires_at <= ?1",
                        &[number(now)],
                    )?,
                    self.stmt(
                        OP,
                        "DELETE FROM sessions WHERE expires_at <= ?1",
                        &[number(now)],
                    )?,
                    // Counted from creation: re-registering does not renew an
                    // unverified account, so nobody can squat an address.
                    self.stmt(
                        OP,
                        &format!(
                            "DELETE FROM codes WHERE scope = '{CORE_SCOPE}' AND address IN
                               (SELECT email FROM users WHERE verified = 0 AND created_at < ?1)"
                        ),
                        &stale,
                    )?,
                    self.stmt(
                        OP,
                        "DELETE FROM users WHERE verified = 0 AND created_at < ?1",
                        &stale,
                    )?,
                    self.stmt(
                        OP,
                        "DELETE FROM auth_events WHERE at < ?1",
                        &[number(audit_before)],
                    )?,
                    self.stmt(
                        OP,
                        "DELETE FROM send_counts WHERE hour < ?1",
                        &[number((now / HOUR).saturating_sub(1))],
                    )?,
                    self.stmt(
                        OP,
                        "DELETE FROM handoffs WHERE expires_at <= ?1",
                        &[number(now)],
                    )?,
                    // Past the longest lock and the longest window, every
                    // count has been forgotten (`FailureBudget::counted`).
                    self.stmt(
                        OP,
                        "DELETE FROM login_failures WHERE last_at < ?1",
                        &[number(now.saturating_sub(FORGOTTEN_AFTER_SECS))],
                    )?,
                ],
            )
            .await?;
        Ok(Cleanup {
            expired_codes: r.changes(0)?,
            expired_sessions: r.changes(1)?,
            unverified_users: r.changes(3)?,
            audit_events: r.changes(4)?,
            login_failures: r.changes(7)?,
        })
    }

    async fn record_events(&self, events: &[Event], ip: &str, now: u64) -> ApiResult<()> {
        const OP: &str = "record_events";
        let opt = |v: Option<&str>| v.map_or(JsValue::NULL, text);
        let statements = events
            .iter()
            .map(|e| {
                self.stmt(
                    OP,
                    "INSERT INTO auth_events (at, event, outcome, scope, purpose, channel, address_hash, ip, send_id, detail, test)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                    &[
                        number(now),
                        text(e.kind.as_str()),
                        text(e.outcome),
                        opt(e.scope.as_deref()),
                        opt(e.purpose.as_deref()),
                        opt(e.channel.map(|c| c.as_str())),
                        opt(e.address_hash.as_deref()),
                        text(ip),
                        opt(e.send_id.as_deref()),
                        opt(e.detail.as_deref()),
                        number(e.test.into()),
                    ],
                )
            })
            .collect::<ApiResult<Vec<_>>>()?;
        self.batch(OP, statements).await.map(drop)
    }

    async fn event_series(&self, since: u64, bucket_secs: u64) -> ApiResult<Vec<SeriesPoint>> {
        #[derive(Deserialize)]
        struct Row {
            start: f64,
            sent: Option<f64>,
            verified: Option<f64>,
            failed: Option<f64>,
        }
        let n = |v: Option<f64>| v.unwrap_or(0.0) as u64;
        Ok(self
            .read_all::<Row>(
                "event_series",
                EVENT_SERIES,
                &[number(since), number(bucket_secs.max(1))],
            )
            .await?
            .into_iter()
            .map(|r| SeriesPoint {
                start: r.start as u64,
                sent: n(r.sent),
                verified: n(r.verified),
                failed: n(r.failed),
            })
            .collect())
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

    async fn events(&self, page: &EventPage, filter: &EventFilter) -> ApiResult<Vec<StoredEvent>> {
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
            send_id: Option<String>,
            detail: Option<String>,
            test: f64,
        }
        // The cursor is an id, so pages stay stable while events arrive.
        let limit = number(page.limit.into());
        // One fixed statement per filter, each planned on an index (a test
        // reads them from this file and asks SQLite).
        let address = filter.address_hash.as_deref().map(text);
        let kind = filter.kind.map(|k| text(k.as_str()));
        let before = page.before.map(number);
        let shape = match (&address, &kind, &before) {
            (None, None, None) => EVENTS_NEWEST,
            (None, None, Some(_)) => EVENTS_BEFORE,
            (Some(_), None, None) => EVENTS_OF_ADDRESS,
            (Some(_), None, Some(_)) => EVENTS_OF_ADDRESS_BEFORE,
            (None, Some(_), None) => EVENTS_OF_KIND,
            (None, Some(_), Some(_)) => EVENTS_OF_KIND_BEFORE,
            (Some(_), Some(_), None) => EVENTS_OF_ADDRESS_KIND,
            (Some(_), Some(_), Some(_)) => EVENTS_OF_ADDRESS_KIND_BEFORE,
        };
        let args: Vec<JsValue> = [Some(limit), address, kind, before]
            .into_iter()
            .flatten()
            .collect();
        let sql = format!("{EVENT_COLUMNS} {shape}");
        Ok(self
            .read_all::<Row>("events", &sql, &args)
            .await?
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
                send_id: r.send_id,
                detail: r.detail,
                test: r.test != 0.0,
            })
            .collect())
    }
}
