//! The generic API of calling apps: send a code to an address or phone for
//! the app's own purpose, then check what the user typed. Every code is
//! filed under the calling key's scope.

use super::{new_code, Issue, Service};
use crate::config::{attempts_fit, CODES_PER_ATTEMPT};
use crate::domain::api_key::{is_well_formed, ApiKey};
use crate::domain::audit::{Event, EventKind};
use crate::domain::autofill::with_autofill;
use crate::domain::channel::Channel;
use crate::domain::code::{app_scope, Code, CodeKey, CodeSpec};
use crate::domain::country::prefix_of;
use crate::domain::purpose::AppPurpose;
use crate::domain::recipient::Recipient;
use crate::domain::session::token_hash;
use crate::error::{ApiError, ApiResult};
use crate::http::routes::TWILIO_STATUS_PATH;
use crate::ports::clock::{rfc3339, Clock};
use crate::ports::limits::Counters;
use crate::ports::store::{Effect, Filed, NewCode, Store};
use crate::providers::mail::{code_message, Mailer};
use crate::providers::template::{Kind, Values};
use crate::providers::text::{TextChannel, TextMessage, Texter};
use futures_util::future::join;

pub use crate::domain::code::{MAX_TTL_SECS, MIN_TTL_SECS};

/// A request for a code, as `/v1/otp/send` takes it.
#[derive(Debug, Clone)]
pub struct AppCode {
    pub to: Recipient,
    pub purpose: AppPurpose,
    pub spec: CodeSpec,
    pub ttl_secs: u64,
    /// The message's language: a lower-case primary language subtag
    /// (`locale`'s), `en` by default.
    pub language: String,
    /// For a key marked `turnstile_required`.
    pub turnstile_token: Option<String>,
    /// `fallback: ["sms"]` on a WhatsApp send: SMS when WhatsApp refuses.
    pub fallback_sms: bool,
}

