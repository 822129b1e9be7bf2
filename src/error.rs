//! The one error type of the service. Every failure a client can see is a
//! variant here, and `status`/`code` below are the only place that maps it
//! to HTTP, so problem codes stay stable.

use crate::domain::channel::Channel;
use crate::domain::oauth_error::OAuthError;
use serde::Serialize;
use std::fmt;

/// A secret an answer carries (a second step's ticket): its `Debug` hides
/// it, so no log line of an error ever shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Redacted(pub String);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// 400: a field or parameter is missing or malformed; `detail` names it
    /// without repeating its value.
    InvalidRequest(String),
    /// 400: no code is pending (or it was used or replaced).
    InvalidCode,
    /// 400: the code does not match the pending one, which takes
    /// `attempts_left` more guesses. The same for every address: an
    /// unknown one has a pending code too (see `Service::request_code`).
    WrongCode { attempts_left: u32 },
    /// 403: a page's form without the browser's CSRF token or from another origin.
    CsrfRefused,
    /// 400: the code was right but has expired.
    ExpiredCode,
    /// 429: the code's attempts are used up; only a new code helps.
    TooManyAttempts,
    /// 429 with `Retry-After`: a send or request cap.
    RateLimited { retry_after_secs: u64 },
    /// 401: the email or password is wrong, or the address is not verified
    /// yet (one answer for all three; see `Service::password_login`).
    InvalidCredentials,
    /// A right first factor on an account with a second one: the session
    /// waits for `POST /v1/login/mfa` with this ticket.
    MfaRequired { mfa_token: Redacted },
    /// The ticket is unknown, expired, spent, or not for this caller.
    MfaTokenInvalid,
    /// Too many wrong second steps for the account: locked for a while.
    SecondFactorLocked { retry_after_secs: u64 },
    /// Setting up a second factor needs a sign-in made in the last
    /// minutes, not just a live session.
    FreshSignInRequired,
    /// The account already has a confirmed authenticator app.
    TotpAlreadyEnabled,
    /// There is no authenticator app to confirm or remove.
    TotpNotEnabled,
    /// 401: the bearer token, API key or admin token is missing or wrong.
    Unauthorized,
    /// 429 with `Retry-After`: too many failed password sign-ins for the
    /// address (`domain::sign_in_budget`), whatever the password now. Code
    /// sign-in and password reset stay open.
    LoginLocked { retry_after_secs: u64 },
    /// 403: the API key may not send on this channel.
    ChannelNotAllowed(Channel),
    /// 403: SMS and WhatsApp codes may not go to the number's country
    /// (`SMS_ALLOWED_COUNTRIES`). Refused before anything is written or sent.
    CountryNotAllowed,
    /// 429 with `Retry-After`: the hourly cap of sends to numbers sharing
    /// the number's prefix, the mark of an SMS-pumping run. Answered as
    /// `rate_limited`; the audit trail says `prefix_limited`.
    PrefixLimited { retry_after_secs: u64 },
    /// 403: a send that needs a Turnstile token came without one that
    /// siteverify accepts (missing, invalid, expired or already used).
    TurnstileFailed,
    /// 403: a provider's callback without a valid signature.
    InvalidSignature,
    /// 404: no send of this key has this id.
    SendNotFound,
    /// 403: test recipients are off in production (`ALLOW_TEST_RECIPIENTS`).
    TestRecipientsDisabled,
    /// 409: the key has `max` test recipients (`test_recipient::MAX_PER_KEY`).
    TooManyTestRecipients { max: u32 },
    /// 404: no route has this path.
    NotFound,
    /// 404: no API key has this id.
    ApiKeyNotFound,
    /// 404: no OpenID Connect client has this id.
    ClientNotFound,
    /// 404: the key has no such test recipient.
    TestRecipientNotFound,
    /// 403: a CORS preflight from an origin `CORS_ALLOWED_ORIGINS` does not list.
    OriginNotAllowed,
    /// 405 with `Allow`.
    MethodNotAllowed { allow: String },
    /// 415: a body that is not `application/json`.
    UnsupportedMediaType,
    /// 413: a body past the limit.
    PayloadTooLarge { limit_bytes: usize },
    /// 502: the mail provider refused or did not answer.
    MailDeliveryFailed,
    /// 502: Twilio refused or did not answer. Why is logged, never answered:
    /// Twilio's reason (an opted-out number, say) is about the recipient.
    TextDeliveryFailed(Channel),
    /// 502: Twilio answered the message with an error. The client sees it
    /// as `TextDeliveryFailed`; a WhatsApp fallback takes only this one,
    /// since a send with no answer may still be delivered.
    TextRefused(Channel),
    /// 503: a missing secret, binding or schema. The detail says which, so
    /// an operator can fix it; it never contains a secret's value.
    Unavailable(String),
    /// 503 with `Retry-After`: D1 or KV failed, before anything was sent,
    /// so the client may retry. The detail names the operation and the
    /// store's error (see `ApiError::storage`); it is logged, never sent.
    StorageUnavailable(String),
    /// 500: a bug or a platform failure. The detail names the operation
    /// (see `ApiError::internal`); it is logged, never sent.
    Internal(String),
    /// 400 or 401: an error of the OAuth protocol, answered as its RFC
    /// says (`{"error", "error_description"}`), not as a problem document.
    OAuth(OAuthError),
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The path of the page about problem `code`: `/problems/invalid-code`.
pub fn problem_path(code: &str) -> String {
    format!("/problems/{}", code.replace('_', "-"))
}

