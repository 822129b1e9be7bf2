//! Send and request limits. The decisions are pure; the state lives where
//! the platform can hold it at the rate it is written:
//!
//! - **Cooldowns** (one send per address and lane per
//!   `RESEND_COOLDOWN_SECONDS`) in Workers KV, behind `Counters`. A
//!   cooldown key is written only by a send its cooldown allowed, so at
//!   most once per cooldown: within KV's one write per second per key. KV
//!   is eventually consistent, so concurrent sends can each pass one stale
//!   read; the hourly caps below bound what that lets through.
//! - **Hourly caps and the per-key quota** in D1 (`SendCount`), checked and
//!   counted in the same transaction as the code the message carries, so
//!   they are exact under any concurrency. KV could not count them: sends to
//!   one address in different lanes, or an app's sends, come faster than
//!   one write per second per key, and KV has no atomic increment.
//! - **Per-client request caps** in the Workers Rate Limiting binding,
//!   keyed by `client_key`.

use crate::domain::code::CodeKey;
use crate::error::ApiResult;
use std::net::IpAddr;

/// A Workers Rate Limiting binding (`[[ratelimits]]` in wrangler.toml) and
/// the period it is configured with there, which a refusal's Retry-After
/// gives; a test keeps the two in step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub binding: &'static str,
    pub period_secs: u64,
}

/// Every request from a client, any method, except the calls of apps.
pub const CLIENT_LIMIT: RateLimit = RateLimit {
    binding: "IP_LIMITER",
    period_secs: 60,
};

/// Calls to `/v1/otp/*`, checked per client before the key is looked up,
/// so that guessing keys costs a bounded number of D1 reads. It is
/// generous: an app's backend speaks for many users from few addresses,
/// and its sends are capped per key.
pub const APP_LIMIT: RateLimit = RateLimit {
    binding: "API_LIMITER",
    period_secs: 10,
};

/// KV's smallest allowed expiration TTL.
const KV_MIN_TTL: u64 = 60;
pub const HOUR: u64 = 3_600;

#[allow(async_fn_in_trait)]
pub trait Counters {
    async fn get(&self, key: &str) -> ApiResult<Option<String>>;
    async fn put(&self, key: &str, value: &str, ttl_secs: u64) -> ApiResult<()>;
}

/// A KV write the answer does not wait for: it goes out after the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterWrite {
    pub key: String,
    pub value: String,
    pub ttl_secs: u64,
}

impl CounterWrite {
    pub async fn apply(&self, kv: &impl Counters) -> ApiResult<()> {
        kv.put(&self.key, &self.value, self.ttl_secs).await
    }
}

#[derive(Debug, Clone, Copy)]
pub struct SendPolicy {
    pub cooldown_secs: u64,
    /// `MAX_SENDS_PER_HOUR`: messages to one address from one scope (the
    /// core flows, or one API key).
    pub per_scope: u32,
    /// `MAX_SENDS_PER_ADDRESS_PER_HOUR`: the ceiling across scopes, larger
    /// than `per_scope`, so that no scope can use up another's.
    pub per_address: u32,
}

/// A cooldown lane: the scope, channel and purpose a cooldown applies to,
/// such as `core:email:verify_email`.
pub fn lane(key: &CodeKey<'_>) -> String {
    format!("{}:{}:{}", key.scope, key.channel.as_str(), key.purpose)
}

/// The hourly counters one message is counted in, each with its cap.
/// Counting is all or nothing: when one counter is at its cap, none moves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendCount {
    pub hour: u64,
    pub counters: Vec<(String, u32)>,
    /// Which of `counters` caps the sends to a number's prefix.
    pub prefix: Option<usize>,
}

impl SendCount {
    /// Adds the hourly cap of sends to numbers sharing a prefix
    /// (`SMS_PREFIX_DIGITS`), named by `tag`, a keyed pseudonym of the
    /// prefix. Counted across every scope: a pumping run through a number
    /// range costs the operator whichever key it comes through.
    pub fn with_prefix(mut self, tag: &str, cap: u32) -> Self {
        self.prefix = Some(self.counters.len());
        self.counters.push((format!("prefix|{tag}"), cap));
        self
    }

    /// Seconds until the hour's counters no longer apply.
    pub fn retry_after(&self, now: u64) -> u64 {
        HOUR - now % HOUR
    }
}