impl AppCode {
    /// `ttl_secs` defaults to `OTP_TTL_SECONDS` and must lie within 60 s to 24 h.
    pub fn new(
        to: Recipient,
        purpose: AppPurpose,
        spec: CodeSpec,
        ttl_secs: u64,
    ) -> ApiResult<Self> {
        if !(MIN_TTL_SECS..=MAX_TTL_SECS).contains(&ttl_secs) {
            return Err(ApiError::InvalidRequest(format!(
                "field `ttl_seconds` must be from {MIN_TTL_SECS} to {MAX_TTL_SECS}"
            )));
        }
        Ok(Self {
            to,
            purpose,
            spec,
            ttl_secs,
            language: "en".into(),
            turnstile_token: None,
            fallback_sms: false,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentCode {
    pub id: String,
    pub expires_at: String,
    /// The channel that carried the code.
    pub channel: Channel,
}

fn app_key<'a>(scope: &'a str, to: &'a Recipient, purpose: &'a AppPurpose) -> CodeKey<'a> {
    CodeKey {
        scope,
        channel: to.channel(),
        purpose: purpose.as_str(),
        address: to.address(),
    }
}

fn text_channel(to: &Recipient) -> Option<(TextChannel, &crate::domain::phone::Phone)> {
    match to {
        Recipient::Email(_) => None,
        Recipient::Sms(p) => Some((TextChannel::Sms, p)),
        Recipient::Whatsapp(p) => Some((TextChannel::Whatsapp, p)),
    }
}

impl<S: Store, K: Counters, M: Mailer, T: Texter, C: Clock> Service<'_, S, K, M, T, C> {
    /// The key behind `Authorization: Bearer`, if it exists and is not
    /// revoked. Only a bearer shaped like a key costs a D1 read.
    pub async fn api_key(&self, bearer: Option<&str>) -> ApiResult<ApiKey> {
        let found = match bearer.filter(|b| is_well_formed(b)) {
            Some(given) => self.store.api_key_by_hash(&token_hash(given)).await?,
            None => None,
        };
        found.ok_or(ApiError::Unauthorized)
    }

    /// Records a refused key in the audit trail and answers 401. The
    /// caller first holds the client to its limit, so that guessing keys
    /// cannot flood the trail.
    pub fn refuse_key(&self) -> ApiError {
        self.audit
            .record(Event::new(EventKind::ApiKeyAuthFailed, "unauthorized"));
        ApiError::Unauthorized
    }

    /// `/v1/otp/send` for the app holding the key `bearer`. The key's
    /// lookup (D1) and the cooldown's read (KV) go out together, one round:
    /// the cooldown is named after the key's hash, which is known before
    /// the lookup. A key that does not exist or is revoked is
    /// `Unauthorized`, not audited here: the caller holds the client to
    /// its limit first, then `refuse_key`.
    pub async fn send_app_code(&self, bearer: &str, req: &AppCode) -> ApiResult<SentCode> {
        if !is_well_formed(bearer) {
            return Err(ApiError::Unauthorized);
        }
        let pepper = self.cfg.pepper()?;
        let now = self.clock.now();
        let key_hash = token_hash(bearer);
        let lane_scope = cooldown_scope(&key_hash);
        let lane = app_key(&lane_scope, &req.to, &req.purpose);
        let tag = self.limit_tag(pepper, &lane);
        let (found, cooldown) = join(
            self.store
                .sending_key(&key_hash, req.to.channel(), req.to.address()),
            self.cooldown(&tag, &lane, now),
        )
        .await;
        let (key, test_digest) = found?.ok_or(ApiError::Unauthorized)?;
        let scope = app_scope(&key.id);
        let code_key = app_key(&scope, &req.to, &req.purpose);
        // Test recipients answer only where they are allowed; anywhere
        // else the address is an address like any other.
        if let Some(digest) = test_digest.filter(|_| self.cfg.test_recipients_allowed) {
            let result = self
                .file_test_code(&key, req, code_key, (&digest, &tag), now)
                .await;
            self.audit_send(&code_key, &result, true);
            return result;
        }
        let cooldown = Cooldown {
            left: cooldown,
            tag: &tag,
            lane: &lane,
        };
        let result = self
            .deliver_app_code(&key, req, code_key, cooldown, now)
            .await;
        self.audit_send(&code_key, &result, false);
        result
    }

    /// The `code_sent` event of an app's send: `sent` with the send's id,
    /// or why it was refused.
    fn audit_send(&self, key: &CodeKey<'_>, result: &ApiResult<SentCode>, test: bool) {
        let (outcome, send_id, channel) = match result {
            Ok(sent) => ("sent", Some(sent.id.as_str()), sent.channel),
            Err(e) => (e.audit_outcome(), None, key.channel),
        };
        // The channel that carried it: SMS after a WhatsApp fallback.
        let key = CodeKey { channel, ..*key };
        let event = self.code_event(EventKind::CodeSent, outcome, &key, send_id);
        self.audit.record(Event { test, ..event });
    }

    /// A send to one of the key's test recipients: the code is the
    /// recipient's fixed one, filed like any code (the guess budget and the
    /// expiry hold) and sent nowhere. It counts against the address's
    /// hourly caps, which bound the guesses at the one fixed code across
    /// windows and purposes, but not the key's quota: no provider is paid.
    /// The code is filed only while the recipient still has this digest,
    /// so a removal or a new code that lands mid-send wins.
    async fn file_test_code(
        &self,
        key: &ApiKey,
        req: &AppCode,
        code_key: CodeKey<'_>,
        (digest, tag): (&str, &str),
        now: u64,
    ) -> ApiResult<SentCode> {
        let channel = req.to.channel();
        if !key.channels.allows(channel) {
            return Err(ApiError::ChannelNotAllowed(channel));
        }
        let id = super::random_id()?;
        let expires_at = now + req.ttl_secs;
        let code = NewCode {
            id: &id,
            key: code_key,
            digest,
            now,
            expires_at,
            test: true,
        };
        let count = self.send_count(tag, &code_key, None, now);
        match self
            .store
            .issue_app_code(&code, req.ttl_secs, &count, &key.id)
            .await?
        {
            Filed::Filed => Ok(SentCode {
                id,
                expires_at: rfc3339(expires_at),
                channel,
            }),
            // Capped, or the recipient changed since it was read: a retry
            // sees which.
            Filed::Capped { .. } => Err(ApiError::RateLimited {
                retry_after_secs: count.retry_after(now),
            }),
            Filed::KeyRevoked => Err(ApiError::Unauthorized),
        }
    }

    async fn deliver_app_code(
        &self,
        key: &ApiKey,
        req: &AppCode,
        code_key: CodeKey<'_>,
        cooldown: Cooldown<'_>,
        now: u64,
    ) -> ApiResult<SentCode> {
        let channel = req.to.channel();
        if !key.channels.allows(channel) {
            return Err(ApiError::ChannelNotAllowed(channel));
        }
        // A fallback needs SMS as well: checked before anything is sent.
        if req.fallback_sms && !key.channels.allows(Channel::Sms) {
            return Err(ApiError::ChannelNotAllowed(Channel::Sms));
        }
        self.check_human(
            req.turnstile_token.as_deref(),
            key.options.turnstile_required,
        )
        .await?;
        if !attempts_fit(req.spec, self.cfg.otp_max_attempts) {
            return Err(ApiError::InvalidRequest(format!(
                "field `length` is too short for {} attempts per code (OTP_MAX_ATTEMPTS): a code needs {CODES_PER_ATTEMPT} possible values per attempt; ask for more characters or the alphanumeric alphabet",
                self.cfg.otp_max_attempts
            )));
        }
        let pepper = self.cfg.pepper()?;
        let phone = text_channel(&req.to).map(|(_, phone)| phone);
        // SMS pumping: a number outside the operator's countries is
        // refused before anything is written, counted or sent.
        if phone.is_some_and(|p| !self.cfg.sms_allowed_countries.allows(p)) {
            return Err(ApiError::CountryNotAllowed);
        }
        match text_channel(&req.to) {
            None => self.mailer.ready()?,
            Some((tc, _)) => self.texter.ready(tc)?,
        }
        if req.fallback_sms {
            self.texter.ready(TextChannel::Sms)?;
        }
        let tag = cooldown.tag;
        if let Some(retry_after_secs) = cooldown.left? {
            return Err(ApiError::RateLimited { retry_after_secs });
        }
        let issue = Issue {
            key: code_key,
            spec: req.spec,
            ttl_secs: req.ttl_secs,
            bound_to: None,
        };
        // The key's quota and the address's hourly caps are counted in the
        // same D1 transaction that files the code: exact under any burst,
        // and counted before anything is sent. A message handed to a
        // provider counts whether or not it is accepted.
        let mut count = self.send_count(tag, &code_key, Some(self.cfg.api_key_sends_per_hour), now);
        let prefix_cap = self.cfg.sms_max_per_prefix_per_hour;
        if let Some(phone) = phone.filter(|_| prefix_cap > 0) {
            let prefix = prefix_of(phone, self.cfg.sms_prefix_digits);
            count = count.with_prefix(&pepper.address_tag(&format!("prefix:{prefix}")), prefix_cap);
        }
        let (issued, row) = new_code(pepper, &issue, now)?;
        let code = row.code(&issued.id, &issue);
        match self
            .store
            .issue_app_code(&code, issue.ttl_secs, &count, &key.id)
            .await?
        {
            Filed::Filed => {}
            Filed::Capped { prefix: false } => {
                return Err(ApiError::RateLimited {
                    retry_after_secs: count.retry_after(now),
                })
            }
            Filed::Capped { prefix: true } => {
                return Err(ApiError::PrefixLimited {
                    retry_after_secs: count.retry_after(now),
                })
            }
            // Revoked while this send was in flight: it stops here.
            Filed::KeyRevoked => return Err(ApiError::Unauthorized),
        }
        let values = Values {
            code: issued.code.expose(),
            ttl_secs: req.ttl_secs,
            app_name: key.app_name.as_deref().unwrap_or(&self.cfg.app_name),
            language: &req.language,
        };
        let kind = Kind::App(&req.purpose);
        let carried = match text_channel(&req.to) {
            None => {
                let rendered = self.cfg.templates.mail(kind, &values);
                let message =
                    code_message(req.to.address(), rendered, format!("code-{}", issued.id));
                self.mailer.send(&message).await?;
                channel
            }
            Some((text, phone)) => {
                let text_code = TextCode {
                    key,
                    to: phone,
                    body: self.cfg.templates.text_message(kind, &values),
                    code: issued.code.expose(),
                    send_id: &issued.id,
                };
                match self.send_text(text, &text_code).await {
                    // WhatsApp refused it at the provider: the same code by
                    // SMS, when the app asked for that. Both are audited.
                    Err(e @ ApiError::TextRefused(Channel::Whatsapp)) if req.fallback_sms => {
                        self.audit_of_send(
                            EventKind::CodeSent,
                            e.code(),
                            &code_key,
                            Some(&issued.id),
                        );
                        self.send_text(TextChannel::Sms, &text_code).await?;
                        Channel::Sms
                    }
                    sent => {
                        sent?;
                        channel
                    }
                }
            }
        };
        // Only a delivered message starts the cooldown, so a retry after a
        // provider failure works.
        self.start_cooldown(tag, cooldown.lane, now);
        Ok(SentCode {
            id: issued.id,
            expires_at: rfc3339(issued.expires_at),
            channel: carried,
        })
    }

    /// Sends an app's code by SMS or WhatsApp.
    async fn send_text(&self, channel: TextChannel, c: &TextCode<'_>) -> ApiResult<()> {
        // The autofill lines are for SMS: WhatsApp shows its own
        // copy-code button, and no platform reads them there.
        let body = match channel {
            TextChannel::Sms => with_autofill(
                &c.body,
                c.code,
                c.key.options.sms_domain.as_ref(),
                c.key.options.android_app_hash.as_ref(),
            ),
            TextChannel::Whatsapp => c.body.clone(),
        };
        let message = TextMessage {
            channel,
            to: c.to.clone(),
            body,
            code: c.code.to_owned(),
            status_callback: self
                .cfg
                .public_base_url
                .as_ref()
                .map(|base| format!("{base}{TWILIO_STATUS_PATH}?send={}", c.send_id)),
        };
        self.texter.send(&message).await
    }

    /// `/v1/otp/verify` for the app holding the key `bearer`: the key's
    /// lookup and the guess's claim are one transaction, one round. A
    /// wrong key, or a channel the key does not allow, counts no guess.
    pub async fn verify_app_code(
        &self,
        bearer: &str,
        to: &Recipient,
        purpose: &AppPurpose,
        code: &Code,
    ) -> ApiResult<()> {
        if !is_well_formed(bearer) {
            return Err(ApiError::Unauthorized);
        }
        self.cfg.pepper()?;
        // The store fills in the scope: the key's, which it finds.
        let unscoped = app_key("", to, purpose);
        let (found, pending) = self
            .store
            .claim_app_attempt(&token_hash(bearer), &unscoped, self.cfg.otp_max_attempts)
            .await?;
        let key = found.ok_or(ApiError::Unauthorized)?;
        if !key.channels.allows(to.channel()) {
            return Err(ApiError::ChannelNotAllowed(to.channel()));
        }
        let scope = app_scope(&key.id);
        self.settle(&app_key(&scope, to, purpose), code, pending, |_, _| {
            Ok(Effect::Nothing)
        })
        .await
        .map(drop)
    }
}

/// An app's code as a text message carries it, on whichever channel.
struct TextCode<'a> {
    key: &'a ApiKey,
    to: &'a crate::domain::phone::Phone,
    body: String,
    code: &'a str,
    send_id: &'a str,
}

