//! Every knob of the service, read once per request from the Worker's vars
//! and secrets. An invalid value or an unsafe combination is refused with
//! 503 rather than replaced by a default: an auth service fails closed.

use std::cell::RefCell;

use crate::domain::client_registration::{RegistrationCaps, REGISTRATIONS_PER_CLIENT_PER_HOUR};
use crate::domain::code::{CodeSpec, Pepper, MAX_LENGTH, MAX_TTL_SECS, MIN_LENGTH, MIN_TTL_SECS};
use crate::domain::cors::Cors;
use crate::domain::country::AllowedCountries;
use crate::domain::jwk::SigningKeys;
use crate::domain::oauth::Resources;
use crate::domain::password::{HashParams, MAX_ITERATIONS, MAX_MEMORY_KIB, MAX_PARALLELISM};
use crate::domain::sealed::{SealKey, TOTP_SECRETS};
use crate::domain::sign_in_budget::{FailureBudget, MAX_LOCK_SECS, NIST_MAX_FAILURES};
use crate::error::ApiError;
use crate::pages::layout::{parse_accent, DEFAULT_ACCENT};
use crate::providers::mail::{MailApi, Sender, APIS};
use crate::providers::svix::WebhookSecret;
use crate::providers::template::Templates;
use crate::providers::text::TextChannel;
use crate::providers::turnstile::{Turnstile, DEFAULT_VERIFY_URL};
use crate::providers::twilio::Twilio;

#[derive(Clone)]
pub enum MailProvider {
    /// Prints messages to the console: local development only.
    Log,
    /// An HTTP mail API (Resend, Postmark, SendGrid) at `api_url`.
    Api {
        api: &'static dyn MailApi,
        api_url: String,
    },
    /// The Workers `send_email` binding of this name.
    Cloudflare { binding: String },
}

impl MailProvider {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Log => "log",
            Self::Api { api, .. } => api.name(),
            Self::Cloudflare { .. } => "cloudflare",
        }
    }
}

impl std::fmt::Debug for MailProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Api { api_url, .. } => write!(f, "{}({api_url})", self.name()),
            Self::Cloudflare { binding } => write!(f, "cloudflare({binding})"),
            Self::Log => f.write_str("log"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub app_name: String,
    pub production: bool,
    pub otp_length: usize,
    /// Also the default of an app's `ttl_seconds`, so it stays within
    /// theirs (`domain::code::MIN_TTL_SECS` to `MAX_TTL_SECS`).
    pub otp_ttl_secs: u64,
    pub reset_otp_ttl_secs: u64,
    /// Failed password sign-ins per address before a lock
    /// (`LOGIN_MAX_FAILURES`, `LOGIN_FAILURE_WINDOW_SECONDS`).
    pub sign_in_budget: FailureBudget,
    pub otp_max_attempts: u32,
    pub resend_cooldown_secs: u64,
    pub max_sends_per_hour: u32,
    pub max_sends_per_address_per_hour: u32,
    pub password_min_length: usize,
    pub hash_params: HashParams,
    pub session_ttl_secs: u64,
    pub unverified_user_ttl_secs: u64,
    pub audit_retention_days: u64,
    pub mail_provider: MailProvider,
    pub mail_from: Sender,
    pub mail_timeout_ms: u64,
    pub templates: Templates,
    pub api_key_sends_per_hour: u32,
    pub twilio_timeout_ms: u64,
    /// Which browser origins may read the API's answers (`CORS_ALLOWED_ORIGINS`).
    pub cors: Cors,
    /// The resource servers access tokens may be issued for (`OIDC_RESOURCES`).
    pub oidc_resources: Resources,
    /// Dynamic client registration (`OIDC_DYNAMIC_REGISTRATION`): off
    /// unless turned on, and then capped per hour, in all
    /// (`OIDC_REGISTRATIONS_PER_HOUR`) and per network client.
    pub oidc_registration: Option<RegistrationCaps>,
    /// The pages' accent colour (`ACCENT_COLOR`).
    pub accent_color: String,
    /// Test recipients answer (`ALLOW_TEST_RECIPIENTS`; always outside production).
    pub test_recipients_allowed: bool,
    /// Where SMS and WhatsApp codes may go (`SMS_ALLOWED_COUNTRIES`).
    pub sms_allowed_countries: AllowedCountries,
    /// The digits after the calling code a number's prefix has (`SMS_PREFIX_DIGITS`).
    pub sms_prefix_digits: usize,
    /// Sends per hour to one prefix; 0: no cap (`SMS_MAX_PER_PREFIX_PER_HOUR`).
    pub sms_max_per_prefix_per_hour: u32,
    pub turnstile_timeout_ms: u64,
    /// Where providers call back (`PUBLIC_BASE_URL`): the worker's own
    /// https origin, as Twilio signs the URLs it calls. No var, no callback.
    pub public_base_url: Option<String>,
    /// Resend's webhook signing secret (`RESEND_WEBHOOK_SECRET`).
    pub resend_webhook_secret: Option<Result<WebhookSecret, String>>,
    /// The pages' Turnstile widget (`TURNSTILE_SITE_KEY`).
    pub turnstile_site_key: Option<String>,
    /// The OpenID Provider's signing keys (`OIDC_SIGNING_KEYS`); `None`
    /// without the secret: OpenID Connect is off.
    oidc_keys: Option<Result<SigningKeys, String>>,
    twilio: Twilio,
    /// `None` without `TURNSTILE_SECRET`: no Turnstile.
    turnstile: Option<Result<Turnstile, String>>,
    pepper: Result<Pepper, String>,
    /// The key authenticator apps' secrets are sealed under, derived from
    /// `MFA_ENCRYPTION_KEY`; without it, second factors answer 503.
    totp_key: Result<SealKey, String>,
    mail_api_key: Option<String>,
    admin_token: Result<String, String>,
}

