//! The operator's routes, behind `ADMIN_TOKEN`: stats and API keys.

use super::{random_id, Service};
use crate::config::attempts_fit;
use crate::domain::admin_session;
use crate::domain::api_key::{is_key_id, ApiKey, NewApiKey, Secret};
use crate::domain::audit::{Event, EventFilter, EventKind, EventPage, StoredEvent};
use crate::domain::code::app_scope;
use crate::domain::recipient::Recipient;
use crate::domain::test_recipient::{NewTestRecipient, TestRecipient, MAX_PER_KEY};
use crate::error::{ApiError, ApiResult};
use crate::ports::clock::Clock;
use crate::ports::limits::Counters;
use crate::ports::store::{SeriesPoint, Stats, Store, TestRecipientPut};
use crate::providers::mail::Mailer;
use crate::providers::text::Texter;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

impl<S: Store, K: Counters, M: Mailer, T: Texter, C: Clock> Service<'_, S, K, M, T, C> {
    /// Every admin route starts here; handlers call it before reading a
    /// body. A failed attempt is audited.
    pub fn admin(&self, bearer: Option<&str>) -> ApiResult<()> {
        let expected = self.cfg.admin_token()?;
        // Hashing first makes the comparison independent of both lengths.
        let same = bearer.is_some_and(|given| {
            Sha256::digest(given.as_bytes())
                .ct_eq(&Sha256::digest(expected.as_bytes()))
                .into()
        });
        match same {
            true => Ok(()),
            false => {
                self.audit
                    .record(Event::new(EventKind::AdminAuthFailed, "unauthorized"));
                Err(ApiError::Unauthorized)
            }
        }
    }

    pub async fn admin_stats(&self, bearer: Option<&str>) -> ApiResult<Stats> {
        self.admin(bearer)?;
        self.store.stats(self.clock.now()).await
    }

    /// Returns the stored key and its secret, which is never shown again.
    pub async fn create_api_key(
        &self,
        bearer: Option<&str>,
        new: &NewApiKey,
    ) -> ApiResult<(ApiKey, Secret)> {
        self.admin(bearer)?;
        let secret = Secret::generate()?;
        let id = random_id()?;
        let now = self.clock.now();
        self.store
            .create_api_key(&id, &secret.hash(), &secret.hint(), new, now)
            .await?;
        self.audit_key(EventKind::ApiKeyCreated, &id);
        let key = ApiKey {
            id,
            name: new.name.clone(),
            app_name: new.app_name.clone(),
            channels: new.channels.clone(),
            hint: secret.hint(),
            created_at: now,
            revoked_at: None,
            options: new.options.clone(),
        };
        Ok((key, secret))
    }

    pub async fn api_keys(&self, bearer: Option<&str>) -> ApiResult<Vec<ApiKey>> {
        self.admin(bearer)?;
        self.store.api_keys().await
    }

    pub async fn revoke_api_key(&self, bearer: Option<&str>, id: &str) -> ApiResult<()> {
        self.admin(bearer)?;
        match is_key_id(id) && self.store.revoke_api_key(id, self.clock.now()).await? {
            true => {
                self.audit_key(EventKind::ApiKeyRevoked, id);
                Ok(())
            }
            false => Err(ApiError::ApiKeyNotFound),
        }
    }

    /// Adds a test recipient to the key `key_id`, or replaces its code.
    /// Refused in production unless `ALLOW_TEST_RECIPIENTS=true`: a fixed
    /// code is a back door for whoever learns it.
    pub async fn add_test_recipient(
        &self,
        bearer: Option<&str>,
        key_id: &str,
        new: &NewTestRecipient,
    ) -> ApiResult<TestRecipient> {
        self.admin(bearer)?;
        if !self.cfg.test_recipients_allowed {
            return Err(ApiError::TestRecipientsDisabled);
        }
        let pepper = self.cfg.pepper()?;
        if !is_key_id(key_id) {
            return Err(ApiError::ApiKeyNotFound);
        }
        // The one code answers every send to the recipient: it must be as
        // hard to guess within its attempts as any issued code.
        let max = self.cfg.otp_max_attempts;
        if !attempts_fit(new.code.spec(), max) {
            return Err(ApiError::InvalidRequest(format!(
                "field `code` is too easy to guess within {max} attempts (OTP_MAX_ATTEMPTS): use more digits, or letters too"
            )));
        }
        let scope = app_scope(key_id);
        let (channel, address) = (new.to.channel(), new.to.address());
        let digest = pepper.test_code_digest(&scope, channel, address, &new.code);
        let recipient = TestRecipient {
            channel,
            address: address.to_owned(),
            created_at: self.clock.now(),
        };
        match self
            .store
            .put_test_recipient(key_id, &recipient, &digest, MAX_PER_KEY)
            .await?
        {
            TestRecipientPut::Put => {
                self.audit_test_recipient(EventKind::TestRecipientAdded, &scope, &recipient);
                Ok(recipient)
            }
            TestRecipientPut::NoKey => Err(ApiError::ApiKeyNotFound),
            TestRecipientPut::Full => Err(ApiError::TooManyTestRecipients { max: MAX_PER_KEY }),
        }
    }

    pub async fn test_recipients(
        &self,
        bearer: Option<&str>,
        key_id: &str,
    ) -> ApiResult<Vec<TestRecipient>> {
        self.admin(bearer)?;
        match is_key_id(key_id) {
            true => self.store.test_recipients(key_id).await?,
            false => None,
        }
        .ok_or(ApiError::ApiKeyNotFound)
    }

    pub async fn remove_test_recipient(
        &self,
        bearer: Option<&str>,
        key_id: &str,
        to: &Recipient,
    ) -> ApiResult<()> {
        self.admin(bearer)?;
        let removed = is_key_id(key_id)
            && self
                .store
                .delete_test_recipient(key_id, to.channel(), to.address())
                .await?;
        if !removed {
            return Err(ApiError::TestRecipientNotFound);
        }
        let recipient = TestRecipient {
            channel: to.channel(),
            address: to.address().to_owned(),
            created_at: 0,
        };
        self.audit_test_recipient(
            EventKind::TestRecipientRemoved,
            &app_scope(key_id),
            &recipient,
        );
        Ok(())
    }

    fn audit_test_recipient(&self, kind: EventKind, scope: &str, t: &TestRecipient) {
        self.audit.record(Event {
            scope: Some(scope.to_owned()),
            channel: Some(t.channel),
            address_hash: self.cfg.pepper().ok().map(|p| p.address_tag(&t.address)),
            test: true,
            ..Event::new(kind, "ok")
        });
    }

    fn audit_key(&self, kind: EventKind, id: &str) {
        self.audit.record(Event {
            scope: Some(app_scope(id)),
            ..Event::new(kind, "ok")
        });
    }

    /// A page of the audit trail; `address` narrows it to one email
    /// address or phone number, matched through its keyed hash.
    pub async fn events(
        &self,
        bearer: Option<&str>,
        page: &EventPage,
        address: Option<&str>,
        kind: Option<EventKind>,
    ) -> ApiResult<Vec<StoredEvent>> {
        self.admin(bearer)?;
        let address_hash = match address {
            None => None,
            Some(raw) => {
                let pepper = self.cfg.pepper()?;
                Some(pepper.address_tag(&normalized_address(raw)?))
            }
        };
        self.store
            .events(page, &EventFilter { address_hash, kind })
            .await
    }

    /// The console's chart: codes sent, verified and failed per hour over
    /// the last 24 hours and per day over the last 30, oldest first, every
    /// bucket present (zero when quiet). Read together: one round.
    pub async fn activity(&self, bearer: Option<&str>) -> ApiResult<Activity> {
        self.admin(bearer)?;
        let now = self.clock.now();
        let (hour, day) = (3_600, 86_400);
        let hourly_from = (now / hour).saturating_sub(23) * hour;
        let daily_from = (now / day).saturating_sub(29) * day;
        let (hourly, daily) = futures_util::future::join(
            self.store.event_series(hourly_from, hour),
            self.store.event_series(daily_from, day),
        )
        .await;
        Ok(Activity {
            hourly: every_bucket(hourly?, hourly_from, hour, 24),
            daily: every_bucket(daily?, daily_from, day, 30),
        })
    }

    /// The value of the console's session cookie, once `token` is proven
    /// the admin token (a wrong one is audited, like any admin route's).
    pub fn admin_console_session(&self, token: &str) -> ApiResult<String> {
        self.admin(Some(token))?;
        Ok(admin_session::issue(&self.console_key()?, self.clock.now()))
    }

    /// The admin credential behind a console session cookie, for the admin
    /// routes' flows; `Unauthorized` for a missing, forged or expired one.
    pub fn admin_console(&self, cookie: Option<&str>) -> ApiResult<&str> {
        let key = self.console_key()?;
        match cookie.is_some_and(|c| admin_session::is_valid(&key, c, self.clock.now())) {
            true => self.cfg.admin_token(),
            false => Err(ApiError::Unauthorized),
        }
    }

    /// The console sessions' key: both secrets, so either's rotation ends them.
    fn console_key(&self) -> ApiResult<[u8; 32]> {
        let token = self.cfg.admin_token()?;
        Ok(self.cfg.pepper()?.digest(&["admin console session", token]))
    }
}

