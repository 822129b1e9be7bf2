//! The flows of the core API. Each method parses nothing and speaks no
//! HTTP: it takes domain values, makes the decisions, and drives the store,
//! the limiter and the mailer through their traits.

use crate::clock::{rfc3339, Clock};
use crate::code::{digests_match, Code, Pepper};
use crate::config::Config;
use crate::email::Email;
use crate::error::{ApiError, ApiResult};
use crate::limits::{Counters, SendDecision, SendPolicy};
use crate::mail::{account_exists_message, code_message, Mailer, Message};
use crate::password::{Hasher, Password, Verdict};
use crate::purpose::Purpose;
use crate::session::{token_hash, Token};
use crate::store::{Effect, NewCode, Stats, Store, User};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub struct Service<'a, S, K, M, C> {
    pub cfg: &'a Config,
    pub store: S,
    pub counters: K,
    pub mailer: M,
    pub clock: C,
}

#[derive(Debug)]
pub struct LoginSession {
    pub token: Token,
    pub expires_at: String,
}

/// What `register` and `login` mail straight away.
enum Outgoing {
    VerificationCode,
    /// Registering an address that already has an account: no code.
    AccountExistsNotice,
}

/// A mail the caller must deliver after answering, so that the answer's
/// timing does not depend on whether the address has an account.
pub type Deferred = Option<Message>;