/// The cooldown of an app's send: what its read found, and where it is kept.
struct Cooldown<'a> {
    left: ApiResult<Option<u64>>,
    tag: &'a str,
    lane: &'a CodeKey<'a>,
}

/// The scope an app's cooldowns are kept under: its key's hash (its first
/// 64 bits), known before the key is looked up, so that the cooldown's read
/// goes out together with the lookup. Codes and counts stay under the key's
/// id (`app_scope`).
fn cooldown_scope(key_hash: &str) -> String {
    format!("kh:{}", key_hash.get(..16).unwrap_or(key_hash))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::code::Alphabet;
    use crate::service::testkit::{poll_once, wrong, World, ADMIN};
    use pollster::block_on;

    fn request(channel: Channel, to: &str, alphabet: Alphabet) -> AppCode {
        AppCode::new(
            Recipient::parse(channel, to).unwrap(),
            AppPurpose::parse("confirm_payment").unwrap(),
            CodeSpec::new(8, alphabet).unwrap(),
            300,
        )
        .unwrap()
    }

    #[test]
    fn ttl_bounds_are_a_minute_to_a_day() {
        let r = request(Channel::Email, "a@example.com", Alphabet::Digits);
        for bad in [59, 86_401] {
            assert!(AppCode::new(r.to.clone(), r.purpose.clone(), r.spec, bad).is_err());
        }
        for ok in [60, 86_400] {
            assert!(AppCode::new(r.to.clone(), r.purpose.clone(), r.spec, ok).is_ok());
        }
    }

    #[test]
    fn email_code_round_trip_in_the_shape_asked_for() {
        let w = World::new(&[]);
        let (_, key) = w.api_key(&["email"]);
        let svc = w.svc();
        block_on(async {
            let req = request(Channel::Email, "ann@example.com", Alphabet::Alphanumeric);
            let sent = svc.send_app_code(&key, &req).await.unwrap();
            assert_eq!(sent.expires_at, rfc3339(1_800_000_300));
            let mail = w.last_mail();
            assert!(
                mail.subject.contains("your Shop code"),
                "the key's app name: {}",
                mail.subject
            );
            assert!(mail.text.contains("5 minutes"));
            let code = w.last_code();
            assert_eq!(code.expose().len(), 8);
            let typed = Code::parse_any(&code.expose().to_lowercase()).unwrap();
            svc.verify_app_code(&key, &req.to, &req.purpose, &typed)
                .await
                .unwrap();
            assert_eq!(
                svc.verify_app_code(&key, &req.to, &req.purpose, &typed)
                    .await
                    .unwrap_err(),
                ApiError::InvalidCode
            );
        });
    }

    #[test]
    fn sms_and_whatsapp_go_to_the_texter() {
        let w = World::new(&[]);
        let (_, key) = w.api_key(&["sms", "whatsapp"]);
        let svc = w.svc();
        block_on(async {
            for (channel, tc) in [
                (Channel::Sms, TextChannel::Sms),
                (Channel::Whatsapp, TextChannel::Whatsapp),
            ] {
                let req = request(channel, "+14155550123", Alphabet::Digits);
                svc.send_app_code(&key, &req).await.unwrap();
                assert_eq!(w.outbox.texts.borrow().last().unwrap().channel, tc);
                svc.verify_app_code(&key, &req.to, &req.purpose, &w.last_text_code())
                    .await
                    .unwrap();
            }
            assert_eq!(w.mails(), 0);
        });
    }

    #[test]
    fn keys_send_only_on_their_channels_and_never_see_each_others_codes() {
        let w = World::new(&[]);
        let (_, a) = w.api_key(&["email"]);
        let (_, b) = w.api_key(&["email"]);
        let svc = w.svc();
        block_on(async {
            let sms = request(Channel::Sms, "+14155550123", Alphabet::Digits);
            assert_eq!(
                svc.send_app_code(&a, &sms).await.unwrap_err(),
                ApiError::ChannelNotAllowed(Channel::Sms)
            );
            let req = request(Channel::Email, "ann@example.com", Alphabet::Digits);
            svc.send_app_code(&a, &req).await.unwrap();
            let code = w.last_code();
            assert_eq!(
                svc.verify_app_code(&b, &req.to, &req.purpose, &code)
                    .await
                    .unwrap_err(),
                ApiError::InvalidCode
            );
            let other = AppPurpose::parse("login").unwrap();
            assert_eq!(
                svc.verify_app_code(&a, &req.to, &other, &code)
                    .await
                    .unwrap_err(),
                ApiError::InvalidCode
            );
            svc.verify_app_code(&a, &req.to, &req.purpose, &code)
                .await
                .unwrap();
        });
    }

    #[test]
    fn attempts_are_capped_and_a_resend_does_not_refill_them() {
        let w = World::new(&[("RESEND_COOLDOWN_SECONDS", "0"), ("OTP_MAX_ATTEMPTS", "3")]);
        let (_, key) = w.api_key(&["email"]);
        let svc = w.svc();
        block_on(async {
            let req = request(Channel::Email, "ann@example.com", Alphabet::Digits);
            svc.send_app_code(&key, &req).await.unwrap();
            for attempts_left in [2, 1] {
                let bad = wrong(&w.last_code());
                assert_eq!(
                    svc.verify_app_code(&key, &req.to, &req.purpose, &bad)
                        .await
                        .unwrap_err(),
                    ApiError::WrongCode { attempts_left }
                );
            }
            svc.send_app_code(&key, &req).await.unwrap();
            let bad = wrong(&w.last_code());
            assert_eq!(
                svc.verify_app_code(&key, &req.to, &req.purpose, &bad)
                    .await
                    .unwrap_err(),
                ApiError::TooManyAttempts
            );
            assert_eq!(
                svc.verify_app_code(&key, &req.to, &req.purpose, &w.last_code())
                    .await
                    .unwrap_err(),
                ApiError::TooManyAttempts
            );
        });
    }

    #[test]
    fn a_failed_send_leaves_no_cooldown_but_counts_against_the_key_quota() {
        let w = World::new(&[("API_KEY_SENDS_PER_HOUR", "3")]);
        let (_, key) = w.api_key(&["email"]);
        let svc = w.svc();
        block_on(async {
            let req = request(Channel::Email, "ann@example.com", Alphabet::Digits);
            w.outbox.fail_next.set(true);
            assert_eq!(
                svc.send_app_code(&key, &req).await.unwrap_err(),
                ApiError::MailDeliveryFailed
            );
            w.after_answer().await;
            // No cooldown after a failure: the retry goes out.
            svc.send_app_code(&key, &req).await.unwrap();
            w.after_answer().await;
            assert!(matches!(
                svc.send_app_code(&key, &req).await.unwrap_err(),
                ApiError::RateLimited {
                    retry_after_secs: 60
                }
            ));
            // The quota counted the failed attempt too: a message handed
            // to a provider may cost, delivered or not.
            let other = request(Channel::Email, "bob@example.com", Alphabet::Digits);
            svc.send_app_code(&key, &other).await.unwrap();
            let third = request(Channel::Email, "cy@example.com", Alphabet::Digits);
            assert_eq!(
                svc.send_app_code(&key, &third).await.unwrap_err(),
                ApiError::RateLimited {
                    retry_after_secs: 3_600
                }
            );
            assert_eq!(w.sent(), 2);
        });
    }

    #[test]
    fn codes_too_small_for_the_attempt_cap_are_refused() {
        let w = World::new(&[]);
        let (_, key) = w.api_key(&["sms"]);
        let svc = w.svc();
        let at = |length, alphabet| AppCode {
            spec: CodeSpec::new(length, alphabet).unwrap(),
            ..request(Channel::Sms, "+14155550123", Alphabet::Digits)
        };
        block_on(async {
            // 5 attempts at 10,000 four-digit codes: 1 in 2,000. Refused.
            let e = svc
                .send_app_code(&key, &at(4, Alphabet::Digits))
                .await
                .unwrap_err();
            assert!(
                matches!(&e, ApiError::InvalidRequest(d) if d.contains("`length`")),
                "{e:?}"
            );
            assert_eq!(w.sent(), 0);
            svc.send_app_code(&key, &at(5, Alphabet::Digits))
                .await
                .unwrap();
            w.advance(60);
            svc.send_app_code(&key, &at(4, Alphabet::Alphanumeric))
                .await
                .unwrap();
        });
    }

    #[test]
    fn revoked_keys_are_refused_and_lose_their_codes() {
        let w = World::new(&[]);
        let (key, secret) = w.api_key(&["email"]);
        let svc = w.svc();
        block_on(async {
            assert_eq!(svc.api_key(Some(&secret)).await.unwrap().id, key.id);
            assert_eq!(
                svc.api_key(Some("otpk_nope")).await.unwrap_err(),
                ApiError::Unauthorized
            );
            assert_eq!(
                svc.api_key(Some("admin-secret")).await.unwrap_err(),
                ApiError::Unauthorized
            );
            assert_eq!(svc.api_key(None).await.unwrap_err(), ApiError::Unauthorized);
            let req = request(Channel::Email, "ann@example.com", Alphabet::Digits);
            svc.send_app_code(&secret, &req).await.unwrap();
            let code = w.last_code();
            svc.revoke_api_key(ADMIN, &key.id).await.unwrap();
            assert_eq!(
                svc.api_key(Some(&secret)).await.unwrap_err(),
                ApiError::Unauthorized
            );
            assert!(w.store.codes.borrow().is_empty());
            let sent = w.sent();
            assert_eq!(
                svc.send_app_code(&secret, &req).await.unwrap_err(),
                ApiError::Unauthorized
            );
            assert_eq!(
                svc.verify_app_code(&secret, &req.to, &req.purpose, &code)
                    .await
                    .unwrap_err(),
                ApiError::Unauthorized
            );
            assert_eq!(w.sent(), sent, "a revoked key sends nothing");
            assert!(w.store.codes.borrow().is_empty());
        });
    }

    #[test]
    fn a_wrong_key_or_a_channel_the_key_lacks_counts_no_guess() {
        let w = World::new(&[]);
        let (_, email_only) = w.api_key(&["email"]);
        let (_, other) = w.api_key(&["email", "sms"]);
        let svc = w.svc();
        let attempts = || {
            w.store
                .codes
                .borrow()
                .values()
                .map(|(c, _)| c.attempts)
                .collect::<Vec<_>>()
        };
        block_on(async {
            let req = request(Channel::Email, "ann@example.com", Alphabet::Digits);
            svc.send_app_code(&email_only, &req).await.unwrap();
            let code = w.last_code();
            // Another app's key finds no code of this one's: a guess of its own.
            assert_eq!(
                svc.verify_app_code(&other, &req.to, &req.purpose, &wrong(&code))
                    .await
                    .unwrap_err(),
                ApiError::InvalidCode
            );
            let forged = format!("otpk_{}", "A".repeat(43));
            assert!(is_well_formed(&forged));
            assert_eq!(
                svc.verify_app_code(&forged, &req.to, &req.purpose, &code)
                    .await
                    .unwrap_err(),
                ApiError::Unauthorized
            );
            assert_eq!(attempts(), [0], "no guess counted against ann's code");
            let sms = request(Channel::Sms, "+14155550100", Alphabet::Digits);
            assert_eq!(
                svc.verify_app_code(&email_only, &sms.to, &sms.purpose, &code)
                    .await
                    .unwrap_err(),
                ApiError::ChannelNotAllowed(Channel::Sms)
            );
            assert_eq!(attempts(), [0]);
            svc.verify_app_code(&email_only, &req.to, &req.purpose, &code)
                .await
                .unwrap();
        });
    }

    #[test]
    fn a_key_revoked_while_its_send_is_in_flight_files_and_sends_nothing() {
        let w = World::new(&[]);
        let (key, secret) = w.api_key(&["email"]);
        let req = request(Channel::Email, "ann@example.com", Alphabet::Digits);
        let svc = w.svc();
        w.store.gate.hold_after("sending_key");
        let mut send = std::pin::pin!(svc.send_app_code(&secret, &req));
        assert!(poll_once(send.as_mut()).is_pending() && w.store.gate.is_holding());
        block_on(svc.revoke_api_key(ADMIN, &key.id)).unwrap();
        w.store.gate.release();
        assert_eq!(block_on(send).unwrap_err(), ApiError::Unauthorized);
        assert_eq!(w.sent(), 0, "no message after the revocation");
        assert!(w.store.codes.borrow().is_empty(), "no code filed");
        assert!(w.store.counts.borrow().is_empty(), "nothing counted");
    }

    #[test]
    fn a_key_revoked_between_a_guess_and_its_consumption_verifies_nothing() {
        let w = World::new(&[]);
        let (key, secret) = w.api_key(&["email"]);
        let req = request(Channel::Email, "ann@example.com", Alphabet::Digits);
        let svc = w.svc();
        block_on(svc.send_app_code(&secret, &req)).unwrap();
        let code = w.last_code();
        w.store.gate.hold_after("claim_app_attempt");
        let mut verify = std::pin::pin!(svc.verify_app_code(&secret, &req.to, &req.purpose, &code));
        assert!(poll_once(verify.as_mut()).is_pending() && w.store.gate.is_holding());
        block_on(svc.revoke_api_key(ADMIN, &key.id)).unwrap();
        w.store.gate.release();
        assert_eq!(block_on(verify).unwrap_err(), ApiError::InvalidCode);
    }

    #[test]
    fn more_concurrent_right_guesses_than_the_budget_still_give_one_success() {
        let w = World::new(&[]);
        let (_, secret) = w.api_key(&["email"]);
        let req = request(Channel::Email, "ann@example.com", Alphabet::Digits);
        let svc = w.svc();
        block_on(svc.send_app_code(&secret, &req)).unwrap();
        let code = w.last_code();
        // Every guess is claimed before any is consumed: eight claims on a
        // budget of five, as a burst of resubmissions arrives.
        w.faults.rounds.concurrent.set(true);
        let guesses = (0..8).map(|_| svc.verify_app_code(&secret, &req.to, &req.purpose, &code));
        let results = block_on(futures_util::future::join_all(guesses));
        let won = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(won, 1, "{results:?}");
        assert!(results.iter().all(|r| matches!(
            r,
            Ok(()) | Err(ApiError::InvalidCode) | Err(ApiError::TooManyAttempts)
        )));
    }
}

