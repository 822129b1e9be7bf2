//! One-time codes: generation without modulo bias, the keyed digest that is
//! the only form ever stored, and the constant-time comparison.

use crate::error::ApiError;
use crate::purpose::Purpose;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;
use subtle::ConstantTimeEq;

pub const DIGITS: &[u8] = b"0123456789";
pub const MIN_LENGTH: usize = 4;
pub const MAX_LENGTH: usize = 10;

/// A code as a user typed it: exactly `length` ASCII digits.
#[derive(Clone, PartialEq, Eq)]
pub struct Code(String);

impl Code {
    pub fn parse(raw: &str, length: usize) -> Result<Self, ApiError> {
        let trimmed = raw.trim();
        if trimmed.len() != length || !trimmed.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::InvalidRequest(format!(
                "field `code` must be {length} digits"
            )));
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// A fresh code from the platform CSPRNG.
    pub fn generate(length: usize) -> Result<Self, ApiError> {
        let mut fill = |buf: &mut [u8]| {
            getrandom::getrandom(buf).map_err(|e| ApiError::Internal(format!("getrandom: {e}")))
        };
        Ok(Self(sample(length, DIGITS, &mut fill)?))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Code(<redacted>)")
    }
}

/// Draws `length` symbols from `alphabet` by rejection sampling: a byte is
/// used only below the largest multiple of the alphabet size, so every
/// symbol is exactly equally likely (a plain `% n` would favour the first
/// `256 % n` symbols).
pub fn sample<E>(
    length: usize,
    alphabet: &[u8],
    fill: &mut impl FnMut(&mut [u8]) -> Result<(), E>,
) -> Result<String, E> {
    let n = alphabet.len();
    assert!((2..=256).contains(&n), "alphabet size must be in 2..=256");
    let limit = 256 - (256 % n);
    let mut out = String::with_capacity(length);
    let mut buf = [0u8; 32];
    while out.len() < length {
        fill(&mut buf)?;
        for &b in &buf {
            if (b as usize) < limit {
                out.push(alphabet[b as usize % n] as char);
                if out.len() == length {
                    break;
                }
            }
        }
    }
    Ok(out)
}

/// The secret key of code digests. Without it a stolen database cannot be
/// brute-forced offline, because a 6-digit space is tiny.
#[derive(Clone)]
pub struct Pepper(Vec<u8>);

impl Pepper {
    pub const MIN_BYTES: usize = 32;

    pub fn new(secret: &str) -> Result<Self, String> {
        if secret.len() < Self::MIN_BYTES {
            return Err(format!(
                "secret OTP_PEPPER must be at least {} bytes (e.g. `openssl rand -hex 32`)",
                Self::MIN_BYTES
            ));
        }
        Ok(Self(secret.as_bytes().to_vec()))
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes a key of any size")
    }

    /// HMAC-SHA256 over length-prefixed fields, so no two distinct
    /// (scope, purpose, address, code) tuples share an input.
    pub fn digest(&self, fields: &[&str]) -> [u8; 32] {
        let mut mac = self.mac();
        for f in fields {
            mac.update(&(f.len() as u32).to_be_bytes());
            mac.update(f.as_bytes());
        }
        mac.finalize().into_bytes().into()
    }

    pub fn code_digest(&self, purpose: Purpose, address: &str, code: &Code) -> String {
        hex(&self.digest(&["code", purpose.as_str(), address, code.expose()]))
    }

    /// A stable pseudonym for an address, for rate-limit keys and logs.
    pub fn address_tag(&self, address: &str) -> String {
        hex(&self.digest(&["address", address])[..16])
    }
}

impl fmt::Debug for Pepper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pepper(<redacted>)")
    }
}

