//! Bearer tokens: 256 random bits handed out once; only their SHA-256 is kept.

use crate::error::ApiError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// Whom a session was issued to. A session is only ever taken back where
/// its holder would present it: a browser's from the pages' cookie, an
/// app's as a bearer token, so a token an app holds never acts as the
/// person's browser (and cannot earn an OpenID Connect client a code).
/// The sessions an earlier release's hand-off exchange made are stored as
/// `key:<id>`: bearer sessions, like `Api`'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Made by the hosted pages; lives in the `__Host-` session cookie.
    Browser,
    /// Made by `/v1/login` or `/v1/login/code/verify` for an app's backend.
    Api,
}

impl Audience {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Browser => "browser",
            Self::Api => "api",
        }
    }
}

/// Where a session token was presented, and so which sessions it may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented {
    /// The pages' session cookie: only `Audience::Browser` sessions.
    Cookie,
    /// `Authorization: Bearer`: every session but a browser's.
    Bearer,
}

impl Presented {
    pub fn accepts(self, issued_to: &str) -> bool {
        match self {
            Self::Cookie => issued_to == Audience::Browser.as_str(),
            Self::Bearer => issued_to != Audience::Browser.as_str(),
        }
    }
}

pub struct Token(String);

impl Token {
    pub fn generate() -> Result<Self, ApiError> {
        let mut bytes = [0u8; 32];
        getrandom::getrandom(&mut bytes)
            .map_err(|e| ApiError::internal("session token: getrandom", e))?;
        Ok(Self(URL_SAFE_NO_PAD.encode(bytes)))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// What the database stores and looks tokens up by.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The longest bearer credential read: an OpenID Provider's access token
/// (a signed JWT) is ~1 KB; sessions and keys are far shorter.
pub const MAX_BEARER_CHARS: usize = 4_096;

/// Parses `Authorization: Bearer <token>`; anything else is no token.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    let value = header?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && token.len() <= MAX_BEARER_CHARS)
        .then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bits_and_unique() {
        let a = Token::generate().unwrap();
        let b = Token::generate().unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(a.expose()).unwrap().len(), 32);
        assert_ne!(a.expose(), b.expose());
    }

    #[test]
    fn stored_hash_is_sha256_hex_not_the_token() {
        let t = Token::generate().unwrap();
        let h = token_hash(t.expose());
        assert_eq!(h.len(), 64);
        assert_ne!(h, t.expose());
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn a_cookie_takes_only_browser_sessions_and_a_bearer_every_other() {
        assert!(Presented::Cookie.accepts("browser"));
        for app in ["api", "key:0123", ""] {
            assert!(!Presented::Cookie.accepts(app), "{app}");
            assert!(Presented::Bearer.accepts(app), "{app}");
        }
        assert!(!Presented::Bearer.accepts("browser"));
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("bearer   abc ")), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(Some("Bearer ")), None);
        assert_eq!(bearer(Some("abc")), None);
        assert_eq!(bearer(None), None);
        // An access token (a signed JWT) is far longer than a session's.
        let jwt = "a".repeat(1_500);
        assert_eq!(bearer(Some(&format!("Bearer {jwt}"))), Some(jwt.as_str()));
        let huge = "a".repeat(MAX_BEARER_CHARS + 1);
        assert_eq!(bearer(Some(&format!("Bearer {huge}"))), None);
    }
}