/// Test recipients, the SMS-pumping guards, autofill and languages.
#[cfg(test)]
mod sends {
    use super::*;
    use crate::domain::api_key::KeyOptions;
    use crate::domain::autofill::{AppHash, SmsDomain};
    use crate::domain::code::Alphabet;
    use crate::domain::test_recipient::NewTestRecipient;
    use crate::service::testkit::{poll_once, wrong, World, ADMIN};
    use pollster::block_on;

    fn request(channel: Channel, to: &str) -> AppCode {
        AppCode::new(
            Recipient::parse(channel, to).unwrap(),
            AppPurpose::parse("sign_in").unwrap(),
            CodeSpec::new(6, Alphabet::Digits).unwrap(),
            300,
        )
        .unwrap()
    }

    fn code(s: &str) -> Code {
        Code::parse_any(s).unwrap()
    }

    fn add(w: &World, key: &ApiKey, channel: Channel, to: &str, fixed: &str) -> ApiResult<()> {
        let new = NewTestRecipient::parse(channel, to, fixed).unwrap();
        block_on(w.svc().add_test_recipient(ADMIN, &key.id, &new)).map(drop)
    }

    #[test]
    fn a_test_recipient_gets_its_fixed_code_and_no_message() {
        let w = World::new(&[("ENVIRONMENT", "development"), ("MAIL_PROVIDER", "log")]);
        let (key, secret) = w.api_key(&["email", "sms"]);
        add(&w, &key, Channel::Sms, "+15555550100", "424242").unwrap();
        let svc = w.svc();
        let req = request(Channel::Sms, "+15555550100");
        block_on(async {
            let sent = svc.send_app_code(&secret, &req).await.unwrap();
            assert_eq!(sent.channel, Channel::Sms);
            assert_eq!(w.sent(), 0, "nothing goes out");
            // The address's caps count it (they bound guessing at the one
            // fixed code); the key's provider quota does not.
            let counts = w.store.counts.borrow().clone();
            assert!(!counts.is_empty());
            assert!(
                !counts.keys().any(|(name, _)| name.ends_with("|*")),
                "{counts:?}"
            );
            // Another purpose's send answers to the same fixed code.
            let other = AppCode {
                purpose: AppPurpose::parse("confirm_payment").unwrap(),
                ..req.clone()
            };
            svc.send_app_code(&secret, &other).await.unwrap();
            svc.verify_app_code(&secret, &other.to, &other.purpose, &code("424242"))
                .await
                .unwrap();
            // Single use, like any code.
            assert_eq!(
                svc.verify_app_code(&secret, &other.to, &other.purpose, &code("424242"))
                    .await
                    .unwrap_err(),
                ApiError::InvalidCode
            );
        });
        let events = w.store.events.borrow().clone();
        assert!(events.is_empty(), "events are the caller's to store");
        let recorded = w.audit.take();
        let sends: Vec<_> = recorded
            .iter()
            .filter(|e| e.kind == EventKind::CodeSent)
            .collect();
        assert_eq!(sends.len(), 2);
        assert!(sends
            .iter()
            .all(|e| e.test && e.outcome == "sent" && e.send_id.is_some()));
        // An ordinary address of the same key is sent to, as always.
        block_on(svc.send_app_code(&secret, &request(Channel::Sms, "+15555550199"))).unwrap();
        assert_eq!(w.sent(), 1);
    }

