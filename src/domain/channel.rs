//! Where a code goes: an email address, or a phone number over SMS or WhatsApp.

use crate::domain::email::Email;
use crate::error::ApiError;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    Email,
    Sms,
    Whatsapp,
}

impl Channel {
    pub const ALL: [Channel; 3] = [Channel::Email, Channel::Sms, Channel::Whatsapp];

    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        match raw {
            "email" => Ok(Self::Email),
            "sms" => Ok(Self::Sms),
            "whatsapp" => Ok(Self::Whatsapp),
            _ => Err(ApiError::InvalidRequest(
                "field `channel` must be `email`, `sms` or `whatsapp`".into(),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Sms => "sms",
            Self::Whatsapp => "whatsapp",
        }
    }
}

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

/// A parsed `to` for a channel. Its canonical text is what codes are scoped by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    Email(Email),
    Sms(Phone),
    Whatsapp(Phone),
}

impl Recipient {
    pub fn parse(channel: Channel, to: &str) -> Result<Self, ApiError> {
        Ok(match channel {
            Channel::Email => Self::Email(Email::parse_field(to, "to")?),
            Channel::Sms => Self::Sms(Phone::parse(to)?),
            Channel::Whatsapp => Self::Whatsapp(Phone::parse(to)?),
        })
    }

    pub fn channel(&self) -> Channel {
        match self {
            Self::Email(_) => Channel::Email,
            Self::Sms(_) => Channel::Sms,
            Self::Whatsapp(_) => Channel::Whatsapp,
        }
    }

    pub fn address(&self) -> &str {
        match self {
            Self::Email(e) => e.as_str(),
            Self::Sms(p) | Self::Whatsapp(p) => p.as_str(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_round_trip() {
        for c in Channel::ALL {
            assert_eq!(Channel::parse(c.as_str()).unwrap(), c);
        }
        for bad in ["Email", "SMS", "fax", ""] {
            assert!(Channel::parse(bad).is_err());
        }
    }

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
    fn recipients_follow_their_channel() {
        let r = Recipient::parse(Channel::Email, "Ann@Example.com").unwrap();
        assert_eq!(
            (r.channel(), r.address()),
            (Channel::Email, "ann@example.com")
        );
        let r = Recipient::parse(Channel::Whatsapp, "+14155550123").unwrap();
        assert_eq!(r.channel(), Channel::Whatsapp);
        let e = Recipient::parse(Channel::Sms, "ann@example.com").unwrap_err();
        assert!(matches!(e, ApiError::InvalidRequest(d) if d.contains("E.164")));
        let e = Recipient::parse(Channel::Email, "+14155550123").unwrap_err();
        assert!(matches!(e, ApiError::InvalidRequest(d) if d.contains("`to`")));
    }

    #[test]
    fn debug_hides_most_of_the_number() {
        let p = Phone::parse("+14155550123").unwrap();
        assert_eq!(format!("{p:?}"), "Phone(***23)");
    }
}
