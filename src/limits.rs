//! Send and request limits. The decisions are pure; the counters live in a
//! key-value store behind `Counters` (Workers KV in production).
//!
//! KV is eventually consistent and has no atomic increment, so these limits
//! are coarse: concurrent requests at one edge location may each see the
//! old count. The hard guarantee against guessing is the per-code attempt
//! counter, which D1 updates atomically.

use crate::code::CodeKey;
use crate::error::{ApiError, ApiResult};

/// KV's smallest allowed expiration TTL.
const KV_MIN_TTL: u64 = 60;

#[allow(async_fn_in_trait)]
pub trait Counters {
    async fn get(&self, key: &str) -> ApiResult<Option<String>>;
    async fn put(&self, key: &str, value: &str, ttl_secs: u64) -> ApiResult<()>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendDecision {
    /// Only `check` hands out a `Permit`, and only a permit can be recorded.
    Allowed(Permit),
    /// The previous send to this address in this lane was too recent.
    Cooldown { retry_after_secs: u64 },
    /// This address has had its hourly share of messages.
    HourlyCap { retry_after_secs: u64 },
}

/// What `check` read, so that `record` need not read it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permit {
    hour: Window,
}

#[derive(Debug, Clone, Copy)]
pub struct SendPolicy {
    pub cooldown_secs: u64,
    pub max_per_hour: u32,
}

/// A cooldown lane: the scope, channel and purpose a cooldown applies to,
/// such as `core:email:verify_email`. The hourly cap spans every lane of an
/// address.
pub fn lane(key: &CodeKey<'_>) -> String {
    format!("{}:{}:{}", key.scope, key.channel.as_str(), key.purpose)
}

impl SendPolicy {
    /// `address_tag` is a keyed pseudonym, so KV never holds an address.
    pub async fn check(
        &self,
        kv: &impl Counters,
        address_tag: &str,
        lane: &str,
        now: u64,
    ) -> ApiResult<SendDecision> {
        if let Some(last) = read_u64(kv, &cooldown_key(address_tag, lane)).await? {
            let elapsed = now.saturating_sub(last);
            if elapsed < self.cooldown_secs {
                return Ok(SendDecision::Cooldown {
                    retry_after_secs: self.cooldown_secs - elapsed,
                });
            }
        }
        let hour = Window::read(kv, "hr", address_tag, 3_600, now).await?;
        if hour.seen >= u64::from(self.max_per_hour) {
            return Ok(SendDecision::HourlyCap {
                retry_after_secs: hour.retry_after(now),
            });
        }
        Ok(SendDecision::Allowed(Permit { hour }))
    }

    pub async fn record(
        &self,
        kv: &impl Counters,
        address_tag: &str,
        lane: &str,
        now: u64,
        permit: Permit,
    ) -> ApiResult<()> {
        kv.put(
            &cooldown_key(address_tag, lane),
            &now.to_string(),
            self.cooldown_secs.max(KV_MIN_TTL),
        )
        .await?;
        permit.hour.bump(kv).await
    }
}

/// A fixed window of one counter: `{prefix}:{id}:{window number}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    key: String,
    secs: u64,
    seen: u64,
}

impl Window {
    pub async fn read(
        kv: &impl Counters,
        prefix: &str,
        id: &str,
        secs: u64,
        now: u64,
    ) -> ApiResult<Self> {
        let key = format!("{prefix}:{id}:{}", now / secs);
        let seen = read_u64(kv, &key).await?.unwrap_or(0);
        Ok(Self { key, secs, seen })
    }

    fn retry_after(&self, now: u64) -> u64 {
        self.secs - now % self.secs
    }

    /// `Err(RateLimited)` once `limit` events were counted in this window.
    pub fn admit(&self, limit: u64, now: u64) -> ApiResult<()> {
        match self.seen >= limit {
            true => Err(ApiError::RateLimited {
                retry_after_secs: self.retry_after(now),
            }),
            false => Ok(()),
        }
    }

    pub async fn bump(self, kv: &impl Counters) -> ApiResult<()> {
        let ttl = self.secs + KV_MIN_TTL;
        kv.put(&self.key, &(self.seen + 1).to_string(), ttl).await
    }
}

/// Fixed one-minute windows of POSTs per client IP.
pub async fn check_ip(kv: &impl Counters, ip: &str, per_minute: u32, now: u64) -> ApiResult<()> {
    let w = Window::read(kv, "ip", ip, 60, now).await?;
    w.admit(per_minute.into(), now)?;
    w.bump(kv).await
}

/// The hourly send quota of one API key; checked before a send, bumped after.
pub async fn key_quota(
    kv: &impl Counters,
    key_id: &str,
    per_hour: u32,
    now: u64,
) -> ApiResult<Window> {
    let w = Window::read(kv, "key", key_id, 3_600, now).await?;
    w.admit(per_hour.into(), now)?;
    Ok(w)
}

fn cooldown_key(tag: &str, lane: &str) -> String {
    format!("cd:{lane}:{tag}")
}

