//! The admin console's session: a cookie that proves its holder typed
//! `ADMIN_TOKEN` recently, without storing anything. It is the expiry and
//! an HMAC of it under a key the service derives from both the pepper and
//! the admin token (`Service::admin_console_session`): it dies by itself
//! after `ADMIN_SESSION_SECS`, rotating `ADMIN_TOKEN` ends every one of
//! them, and a stolen cookie is no offline test of guesses at the token.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Short: the console can create and revoke keys.
pub const ADMIN_SESSION_SECS: u64 = 1_800;

fn tag(key: &[u8; 32], expires_at: u64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(b"otp-edge admin session\0");
    mac.update(&expires_at.to_be_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// A session for the console, valid until `now + ADMIN_SESSION_SECS`.
pub fn issue(key: &[u8; 32], now: u64) -> String {
    let expires_at = now + ADMIN_SESSION_SECS;
    format!("{expires_at}.{}", tag(key, expires_at))
}

/// Whether `value` is an unexpired session made with `key`.
pub fn is_valid(key: &[u8; 32], value: &str, now: u64) -> bool {
    let Some((expires, given)) = value.split_once('.') else {
        return false;
    };
    let Ok(expires_at) = expires.parse::<u64>() else {
        return false;
    };
    let expected = tag(key, expires_at);
    let same: bool = expected.as_bytes().ct_eq(given.as_bytes()).into();
    same && now < expires_at && expires_at <= now + ADMIN_SESSION_SECS
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &[u8; 32] = &[7; 32];

    #[test]
    fn a_session_holds_until_it_expires_and_only_for_its_token() {
        let s = issue(TOKEN, 1_000);
        assert!(is_valid(TOKEN, &s, 1_000));
        assert!(is_valid(TOKEN, &s, 1_000 + ADMIN_SESSION_SECS - 1));
        assert!(!is_valid(TOKEN, &s, 1_000 + ADMIN_SESSION_SECS));
        assert!(!is_valid(&[8; 32], &s, 1_000));
    }

    #[test]
    fn a_forged_or_stretched_session_is_refused() {
        let s = issue(TOKEN, 1_000);
        let (exp, tag) = s.split_once('.').unwrap();
        let later = exp.parse::<u64>().unwrap() + 3_600;
        for forged in [
            format!("{later}.{tag}"),
            format!("{exp}.{}", &tag[1..]),
            format!("{exp}.{}0", &tag[..tag.len() - 1]),
            exp.to_string(),
            String::new(),
            format!("x.{tag}"),
        ] {
            assert!(!is_valid(TOKEN, &forged, 1_000), "{forged}");
        }
        // Made with the right token but reaching too far ahead: not ours.
        let far = 1_000 + 10 * ADMIN_SESSION_SECS;
        assert!(!is_valid(TOKEN, &format!("{far}.{}", tag_for(far)), 1_000));
    }

    fn tag_for(expires_at: u64) -> String {
        tag(TOKEN, expires_at)
    }
}
