//! One type per route that reads input: the whole request, parsed into
//! domain values before any flow runs. A value of these types is valid;
//! the first bad field (in the order below) is the 400 a client sees.
//!
//! Fields are read in the order the contract lists them, so a body with
//! several bad fields always names the same one.

use crate::config::Config;
use crate::domain::api_key::{KeyOptions, NewApiKey};
use crate::domain::audit::{EventKind, EventPage};
use crate::domain::channel::Channel;
use crate::domain::code::{Alphabet, Code, CodeSpec};
use crate::domain::email::Email;
use crate::domain::oidc_client::NewClient;
use crate::domain::password::Password;
use crate::domain::purpose::{AppPurpose, Purpose};
use crate::domain::recipient::Recipient;
use crate::domain::recovery_code::SecondFactor;
use crate::domain::registrant::PasswordProof;
use crate::domain::test_recipient::NewTestRecipient;
use crate::domain::totp::TotpCode;
use crate::error::Redacted;
use crate::error::{ApiError, ApiResult};
use crate::http::body::JsonBody;
use crate::http::routes::{id_in, key_id, OIDC_CLIENT_PATH};
use crate::providers::locale::LanguageTag;
use crate::providers::turnstile::MAX_TOKEN_LEN;
use crate::service::AppCode;

/// Passwords a sign-in may present: any stored password is at least 1
/// character, whatever `PASSWORD_MIN_LENGTH` says today.
const ANY_STORED_PASSWORD: usize = 1;

fn email(body: &JsonBody) -> ApiResult<Email> {
    Email::parse(body.string("email")?)
}

/// A code of the account flows: `OTP_LENGTH` digits.
fn account_code(body: &JsonBody, cfg: &Config) -> ApiResult<Code> {
    Code::parse(body.string("code")?, cfg.otp_length)
}

/// `POST /v1/register`.
#[derive(Debug)]
pub struct Register {
    pub email: Email,
    pub password: Password,
}

impl Register {
    pub fn parse(body: &JsonBody, cfg: &Config) -> ApiResult<Self> {
        Ok(Self {
            email: email(body)?,
            password: Password::parse(
                body.string("password")?,
                cfg.password_min_length,
                "password",
            )?,
        })
    }
}

/// `POST /v1/verify-email` and `POST /v1/login/code/verify`: an address and
/// the code mailed to it.
#[derive(Debug)]
pub struct CodeProof {
    pub email: Email,
    pub code: Code,
}

impl CodeProof {
    pub fn parse(body: &JsonBody, cfg: &Config) -> ApiResult<Self> {
        Ok(Self {
            email: email(body)?,
            code: account_code(body, cfg)?,
        })
    }
}

/// `POST /v1/verify-email`: the code, and optionally the password of the
/// sign-up, which keeps it when the sign-up was contested (see
/// `domain::registrant`).
#[derive(Debug)]
pub struct VerifyEmail {
    pub email: Email,
    pub code: Code,
    pub proof: PasswordProof,
}

impl VerifyEmail {
    pub fn parse(body: &JsonBody, cfg: &Config) -> ApiResult<Self> {
        let CodeProof { email, code } = CodeProof::parse(body, cfg)?;
        let proof = match body.optional_string("password")? {
            Some(p) => {
                PasswordProof::Password(Password::parse(p, ANY_STORED_PASSWORD, "password")?)
            }
            None => PasswordProof::None,
        };
        Ok(Self { email, code, proof })
    }
}

/// `POST /v1/resend`.
#[derive(Debug)]
pub struct Resend {
    pub email: Email,
    pub purpose: Purpose,
}

impl Resend {
    pub fn parse(body: &JsonBody) -> ApiResult<Self> {
        Ok(Self {
            email: email(body)?,
            purpose: Purpose::parse_resendable(body.string("purpose")?)?,
        })
    }
}

