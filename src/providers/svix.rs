//! Webhook signatures as Svix makes them, for Resend's delivery events:
//! `svix-signature` holds `v1,<base64>` entries, each an HMAC-SHA256 of
//! `{svix-id}.{svix-timestamp}.{body}` under the secret's bytes (the
//! base64 after `whsec_`). A timestamp more than five minutes from now is
//! refused, so a captured event cannot be replayed later.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

pub const TOLERANCE_SECS: u64 = 300;

/// A webhook secret, `whsec_<base64>`, decoded.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

impl WebhookSecret {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let encoded = raw.trim().strip_prefix("whsec_").unwrap_or(raw.trim());
        match STANDARD.decode(encoded) {
            Ok(bytes) if bytes.len() >= 16 => Ok(Self(bytes)),
            _ => Err(
                "secret RESEND_WEBHOOK_SECRET must be the webhook's signing secret as Resend shows it (whsec_...)".into(),
            ),
        }
    }

    fn sign(&self, id: &str, timestamp: &str, body: &[u8]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().into()
    }

    /// Whether one of `signatures`' `v1` entries signs this message, and
    /// its timestamp is within `TOLERANCE_SECS` of `now`.
    pub fn verifies(
        &self,
        id: &str,
        timestamp: &str,
        signatures: &str,
        body: &[u8],
        now: u64,
    ) -> bool {
        let Ok(at) = timestamp.trim().parse::<u64>() else {
            return false;
        };
        if at.abs_diff(now) > TOLERANCE_SECS || id.is_empty() {
            return false;
        }
        let expected = self.sign(id, timestamp.trim(), body);
        signatures
            .split_whitespace()
            .filter_map(|entry| entry.strip_prefix("v1,"))
            .filter_map(|sig| STANDARD.decode(sig).ok())
            .any(|sig| bool::from(sig.as_slice().ct_eq(&expected)))
    }

    /// The `svix-signature` header for a message: for tests and stand-ins.
    #[cfg(test)]
    pub fn header(&self, id: &str, timestamp: &str, body: &[u8]) -> String {
        format!("v1,{}", STANDARD.encode(self.sign(id, timestamp, body)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Svix's documented example: this secret, id, timestamp and body
    /// give this signature.
    #[test]
    fn matches_svixs_example() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        let sig = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        assert!(secret.verifies(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "1614265330",
            sig,
            body,
            1_614_265_330
        ));
        // Among several entries, and only while fresh.
        let several = format!("v1,AAAA {sig} v2,zzz");
        assert!(secret.verifies(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "1614265330",
            &several,
            body,
            1_614_265_330 + 299
        ));
        assert!(!secret.verifies(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "1614265330",
            sig,
            body,
            1_614_265_330 + 301
        ));
        assert!(!secret.verifies(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "1614265330",
            sig,
            b"{}",
            1_614_265_330
        ));
        assert!(!secret.verifies("msg_other", "1614265330", sig, body, 1_614_265_330));
        assert!(!secret.verifies(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "x",
            sig,
            body,
            1_614_265_330
        ));
    }

    #[test]
    fn secrets_are_whsec_base64() {
        assert!(WebhookSecret::parse("whsec_").is_err());
        assert!(WebhookSecret::parse("whsec_!!!").is_err());
        let s = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert!(!format!("{s:?}").contains("MfKQ"));
    }
}
