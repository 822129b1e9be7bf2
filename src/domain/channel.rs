//! The ways a code can travel. A plain enum with no dependencies: the
//! error type names channels, so this module must not need the error type.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    Email,
    Sms,
    Whatsapp,
}

impl Channel {
    pub const ALL: [Channel; 3] = [Channel::Email, Channel::Sms, Channel::Whatsapp];

    /// The channel named `raw` (`email`, `sms`, `whatsapp`), exactly.
    pub fn from_name(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == raw)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Sms => "sms",
            Self::Whatsapp => "whatsapp",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_round_trip() {
        for c in Channel::ALL {
            assert_eq!(Channel::from_name(c.as_str()).unwrap(), c);
        }
        for bad in ["Email", "SMS", "fax", ""] {
            assert_eq!(Channel::from_name(bad), None);
        }
    }
}