    #[test]
    fn a_test_code_keeps_the_guess_budget_and_the_expiry() {
        let w = World::new(&[("ENVIRONMENT", "development"), ("MAIL_PROVIDER", "log")]);
        let (key, secret) = w.api_key(&["email"]);
        add(&w, &key, Channel::Email, "Review@Example.com", "AB12CD").unwrap();
        let svc = w.svc();
        let req = request(Channel::Email, "review@example.com");
        let right = code("ab12cd");
        block_on(async {
            svc.send_app_code(&secret, &req).await.unwrap();
            for _ in 0..4 {
                assert!(matches!(
                    svc.verify_app_code(&secret, &req.to, &req.purpose, &wrong(&right))
                        .await
                        .unwrap_err(),
                    ApiError::WrongCode { .. }
                ));
            }
            assert_eq!(
                svc.verify_app_code(&secret, &req.to, &req.purpose, &wrong(&right))
                    .await
                    .unwrap_err(),
                ApiError::TooManyAttempts
            );
            // A resend does not refill the budget.
            svc.send_app_code(&secret, &req).await.unwrap();
            assert_eq!(
                svc.verify_app_code(&secret, &req.to, &req.purpose, &right)
                    .await
                    .unwrap_err(),
                ApiError::TooManyAttempts
            );
        });
        // After the attempts window, a fresh code; it expires like any other.
        w.advance(3_600);
        block_on(async {
            svc.send_app_code(&secret, &req).await.unwrap();
            w.advance(301);
            assert_eq!(
                svc.verify_app_code(&secret, &req.to, &req.purpose, &right)
                    .await
                    .unwrap_err(),
                ApiError::ExpiredCode
            );
        });
    }

