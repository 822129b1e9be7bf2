//! Where a code goes: an email address, or a phone number over SMS or WhatsApp.

use crate::domain::channel::Channel;
use crate::domain::email::Email;
use crate::domain::phone::Phone;
use crate::error::ApiError;

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
}
