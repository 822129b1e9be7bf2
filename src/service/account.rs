//! The service's own accounts: register, verify, sign in by password or by
//! code, reset the password, sessions.

use super::{random_id, Deferred, Issue, Service};
use crate::audit::{outcome, Event, EventKind};
use crate::channel::Channel;
use crate::clock::{rfc3339, Clock};
use crate::code::{Code, CodeKey, CodeSpec, Pepper, CORE_SCOPE};
use crate::email::Email;
use crate::error::{ApiError, ApiResult};
use crate::limits::{Counters, SendDecision};
use crate::mail::{account_exists_message, code_message, Mailer, Message};
use crate::password::{Hasher, Password, Verdict};
use crate::purpose::Purpose;
use crate::session::{token_hash, Token};
use crate::store::{Effect, Store, User};
use crate::template::{Kind, Values};
use crate::text::Texter;

#[derive(Debug)]
pub struct LoginSession {
    pub token: Token,
    pub expires_at: String,
}

/// What `register` and `login` mail straight away.
#[derive(Clone, Copy)]
enum Outgoing {
    VerificationCode,
    /// Registering an address that already has an account: no code.
    AccountExistsNotice,
}

fn account_key(purpose: Purpose, email: &Email) -> CodeKey<'_> {
    CodeKey {
        scope: CORE_SCOPE,
        channel: Channel::Email,
        purpose: purpose.as_str(),
        address: email.as_str(),
    }
}