    #[test]
    fn test_recipients_are_refused_in_production_unless_allowed() {
        let w = World::new(&[]);
        let (key, secret) = w.api_key(&["email"]);
        assert_eq!(
            add(&w, &key, Channel::Email, "review@example.com", "123456").unwrap_err(),
            ApiError::TestRecipientsDisabled
        );
        // One filed while allowed (here, straight into the store) is a
        // plain address once they are off: the real code goes out.
        let svc = w.svc();
        let digest = w.cfg.pepper().unwrap().test_code_digest(
            &app_scope(&key.id),
            Channel::Email,
            "review@example.com",
            &code("123456"),
        );
        w.store.test_recipients.borrow_mut().push((
            key.id.clone(),
            crate::domain::test_recipient::TestRecipient {
                channel: Channel::Email,
                address: "review@example.com".into(),
                created_at: 0,
            },
            digest,
        ));
        let req = request(Channel::Email, "review@example.com");
        block_on(svc.send_app_code(&secret, &req)).unwrap();
        assert_eq!(w.sent(), 1);
        assert!(matches!(
            block_on(svc.verify_app_code(&secret, &req.to, &req.purpose, &code("123456"))),
            Err(ApiError::WrongCode { .. })
        ));
        // A test code filed while they were on (here, straight into the
        // store) matches nothing once they are off.
        let pending = w.store.codes.borrow().values().next().unwrap().0.id.clone();
        let fixed = w.cfg.pepper().unwrap().test_code_digest(
            &app_scope(&key.id),
            Channel::Email,
            "review@example.com",
            &code("123456"),
        );
        for (c, _) in w.store.codes.borrow_mut().values_mut() {
            if c.id == pending {
                c.digest = fixed.clone();
                c.test = true;
                c.attempts = 0;
            }
        }
        assert!(matches!(
            block_on(svc.verify_app_code(&secret, &req.to, &req.purpose, &code("123456"))),
            Err(ApiError::WrongCode { .. })
        ));
        let allowed = World::new(&[("ALLOW_TEST_RECIPIENTS", "true")]);
        let (key, _) = allowed.api_key(&["email"]);
        add(
            &allowed,
            &key,
            Channel::Email,
            "review@example.com",
            "123456",
        )
        .unwrap();
    }

    #[test]
    fn test_recipients_are_listed_removed_and_bounded() {
        let w = World::new(&[("ENVIRONMENT", "development"), ("MAIL_PROVIDER", "log")]);
        let (key, secret) = w.api_key(&["email", "sms"]);
        let svc = w.svc();
        add(&w, &key, Channel::Sms, "+15555550100", "111111").unwrap();
        add(&w, &key, Channel::Sms, "+15555550100", "222222").unwrap();
        let req = request(Channel::Sms, "+15555550100");
        block_on(svc.send_app_code(&secret, &req)).unwrap();
        let listed = block_on(svc.test_recipients(ADMIN, &key.id)).unwrap();
        assert_eq!(listed.len(), 1, "a second add replaces the code");
        assert_eq!(
            block_on(svc.test_recipients(ADMIN, &"0".repeat(32))).unwrap_err(),
            ApiError::ApiKeyNotFound
        );
        let to = Recipient::parse(Channel::Sms, "+15555550100").unwrap();
        block_on(svc.remove_test_recipient(ADMIN, &key.id, &to)).unwrap();
        // Its pending code goes with it: the fixed code stops working at once.
        assert_eq!(
            block_on(svc.verify_app_code(&secret, &req.to, &req.purpose, &code("222222")))
                .unwrap_err(),
            ApiError::InvalidCode
        );
        assert_eq!(
            block_on(svc.remove_test_recipient(ADMIN, &key.id, &to)).unwrap_err(),
            ApiError::TestRecipientNotFound
        );
        for i in 0..crate::domain::test_recipient::MAX_PER_KEY {
            add(
                &w,
                &key,
                Channel::Email,
                &format!("r{i}@example.com"),
                "123456",
            )
            .unwrap();
        }
        assert_eq!(
            add(&w, &key, Channel::Email, "one-more@example.com", "123456").unwrap_err(),
            ApiError::TooManyTestRecipients { max: 50 }
        );
        assert_eq!(
            add(&w, &key, Channel::Email, "x@example.com", "123456").map_err(|e| e.code()),
            Err("too_many_test_recipients")
        );
        assert_eq!(
            block_on(svc.test_recipients(Some("wrong"), &key.id)).unwrap_err(),
            ApiError::Unauthorized
        );
    }

    #[test]
    fn numbers_outside_the_allowed_countries_are_refused_before_anything() {
        let w = World::new(&[("SMS_ALLOWED_COUNTRIES", "GB, de")]);
        let (_, secret) = w.api_key(&["sms", "whatsapp"]);
        let svc = w.svc();
        for (channel, to) in [
            (Channel::Sms, "+14155550123"),
            (Channel::Whatsapp, "+18765550123"),
            (Channel::Sms, "+88212345678"),
        ] {
            assert_eq!(
                block_on(svc.send_app_code(&secret, &request(channel, to))).unwrap_err(),
                ApiError::CountryNotAllowed,
                "{to}"
            );
        }
        assert_eq!(w.sent(), 0);
        assert!(w.store.codes.borrow().is_empty() && w.store.counts.borrow().is_empty());
        let sends: Vec<_> = w
            .audit
            .take()
            .into_iter()
            .filter(|e| e.kind == EventKind::CodeSent)
            .map(|e| e.outcome)
            .collect();
        assert_eq!(sends, ["country_not_allowed"; 3]);
        block_on(svc.send_app_code(&secret, &request(Channel::Sms, "+447700900123"))).unwrap();
        block_on(svc.send_app_code(&secret, &request(Channel::Sms, "+4915112345678"))).unwrap();
        assert_eq!(w.sent(), 2);
    }

