//! A phone number, as SMS and WhatsApp codes are sent to.

use crate::error::ApiError;
use std::fmt;

/// A phone number in E.164 form: `+`, a country code, at most 15 digits.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Phone(String);

impl Phone {
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let s = raw.trim();
        let digits = s.strip_prefix('+').unwrap_or("");
        // The shortest real numbers (country code plus subscriber) have 7 digits.
        let ok = (7..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if !ok {
            return Err(ApiError::InvalidRequest(
                "field `to` must be a phone number in E.164 form, like +14155550123".into(),
            ));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Phone {
    // Numbers are personal data: debug output keeps only the last two digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Phone(***{})", &self.0[self.0.len() - 2..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_must_be_e164() {
        for ok in [
            "+14155550123",
            "+447911123456",
            " +4915112345678 ",
            "+3312345",
        ] {
            assert!(Phone::parse(ok).is_ok(), "{ok:?}");
        }
        for bad in [
            "14155550123",
            "+1 415 555 0123",
            "+1-415-555-0123",
            "+04155550123",
            "+1234567890123456",
            "+123456",
            "+",
            "whatsapp:+14155550123",
            "+1415555012a",
            "",
        ] {
            assert!(Phone::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn debug_hides_most_of_the_number() {
        let p = Phone::parse("+14155550123").unwrap();
        assert_eq!(format!("{p:?}"), "Phone(***23)");
    }
}