/// `POST /v1/login`. The password is only checked for presence: a stricter
/// `PASSWORD_MIN_LENGTH` than when it was set must not lock anyone out.
#[derive(Debug)]
pub struct Login {
    pub email: Email,
    pub password: Password,
}

impl Login {
    pub fn parse(body: &JsonBody) -> ApiResult<Self> {
        Ok(Self {
            email: email(body)?,
            password: Password::parse(body.string("password")?, ANY_STORED_PASSWORD, "password")?,
        })
    }
}

/// `POST /v1/login/mfa`: a sign-in's second step.
#[derive(Debug)]
pub struct MfaLogin {
    /// `Debug` hides it.
    pub mfa_token: Redacted,
    pub code: SecondFactor,
}

/// The longest ticket read: ours are 43 characters.
const MAX_MFA_TOKEN_CHARS: usize = 128;

impl MfaLogin {
    pub fn parse(body: &JsonBody) -> ApiResult<Self> {
        let mfa_token = body.string("mfa_token")?;
        if mfa_token.is_empty() || mfa_token.len() > MAX_MFA_TOKEN_CHARS {
            return Err(ApiError::InvalidRequest(format!(
                "field `mfa_token` must be the token a sign-in answered with `mfa_required` (at most {MAX_MFA_TOKEN_CHARS} characters)"
            )));
        }
        Ok(Self {
            mfa_token: Redacted(mfa_token.to_owned()),
            code: second_factor(body)?,
        })
    }
}

/// `code`: an authenticator app's six digits, or a recovery code.
pub fn second_factor(body: &JsonBody) -> ApiResult<SecondFactor> {
    SecondFactor::parse(body.string("code")?).ok_or_else(|| {
        ApiError::InvalidRequest(
            "field `code` must be the 6 digits of the authenticator app, or a recovery code (xxxxx-xxxxx)".into(),
        )
    })
}

/// `code`: an authenticator app's six digits (confirming it, or new
/// recovery codes, take a code from the app itself).
pub fn totp_code(body: &JsonBody) -> ApiResult<TotpCode> {
    TotpCode::parse(body.string("code")?).ok_or_else(|| {
        ApiError::InvalidRequest(
            "field `code` must be the 6 digits of the authenticator app".into(),
        )
    })
}

/// `POST /v1/login/code` and `POST /v1/password-reset`: an address to mail
/// a code to.
#[derive(Debug)]
pub struct CodeRequest {
    pub email: Email,
}

impl CodeRequest {
    pub fn parse(body: &JsonBody) -> ApiResult<Self> {
        Ok(Self {
            email: email(body)?,
        })
    }
}

/// `POST /v1/password-reset/confirm`.
#[derive(Debug)]
pub struct PasswordResetConfirm {
    pub email: Email,
    pub code: Code,
    pub new_password: Password,
}

impl PasswordResetConfirm {
    pub fn parse(body: &JsonBody, cfg: &Config) -> ApiResult<Self> {
        Ok(Self {
            email: email(body)?,
            code: account_code(body, cfg)?,
            new_password: Password::parse(
                body.string("new_password")?,
                cfg.password_min_length,
                "new_password",
            )?,
        })
    }
}

/// Where an app's code goes: `channel`, `to` and `purpose`, shared by both
/// app routes.
fn channel_field(raw: &str) -> ApiResult<Channel> {
    Channel::from_name(raw).ok_or_else(|| {
        ApiError::InvalidRequest("field `channel` must be `email`, `sms` or `whatsapp`".into())
    })
}

fn app_target(body: &JsonBody) -> ApiResult<(Recipient, AppPurpose)> {
    let channel = channel_field(body.string("channel")?)?;
    let to = Recipient::parse(channel, body.string("to")?)?;
    let purpose = AppPurpose::parse(body.string("purpose")?)?;
    Ok((to, purpose))
}

/// `POST /v1/otp/send`. `length` defaults to `OTP_LENGTH`, `alphabet` to
/// digits, `ttl_seconds` to `OTP_TTL_SECONDS`.
#[derive(Debug)]
pub struct OtpSend(pub AppCode);

