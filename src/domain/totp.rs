//! Time-based one-time passwords (RFC 6238) for authenticator apps: what
//! every app reads is HMAC-SHA1, 6 digits, 30-second steps, so that is all
//! this speaks. A code is accepted for the step it was made in and one
//! step either side (clock drift), and only for a step after the last one
//! accepted, so a code is good once.

use crate::error::ApiError;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

/// The step, in seconds (RFC 6238's default, what every app assumes).
pub const STEP_SECS: u64 = 30;
/// Digits in a code.
pub const DIGITS: usize = 6;
/// Steps accepted either side of now.
pub const DRIFT_STEPS: u64 = 1;
/// 160 bits: RFC 4226 §4 recommends it, and it is the HMAC-SHA1 block's
/// natural key size.
pub const SECRET_BYTES: usize = 20;

/// An authenticator's shared secret. Never logged: `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret([u8; SECRET_BYTES]);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret(<redacted>)")
    }
}

impl TotpSecret {
    pub fn generate() -> Result<Self, ApiError> {
        let mut bytes = [0u8; SECRET_BYTES];
        getrandom::getrandom(&mut bytes)
            .map_err(|e| ApiError::internal("totp secret: getrandom", e))?;
        Ok(Self(bytes))
    }

    /// The secret as it was sealed: exactly `SECRET_BYTES` bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// Base32 without padding (RFC 4648 §6), as authenticator apps take it.
    pub fn base32(&self) -> String {
        base32(&self.0)
    }

    /// The `otpauth://totp/` URI an app scans (Google Authenticator's Key
    /// Uri Format, which every app reads): the issuer in the label and as
    /// a parameter, the account's address after it.
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> String {
        let label = format!("{}:{}", encode(issuer), encode(account));
        format!(
            "otpauth://totp/{label}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
            self.base32(),
            encode(issuer)
        )
    }

    /// RFC 4226's HOTP value of `counter`, as `DIGITS` digits.
    pub fn hotp(&self, counter: u64) -> String {
        let mut mac = Hmac::<Sha1>::new_from_slice(&self.0).expect("HMAC takes a key of any size");
        mac.update(&counter.to_be_bytes());
        let digest = mac.finalize().into_bytes();
        // Dynamic truncation (RFC 4226 §5.3).
        let offset = usize::from(digest[19] & 0x0f);
        let bin = u32::from_be_bytes([
            digest[offset] & 0x7f,
            digest[offset + 1],
            digest[offset + 2],
            digest[offset + 3],
        ]);
        format!("{:0width$}", bin % 10u32.pow(DIGITS as u32), width = DIGITS)
    }

    /// The step of a right `code` at unix time `now`, if it is one after
    /// `last_step` (a step already used is refused: a replay). The steps
    /// around now are all computed and compared in constant time, so the
    /// time taken says nothing of which step, if any, matched.
    pub fn accepted_step(&self, code: &TotpCode, now: u64, last_step: u64) -> Option<u64> {
        let current = now / STEP_SECS;
        let mut accepted = None;
        for step in current.saturating_sub(DRIFT_STEPS)..=current + DRIFT_STEPS {
            let right: bool = self.hotp(step).as_bytes().ct_eq(code.0.as_bytes()).into();
            if right && step > last_step {
                accepted = Some(step);
            }
        }
        accepted
    }
}

/// Six digits, as typed (spaces, which apps show in the middle, dropped).
#[derive(Clone, PartialEq, Eq)]
pub struct TotpCode(String);

impl std::fmt::Debug for TotpCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpCode(<redacted>)")
    }
}

impl TotpCode {
    pub fn parse(raw: &str) -> Option<Self> {
        let digits: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
        (digits.len() == DIGITS && digits.bytes().all(|b| b.is_ascii_digit()))
            .then_some(Self(digits))
    }
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    for chunk in bytes.chunks(5) {
        let mut block = [0u8; 5];
        block[..chunk.len()].copy_from_slice(chunk);
        let n = block.iter().fold(0u64, |n, b| (n << 8) | u64::from(*b));
        let chars = (chunk.len() * 8).div_ceil(5);
        for i in 0..chars {
            out.push(BASE32[((n >> (35 - 5 * i)) & 31) as usize] as char);
        }
    }
    out
}

/// Percent-encodes all but RFC 3986's unreserved characters.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B's SHA-1 seed.
    fn rfc_secret() -> TotpSecret {
        TotpSecret::from_bytes(b"12345678901234567890").unwrap()
    }

    #[test]
    fn rfc_6238_sha1_vectors_at_six_digits() {
        // Appendix B gives 8 digits; 6 digits are their last six
        // (the same truncated value, mod 10^6).
        for (time, eight) in [
            (59u64, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(rfc_secret().hotp(time / STEP_SECS), eight[2..], "T={time}");
        }
    }

    #[test]
    fn rfc_4226_hotp_vectors() {
        let expected = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        for (counter, code) in expected.iter().enumerate() {
            assert_eq!(rfc_secret().hotp(counter as u64), *code);
        }
    }

    #[test]
    fn one_step_of_drift_either_way_is_accepted_and_two_are_not() {
        let s = rfc_secret();
        let now = 1_234_567_890;
        let step = now / STEP_SECS;
        let code = |st: u64| TotpCode::parse(&s.hotp(st)).unwrap();
        assert_eq!(s.accepted_step(&code(step), now, 0), Some(step));
        assert_eq!(s.accepted_step(&code(step - 1), now, 0), Some(step - 1));
        assert_eq!(s.accepted_step(&code(step + 1), now, 0), Some(step + 1));
        assert_eq!(s.accepted_step(&code(step - 2), now, 0), None);
        assert_eq!(s.accepted_step(&code(step + 2), now, 0), None);
    }

    #[test]
    fn a_step_already_used_is_a_replay() {
        let s = rfc_secret();
        let now = 1_234_567_890;
        let step = now / STEP_SECS;
        let code = TotpCode::parse(&s.hotp(step)).unwrap();
        assert_eq!(s.accepted_step(&code, now, step), None);
        assert_eq!(s.accepted_step(&code, now, step - 1), Some(step));
        // A code of an earlier step than one used is refused too.
        let earlier = TotpCode::parse(&s.hotp(step - 1)).unwrap();
        assert_eq!(s.accepted_step(&earlier, now, step), None);
    }

    #[test]
    fn codes_parse_as_six_digits_only() {
        assert!(TotpCode::parse("123 456").is_some());
        for bad in ["12345", "1234567", "12345a", "", "١٢٣٤٥٦"] {
            assert!(TotpCode::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn base32_matches_rfc_4648() {
        for (raw, b32) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32(raw.as_bytes()), b32);
        }
        assert_eq!(rfc_secret().base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    }

    #[test]
    fn the_uri_names_the_issuer_and_account_encoded() {
        let uri = rfc_secret().otpauth_uri("Acme App", "a+b@example.com");
        assert_eq!(
            uri,
            "otpauth://totp/Acme%20App:a%2Bb%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Acme%20App&algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn secrets_are_160_random_bits_and_never_printed() {
        let a = TotpSecret::generate().unwrap();
        assert_ne!(a, TotpSecret::generate().unwrap());
        assert_eq!(a.bytes().len(), 20);
        assert_eq!(format!("{a:?}"), "TotpSecret(<redacted>)");
    }
}
