//! Where a page may send the browser back to: only to an origin the
//! operator listed in `AUTH_RETURN_ORIGINS`. Anything else is ignored, so
//! the pages are never an open redirect.
//!
//! The parser is strict on purpose (no `url` crate: its IDNA tables cost
//! ~90 KB of gzipped wasm): an absolute `http(s)://host[:port]` URL without
//! userinfo, fragment, backslash, percent-escapes in the authority,
//! whitespace or control characters. What a browser would read differently
//! from this parser (`//evil`, `https:%2F%2Fevil`, `/\evil`,
//! `https://evil@app`) is refused, not interpreted.

use crate::domain::handoff::CodeChallenge;

/// The origins `return_to` may point at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReturnOrigins(Vec<String>);

impl ReturnOrigins {
    /// A comma-separated list of origins. `https` only, except on
    /// `localhost` and `127.0.0.1` outside production, where apps are
    /// developed.
    pub fn parse(raw: &str, production: bool) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(Self::default());
        }
        raw.split(',')
            .map(|item| {
                let item = item.trim();
                let bad = || {
                    format!("var AUTH_RETURN_ORIGINS: `{item}` is not an origin like https://app.example.com")
                };
                let url = AbsoluteUrl::parse(item).ok_or_else(bad)?;
                if !url.rest.is_empty() {
                    return Err(bad());
                }
                if url.scheme == "http" && (production || !is_local(&url.host)) {
                    return Err(format!(
                        "var AUTH_RETURN_ORIGINS: `{item}` must use https (http only on localhost or 127.0.0.1, and not in production)"
                    ));
                }
                Ok(url.origin())
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    fn allows(&self, origin: &str) -> bool {
        self.0.iter().any(|o| o == origin)
    }
}

fn is_local(host: &str) -> bool {
    host == "localhost" || host == "127.0.0.1"
}

/// An absolute URL, split where the origin ends. Also what an OpenID
/// Connect client's redirect URIs are checked with (`domain::oidc_client`).
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

/// A `return_to` on an allowed origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnTo {
    url: String,
    origin: String,
}

impl ReturnTo {
    /// `None` for anything not on an allowed origin, and for a URL that
    /// already carries a `code` or `state`, which an app reading the first
    /// of two values would take from the link instead of from us.
    pub fn parse(raw: &str, allowed: &ReturnOrigins) -> Option<Self> {
        let url = AbsoluteUrl::parse(raw)?;
        let origin = url.origin();
        let query = url.rest.split_once('?').map_or("", |(_, q)| q);
        let ours =
            form_urlencoded::parse(query.as_bytes()).any(|(k, _)| k == "code" || k == "state");
        (allowed.allows(&origin) && !ours).then(|| Self {
            url: url.normalized(),
            origin,
        })
    }

    /// Any URL this parser accepts, allowed or not, in the form the
    /// hand-off keeps (`url`): for the exchange, which compares it
    /// with the hand-off's.
    pub fn normalize(raw: &str) -> Option<String> {
        AbsoluteUrl::parse(raw).map(|u| u.normalized())
    }

    /// The URL, its scheme and host lowercased and a default port dropped:
    /// what a hand-off code is bound to, exactly, like OAuth's `redirect_uri`.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The URL with `params` appended to its query.
    pub fn with(&self, params: &[(&str, &str)]) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (k, v) in params {
            query.append_pair(k, v);
        }
        let joiner = match self.url.contains('?') {
            true if self.url.ends_with('?') || self.url.ends_with('&') => "",
            true => "&",
            false => "?",
        };
        format!("{}{joiner}{}", self.url, query.finish())
    }
}

/// The longest `state` carried back: OAuth clients use a few dozen bytes.
pub const MAX_STATE_CHARS: usize = 512;

/// What an app asked for when it sent the browser here: where to return,
/// its `state`, and its PKCE challenge. Carried in the query of every
/// page of the journey, so it survives sign-up, verification and resets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Handoff {
    pub return_to: Option<ReturnTo>,
    pub state: Option<String>,
    pub challenge: Option<CodeChallenge>,
}