impl OtpSend {
    pub fn parse(body: &JsonBody, cfg: &Config) -> ApiResult<Self> {
        let (to, purpose) = app_target(body)?;
        let length = match body.optional_u64("length")? {
            // Past usize (32 bits in wasm) is past any allowed length.
            Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
            None => cfg.otp_length,
        };
        let alphabet = match body.optional_string("alphabet")? {
            Some(a) => Alphabet::parse(a)?,
            None => Alphabet::Digits,
        };
        let ttl = body
            .optional_u64("ttl_seconds")?
            .unwrap_or(cfg.otp_ttl_secs);
        let spec = CodeSpec::new(length, alphabet)?;
        let mut code = AppCode::new(to, purpose, spec, ttl)?;
        code.turnstile_token = turnstile_token(body)?.map(str::to_owned);
        if body.has("fallback") {
            code.fallback_sms = match (code.to.channel(), body.strings("fallback")?.as_slice()) {
                (_, []) => false,
                (Channel::Whatsapp, ["sms"]) => true,
                _ => {
                    return Err(ApiError::InvalidRequest(
                        "field `fallback` may only be [\"sms\"], on a `whatsapp` send".into(),
                    ))
                }
            };
        }
        if let Some(raw) = body.optional_string("locale")? {
            code.language = LanguageTag::parse(raw)
                .map_err(ApiError::InvalidRequest)?
                .language();
        }
        Ok(Self(code))
    }
}

/// `POST /v1/otp/verify`. The code is checked against the alphabet of any
/// app code; its length is the sent code's business.
#[derive(Debug)]
pub struct OtpVerify {
    pub to: Recipient,
    pub purpose: AppPurpose,
    pub code: Code,
}

impl OtpVerify {
    pub fn parse(body: &JsonBody) -> ApiResult<Self> {
        let (to, purpose) = app_target(body)?;
        Ok(Self {
            to,
            purpose,
            code: Code::parse_any(body.string("code")?)?,
        })
    }
}

/// `POST /v1/admin/api-keys`.
#[derive(Debug)]
pub struct CreateKey(pub NewApiKey);

impl CreateKey {
    pub fn parse(body: &JsonBody) -> ApiResult<Self> {
        let mut key = NewApiKey::parse(
            body.string("name")?,
            body.optional_string_or_null("app_name")?,
            &body.strings("channels")?,
        )?;
        key.options = KeyOptions::parse(
            body.optional_string("sms_domain")?,
            body.optional_string("android_app_hash")?,
            body.optional_bool("turnstile_required")?.unwrap_or(false),
        )?;
        Ok(Self(key))
    }
}

/// `POST /v1/admin/oidc-clients`: `{name, type, redirect_uris,
/// post_logout_redirect_uris?, api_key_id?}`.
#[derive(Debug)]
pub struct CreateOidcClient(pub NewClient);

impl CreateOidcClient {
    pub fn parse(body: &JsonBody) -> ApiResult<Self> {
        let name = body.string("name")?;
        let kind = body.string("type")?;
        let redirect_uris = body.strings("redirect_uris")?;
        let post_logout = body
            .optional_strings("post_logout_redirect_uris")?
            .unwrap_or_default();
        let api_key_id = body.optional_string("api_key_id")?;
        let alg = body.optional_string("id_token_signed_response_alg")?;
        Ok(Self(
            NewClient::parse(name, kind, &redirect_uris, &post_logout, api_key_id)?
                .with_id_token_alg(alg)?,
        ))
    }
}

/// `DELETE /v1/admin/oidc-clients/{id}`: the id as the path gives it. The
/// flow answers 404 for an id of the wrong shape, as for an unknown one.
#[derive(Debug)]
pub struct DeleteOidcClient {
    pub id: String,
}

impl DeleteOidcClient {
    pub fn parse(path: &str) -> Self {
        Self {
            id: id_in(OIDC_CLIENT_PATH, path).unwrap_or_default().to_owned(),
        }
    }
}

