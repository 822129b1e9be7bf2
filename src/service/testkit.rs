//! In-memory stand-ins for the service's traits, for native tests of the
//! flows' decisions. The D1 store itself is proven end to end.

use super::Service;
use crate::api_key::{ApiKey, Channels, NewApiKey};
use crate::audit::{Audit, Event, EventPage, StoredEvent};
use crate::clock::Clock;
use crate::code::{Code, CodeKey};
use crate::config::Config;
use crate::email::Email;
use crate::error::ApiResult;
use crate::limits::memory::MemoryCounters;
use crate::limits::Counters;
use crate::mail::{Mailer, Message};
use crate::store::{Cleanup, Effect, NewCode, PendingCode, Stats, Store, User, UserStats};
use crate::text::{TextChannel, TextMessage, Texter};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};

type CodeId = (String, &'static str, String, String);

fn code_id(k: &CodeKey<'_>) -> CodeId {
    (
        k.scope.into(),
        k.channel.as_str(),
        k.purpose.into(),
        k.address.into(),
    )
}

/// Mirrors the D1 store's semantics closely enough to test decisions.
#[derive(Default)]
pub struct MemoryStore {
    pub users: RefCell<HashMap<String, User>>,
    pub codes: RefCell<HashMap<CodeId, (PendingCode, u64)>>,
    pub sessions: RefCell<HashMap<String, (String, u64)>>,
    pub keys: RefCell<Vec<(String, ApiKey)>>,
    pub events: RefCell<Vec<StoredEvent>>,
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
        let id = code_id(&c.key);
        let (attempts, window_ends) = match codes.get(&id) {
            Some((old, ends)) if *ends > c.now => (old.attempts, *ends),
            _ => (0, c.now + window),
        };
        let code = PendingCode {
            id: c.id.into(),
            digest: c.digest.into(),
            attempts,
            expires_at: c.expires_at,
        };
        codes.insert(id, (code, window_ends));
        Ok(())
    }
    async fn claim_attempt(&self, key: &CodeKey<'_>, max: u32) -> ApiResult<Option<PendingCode>> {
        let mut codes = self.codes.borrow_mut();
        Ok(codes.get_mut(&code_id(key)).map(|(c, _)| {
            c.attempts = (c.attempts + 1).min(max + 1);
            c.clone()
        }))
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
            .find(|(_, (c, _))| c.id == id && c.attempts <= max && c.expires_at > now)
            .map(|(k, _)| k.clone())
        else {
            return Ok(false);
        };
        codes.remove(&key);
        let mut users = self.users.borrow_mut();
        match effect {
            Effect::Nothing => {}
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
            Effect::SignIn {
                user_id,
                token_hash,
                expires_at,
            } => {
                for u in users.values_mut().filter(|u| u.id == user_id) {
                    u.verified = true;
                }
                self.sessions
                    .borrow_mut()
                    .insert(token_hash, (user_id.into(), expires_at));
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
    async fn delete_session(&self, hash: &str) -> ApiResult<Option<String>> {
        let Some((uid, _)) = self.sessions.borrow_mut().remove(hash) else {
            return Ok(None);
        };
        let users = self.users.borrow();
        Ok(users
            .values()
            .find(|u| u.id == uid)
            .map(|u| u.email.clone()))
    }
    async fn create_api_key(
        &self,
        id: &str,
        hash: &str,
        hint: &str,
        new: &NewApiKey,
        now: u64,
    ) -> ApiResult<()> {
        let key = ApiKey {
            id: id.into(),
            name: new.name.clone(),
            app_name: new.app_name.clone(),
            channels: new.channels.clone(),
            hint: hint.into(),
            created_at: now,
            revoked_at: None,
        };
        self.keys.borrow_mut().push((hash.into(), key));
        Ok(())
    }
    async fn api_keys(&self) -> ApiResult<Vec<ApiKey>> {
        Ok(self
            .keys
            .borrow()
            .iter()
            .rev()
            .map(|(_, k)| k.clone())
            .collect())
    }
    async fn api_key_by_hash(&self, hash: &str) -> ApiResult<Option<ApiKey>> {
        let keys = self.keys.borrow();
        Ok(keys
            .iter()
            .find(|(h, k)| h == hash && k.revoked_at.is_none())
            .map(|(_, k)| k.clone()))
    }
    async fn revoke_api_key(&self, id: &str, now: u64) -> ApiResult<bool> {
        let mut keys = self.keys.borrow_mut();
        let Some((_, k)) = keys.iter_mut().find(|(_, k)| k.id == id) else {
            return Ok(false);
        };
        k.revoked_at.get_or_insert(now);
        let scope = crate::code::app_scope(id);
        self.codes.borrow_mut().retain(|(s, ..), _| *s != scope);
        Ok(true)
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
            app_codes: 0,
            api_keys: self.keys.borrow().len() as u64,
        })
    }
    async fn cleanup(&self, _now: u64, _before: u64, _audit_before: u64) -> ApiResult<Cleanup> {
        unimplemented!("the cron is tested end to end")
    }
    async fn record_events(&self, events: &[Event], ip: &str, now: u64) -> ApiResult<()> {
        let mut stored = self.events.borrow_mut();
        for e in events {
            let id = stored.len() as u64 + 1;
            stored.push(StoredEvent {
                id,
                at: crate::clock::rfc3339(now),
                event: e.kind.as_str().into(),
                outcome: e.outcome.into(),
                scope: e.scope.clone(),
                purpose: e.purpose.clone(),
                channel: e.channel.map(|c| c.as_str().into()),
                address_hash: e.address_hash.clone(),
                ip: Some(ip.into()),
            });
        }
        Ok(())
    }
    async fn events(
        &self,
        page: &EventPage,
        address_hash: Option<&str>,
    ) -> ApiResult<Vec<StoredEvent>> {
        Ok(self
            .events
            .borrow()
            .iter()
            .rev()
            .filter(|e| page.before.is_none_or(|b| e.id < b))
            .filter(|e| address_hash.is_none_or(|h| e.address_hash.as_deref() == Some(h)))
            .take(page.limit as usize)
            .cloned()
            .collect())
    }
}

/// Captures every mail and text; `fail_next` makes the next send fail.
#[derive(Default)]
pub struct Outbox {
    pub mails: RefCell<Vec<Message>>,
    pub texts: RefCell<Vec<TextMessage>>,
    pub fail_next: Cell<bool>,
}

impl Outbox {
    fn deliver(&self) -> ApiResult<()> {
        match self.fail_next.replace(false) {
            true => Err(crate::error::ApiError::MailDeliveryFailed),
            false => Ok(()),
        }
    }
}

impl Mailer for &Outbox {
    fn ready(&self) -> ApiResult<()> {
        Ok(())
    }
    async fn send(&self, m: &Message) -> ApiResult<()> {
        self.deliver()?;
        self.mails.borrow_mut().push(m.clone());
        Ok(())
    }
}

impl Texter for &Outbox {
    fn ready(&self, _channel: TextChannel) -> ApiResult<()> {
        Ok(())
    }
    async fn send(&self, m: &TextMessage) -> ApiResult<()> {
        self.deliver()?;
        self.texts.borrow_mut().push(m.clone());
        Ok(())
    }
}

pub struct TestClock(pub Cell<u64>);

impl Clock for &TestClock {
    fn now(&self) -> u64 {
        self.0.get()
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

pub type TestService<'a> =
    Service<'a, &'a MemoryStore, &'a MemoryCounters, &'a Outbox, &'a Outbox, &'a TestClock>;

pub struct World {
    pub cfg: Config,
    pub store: MemoryStore,
    pub counters: MemoryCounters,
    pub outbox: Outbox,
    pub clock: TestClock,
    pub audit: Audit,
}

pub const ADMIN: Option<&str> = Some("admin-secret");

impl World {
    pub fn new(extra: &[(&str, &str)]) -> Self {
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
            audit: Audit::default(),
        }
    }

    pub fn svc(&self) -> TestService<'_> {
        Service {
            cfg: &self.cfg,
            store: &self.store,
            counters: &self.counters,
            mailer: &self.outbox,
            texter: &self.outbox,
            clock: &self.clock,
            audit: &self.audit,
        }
    }

    /// The kinds and outcomes recorded since the last call.
    pub fn events(&self) -> Vec<(&'static str, &'static str)> {
        self.audit
            .take()
            .into_iter()
            .map(|e| (e.kind.as_str(), e.outcome))
            .collect()
    }

    pub fn last_mail(&self) -> Message {
        self.outbox.mails.borrow().last().expect("a mail").clone()
    }

    /// The code on its own line in the last mail, as typed back.
    pub fn last_code(&self) -> Code {
        let text = self
            .outbox
            .mails
            .borrow()
            .last()
            .expect("a mail")
            .text
            .clone();
        let code = text
            .lines()
            .filter_map(|l| l.strip_prefix("    "))
            .next()
            .expect("a code line");
        Code::parse_any(code).unwrap()
    }

    pub fn last_text_code(&self) -> Code {
        let body = self
            .outbox
            .texts
            .borrow()
            .last()
            .expect("a text")
            .body
            .clone();
        Code::parse_any(body.split(' ').next().unwrap()).unwrap()
    }

    pub fn mails(&self) -> usize {
        self.outbox.mails.borrow().len()
    }

    pub fn keep(&self, deferred: Option<Message>) {
        self.outbox
            .mails
            .borrow_mut()
            .push(deferred.expect("a deferred mail"));
    }

    pub fn advance(&self, secs: u64) {
        self.clock.0.set(self.clock.0.get() + secs);
    }

    pub fn api_key(&self, channels: &[&str]) -> (ApiKey, String) {
        let new = NewApiKey {
            name: "test".into(),
            app_name: Some("Shop".into()),
            channels: Channels::parse(channels).unwrap(),
        };
        let (key, secret) = pollster::block_on(self.svc().create_api_key(ADMIN, &new)).unwrap();
        (key, secret.expose().to_owned())
    }
}

/// Another code of the same shape: a wrong guess.
pub fn wrong(code: &Code) -> Code {
    let mut s = code.expose().to_owned();
    let last = s.pop().unwrap();
    s.push(if last == '2' { '3' } else { '2' });
    Code::parse_any(&s).unwrap()
}
