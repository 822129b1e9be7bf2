//! The security audit trail. Every security event of a request is recorded
//! here and written to `auth_events` after the answer. An event names the
//! address only by a keyed hash, so the trail is not a list of users.

use crate::domain::channel::Channel;
use crate::error::ApiError;
use serde::Serialize;
use std::cell::RefCell;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    CodeSent,
    CodeVerified,
    CodeFailed,
    /// The wrong guess that used up a code's attempts.
    CodeBurned,
    LoginOk,
    LoginFailed,
    PasswordReset,
    Logout,
    ApiKeyCreated,
    ApiKeyRevoked,
    /// A request to an admin route without the right `ADMIN_TOKEN`.
    AdminAuthFailed,
    /// A request to `/v1/otp/*` without a valid, unrevoked API key.
    ApiKeyAuthFailed,
    TestRecipientAdded,
    TestRecipientRemoved,
    /// A provider's report on a sent message: `delivered`, `undelivered`
    /// or `failed`, with its error code as the detail.
    CodeDelivery,
    /// The operator registered an OpenID Connect client (scope `client:<id>`).
    OidcClientCreated,
    /// The operator deleted one.
    OidcClientDeleted,
    /// A client registered itself (RFC 7591; scope `client:<id>`): `ok`,
    /// or `rate_limited` past a cap.
    OidcClientRegistered,
    /// The token endpoint's answer to a client (scope `client:<id>`,
    /// purpose the grant type): `ok` or the OAuth error.
    OauthToken,
    /// A grant ended before its time: `code_replayed`,
    /// `refresh_token_reused` (both revoke it), or `revoked` by its client.
    OauthGrantRevoked,
    /// A right first factor on an account with a second one: the second
    /// step was asked for (purpose: the first factor).
    MfaRequired,
    /// A second step refused (purpose `totp` or `recovery_code`; outcome
    /// the problem code).
    MfaFailed,
    /// An authenticator app was confirmed on the account.
    TotpEnabled,
    /// The account's authenticator app was turned off (purpose: what proved it).
    TotpDisabled,
    /// A recovery code was spent (to sign in, or to turn TOTP off).
    RecoveryCodeUsed,
    /// New recovery codes replaced the old ones.
    RecoveryCodesReplaced,
}

impl EventKind {
    pub const ALL: [Self; 26] = [
        Self::CodeSent,
        Self::CodeVerified,
        Self::CodeFailed,
        Self::CodeBurned,
        Self::LoginOk,
        Self::LoginFailed,
        Self::PasswordReset,
        Self::Logout,
        Self::ApiKeyCreated,
        Self::ApiKeyRevoked,
        Self::AdminAuthFailed,
        Self::ApiKeyAuthFailed,
        Self::TestRecipientAdded,
        Self::TestRecipientRemoved,
        Self::CodeDelivery,
        Self::OidcClientCreated,
        Self::OidcClientDeleted,
        Self::OidcClientRegistered,
        Self::OauthToken,
        Self::OauthGrantRevoked,
        Self::MfaRequired,
        Self::MfaFailed,
        Self::TotpEnabled,
        Self::TotpDisabled,
        Self::RecoveryCodeUsed,
        Self::RecoveryCodesReplaced,
    ];

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::CodeSent => "code_sent",
            Self::CodeVerified => "code_verified",
            Self::CodeFailed => "code_failed",
            Self::CodeBurned => "code_burned",
            Self::LoginOk => "login_ok",
            Self::LoginFailed => "login_failed",
            Self::PasswordReset => "password_reset",
            Self::Logout => "logout",
            Self::ApiKeyCreated => "api_key_created",
            Self::ApiKeyRevoked => "api_key_revoked",
            Self::AdminAuthFailed => "admin_auth_failed",
            Self::ApiKeyAuthFailed => "api_key_auth_failed",
            Self::TestRecipientAdded => "test_recipient_added",
            Self::TestRecipientRemoved => "test_recipient_removed",
            Self::CodeDelivery => "code_delivery",
            Self::OidcClientCreated => "oidc_client_created",
            Self::OidcClientDeleted => "oidc_client_deleted",
            Self::OidcClientRegistered => "oidc_client_registered",
            Self::OauthToken => "oauth_token",
            Self::OauthGrantRevoked => "oauth_grant_revoked",
            Self::MfaRequired => "mfa_required",
            Self::MfaFailed => "mfa_failed",
            Self::TotpEnabled => "totp_enabled",
            Self::TotpDisabled => "totp_disabled",
            Self::RecoveryCodeUsed => "recovery_code_used",
            Self::RecoveryCodesReplaced => "recovery_codes_replaced",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    /// `ok`, what happened instead (`queued`, `no_account`), or the problem code.
    pub outcome: &'static str,
    /// `core`, `key:<id>` for an app's codes and for key events, or
    /// `client:<id>` for an OpenID Connect client's.
    pub scope: Option<String>,
    pub purpose: Option<String>,
    pub channel: Option<Channel>,
    pub address_hash: Option<String>,
    /// The send (a code's id) the event is about, for `GET /v1/otp/{id}`.
    pub send_id: Option<String>,
    /// What a provider said: its error code for a failed delivery.
    pub detail: Option<String>,
    /// A test recipient's send: nothing went out.
    pub test: bool,
}

