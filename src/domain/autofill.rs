//! One-tap autofill of SMS codes. Browsers (WebOTP) and iOS read a last
//! line `@<domain> #<code>` and offer the code only on that domain, which
//! is also what makes a phished code useless elsewhere; Android's SMS
//! Retriever hands a message to the app whose 11-character hash it
//! carries. Both are options of an API key (`sms_domain`,
//! `android_app_hash`), checked when the key is created.

use crate::error::ApiError;

/// The host an app's pages run on, as the autofill line names it: a
/// lower-case DNS name with at least two labels, no scheme, port or path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsDomain(String);

impl SmsDomain {
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let host = raw.trim().to_ascii_lowercase();
        let label_ok = |l: &str| {
            (1..=63).contains(&l.len())
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        let labels: Vec<&str> = host.split('.').collect();
        let ok = host.len() <= 253
            && labels.len() >= 2
            && labels.iter().all(|l| label_ok(l))
            // A top-level label is never all digits: that is an IP address.
            && !labels.last().is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()));
        if !ok {
            return Err(ApiError::InvalidRequest(
                "field `sms_domain` must be the host name your pages run on, like `app.example.com` (no scheme, port or path)".into(),
            ));
        }
        Ok(Self(host))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An Android SMS Retriever app hash: 11 characters of base64.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppHash(String);

impl AppHash {
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let s = raw.trim();
        let ok = s.len() == 11
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
        if !ok {
            return Err(ApiError::InvalidRequest(
                "field `android_app_hash` must be your app's 11-character SMS Retriever hash (letters, digits, + and /)".into(),
            ));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `body` with the autofill lines: the origin-bound line last, as WebOTP
/// requires, and the app hash on the line before it. Without a domain the
/// hash goes last on its own.
pub fn with_autofill(
    body: &str,
    code: &str,
    domain: Option<&SmsDomain>,
    app_hash: Option<&AppHash>,
) -> String {
    let mut out = body.to_owned();
    if let Some(hash) = app_hash {
        out.push_str("\n\n");
        out.push_str(hash.as_str());
    }
    if let Some(domain) = domain {
        out.push_str(if app_hash.is_some() { "\n" } else { "\n\n" });
        out.push('@');
        out.push_str(domain.as_str());
        out.push_str(" #");
        out.push_str(code);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_bare_host_names() {
        assert_eq!(
            SmsDomain::parse(" App.Example.com ").unwrap().as_str(),
            "app.example.com"
        );
        assert!(SmsDomain::parse("xn--bcher-kva.example").is_ok());
        for bad in [
            "",
            "localhost",
            "https://app.example.com",
            "app.example.com/",
            "app.example.com:443",
            "-app.example.com",
            "app..example.com",
            "10.0.0.1",
            "app example.com",
            "app.example.com #123456",
            "app.example.com\n#1",
            &format!("{}.com", "a".repeat(64)),
        ] {
            assert!(SmsDomain::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn app_hashes_are_11_base64_characters() {
        assert!(AppHash::parse("FA+9qCX9VSu").is_ok());
        for bad in [
            "",
            "FA+9qCX9VS",
            "FA+9qCX9VSuX",
            "FA+9qCX9VS-",
            "FA 9qCX9VSu",
        ] {
            assert!(AppHash::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_origin_bound_line_comes_last() {
        let d = SmsDomain::parse("app.example.com").unwrap();
        let h = AppHash::parse("FA+9qCX9VSu").unwrap();
        let body = "123456 is your Shop code.";
        assert_eq!(with_autofill(body, "123456", None, None), body);
        assert_eq!(
            with_autofill(body, "123456", Some(&d), None),
            "123456 is your Shop code.\n\n@app.example.com #123456"
        );
        assert_eq!(
            with_autofill(body, "123456", Some(&d), Some(&h)),
            "123456 is your Shop code.\n\nFA+9qCX9VSu\n@app.example.com #123456"
        );
        assert_eq!(
            with_autofill(body, "123456", None, Some(&h)),
            "123456 is your Shop code.\n\nFA+9qCX9VSu"
        );
    }
}
