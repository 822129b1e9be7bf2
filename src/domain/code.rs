//! One-time codes: generation without modulo bias, the keyed digest that is
//! the only form ever stored, and the constant-time comparison.

use crate::domain::channel::Channel;
use crate::error::ApiError;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;
use subtle::ConstantTimeEq;

pub const DIGITS: &[u8] = b"0123456789";
/// Digits and upper-case letters without the look-alikes 0/O and 1/I/L.
pub const UNAMBIGUOUS: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
pub const MIN_LENGTH: usize = 4;
pub const MAX_LENGTH: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alphabet {
    Digits,
    Alphanumeric,
}

impl Alphabet {
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        match raw {
            "digits" => Ok(Self::Digits),
            "alphanumeric" => Ok(Self::Alphanumeric),
            _ => Err(ApiError::InvalidRequest(
                "field `alphabet` must be `digits` or `alphanumeric`".into(),
            )),
        }
    }

    pub fn symbols(self) -> &'static [u8] {
        match self {
            Self::Digits => DIGITS,
            Self::Alphanumeric => UNAMBIGUOUS,
        }
    }
}

/// The shape of the codes to issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeSpec {
    pub length: usize,
    pub alphabet: Alphabet,
}

impl CodeSpec {
    pub fn digits(length: usize) -> Self {
        Self {
            length,
            alphabet: Alphabet::Digits,
        }
    }

    /// How many distinct codes of this shape there are (31^10 fits a u64).
    pub fn space(&self) -> u64 {
        (self.alphabet.symbols().len() as u64).saturating_pow(self.length as u32)
    }

    /// `length` must be within 4..=10: outside it, a caller gets 400.
    pub fn new(length: usize, alphabet: Alphabet) -> Result<Self, ApiError> {
        if !(MIN_LENGTH..=MAX_LENGTH).contains(&length) {
            return Err(ApiError::InvalidRequest(format!(
                "field `length` must be from {MIN_LENGTH} to {MAX_LENGTH}"
            )));
        }
        Ok(Self { length, alphabet })
    }
}

/// A code as issued or as a user typed it, in canonical (upper-case) form.
#[derive(Clone, PartialEq, Eq)]
pub struct Code(String);

impl Code {
    /// Exactly `length` ASCII digits: the codes of the account flows.
    pub fn parse(raw: &str, length: usize) -> Result<Self, ApiError> {
        let trimmed = raw.trim();
        if trimmed.len() != length || !trimmed.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::InvalidRequest(format!(
                "field `code` must be {length} digits"
            )));
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// Any code the generic API can have issued: 4 to 10 letters or digits,
    /// matched case-insensitively. A well-formed code of the wrong shape
    /// simply does not match, and counts as a wrong guess.
    pub fn parse_any(raw: &str) -> Result<Self, ApiError> {
        let trimmed = raw.trim();
        if !(MIN_LENGTH..=MAX_LENGTH).contains(&trimmed.len())
            || !trimmed.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(ApiError::InvalidRequest(format!(
                "field `code` must be {MIN_LENGTH} to {MAX_LENGTH} letters or digits"
            )));
        }
        Ok(Self(trimmed.to_ascii_uppercase()))
    }

    /// A fresh code from the platform CSPRNG.
    pub fn generate(spec: CodeSpec) -> Result<Self, ApiError> {
        let mut fill = |buf: &mut [u8]| {
            getrandom::getrandom(buf).map_err(|e| ApiError::internal("code generate: getrandom", e))
        };
        Ok(Self(sample(
            spec.length,
            spec.alphabet.symbols(),
            &mut fill,
        )?))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The smallest shape this code could have come from: its length, in
    /// digits if it has only digits, else letters and digits.
    pub fn spec(&self) -> CodeSpec {
        let alphabet = match self.0.bytes().all(|b| b.is_ascii_digit()) {
            true => Alphabet::Digits,
            false => Alphabet::Alphanumeric,
        };
        CodeSpec {
            length: self.0.len(),
            alphabet,
        }
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Code(<redacted>)")
    }
}

/// The service's own account flows.
pub const CORE_SCOPE: &str = "core";

/// The lifetimes a code may have: an app's `ttl_seconds`, and
/// `OTP_TTL_SECONDS`, its default.
pub const MIN_TTL_SECS: u64 = 60;
pub const MAX_TTL_SECS: u64 = 86_400;

/// The scope of an API key's codes: one app never verifies another's.
pub fn app_scope(key_id: &str) -> String {
    format!("{APP_SCOPE_PREFIX}{key_id}")
}

/// What an app's scope is named with, before its key's id.
pub const APP_SCOPE_PREFIX: &str = "key:";