impl SendPolicy {
    /// Seconds left of the cooldown of `lane` for the address whose limit
    /// tag is `tag`, or `None` when a send may go. `tag` is a keyed
    /// pseudonym, so KV never holds an address.
    pub async fn cooldown(
        &self,
        kv: &impl Counters,
        tag: &str,
        lane: &str,
        now: u64,
    ) -> ApiResult<Option<u64>> {
        if self.cooldown_secs == 0 {
            return Ok(None);
        }
        let last = kv
            .get(&cooldown_key(tag, lane))
            .await?
            .and_then(|v| v.parse::<u64>().ok());
        Ok(last
            .map(|last| now.saturating_sub(last))
            .filter(|elapsed| *elapsed < self.cooldown_secs)
            .map(|elapsed| self.cooldown_secs - elapsed))
    }

    /// The write that starts the cooldown after a delivered send; none
    /// without a cooldown. The caller makes it after the answer
    /// (`service::Later`): the answer does not depend on it.
    pub fn cooldown_start(&self, tag: &str, lane: &str, now: u64) -> Option<CounterWrite> {
        (self.cooldown_secs > 0).then(|| CounterWrite {
            key: cooldown_key(tag, lane),
            value: now.to_string(),
            ttl_secs: self.cooldown_secs.max(KV_MIN_TTL),
        })
    }

    /// The counters of one message to the address tagged `tag` from
    /// `scope`; an API key's scope adds its quota.
    pub fn count(&self, scope: &str, tag: &str, key_quota: Option<u32>, now: u64) -> SendCount {
        let mut counters = vec![
            (format!("{scope}|{tag}"), self.per_scope),
            (format!("*|{tag}"), self.per_address),
        ];
        if let Some(quota) = key_quota {
            counters.push((format!("{scope}|*"), quota));
        }
        SendCount {
            hour: now / HOUR,
            counters,
            prefix: None,
        }
    }
}

fn cooldown_key(tag: &str, lane: &str) -> String {
    format!("cd:{lane}:{tag}")
}