/// The secrets' placeholders in `.dev.vars.example`: a deploy that copied
/// them would run with secrets everyone can read.
pub const PLACEHOLDERS: [&str; 2] = [
    "replace-with-output-of-openssl-rand-hex-32",
    "replace-with-a-long-random-token",
];

/// The shortest `ADMIN_TOKEN`: 32 characters, as `openssl rand -hex 16` gives.
pub const MIN_ADMIN_TOKEN_CHARS: usize = 32;

/// Codes in the space per allowed guess: a code's attempts may find it
/// with a chance of at most 1 in 10,000.
pub const CODES_PER_ATTEMPT: u64 = 10_000;

/// Whether `max_attempts` guesses at a code of `spec` stay within 1 in
/// `CODES_PER_ATTEMPT`.
/// `PUBLIC_BASE_URL`: an origin (no path, query or trailing slash), https
/// in production. Twilio signs the exact URL it calls, so the callback
/// URL must be the one the worker is reached at.
fn public_base_url(raw: &str, production: bool) -> Result<String, String> {
    let url = raw.trim_end_matches('/');
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://").filter(|_| !production));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(['/', '?', '#', '@', ' ']) => {
            Ok(url.to_owned())
        }
        _ => Err(format!(
            "var PUBLIC_BASE_URL must be the worker's origin, like https://otp.example.com{}",
            if production {
                " (https in production)"
            } else {
                ""
            }
        )),
    }
}

pub fn attempts_fit(spec: CodeSpec, max_attempts: u32) -> bool {
    spec.space() >= u64::from(max_attempts) * CODES_PER_ATTEMPT
}

impl Config {
    /// `get` returns a var or secret by name, `None` when unset.
    pub fn load(get: impl Fn(&str) -> Option<String>) -> Result<Self, ApiError> {
        Self::load_noting(get, None)
    }