impl<S: Store, K: Counters, M: Mailer, C: Clock> Service<'_, S, K, M, C> {
    fn policy(&self) -> SendPolicy {
        SendPolicy {
            cooldown_secs: self.cfg.resend_cooldown_secs,
            max_per_hour: self.cfg.max_sends_per_hour,
        }
    }

    fn hasher(&self) -> Hasher {
        Hasher::new(self.cfg.hash_params)
    }

    fn ttl(&self, purpose: Purpose) -> u64 {
        match purpose {
            Purpose::VerifyEmail => self.cfg.otp_ttl_secs,
            Purpose::ResetPassword => self.cfg.reset_otp_ttl_secs,
        }
    }

    pub async fn register(&self, email: &Email, password: &Password) -> ApiResult<()> {
        let pepper = self.cfg.pepper()?;
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
        self.redeem(Purpose::VerifyEmail, email, code, || {
            Ok(Effect::MarkVerified { email })
        })
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

    pub async fn confirm_password_reset(
        &self,
        email: &Email,
        code: &Code,
        new_password: &Password,
    ) -> ApiResult<()> {
        self.redeem(Purpose::ResetPassword, email, code, || {
            let password_hash = self.hasher().hash(new_password)?;
            Ok(Effect::ResetPassword {
                email,
                password_hash,
            })
        })
        .await
    }

    pub async fn login(&self, email: &Email, password: &Password) -> ApiResult<LoginSession> {
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
            self.send_within_limits(pepper, email, Outgoing::VerificationCode, now)
                .await?;
            return Err(ApiError::EmailNotVerified);
        }
        let token = Token::generate()?;
        let expires_at = now + self.cfg.session_ttl_secs;
        self.store
            .create_session(&token_hash(token.expose()), &user.id, now, expires_at)
            .await?;
        Ok(LoginSession {
            token,
            expires_at: rfc3339(expires_at),
        })
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
        match self.store.delete_session(&token_hash(token)).await? {
            true => Ok(()),
            false => Err(ApiError::Unauthorized),
        }
    }

    pub async fn admin_stats(&self, bearer: Option<&str>) -> ApiResult<Stats> {
        let expected = self.cfg.admin_token()?;
        let given = bearer.ok_or(ApiError::Unauthorized)?;
        // Hashing first makes the comparison independent of both lengths.
        let same: bool = Sha256::digest(given.as_bytes())
            .ct_eq(&Sha256::digest(expected.as_bytes()))
            .into();
        if !same {
            return Err(ApiError::Unauthorized);
        }
        self.store.stats(self.clock.now()).await
    }

    /// Shared by resend and password reset. Known and unknown addresses go
    /// through the same limiter reads and writes and the same D1 write (an
    /// unknown address gets a code nobody is told), so only the deferred
    /// mail differs, and it is sent after the answer.
    async fn request_code(
        &self,
        email: &Email,
        purpose: Purpose,
        cooldown_is_error: bool,
    ) -> ApiResult<Deferred> {
        let pepper = self.cfg.pepper()?;
        let now = self.clock.now();
        let tag = pepper.address_tag(email.as_str());
        let permit = match self
            .policy()
            .check(&self.counters, &tag, purpose, now)
            .await?
        {
            SendDecision::Allowed(permit) => permit,
            SendDecision::Cooldown { retry_after_secs }
            | SendDecision::HourlyCap { retry_after_secs }
                if cooldown_is_error =>
            {
                return Err(ApiError::RateLimited { retry_after_secs })
            }
            _ => return Ok(None),
        };
        let user = self.store.user_by_email(email).await?;
        let wanted = match (purpose, &user) {
            (Purpose::VerifyEmail, Some(u)) => !u.verified,
            (Purpose::ResetPassword, Some(_)) => true,
            (_, None) => false,
        };
        let message = self.issue_code(pepper, purpose, email, now).await?;
        self.policy()
            .record(&self.counters, &tag, purpose, now, permit)
            .await?;
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
        let tag = pepper.address_tag(email.as_str());
        let purpose = Purpose::VerifyEmail;
        let SendDecision::Allowed(permit) = self
            .policy()
            .check(&self.counters, &tag, purpose, now)
            .await?
        else {
            return Ok(());
        };
        let message = match outgoing {
            Outgoing::VerificationCode => self.issue_code(pepper, purpose, email, now).await?,
            Outgoing::AccountExistsNotice => {
                account_exists_message(self.cfg, email.as_str(), format!("notice-{}", random_id()?))
            }
        };
        self.mailer.send(&message).await?;
        self.policy()
            .record(&self.counters, &tag, purpose, now, permit)
            .await
    }

    async fn issue_code(
        &self,
        pepper: &Pepper,
        purpose: Purpose,
        email: &Email,
        now: u64,
    ) -> ApiResult<Message> {
        let code = Code::generate(self.cfg.otp_length)?;
        let id = random_id()?;
        let ttl = self.ttl(purpose);
        let digest = pepper.code_digest(purpose, email.as_str(), &code);
        let new = NewCode {
            id: &id,
            purpose,
            address: email.as_str(),
            digest: &digest,
            now,
            expires_at: now + ttl,
        };
        self.store.issue_code(&new, ttl).await?;
        Ok(code_message(
            self.cfg,
            email.as_str(),
            purpose,
            code.expose(),
            ttl,
            format!("code-{id}"),
        ))
    }

    /// Checks `code` against the pending one and, if right, consumes it
    /// atomically together with the effect `unlock` builds.
    async fn redeem<'e>(
        &self,
        purpose: Purpose,
        email: &'e Email,
        code: &Code,
        unlock: impl FnOnce() -> ApiResult<Effect<'e>>,
    ) -> ApiResult<()> {
        let pepper = self.cfg.pepper()?;
        let max = self.cfg.otp_max_attempts;
        let now = self.clock.now();
        let pending = self
            .store
            .pending_code(purpose, email.as_str())
            .await?
            .ok_or(ApiError::InvalidCode)?;
        if pending.attempts >= max {
            return Err(ApiError::TooManyAttempts);
        }
        if pending.expires_at <= now {
            return Err(ApiError::ExpiredCode);
        }
        if !digests_match(
            &pending.digest,
            &pepper.code_digest(purpose, email.as_str(), code),
        ) {
            return match self.store.record_failure(&pending.id, max).await? {
                Some(n) if n < max => Err(ApiError::InvalidCode),
                // This guess used up the budget, or a concurrent one did.
                _ => Err(ApiError::TooManyAttempts),
            };
        }
        let effect = unlock()?;
        match self
            .store
            .consume_code(&pending.id, max, effect, now)
            .await?
        {
            true => Ok(()),
            // A concurrent request consumed, replaced or burned it first.
            false => Err(ApiError::InvalidCode),
        }
    }
}