impl ApiError {
    /// A bug or a platform failure (no randomness, say) in `operation`:
    /// `"session token: getrandom: ..."`. Logged, never answered.
    pub fn internal(operation: &str, cause: impl fmt::Display) -> Self {
        Self::Internal(format!("{operation}: {cause}"))
    }

    /// D1 or KV failed in `operation` (`"d1 claim_attempt"`, `"kv get"`).
    pub fn storage(operation: &str, cause: impl fmt::Display) -> Self {
        Self::StorageUnavailable(format!("{operation}: {cause}"))
    }
}

/// What an operator reads in a log: the problem code, then the private
/// detail for the failures that have one (which operation, and why).
impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Internal(cause) | Self::StorageUnavailable(cause) | Self::Unavailable(cause) => {
                write!(f, "{}: {cause}", self.code())
            }
            _ => write!(f, "{}: {}", self.code(), self.detail()),
        }
    }
}

impl std::error::Error for ApiError {}

/// What a client is told to wait after a storage failure: D1 and KV blips
/// last seconds.
pub const STORAGE_RETRY_AFTER_SECS: u64 = 2;

/// RFC 9457 problem details, plus our stable `code`.
#[derive(Debug, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    pub code: &'static str,
    /// For `WrongCode`: the guesses the code still takes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts_left: Option<u32>,
    /// For `MfaRequired`: the ticket of the second step (never in
    /// `detail`, so never in a log line).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mfa_token: Option<String>,
}

