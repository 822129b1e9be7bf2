//! Recovery codes: the way back in when the authenticator app is lost.
//! Ten at a time, each good once, shown once and stored only as an HMAC
//! under the pepper, bound to the account (a digest copied to another
//! account's rows is no code there).

use crate::domain::code::{hex, Pepper};
use crate::domain::totp::TotpCode;
use crate::error::ApiError;

/// Codes made at a time.
pub const COUNT: usize = 10;
/// Characters in a code: 10 from a 32-symbol alphabet, 50 bits, far past
/// guessing behind the per-account budget of second-factor failures.
pub const LENGTH: usize = 10;
/// Crockford's base32 (no i, l, o, u: nothing to misread when typed from
/// paper), lowercase.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

#[derive(Clone, PartialEq, Eq)]
pub struct RecoveryCode(String);

impl std::fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecoveryCode(<redacted>)")
    }
}

impl RecoveryCode {
    /// `COUNT` fresh codes. 32 divides 256, so a byte's low five bits
    /// pick a symbol with no modulo bias.
    pub fn generate() -> Result<Vec<Self>, ApiError> {
        let mut bytes = [0u8; COUNT * LENGTH];
        getrandom::getrandom(&mut bytes)
            .map_err(|e| ApiError::internal("recovery codes: getrandom", e))?;
        Ok(bytes
            .chunks(LENGTH)
            .map(|c| {
                Self(
                    c.iter()
                        .map(|b| ALPHABET[usize::from(b & 31)] as char)
                        .collect(),
                )
            })
            .collect())
    }

    /// As typed: any case, with or without the dash and spaces; the
    /// letters Crockford's alphabet leaves out read as the digits they
    /// look like.
    pub fn parse(raw: &str) -> Option<Self> {
        let code: String = raw
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .map(|c| match c.to_ascii_lowercase() {
                'o' => '0',
                'i' | 'l' => '1',
                c => c,
            })
            .collect();
        (code.len() == LENGTH && code.bytes().all(|b| ALPHABET.contains(&b))).then_some(Self(code))
    }

    /// As shown to the person: `xxxxx-xxxxx`.
    pub fn shown(&self) -> String {
        format!("{}-{}", &self.0[..LENGTH / 2], &self.0[LENGTH / 2..])
    }

    /// What is stored: an HMAC under the pepper, bound to the account.
    pub fn digest(&self, pepper: &Pepper, user_id: &str) -> String {
        hex(&pepper.digest(&["recovery_code", user_id, &self.0]))
    }
}

/// What a second step is proven with: a code from the authenticator app,
/// or a recovery code. Six digits are always the app's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecondFactor {
    Totp(TotpCode),
    Recovery(RecoveryCode),
}

impl SecondFactor {
    pub fn parse(raw: &str) -> Option<Self> {
        TotpCode::parse(raw)
            .map(Self::Totp)
            .or_else(|| RecoveryCode::parse(raw).map(Self::Recovery))
    }

    /// The audit trail's and the ID token's name for it.
    pub fn method(&self) -> &'static str {
        match self {
            Self::Totp(_) => "totp",
            Self::Recovery(_) => "recovery_code",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_codes_of_fifty_bits_all_different() {
        let codes = RecoveryCode::generate().unwrap();
        assert_eq!(codes.len(), COUNT);
        let mut shown: Vec<String> = codes.iter().map(RecoveryCode::shown).collect();
        assert!(shown
            .iter()
            .all(|c| c.len() == LENGTH + 1 && c.as_bytes()[5] == b'-'));
        shown.sort();
        shown.dedup();
        assert_eq!(shown.len(), COUNT);
    }

    #[test]
    fn a_code_reads_back_however_it_is_typed() {
        let code = RecoveryCode::generate().unwrap().remove(0);
        let shown = code.shown();
        for typed in [shown.clone(), shown.to_uppercase(), shown.replace('-', " ")] {
            assert_eq!(RecoveryCode::parse(&typed), Some(code.clone()), "{typed}");
        }
        assert_eq!(
            RecoveryCode::parse("OIL23-45678"),
            RecoveryCode::parse("01123-45678")
        );
        for bad in ["abcde-fghj", "abcde-fghjkm", "abcde-fghju", ""] {
            assert_eq!(RecoveryCode::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_digest_is_keyed_and_bound_to_the_account() {
        let pepper = Pepper::new("0123456789abcdef0123456789abcdef").unwrap();
        let other = Pepper::new("fedcba9876543210fedcba9876543210").unwrap();
        let code = RecoveryCode::parse("abcde-fghjk").unwrap();
        let d = code.digest(&pepper, "u1");
        assert_eq!(d.len(), 64);
        assert!(!d.contains("abcdefghjk"));
        assert_ne!(d, code.digest(&pepper, "u2"));
        assert_ne!(d, code.digest(&other, "u1"));
    }

    #[test]
    fn six_digits_are_an_app_code_and_the_rest_a_recovery_code() {
        assert!(matches!(
            SecondFactor::parse("123456"),
            Some(SecondFactor::Totp(_))
        ));
        assert!(matches!(
            SecondFactor::parse("abcde-fghjk"),
            Some(SecondFactor::Recovery(_))
        ));
        assert_eq!(SecondFactor::parse("12345"), None);
        assert_eq!(
            format!("{:?}", RecoveryCode::parse("abcde-fghjk").unwrap()),
            "RecoveryCode(<redacted>)"
        );
    }
}