impl Handoff {
    /// From a page's query string. A `return_to` not allowed, a `state`
    /// too long, or a challenge that is not S256 drop the whole hand-off:
    /// the journey then ends on the account page, and the app gets nothing.
    pub fn from_query(query: &str, allowed: &ReturnOrigins) -> Self {
        let mut raw_return = None;
        let mut state = None;
        let mut challenge = None;
        let mut method = None;
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            let slot = match k.as_ref() {
                "return_to" => &mut raw_return,
                "state" => &mut state,
                "code_challenge" => &mut challenge,
                "code_challenge_method" => &mut method,
                _ => continue,
            };
            slot.get_or_insert(v.into_owned());
        }
        let Some(return_to) = raw_return.and_then(|r| ReturnTo::parse(&r, allowed)) else {
            return Self::default();
        };
        if state
            .as_ref()
            .is_some_and(|s| s.chars().count() > MAX_STATE_CHARS)
        {
            return Self::default();
        }
        let challenge = match challenge {
            Some(c) => match CodeChallenge::parse(&c, method.as_deref()) {
                Ok(c) => Some(c),
                Err(_) => return Self::default(),
            },
            None => None,
        };
        Self {
            return_to: Some(return_to),
            state,
            challenge,
        }
    }

    /// The query string that carries this hand-off to the next page, with
    /// a leading `?`, or nothing.
    pub fn query(&self) -> String {
        self.query_with(&[])
    }

    /// `query`, plus `extra` parameters first.
    pub fn query_with(&self, extra: &[(&str, &str)]) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in extra {
            q.append_pair(k, v);
        }
        if let Some(r) = &self.return_to {
            q.append_pair("return_to", r.url());
            if let Some(s) = &self.state {
                q.append_pair("state", s);
            }
            if let Some(c) = &self.challenge {
                q.append_pair("code_challenge", c.as_str());
                q.append_pair("code_challenge_method", "S256");
            }
        }
        let q = q.finish();
        match q.is_empty() {
            true => q,
            false => format!("?{q}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> ReturnOrigins {
        ReturnOrigins::parse("https://app.example.com, http://localhost:3000", false).unwrap()
    }

    #[test]
    fn only_listed_origins_are_returned_to() {
        let a = allowed();
        for ok in [
            "https://app.example.com",
            "https://app.example.com/",
            "https://app.example.com/cb?x=1",
            "HTTPS://APP.example.com/cb",
            "https://app.example.com:443/cb",
            "http://localhost:3000/callback",
        ] {
            assert!(ReturnTo::parse(ok, &a).is_some(), "{ok}");
        }
        for bad in [
            "//evil.example",
            "//app.example.com",
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
            "https://app.example.com.evil.example/",
            "https://evil.example/?https://app.example.com",
            "http://app.example.com/",
            "https://app.example.com:8443/",
            "https://app.example.com/#frag",
            " https://app.example.com/",
            "https://app.example.com/\tx",
            "data:text/html,hi",
            "https://[::1]/",
            "http://localhost:3001/",
            "https://app.example.com:+443/cb",
            "https://app.example.com:/cb",
            "https://app.example.com/cb?code=attacker",
            "https://app.example.com/cb?x=1&state=attacker",
        ] {
            assert_eq!(ReturnTo::parse(bad, &a), None, "{bad}");
        }
        assert_eq!(
            ReturnTo::parse("https://app.example.com/", &ReturnOrigins::default()),
            None
        );
    }

    /// Found by the `return_to` property in CI: `https://app?@/` has an
    /// empty path, and kept as written its `@` reads like userinfo.
    #[test]
    fn an_empty_path_is_written_out_as_a_slash() {
        for (raw, url) in [
            ("https://app.example.com?@/", "https://app.example.com/?@/"),
            ("https://app.example.com", "https://app.example.com/"),
            (
                "https://app.example.com:443?x=1",
                "https://app.example.com/?x=1",
            ),
            ("https://app.example.com/cb", "https://app.example.com/cb"),
        ] {
            assert_eq!(ReturnTo::parse(raw, &allowed()).unwrap().url(), url);
            assert_eq!(ReturnTo::normalize(raw).as_deref(), Some(url));
        }
    }

    #[test]
    fn the_origin_list_is_checked_at_load() {
        assert!(ReturnOrigins::parse("", true)
            .unwrap()
            .iter()
            .next()
            .is_none());
        assert!(
            ReturnOrigins::parse("http://localhost:3000", true).is_err(),
            "no http in production"
        );
        for bad in [
            "app.example.com",
            "https://app.example.com/path",
            "http://app.example.com",
            "https://a.com,,https://b.com",
            "*",
        ] {
            assert!(ReturnOrigins::parse(bad, false).is_err(), "{bad}");
        }
        let list =
            ReturnOrigins::parse("https://App.Example.com:443, http://127.0.0.1:8787", false)
                .unwrap();
        assert_eq!(
            list.iter().collect::<Vec<_>>(),
            ["https://app.example.com", "http://127.0.0.1:8787"]
        );
    }

    #[test]
    fn codes_are_appended_to_the_query() {
        let r = ReturnTo::parse("https://app.example.com/cb", &allowed()).unwrap();
        assert_eq!(
            r.with(&[("code", "abc"), ("state", "x y&z")]),
            "https://app.example.com/cb?code=abc&state=x+y%26z"
        );
        let r = ReturnTo::parse("https://app.example.com/cb?next=1", &allowed()).unwrap();
        assert_eq!(
            r.with(&[("code", "c")]),
            "https://app.example.com/cb?next=1&code=c"
        );
        assert_eq!(r.origin(), "https://app.example.com");
    }

    #[test]
    fn a_handoff_survives_the_journey_and_a_bad_one_is_dropped_whole() {
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        let q = format!(
            "return_to=https%3A%2F%2Fapp.example.com%2Fcb&state=s1&code_challenge={challenge}&code_challenge_method=S256"
        );
        let h = Handoff::from_query(&q, &allowed());
        assert_eq!(
            h.return_to.as_ref().unwrap().url(),
            "https://app.example.com/cb"
        );
        assert_eq!(h.state.as_deref(), Some("s1"));
        assert_eq!(Handoff::from_query(&h.query()[1..], &allowed()), h);
        assert_eq!(
            h.query_with(&[("notice", "verified")]),
            format!("?notice=verified&{q}")
        );
        for dropped in [
            format!("return_to=https%3A%2F%2Fapp.example.com%2Fcb&code_challenge={challenge}&code_challenge_method=plain"),
            format!("return_to=https%3A%2F%2Fapp.example.com%2Fcb&code_challenge={challenge}"),
            "return_to=%2F%2Fevil.example&state=s".into(),
            format!("return_to=https%3A%2F%2Fapp.example.com%2Fcb&state={}", "s".repeat(513)),
        ] {
            assert_eq!(Handoff::from_query(&dropped, &allowed()), Handoff::default(), "{dropped}");
        }
        assert_eq!(Handoff::default().query(), "");
    }
}