/// Everything a pending code is filed under; at most one code per key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeKey<'a> {
    pub scope: &'a str,
    pub channel: Channel,
    pub purpose: &'a str,
    pub address: &'a str,
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

    pub fn code_digest(&self, key: &CodeKey<'_>, code: &Code) -> String {
        self.code_digest_with(key, code, &[])
    }

    /// The digest of a verification code bound to the password hash it was
    /// issued for: it proves the address for that password and no other.
    /// A code anyone could ask for (`/v1/resend`) is filed unbound.
    pub fn bound_code_digest(&self, key: &CodeKey<'_>, code: &Code, password_hash: &str) -> String {
        self.code_digest_with(key, code, &["password", password_hash])
    }

    fn code_digest_with(&self, key: &CodeKey<'_>, code: &Code, extra: &[&str]) -> String {
        let fields = [
            "code",
            key.scope,
            key.channel.as_str(),
            key.purpose,
            key.address,
            code.expose(),
        ];
        let all: Vec<&str> = fields.iter().chain(extra).copied().collect();
        hex(&self.digest(&all))
    }

    /// The digest of a test recipient's fixed code (`domain::test_recipient`):
    /// bound to the key's scope, the channel and the address, but not to a
    /// purpose, since the one code answers for every purpose of the app.
    /// Its own label keeps it apart from every issued code's digest.
    pub fn test_code_digest(
        &self,
        scope: &str,
        channel: Channel,
        address: &str,
        code: &Code,
    ) -> String {
        hex(&self.digest(&["test-code", scope, channel.as_str(), address, code.expose()]))
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
            let c = Code::generate(CodeSpec::digits(len)).unwrap();
            assert_eq!(c.expose().len(), len);
            assert!(c.expose().bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn alphanumeric_codes_have_no_look_alikes_and_use_the_whole_alphabet() {
        let spec = CodeSpec::new(10, Alphabet::Alphanumeric).unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..500 {
            let c = Code::generate(spec).unwrap();
            assert_eq!(c.expose().len(), 10);
            seen.extend(c.expose().bytes());
        }
        for b in b"0O1IL" {
            assert!(!seen.contains(b), "look-alike {} was drawn", *b as char);
        }
        assert_eq!(
            seen.len(),
            UNAMBIGUOUS.len(),
            "every symbol shows up in 5,000 draws"
        );
        assert_eq!(UNAMBIGUOUS.len(), 31);
    }

    #[test]
    fn the_space_is_symbols_to_the_length() {
        assert_eq!(CodeSpec::digits(6).space(), 1_000_000);
        let spec = CodeSpec::new(10, Alphabet::Alphanumeric).unwrap();
        assert_eq!(spec.space(), 31u64.pow(10));
    }

    #[test]
    fn spec_bounds_are_4_to_10() {
        assert!(CodeSpec::new(3, Alphabet::Digits).is_err());
        assert!(CodeSpec::new(11, Alphabet::Digits).is_err());
        assert!(CodeSpec::new(4, Alphabet::Digits).is_ok());
        assert!(CodeSpec::new(10, Alphabet::Alphanumeric).is_ok());
    }

    #[test]
    fn typed_codes_are_matched_case_insensitively() {
        assert_eq!(Code::parse_any(" ab3k9z ").unwrap().expose(), "AB3K9Z");
        assert_eq!(
            Code::parse_any("AB3K9Z").unwrap(),
            Code::parse_any("ab3K9z").unwrap()
        );
        for bad in ["abc", "abcdefghijk", "ab-3k9", "ab 3k9", ""] {
            assert!(Code::parse_any(bad).is_err(), "{bad:?}");
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
            for b in Code::generate(CodeSpec::digits(10))
                .unwrap()
                .expose()
                .bytes()
            {
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

    const KEY: CodeKey<'static> = CodeKey {
        scope: CORE_SCOPE,
        channel: Channel::Email,
        purpose: "verify_email",
        address: "a@example.com",
    };

    #[test]
    fn digest_is_keyed_and_bound_to_every_field_of_the_code_key() {
        let p = pepper();
        let code = Code::parse("123456", 6).unwrap();
        let d = p.code_digest(&KEY, &code);
        assert_eq!(d.len(), 64);
        assert!(!d.contains("123456"));
        let scope = app_scope("k1");
        for other in [
            CodeKey {
                purpose: "reset_password",
                ..KEY
            },
            CodeKey {
                address: "b@example.com",
                ..KEY
            },
            CodeKey {
                channel: Channel::Sms,
                ..KEY
            },
            CodeKey {
                scope: &scope,
                ..KEY
            },
        ] {
            assert_ne!(d, p.code_digest(&other, &code), "{other:?}");
        }
        let other = Pepper::new("another-pepper-that-is-32-bytes-long!!").unwrap();
        assert_ne!(d, other.code_digest(&KEY, &code));
        assert_eq!(d, p.code_digest(&KEY, &code));
    }

    #[test]
    fn a_bound_digest_is_tied_to_its_password_hash() {
        let p = pepper();
        let code = Code::parse("123456", 6).unwrap();
        let bound = p.bound_code_digest(&KEY, &code, "$argon2id$one");
        assert_ne!(bound, p.code_digest(&KEY, &code));
        assert_ne!(bound, p.bound_code_digest(&KEY, &code, "$argon2id$two"));
        assert_eq!(bound, p.bound_code_digest(&KEY, &code, "$argon2id$one"));
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