    /// `load`, noting in `reads` every var and secret it reads, with its
    /// default and bounds: what docs/configuration.md must list.
    fn load_noting(
        get: impl Fn(&str) -> Option<String>,
        reads: Option<&RefCell<Vec<Read>>>,
    ) -> Result<Self, ApiError> {
        let vars = Vars { get: &get, reads };
        let get = |name: &str| vars.raw(name);
        let environment = vars.text("ENVIRONMENT", "production");
        let production = environment == "production";
        let mail_provider = match vars.text("MAIL_PROVIDER", "resend").as_str() {
            "log" if production => {
                return Err(ApiError::Unavailable(
                    "MAIL_PROVIDER=log prints codes to the console and is refused when ENVIRONMENT=production".into(),
                ))
            }
            "log" => MailProvider::Log,
            "cloudflare" => MailProvider::Cloudflare {
                binding: vars.text("MAIL_BINDING", "EMAIL"),
            },
            other => match APIS.iter().find(|a| a.name() == other) {
                Some(api) => MailProvider::Api {
                    api: *api,
                    api_url: vars.url_of_provider("MAIL_API_URL", api.default_url()),
                },
                None => {
                    return Err(ApiError::Unavailable(format!(
                        "MAIL_PROVIDER `{other}` is not supported (use resend, postmark, sendgrid, cloudflare or log)"
                    )))
                }
            },
        };
        let unavailable = ApiError::Unavailable;
        let mail_from = Sender::parse(&vars.text("MAIL_FROM", "OTP Edge <no-reply@example.com>"))
            .map_err(unavailable)?;
        let templates = match get("TEMPLATES") {
            Some(json) => Templates::parse(&json).map_err(unavailable)?,
            None => Templates::default(),
        };
        let hash_params = HashParams {
            memory_kib: vars.int("ARGON2_MEMORY_KIB", 19_456, 8, MAX_MEMORY_KIB.into())? as u32,
            iterations: vars.int("ARGON2_ITERATIONS", 2, 1, MAX_ITERATIONS.into())? as u32,
            parallelism: vars.int("ARGON2_PARALLELISM", 1, 1, MAX_PARALLELISM.into())? as u32,
        }
        .validate()
        .map_err(ApiError::Unavailable)?;
        let secret = |name: &str| vars.secret(name);
        // A placeholder in production is as good as no secret at all.
        let real_secret = |name: &str| -> Result<String, String> {
            let value = secret(name)
                .ok_or_else(|| format!("secret {name} is not set (wrangler secret put {name})"))?;
            if production && PLACEHOLDERS.contains(&value.trim()) {
                return Err(format!(
                    "secret {name} is still the placeholder of .dev.vars.example (wrangler secret put {name})"
                ));
            }
            Ok(value)
        };
        let otp_length = vars.int("OTP_LENGTH", 6, MIN_LENGTH as u64, MAX_LENGTH as u64)? as usize;
        let otp_max_attempts = vars.int("OTP_MAX_ATTEMPTS", 5, 1, 100)? as u32;
        if !attempts_fit(CodeSpec::digits(otp_length), otp_max_attempts) {
            return Err(ApiError::Unavailable(format!(
                "var OTP_MAX_ATTEMPTS={otp_max_attempts} is too many for OTP_LENGTH={otp_length}: the attempts of a code may find it with a chance of at most 1 in {CODES_PER_ATTEMPT}"
            )));
        }
        let max_sends_per_hour = vars.int("MAX_SENDS_PER_HOUR", 5, 1, 1_000)? as u32;
        // By default four scopes' worth: room for the core flows and a few apps.
        let max_sends_per_address_per_hour = vars.int_derived(
            "MAX_SENDS_PER_ADDRESS_PER_HOUR",
            (
                4 * u64::from(max_sends_per_hour),
                "4 × `MAX_SENDS_PER_HOUR`",
            ),
            1,
            10_000,
        )? as u32;
        if max_sends_per_address_per_hour < max_sends_per_hour {
            return Err(ApiError::Unavailable(
                "var MAX_SENDS_PER_ADDRESS_PER_HOUR must be at least MAX_SENDS_PER_HOUR: it is the ceiling across scopes".into(),
            ));
        }
        let cors =
            Cors::parse(Some(&vars.text("CORS_ALLOWED_ORIGINS", ""))).map_err(unavailable)?;
        let oidc_resources =
            Resources::parse(&vars.text("OIDC_RESOURCES", ""), production).map_err(unavailable)?;
        // Read either way: a malformed cap is reported before it is needed.
        let registrations_per_hour =
            vars.int("OIDC_REGISTRATIONS_PER_HOUR", 100, 1, 100_000)? as u32;
        let oidc_registration =
            vars.flag("OIDC_DYNAMIC_REGISTRATION")?
                .then_some(RegistrationCaps {
                    per_hour: registrations_per_hour,
                    per_client_per_hour: REGISTRATIONS_PER_CLIENT_PER_HOUR,
                });
        let accent_color =
            parse_accent(&vars.text("ACCENT_COLOR", DEFAULT_ACCENT)).map_err(unavailable)?;
        let test_recipients_allowed = !production || vars.flag("ALLOW_TEST_RECIPIENTS")?;
        let sms_allowed_countries =
            AllowedCountries::parse(&vars.text("SMS_ALLOWED_COUNTRIES", ""))
                .map_err(unavailable)?;
        let turnstile = secret("TURNSTILE_SECRET").map(|_| {
            real_secret("TURNSTILE_SECRET").map(|secret| Turnstile {
                verify_url: vars.text("TURNSTILE_VERIFY_URL", DEFAULT_VERIFY_URL),
                secret,
            })
        });
        let public_base_url = match vars.text("PUBLIC_BASE_URL", "").trim() {
            "" => None,
            raw => Some(public_base_url(raw, production).map_err(unavailable)?),
        };
        let resend_webhook_secret = secret("RESEND_WEBHOOK_SECRET")
            .map(|_| real_secret("RESEND_WEBHOOK_SECRET").and_then(|s| WebhookSecret::parse(&s)));
        let oidc_keys = secret("OIDC_SIGNING_KEYS").map(|s| SigningKeys::parse(&s));
        Ok(Self {
            public_base_url,
            resend_webhook_secret,
            oidc_keys,
            turnstile,
            turnstile_site_key: get("TURNSTILE_SITE_KEY"),
            turnstile_timeout_ms: vars.int("TURNSTILE_TIMEOUT_MS", 5_000, 100, 30_000)?,
            test_recipients_allowed,
            sms_allowed_countries,
            sms_prefix_digits: vars.int("SMS_PREFIX_DIGITS", 7, 1, 12)? as usize,
            sms_max_per_prefix_per_hour: vars.int("SMS_MAX_PER_PREFIX_PER_HOUR", 30, 0, 1_000_000)?
                as u32,
            oidc_resources,
            oidc_registration,
            cors,
            accent_color,
            app_name: vars.text("APP_NAME", "OTP Edge"),
            production,
            otp_length,
            otp_ttl_secs: vars.int("OTP_TTL_SECONDS", 600, MIN_TTL_SECS, MAX_TTL_SECS)?,
            sign_in_budget: FailureBudget {
                max: vars.int("LOGIN_MAX_FAILURES", 10, 1, NIST_MAX_FAILURES.into())? as u32,
                window_secs: vars.int("LOGIN_FAILURE_WINDOW_SECONDS", 900, 60, MAX_LOCK_SECS)?,
            },
            reset_otp_ttl_secs: vars.int("RESET_OTP_TTL_SECONDS", 900, 1, 86_400)?,
            otp_max_attempts,
            resend_cooldown_secs: vars.int("RESEND_COOLDOWN_SECONDS", 60, 0, 86_400)?,
            max_sends_per_hour,
            max_sends_per_address_per_hour,
            password_min_length: vars.int("PASSWORD_MIN_LENGTH", 8, 8, 128)? as usize,
            hash_params,
            session_ttl_secs: vars.int("SESSION_TTL_SECONDS", 604_800, 1, 31_536_000)?,
            unverified_user_ttl_secs: vars.int(
                "UNVERIFIED_USER_TTL_SECONDS",
                604_800,
                1,
                31_536_000,
            )?,
            audit_retention_days: vars.int("AUDIT_RETENTION_DAYS", 30, 1, 3_650)?,
            mail_provider,
            mail_from,
            mail_timeout_ms: vars.int("MAIL_TIMEOUT_MS", 5_000, 100, 30_000)?,
            templates,
            api_key_sends_per_hour: vars.int("API_KEY_SENDS_PER_HOUR", 1_000, 1, 10_000_000)?
                as u32,
            twilio_timeout_ms: vars.int("TWILIO_TIMEOUT_MS", 5_000, 100, 30_000)?,
            twilio: Twilio {
                api_url: vars.url("TWILIO_API_URL", "https://api.twilio.com"),
                account_sid: vars.text("TWILIO_ACCOUNT_SID", ""),
                auth_token: secret("TWILIO_AUTH_TOKEN").unwrap_or_default(),
                sms_from: get("TWILIO_FROM"),
                whatsapp_from: get("TWILIO_WHATSAPP_FROM"),
                whatsapp_content_sid: get("TWILIO_WHATSAPP_CONTENT_SID"),
            },
            pepper: real_secret("OTP_PEPPER").and_then(|v| Pepper::new(&v)),
            // Its own secret: the pepper is in every code's digest, and a
            // key that leaks with it would open every authenticator.
            totp_key: real_secret("MFA_ENCRYPTION_KEY").and_then(|v| {
                if vars.value("OTP_PEPPER").as_deref() == Some(v.as_str()) {
                    return Err("secret MFA_ENCRYPTION_KEY must not be OTP_PEPPER's value: give it one of its own (openssl rand -hex 32)".into());
                }
                SealKey::derive(&v, TOTP_SECRETS)
            }),
            mail_api_key: secret("MAIL_API_KEY"),
            admin_token: real_secret("ADMIN_TOKEN").and_then(|v| {
                match v.chars().count() >= MIN_ADMIN_TOKEN_CHARS {
                    true => Ok(v),
                    false => Err(format!(
                        "secret ADMIN_TOKEN must be at least {MIN_ADMIN_TOKEN_CHARS} characters (openssl rand -hex 32)"
                    )),
                }
            }),
        })
    }