/// The key a client's requests are counted under: an IPv4 address, or
/// the /64 of an IPv6 address, since one host holds a whole /64 and could
/// rotate through it. `None` when the address is missing or unreadable.
pub fn client_key(ip: Option<&str>) -> Option<String> {
    let ip: IpAddr = ip?.trim().parse().ok()?;
    Some(match ip {
        IpAddr::V4(v4) => format!("ip4:{v4}"),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("ip4:{v4}"),
            None => {
                let s = v6.segments();
                format!("ip6:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    })
}

/// The header a caller without a client address (a service binding, or
/// another Worker of the account) names itself with.
pub const CALLER_HEADER: &str = "x-otp-client";

/// The key a request is counted under (`client_key`). Cloudflare sets
/// `CF-Connecting-IP` on every request from the internet, overwriting any
/// a client sends, so only a caller inside the account (a service binding)
/// comes without one: it is counted under the name it gives in
/// `X-OTP-Client` (1 to 32 of `a-z 0-9 - _`), each name its own bucket, or
/// under `internal:unnamed`. A binding that calls on behalf of a person
/// should forward their `CF-Connecting-IP` instead, so each person keeps
/// their own cap (docs/api.md).
pub fn caller_key(ip: Option<&str>, caller: Option<&str>) -> String {
    if ip.is_some() {
        return client_key(ip).unwrap_or_else(|| "unknown".into());
    }
    let named = caller.map(str::trim).filter(|c| {
        (1..=32).contains(&c.len())
            && c.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    });
    format!("internal:{}", named.unwrap_or("unnamed"))
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

    const VERIFY: &str = "core:email:verify_email";
    const RESET: &str = "core:email:reset_password";

    const POLICY: SendPolicy = SendPolicy {
        cooldown_secs: 60,
        per_scope: 3,
        per_address: 10,
    };
    const T0: u64 = 1_800_000_000; // on an hour boundary

    async fn start(policy: SendPolicy, kv: &MemoryCounters, tag: &str, lane: &str, now: u64) {
        if let Some(write) = policy.cooldown_start(tag, lane, now) {
            write.apply(kv).await.unwrap();
        }
    }

    #[test]
    fn cooldown_blocks_until_it_has_passed() {
        let kv = MemoryCounters::default();
        block_on(async {
            assert_eq!(POLICY.cooldown(&kv, "t", VERIFY, T0).await.unwrap(), None);
            start(POLICY, &kv, "t", VERIFY, T0).await;
            assert_eq!(
                POLICY.cooldown(&kv, "t", VERIFY, T0 + 15).await.unwrap(),
                Some(45)
            );
            // Another purpose has its own cooldown, another address too.
            assert_eq!(
                POLICY.cooldown(&kv, "t", RESET, T0 + 15).await.unwrap(),
                None
            );
            assert_eq!(
                POLICY.cooldown(&kv, "u", VERIFY, T0 + 15).await.unwrap(),
                None
            );
            assert_eq!(
                POLICY.cooldown(&kv, "t", VERIFY, T0 + 60).await.unwrap(),
                None
            );
        });
    }

    #[test]
    fn no_cooldown_writes_nothing() {
        let kv = MemoryCounters::default();
        let policy = SendPolicy {
            cooldown_secs: 0,
            ..POLICY
        };
        block_on(async {
            start(policy, &kv, "t", VERIFY, T0).await;
            assert!(kv.0.borrow().is_empty());
            assert_eq!(policy.cooldown(&kv, "t", VERIFY, T0).await.unwrap(), None);
        });
    }

    #[test]
    fn a_send_counts_per_scope_per_address_and_per_key() {
        let core = POLICY.count("core", "tag1", None, T0 + 100);
        assert_eq!(core.hour, T0 / HOUR);
        assert_eq!(
            core.counters,
            [("core|tag1".to_string(), 3), ("*|tag1".to_string(), 10)]
        );
        assert_eq!(core.retry_after(T0 + 100), 3_500);
        let app = POLICY.count("key:k1", "tag1", Some(1000), T0);
        assert_eq!(app.counters[0].0, "key:k1|tag1");
        assert_eq!(
            app.counters[1], core.counters[1],
            "one ceiling across scopes"
        );
        assert_eq!(app.counters[2], ("key:k1|*".to_string(), 1000));
    }

    #[test]
    fn keys_never_hold_the_address() {
        let kv = MemoryCounters::default();
        block_on(start(POLICY, &kv, "tag123", VERIFY, T0));
        assert!(kv
            .0
            .borrow()
            .keys()
            .all(|k| k.contains("tag123") && !k.contains('@')));
    }

    #[test]
    fn the_limiters_periods_are_those_of_wrangler_toml() {
        let toml = include_str!("../../wrangler.toml");
        for limit in [CLIENT_LIMIT, APP_LIMIT] {
            let block = toml
                .split("[[ratelimits]]")
                .find(|b| b.contains(&format!("name = \"{}\"", limit.binding)))
                .unwrap_or_else(|| panic!("no [[ratelimits]] named {}", limit.binding));
            assert!(
                block.contains(&format!("period = {} }}", limit.period_secs)),
                "{}: {block}",
                limit.binding
            );
        }
    }

    #[test]
    fn clients_are_ipv4_addresses_or_ipv6_slash_64s() {
        assert_eq!(
            client_key(Some("198.51.100.7")).unwrap(),
            "ip4:198.51.100.7"
        );
        let a = client_key(Some("2001:db8:1:2:3:4:5:6")).unwrap();
        assert_eq!(a, "ip6:2001:db8:1:2::/64");
        // Another host in the same /64 is the same client; the next /64 is not.
        assert_eq!(client_key(Some("2001:db8:1:2:ffff::1")).unwrap(), a);
        assert_ne!(client_key(Some("2001:db8:1:3::1")).unwrap(), a);
        assert_eq!(
            client_key(Some("::ffff:198.51.100.7")).unwrap(),
            "ip4:198.51.100.7"
        );
        for bad in [None, Some(""), Some("unknown"), Some("1.2.3.4.5")] {
            assert_eq!(client_key(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn callers_without_an_address_are_counted_by_the_name_they_give() {
        assert_eq!(
            caller_key(Some("198.51.100.7"), Some("billing")),
            "ip4:198.51.100.7"
        );
        assert_eq!(caller_key(Some("garbage"), Some("billing")), "unknown");
        assert_eq!(caller_key(None, Some("billing")), "internal:billing");
        assert_eq!(caller_key(None, Some("shop-2")), "internal:shop-2");
        for bad in [
            None,
            Some(""),
            Some("Billing"),
            Some("a b"),
            Some(&"x".repeat(33)[..]),
        ] {
            assert_eq!(caller_key(None, bad), "internal:unnamed", "{bad:?}");
        }
    }
}