/// The console's chart data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    pub hourly: Vec<SeriesPoint>,
    pub daily: Vec<SeriesPoint>,
}

/// `count` buckets of `width` seconds from `from`, filled from `points`.
fn every_bucket(points: Vec<SeriesPoint>, from: u64, width: u64, count: u64) -> Vec<SeriesPoint> {
    (0..count)
        .map(|i| {
            let start = from + i * width;
            points
                .iter()
                .find(|p| p.start == start)
                .cloned()
                .unwrap_or(SeriesPoint {
                    start,
                    ..SeriesPoint::default()
                })
        })
        .collect()
}

/// An address as the flows file it: email addresses parsed, phones in E.164.
fn normalized_address(raw: &str) -> ApiResult<String> {
    let parsed = match raw.contains('@') {
        true => {
            crate::domain::email::Email::parse_field(raw, "address").map(|e| e.as_str().to_owned())
        }
        false => crate::domain::phone::Phone::parse(raw).map(|p| p.as_str().to_owned()),
    };
    parsed.map_err(|_| {
        ApiError::InvalidRequest(
            "query parameter `address` must be an email address or an E.164 phone number".into(),
        )
    })
}

#[cfg(test)]
mod tests {
    use crate::domain::api_key::{Channels, NewApiKey};
    use crate::error::ApiError;
    use crate::service::testkit::{World, ADMIN};
    use pollster::block_on;