/// Constant-time equality of two hex digests.
pub fn digests_match(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

pub fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pepper() -> Pepper {
        Pepper::new("an-example-pepper-of-at-least-32-bytes!").unwrap()
    }

    #[test]
    fn generated_codes_have_the_requested_length_and_digits() {
        for len in MIN_LENGTH..=MAX_LENGTH {
            let c = Code::generate(len).unwrap();
            assert_eq!(c.expose().len(), len);
            assert!(c.expose().bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn sampling_rejects_the_bytes_that_would_bias_the_result() {
        // 250..=255 are the six bytes a `% 10` would map onto 0..=5 a second time.
        let mut calls = 0;
        let mut fill = |buf: &mut [u8]| -> Result<(), ()> {
            calls += 1;
            for (i, b) in buf.iter_mut().enumerate() {
                *b = if calls == 1 { 250 + (i % 6) as u8 } else { 7 };
            }
            Ok(())
        };
        assert_eq!(sample(6, DIGITS, &mut fill).unwrap(), "777777");
        assert_eq!(calls, 2, "a whole buffer of biased bytes must be discarded");
    }

    fn chi_squared(counts: &[u64]) -> f64 {
        let expected = counts.iter().sum::<u64>() as f64 / counts.len() as f64;
        counts
            .iter()
            .map(|&c| (c as f64 - expected).powi(2) / expected)
            .sum()
    }

    #[test]
    fn digits_are_uniform_chi_squared() {
        let mut counts = [0u64; 10];
        for _ in 0..20_000 {
            for b in Code::generate(10).unwrap().expose().bytes() {
                counts[(b - b'0') as usize] += 1;
            }
        }
        let chi2 = chi_squared(&counts);
        // 9 degrees of freedom: p = 0.0001 at 33.7. A `% 10` over bytes gives ~900 here.
        assert!(chi2 < 33.7, "chi2 = {chi2}, counts = {counts:?}");
    }

    #[test]
    fn modulo_mapping_would_have_failed_the_uniformity_bound() {
        // Guards the test above: the biased mapping it must catch really is caught.
        let mut counts = [0u64; 10];
        for b in 0..=255u32 {
            counts[(b % 10) as usize] += 800;
        }
        let chi2 = chi_squared(&counts);
        assert!(chi2 > 33.7);
    }

    #[test]
    fn parse_accepts_exact_digits_only() {
        assert!(Code::parse("123456", 6).is_ok());
        assert!(Code::parse(" 123456 ", 6).is_ok());
        for bad in ["12345", "1234567", "12345a", "١٢٣٤٥٦", ""] {
            assert!(Code::parse(bad, 6).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn digest_is_keyed_and_bound_to_purpose_and_address() {
        let p = pepper();
        let code = Code::parse("123456", 6).unwrap();
        let d = p.code_digest(Purpose::VerifyEmail, "a@example.com", &code);
        assert_eq!(d.len(), 64);
        assert!(!d.contains("123456"));
        assert_ne!(
            d,
            p.code_digest(Purpose::ResetPassword, "a@example.com", &code)
        );
        assert_ne!(
            d,
            p.code_digest(Purpose::VerifyEmail, "b@example.com", &code)
        );
        let other = Pepper::new("another-pepper-that-is-32-bytes-long!!").unwrap();
        assert_ne!(
            d,
            other.code_digest(Purpose::VerifyEmail, "a@example.com", &code)
        );
        assert_eq!(
            d,
            p.code_digest(Purpose::VerifyEmail, "a@example.com", &code)
        );
    }

    #[test]
    fn digest_fields_are_length_prefixed() {
        let p = pepper();
        assert_ne!(p.digest(&["ab", "c"]), p.digest(&["a", "bc"]));
    }

    #[test]
    fn short_peppers_are_refused() {
        assert!(Pepper::new("short").is_err());
        assert!(Pepper::new("").is_err());
    }

    #[test]
    fn compare_is_exact() {
        assert!(digests_match("abcd", "abcd"));
        assert!(!digests_match("abcd", "abce"));
        assert!(!digests_match("abcd", "abc"));
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let c = Code::parse("424242", 6).unwrap();
        assert!(!format!("{c:?}").contains("424242"));
        assert!(!format!("{:?}", pepper()).contains("example"));
    }
}