/// 128 random bits, hex: ids that reveal no order or count.
pub fn random_id() -> ApiResult<String> {
    let mut b = [0u8; 16];
    getrandom::getrandom(&mut b).map_err(|e| ApiError::Internal(format!("getrandom: {e}")))?;
    Ok(hex::encode(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::memory::MemoryCounters;
    use crate::store::{Cleanup, PendingCode, UserStats};
    use pollster::block_on;
    use std::cell::{Cell, RefCell};
    use std::collections::{BTreeMap, HashMap};

    /// Mirrors the D1 store's semantics closely enough to test decisions.
    #[derive(Default)]
    struct MemoryStore {
        users: RefCell<HashMap<String, User>>,
        codes: RefCell<HashMap<(Purpose, String), (PendingCode, u64)>>,
        sessions: RefCell<HashMap<String, (String, u64)>>,
    }

    impl Store for &MemoryStore {
        async fn user_by_email(&self, email: &Email) -> ApiResult<Option<User>> {
            Ok(self.users.borrow().get(email.as_str()).cloned())
        }
        async fn upsert_unverified_user(
            &self,
            id: &str,
            email: &Email,
            hash: &str,
            now: u64,
        ) -> ApiResult<bool> {
            let mut users = self.users.borrow_mut();
            match users.get_mut(email.as_str()) {
                Some(u) if u.verified => Ok(false),
                Some(u) => {
                    u.password_hash = hash.into();
                    Ok(true)
                }
                None => {
                    let user = User {
                        id: id.into(),
                        email: email.as_str().into(),
                        password_hash: hash.into(),
                        verified: false,
                        created_at: now,
                    };
                    users.insert(email.as_str().into(), user);
                    Ok(true)
                }
            }
        }
        async fn set_password_hash(&self, user_id: &str, hash: &str, _now: u64) -> ApiResult<()> {
            for u in self
                .users
                .borrow_mut()
                .values_mut()
                .filter(|u| u.id == user_id)
            {
                u.password_hash = hash.into();
            }
            Ok(())
        }
        async fn issue_code(&self, c: &NewCode<'_>, window: u64) -> ApiResult<()> {
            let mut codes = self.codes.borrow_mut();
            let key = (c.purpose, c.address.to_owned());
            let (attempts, window_ends) = match codes.get(&key) {
                Some((old, ends)) if *ends > c.now => (old.attempts, *ends),
                _ => (0, c.now + window),
            };
            let code = PendingCode {
                id: c.id.into(),
                digest: c.digest.into(),
                attempts,
                expires_at: c.expires_at,
            };
            codes.insert(key, (code, window_ends));
            Ok(())
        }
        async fn pending_code(
            &self,
            purpose: Purpose,
            address: &str,
        ) -> ApiResult<Option<PendingCode>> {
            Ok(self
                .codes
                .borrow()
                .get(&(purpose, address.to_owned()))
                .map(|(c, _)| c.clone()))
        }
        async fn record_failure(&self, id: &str, max: u32) -> ApiResult<Option<u32>> {
            let mut codes = self.codes.borrow_mut();
            let Some((c, _)) = codes
                .values_mut()
                .find(|(c, _)| c.id == id && c.attempts < max)
            else {
                return Ok(None);
            };
            c.attempts += 1;
            Ok(Some(c.attempts))
        }
        async fn consume_code(
            &self,
            id: &str,
            max: u32,
            effect: Effect<'_>,
            now: u64,
        ) -> ApiResult<bool> {
            let mut codes = self.codes.borrow_mut();
            let Some(key) = codes
                .iter()
                .find(|(_, (c, _))| c.id == id && c.attempts < max && c.expires_at > now)
                .map(|(k, _)| k.clone())
            else {
                return Ok(false);
            };
            codes.remove(&key);
            let mut users = self.users.borrow_mut();
            match effect {
                Effect::MarkVerified { email } => users
                    .get_mut(email.as_str())
                    .into_iter()
                    .for_each(|u| u.verified = true),
                Effect::ResetPassword {
                    email,
                    password_hash,
                } => {
                    if let Some(u) = users.get_mut(email.as_str()) {
                        u.password_hash = password_hash;
                        u.verified = true;
                        self.sessions
                            .borrow_mut()
                            .retain(|_, (uid, _)| *uid != u.id);
                    }
                }
            }
            Ok(true)
        }
        async fn create_session(
            &self,
            hash: &str,
            user_id: &str,
            _now: u64,
            expires_at: u64,
        ) -> ApiResult<()> {
            self.sessions
                .borrow_mut()
                .insert(hash.into(), (user_id.into(), expires_at));
            Ok(())
        }
        async fn session_user(&self, hash: &str, now: u64) -> ApiResult<Option<User>> {
            let sessions = self.sessions.borrow();
            let Some((uid, _)) = sessions.get(hash).filter(|(_, exp)| *exp > now) else {
                return Ok(None);
            };
            Ok(self.users.borrow().values().find(|u| &u.id == uid).cloned())
        }
        async fn delete_session(&self, hash: &str) -> ApiResult<bool> {
            Ok(self.sessions.borrow_mut().remove(hash).is_some())
        }
        async fn stats(&self, _now: u64) -> ApiResult<Stats> {
            let users = self.users.borrow();
            Ok(Stats {
                active_codes: self.codes.borrow().len() as u64,
                expired_codes: 0,
                by_purpose: BTreeMap::new(),
                users: UserStats {
                    total: users.len() as u64,
                    verified: users.values().filter(|u| u.verified).count() as u64,
                },
                active_sessions: self.sessions.borrow().len() as u64,
            })
        }
        async fn cleanup(&self, _now: u64, _before: u64) -> ApiResult<Cleanup> {
            unimplemented!("the cron is tested end to end")
        }
    }

    #[derive(Default)]
    struct Outbox(RefCell<Vec<Message>>);

    impl Mailer for &Outbox {
        async fn send(&self, m: &Message) -> ApiResult<()> {
            self.0.borrow_mut().push(m.clone());
            Ok(())
        }
    }

    struct TestClock(Cell<u64>);

    impl Clock for &TestClock {
        fn now(&self) -> u64 {
            self.0.get()
        }
    }

    struct World {
        cfg: Config,
        store: MemoryStore,
        counters: MemoryCounters,
        outbox: Outbox,
        clock: TestClock,
    }

    impl World {
        fn new(extra: &[(&str, &str)]) -> Self {
            let mut vars: HashMap<&str, &str> = HashMap::from([
                ("OTP_PEPPER", "0123456789abcdef0123456789abcdef"),
                ("ADMIN_TOKEN", "admin-secret"),
                ("ARGON2_MEMORY_KIB", "64"),
                ("ARGON2_ITERATIONS", "1"),
            ]);
            vars.extend(extra.iter().copied());
            World {
                cfg: Config::load(|k| vars.get(k).map(|v| v.to_string())).unwrap(),
                store: MemoryStore::default(),
                counters: MemoryCounters::default(),
                outbox: Outbox::default(),
                clock: TestClock(Cell::new(1_800_000_000)),
            }
        }

        fn svc(&self) -> Service<'_, &MemoryStore, &MemoryCounters, &Outbox, &TestClock> {
            Service {
                cfg: &self.cfg,
                store: &self.store,
                counters: &self.counters,
                mailer: &self.outbox,
                clock: &self.clock,
            }
        }

        fn last_code(&self) -> Code {
            let text = self.outbox.0.borrow().last().expect("a mail").text.clone();
            let digits: String = text
                .lines()
                .map(str::trim)
                .find(|l| l.len() == 6 && l.bytes().all(|b| b.is_ascii_digit()))
                .unwrap()
                .into();
            Code::parse(&digits, 6).unwrap()
        }

        fn mails(&self) -> usize {
            self.outbox.0.borrow().len()
        }

        fn advance(&self, secs: u64) {
            self.clock.0.set(self.clock.0.get() + secs);
        }
    }

    impl Counters for &MemoryCounters {
        async fn get(&self, key: &str) -> ApiResult<Option<String>> {
            (*self).get(key).await
        }
        async fn put(&self, key: &str, value: &str, ttl: u64) -> ApiResult<()> {
            (*self).put(key, value, ttl).await
        }
    }

    fn email(s: &str) -> Email {
        Email::parse(s).unwrap()
    }

    fn pw(s: &str) -> Password {
        Password::parse(s, 8, "password").unwrap()
    }

    fn wrong(code: &Code) -> Code {
        let n: u32 = code.expose().parse().unwrap();
        Code::parse(&format!("{:06}", (n + 1) % 1_000_000), 6).unwrap()
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
    fn register_of_a_verified_address_sends_a_notice_and_keeps_the_password() {
        let w = World::new(&[("RESEND_COOLDOWN_SECONDS", "0")]);
        let (ann, svc) = (email("ann@example.com"), w.svc());
        block_on(async {
            svc.register(&ann, &pw("correct horse")).await.unwrap();
            svc.verify_email(&ann, &w.last_code()).await.unwrap();
            svc.register(&ann, &pw("attacker pw")).await.unwrap();
            assert!(w
                .outbox
                .0
                .borrow()
                .last()
                .unwrap()
                .subject
                .starts_with("Your "));
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
            let m = svc
                .resend(&ann, Purpose::VerifyEmail)
                .await
                .unwrap()
                .expect("a mail for a real account");
            w.outbox.0.borrow_mut().push(m);
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
            let m = svc
                .resend(&ann, Purpose::VerifyEmail)
                .await
                .unwrap()
                .unwrap();
            w.outbox.0.borrow_mut().push(m);
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
            let m = svc.password_reset(&ann).await.unwrap().unwrap();
            w.outbox.0.borrow_mut().push(m);
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
    fn admin_stats_compares_the_token() {
        let w = World::new(&[]);
        let svc = w.svc();
        block_on(async {
            assert_eq!(
                svc.admin_stats(Some("nope")).await.unwrap_err(),
                ApiError::Unauthorized
            );
            assert_eq!(
                svc.admin_stats(None).await.unwrap_err(),
                ApiError::Unauthorized
            );
            svc.admin_stats(Some("admin-secret")).await.unwrap();
        });
    }
}