    #[test]
    fn admin_routes_compare_the_token() {
        let w = World::new(&[]);
        let svc = w.svc();
        let new = NewApiKey {
            name: "web".into(),
            app_name: None,
            channels: Channels::parse(&["email"]).unwrap(),
            options: Default::default(),
        };
        block_on(async {
            for bad in [Some("nope"), None] {
                assert_eq!(
                    svc.admin_stats(bad).await.unwrap_err(),
                    ApiError::Unauthorized
                );
                assert_eq!(svc.api_keys(bad).await.unwrap_err(), ApiError::Unauthorized);
                assert_eq!(
                    svc.create_api_key(bad, &new).await.unwrap_err(),
                    ApiError::Unauthorized
                );
            }
            svc.admin_stats(ADMIN).await.unwrap();
        });
    }

    #[test]
    fn keys_are_listed_without_secrets_and_revoked_once() {
        let w = World::new(&[]);
        let (key, secret) = w.api_key(&["email", "sms"]);
        let svc = w.svc();
        block_on(async {
            let listed = svc.api_keys(ADMIN).await.unwrap();
            assert_eq!(listed, vec![key.clone()]);
            assert!(secret.ends_with(&key.hint));
            svc.revoke_api_key(ADMIN, &key.id).await.unwrap();
            assert!(svc.api_keys(ADMIN).await.unwrap()[0].revoked_at.is_some());
            assert_eq!(
                svc.revoke_api_key(ADMIN, &"0".repeat(32))
                    .await
                    .unwrap_err(),
                ApiError::ApiKeyNotFound
            );
            assert_eq!(
                svc.revoke_api_key(ADMIN, "../etc").await.unwrap_err(),
                ApiError::ApiKeyNotFound
            );
        });
    }

    #[test]
    fn the_trail_pages_back_and_filters_by_address() {
        use crate::domain::audit::EventPage;
        use crate::domain::email::Email;
        use crate::domain::password::Password;
        use crate::ports::store::AuditStore as _;
        let w = World::new(&[("RESEND_COOLDOWN_SECONDS", "0")]);
        let svc = w.svc();
        block_on(async {
            for who in ["ann@example.com", "bob@example.com", "ann@example.com"] {
                let email = Email::parse(who).unwrap();
                svc.register(&email, &Password::parse("correct horse", 8, "p").unwrap())
                    .await
                    .unwrap();
            }
            (&w.store)
                .record_events(&w.audit.take(), "203.0.113.7", 1)
                .await
                .unwrap();
            let page = EventPage::parse(Some("2"), None).unwrap();
            let first = svc.events(ADMIN, &page, None, None).await.unwrap();
            assert_eq!(first.iter().map(|e| e.id).collect::<Vec<_>>(), [3, 2]);
            let next = EventPage::parse(Some("2"), Some("2")).unwrap();
            assert_eq!(svc.events(ADMIN, &next, None, None).await.unwrap()[0].id, 1);
            let all = EventPage::parse(None, None).unwrap();
            let ann = svc
                .events(ADMIN, &all, Some(" Ann@Example.com"), None)
                .await;
            assert_eq!(
                ann.unwrap().iter().map(|e| e.id).collect::<Vec<_>>(),
                [3, 1]
            );
            assert_eq!(
                svc.events(ADMIN, &all, Some("no such thing"), None)
                    .await
                    .unwrap_err()
                    .code(),
                "invalid_request"
            );
            assert_eq!(
                svc.events(None, &all, None, None).await.unwrap_err(),
                ApiError::Unauthorized
            );
        });
    }

    #[test]
    fn a_revoked_keys_test_recipients_are_gone_with_it() {
        let w = World::new(&[]);
        let (key, _) = w.api_key(&["email"]);
        let svc = w.svc();
        block_on(async {
            assert_eq!(svc.test_recipients(ADMIN, &key.id).await.unwrap(), vec![]);
            svc.revoke_api_key(ADMIN, &key.id).await.unwrap();
            assert_eq!(
                svc.test_recipients(ADMIN, &key.id).await.unwrap_err(),
                ApiError::ApiKeyNotFound
            );
        });
    }
}