    #[test]
    fn a_run_through_a_number_range_meets_the_prefix_cap() {
        let w = World::new(&[("SMS_MAX_PER_PREFIX_PER_HOUR", "3")]);
        let (_, a) = w.api_key(&["sms"]);
        let (_, b) = w.api_key(&["sms", "whatsapp"]);
        let svc = w.svc();
        // +44 7700900xxx shares its first 7 digits; the cap counts across
        // keys and channels.
        for (key, channel, to) in [
            (&a, Channel::Sms, "+447700900001"),
            (&a, Channel::Sms, "+447700900002"),
            (&b, Channel::Whatsapp, "+447700900003"),
        ] {
            block_on(svc.send_app_code(key, &request(channel, to))).unwrap();
        }
        let e =
            block_on(svc.send_app_code(&b, &request(Channel::Sms, "+447700900004"))).unwrap_err();
        // The hour's counters start over at the top of the hour.
        assert_eq!(
            e,
            ApiError::PrefixLimited {
                retry_after_secs: 3_600
            }
        );
        assert_eq!(
            (e.status(), e.code(), e.audit_outcome()),
            (429, "rate_limited", "prefix_limited")
        );
        assert_eq!(e.headers(), [("retry-after", "3600".to_string())]);
        assert_eq!(w.sent(), 3);
        // Another range is not held up.
        block_on(svc.send_app_code(&a, &request(Channel::Sms, "+447700901001"))).unwrap();
        // A plain cap is told apart in the trail.
        let outcomes: Vec<_> = w
            .audit
            .take()
            .into_iter()
            .filter(|e| e.kind == EventKind::CodeSent)
            .map(|e| e.outcome)
            .collect();
        assert_eq!(outcomes, ["sent", "sent", "sent", "prefix_limited", "sent"]);
        // With the cap off, the range goes on.
        let off = World::new(&[("SMS_MAX_PER_PREFIX_PER_HOUR", "0")]);
        let (_, k) = off.api_key(&["sms"]);
        for i in 0..5 {
            block_on(
                off.svc()
                    .send_app_code(&k, &request(Channel::Sms, &format!("+44770090000{i}"))),
            )
            .unwrap();
        }
    }

    #[test]
    fn sms_codes_carry_the_autofill_lines_of_their_key() {
        let w = World::new(&[]);
        let options = KeyOptions {
            sms_domain: Some(SmsDomain::parse("shop.example.com").unwrap()),
            android_app_hash: Some(AppHash::parse("FA+9qCX9VSu").unwrap()),
            turnstile_required: false,
        };
        let (_, secret) = w.api_key_with(&["sms", "whatsapp"], options);
        let svc = w.svc();
        block_on(svc.send_app_code(&secret, &request(Channel::Sms, "+447700900123"))).unwrap();
        let body = w.outbox.texts.borrow().last().unwrap().body.clone();
        let code = w.last_text_code();
        let lines: Vec<&str> = body.lines().collect();
        assert_eq!(
            lines[lines.len() - 2..],
            [
                "FA+9qCX9VSu".to_string(),
                format!("@shop.example.com #{}", code.expose())
            ]
        );
        block_on(svc.send_app_code(&secret, &request(Channel::Whatsapp, "+447700900124"))).unwrap();
        let body = w.outbox.texts.borrow().last().unwrap().body.clone();
        assert!(!body.contains('@') && !body.contains("FA+9"), "{body}");
    }

    #[test]
    fn app_codes_speak_the_locale_asked_for() {
        let w = World::new(&[]);
        let (_, secret) = w.api_key(&["email", "sms"]);
        let svc = w.svc();
        let mut req = request(Channel::Email, "ann@example.com");
        req.language = "fr".into();
        block_on(svc.send_app_code(&secret, &req)).unwrap();
        let mail = w.last_mail();
        let code = w.last_code();
        assert!(mail.subject.starts_with(code.expose()), "{}", mail.subject);
        assert!(mail.text.contains("5 minutes"), "{}", mail.text);
        assert!(mail.html.contains("lang=\"fr\""));
        let mut sms = request(Channel::Sms, "+447700900123");
        sms.language = "de".into();
        block_on(svc.send_app_code(&secret, &sms)).unwrap();
        let body = w.outbox.texts.borrow().last().unwrap().body.clone();
        assert!(body.contains("5 Minuten"), "{body}");
        // A language without built-in words falls back to English.
        let mut req = request(Channel::Email, "bob@example.com");
        req.language = "zh".into();
        block_on(svc.send_app_code(&secret, &req)).unwrap();
        assert!(w.last_mail().text.contains("5 minutes and works once"));
    }

    #[test]
    fn a_key_that_requires_turnstile_sends_only_with_a_token_siteverify_accepts() {
        let options = KeyOptions {
            turnstile_required: true,
            ..KeyOptions::default()
        };
        // Without the secret, the key fails closed and says what is missing.
        let w = World::new(&[]);
        let (_, secret) = w.api_key_with(&["email"], options.clone());
        let req = request(Channel::Email, "ann@example.com");
        let e = block_on(w.svc().send_app_code(&secret, &req)).unwrap_err();
        assert!(
            matches!(&e, ApiError::Unavailable(d) if d.contains("TURNSTILE_SECRET")),
            "{e:?}"
        );
        assert_eq!(w.sent(), 0);

        let w = World::new(&[("TURNSTILE_SECRET", "0x4AAAAAAA-secret")]);
        let (_, secret) = w.api_key_with(&["email"], options);
        let svc = w.svc();
        w.humans.valid.borrow_mut().push("good-token".into());
        let with = |token: Option<&str>| AppCode {
            turnstile_token: token.map(str::to_owned),
            ..req.clone()
        };
        for token in [None, Some(""), Some("bad-token")] {
            assert_eq!(
                block_on(svc.send_app_code(&secret, &with(token))).unwrap_err(),
                ApiError::TurnstileFailed
            );
        }
        assert_eq!(w.sent(), 0);
        assert!(w.store.codes.borrow().is_empty() && w.store.counts.borrow().is_empty());
        block_on(svc.send_app_code(&secret, &with(Some("good-token")))).unwrap();
        assert_eq!(w.sent(), 1);
        w.advance(3_600);
        // A token works once.
        assert_eq!(
            block_on(svc.send_app_code(&secret, &with(Some("good-token")))).unwrap_err(),
            ApiError::TurnstileFailed
        );
        // Siteverify down: 503, nothing sent.
        w.humans.down.set(true);
        let e = block_on(svc.send_app_code(&secret, &with(Some("good-token")))).unwrap_err();
        assert_eq!(e.status(), 503);
        assert_eq!(w.sent(), 1);
        // A key that does not ask for Turnstile never calls siteverify.
        let asked = w.humans.asked.borrow().len();
        let (_, plain) = w.api_key(&["email"]);
        block_on(svc.send_app_code(&plain, &request(Channel::Email, "bob@example.com"))).unwrap();
        assert_eq!(w.humans.asked.borrow().len(), asked);
        let outcomes: Vec<_> = w
            .audit
            .take()
            .into_iter()
            .filter(|e| e.kind == EventKind::CodeSent)
            .map(|e| e.outcome)
            .collect();
        assert_eq!(
            outcomes,
            [
                "turnstile_failed",
                "turnstile_failed",
                "turnstile_failed",
                "sent",
                "turnstile_failed",
                "unavailable",
                "sent"
            ]
        );
    }