impl ApiError {
    pub fn status(&self) -> u16 {
        match self {
            Self::InvalidRequest(_)
            | Self::InvalidCode
            | Self::WrongCode { .. }
            | Self::ExpiredCode => 400,
            Self::InvalidCredentials | Self::Unauthorized | Self::MfaTokenInvalid => 401,
            Self::MfaRequired { .. } | Self::FreshSignInRequired => 403,
            Self::TotpAlreadyEnabled | Self::TotpNotEnabled => 409,
            Self::ChannelNotAllowed(_)
            | Self::OriginNotAllowed
            | Self::CsrfRefused
            | Self::CountryNotAllowed
            | Self::TurnstileFailed
            | Self::InvalidSignature
            | Self::TestRecipientsDisabled => 403,
            Self::NotFound
            | Self::ApiKeyNotFound
            | Self::ClientNotFound
            | Self::TestRecipientNotFound
            | Self::SendNotFound => 404,
            Self::TooManyTestRecipients { .. } => 409,
            Self::MethodNotAllowed { .. } => 405,
            Self::PayloadTooLarge { .. } => 413,
            Self::UnsupportedMediaType => 415,
            Self::TooManyAttempts
            | Self::RateLimited { .. }
            | Self::PrefixLimited { .. }
            | Self::LoginLocked { .. }
            | Self::SecondFactorLocked { .. } => 429,
            Self::Internal(_) => 500,
            Self::MailDeliveryFailed | Self::TextDeliveryFailed(_) | Self::TextRefused(_) => 502,
            Self::Unavailable(_) | Self::StorageUnavailable(_) => 503,
            Self::OAuth(e) => e.status(),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidCode | Self::WrongCode { .. } => "invalid_code",
            Self::CsrfRefused => "csrf_failed",
            Self::ExpiredCode => "expired_code",
            Self::TooManyAttempts => "too_many_attempts",
            Self::RateLimited { .. } | Self::PrefixLimited { .. } => "rate_limited",
            Self::CountryNotAllowed => "country_not_allowed",
            Self::TurnstileFailed => "turnstile_failed",
            Self::InvalidSignature => "invalid_signature",
            Self::TestRecipientsDisabled => "test_recipients_disabled",
            Self::TooManyTestRecipients { .. } => "too_many_test_recipients",
            Self::InvalidCredentials => "invalid_credentials",
            Self::Unauthorized => "unauthorized",
            Self::LoginLocked { .. } => "login_locked",
            Self::MfaRequired { .. } => "mfa_required",
            Self::MfaTokenInvalid => "invalid_mfa_token",
            Self::FreshSignInRequired => "fresh_sign_in_required",
            Self::SecondFactorLocked { .. } => "second_factor_locked",
            Self::TotpAlreadyEnabled => "totp_already_enabled",
            Self::TotpNotEnabled => "totp_not_enabled",
            Self::ChannelNotAllowed(_) => "channel_not_allowed",
            Self::NotFound
            | Self::ApiKeyNotFound
            | Self::ClientNotFound
            | Self::TestRecipientNotFound
            | Self::SendNotFound => "not_found",
            Self::OriginNotAllowed => "origin_not_allowed",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::MailDeliveryFailed => "mail_delivery_failed",
            Self::TextDeliveryFailed(Channel::Whatsapp) | Self::TextRefused(Channel::Whatsapp) => {
                "whatsapp_delivery_failed"
            }
            Self::TextDeliveryFailed(_) | Self::TextRefused(_) => "sms_delivery_failed",
            Self::Unavailable(_) | Self::StorageUnavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
            Self::OAuth(e) => e.code.as_str(),
        }
    }