    /// Twilio's auth token, which signs its status callbacks; 503 without.
    pub fn twilio_auth_token(&self) -> Result<&str, ApiError> {
        match self.twilio.auth_token.as_str() {
            "" => Err(ApiError::Unavailable(
                "secret TWILIO_AUTH_TOKEN is not set (wrangler secret put TWILIO_AUTH_TOKEN)"
                    .into(),
            )),
            token => Ok(token),
        }
    }

    /// Resend's webhook secret; 503 naming it when it is not set.
    pub fn resend_webhook_secret(&self) -> Result<&WebhookSecret, ApiError> {
        match &self.resend_webhook_secret {
            Some(Ok(s)) => Ok(s),
            Some(Err(e)) => Err(ApiError::Unavailable(e.clone())),
            None => Err(ApiError::Unavailable(
                "secret RESEND_WEBHOOK_SECRET is not set: Resend's webhook is off (wrangler secret put RESEND_WEBHOOK_SECRET)".into(),
            )),
        }
    }

    /// The OpenID Provider's signing keys; 503 naming the secret when it
    /// is not set, or what is wrong with it: the rest of the service works.
    pub fn oidc_keys(&self) -> Result<&SigningKeys, ApiError> {
        match &self.oidc_keys {
            Some(Ok(keys)) => Ok(keys),
            Some(Err(e)) => Err(ApiError::Unavailable(e.clone())),
            None => Err(ApiError::Unavailable(
                "secret OIDC_SIGNING_KEYS is not set: OpenID Connect is off (scripts/dev and scripts/deploy make one; see docs/oidc.md)".into(),
            )),
        }
    }

    /// Whether `TURNSTILE_SECRET` is set: the account flows' sends then
    /// need a Turnstile token.
    pub fn turnstile_on(&self) -> bool {
        self.turnstile.is_some()
    }

    /// Siteverify's settings; 503 naming the secret when it is not set
    /// (a key that requires Turnstile fails closed).
    pub fn turnstile(&self) -> Result<&Turnstile, ApiError> {
        match &self.turnstile {
            Some(Ok(t)) => Ok(t),
            Some(Err(e)) => Err(ApiError::Unavailable(e.clone())),
            None => Err(ApiError::Unavailable(
                "secret TURNSTILE_SECRET is not set, and this API key requires Turnstile (wrangler secret put TURNSTILE_SECRET)".into(),
            )),
        }
    }

