//! A syntactically valid, normalized email address.

use crate::error::ApiError;
use std::fmt;

#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Trims and lower-cases the address, so `Ann@Example.com` and
    /// `ann@example.com ` are one account and one rate-limit bucket.
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        Self::parse_field(raw, "email")
    }

    /// As `parse`, naming `field` in the error.
    pub fn parse_field(raw: &str, field: &str) -> Result<Self, ApiError> {
        let normalized = raw.trim().to_lowercase();
        let bad =
            || ApiError::InvalidRequest(format!("field `{field}` must be a valid email address"));
        // RFC 5321 caps a forward path at 254 characters.
        if normalized.is_empty() || normalized.len() > 254 || normalized.chars().any(invisible) {
            return Err(bad());
        }
        let parsed = email_address::EmailAddress::parse_with_options(
            &normalized,
            email_address::Options::default()
                .without_display_text()
                .without_domain_literal(),
        )
        .map_err(|_| bad())?;
        // A bare host ("a@localhost") is legal but never deliverable on the Internet.
        if !parsed.domain().contains('.') {
            return Err(bad());
        }
        Ok(Self(normalized))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The mailbox the address delivers to, as far as it can be told:
    /// without a `+tag` (`ann+1@` is `ann@`), and for Gmail without dots
    /// (`a.n.n@gmail.com` is `ann@gmail.com`; googlemail.com is gmail.com).
    /// Send limits count by it, so aliases share one bucket; mail still
    /// goes to the address as typed.
    pub fn mailbox(&self) -> String {
        mailbox(&self.0)
    }
}

/// `Email::mailbox` of an address already parsed into its normal form.
pub fn mailbox(address: &str) -> String {
    let (local, domain) = address.rsplit_once('@').unwrap_or(("", address));
    let local = local.split('+').next().unwrap_or(local);
    match domain {
        "gmail.com" | "googlemail.com" => format!("{}@gmail.com", local.replace('.', "")),
        _ => format!("{local}@{domain}"),
    }
}

/// Characters a reader cannot see, or that reorder what they see: an
/// address holding one would look like another in a mail, a log or an
/// admin view. The email_address crate accepts them in quoted and UTF-8
/// local parts; found by the property tests (`tests/fuzz.rs`).
fn invisible(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || matches!(c,
            '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
            | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
            | '\u{FFA0}' | '\u{FFF0}'..='\u{FFF8}' | '\u{E0000}'..='\u{E007F}')
}

impl fmt::Debug for Email {
    // Addresses are personal data: debug output shows only the domain.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let domain = self.0.rsplit('@').next().unwrap_or("");
        write!(f, "Email(***@{domain})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_invisible_and_reordering_characters() {
        for raw in [
            "ann\u{2000}x@example.com",
            "ann\u{200B}@example.com",
            "ann\u{202E}moc@example.com",
            "\"ann smith\"@example.com",
            "ann\u{FEFF}@example.com",
            "ann@exa\u{00AD}mple.com",
        ] {
            assert!(Email::parse(raw).is_err(), "{raw:?}");
        }
        assert!(Email::parse("zoë@example.com").is_ok());
    }

    #[test]
    fn normalizes_case_and_whitespace() {
        assert_eq!(
            Email::parse("  Ann@Example.COM ").unwrap().as_str(),
            "ann@example.com"
        );
    }

    #[test]
    fn rejects_invalid_addresses() {
        for bad in [
            "",
            "plainaddress",
            "@example.com",
            "ann@",
            "ann@@example.com",
            "ann@localhost",
            "Ann <ann@example.com>",
            "ann@[127.0.0.1]",
            "a b@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(Email::parse(&long).is_err());
    }

    #[test]
    fn accepts_ordinary_addresses() {
        for ok in [
            "a@b.co",
            "first.last+tag@sub.example.org",
            "x_y-z@example.io",
        ] {
            assert!(Email::parse(ok).is_ok(), "{ok:?} should be accepted");
        }
    }

    #[test]
    fn aliases_share_one_mailbox() {
        let mailbox = |s: &str| Email::parse(s).unwrap().mailbox();
        assert_eq!(mailbox("Victim+1@Example.com"), "victim@example.com");
        assert_eq!(mailbox("victim+a+b@example.com"), "victim@example.com");
        assert_eq!(mailbox("v.i.c.tim+x@gmail.com"), "victim@gmail.com");
        assert_eq!(mailbox("victim@googlemail.com"), "victim@gmail.com");
        // Dots matter elsewhere.
        assert_eq!(mailbox("v.ictim@example.com"), "v.ictim@example.com");
        assert_ne!(
            mailbox("victim@example.com"),
            mailbox("victim2@example.com")
        );
    }

    #[test]
    fn debug_hides_the_local_part() {
        let e = Email::parse("secret.person@example.com").unwrap();
        assert_eq!(format!("{e:?}"), "Email(***@example.com)");
    }
}