    pub fn title(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "Invalid request",
            Self::InvalidCode | Self::WrongCode { .. } => "Invalid code",
            Self::CsrfRefused => "Form refused",
            Self::ExpiredCode => "Expired code",
            Self::TooManyAttempts => "Too many attempts",
            Self::RateLimited { .. } | Self::PrefixLimited { .. } => "Rate limited",
            Self::CountryNotAllowed => "Country not allowed",
            Self::TurnstileFailed => "Turnstile check failed",
            Self::InvalidSignature => "Invalid signature",
            Self::TestRecipientsDisabled => "Test recipients disabled",
            Self::TooManyTestRecipients { .. } => "Too many test recipients",
            Self::InvalidCredentials => "Invalid credentials",
            Self::Unauthorized => "Unauthorized",
            Self::LoginLocked { .. } => "Password sign-in locked",
            Self::MfaRequired { .. } => "Second step required",
            Self::MfaTokenInvalid => "Invalid MFA token",
            Self::FreshSignInRequired => "Fresh sign-in required",
            Self::SecondFactorLocked { .. } => "Second step locked",
            Self::TotpAlreadyEnabled => "Authenticator app already on",
            Self::TotpNotEnabled => "No authenticator app",
            Self::ChannelNotAllowed(_) => "Channel not allowed",
            Self::NotFound
            | Self::ApiKeyNotFound
            | Self::ClientNotFound
            | Self::TestRecipientNotFound
            | Self::SendNotFound => "Not found",
            Self::OriginNotAllowed => "Origin not allowed",
            Self::MethodNotAllowed { .. } => "Method not allowed",
            Self::UnsupportedMediaType => "Unsupported media type",
            Self::PayloadTooLarge { .. } => "Payload too large",
            Self::MailDeliveryFailed => "Mail delivery failed",
            Self::TextDeliveryFailed(_) | Self::TextRefused(_) => "Message delivery failed",
            Self::Unavailable(_) | Self::StorageUnavailable(_) => "Service unavailable",
            Self::Internal(_) => "Internal error",
            Self::OAuth(_) => "Sign-in request refused",
        }
    }

    pub fn detail(&self) -> String {
        match self {
            Self::InvalidRequest(d) | Self::Unavailable(d) => d.clone(),
            Self::OAuth(e) => e.description.clone(),
            Self::InvalidCode => "The code is wrong, or there is no pending code for this address.".into(),
            Self::WrongCode { attempts_left } => format!(
                "The code is wrong. {attempts_left} more {} allowed before it can no longer be used.",
                if *attempts_left == 1 { "attempt is" } else { "attempts are" }
            ),
            Self::CsrfRefused => {
                "The form did not come from this service's own page in this browser.".into()
            }
            Self::ExpiredCode => "The code has expired. Ask for a new one.".into(),
            Self::TooManyAttempts => {
                "Too many wrong codes: this code can no longer be used. Ask for a new one later.".into()
            }
            Self::RateLimited { retry_after_secs } | Self::PrefixLimited { retry_after_secs } => {
                format!("Too many requests. Retry after {retry_after_secs} seconds.")
            }
            Self::CountryNotAllowed => {
                "Codes may not be sent to this number's country (SMS_ALLOWED_COUNTRIES).".into()
            }
            Self::InvalidSignature => {
                "The callback's signature does not match: it did not come from the provider, or PUBLIC_BASE_URL is not the URL it called.".into()
            }
            Self::SendNotFound => "This API key made no send with this id (or its record has expired).".into(),
            Self::TurnstileFailed => {
                "This request needs a `turnstile_token` from the Turnstile widget that Cloudflare accepts; get a fresh one and send again.".into()
            }
            Self::TestRecipientsDisabled => {
                "Test recipients are off in production unless ALLOW_TEST_RECIPIENTS=true.".into()
            }
            Self::TooManyTestRecipients { max } => {
                format!("An API key may have at most {max} test recipients.")
            }
            Self::TestRecipientNotFound => "The API key has no such test recipient.".into(),
            Self::InvalidCredentials => "The email or password is wrong. If the address was signed up and not verified yet, and the password was right, a new verification code has been mailed to it.".into(),
            Self::Unauthorized => "A valid bearer token is required.".into(),
            Self::MfaRequired { .. } => "The password or code was right and the account has a second factor: send a code from the authenticator app, or a recovery code, with `mfa_token` to POST /v1/login/mfa.".into(),
            Self::MfaTokenInvalid => "The mfa_token is unknown, expired or was issued to the hosted pages: sign in again.".into(),
            Self::FreshSignInRequired => "Setting up an authenticator app needs a sign-in from the last 10 minutes: sign in again, then use the new session.".into(),
            Self::SecondFactorLocked { retry_after_secs } => format!(
                "Too many wrong second steps for this account. Try again in {retry_after_secs} seconds."
            ),
            Self::TotpAlreadyEnabled => "The account already has an authenticator app: turn it off first to set up another.".into(),
            Self::TotpNotEnabled => "The account has no authenticator app to confirm or turn off.".into(),
            Self::LoginLocked { retry_after_secs } => format!(
                "Too many failed password sign-ins for this address. Retry after {retry_after_secs} seconds, or sign in with an emailed code (/v1/login/code) or reset the password (/v1/password-reset), which stay open."
            ),
            Self::ChannelNotAllowed(c) => {
                format!("This API key may not send on the `{}` channel.", c.as_str())
            }
            Self::NotFound => "No such route.".into(),
            Self::ApiKeyNotFound => "No API key has this id.".into(),
            Self::ClientNotFound => "No OpenID Connect client has this id.".into(),
            Self::OriginNotAllowed => {
                "This origin may not call the API from a browser (see CORS_ALLOWED_ORIGINS).".into()
            }
            Self::TextDeliveryFailed(_) | Self::TextRefused(_) => {
                "The message provider did not accept the message. Nothing was changed that blocks a retry.".into()
            }
            Self::MethodNotAllowed { allow } => format!("This route accepts: {allow}."),
            Self::UnsupportedMediaType => "The request body must be application/json.".into(),
            Self::PayloadTooLarge { limit_bytes } => {
                format!("The request body must be at most {limit_bytes} bytes.")
            }
            Self::MailDeliveryFailed => {
                "The mail provider did not accept the message. Nothing was changed that blocks a retry.".into()
            }
            Self::StorageUnavailable(_) => format!(
                "The service's storage did not answer. Retry after {STORAGE_RETRY_AFTER_SECS} seconds."
            ),
            // Never echo internals to the client.
            Self::Internal(_) => "An internal error occurred.".into(),
        }
    }

    /// What the audit trail records for this failure: its problem code,
    /// except where the trail tells apart what the client need not.
    pub fn audit_outcome(&self) -> &'static str {
        match self {
            Self::PrefixLimited { .. } => "prefix_limited",
            _ => self.code(),
        }
    }

    /// The problem document; its `type` is the page this worker serves
    /// about the problem, under `origin` (`https://otp.example.com`).
    pub fn problem(&self, origin: &str) -> Problem {
        Problem {
            type_uri: format!("{origin}{}", problem_path(self.code())),
            title: self.title(),
            status: self.status(),
            detail: self.detail(),
            code: self.code(),
            attempts_left: match self {
                Self::WrongCode { attempts_left } => Some(*attempts_left),
                _ => None,
            },
            mfa_token: match self {
                Self::MfaRequired { mfa_token } => Some(mfa_token.0.clone()),
                _ => None,
            },
        }
    }

    /// Extra headers the status code requires (`Retry-After` on 429, `Allow` on 405).
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::RateLimited { retry_after_secs }
            | Self::PrefixLimited { retry_after_secs }
            | Self::LoginLocked { retry_after_secs }
            | Self::SecondFactorLocked { retry_after_secs } => {
                vec![("retry-after", retry_after_secs.max(&1).to_string())]
            }
            Self::StorageUnavailable(_) => {
                vec![("retry-after", STORAGE_RETRY_AFTER_SECS.to_string())]
            }
            Self::MethodNotAllowed { allow } => vec![("allow", allow.clone())],
            Self::OAuth(e) => e.headers(),
            _ => vec![],
        }
    }
}