    /// The OpenID Provider's `issuer`: `PUBLIC_BASE_URL`, which OIDC needs
    /// (an issuer must be one fixed URL, whatever host a request came to).
    pub fn oidc_issuer(&self) -> Result<&str, ApiError> {
        self.public_base_url.as_deref().ok_or_else(|| {
            ApiError::Unavailable(
                "var PUBLIC_BASE_URL is not set: the OpenID Provider's issuer is that URL (see docs/oidc.md)".into(),
            )
        })
    }

    pub fn pepper(&self) -> Result<&Pepper, ApiError> {
        self.pepper
            .as_ref()
            .map_err(|e| ApiError::Unavailable(e.clone()))
    }

    /// The key authenticator secrets are sealed under: 503 naming
    /// `MFA_ENCRYPTION_KEY` without it.
    pub fn totp_key(&self) -> Result<&SealKey, ApiError> {
        self.totp_key
            .as_ref()
            .map_err(|e| ApiError::Unavailable(e.clone()))
    }

    pub fn mail_api_key(&self) -> Result<&str, ApiError> {
        self.mail_api_key.as_deref().ok_or_else(|| {
            ApiError::Unavailable(
                "secret MAIL_API_KEY is not set (wrangler secret put MAIL_API_KEY)".into(),
            )
        })
    }

    /// Twilio, checked for everything `channel` needs: 503 naming what is missing.
    pub fn twilio(&self, channel: TextChannel) -> Result<&Twilio, ApiError> {
        let t = &self.twilio;
        if t.account_sid.is_empty() {
            return Err(ApiError::Unavailable(
                "var TWILIO_ACCOUNT_SID is not set: SMS and WhatsApp need Twilio".into(),
            ));
        }
        if t.auth_token.is_empty() {
            return Err(ApiError::Unavailable(
                "secret TWILIO_AUTH_TOKEN is not set (wrangler secret put TWILIO_AUTH_TOKEN)"
                    .into(),
            ));
        }
        t.sender(channel).map_err(ApiError::Unavailable)?;
        Ok(t)
    }

    pub fn admin_token(&self) -> Result<&str, ApiError> {
        self.admin_token
            .as_deref()
            .map_err(|e| ApiError::Unavailable(e.clone()))
    }
}

/// A var or secret `Config::load` reads, as docs/configuration.md's
/// tables show it: a test holds the two together.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Read {
    Secret(String),
    /// A var, its default as the table's "default" column shows it, and
    /// its bounds as its "bounds" column does (integers only).
    Var {
        name: String,
        default: String,
        bounds: Option<String>,
    },
}

/// `31536000` as `31,536,000`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The vars and secrets, blank ones taken as unset.
struct Vars<'a, F: Fn(&str) -> Option<String>> {
    get: &'a F,
    reads: Option<&'a RefCell<Vec<Read>>>,
}

