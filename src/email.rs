//! A syntactically valid, normalised email address.

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
        let normalised = raw.trim().to_lowercase();
        let bad =
            || ApiError::InvalidRequest(format!("field `{field}` must be a valid email address"));
        // RFC 5321 caps a forward path at 254 characters.
        if normalised.is_empty() || normalised.len() > 254 {
            return Err(bad());
        }
        let parsed = email_address::EmailAddress::parse_with_options(
            &normalised,
            email_address::Options::default()
                .without_display_text()
                .without_domain_literal(),
        )
        .map_err(|_| bad())?;
        // A bare host ("a@localhost") is legal but never deliverable on the Internet.
        if !parsed.domain().contains('.') {
            return Err(bad());
        }
        Ok(Self(normalised))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
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
    fn normalises_case_and_whitespace() {
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
    fn debug_hides_the_local_part() {
        let e = Email::parse("secret.person@example.com").unwrap();
        assert_eq!(format!("{e:?}"), "Email(***@example.com)");
    }
}
