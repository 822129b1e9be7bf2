//! The operator's side: the audit trail, the figures, the chart and the cleanup.

use crate::domain::audit::{Event, EventFilter, EventPage, StoredEvent};
use crate::error::ApiResult;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Stats {
    pub active_codes: u64,
    pub expired_codes: u64,
    pub by_purpose: BTreeMap<String, u64>,
    pub users: UserStats,
    pub active_sessions: u64,
    pub app_codes: u64,
    /// Pending codes of test recipients, not in `app_codes`.
    pub test_codes: u64,
    pub api_keys: u64,
    /// Apps' sends over the last 24 hours: gone out, to test recipients,
    /// and refused by reason (the problem code, or `prefix_limited`).
    pub sends_24h: SendStats,
    /// Sign-ins over the last 24 hours by how they ended: `password`,
    /// `login` (an emailed code), `verify_email` (a sign-up's own
    /// browser), `totp` and `recovery_code` (a second step).
    pub sign_ins_24h: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct SendStats {
    pub sent: u64,
    pub test: u64,
    pub refused: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct UserStats {
    pub total: u64,
    pub verified: u64,
    /// Accounts with an authenticator app on.
    pub with_totp: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Cleanup {
    pub expired_codes: u64,
    pub expired_sessions: u64,
    pub unverified_users: u64,
    pub audit_events: u64,
    /// Counts of failed sign-ins long forgotten.
    pub login_failures: u64,
    /// The OpenID Provider's grants past their life.
    pub oauth_grants: u64,
    /// Self-registered clients past `UNUSED_CLIENT_DAYS` with no grant.
    pub oidc_clients: u64,
    /// Second-step tickets past their 5 minutes.
    pub mfa_tickets: u64,
    /// Authenticator apps set up and never confirmed, a day on.
    pub pending_totp: u64,
}

/// One bucket of the admin chart: codes sent, verified and failed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SeriesPoint {
    /// Unix seconds where the bucket starts.
    pub start: u64,
    pub sent: u64,
    pub verified: u64,
    pub failed: u64,
}

#[allow(async_fn_in_trait)]
pub trait AuditStore {
    async fn stats(&self, now: u64) -> ApiResult<Stats>;
    /// Deletes expired codes and sessions, send counts of past hours,
    /// accounts created before `unverified_before` and still unverified
    /// (with their pending codes; re-registering does not renew an
    /// account), audit events older than `audit_before`, and counts of
    /// failed sign-ins that can no longer lock anything, the OpenID
    /// Provider's spent codes and ended grants, and the self-registered
    /// clients registered before `clients_before` that hold no grant.
    async fn cleanup(
        &self,
        now: u64,
        unverified_before: u64,
        audit_before: u64,
        clients_before: u64,
    ) -> ApiResult<Cleanup>;
    /// Appends a request's events, all at `now` from `ip`, in one write.
    async fn record_events(&self, events: &[Event], ip: &str, now: u64) -> ApiResult<()>;
    /// Newest first, optionally only those of one address or one kind.
    async fn events(&self, page: &EventPage, filter: &EventFilter) -> ApiResult<Vec<StoredEvent>>;
    /// Code events since `since`, counted per `bucket_secs`: only the
    /// buckets that had any, oldest first.
    async fn event_series(&self, since: u64, bucket_secs: u64) -> ApiResult<Vec<SeriesPoint>>;
}