impl<F: Fn(&str) -> Option<String>> Vars<'_, F> {
    fn note(&self, read: impl FnOnce() -> Read) {
        if let Some(reads) = self.reads {
            reads.borrow_mut().push(read());
        }
    }

    /// Notes a var read: its default and bounds are rendered only when
    /// someone notes the reads (a test), never per request.
    fn var(
        &self,
        name: &str,
        default: impl FnOnce() -> String,
        bounds: impl FnOnce() -> Option<String>,
    ) {
        self.note(|| Read::Var {
            name: name.into(),
            default: default(),
            bounds: bounds(),
        });
    }

    fn value(&self, name: &str) -> Option<String> {
        (self.get)(name).filter(|v| !v.trim().is_empty())
    }

    /// A var with no default.
    fn raw(&self, name: &str) -> Option<String> {
        self.var(name, || "none".into(), || None);
        self.value(name)
    }

    fn secret(&self, name: &str) -> Option<String> {
        self.note(|| Read::Secret(name.into()));
        self.value(name)
    }

    fn text(&self, name: &str, default: &str) -> String {
        let shown = || match default {
            "" => "empty".into(),
            d => format!("`{d}`"),
        };
        self.var(name, shown, || None);
        self.value(name).unwrap_or_else(|| default.to_owned())
    }

    /// A base URL without its trailing slash.
    fn url(&self, name: &str, default: &str) -> String {
        self.text(name, default).trim_end_matches('/').to_owned()
    }

    /// The base URL of the chosen mail provider, whose default is its own.
    fn url_of_provider(&self, name: &str, default: &str) -> String {
        self.var(name, || "the provider's".into(), || None);
        let value = self.value(name).unwrap_or_else(|| default.to_owned());
        value.trim_end_matches('/').to_owned()
    }

    /// `true` or `false`; unset is `false`. Anything else is refused,
    /// rather than read as either.
    fn flag(&self, name: &str) -> Result<bool, ApiError> {
        match self.text(name, "false").trim() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(ApiError::Unavailable(format!(
                "var {name} must be `true` or `false`"
            ))),
        }
    }

    fn int(&self, name: &str, default: u64, min: u64, max: u64) -> Result<u64, ApiError> {
        self.int_derived(name, (default, ""), min, max)
    }

    /// An integer from `min` to `max`; unset, `default.0`, which
    /// `default.1` describes when it is computed from another var.
    fn int_derived(
        &self,
        name: &str,
        default: (u64, &str),
        min: u64,
        max: u64,
    ) -> Result<u64, ApiError> {
        let shown = || match default.1 {
            "" => format!("`{}`", default.0),
            formula => formula.to_owned(),
        };
        self.var(name, shown, || {
            Some(format!("{} to {}", grouped(min), grouped(max)))
        });
        let default = default.0;
        let Some(raw) = self.value(name) else {
            return Ok(default);
        };
        raw.trim()
            .parse::<u64>()
            .ok()
            .filter(|v| (min..=max).contains(v))
            .ok_or_else(|| {
                ApiError::Unavailable(format!("var {name} must be an integer from {min} to {max}"))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(pairs: &[(&str, &str)]) -> Result<Config, ApiError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::load(|k| map.get(k).cloned())
    }

    const PEPPER: (&str, &str) = ("OTP_PEPPER", "0123456789abcdef0123456789abcdef");

    /// The rows of the markdown table whose header row starts with `| {first} |`.
    fn table_rows<'d>(doc: &'d str, first: &str) -> Vec<Vec<&'d str>> {
        let header = format!("| {first} |");
        let mut lines = doc.lines().skip_while(|l| !l.starts_with(&header)).skip(2);
        let mut rows = Vec::new();
        for line in lines.by_ref().take_while(|l| l.starts_with('|')) {
            let cells = line.trim_matches('|').split(" | ").map(str::trim).collect();
            rows.push(cells);
        }
        rows
    }

    /// docs/configuration.md lists every var and secret `Config::load`
    /// reads, and no other: each var with the default it takes and, for a
    /// number, the bounds it enforces.
    #[test]
    fn the_configuration_tables_list_what_load_reads() {
        let reads = RefCell::new(Vec::new());
        // Some vars are read only on a branch: the `send_email` binding's
        // name, and siteverify's URL with a Turnstile secret.
        for extra in [
            ("MAIL_PROVIDER", "resend"),
            ("MAIL_PROVIDER", "cloudflare"),
            ("TURNSTILE_SECRET", "turnstile-secret"),
        ] {
            let map: HashMap<&str, &str> = [PEPPER, extra].into_iter().collect();
            let get = |k: &str| map.get(k).map(|v| v.to_string());
            Config::load_noting(get, Some(&reads)).unwrap();
        }
        let (mut vars, mut secrets) = (
            std::collections::BTreeMap::new(),
            std::collections::BTreeSet::new(),
        );
        for read in reads.into_inner() {
            match read {
                Read::Secret(name) => {
                    secrets.insert(name);
                }
                Read::Var {
                    name,
                    default,
                    bounds,
                } => {
                    vars.insert(name, (default, bounds));
                }
            }
        }
        let doc = include_str!("../docs/configuration.md");
        let mut documented = std::collections::BTreeMap::new();
        for row in table_rows(doc, "var") {
            assert_eq!(row.len(), 4, "var | default | bounds | meaning: {row:?}");
            documented.insert(
                row[0].trim_matches('`').to_owned(),
                (row[1].to_owned(), row[2].to_owned()),
            );
        }
        assert_eq!(
            documented.keys().collect::<Vec<_>>(),
            vars.keys().collect::<Vec<_>>(),
            "the vars table lists exactly the vars Config::load reads"
        );
        for (name, (default, bounds)) in &vars {
            let (doc_default, doc_bounds) = &documented[name];
            assert_eq!(doc_default, default, "the default of {name}");
            if let Some(bounds) = bounds {
                assert_eq!(doc_bounds, bounds, "the bounds of {name}");
            }
        }
        let documented: std::collections::BTreeSet<String> = table_rows(doc, "secret")
            .iter()
            .map(|row| row[0].trim_matches('`').to_owned())
            .collect();
        assert_eq!(
            documented, secrets,
            "the secrets table lists exactly the secrets Config::load reads"
        );
    }

    /// wrangler.toml's `[vars]` hold only vars `Config::load` reads, each
    /// at its default: the file shows a deployment what it gets.
    #[test]
    fn wrangler_toml_sets_only_known_vars_at_their_defaults() {
        let reads = RefCell::new(Vec::new());
        Config::load_noting(|_| None, Some(&reads)).unwrap();
        let defaults: HashMap<String, String> = reads
            .into_inner()
            .into_iter()
            .filter_map(|r| match r {
                Read::Var { name, default, .. } => Some((name, default)),
                Read::Secret(_) => None,
            })
            .collect();
        let toml = include_str!("../wrangler.toml");
        let vars = toml
            .split("\n[vars]\n")
            .nth(1)
            .expect("wrangler.toml has [vars]");
        let mut set = 0;
        for line in vars.lines().take_while(|l| !l.starts_with('[')) {
            let Some((name, value)) = line.split_once(" = ") else {
                continue;
            };
            if name.starts_with('#') {
                continue;
            }
            let value = value.trim_matches('"');
            let shown = match value {
                "" => "empty".to_owned(),
                v => format!("`{v}`"),
            };
            let default = defaults
                .get(name)
                .unwrap_or_else(|| panic!("{name} is no var"));
            // MAIL_API_URL's default is the provider's: resend's here.
            if default != "the provider's" {
                assert_eq!(&shown, default, "{name} in wrangler.toml");
            }
            set += 1;
        }
        assert!(set > 10, "the [vars] were read");
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = load(&[PEPPER]).unwrap();
        assert_eq!(c.otp_length, 6);
        assert_eq!(c.otp_ttl_secs, 600);
        assert_eq!(c.reset_otp_ttl_secs, 900);
        assert_eq!(c.otp_max_attempts, 5);
        assert_eq!(c.resend_cooldown_secs, 60);
        assert_eq!(c.max_sends_per_hour, 5);
        assert_eq!(c.max_sends_per_address_per_hour, 20);
        assert_eq!(c.password_min_length, 8);
        assert_eq!(c.hash_params, HashParams::OWASP);
        assert_eq!(c.session_ttl_secs, 7 * 86_400);
        assert!(
            c.production,
            "no ENVIRONMENT means production: the safe side"
        );
        assert!(matches!(
            &c.mail_provider,
            MailProvider::Api { api, api_url } if api.name() == "resend" && api_url == "https://api.resend.com"
        ));
        assert_eq!(c.api_key_sends_per_hour, 1_000);
        assert_eq!(c.templates, Templates::default());
        assert_eq!((c.mail_timeout_ms, c.twilio_timeout_ms), (5_000, 5_000));
        assert_eq!(c.audit_retention_days, 30);
        assert!(load(&[PEPPER, ("AUDIT_RETENTION_DAYS", "0")]).is_err());
        assert_eq!(
            c.sign_in_budget,
            FailureBudget {
                max: 10,
                window_secs: 900
            }
        );
    }

    #[test]
    fn each_provider_is_chosen_by_name_with_its_own_url() {
        for (name, url) in [
            ("postmark", "https://api.postmarkapp.com"),
            ("sendgrid", "https://api.sendgrid.com"),
        ] {
            let c = load(&[PEPPER, ("MAIL_PROVIDER", name)]).unwrap();
            assert_eq!(format!("{:?}", c.mail_provider), format!("{name}({url})"));
        }
        let c = load(&[
            PEPPER,
            ("MAIL_PROVIDER", "postmark"),
            ("MAIL_API_URL", "http://127.0.0.1:9/"),
        ])
        .unwrap();
        assert_eq!(
            format!("{:?}", c.mail_provider),
            "postmark(http://127.0.0.1:9)"
        );
        let c = load(&[PEPPER, ("MAIL_PROVIDER", "cloudflare")]).unwrap();
        assert_eq!(format!("{:?}", c.mail_provider), "cloudflare(EMAIL)");
    }

    #[test]
    fn twilio_fails_closed_naming_what_is_missing() {
        let c = load(&[PEPPER]).unwrap();
        let e = c.twilio(TextChannel::Sms).unwrap_err();
        assert!(matches!(e, ApiError::Unavailable(d) if d.contains("TWILIO_ACCOUNT_SID")));
        let c = load(&[PEPPER, ("TWILIO_ACCOUNT_SID", "AC1")]).unwrap();
        let e = c.twilio(TextChannel::Sms).unwrap_err();
        assert!(matches!(e, ApiError::Unavailable(d) if d.contains("TWILIO_AUTH_TOKEN")));
        let c = load(&[
            PEPPER,
            ("TWILIO_ACCOUNT_SID", "AC1"),
            ("TWILIO_AUTH_TOKEN", "t"),
            ("TWILIO_FROM", "+15005550006"),
        ])
        .unwrap();
        assert!(c.twilio(TextChannel::Sms).is_ok());
        let e = c.twilio(TextChannel::Whatsapp).unwrap_err();
        assert!(matches!(e, ApiError::Unavailable(d) if d.contains("TWILIO_WHATSAPP_FROM")));
    }

    #[test]
    fn missing_secrets_fail_closed_with_a_clear_detail() {
        let c = load(&[]).unwrap();
        let e = c.pepper().unwrap_err();
        assert!(matches!(&e, ApiError::Unavailable(d) if d.contains("OTP_PEPPER")));
        assert!(
            matches!(c.mail_api_key(), Err(ApiError::Unavailable(d)) if d.contains("MAIL_API_KEY"))
        );
        assert!(
            matches!(c.admin_token(), Err(ApiError::Unavailable(d)) if d.contains("ADMIN_TOKEN"))
        );
        let c = load(&[("OTP_PEPPER", "short"), ("ADMIN_TOKEN", "  ")]).unwrap();
        assert!(c.pepper().is_err());
        assert!(
            c.admin_token().is_err(),
            "a blank secret is a missing secret"
        );
    }

    #[test]
    fn a_short_admin_token_fails_closed() {
        let c = load(&[("ADMIN_TOKEN", &"x".repeat(31))]).unwrap();
        assert!(
            matches!(c.admin_token(), Err(ApiError::Unavailable(d)) if d.contains("ADMIN_TOKEN") && d.contains("32"))
        );
        let c = load(&[("ADMIN_TOKEN", &"x".repeat(32))]).unwrap();
        assert!(c.admin_token().is_ok());
    }

    #[test]
    fn the_example_placeholders_are_refused_in_production() {
        // Every secret value .dev.vars.example ships is in the list.
        let example = include_str!("../.dev.vars.example");
        for line in example.lines().filter(|l| !l.starts_with('#')) {
            if let Some(("OTP_PEPPER" | "ADMIN_TOKEN", value)) = line.split_once('=') {
                assert!(PLACEHOLDERS.contains(&value), "{line}");
            }
        }
        let pairs = [
            ("OTP_PEPPER", PLACEHOLDERS[0]),
            ("ADMIN_TOKEN", PLACEHOLDERS[1]),
        ];
        let c = load(&pairs).unwrap();
        assert!(matches!(c.pepper(), Err(ApiError::Unavailable(d)) if d.contains("placeholder")));
        assert!(
            matches!(c.admin_token(), Err(ApiError::Unavailable(d)) if d.contains("placeholder"))
        );
        // Local development may keep them.
        let dev = load(&[pairs[0], pairs[1], ("ENVIRONMENT", "development")]).unwrap();
        assert!(dev.pepper().is_ok() && dev.admin_token().is_ok());
    }

    #[test]
    fn attempt_caps_above_one_in_ten_thousand_are_refused() {
        for (length, attempts, ok) in [
            ("6", "100", true),
            ("5", "10", true),
            ("5", "11", false),
            ("4", "1", true),
            ("4", "5", false),
            ("4", "100", false),
        ] {
            let c = load(&[
                PEPPER,
                ("OTP_LENGTH", length),
                ("OTP_MAX_ATTEMPTS", attempts),
            ]);
            assert_eq!(
                c.is_ok(),
                ok,
                "OTP_LENGTH={length} OTP_MAX_ATTEMPTS={attempts}"
            );
            if let Err(e) = c {
                assert!(matches!(e, ApiError::Unavailable(d) if d.contains("OTP_MAX_ATTEMPTS")));
            }
        }
    }

    #[test]
    fn argon2_memory_is_bounded_by_the_isolate() {
        assert!(load(&[PEPPER, ("ARGON2_MEMORY_KIB", "65536")]).is_ok());
        let e = load(&[PEPPER, ("ARGON2_MEMORY_KIB", "65537")]).unwrap_err();
        assert!(matches!(e, ApiError::Unavailable(d) if d.contains("ARGON2_MEMORY_KIB")));
    }

    #[test]
    fn the_address_ceiling_is_at_least_the_per_scope_cap() {
        let c = load(&[PEPPER, ("MAX_SENDS_PER_HOUR", "100")]).unwrap();
        assert_eq!(
            c.max_sends_per_address_per_hour, 400,
            "four scopes' worth by default"
        );
        let e = load(&[
            PEPPER,
            ("MAX_SENDS_PER_HOUR", "10"),
            ("MAX_SENDS_PER_ADDRESS_PER_HOUR", "9"),
        ])
        .unwrap_err();
        assert!(
            matches!(e, ApiError::Unavailable(d) if d.contains("MAX_SENDS_PER_ADDRESS_PER_HOUR"))
        );
    }

    #[test]
    fn log_mailer_is_refused_in_production() {
        let e = load(&[PEPPER, ("MAIL_PROVIDER", "log")]).unwrap_err();
        assert!(matches!(e, ApiError::Unavailable(d) if d.contains("production")));
        assert!(load(&[
            PEPPER,
            ("MAIL_PROVIDER", "log"),
            ("ENVIRONMENT", "development")
        ])
        .is_ok());
    }

    #[test]
    fn out_of_range_or_garbage_vars_are_refused_not_defaulted() {
        for (k, v) in [
            ("OTP_LENGTH", "3"),
            ("OTP_LENGTH", "11"),
            ("OTP_MAX_ATTEMPTS", "zero"),
            ("PASSWORD_MIN_LENGTH", "4"),
            ("MAIL_PROVIDER", "carrier-pigeon"),
            ("ARGON2_MEMORY_KIB", "1"),
            ("MAIL_FROM", "nobody"),
            ("TEMPLATES", "{\"login\": {\"text\": \"no code\"}}"),
            ("API_KEY_SENDS_PER_HOUR", "0"),
            // App codes live at least a minute: a default under it would
            // refuse every send that names no `ttl_seconds`.
            ("OTP_TTL_SECONDS", "59"),
            ("OTP_TTL_SECONDS", "86401"),
            // NIST 800-63B: at most 100 consecutive failures.
            ("LOGIN_MAX_FAILURES", "0"),
            ("LOGIN_MAX_FAILURES", "101"),
            ("LOGIN_FAILURE_WINDOW_SECONDS", "59"),
            ("LOGIN_FAILURE_WINDOW_SECONDS", "86401"),
        ] {
            let e = load(&[PEPPER, (k, v)]).unwrap_err();
            assert!(
                matches!(&e, ApiError::Unavailable(d) if d.contains(k)),
                "{k}={v}: {e:?}"
            );
        }
    }
}
