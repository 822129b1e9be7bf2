//! The service's own accounts: register, verify, sign in by password or by
//! code, reset the password, sessions.
//!
//! Account pre-hijacking (registering someone else's address first) is
//! closed in three places: a registration never replaces the password of
//! one whose code is still live (`Store::register`), a code sign-in to an
//! unverified account drops the password set before it (`Effect::SignIn`),
//! and a password reset replaces it.

use super::second_factor::TICKET_TTL_SECS;
use super::{new_code, random_id, Deferred, Issue, Issued, Proof, Renewal, Service};
use crate::domain::audit::{outcome, Event, EventKind};
use crate::domain::channel::Channel;
use crate::domain::code::{Code, CodeKey, CodeSpec, Pepper, CORE_SCOPE};
use crate::domain::email::Email;
use crate::domain::password::{Hasher, Password, Verdict};
use crate::domain::purpose::Purpose;
use crate::domain::registrant::{is_registrant, registrant_token, PasswordProof};
use crate::domain::session::{token_hash, Audience, Presented, Token};
use crate::error::{ApiError, ApiResult, Redacted};
use crate::ports::clock::{rfc3339, Clock};
use crate::ports::limits::{lane, Counters};
use crate::ports::store::{
    Admitted, Effect, KeptPassword, NewCode, NewSession, NewTicket, PasswordAttempt, Registered,
    Registration, RenewedCode, Store, User,
};
use crate::providers::mail::{code_message, notice_message, Mailer, Message, Notice};
use crate::providers::template::{Kind, Values};
use crate::providers::text::Texter;

#[derive(Debug)]
pub struct LoginSession {
    pub token: Token,
    pub expires_at: String,
    /// Until the store said which: the ticket that stands for the session
    /// if the account has a second factor (`Service::admitted`).
    pub(super) ticket: Option<Token>,
}

/// What a verification in the pages did.
#[derive(Debug)]
pub enum Verified {
    /// The browser that signed up proved the password the account keeps:
    /// it is signed in.
    SignedIn(LoginSession),
    /// The password is kept, but this browser did not prove it: sign in.
    PasswordKept,
    /// The address is verified with no password: a reset sets one.
    PasswordDropped,
}

fn account_key(purpose: Purpose, email: &Email) -> CodeKey<'_> {
    CodeKey {
        scope: CORE_SCOPE,
        channel: Channel::Email,
        purpose: purpose.as_str(),
        address: email.as_str(),
    }
}

/// Picks the decoy hash of a password login: fixed per address, so that
/// repeated tries at one unknown address all cost the same.
fn decoy_seed(pepper: &Pepper, email: &Email) -> u32 {
    let tag = pepper.address_tag(email.as_str());
    u32::from_str_radix(&tag[..8], 16).unwrap_or(0)
}