async fn read_u64(kv: &impl Counters, key: &str) -> ApiResult<Option<u64>> {
    Ok(kv.get(key).await?.and_then(|v| v.parse().ok()))
}

#[cfg(test)]
pub mod memory {
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashMap;

    /// In-memory counters for native tests of the policy.
    #[derive(Default)]
    pub struct MemoryCounters(pub RefCell<HashMap<String, String>>);

    impl Counters for MemoryCounters {
        async fn get(&self, key: &str) -> ApiResult<Option<String>> {
            Ok(self.0.borrow().get(key).cloned())
        }
        async fn put(&self, key: &str, value: &str, _ttl: u64) -> ApiResult<()> {
            self.0.borrow_mut().insert(key.into(), value.into());
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::memory::MemoryCounters;
    use super::*;
    use pollster::block_on;

    const VERIFY: &str = "core:verify_email";
    const RESET: &str = "core:reset_password";

    const POLICY: SendPolicy = SendPolicy {
        cooldown_secs: 60,
        max_per_hour: 3,
    };
    const T0: u64 = 1_800_000_000; // on an hour boundary

    /// A send as the flows make it: checked, then recorded with its permit.
    async fn allowed_send(kv: &MemoryCounters, tag: &str, lane: &str, now: u64) {
        let SendDecision::Allowed(permit) = POLICY.check(kv, tag, lane, now).await.unwrap() else {
            panic!("the send was refused");
        };
        POLICY.record(kv, tag, lane, now, permit).await.unwrap();
    }

    #[test]
    fn cooldown_blocks_until_it_has_passed() {
        let kv = MemoryCounters::default();
        block_on(async {
            assert!(matches!(
                POLICY.check(&kv, "t", VERIFY, T0).await.unwrap(),
                SendDecision::Allowed(_)
            ));
            allowed_send(&kv, "t", VERIFY, T0).await;
            assert_eq!(
                POLICY.check(&kv, "t", VERIFY, T0 + 15).await.unwrap(),
                SendDecision::Cooldown {
                    retry_after_secs: 45
                }
            );
            // Another purpose has its own cooldown.
            assert!(matches!(
                POLICY.check(&kv, "t", RESET, T0 + 15).await.unwrap(),
                SendDecision::Allowed(_)
            ));
            assert!(matches!(
                POLICY.check(&kv, "t", VERIFY, T0 + 60).await.unwrap(),
                SendDecision::Allowed(_)
            ));
        });
    }

    #[test]
    fn hourly_cap_counts_every_purpose_of_an_address() {
        let kv = MemoryCounters::default();
        block_on(async {
            for i in 0..3 {
                let p = if i % 2 == 0 { VERIFY } else { RESET };
                allowed_send(&kv, "t", p, T0 + i * 100).await;
            }
            assert_eq!(
                POLICY.check(&kv, "t", VERIFY, T0 + 1_000).await.unwrap(),
                SendDecision::HourlyCap {
                    retry_after_secs: 2_600
                }
            );
            assert!(matches!(
                POLICY
                    .check(&kv, "other", VERIFY, T0 + 1_000)
                    .await
                    .unwrap(),
                SendDecision::Allowed(_)
            ));
            assert!(matches!(
                POLICY.check(&kv, "t", VERIFY, T0 + 3_600).await.unwrap(),
                SendDecision::Allowed(_)
            ));
        });
    }

    #[test]
    fn ip_limit_allows_n_per_minute() {
        let kv = MemoryCounters::default();
        block_on(async {
            for _ in 0..3 {
                check_ip(&kv, "198.51.100.7", 3, T0 + 5).await.unwrap();
            }
            assert_eq!(
                check_ip(&kv, "198.51.100.7", 3, T0 + 5).await.unwrap_err(),
                ApiError::RateLimited {
                    retry_after_secs: 55
                }
            );
            check_ip(&kv, "198.51.100.8", 3, T0 + 5).await.unwrap();
            check_ip(&kv, "198.51.100.7", 3, T0 + 60).await.unwrap();
        });
    }

    #[test]
    fn key_quota_counts_only_what_is_bumped() {
        let kv = MemoryCounters::default();
        block_on(async {
            for _ in 0..5 {
                // A check alone (a send that then failed) uses no quota.
                key_quota(&kv, "k1", 2, T0).await.unwrap();
            }
            for _ in 0..2 {
                key_quota(&kv, "k1", 2, T0)
                    .await
                    .unwrap()
                    .bump(&kv)
                    .await
                    .unwrap();
            }
            assert_eq!(
                key_quota(&kv, "k1", 2, T0 + 100).await.unwrap_err(),
                ApiError::RateLimited {
                    retry_after_secs: 3_500
                }
            );
            key_quota(&kv, "k2", 2, T0).await.unwrap();
            key_quota(&kv, "k1", 2, T0 + 3_600).await.unwrap();
        });
    }

    #[test]
    fn keys_never_hold_the_address() {
        let kv = MemoryCounters::default();
        block_on(allowed_send(&kv, "tag123", VERIFY, T0));
        assert!(kv
            .0
            .borrow()
            .keys()
            .all(|k| k.contains("tag123") && !k.contains('@')));
    }
}