    #[test]
    fn the_account_flows_ask_turnstile_only_with_its_secret() {
        let off = World::new(&[]);
        block_on(off.svc().check_human_sender(None)).unwrap();
        let on = World::new(&[("TURNSTILE_SECRET", "0x4AAAAAAA-secret")]);
        assert_eq!(
            block_on(on.svc().check_human_sender(None)).unwrap_err(),
            ApiError::TurnstileFailed
        );
        on.humans.valid.borrow_mut().push("t".into());
        block_on(on.svc().check_human_sender(Some("t"))).unwrap();
    }

    #[test]
    fn a_whatsapp_refusal_falls_back_to_sms_when_asked() {
        let w = World::new(&[]);
        let (_, secret) = w.api_key(&["whatsapp", "sms"]);
        let svc = w.svc();
        let req = AppCode {
            fallback_sms: true,
            ..request(Channel::Whatsapp, "+447700900123")
        };
        w.outbox.text_failures.set(1);
        let sent = block_on(svc.send_app_code(&secret, &req)).unwrap();
        assert_eq!(sent.channel, Channel::Sms);
        let text = w.outbox.texts.borrow().last().unwrap().clone();
        assert_eq!(text.channel, TextChannel::Sms);
        // Verified under the channel the app asked for.
        let code = w.last_text_code();
        block_on(svc.verify_app_code(&secret, &req.to, &req.purpose, &code)).unwrap();
        let sends: Vec<_> = w
            .audit
            .take()
            .into_iter()
            .filter(|e| e.kind == EventKind::CodeSent)
            .map(|e| (e.channel, e.outcome, e.send_id == Some(sent.id.clone())))
            .collect();
        assert_eq!(
            sends,
            [
                (Some(Channel::Whatsapp), "whatsapp_delivery_failed", true),
                (Some(Channel::Sms), "sent", true)
            ]
        );
        // Without `fallback`, a refusal is the answer; with both refused, SMS's.
        w.advance(3_600);
        w.outbox.text_failures.set(1);
        let plain = request(Channel::Whatsapp, "+447700900124");
        assert_eq!(
            block_on(svc.send_app_code(&secret, &plain)).unwrap_err(),
            ApiError::TextRefused(Channel::Whatsapp)
        );
        w.outbox.text_failures.set(2);
        let both = AppCode {
            fallback_sms: true,
            ..request(Channel::Whatsapp, "+447700900125")
        };
        assert_eq!(
            block_on(svc.send_app_code(&secret, &both)).unwrap_err(),
            ApiError::TextRefused(Channel::Sms)
        );
        // No answer from WhatsApp is no refusal: it may still arrive, so
        // no SMS follows.
        let texts = w.outbox.texts.borrow().len();
        w.outbox.fail_next.set(true);
        let unanswered = AppCode {
            fallback_sms: true,
            ..request(Channel::Whatsapp, "+447700900126")
        };
        assert_eq!(
            block_on(svc.send_app_code(&secret, &unanswered)).unwrap_err(),
            ApiError::TextDeliveryFailed(Channel::Whatsapp)
        );
        assert_eq!(w.outbox.texts.borrow().len(), texts);
        // A key without SMS cannot ask for it.
        let (_, whatsapp_only) = w.api_key(&["whatsapp"]);
        assert_eq!(
            block_on(svc.send_app_code(&whatsapp_only, &req)).unwrap_err(),
            ApiError::ChannelNotAllowed(Channel::Sms)
        );
    }

    #[test]
    fn a_fixed_code_must_be_as_hard_to_guess_as_an_issued_one() {
        let w = World::new(&[("ENVIRONMENT", "development"), ("MAIL_PROVIDER", "log")]);
        let (key, _) = w.api_key(&["email"]);
        // 10^4 codes for 5 attempts: 1 in 2,000, past the 1 in 10,000 allowed.
        let e = add(&w, &key, Channel::Email, "a@example.com", "1234").unwrap_err();
        assert!(
            matches!(&e, ApiError::InvalidRequest(d) if d.contains("`code`")),
            "{e:?}"
        );
        add(&w, &key, Channel::Email, "a@example.com", "123456").unwrap();
        add(&w, &key, Channel::Email, "b@example.com", "AB12").unwrap();
    }

    #[test]
    fn a_new_fixed_code_or_a_removal_mid_send_ends_the_old_one() {
        let w = World::new(&[("ENVIRONMENT", "development"), ("MAIL_PROVIDER", "log")]);
        let (key, secret) = w.api_key(&["sms"]);
        let svc = w.svc();
        let req = request(Channel::Sms, "+15555550100");
        add(&w, &key, Channel::Sms, "+15555550100", "111111").unwrap();
        block_on(svc.send_app_code(&secret, &req)).unwrap();
        // A new code: the pending one of the old code stops working.
        add(&w, &key, Channel::Sms, "+15555550100", "222222").unwrap();
        assert_eq!(
            block_on(svc.verify_app_code(&secret, &req.to, &req.purpose, &code("111111")))
                .unwrap_err(),
            ApiError::InvalidCode
        );
        // A removal that lands between the send's read and its filing:
        // nothing is filed for the removed code.
        w.store.gate.hold_after("sending_key");
        let mut send = std::pin::pin!(svc.send_app_code(&secret, &req));
        assert!(poll_once(send.as_mut()).is_pending() && w.store.gate.is_holding());
        let to = Recipient::parse(Channel::Sms, "+15555550100").unwrap();
        block_on(svc.remove_test_recipient(ADMIN, &key.id, &to)).unwrap();
        w.store.gate.release();
        assert!(matches!(block_on(send), Err(ApiError::RateLimited { .. })));
        assert_eq!(
            block_on(svc.verify_app_code(&secret, &req.to, &req.purpose, &code("222222")))
                .unwrap_err(),
            ApiError::InvalidCode
        );
    }

    #[test]
    fn test_sends_count_against_the_address_caps() {
        let w = World::new(&[("ENVIRONMENT", "development"), ("MAIL_PROVIDER", "log")]);
        let (key, secret) = w.api_key(&["sms"]);
        add(&w, &key, Channel::Sms, "+15555550100", "123456").unwrap();
        let svc = w.svc();
        let req = request(Channel::Sms, "+15555550100");
        for _ in 0..5 {
            block_on(svc.send_app_code(&secret, &req)).unwrap();
        }
        // MAX_SENDS_PER_HOUR (5): the hour's guesses at the fixed code are bounded.
        assert!(matches!(
            block_on(svc.send_app_code(&secret, &req)),
            Err(ApiError::RateLimited { .. })
        ));
    }
}
