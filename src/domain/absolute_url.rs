//! Absolute URLs as the OpenID Provider compares them: a client's
//! redirect URIs (`domain::oidc_client`), the resource servers it issues
//! tokens for (`domain::oauth`), and the origin a page's CSP allows.
//!
//! The parser is strict on purpose (no `url` crate: its IDNA tables cost
//! ~90 KB of gzipped wasm): an absolute `http(s)://host[:port]` URL without
//! userinfo, fragment, backslash, percent-escapes in the authority,
//! whitespace or control characters. What a browser would read differently
//! from this parser (`//evil`, `https:%2F%2Fevil`, `/\evil`,
//! `https://evil@app`) is refused, not interpreted.

/// An absolute URL, split where the origin ends.
pub(crate) struct AbsoluteUrl<'a> {
    pub(crate) scheme: &'static str,
    pub(crate) host: String,
    port: Option<u16>,
    /// Path, query: everything after the authority.
    pub(crate) rest: &'a str,
}

impl<'a> AbsoluteUrl<'a> {
    pub(crate) fn parse(raw: &'a str) -> Option<Self> {
        if raw.len() > 2048
            || raw
                .chars()
                .any(|c| !c.is_ascii_graphic() || matches!(c, '\\' | '#'))
        {
            return None;
        }
        let (scheme, after) = match raw.get(..8).map(str::to_ascii_lowercase).as_deref() {
            Some("https://") => ("https", &raw[8..]),
            _ => match raw.get(..7).map(str::to_ascii_lowercase).as_deref() {
                Some("http://") => ("http", &raw[7..]),
                _ => return None,
            },
        };
        let end = after.find(['/', '?']).unwrap_or(after.len());
        let (authority, rest) = after.split_at(end);
        if !(rest.is_empty() || rest.starts_with('/') || rest.starts_with('?')) {
            return None;
        }
        let (host, port) = match authority.rsplit_once(':') {
            // Digits only: `u16::from_str` would take `+443`, which browsers refuse.
            Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
                (host, Some(port.parse::<u16>().ok().filter(|p| *p > 0)?))
            }
            Some(_) => return None,
            None => (authority, None),
        };
        let host = host.to_ascii_lowercase();
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        if host.is_empty() || host.len() > 253 || !host.split('.').all(label_ok) {
            return None;
        }
        let default = if scheme == "https" { 443 } else { 80 };
        Some(Self {
            scheme,
            host,
            port: port.filter(|p| *p != default),
            rest,
        })
    }

    /// Origin plus the rest, with the empty path a browser reads as `/`
    /// written out: `https://app?@x` is `https://app/?@x`, and only the
    /// second form shows at a glance that the `@` is not userinfo.
    pub(crate) fn normalized(&self) -> String {
        let slash = if self.rest.starts_with('/') { "" } else { "/" };
        format!("{}{slash}{}", self.origin(), self.rest)
    }

    pub(crate) fn origin(&self) -> String {
        match self.port {
            Some(port) => format!("{}://{}:{port}", self.scheme, self.host),
            None => format!("{}://{}", self.scheme, self.host),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_a_browser_could_read_as_another_host_are_refused() {
        for bad in [
            "//evil.example",
            "/auth/account",
            "https://evil.example@app.example.com/",
            "https://app.example.com@evil.example/",
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            "%2F%2Fevil.example",
            "https:%2F%2Fevil.example",
            "https:/evil.example",
            "https:evil.example",
            "/\\evil.example",
            "https://app.example.com\\@evil.example",
            "https://app.example.com%2F@evil.example",
            "https://app.example.com/#frag",
            " https://app.example.com/",
            "https://app.example.com/\tx",
            "data:text/html,hi",
            "https://[::1]/",
            "https://app.example.com:+443/cb",
            "https://app.example.com:/cb",
            "https://app.example.com:0/cb",
        ] {
            assert!(AbsoluteUrl::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn the_normal_form_lowercases_drops_the_default_port_and_writes_the_slash() {
        for (raw, normal, origin) in [
            (
                "HTTPS://APP.example.com/cb",
                "https://app.example.com/cb",
                "https://app.example.com",
            ),
            (
                "https://app.example.com:443/cb?x=1",
                "https://app.example.com/cb?x=1",
                "https://app.example.com",
            ),
            (
                "http://localhost:3000",
                "http://localhost:3000/",
                "http://localhost:3000",
            ),
            // Found by a property in CI: `https://app?@/` has an empty path,
            // and kept as written its `@` reads like userinfo.
            (
                "https://app.example.com?@/",
                "https://app.example.com/?@/",
                "https://app.example.com",
            ),
        ] {
            let url = AbsoluteUrl::parse(raw).unwrap();
            assert_eq!(url.normalized(), normal, "{raw}");
            assert_eq!(url.origin(), origin, "{raw}");
        }
    }
}