/// `DELETE /v1/admin/api-keys/{id}`: the id as the path gives it. The flow
/// answers 404 for an id of the wrong shape, as for an unknown one.
#[derive(Debug)]
pub struct RevokeKey {
    pub id: String,
}

impl RevokeKey {
    pub fn parse(path: &str) -> Self {
        Self {
            id: key_id(path).unwrap_or_default().to_owned(),
        }
    }
}

/// `POST /v1/admin/api-keys/{id}/test-recipients`: `{channel, to, code}`.
#[derive(Debug)]
pub struct AddTestRecipient {
    pub key_id: String,
    pub recipient: NewTestRecipient,
}

impl AddTestRecipient {
    pub fn parse(path: &str, body: &JsonBody) -> ApiResult<Self> {
        let channel = channel_field(body.string("channel")?)?;
        Ok(Self {
            key_id: key_id(path).unwrap_or_default().to_owned(),
            recipient: NewTestRecipient::parse(channel, body.string("to")?, body.string("code")?)?,
        })
    }
}

/// `DELETE /v1/admin/api-keys/{id}/test-recipients?channel=…&to=…`.
#[derive(Debug)]
pub struct RemoveTestRecipient {
    pub key_id: String,
    pub to: Recipient,
}

impl RemoveTestRecipient {
    pub fn parse(path: &str, query: &str) -> ApiResult<Self> {
        let (mut channel, mut to) = (None, None);
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            match &*k {
                "channel" => channel = Some(v.into_owned()),
                "to" => to = Some(v.into_owned()),
                _ => {}
            }
        }
        let required =
            |name: &str| ApiError::InvalidRequest(format!("query parameter `{name}` is required"));
        let channel = channel_field(&channel.ok_or_else(|| required("channel"))?)?;
        Ok(Self {
            key_id: key_id(path).unwrap_or_default().to_owned(),
            to: Recipient::parse(channel, &to.ok_or_else(|| required("to"))?)?,
        })
    }
}

/// `GET /v1/admin/events?limit=&before=&address=&kind=`.
#[derive(Debug)]
pub struct EventsQuery {
    pub page: EventPage,
    /// Checked by the flow, which digests it.
    pub address: Option<String>,
    pub kind: Option<EventKind>,
}

impl EventsQuery {
    /// The console's filter form: an empty field is its "any".
    pub fn parse_form(query: &str) -> ApiResult<Self> {
        let filled: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(
                form_urlencoded::parse(query.as_bytes()).filter(|(_, v)| !v.trim().is_empty()),
            )
            .finish();
        Self::parse(&filled)
    }

    /// `query` is the URL's part after `?`, still percent-encoded.
    pub fn parse(query: &str) -> ApiResult<Self> {
        let pairs: Vec<_> = form_urlencoded::parse(query.as_bytes()).collect();
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_ref())
        };
        Ok(Self {
            page: EventPage::parse(get("limit"), get("before"))?,
            address: get("address")
                .filter(|a| !a.trim().is_empty())
                .map(str::to_owned),
            kind: match get("kind") {
                None => None,
                Some(raw) => Some(EventKind::parse(raw).ok_or_else(|| {
                    ApiError::InvalidRequest(
                        "query parameter `kind` must be one of the event kinds (see the API reference)"
                            .into(),
                    )
                })?),
            },
        })
    }
}

/// The `turnstile_token` of a body, checked against the contract's bounds
/// whether or not Turnstile is on (where it is, siteverify checks the rest).
pub fn turnstile_token(body: &JsonBody) -> ApiResult<Option<&str>> {
    match body.optional_string("turnstile_token")? {
        Some(t) if t.chars().count() > MAX_TOKEN_LEN => Err(ApiError::InvalidRequest(format!(
            "field `turnstile_token` must be at most {MAX_TOKEN_LEN} characters"
        ))),
        token => Ok(token),
    }
}