impl<S: Store, K: Counters, M: Mailer, T: Texter, C: Clock> Service<'_, S, K, M, T, C> {
    fn hasher(&self) -> Hasher {
        Hasher::new(self.cfg.hash_params)
    }

    fn ttl(&self, purpose: Purpose) -> u64 {
        match purpose {
            Purpose::VerifyEmail | Purpose::Login => self.cfg.otp_ttl_secs,
            Purpose::ResetPassword => self.cfg.reset_otp_ttl_secs,
        }
    }

    pub async fn register(&self, email: &Email, password: &Password) -> ApiResult<()> {
        let pepper = self.cfg.pepper()?;
        self.mailer.ready()?;
        // Hashed before we know whether the account exists: both branches cost the same.
        let hash = self.hasher().hash(password)?;
        let now = self.clock.now();
        let created = self
            .store
            .upsert_unverified_user(&random_id()?, email, &hash, now)
            .await?;
        let outgoing = match created {
            true => Outgoing::VerificationCode,
            false => Outgoing::AccountExistsNotice,
        };
        self.send_within_limits(pepper, email, outgoing, now).await
    }

    pub async fn verify_email(&self, email: &Email, code: &Code) -> ApiResult<()> {
        let key = account_key(Purpose::VerifyEmail, email);
        self.redeem(&key, code, || Ok(Effect::MarkVerified { email }))
            .await
    }

    /// `/v1/resend`: within the cooldown, 429 whether or not the account exists.
    pub async fn resend(&self, email: &Email, purpose: Purpose) -> ApiResult<Deferred> {
        self.request_code(email, purpose, true).await
    }

    /// `/v1/password-reset`: always 202; within the limits nothing is sent.
    pub async fn password_reset(&self, email: &Email) -> ApiResult<Deferred> {
        self.request_code(email, Purpose::ResetPassword, false)
            .await
    }

    /// `/v1/login/code`: always 202; only an existing account gets the code.
    pub async fn login_code(&self, email: &Email) -> ApiResult<Deferred> {
        self.request_code(email, Purpose::Login, false).await
    }

    pub async fn confirm_password_reset(
        &self,
        email: &Email,
        code: &Code,
        new_password: &Password,
    ) -> ApiResult<()> {
        let key = account_key(Purpose::ResetPassword, email);
        self.redeem(&key, code, || {
            let password_hash = self.hasher().hash(new_password)?;
            Ok(Effect::ResetPassword {
                email,
                password_hash,
            })
        })
        .await?;
        self.audit_account(
            EventKind::PasswordReset,
            "ok",
            email,
            Purpose::ResetPassword.as_str(),
        );
        Ok(())
    }

    /// An account event; `purpose` says which way in, for logins.
    fn audit_account(&self, kind: EventKind, outcome: &'static str, email: &Email, purpose: &str) {
        self.audit.record(Event {
            scope: Some(CORE_SCOPE.to_owned()),
            purpose: Some(purpose.to_owned()),
            channel: Some(Channel::Email),
            address_hash: self.address_hash(email.as_str()),
            ..Event::new(kind, outcome)
        });
    }

    fn audit_login<R>(&self, email: &Email, way: &str, result: &ApiResult<R>) {
        let kind = match result {
            Ok(_) => EventKind::LoginOk,
            Err(_) => EventKind::LoginFailed,
        };
        self.audit_account(kind, outcome(result), email, way);
    }

    pub async fn login(&self, email: &Email, password: &Password) -> ApiResult<LoginSession> {
        let result = self.password_login(email, password).await;
        self.audit_login(email, "password", &result);
        result
    }

    async fn password_login(&self, email: &Email, password: &Password) -> ApiResult<LoginSession> {
        let pepper = self.cfg.pepper()?;
        let hasher = self.hasher();
        let Some(user) = self.store.user_by_email(email).await? else {
            hasher.burn(password)?;
            return Err(ApiError::InvalidCredentials);
        };
        let Verdict::Match { needs_rehash } = hasher.verify(password, &user.password_hash)? else {
            return Err(ApiError::InvalidCredentials);
        };
        let now = self.clock.now();
        if needs_rehash {
            let fresh = hasher.hash(password)?;
            self.store.set_password_hash(&user.id, &fresh, now).await?;
        }
        if !user.verified {
            self.mailer.ready()?;
            self.send_within_limits(pepper, email, Outgoing::VerificationCode, now)
                .await?;
            return Err(ApiError::EmailNotVerified);
        }
        let (session, token_hash, expires_at) = self.new_session(now)?;
        self.store
            .create_session(&token_hash, &user.id, now, expires_at)
            .await?;
        Ok(session)
    }

    /// `/v1/login/code/verify`: the session is created in the same
    /// transaction that consumes the code.
    pub async fn login_with_code(&self, email: &Email, code: &Code) -> ApiResult<LoginSession> {
        let result = self.code_login(email, code).await;
        self.audit_login(email, Purpose::Login.as_str(), &result);
        result
    }

    async fn code_login(&self, email: &Email, code: &Code) -> ApiResult<LoginSession> {
        // Looked up for known and unknown addresses alike. An unknown address
        // has a pending code too, which nobody was sent.
        let user = self.store.user_by_email(email).await?;
        let (session, token_hash, expires_at) = self.new_session(self.clock.now())?;
        let key = account_key(Purpose::Login, email);
        self.redeem(&key, code, || match &user {
            Some(u) => Ok(Effect::SignIn {
                user_id: &u.id,
                token_hash,
                expires_at,
            }),
            None => Err(ApiError::InvalidCode),
        })
        .await?;
        Ok(session)
    }

    fn new_session(&self, now: u64) -> ApiResult<(LoginSession, String, u64)> {
        let token = Token::generate()?;
        let hash = token_hash(token.expose());
        let expires_at = now + self.cfg.session_ttl_secs;
        let session = LoginSession {
            token,
            expires_at: rfc3339(expires_at),
        };
        Ok((session, hash, expires_at))
    }

    pub async fn me(&self, token: Option<&str>) -> ApiResult<User> {
        let token = token.ok_or(ApiError::Unauthorized)?;
        self.store
            .session_user(&token_hash(token), self.clock.now())
            .await?
            .ok_or(ApiError::Unauthorized)
    }

    pub async fn logout(&self, token: Option<&str>) -> ApiResult<()> {
        let token = token.ok_or(ApiError::Unauthorized)?;
        let email = self
            .store
            .delete_session(&token_hash(token))
            .await?
            .ok_or(ApiError::Unauthorized)?;
        self.audit.record(Event {
            scope: Some(CORE_SCOPE.to_owned()),
            address_hash: self.address_hash(&email),
            ..Event::new(EventKind::Logout, "ok")
        });
        Ok(())
    }

    /// Shared by resend, password reset and code login. Known and unknown
    /// addresses go through the same limiter reads and writes and the same
    /// D1 write (an unknown address gets a code nobody is told), so only
    /// the deferred mail differs, and it is sent after the answer.
    async fn request_code(
        &self,
        email: &Email,
        purpose: Purpose,
        cooldown_is_error: bool,
    ) -> ApiResult<Deferred> {
        let pepper = self.cfg.pepper()?;
        self.mailer.ready()?;
        let now = self.clock.now();
        let key = account_key(purpose, email);
        let (tag, decision) = self.check_send(pepper, &key, now).await?;
        let permit = match decision {
            SendDecision::Allowed(permit) => permit,
            SendDecision::Cooldown { retry_after_secs }
            | SendDecision::HourlyCap { retry_after_secs } => {
                self.audit_code(EventKind::CodeSent, "rate_limited", &key);
                return match cooldown_is_error {
                    true => Err(ApiError::RateLimited { retry_after_secs }),
                    false => Ok(None),
                };
            }
        };
        let user = self.store.user_by_email(email).await?;
        let (wanted, outcome) = match (purpose, &user) {
            (Purpose::VerifyEmail, Some(u)) if u.verified => (false, "already_verified"),
            (_, Some(_)) => (true, "queued"),
            (_, None) => (false, "no_account"),
        };
        let message = self.issue_account_code(pepper, purpose, email, now).await?;
        self.record_send(&tag, &key, now, permit).await?;
        self.audit_code(EventKind::CodeSent, outcome, &key);
        Ok(wanted.then_some(message))
    }

    /// Mails now, within the send limits of the address's verification
    /// purpose; outside them it sends nothing, and a pending code stays valid.
    /// A delivery failure leaves the limits unrecorded, so a retry works.
    async fn send_within_limits(
        &self,
        pepper: &Pepper,
        email: &Email,
        outgoing: Outgoing,
        now: u64,
    ) -> ApiResult<()> {
        let purpose = Purpose::VerifyEmail;
        let key = account_key(purpose, email);
        let (tag, SendDecision::Allowed(permit)) = self.check_send(pepper, &key, now).await? else {
            self.audit_code(EventKind::CodeSent, "rate_limited", &key);
            return Ok(());
        };
        let message = match outgoing {
            Outgoing::VerificationCode => {
                self.issue_account_code(pepper, purpose, email, now).await?
            }
            Outgoing::AccountExistsNotice => {
                account_exists_message(self.cfg, email.as_str(), format!("notice-{}", random_id()?))
            }
        };
        let sent = self.mailer.send(&message).await;
        let outcome = match (&sent, outgoing) {
            (Ok(()), Outgoing::VerificationCode) => "sent",
            (Ok(()), Outgoing::AccountExistsNotice) => "account_exists_notice",
            (Err(e), _) => e.code(),
        };
        self.audit_code(EventKind::CodeSent, outcome, &key);
        sent?;
        self.record_send(&tag, &key, now, permit).await
    }

    async fn issue_account_code(
        &self,
        pepper: &Pepper,
        purpose: Purpose,
        email: &Email,
        now: u64,
    ) -> ApiResult<Message> {
        let ttl_secs = self.ttl(purpose);
        let issue = Issue {
            key: account_key(purpose, email),
            spec: CodeSpec::digits(self.cfg.otp_length),
            ttl_secs,
        };
        let issued = self.issue_code(pepper, &issue, now).await?;
        let values = Values {
            code: issued.code.expose(),
            ttl_secs,
            app_name: &self.cfg.app_name,
        };
        let rendered = self.cfg.templates.mail(Kind::Account(purpose), &values);
        Ok(code_message(
            email.as_str(),
            rendered,
            format!("code-{}", issued.id),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::testkit::{wrong, World};
    use crate::store::Store;
    use pollster::block_on;

    fn email(s: &str) -> Email {
        Email::parse(s).unwrap()
    }

    fn pw(s: &str) -> Password {
        Password::parse(s, 8, "password").unwrap()
    }

    #[test]
    fn register_verify_login_me_logout() {
        let w = World::new(&[]);
        let (ann, svc) = (email("ann@example.com"), w.svc());
        block_on(async {
            svc.register(&ann, &pw("correct horse")).await.unwrap();
            assert_eq!(
                svc.login(&ann, &pw("correct horse")).await.unwrap_err(),
                ApiError::EmailNotVerified
            );
            svc.verify_email(&ann, &w.last_code()).await.unwrap();
            let session = svc.login(&ann, &pw("correct horse")).await.unwrap();
            assert_eq!(
                svc.me(Some(session.token.expose())).await.unwrap().email,
                "ann@example.com"
            );
            svc.logout(Some(session.token.expose())).await.unwrap();
            assert_eq!(
                svc.me(Some(session.token.expose())).await.unwrap_err(),
                ApiError::Unauthorized
            );
        });
    }

    #[test]
    fn every_security_event_lands_in_the_audit_trail() {
        let w = World::new(&[("RESEND_COOLDOWN_SECONDS", "0"), ("OTP_MAX_ATTEMPTS", "2")]);
        let (ann, svc) = (email("ann@example.com"), w.svc());
        block_on(async {
            svc.register(&ann, &pw("correct horse")).await.unwrap();
            let code = w.last_code();
            let _ = svc.verify_email(&ann, &wrong(&code)).await;
            svc.verify_email(&ann, &code).await.unwrap();
            let _ = svc.verify_email(&ann, &code).await;
            assert_eq!(
                w.events(),
                [
                    ("code_sent", "sent"),
                    ("code_failed", "invalid_code"),
                    ("code_verified", "ok"),
                    ("code_failed", "no_pending_code"),
                ]
            );
            let _ = svc.login(&ann, &pw("wrong horse")).await;
            let session = svc.login(&ann, &pw("correct horse")).await.unwrap();
            svc.logout(Some(session.token.expose())).await.unwrap();
            assert_eq!(
                w.events(),
                [
                    ("login_failed", "invalid_credentials"),
                    ("login_ok", "ok"),
                    ("logout", "ok")
                ]
            );
            w.keep(svc.password_reset(&ann).await.unwrap());
            let code = w.last_code();
            let _ = svc
                .confirm_password_reset(&ann, &wrong(&code), &pw("new horse 1"))
                .await;
            let _ = svc
                .confirm_password_reset(&ann, &wrong(&code), &pw("new horse 1"))
                .await;
            assert!(svc
                .password_reset(&email("nobody@example.com"))
                .await
                .unwrap()
                .is_none());
            assert_eq!(
                w.events(),
                [
                    ("code_sent", "queued"),
                    ("code_failed", "invalid_code"),
                    ("code_burned", "too_many_attempts"),
                    ("code_sent", "no_account"),
                ]
            );
        });
    }

    #[test]
    fn audit_events_name_addresses_only_by_a_keyed_hash() {
        let w = World::new(&[]);
        let (ann, svc) = (email("ann@example.com"), w.svc());
        block_on(async {
            svc.register(&ann, &pw("correct horse")).await.unwrap();
            svc.verify_email(&ann, &w.last_code()).await.unwrap();
            let events = w.audit.take();
            let hash = events[0].address_hash.clone().unwrap();
            assert_eq!(hash.len(), 32);
            assert!(!hash.contains("ann"));
            assert_eq!(events[1].address_hash.as_deref(), Some(hash.as_str()));
            assert_eq!(events[1].purpose.as_deref(), Some("verify_email"));
            let other = World::new(&[("OTP_PEPPER", "another-pepper-0123456789abcdef0123")]);
            other
                .svc()
                .register(&ann, &pw("correct horse"))
                .await
                .unwrap();
            assert_ne!(
                other.audit.take()[0].address_hash.as_deref(),
                Some(hash.as_str())
            );
        });
    }

    #[test]
    fn register_of_a_verified_address_sends_a_notice_and_keeps_the_password() {
        let w = World::new(&[("RESEND_COOLDOWN_SECONDS", "0")]);
        let (ann, svc) = (email("ann@example.com"), w.svc());
        block_on(async {
            svc.register(&ann, &pw("correct horse")).await.unwrap();
            svc.verify_email(&ann, &w.last_code()).await.unwrap();
            svc.register(&ann, &pw("attacker pw")).await.unwrap();
            assert!(w.last_mail().subject.starts_with("Your "));
            assert_eq!(
                svc.login(&ann, &pw("attacker pw")).await.unwrap_err(),
                ApiError::InvalidCredentials
            );
            svc.login(&ann, &pw("correct horse")).await.unwrap();
        });
    }

    #[test]
    fn unknown_and_wrong_password_logins_are_the_same_error() {
        let w = World::new(&[]);
        let svc = w.svc();
        block_on(async {
            svc.register(&email("ann@example.com"), &pw("correct horse"))
                .await
                .unwrap();
            svc.verify_email(&email("ann@example.com"), &w.last_code())
                .await
                .unwrap();
            let a = svc
                .login(&email("ann@example.com"), &pw("wrong horse"))
                .await
                .unwrap_err();
            let b = svc
                .login(&email("zed@example.com"), &pw("wrong horse"))
                .await
                .unwrap_err();
            assert_eq!(a, b);
        });
    }

    #[test]
    fn resend_for_unknown_addresses_does_the_same_work_but_mails_nothing() {
        let w = World::new(&[]);
        let svc = w.svc();
        block_on(async {
            let deferred = svc
                .resend(&email("ghost@example.com"), Purpose::VerifyEmail)
                .await
                .unwrap();
            assert!(deferred.is_none());
            assert_eq!(
                w.store.codes.borrow().len(),
                1,
                "a code is stored for unknown addresses too"
            );
            let again = svc
                .resend(&email("ghost@example.com"), Purpose::VerifyEmail)
                .await
                .unwrap_err();
            assert!(matches!(
                again,
                ApiError::RateLimited {
                    retry_after_secs: 60
                }
            ));
        });
    }

    #[test]
    fn guesses_still_in_flight_count_against_the_budget() {
        let w = World::new(&[]);
        let (ann, svc) = (email("ann@example.com"), w.svc());
        block_on(async {
            svc.register(&ann, &pw("correct horse")).await.unwrap();
            let code = w.last_code();
            let key = account_key(Purpose::VerifyEmail, &ann);
            // Five concurrent guesses have each claimed an attempt and not
            // yet compared: the right code, arriving next, is refused.
            for _ in 0..5 {
                (&w.store).claim_attempt(&key, 5).await.unwrap();
            }
            assert_eq!(
                svc.verify_email(&ann, &code).await.unwrap_err(),
                ApiError::TooManyAttempts
            );
        });
    }

    #[test]
    fn attempts_burn_the_code_and_a_reissue_keeps_the_count() {
        let w = World::new(&[("RESEND_COOLDOWN_SECONDS", "0")]);
        let (ann, svc) = (email("ann@example.com"), w.svc());
        block_on(async {
            svc.register(&ann, &pw("correct horse")).await.unwrap();
            let code = w.last_code();
            for _ in 0..3 {
                assert_eq!(
                    svc.verify_email(&ann, &wrong(&code)).await.unwrap_err(),
                    ApiError::InvalidCode
                );
            }
            w.keep(svc.resend(&ann, Purpose::VerifyEmail).await.unwrap());
            let code = w.last_code();
            assert_eq!(
                svc.verify_email(&ann, &wrong(&code)).await.unwrap_err(),
                ApiError::InvalidCode
            );
            assert_eq!(
                svc.verify_email(&ann, &wrong(&code)).await.unwrap_err(),
                ApiError::TooManyAttempts
            );
            assert_eq!(
                svc.verify_email(&ann, &code).await.unwrap_err(),
                ApiError::TooManyAttempts
            );
            // Once the first code's lifetime has passed, a new code starts afresh.
            w.advance(601);
            w.keep(svc.resend(&ann, Purpose::VerifyEmail).await.unwrap());
            svc.verify_email(&ann, &w.last_code()).await.unwrap();
        });
    }

    #[test]
    fn expired_codes_are_refused() {
        let w = World::new(&[]);
        let (ann, svc) = (email("ann@example.com"), w.svc());
        block_on(async {
            svc.register(&ann, &pw("correct horse")).await.unwrap();
            w.advance(600);
            assert_eq!(
                svc.verify_email(&ann, &w.last_code()).await.unwrap_err(),
                ApiError::ExpiredCode
            );
        });
    }

    #[test]
    fn cooldown_suppresses_the_mail_of_register_but_keeps_the_pending_code() {
        let w = World::new(&[]);
        let (ann, svc) = (email("ann@example.com"), w.svc());
        block_on(async {
            svc.register(&ann, &pw("correct horse")).await.unwrap();
            let code = w.last_code();
            svc.register(&ann, &pw("correct horse")).await.unwrap();
            assert_eq!(w.mails(), 1);
            svc.verify_email(&ann, &code).await.unwrap();
        });
    }

    #[test]
    fn password_reset_revokes_sessions() {
        let w = World::new(&[]);
        let (ann, svc) = (email("ann@example.com"), w.svc());
        block_on(async {
            svc.register(&ann, &pw("correct horse")).await.unwrap();
            svc.verify_email(&ann, &w.last_code()).await.unwrap();
            let session = svc.login(&ann, &pw("correct horse")).await.unwrap();
            w.keep(svc.password_reset(&ann).await.unwrap());
            svc.confirm_password_reset(&ann, &w.last_code(), &pw("new horse!"))
                .await
                .unwrap();
            assert_eq!(
                svc.me(Some(session.token.expose())).await.unwrap_err(),
                ApiError::Unauthorized
            );
            svc.login(&ann, &pw("new horse!")).await.unwrap();
        });
    }

    #[test]
    fn code_login_signs_in_verifies_and_is_single_use() {
        let w = World::new(&[("RESEND_COOLDOWN_SECONDS", "0")]);
        let (ann, svc) = (email("ann@example.com"), w.svc());
        block_on(async {
            svc.register(&ann, &pw("correct horse")).await.unwrap();
            let verification = w.last_code();
            w.keep(svc.login_code(&ann).await.unwrap());
            let code = w.last_code();
            assert!(w.last_mail().subject.contains("sign-in code"));
            // A verification code is not a login code, even while both are pending.
            if verification != code {
                assert_eq!(
                    svc.login_with_code(&ann, &verification).await.unwrap_err(),
                    ApiError::InvalidCode
                );
            }
            let session = svc.login_with_code(&ann, &code).await.unwrap();
            let me = svc.me(Some(session.token.expose())).await.unwrap();
            assert!(me.verified, "a code login proves ownership of the address");
            assert_eq!(
                svc.login_with_code(&ann, &code).await.unwrap_err(),
                ApiError::InvalidCode
            );
        });
    }

    #[test]
    fn code_login_for_unknown_addresses_stores_a_code_but_mails_nothing() {
        let w = World::new(&[]);
        let svc = w.svc();
        block_on(async {
            let ghost = email("ghost@example.com");
            assert!(svc.login_code(&ghost).await.unwrap().is_none());
            assert_eq!(w.store.codes.borrow().len(), 1);
            // Within the cooldown: the same quiet answer, nothing new.
            assert!(svc.login_code(&ghost).await.unwrap().is_none());
            assert_eq!(
                svc.login_with_code(&ghost, &Code::parse("123456", 6).unwrap())
                    .await
                    .unwrap_err(),
                ApiError::InvalidCode
            );
        });
    }
}
