//! Which browser origins may call the API, from `CORS_ALLOWED_ORIGINS`.
//! Nothing is allowed by default: a site must be named to read answers.

/// Request headers a browser may send. Authorization carries bearer tokens;
/// there are no cookies, so credentials mode is never allowed.
pub const ALLOW_HEADERS: &str = "authorization, content-type";
/// Response headers a browser script may read.
pub const EXPOSE_HEADERS: &str = "retry-after, x-request-id";
pub const MAX_AGE_SECS: &str = "600";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cors {
    None,
    /// `*`: any origin, for APIs called with API keys from anywhere.
    Any,
    Origins(Vec<String>),
}

impl Cors {
    /// A comma-separated list of origins (`https://app.example.com`), or `*`.
    pub fn parse(raw: Option<&str>) -> Result<Self, String> {
        let raw = raw.unwrap_or("").trim();
        if raw.is_empty() {
            return Ok(Self::None);
        }
        if raw == "*" {
            return Ok(Self::Any);
        }
        raw.split(',')
            .map(|o| parse_origin(o.trim()))
            .collect::<Result<Vec<_>, _>>()
            .map(Self::Origins)
    }

    /// The `access-control-allow-origin` value for a request from `origin`.
    pub fn allow(&self, origin: &str) -> Option<String> {
        match self {
            Self::None => None,
            Self::Any => Some("*".into()),
            Self::Origins(list) => list
                .iter()
                .find(|o| o.eq_ignore_ascii_case(origin))
                .cloned(),
        }
    }
}

/// `scheme://host[:port]`, as browsers send it in `Origin`: no path, no
/// trailing slash, no wildcard. A mistake here fails closed with 503.
fn parse_origin(o: &str) -> Result<String, String> {
    let bad = || {
        format!("CORS_ALLOWED_ORIGINS: `{o}` is not an origin like https://app.example.com (or use * alone)")
    };
    let (scheme, rest) = o.split_once("://").ok_or_else(bad)?;
    let host_ok = !rest.is_empty()
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    match (scheme, host_ok) {
        ("https" | "http", true) => Ok(o.to_ascii_lowercase()),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_allowed_by_default() {
        for unset in [None, Some(""), Some("  ")] {
            let cors = Cors::parse(unset).unwrap();
            assert_eq!(cors, Cors::None);
            assert_eq!(cors.allow("https://app.example.com"), None);
        }
    }

    #[test]
    fn only_listed_origins_are_allowed() {
        let cors = Cors::parse(Some("https://app.example.com, http://localhost:5173")).unwrap();
        assert_eq!(
            cors.allow("https://app.example.com").as_deref(),
            Some("https://app.example.com")
        );
        assert_eq!(
            cors.allow("http://localhost:5173").as_deref(),
            Some("http://localhost:5173")
        );
        for other in [
            "https://evil.example.com",
            "https://app.example.com.evil.com",
            "http://app.example.com",
            "null",
            "",
        ] {
            assert_eq!(cors.allow(other), None, "{other}");
        }
        assert_eq!(
            Cors::parse(Some("*"))
                .unwrap()
                .allow("https://x.y")
                .as_deref(),
            Some("*")
        );
    }

    #[test]
    fn malformed_lists_are_refused() {
        for bad in [
            "app.example.com",
            "https://app.example.com/",
            "https://*.example.com",
            "https://a.com,,https://b.com",
            "ftp://a.com",
            "https://a.com, *",
        ] {
            let e = Cors::parse(Some(bad)).unwrap_err();
            assert!(e.contains("CORS_ALLOWED_ORIGINS"), "{bad}: {e}");
        }
    }
}