/// The query string of a URL, or `""`.
pub fn query_of(url: &str) -> &str {
    url.split_once('?').map_or("", |(_, q)| q)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg() -> Config {
        Config::load(|_| None).unwrap()
    }

    fn body(v: serde_json::Value) -> JsonBody {
        JsonBody::parse(v.to_string().as_bytes()).unwrap()
    }

    fn refused(e: ApiError) -> String {
        assert_eq!(e.code(), "invalid_request", "{e:?}");
        e.detail()
    }

    #[test]
    fn register_takes_a_normalized_email_and_a_long_enough_password() {
        let r = Register::parse(
            &body(json!({"email": " Ann@Example.COM ", "password": "correct horse"})),
            &cfg(),
        )
        .unwrap();
        assert_eq!(r.email.as_str(), "ann@example.com");
        let short = "x".repeat(cfg().password_min_length - 1);
        let e = Register::parse(&body(json!({"email": "a@b.co", "password": short})), &cfg());
        assert!(refused(e.unwrap_err()).contains("`password`"));
    }

    #[test]
    fn login_accepts_any_non_empty_password_so_a_raised_minimum_locks_no_one_out() {
        assert!(Login::parse(&body(json!({"email": "a@b.co", "password": "x"}))).is_ok());
        let e = Login::parse(&body(json!({"email": "a@b.co", "password": ""}))).unwrap_err();
        assert!(refused(e).contains("`password`"));
    }

    #[test]
    fn the_first_bad_field_in_contract_order_is_the_one_named() {
        let e =
            PasswordResetConfirm::parse(&body(json!({"code": "x", "new_password": ""})), &cfg())
                .unwrap_err();
        assert!(refused(e).contains("`email`"));
        let e = PasswordResetConfirm::parse(
            &body(json!({"email": "a@b.co", "code": "12", "new_password": ""})),
            &cfg(),
        )
        .unwrap_err();
        assert!(refused(e).contains("`code`"));
        let e = PasswordResetConfirm::parse(
            &body(json!({"email": "a@b.co", "code": "123456", "new_password": "short"})),
            &cfg(),
        )
        .unwrap_err();
        assert!(refused(e).contains("`new_password`"));
    }

    #[test]
    fn account_codes_have_the_configured_length() {
        let ok = CodeProof::parse(&body(json!({"email": "a@b.co", "code": "123456"})), &cfg());
        assert_eq!(ok.unwrap().code.expose(), "123456");
        let e = CodeProof::parse(&body(json!({"email": "a@b.co", "code": "1234567"})), &cfg());
        assert!(refused(e.unwrap_err()).contains("`code`"));
    }

    #[test]
    fn resend_takes_only_resendable_purposes() {
        let r = Resend::parse(&body(json!({"email": "a@b.co", "purpose": "verify_email"})));
        assert_eq!(r.unwrap().purpose, Purpose::VerifyEmail);
        let e = Resend::parse(&body(json!({"email": "a@b.co", "purpose": "nope"}))).unwrap_err();
        assert!(refused(e).contains("`purpose`"));
        assert!(CodeRequest::parse(&body(json!({}))).is_err());
    }

    #[test]
    fn otp_send_fills_its_defaults_from_config() {
        let sent = OtpSend::parse(
            &body(json!({"channel": "sms", "to": "+14155550123", "purpose": "login"})),
            &cfg(),
        )
        .unwrap()
        .0;
        assert_eq!(sent.to.address(), "+14155550123");
        assert_eq!(
            sent.spec,
            CodeSpec::new(cfg().otp_length, Alphabet::Digits).unwrap()
        );
        assert_eq!(sent.ttl_secs, cfg().otp_ttl_secs);
        let sent = OtpSend::parse(
            &body(
                json!({"channel": "email", "to": "A@B.co", "purpose": "login",
                         "length": 8, "alphabet": "alphanumeric", "ttl_seconds": 120}),
            ),
            &cfg(),
        )
        .unwrap()
        .0;
        assert_eq!(sent.spec, CodeSpec::new(8, Alphabet::Alphanumeric).unwrap());
        assert_eq!((sent.to.address(), sent.ttl_secs), ("a@b.co", 120));
    }

    #[test]
    fn otp_send_refuses_each_bad_field_by_name() {
        let base = json!({"channel": "sms", "to": "+14155550123", "purpose": "login"});
        for (field, bad) in [
            ("channel", json!("fax")),
            ("to", json!("a@b.co")),
            ("purpose", json!("Log In")),
            ("length", json!(3)),
            ("length", json!(u64::MAX)),
            ("alphabet", json!("emoji")),
            ("ttl_seconds", json!(59)),
            ("ttl_seconds", json!(-1)),
        ] {
            let mut v = base.clone();
            v[field] = bad;
            let e = OtpSend::parse(&body(v), &cfg()).unwrap_err();
            assert!(refused(e).contains(&format!("`{field}`")), "{field}");
        }
    }

    #[test]
    fn otp_verify_takes_any_alphabet_code() {
        let v = OtpVerify::parse(&body(
            json!({"channel": "whatsapp", "to": "+14155550123", "purpose": "pay", "code": "AB12CD"}),
        ))
        .unwrap();
        assert_eq!(
            (v.to.channel(), v.code.expose()),
            (Channel::Whatsapp, "AB12CD")
        );
    }

    #[test]
    fn create_key_needs_a_name_and_channels() {
        let k = CreateKey::parse(&body(
            json!({"name": " shop ", "channels": ["sms", "email", "sms"]}),
        ))
        .unwrap()
        .0;
        assert_eq!(
            (k.name.as_str(), k.channels.names()),
            ("shop", vec!["email", "sms"])
        );
        let e = CreateKey::parse(&body(json!({"name": "shop"}))).unwrap_err();
        assert!(refused(e).contains("`channels`"));
    }

    #[test]
    fn revoke_key_reads_the_id_from_the_path() {
        assert_eq!(
            RevokeKey::parse("/v1/admin/api-keys/0123abcd").id,
            "0123abcd"
        );
        assert_eq!(RevokeKey::parse("/v1/admin/api-keys/").id, "");
    }

    #[test]
    fn events_query_decodes_its_parameters() {
        let q = EventsQuery::parse(query_of(
            "/v1/admin/events?limit=10&address=a%2Bb%40c.co&x=1",
        ))
        .unwrap();
        assert_eq!(
            q.page,
            EventPage {
                limit: 10,
                before: None
            }
        );
        assert_eq!(q.address.as_deref(), Some("a+b@c.co"));
        assert_eq!(
            EventsQuery::parse("").unwrap().page.limit,
            crate::domain::audit::DEFAULT_PAGE
        );
        let e = EventsQuery::parse("before=0").unwrap_err();
        assert!(refused(e).contains("`before`"));
        // An empty kind is no kind: refused by the API, "any" in the console's form.
        assert!(refused(EventsQuery::parse("kind=").unwrap_err()).contains("`kind`"));
        let form = EventsQuery::parse_form("address=&kind=&limit=5").unwrap();
        assert_eq!((form.address, form.kind, form.page.limit), (None, None, 5));
    }

    #[test]
    fn the_contract_bounds_hold_where_no_rule_reads_the_field() {
        // A Turnstile token past its maxLength, even where Turnstile is off.
        let long = "a".repeat(2049);
        let b = body(json!({"email": "a@b.co", "turnstile_token": long}));
        assert!(refused(turnstile_token(&b).unwrap_err()).contains("`turnstile_token`"));
        let b = body(json!({"turnstile_token": "a".repeat(2048)}));
        assert!(turnstile_token(&b).unwrap().is_some());
        // A flag is true or false, not null.
        let b = body(json!({"name": "n", "channels": ["email"], "turnstile_required": null}));
        assert!(refused(CreateKey::parse(&b).unwrap_err()).contains("`turnstile_required`"));
    }
}