impl Event {
    pub fn new(kind: EventKind, outcome: &'static str) -> Self {
        Self {
            kind,
            outcome,
            scope: None,
            purpose: None,
            channel: None,
            address_hash: None,
            send_id: None,
            detail: None,
            test: false,
        }
    }
}

/// The outcome of a flow's result: `ok` or the problem code.
pub fn outcome<T>(result: &Result<T, ApiError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(e) => e.code(),
    }
}

/// The events of one request, collected as the flow runs.
#[derive(Debug, Default)]
pub struct Audit(RefCell<Vec<Event>>);

impl Audit {
    pub fn record(&self, event: Event) {
        self.0.borrow_mut().push(event);
    }

    pub fn take(&self) -> Vec<Event> {
        self.0.take()
    }
}

/// An event as stored and as `GET /v1/admin/events` lists it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StoredEvent {
    pub id: u64,
    pub at: String,
    pub event: String,
    pub outcome: String,
    pub scope: Option<String>,
    pub purpose: Option<String>,
    pub channel: Option<String>,
    pub address_hash: Option<String>,
    pub ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub test: bool,
}

pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 500;

/// One page of the trail, newest first: events with an id below `before`.
/// Which events a page of the trail shows.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// The keyed hash of an address (`Pepper::address_tag`).
    pub address_hash: Option<String>,
    pub kind: Option<EventKind>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventPage {
    pub limit: u32,
    pub before: Option<u64>,
}

impl EventPage {
    /// From the query string's `limit` and `before`.
    pub fn parse(limit: Option<&str>, before: Option<&str>) -> Result<Self, ApiError> {
        let number = |name: &str, raw: &str, max: u64| match raw.parse::<u64>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::InvalidRequest(format!(
                "query parameter `{name}` must be an integer from 1 to {max}"
            ))),
        };
        Ok(Self {
            limit: match limit {
                Some(raw) => number("limit", raw, MAX_PAGE.into())? as u32,
                None => DEFAULT_PAGE,
            },
            before: before
                .map(|raw| number("before", raw, i64::MAX as u64))
                .transpose()?,
        })
    }

    /// The cursor for the next page, when this one was full.
    pub fn next_before(&self, events: &[StoredEvent]) -> Option<u64> {
        match events.last() {
            Some(last) if events.len() == self.limit as usize => Some(last.id),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_default_to_fifty_and_refuse_nonsense() {
        assert_eq!(
            EventPage::parse(None, None).unwrap(),
            EventPage {
                limit: 50,
                before: None
            }
        );
        assert_eq!(
            EventPage::parse(Some("500"), Some("17")).unwrap(),
            EventPage {
                limit: 500,
                before: Some(17)
            }
        );
        for (limit, before) in [
            (Some("0"), None),
            (Some("501"), None),
            (Some("-1"), None),
            (Some("ten"), None),
            (None, Some("0")),
            (None, Some("1e3")),
            (None, Some("")),
        ] {
            let e = EventPage::parse(limit, before).unwrap_err();
            assert_eq!(e.code(), "invalid_request");
        }
    }

    #[test]
    fn a_full_page_points_at_the_next() {
        let event = |id| StoredEvent {
            id,
            at: String::new(),
            event: "logout".into(),
            outcome: "ok".into(),
            scope: None,
            purpose: None,
            channel: None,
            address_hash: None,
            ip: None,
            send_id: None,
            detail: None,
            test: false,
        };
        let page = EventPage::parse(Some("2"), None).unwrap();
        assert_eq!(page.next_before(&[event(9), event(7)]), Some(7));
        assert_eq!(page.next_before(&[event(9)]), None);
        assert_eq!(page.next_before(&[]), None);
    }

    #[test]
    fn outcomes_are_ok_or_the_problem_code() {
        assert_eq!(outcome(&Ok::<(), ApiError>(())), "ok");
        assert_eq!(outcome::<()>(&Err(ApiError::InvalidCode)), "invalid_code");
    }
}
