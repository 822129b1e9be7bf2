//! The audit trail, the figures, the chart and the cleanup in D1.

use super::*;

use crate::domain::audit::{Event, EventFilter, EventPage, StoredEvent};
use crate::domain::code::CORE_SCOPE;
use crate::domain::oauth::REPLAY_WINDOW_SECS;
use crate::domain::purpose::Purpose;
use crate::domain::sign_in_budget::FORGOTTEN_AFTER_SECS;
use crate::error::ApiResult;
use crate::ports::clock::rfc3339;
use crate::ports::limits::HOUR;
use crate::ports::store::{Cleanup, SendStats, SeriesPoint, Stats, UserStats};
use serde::Deserialize;
use std::collections::BTreeMap;
use worker::wasm_bindgen::JsValue;

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

/// Sign-ins by how they ended, since ?1 (`Stats::sign_ins_24h`).
const SIGN_INS: &str = "SELECT purpose, COUNT(*) AS n FROM auth_events
   WHERE at > ?1 AND event = 'login_ok' AND purpose IS NOT NULL GROUP BY purpose";

const DAY: u64 = 86_400;

/// How long an authenticator app set up and never confirmed is kept.
const PENDING_TOTP_SECS: u64 = DAY;

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

impl AuditStore for D1Store {
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
            with_totp: f64,
        }
        let t = [number(now)];
        let r = self
            .batch(
                OP,
                vec![
                    self.stmt(OP, "SELECT COUNT(*) AS n FROM codes WHERE expires_at > ?1", &t)?,
                    self.stmt(OP, "SELECT COUNT(*) AS n FROM codes WHERE expires_at <= ?1", &t)?,
                    self.stmt(OP, "SELECT purpose, COUNT(*) AS n FROM codes WHERE expires_at > ?1 AND scope = ?2 GROUP BY purpose", &[number(now), text(CORE_SCOPE)])?,
                    self.stmt(OP, "SELECT COUNT(*) AS total, COALESCE(SUM(verified), 0) AS verified,
                       (SELECT COUNT(*) FROM totp_factors WHERE confirmed_at IS NOT NULL) AS with_totp FROM users", &[])?,
                    self.stmt(OP, "SELECT COUNT(*) AS n FROM sessions WHERE expires_at > ?1", &t)?,
                    self.stmt(OP, "SELECT COUNT(*) AS n FROM codes WHERE expires_at > ?1 AND scope <> ?2 AND test = 0", &[number(now), text(CORE_SCOPE)])?,
                    self.stmt(OP, "SELECT COUNT(*) AS n FROM api_keys WHERE revoked_at IS NULL", &[])?,
                    self.stmt(OP, "SELECT COUNT(*) AS n FROM codes WHERE expires_at > ?1 AND test = 1", &t)?,
                    self.stmt(OP, SEND_OUTCOMES, &[number(now.saturating_sub(DAY))])?,
                    self.stmt(OP, SIGN_INS, &[number(now.saturating_sub(DAY))])?,
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
                with_totp: 0,
            },
            |u| UserStats {
                total: u.total as u64,
                verified: u.verified as u64,
                with_totp: u.with_totp as u64,
            },
        );
        let sign_ins_24h = r
            .rows::<PurposeCount>(9)?
            .into_iter()
            .map(|p| (p.purpose, p.n as u64))
            .collect();
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
            sign_ins_24h,
        })
    }

    async fn cleanup(
        &self,
        now: u64,
        unverified_before: u64,
        audit_before: u64,
        clients_before: u64,
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
                    // Past the longest lock and the longest window, every
                    // count has been forgotten (`FailureBudget::counted`).
                    self.stmt(
                        OP,
                        "DELETE FROM login_failures WHERE last_at < ?1",
                        &[number(now.saturating_sub(FORGOTTEN_AFTER_SECS))],
                    )?,
                    // A code is kept a day past its expiry, so that a replay
                    // that late still revokes what it gave; a grant's
                    // refresh tokens go with it.
                    self.stmt(
                        OP,
                        "DELETE FROM oauth_codes WHERE expires_at <= ?1",
                        &[number(now.saturating_sub(REPLAY_WINDOW_SECS))],
                    )?,
                    self.stmt(
                        OP,
                        "DELETE FROM oauth_refresh_tokens WHERE expires_at <= ?1
                           OR grant_id IN (SELECT id FROM oauth_grants WHERE expires_at <= ?1)",
                        &[number(now)],
                    )?,
                    self.stmt(
                        OP,
                        "DELETE FROM oauth_grants WHERE expires_at <= ?1",
                        &[number(now)],
                    )?,
                    // Anyone may register a client: one that no one has
                    // used for its first 30 days, or since its last grant
                    // ended, goes, with its spent codes.
                    self.stmt(
                        OP,
                        "DELETE FROM oidc_clients
                          WHERE self_registered = 1 AND created_at < ?1
                            AND NOT EXISTS (SELECT 1 FROM oauth_grants g WHERE g.client_id = oidc_clients.id)",
                        &[number(clients_before)],
                    )?,
                    self.stmt(
                        OP,
                        "DELETE FROM mfa_tickets WHERE expires_at <= ?1",
                        &[number(now)],
                    )?,
                    // A secret nobody confirmed guards nothing; a day is
                    // long enough to finish setting up an app.
                    self.stmt(
                        OP,
                        "DELETE FROM totp_factors WHERE confirmed_at IS NULL AND created_at < ?1",
                        &[number(now.saturating_sub(PENDING_TOTP_SECS))],
                    )?,
                ],
            )
            .await?;
        Ok(Cleanup {
            expired_codes: r.changes(0)?,
            expired_sessions: r.changes(1)?,
            unverified_users: r.changes(3)?,
            audit_events: r.changes(4)?,
            login_failures: r.changes(6)?,
            oauth_grants: r.changes(9)?,
            oidc_clients: r.changes(10)?,
            mfa_tickets: r.changes(11)?,
            pending_totp: r.changes(12)?,
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
}