#[cfg(test)]
impl ApiError {
    /// One of each variant, for tests that must cover every code.
    pub fn examples() -> Vec<ApiError> {
        vec![
            ApiError::InvalidRequest("email".into()),
            ApiError::InvalidCode,
            ApiError::WrongCode { attempts_left: 2 },
            ApiError::CsrfRefused,
            ApiError::ExpiredCode,
            ApiError::TooManyAttempts,
            ApiError::RateLimited {
                retry_after_secs: 3,
            },
            ApiError::InvalidCredentials,
            ApiError::MfaRequired {
                mfa_token: Redacted("ticket".into()),
            },
            ApiError::MfaTokenInvalid,
            ApiError::FreshSignInRequired,
            ApiError::SecondFactorLocked {
                retry_after_secs: 900,
            },
            ApiError::TotpAlreadyEnabled,
            ApiError::TotpNotEnabled,
            ApiError::Unauthorized,
            ApiError::LoginLocked {
                retry_after_secs: 900,
            },
            ApiError::NotFound,
            ApiError::MethodNotAllowed {
                allow: "POST".into(),
            },
            ApiError::UnsupportedMediaType,
            ApiError::PayloadTooLarge { limit_bytes: 16384 },
            ApiError::MailDeliveryFailed,
            ApiError::ChannelNotAllowed(Channel::Sms),
            ApiError::ApiKeyNotFound,
            ApiError::ClientNotFound,
            ApiError::OriginNotAllowed,
            ApiError::CountryNotAllowed,
            ApiError::TurnstileFailed,
            ApiError::InvalidSignature,
            ApiError::SendNotFound,
            ApiError::PrefixLimited {
                retry_after_secs: 60,
            },
            ApiError::TestRecipientsDisabled,
            ApiError::TooManyTestRecipients { max: 50 },
            ApiError::TestRecipientNotFound,
            ApiError::TextDeliveryFailed(Channel::Whatsapp),
            ApiError::TextDeliveryFailed(Channel::Sms),
            ApiError::TextRefused(Channel::Whatsapp),
            ApiError::Unavailable("OTP_PEPPER is not set".into()),
            ApiError::StorageUnavailable("d1 claim_attempt: Network connection lost".into()),
            ApiError::Internal("x".into()),
            ApiError::OAuth(OAuthError::new(
                crate::domain::oauth_error::OAuthCode::InvalidGrant,
                "the code is unknown",
            )),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_never_leak_their_detail() {
        let p = ApiError::Internal("D1_ERROR: no such table: users".into()).problem("");
        assert_eq!(p.status, 500);
        assert_eq!(p.code, "internal");
        assert!(!p.detail.contains("D1"));
    }

    #[test]
    fn every_variant_has_a_snake_case_code_and_matching_status() {
        let all = ApiError::examples();
        let spec: serde_json::Value =
            serde_norway::from_str(include_str!("../openapi.yaml")).unwrap();
        let documented: Vec<&str> = spec["components"]["schemas"]["Problem"]["properties"]["code"]
            ["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        // OAuth's errors are the RFCs' codes, not problem documents.
        let mut codes: Vec<&str> = all
            .iter()
            .filter(|e| !matches!(e, ApiError::OAuth(_)))
            .map(ApiError::code)
            .collect();
        codes.sort_unstable();
        codes.dedup();
        let mut sorted = documented.clone();
        sorted.sort_unstable();
        assert_eq!(
            codes, sorted,
            "problem codes and openapi.yaml's Problem.code differ"
        );
        for e in all {
            let p = e.problem("https://otp.example");
            assert!(p.code.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
            assert_eq!(p.status, e.status());
            assert_eq!(
                p.type_uri,
                format!("https://otp.example/problems/{}", p.code.replace('_', "-"))
            );
        }
    }

    #[test]
    fn storage_failures_are_503_with_retry_after_and_keep_their_cause_private() {
        let e =
            ApiError::StorageUnavailable("d1 register: D1_ERROR: Network connection lost".into());
        let p = e.problem("");
        assert_eq!((p.status, p.code), (503, "unavailable"));
        assert!(!p.detail.contains("D1") && !p.detail.contains("register"));
        assert_eq!(e.headers(), vec![("retry-after", "2".to_string())]);
    }

    #[test]
    fn rate_limited_carries_retry_after_and_405_carries_allow() {
        let h = ApiError::RateLimited {
            retry_after_secs: 42,
        }
        .headers();
        assert_eq!(h, vec![("retry-after", "42".to_string())]);
        let h = ApiError::MethodNotAllowed {
            allow: "GET".into(),
        }
        .headers();
        assert_eq!(h, vec![("allow", "GET".to_string())]);
    }

    #[test]
    fn display_names_the_code_and_for_failures_the_operation() {
        let e = ApiError::storage("d1 claim_attempt", "Network connection lost");
        assert_eq!(
            e.to_string(),
            "unavailable: d1 claim_attempt: Network connection lost"
        );
        let e = ApiError::internal("session token: getrandom", "no entropy");
        assert_eq!(
            e.to_string(),
            "internal: session token: getrandom: no entropy"
        );
        assert_eq!(
            ApiError::ExpiredCode.to_string(),
            "expired_code: The code has expired. Ask for a new one."
        );
        let boxed: Box<dyn std::error::Error> = Box::new(ApiError::NotFound);
        assert!(boxed.to_string().starts_with("not_found"));
    }
}