impl<S: Store, K: Counters, M: Mailer, T: Texter, C: Clock> Service<'_, S, K, M, T, C> {
    fn hasher(&self) -> Hasher {
        Hasher::new(self.cfg.hash_params)
    }

    fn account_issue<'e>(&self, purpose: Purpose, email: &'e Email) -> Issue<'e> {
        Issue {
            key: account_key(purpose, email),
            spec: CodeSpec::digits(self.cfg.otp_length),
            ttl_secs: match purpose {
                Purpose::VerifyEmail | Purpose::Login => self.cfg.otp_ttl_secs,
                Purpose::ResetPassword => self.cfg.reset_otp_ttl_secs,
            },
            bound_to: None,
        }
    }

    /// `/v1/register`: always 202. Unknown, unverified and verified
    /// addresses cost the same: one hash, one cooldown read, one D1
    /// transaction, one mail (a code or a notice) and one cooldown write.
    /// Returns this sign-up's registrant token (`domain::registrant`), made
    /// alike whatever became of it.
    pub async fn register(&self, email: &Email, password: &Password) -> ApiResult<String> {
        let pepper = self.cfg.pepper()?;
        self.mailer.ready()?;
        let hash = self.hasher().hash(password)?;
        let registrant = registrant_token(pepper, email, &hash);
        let now = self.clock.now();
        // The code verifies this registration's password, and no other.
        let issue = Issue {
            bound_to: Some(&hash),
            ..self.account_issue(Purpose::VerifyEmail, email)
        };
        let key = issue.key;
        let tag = self.limit_tag(pepper, &key);
        if self.cooldown(&tag, &key, now).await?.is_some() {
            // Within the cooldown nothing is filed or sent, but the
            // sign-up still asked for the address: an unverified account
            // is contested all the same, else a squatter whose code is in
            // the owner's inbox keeps the cooldown running and the
            // owner's code keeps the squatter's password.
            self.store.contest_sign_up(email).await?;
            self.audit_code(EventKind::CodeSent, "rate_limited", &key);
            return Ok(registrant);
        }
        let (issued, row) = new_code(pepper, &issue, now)?;
        let count = self.send_count(&tag, &key, None, now);
        let registered = self
            .store
            .register(&Registration {
                user_id: &random_id()?,
                email,
                password_hash: &hash,
                code: row.code(&issued.id, &issue),
                attempts_window_secs: issue.ttl_secs,
                count: &count,
            })
            .await?;
        let notice = |kind| {
            notice_message(
                &self.cfg.app_name,
                email.as_str(),
                kind,
                format!("notice-{}", issued.id),
            )
        };
        let (message, outcome) = match registered {
            Registered::Capped => {
                self.audit_code(EventKind::CodeSent, "rate_limited", &key);
                return Ok(registrant);
            }
            Registered::CodeIssued => (
                self.code_message(Purpose::VerifyEmail, email, &issued),
                "sent",
            ),
            Registered::PendingKept => (notice(Notice::RegistrationPending), "pending_notice"),
            Registered::AlreadyVerified => (notice(Notice::AccountExists), "account_exists_notice"),
        };
        self.deliver(
            &key,
            &tag,
            &message,
            outcome,
            (&issued.id, email, &hash),
            now,
        )
        .await?;
        Ok(registrant)
    }

    /// `/v1/verify-email`: the code proves the address. The account's
    /// password stays if the request proves it (`proof`), or if the code
    /// was bound to it and no second sign-up contested the address;
    /// otherwise the address is verified with no password, which the
    /// owner sets with a reset. `Ok(true)` when the password stayed.
    pub async fn verify_email(
        &self,
        email: &Email,
        code: &Code,
        proof: &PasswordProof,
    ) -> ApiResult<bool> {
        self.verify_address(email, code, proof, None).await
    }

    /// The pages' verification: `verify_email` with the browser's
    /// registrant tokens as the proof. When they prove the password the
    /// account keeps, the browser that signed up is signed in, in the same
    /// transaction as the verification, so the journey goes on to the app
    /// with no second password prompt. Anywhere else (another browser, a
    /// contested sign-up this browser did not make) it is not.
    pub async fn verify_email_in_browser(
        &self,
        email: &Email,
        code: &Code,
        tokens: Vec<String>,
    ) -> ApiResult<Verified> {
        let (session, stored) = self.new_session(self.clock.now(), Audience::Browser, "otp")?;
        let proof = PasswordProof::Registrant(tokens);
        let signed_in = std::cell::Cell::new(false);
        let kept = self
            .verify_address(email, code, &proof, Some((stored, &signed_in)))
            .await?;
        Ok(match (kept, signed_in.get()) {
            (true, true) => {
                self.audit_account(
                    EventKind::LoginOk,
                    "ok",
                    email,
                    Purpose::VerifyEmail.as_str(),
                );
                Verified::SignedIn(LoginSession {
                    ticket: None,
                    ..session
                })
            }
            (true, false) => Verified::PasswordKept,
            (false, _) => Verified::PasswordDropped,
        })
    }

    /// `verify_email`, signing the browser in with `session` when the
    /// proof was its own and the password is kept (`signed_in` says so).
    async fn verify_address(
        &self,
        email: &Email,
        code: &Code,
        proof: &PasswordProof,
        session: Option<(NewSession, &std::cell::Cell<bool>)>,
    ) -> ApiResult<bool> {
        let pepper = self.cfg.pepper()?;
        let key = account_key(Purpose::VerifyEmail, email);
        self.redeem(&key, code, |bound, account| {
            let current = account.password_hash;
            // Checked only once the code is right: one try per code.
            let proven = !current.is_empty()
                && match proof {
                    PasswordProof::None => false,
                    PasswordProof::Password(p) => {
                        matches!(self.hasher().verify(p, &current), Ok(Verdict::Match { .. }))
                    }
                    PasswordProof::Registrant(tokens) => {
                        is_registrant(pepper, email, &current, tokens)
                    }
                };
            let browser = matches!(proof, PasswordProof::Registrant(_)) && proven;
            let session = session.filter(|_| browser).map(|(s, signed_in)| {
                signed_in.set(true);
                s
            });
            let keep = match bound {
                _ if proven => Some(KeptPassword {
                    password_hash: current,
                    proven: true,
                    session,
                }),
                Proof::Password(hash) => Some(KeptPassword {
                    password_hash: hash,
                    proven: false,
                    session: None,
                }),
                Proof::AddressOnly => None,
            };
            Ok(Effect::MarkVerified { email, keep })
        })
        .await
        .map(|unlocked| unlocked.password_kept)
    }

    /// `/v1/resend`: within the limits, 429 whether or not the account exists.
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
        let pepper = self.cfg.pepper()?;
        let key = account_key(Purpose::ResetPassword, email);
        self.redeem(&key, code, |_, _| {
            let password_hash = self.hasher().hash(new_password)?;
            Ok(Effect::ResetPassword {
                email,
                password_hash,
                address_hash: pepper.address_tag(email.as_str()),
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
            Err(ApiError::MfaRequired { .. }) => EventKind::MfaRequired,
            Err(_) => EventKind::LoginFailed,
        };
        self.audit_account(kind, outcome(result), email, way);
    }

    /// A password sign-in, for a session issued `to` the pages' browser
    /// or an app (see `Audience`).
    pub async fn login(
        &self,
        email: &Email,
        password: &Password,
        to: Audience,
    ) -> ApiResult<LoginSession> {
        let result = self.password_login(email, password, to).await;
        self.audit_login(email, "password", &result);
        result
    }

    /// Every sign-in, whatever the address, makes the same round trips:
    /// the first counts the attempt (`domain::sign_in_budget`), reads the
    /// account and files a decoy verification code if none is live; then
    /// one Argon2 run; then, only for a right password on a verified
    /// account, the session. A right password on an unverified account is
    /// answered as a wrong one, and its owner gets a fresh code by mail:
    /// the live code (always live, thanks to the decoy) gets a new digest,
    /// keeping its expiry and attempts, after the answer (`Later`). So no
    /// answer, and no state another request can read (the code's expiry,
    /// its attempts, the send caps, the cooldown), tells an unverified
    /// address from an unknown or a verified one, even to someone who
    /// registered the address with a password of their own first.
    async fn password_login(
        &self,
        email: &Email,
        password: &Password,
        to: Audience,
    ) -> ApiResult<LoginSession> {
        let pepper = self.cfg.pepper()?;
        let hasher = self.hasher();
        let now = self.clock.now();
        let address_hash = pepper.address_tag(email.as_str());
        let issue = self.account_issue(Purpose::VerifyEmail, email);
        // A digest no code has: random, like an HMAC.
        let decoy_digest = format!("{}{}", random_id()?, random_id()?);
        let decoy_id = random_id()?;
        let start = self
            .store
            .begin_password_login(&PasswordAttempt {
                email,
                address_hash: &address_hash,
                decoy_seed: decoy_seed(pepper, email),
                budget: self.cfg.sign_in_budget,
                now,
                decoy_code: NewCode {
                    id: &decoy_id,
                    key: issue.key,
                    digest: &decoy_digest,
                    now,
                    expires_at: now + issue.ttl_secs,
                    test: false,
                },
                attempts_window_secs: issue.ttl_secs,
            })
            .await?;
        if let Some(retry_after_secs) = start.locked_for {
            return Err(ApiError::LoginLocked { retry_after_secs });
        }
        let lookup = start.lookup;
        // An unknown address, and an account without a password, cost a
        // hash like a wrong password does.
        let Some((user, stored)) = lookup
            .user
            .and_then(|u| u.password_hash.clone().map(|h| (u, h)))
        else {
            hasher.burn(password, lookup.decoy.as_deref())?;
            return Err(ApiError::InvalidCredentials);
        };
        let needs_rehash = match hasher.verify(password, &stored)? {
            Verdict::Match { needs_rehash } => needs_rehash,
            Verdict::Mismatch => return Err(ApiError::InvalidCredentials),
            Verdict::Unusable(reason) => {
                self.diagnostics.record("stored_hash_refused", reason);
                return Err(ApiError::InvalidCredentials);
            }
        };
        if !user.verified {
            self.renew_verification(pepper, email, &stored, now)?;
            return Err(ApiError::InvalidCredentials);
        }
        let rehash = match needs_rehash {
            true => Some(hasher.hash(password)?),
            false => None,
        };
        // Every write below holds only while the hash is still the one the
        // password matched: a reset that landed during the ~45 ms of
        // Argon2 revoked this login's right to a session.
        let (session, new_session) = self.new_session(now, to, "pwd")?;
        let admitted = self
            .store
            .after_password_login(
                &user.id,
                &stored,
                rehash.as_deref(),
                &new_session,
                &address_hash,
            )
            .await?;
        Self::admitted(session, admitted, ApiError::InvalidCredentials)
    }

    /// After a right password on an unverified account: a fresh code,
    /// bound to that password (whose holder asked), renewed and mailed
    /// after the answer (`Later::renew_codes`), unless the address's
    /// cooldown runs. It is not counted against the send caps nor does it
    /// start a cooldown, since those would be seen by the next request; the
    /// cooldown and the budget of failed sign-ins bound it.
    fn renew_verification(
        &self,
        pepper: &Pepper,
        email: &Email,
        password_hash: &str,
        now: u64,
    ) -> ApiResult<()> {
        let issue = Issue {
            bound_to: Some(password_hash),
            ..self.account_issue(Purpose::VerifyEmail, email)
        };
        let (issued, row) = new_code(pepper, &issue, now)?;
        self.audit_code(EventKind::CodeSent, "queued", &issue.key);
        self.later.renew(Renewal {
            policy: self.policy(),
            tag: self.limit_tag(pepper, &issue.key),
            lane: lane(&issue.key),
            message: self.code_message(Purpose::VerifyEmail, email, &issued),
            code: RenewedCode {
                email: email.as_str().to_owned(),
                id: issued.id,
                digest: row.digest,
                password_hash: password_hash.to_owned(),
                now,
                max_attempts: self.cfg.otp_max_attempts,
            },
        });
        Ok(())
    }

    /// `/v1/login/code/verify`: the session is created in the same
    /// transaction that consumes the code.
    pub async fn login_with_code(
        &self,
        email: &Email,
        code: &Code,
        to: Audience,
    ) -> ApiResult<LoginSession> {
        let result = self.code_login(email, code, to).await;
        self.audit_login(email, Purpose::Login.as_str(), &result);
        result
    }

    async fn code_login(
        &self,
        email: &Email,
        code: &Code,
        to: Audience,
    ) -> ApiResult<LoginSession> {
        let (session, new_session) = self.new_session(self.clock.now(), to, "otp")?;
        let key = account_key(Purpose::Login, email);
        // The account is read in the statement that claims the attempt. An
        // unknown address has a pending code too, which nobody was sent.
        let unlocked = self
            .redeem(&key, code, |_, account| match account.id {
                Some(user_id) => Ok(Effect::SignIn {
                    user_id,
                    session: new_session,
                }),
                None => Err(ApiError::InvalidCode),
            })
            .await?;
        Self::admitted(session, unlocked.admitted, ApiError::InvalidCode)
    }

    /// A session to create, and its second step's ticket, filed instead
    /// if the account turns out to have a second factor (`Admitted`).
    pub(super) fn new_session(
        &self,
        now: u64,
        issued_to: Audience,
        amr: &str,
    ) -> ApiResult<(LoginSession, NewSession)> {
        let token = Token::generate()?;
        let ticket = Token::generate()?;
        let stored = NewSession {
            token_hash: token_hash(token.expose()),
            now,
            expires_at: now + self.cfg.session_ttl_secs,
            issued_to,
            amr: amr.to_owned(),
            ticket: Some(NewTicket {
                token_hash: token_hash(ticket.expose()),
                expires_at: now + TICKET_TTL_SECS,
            }),
        };
        let session = LoginSession {
            token,
            expires_at: rfc3339(stored.expires_at),
            ticket: Some(ticket),
        };
        Ok((session, stored))
    }

    /// What a first factor's session became: itself, or the ticket of the
    /// second step the account asks for; `lost` if neither was made.
    pub(super) fn admitted(
        session: LoginSession,
        admitted: Option<Admitted>,
        lost: ApiError,
    ) -> ApiResult<LoginSession> {
        match (admitted, session.ticket) {
            (Some(Admitted::Session), _) => Ok(LoginSession {
                ticket: None,
                ..session
            }),
            (Some(Admitted::SecondStep), Some(ticket)) => Err(ApiError::MfaRequired {
                mfa_token: Redacted(ticket.expose().to_owned()),
            }),
            _ => Err(lost),
        }
    }

    /// The account of the session `token`, presented as `by` says: a
    /// token of another kind is no token (`Presented::accepts`).
    pub async fn me(&self, token: Option<&str>, by: Presented) -> ApiResult<User> {
        let token = token.ok_or(ApiError::Unauthorized)?;
        self.store
            .session_user(&token_hash(token), self.clock.now(), by)
            .await?
            .ok_or(ApiError::Unauthorized)
    }

    /// Ends the session `token`, presented as `by` says. The pages' sign-out
    /// ends the browser's session; the apps' sessions stay.
    pub async fn logout(&self, token: Option<&str>, by: Presented) -> ApiResult<()> {
        let token = token.ok_or(ApiError::Unauthorized)?;
        let email = self
            .store
            .delete_session(&token_hash(token), by)
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
    /// addresses go through the same cooldown read and write and the same
    /// D1 transaction, which reads the account and files the code (an
    /// unknown address gets a code nobody is told), so only the deferred
    /// mail differs, and it is sent after the answer.
    /// Outside the limits, `limit_is_error` says whether to answer 429.
    async fn request_code(
        &self,
        email: &Email,
        purpose: Purpose,
        limit_is_error: bool,
    ) -> ApiResult<Deferred> {
        let pepper = self.cfg.pepper()?;
        self.mailer.ready()?;
        let now = self.clock.now();
        let issue = self.account_issue(purpose, email);
        let key = issue.key;
        let tag = self.limit_tag(pepper, &key);
        let limited = |retry_after_secs| {
            self.audit_code(EventKind::CodeSent, "rate_limited", &key);
            match limit_is_error {
                true => Err(ApiError::RateLimited { retry_after_secs }),
                false => Ok(None),
            }
        };
        if let Some(retry_after) = self.cooldown(&tag, &key, now).await? {
            return limited(retry_after);
        }
        let (issued, row) = new_code(pepper, &issue, now)?;
        let count = self.send_count(&tag, &key, None, now);
        let requested = self
            .store
            .request_code(email, &row.code(&issued.id, &issue), issue.ttl_secs, &count)
            .await?;
        if !requested.issued {
            return limited(count.retry_after(now));
        }
        let (wanted, outcome) = match (purpose, &requested.user) {
            (Purpose::VerifyEmail, Some(u)) if u.verified => (false, "already_verified"),
            (_, Some(_)) => (true, "queued"),
            (_, None) => (false, "no_account"),
        };
        // The code is written and its mail will go: from here on a failure
        // is logged, never answered.
        self.start_cooldown(&tag, &key, now);
        self.audit_code(EventKind::CodeSent, outcome, &key);
        Ok(wanted.then(|| self.code_message(purpose, email, &issued)))
    }

    /// Mails a registration's `message` now. A delivery failure withdraws
    /// the registration (`withdrawn`: its code's id, the address and its
    /// password hash; a notice's code was never filed and its account not
    /// changed, and the withdrawal, which then finds nothing, keeps the
    /// failure path alike for every address), so that no registration is
    /// held by a code nobody received, and leaves the cooldown unstarted,
    /// so a retry works as a first sign-up.
    async fn deliver(
        &self,
        key: &CodeKey<'_>,
        tag: &str,
        message: &Message,
        outcome: &'static str,
        (code_id, email, hash): (&str, &Email, &str),
        now: u64,
    ) -> ApiResult<()> {
        if let Err(e) = self.mailer.send(message).await {
            self.audit_code(EventKind::CodeSent, e.code(), key);
            if let Err(w) = self.store.withdraw_registration(code_id, email, hash).await {
                self.diagnostics
                    .record("code_withdraw_failed", format!("{w:?}"));
            }
            return Err(e);
        }
        self.audit_code(EventKind::CodeSent, outcome, key);
        self.start_cooldown(tag, key, now);
        Ok(())
    }

    fn code_message(&self, purpose: Purpose, email: &Email, issued: &Issued) -> Message {
        let values = Values {
            code: issued.code.expose(),
            ttl_secs: self.account_issue(purpose, email).ttl_secs,
            app_name: &self.cfg.app_name,
            language: self.language.tag(),
        };
        let rendered = self.cfg.templates.mail(Kind::Account(purpose), &values);
        code_message(email.as_str(), rendered, format!("code-{}", issued.id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::registrant::PasswordProof;
    use crate::ports::store::AccountStore;
    use crate::service::testkit::{poll_once, wrong, TestService, World};
    use pollster::block_on;

    fn email(s: &str) -> Email {
        Email::parse(s).unwrap()
    }

    /// Asserts that `password` does not sign in to `email`'s account.
    async fn refused(svc: &TestService<'_>, email: &Email, password: &str) {
        assert_eq!(
            svc.login(email, &pw(password), Audience::Api)
                .await
                .unwrap_err(),
            ApiError::InvalidCredentials,
            "{password} must not sign in"
        );
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
            // Unverified: answered as a wrong password is.
            assert_eq!(
                svc.login(&ann, &pw("correct horse"), Audience::Api)
                    .await
                    .unwrap_err(),
                ApiError::InvalidCredentials
            );
            w.after_answer().await;
            svc.verify_email(&ann, &w.last_code(), &PasswordProof::None)
                .await
                .unwrap();
            let session = svc
                .login(&ann, &pw("correct horse"), Audience::Api)
                .await
                .unwrap();
            assert_eq!(
                svc.me(Some(session.token.expose()), Presented::Bearer)
                    .await
                    .unwrap()
                    .email,
                "ann@example.com"
            );
            svc.logout(Some(session.token.expose()), Presented::Bearer)
                .await
                .unwrap();
            assert_eq!(
                svc.me(Some(session.token.expose()), Presented::Bearer)
                    .await
                    .unwrap_err(),
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
            let _ = svc
                .verify_email(&ann, &wrong(&code), &PasswordProof::None)
                .await;
            svc.verify_email(&ann, &code, &PasswordProof::None)
                .await
                .unwrap();
            let _ = svc.verify_email(&ann, &code, &PasswordProof::None).await;
            assert_eq!(
                w.events(),
                [
                    ("code_sent", "sent"),
                    ("code_failed", "invalid_code"),
                    ("code_verified", "ok"),
                    ("code_failed", "no_pending_code"),
                ]
            );
            let _ = svc.login(&ann, &pw("wrong horse"), Audience::Api).await;
            let session = svc
                .login(&ann, &pw("correct horse"), Audience::Api)
                .await
                .unwrap();
            svc.logout(Some(session.token.expose()), Presented::Bearer)
                .await
                .unwrap();
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
            svc.verify_email(&ann, &w.last_code(), &PasswordProof::None)
                .await
                .unwrap();
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
            svc.verify_email(&ann, &w.last_code(), &PasswordProof::None)
                .await
                .unwrap();
            svc.register(&ann, &pw("attacker pw")).await.unwrap();
            assert!(w.last_mail().subject.starts_with("Your "));
            refused(&svc, &ann, "attacker pw").await;
            svc.login(&ann, &pw("correct horse"), Audience::Api)
                .await
                .unwrap();
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
            svc.verify_email(
                &email("ann@example.com"),
                &w.last_code(),
                &PasswordProof::None,
            )
            .await
            .unwrap();
            let a = svc
                .login(&email("ann@example.com"), &pw("wrong horse"), Audience::Api)
                .await
                .unwrap_err();
            let b = svc
                .login(&email("zed@example.com"), &pw("wrong horse"), Audience::Api)
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
            w.after_answer().await;
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
                svc.verify_email(&ann, &code, &PasswordProof::None)
                    .await
                    .unwrap_err(),
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
            for attempts_left in [4, 3, 2] {
                assert_eq!(
                    svc.verify_email(&ann, &wrong(&code), &PasswordProof::None)
                        .await
                        .unwrap_err(),
                    ApiError::WrongCode { attempts_left }
                );
            }
            w.keep(svc.resend(&ann, Purpose::VerifyEmail).await.unwrap());
            let code = w.last_code();
            // The new code inherits the count: a resend gives no guesses back.
            assert_eq!(
                svc.verify_email(&ann, &wrong(&code), &PasswordProof::None)
                    .await
                    .unwrap_err(),
                ApiError::WrongCode { attempts_left: 1 }
            );
            assert_eq!(
                svc.verify_email(&ann, &wrong(&code), &PasswordProof::None)
                    .await
                    .unwrap_err(),
                ApiError::TooManyAttempts
            );
            assert_eq!(
                svc.verify_email(&ann, &code, &PasswordProof::None)
                    .await
                    .unwrap_err(),
                ApiError::TooManyAttempts
            );
            // Once the first code's lifetime has passed, a new code starts afresh.
            w.advance(601);
            w.keep(svc.resend(&ann, Purpose::VerifyEmail).await.unwrap());
            svc.verify_email(&ann, &w.last_code(), &PasswordProof::None)
                .await
                .unwrap();
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
                svc.verify_email(&ann, &w.last_code(), &PasswordProof::None)
                    .await
                    .unwrap_err(),
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
            w.after_answer().await;
            let code = w.last_code();
            svc.register(&ann, &pw("correct horse")).await.unwrap();
            assert_eq!(w.mails(), 1);
            svc.verify_email(&ann, &code, &PasswordProof::None)
                .await
                .unwrap();
        });
    }

    #[test]
    fn password_reset_revokes_sessions() {
        let w = World::new(&[]);
        let (ann, svc) = (email("ann@example.com"), w.svc());
        block_on(async {
            svc.register(&ann, &pw("correct horse")).await.unwrap();
            svc.verify_email(&ann, &w.last_code(), &PasswordProof::None)
                .await
                .unwrap();
            let session = svc
                .login(&ann, &pw("correct horse"), Audience::Api)
                .await
                .unwrap();
            w.keep(svc.password_reset(&ann).await.unwrap());
            svc.confirm_password_reset(&ann, &w.last_code(), &pw("new horse!"))
                .await
                .unwrap();
            assert_eq!(
                svc.me(Some(session.token.expose()), Presented::Bearer)
                    .await
                    .unwrap_err(),
                ApiError::Unauthorized
            );
            svc.login(&ann, &pw("new horse!"), Audience::Api)
                .await
                .unwrap();
        });
    }

    #[test]
    fn code_login_signs_in_verifies_and_is_single_use() {
        let w = World::new(&[("RESEND_COOLDOWN_SECONDS", "0")]);
        let (ann, svc) = (email("ann@example.com"), w.svc());
        block_on(async {
            svc.register(&ann, &pw("correct horse")).await.unwrap();
            let verification = w.last_code();
            // Ask again until the sign-in code differs from the verification
            // code (a 1 in 10^6 chance each time), so the check below always runs.
            let code = loop {
                w.keep(svc.login_code(&ann).await.unwrap());
                if w.last_code() != verification {
                    break w.last_code();
                }
            };
            assert!(w.last_mail().subject.contains("sign-in code"));
            // A verification code is not a login code, even while both are pending.
            assert_eq!(
                svc.login_with_code(&ann, &verification, Audience::Api)
                    .await
                    .unwrap_err(),
                ApiError::WrongCode { attempts_left: 4 }
            );
            let session = svc
                .login_with_code(&ann, &code, Audience::Api)
                .await
                .unwrap();
            let me = svc
                .me(Some(session.token.expose()), Presented::Bearer)
                .await
                .unwrap();
            assert!(me.verified, "a code login proves ownership of the address");
            assert_eq!(
                svc.login_with_code(&ann, &code, Audience::Api)
                    .await
                    .unwrap_err(),
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
                svc.login_with_code(&ghost, &Code::parse("123456", 6).unwrap(), Audience::Api)
                    .await
                    .unwrap_err(),
                ApiError::WrongCode { attempts_left: 4 }
            );
        });
    }

    #[test]
    fn a_wrong_code_answers_alike_for_new_and_verified_addresses() {
        let w = World::new(&[("RESEND_COOLDOWN_SECONDS", "0")]);
        let svc = w.svc();
        let (ann, bob) = (email("ann@example.com"), email("bob@example.com"));
        block_on(async {
            svc.register(&ann, &pw("correct horse")).await.unwrap();
            svc.verify_email(&ann, &w.last_code(), &PasswordProof::None)
                .await
                .unwrap();
            // Someone registers both: ann is verified, bob is new.
            svc.register(&ann, &pw("attacker pw1")).await.unwrap();
            svc.register(&bob, &pw("attacker pw1")).await.unwrap();
            let guess = wrong(&w.last_code());
            for attempts_left in [4, 3, 2, 1] {
                let expected = ApiError::WrongCode { attempts_left };
                assert_eq!(
                    svc.verify_email(&ann, &guess, &PasswordProof::None)
                        .await
                        .unwrap_err(),
                    expected
                );
                assert_eq!(
                    svc.verify_email(&bob, &guess, &PasswordProof::None)
                        .await
                        .unwrap_err(),
                    expected
                );
            }
            assert_eq!(
                svc.verify_email(&ann, &guess, &PasswordProof::None)
                    .await
                    .unwrap_err(),
                ApiError::TooManyAttempts
            );
            assert_eq!(
                svc.verify_email(&bob, &guess, &PasswordProof::None)
                    .await
                    .unwrap_err(),
                ApiError::TooManyAttempts
            );
        });
        // ann's decoy could never verify anything: her password is hers.
        let token = w.login_token(&ann, &pw("correct horse"));
        assert!(!token.is_empty());
    }

    // Account pre-hijacking ------------------------------------------------

    #[test]
    fn a_code_sign_in_drops_the_password_a_squatter_set() {
        let w = World::new(&[("RESEND_COOLDOWN_SECONDS", "0")]);
        let (victim, svc) = (email("victim@example.com"), w.svc());
        block_on(async {
            // The attacker registers the victim's address and never verifies.
            svc.register(&victim, &pw("attacker pw")).await.unwrap();
            // The owner signs in with a code from their mailbox.
            w.keep(svc.login_code(&victim).await.unwrap());
            let session = svc
                .login_with_code(&victim, &w.last_code(), Audience::Api)
                .await
                .unwrap();
            assert!(
                svc.me(Some(session.token.expose()), Presented::Bearer)
                    .await
                    .unwrap()
                    .verified
            );
            assert_eq!(w.user("victim@example.com").unwrap().password_hash, None);
            refused(&svc, &victim, "attacker pw").await;
            // The owner sets a password of their own through a reset.
            w.keep(svc.password_reset(&victim).await.unwrap());
            svc.confirm_password_reset(&victim, &w.last_code(), &pw("owner pw!"))
                .await
                .unwrap();
            svc.login(&victim, &pw("owner pw!"), Audience::Api)
                .await
                .unwrap();
            refused(&svc, &victim, "attacker pw").await;
        });
    }

    #[test]
    fn a_code_sign_in_to_an_unverified_account_ends_its_older_sessions() {
        let w = World::new(&[("RESEND_COOLDOWN_SECONDS", "0")]);
        let (victim, svc) = (email("victim@example.com"), w.svc());
        block_on(async {
            svc.register(&victim, &pw("attacker pw")).await.unwrap();
            // A session made before the proof, however it came to be.
            let id = w.user("victim@example.com").unwrap().id;
            w.store
                .sessions
                .borrow_mut()
                .insert("old".into(), (id, u64::MAX, "api".into()));
            w.keep(svc.login_code(&victim).await.unwrap());
            let session = svc
                .login_with_code(&victim, &w.last_code(), Audience::Api)
                .await
                .unwrap();
            let sessions = w.store.sessions.borrow();
            assert!(!sessions.contains_key("old"));
            assert!(sessions.contains_key(&token_hash(session.token.expose())));
        });
    }

    #[test]
    fn a_code_sign_in_to_a_verified_account_keeps_its_password_and_sessions() {
        let w = World::new(&[("RESEND_COOLDOWN_SECONDS", "0")]);
        let (ann, svc) = (email("ann@example.com"), w.svc());
        block_on(async {
            svc.register(&ann, &pw("correct horse")).await.unwrap();
            svc.verify_email(&ann, &w.last_code(), &PasswordProof::None)
                .await
                .unwrap();
            let first = svc
                .login(&ann, &pw("correct horse"), Audience::Api)
                .await
                .unwrap();
            w.keep(svc.login_code(&ann).await.unwrap());
            svc.login_with_code(&ann, &w.last_code(), Audience::Api)
                .await
                .unwrap();
            svc.me(Some(first.token.expose()), Presented::Bearer)
                .await
                .unwrap();
            svc.login(&ann, &pw("correct horse"), Audience::Api)
                .await
                .unwrap();
        });
    }

    #[test]
    fn a_second_registration_never_replaces_a_live_ones_password() {
        let w = World::new(&[("RESEND_COOLDOWN_SECONDS", "0")]);
        let (owner, svc) = (email("owner@example.com"), w.svc());
        block_on(svc.register(&owner, &pw("owner pw 1"))).unwrap();
        let code = w.last_code();
        block_on(refused(&svc, &owner, "attacker pw"));
        // The attacker registers the same address while the code is live.
        block_on(svc.register(&owner, &pw("attacker pw"))).unwrap();
        let notice = w.last_mail();
        assert!(
            notice.subject.contains("already waiting"),
            "{}",
            notice.subject
        );
        assert!(
            !notice.text.chars().any(|c| c.is_ascii_digit()),
            "the notice carries no code"
        );
        block_on(refused(&svc, &owner, "attacker pw"));
        // The owner's code, with the owner's password (the sign-up is
        // contested now), verifies the owner's password.
        let proof = PasswordProof::Password(pw("owner pw 1"));
        assert_eq!(block_on(svc.verify_email(&owner, &code, &proof)), Ok(true));
        block_on(refused(&svc, &owner, "attacker pw"));
        block_on(svc.login(&owner, &pw("owner pw 1"), Audience::Api)).unwrap();
    }

    #[test]
    fn a_resent_verification_code_proves_the_address_but_drops_a_squatters_password() {
        let w = World::new(&[("RESEND_COOLDOWN_SECONDS", "0")]);
        let (victim, svc) = (email("victim@example.com"), w.svc());
        block_on(async {
            svc.register(&victim, &pw("attacker pw")).await.unwrap();
            // The owner's own registration finds it waiting: a notice.
            svc.register(&victim, &pw("owner pw 1")).await.unwrap();
            // "Didn't get a code? Resend": anyone may ask for this one.
            w.keep(svc.resend(&victim, Purpose::VerifyEmail).await.unwrap());
            svc.verify_email(&victim, &w.last_code(), &PasswordProof::None)
                .await
                .unwrap();
            let user = w.user("victim@example.com").unwrap();
            assert!(user.verified && user.password_hash.is_none());
            for p in ["attacker pw", "owner pw 1"] {
                refused(&svc, &victim, p).await;
            }
        });
    }

    #[test]
    fn a_code_from_a_right_password_keeps_that_password() {
        let w = World::new(&[("RESEND_COOLDOWN_SECONDS", "0")]);
        let (ann, svc) = (email("ann@example.com"), w.svc());
        block_on(async {
            svc.register(&ann, &pw("correct horse")).await.unwrap();
            let first = w.last_code();
            // Signing in to an unverified account mails a code for that
            // password, after the answer: it replaces the first.
            assert_eq!(
                svc.login(&ann, &pw("correct horse"), Audience::Api)
                    .await
                    .unwrap_err(),
                ApiError::InvalidCredentials
            );
            assert_eq!(w.mails(), 1, "nothing before the answer");
            w.after_answer().await;
            assert_eq!(w.mails(), 2);
            assert_ne!(w.last_code().expose(), first.expose());
            assert!(svc
                .verify_email(&ann, &first, &PasswordProof::None)
                .await
                .is_err());
            assert_eq!(
                svc.verify_email(&ann, &w.last_code(), &PasswordProof::None)
                    .await,
                Ok(true)
            );
            svc.login(&ann, &pw("correct horse"), Audience::Api)
                .await
                .unwrap();
        });
    }

    #[test]
    fn an_expired_registration_may_be_replaced_but_keeps_its_age() {
        let w = World::new(&[("RESEND_COOLDOWN_SECONDS", "0")]);
        let (ann, svc) = (email("ann@example.com"), w.svc());
        block_on(async {
            svc.register(&ann, &pw("first pw!")).await.unwrap();
            let created = w.user("ann@example.com").unwrap().created_at;
            w.advance(601);
            svc.register(&ann, &pw("second pw")).await.unwrap();
            // A second sign-up contests the address: the code keeps the
            // password the request proves.
            let proof = PasswordProof::Password(pw("second pw"));
            svc.verify_email(&ann, &w.last_code(), &proof)
                .await
                .unwrap();
            svc.login(&ann, &pw("second pw"), Audience::Api)
                .await
                .unwrap();
            refused(&svc, &ann, "first pw!").await;
            assert_eq!(w.user("ann@example.com").unwrap().created_at, created);
        });
    }

    #[test]
    fn a_registration_whose_mail_failed_holds_nothing() {
        let w = World::new(&[]);
        let (ann, svc) = (email("ann@example.com"), w.svc());
        block_on(async {
            w.outbox.fail_next.set(true);
            assert_eq!(
                svc.register(&ann, &pw("correct horse")).await.unwrap_err(),
                ApiError::MailDeliveryFailed
            );
            assert!(!w.pending("ann@example.com", "verify_email"));
            assert!(w.user("ann@example.com").is_none());
            // The retry gets a code, not the "already waiting" notice, and
            // is a first sign-up: its code alone keeps its password.
            svc.register(&ann, &pw("correct horse")).await.unwrap();
            assert_eq!(
                svc.verify_email(&ann, &w.last_code(), &PasswordProof::None)
                    .await,
                Ok(true)
            );
        });
    }

    #[test]
    fn register_does_the_same_storage_work_for_every_kind_of_address() {
        let w = World::new(&[]);
        let svc = w.svc();
        block_on(async {
            let (pending, verified) = (email("pending@example.com"), email("verified@example.com"));
            svc.register(&pending, &pw("correct horse")).await.unwrap();
            svc.register(&verified, &pw("correct horse")).await.unwrap();
            svc.verify_email(&verified, &w.last_code(), &PasswordProof::None)
                .await
                .unwrap();
            w.after_answer().await;
            w.advance(61); // past the cooldown, within the pending code's life
            let mut seen = vec![];
            for who in [
                "new@example.com",
                "pending@example.com",
                "verified@example.com",
            ] {
                w.faults.take();
                svc.register(&email(who), &pw("whatever pw")).await.unwrap();
                w.after_answer().await;
                seen.push((who, w.faults.take()));
            }
            assert_eq!(seen[0].1, ["kv_get", "register", "kv_put"]);
            for (who, calls) in &seen[1..] {
                assert_eq!(calls, &seen[0].1, "{who}");
            }
            assert_eq!(w.mails(), 5, "each registration mailed once");
        });
    }

    // Login racing a reset --------------------------------------------------

    /// A login of `password` held just after it read the account, a whole
    /// password reset to "new password" run meanwhile, then the login let
    /// go: its answer.
    fn login_around_a_reset(w: &World, ann: &Email, password: &str) -> ApiResult<LoginSession> {
        let svc = w.svc();
        w.store.gate.hold_after("begin_password_login");
        let password = pw(password);
        let mut login = std::pin::pin!(svc.login(ann, &password, Audience::Api));
        assert!(poll_once(login.as_mut()).is_pending() && w.store.gate.is_holding());
        block_on(async {
            w.keep(svc.password_reset(ann).await.unwrap());
            svc.confirm_password_reset(ann, &w.last_code(), &pw("new password"))
                .await
                .unwrap();
        });
        w.store.gate.release();
        block_on(login)
    }

    #[test]
    fn a_reset_between_a_logins_check_and_its_session_leaves_no_session() {
        let w = World::new(&[("RESEND_COOLDOWN_SECONDS", "0")]);
        let (ann, svc) = (email("ann@example.com"), w.svc());
        block_on(async {
            svc.register(&ann, &pw("old password")).await.unwrap();
            svc.verify_email(&ann, &w.last_code(), &PasswordProof::None)
                .await
                .unwrap();
        });
        assert_eq!(
            login_around_a_reset(&w, &ann, "old password").unwrap_err(),
            ApiError::InvalidCredentials
        );
        assert!(
            w.store.sessions.borrow().is_empty(),
            "every session is revoked"
        );
        block_on(svc.login(&ann, &pw("new password"), Audience::Api)).unwrap();
    }

    #[test]
    fn a_rehash_racing_a_reset_never_puts_the_old_password_back() {
        // Verified or not: a reset racing the sign-in wins (a verified
        // account's sign-in rehashes; an unverified one's only renews its
        // code, after the answer).
        for verified in [true, false] {
            let w = World::new(&[("RESEND_COOLDOWN_SECONDS", "0")]);
            let (ann, svc) = (email("ann@example.com"), w.svc());
            block_on(async {
                svc.register(&ann, &pw("old password")).await.unwrap();
                if verified {
                    svc.verify_email(&ann, &w.last_code(), &PasswordProof::None)
                        .await
                        .unwrap();
                }
            });
            // A hash made before ARGON2_* changed: the next successful login rehashes it.
            let stale = crate::domain::password::Hasher::new(crate::domain::password::HashParams {
                memory_kib: 128,
                iterations: 1,
                parallelism: 1,
            })
            .hash(&pw("old password"))
            .unwrap();
            w.store
                .users
                .borrow_mut()
                .get_mut("ann@example.com")
                .unwrap()
                .password_hash = Some(stale);
            assert_eq!(
                login_around_a_reset(&w, &ann, "old password").unwrap_err(),
                ApiError::InvalidCredentials,
                "verified: {verified}"
            );
            assert_eq!(
                block_on(svc.login(&ann, &pw("old password"), Audience::Api)).unwrap_err(),
                ApiError::InvalidCredentials
            );
            block_on(svc.login(&ann, &pw("new password"), Audience::Api)).unwrap();
        }
    }

    // Stored hashes ----------------------------------------------------------

    #[test]
    fn a_stored_hash_beyond_the_bounds_is_refused_like_a_wrong_password() {
        let w = World::new(&[]);
        let (ann, svc) = (email("ann@example.com"), w.svc());
        block_on(async {
            svc.register(&ann, &pw("correct horse")).await.unwrap();
            svc.verify_email(&ann, &w.last_code(), &PasswordProof::None)
                .await
                .unwrap();
            {
                let mut users = w.store.users.borrow_mut();
                let user = users.get_mut("ann@example.com").unwrap();
                let greedy = user
                    .password_hash
                    .take()
                    .unwrap()
                    .replace("m=64,", "m=4194304,");
                user.password_hash = Some(greedy);
            }
            refused(&svc, &ann, "correct horse").await;
            let logged = w.diagnostics.take();
            assert_eq!(logged.len(), 1);
            assert_eq!(logged[0].event, "stored_hash_refused");
            assert!(!logged[0].detail.contains("correct horse"));
        });
    }

    // Storage failures -----------------------------------------------------

    /// Runs `flow` once to count its D1 and KV calls, then once per call
    /// with that call failing, each time in a fresh world from `setup`.
    /// Every run must either answer 503 with nothing sent, or succeed
    /// having sent exactly one message: never a 5xx after a send.
    fn each_storage_failure<R: std::fmt::Debug>(
        setup: impl Fn(&World),
        flow: impl Fn(&World) -> ApiResult<R>,
        sent: impl Fn(&World, &ApiResult<R>) -> usize,
    ) -> usize {
        let extra = [("RESEND_COOLDOWN_SECONDS", "60")];
        let w = World::new(&extra);
        setup(&w);
        w.faults.take();
        let result = flow(&w);
        block_on(w.after_answer());
        let calls = w.faults.take().len();
        assert!(result.is_ok(), "{result:?}");
        for n in 1..=calls {
            let w = World::new(&extra);
            setup(&w);
            let baseline = w.sent();
            w.faults.fail_call(n);
            let result = flow(&w);
            block_on(w.after_answer());
            let messages = sent(&w, &result) - baseline;
            match &result {
                Err(ApiError::StorageUnavailable(_)) => {
                    assert_eq!(messages, 0, "call {n} of {calls}: 503 after a send")
                }
                Ok(_) => assert_eq!(messages, 1, "call {n} of {calls}: {result:?}"),
                Err(e) => panic!("call {n} of {calls}: {e:?}"),
            }
        }
        calls
    }

    #[test]
    fn a_storage_failure_is_503_before_a_send_and_success_after_it() {
        let registered = |w: &World| {
            let svc = w.svc();
            block_on(async {
                svc.register(&email("ann@example.com"), &pw("correct horse"))
                    .await
                    .unwrap();
            });
            w.advance(61);
        };
        let mailed = |w: &World, _: &ApiResult<()>| w.sent();
        // Register: a cooldown read, one D1 transaction, the mail, a cooldown write.
        let calls = each_storage_failure(
            |_| {},
            |w| {
                block_on(
                    w.svc()
                        .register(&email("bob@example.com"), &pw("correct horse")),
                )
                .map(drop)
            },
            mailed,
        );
        assert_eq!(calls, 3);
        // Login to an unverified account answers as a wrong password, then
        // renews the code and mails it: a failure there is logged.
        each_storage_failure(
            registered,
            |w| match block_on(w.svc().login(
                &email("ann@example.com"),
                &pw("correct horse"),
                Audience::Api,
            )) {
                Err(ApiError::InvalidCredentials) => Ok(()),
                other => other.map(drop),
            },
            |w, _| {
                let logged = w.diagnostics.take();
                w.sent()
                    + logged
                        .iter()
                        .filter(|d| d.event == "code_renewal_failed")
                        .count()
            },
        );
        // A reset's mail goes after the answer: the answer carries it.
        let deferred =
            |w: &World, r: &ApiResult<Deferred>| w.sent() + usize::from(matches!(r, Ok(Some(_))));
        each_storage_failure(
            registered,
            |w| block_on(w.svc().password_reset(&email("ann@example.com"))),
            deferred,
        );
        each_storage_failure(
            registered,
            |w| block_on(w.svc().login_code(&email("ann@example.com"))),
            deferred,
        );
    }

    #[test]
    fn a_failed_cooldown_write_after_a_send_is_logged_not_answered() {
        let w = World::new(&[]);
        let (ann, svc) = (email("ann@example.com"), w.svc());
        block_on(async {
            w.faults.fail_call(3); // kv_get, register, then kv_put after the answer
            svc.register(&ann, &pw("correct horse")).await.unwrap();
            assert_eq!(w.mails(), 1);
            w.after_answer().await;
            let logged = w.diagnostics.take();
            assert_eq!(logged.len(), 1);
            assert_eq!(logged[0].event, "cooldown_write_failed");
        });
    }

    // Limits ------------------------------------------------------------------

    #[test]
    fn aliases_of_one_mailbox_share_its_limits() {
        let w = World::new(&[]);
        let svc = w.svc();
        block_on(async {
            svc.resend(&email("victim+1@gmail.com"), Purpose::ResetPassword)
                .await
                .unwrap();
            w.after_answer().await;
            for alias in ["victim+2@gmail.com", "v.i.c.t.i.m@googlemail.com"] {
                assert!(matches!(
                    svc.resend(&email(alias), Purpose::ResetPassword).await,
                    Err(ApiError::RateLimited { .. })
                ));
            }
            // Codes are still filed, and mail addressed, as typed.
            assert!(w.pending("victim+1@gmail.com", "reset_password"));
        });
    }

    #[test]
    fn the_core_flows_cannot_use_up_an_apps_sends_to_an_address() {
        let w = World::new(&[("RESEND_COOLDOWN_SECONDS", "0")]);
        let (_, key) = w.api_key(&["email"]);
        let svc = w.svc();
        let victim = email("victim@example.com");
        block_on(async {
            // Anyone can make the core flows send to any address...
            for _ in 0..5 {
                svc.password_reset(&victim).await.unwrap();
            }
            assert!(matches!(
                svc.resend(&victim, Purpose::ResetPassword).await,
                Err(ApiError::RateLimited { .. })
            ));
            // ...but only up to the core's own hourly share.
            let app = crate::service::AppCode::new(
                crate::domain::recipient::Recipient::parse(Channel::Email, "victim@example.com")
                    .unwrap(),
                crate::domain::purpose::AppPurpose::parse("login").unwrap(),
                CodeSpec::digits(6),
                600,
            )
            .unwrap();
            svc.send_app_code(&key, &app).await.unwrap();
        });
    }

    #[test]
    fn every_scope_together_stays_under_the_address_ceiling() {
        let w = World::new(&[
            ("RESEND_COOLDOWN_SECONDS", "0"),
            ("MAX_SENDS_PER_HOUR", "3"),
            ("MAX_SENDS_PER_ADDRESS_PER_HOUR", "4"),
        ]);
        let keys = [w.api_key(&["email"]).1, w.api_key(&["email"]).1];
        let svc = w.svc();
        let app = crate::service::AppCode::new(
            crate::domain::recipient::Recipient::parse(Channel::Email, "victim@example.com")
                .unwrap(),
            crate::domain::purpose::AppPurpose::parse("login").unwrap(),
            CodeSpec::digits(6),
            600,
        )
        .unwrap();
        block_on(async {
            for _ in 0..3 {
                svc.send_app_code(&keys[0], &app).await.unwrap();
            }
            assert!(matches!(
                svc.send_app_code(&keys[0], &app).await,
                Err(ApiError::RateLimited { .. })
            ));
            svc.send_app_code(&keys[1], &app).await.unwrap();
            assert!(matches!(
                svc.send_app_code(&keys[1], &app).await,
                Err(ApiError::RateLimited { .. })
            ));
            assert_eq!(w.sent(), 4);
        });
    }

    #[test]
    fn failed_admin_and_api_key_attempts_are_audited() {
        let w = World::new(&[]);
        let svc = w.svc();
        block_on(async {
            assert!(svc.admin(Some("not the token")).is_err());
            assert!(svc.admin(None).is_err());
            assert!(svc.api_key(Some("otpk_guess")).await.is_err());
            assert_eq!(svc.refuse_key(), ApiError::Unauthorized);
        });
        assert_eq!(
            w.events(),
            [
                ("admin_auth_failed", "unauthorized"),
                ("admin_auth_failed", "unauthorized"),
                ("api_key_auth_failed", "unauthorized"),
            ]
        );
    }
}
