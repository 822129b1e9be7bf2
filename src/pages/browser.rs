//! What the pages keep in the browser, and how a form proves it came from
//! one of them: cookies, the CSRF check, and form bodies.
//!
//! Every cookie is `__Host-`: `Secure`, `Path=/`, no `Domain`, so no other
//! host (a sibling subdomain included) can set or read it; `HttpOnly`, so
//! no script can; `SameSite=Lax`, so no other site's form posts it.

use crate::domain::code::{digests_match, Pepper};
use crate::domain::registrant::KEPT_TOKENS;
use crate::error::ApiError;
use crate::http::body::JsonBody;
use serde_json::{Map, Value};

pub const SESSION_COOKIE: &str = "__Host-otp_session";
pub const CSRF_COOKIE: &str = "__Host-otp_csrf";
/// The address typed last, to fill in the next page's field: a hint for
/// the form, never trusted.
pub const EMAIL_COOKIE: &str = "__Host-otp_email";
pub const ADMIN_COOKIE: &str = "__Host-otp_admin";
/// The registrant tokens of this browser's latest sign-ups
/// (`domain::registrant`), `.`-separated: they prove, at verification,
/// that this browser made the sign-up whose password the account holds.
pub const SIGNUP_COOKIE: &str = "__Host-otp_signup";

/// How long the address hint is kept.
pub const EMAIL_COOKIE_SECS: u64 = 900;
/// How long the CSRF browser id lives: a year, renewed by nothing; losing
/// it only costs one form.
pub const CSRF_COOKIE_SECS: u64 = 31_536_000;

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(header: Option<&'a str>, name: &str) -> Option<&'a str> {
    header?
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// The registrant tokens a `__Host-otp_signup` cookie holds: hex, at most
/// `KEPT_TOKENS` of them; anything else in it is dropped.
pub fn signup_tokens(value: Option<&str>) -> Vec<String> {
    value
        .unwrap_or("")
        .split('.')
        .filter(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()))
        .take(KEPT_TOKENS)
        .map(str::to_owned)
        .collect()
}

/// The cookie's value with `token` added, the oldest dropped past
/// `KEPT_TOKENS`.
pub fn with_signup_token(value: Option<&str>, token: &str) -> String {
    let mut tokens = signup_tokens(value);
    tokens.retain(|t| t != token);
    tokens.insert(0, token.to_owned());
    tokens.truncate(KEPT_TOKENS);
    tokens.join(".")
}

/// A `Set-Cookie` value for a `__Host-` cookie. Values are base64url, hex
/// or percent-encoded by their makers, so they need no quoting.
pub fn set_cookie(name: &str, value: &str, max_age_secs: u64) -> String {
    format!("{name}={value}; Max-Age={max_age_secs}; Path=/; Secure; HttpOnly; SameSite=Lax")
}

pub fn clear_cookie(name: &str) -> String {
    set_cookie(name, "", 0)
}

/// A random browser id for the CSRF cookie.
pub fn new_browser_id() -> Result<String, ApiError> {
    let mut b = [0u8; 32];
    getrandom::getrandom(&mut b).map_err(|e| ApiError::internal("csrf id: getrandom", e))?;
    Ok(hex::encode(b))
}

/// The token every form of this browser carries: a keyed hash of its
/// browser id (signed double submit). Another site can neither read the
/// cookie nor compute the token for it.
pub fn csrf_token(pepper: &Pepper, browser_id: &str) -> String {
    hex::encode(pepper.digest(&["csrf", browser_id]))
}

/// A form POST is accepted only from this service's own origin, and with
/// the token of the browser's id. Both, not either: the `Origin` check
/// stops cross-site posts even if a token leaked, the token stops posts
/// from a sibling origin that shares the site.
pub fn check_form(
    pepper: &Pepper,
    own_origin: &str,
    origin_header: Option<&str>,
    browser_id: Option<&str>,
    token: Option<&str>,
) -> Result<(), ApiError> {
    let same_origin = origin_header.is_some_and(|o| o.eq_ignore_ascii_case(own_origin));
    let token_ok = match (browser_id, token) {
        (Some(id), Some(token)) => digests_match(&csrf_token(pepper, id), token),
        _ => false,
    };
    match same_origin && token_ok {
        true => Ok(()),
        false => Err(ApiError::CsrfRefused),
    }
}

/// The largest form body a page accepts.
pub const MAX_FORM_BYTES: usize = 8 * 1024;

/// An `application/x-www-form-urlencoded` body.
#[derive(Debug, Default)]
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn parse(bytes: &[u8]) -> Self {
        Self(form_urlencoded::parse(bytes).into_owned().collect())
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `as_json`, with `lines` read from text areas: one array item per
    /// line that is not blank.
    pub fn as_json_lines(&self, fields: &[&str], lines: &[&str]) -> JsonBody {
        let mut map = Map::new();
        for name in fields {
            if let Some(v) = self.get(name) {
                map.insert((*name).into(), Value::String(v.into()));
            }
        }
        for name in lines {
            let items = self
                .get(name)
                .unwrap_or("")
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(|l| Value::String(l.into()))
                .collect();
            map.insert((*name).into(), Value::Array(items));
        }
        JsonBody::from_map(map)
    }

    /// The fields as the JSON API's parsers read them, so a page and its
    /// route parse alike: the same checks, the same problems. `lists`
    /// names the fields a form repeats (checkboxes), read as arrays.
    pub fn as_json(&self, fields: &[&str], lists: &[&str]) -> JsonBody {
        let mut map = Map::new();
        for name in fields {
            if let Some(v) = self.get(name) {
                map.insert((*name).into(), Value::String(v.into()));
            }
        }
        for name in lists {
            let values: Vec<Value> = self
                .0
                .iter()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| Value::String(v.clone()))
                .collect();
            map.insert((*name).into(), Value::Array(values));
        }
        JsonBody::from_map(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pepper() -> Pepper {
        Pepper::new(&"k".repeat(64)).unwrap()
    }

    #[test]
    fn a_browser_keeps_its_latest_sign_ups_tokens() {
        let t = |c: char| c.to_string().repeat(64);
        let mut value = with_signup_token(None, &t('a'));
        assert_eq!(value, t('a'));
        for c in ['b', 'c', 'd', 'e'] {
            value = with_signup_token(Some(&value), &t(c));
        }
        assert_eq!(
            signup_tokens(Some(&value)),
            [t('e'), t('d'), t('c'), t('b')]
        );
        assert_eq!(signup_tokens(Some("<script>.zz")), Vec::<String>::new());
        assert_eq!(signup_tokens(None), Vec::<String>::new());
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let h = Some("a=1; __Host-otp_session=tok; x__Host-otp_csrf=no; __Host-otp_csrf=id");
        assert_eq!(cookie(h, SESSION_COOKIE), Some("tok"));
        assert_eq!(cookie(h, CSRF_COOKIE), Some("id"));
        assert_eq!(cookie(h, ADMIN_COOKIE), None);
        assert_eq!(cookie(Some("__Host-otp_session="), SESSION_COOKIE), None);
        assert_eq!(cookie(None, SESSION_COOKIE), None);
    }

    #[test]
    fn host_cookies_are_secure_http_only_and_lax() {
        assert_eq!(
            set_cookie(SESSION_COOKIE, "t", 60),
            "__Host-otp_session=t; Max-Age=60; Path=/; Secure; HttpOnly; SameSite=Lax"
        );
        assert!(clear_cookie(ADMIN_COOKIE).contains("Max-Age=0"));
    }

    #[test]
    fn a_form_needs_the_own_origin_and_the_token_of_its_browser() {
        let p = pepper();
        let own = "https://otp.example.com";
        let id = new_browser_id().unwrap();
        let token = csrf_token(&p, &id);
        assert_eq!(
            check_form(&p, own, Some(own), Some(&id), Some(&token)),
            Ok(())
        );
        assert_eq!(
            check_form(
                &p,
                own,
                Some("HTTPS://OTP.example.com"),
                Some(&id),
                Some(&token)
            ),
            Ok(())
        );
        let other = new_browser_id().unwrap();
        for (origin, id, token) in [
            (None, Some(id.as_str()), Some(token.as_str())),
            (Some("https://evil.example"), Some(&id), Some(&token)),
            (Some("null"), Some(&id), Some(&token)),
            (
                Some("https://otp.example.com.evil.example"),
                Some(&id),
                Some(&token),
            ),
            (Some(own), None, Some(&token)),
            (Some(own), Some(&id), None),
            (Some(own), Some(&other), Some(&token)),
            (Some(own), Some(&id), Some(&token[1..])),
            (Some(own), Some(&id), Some(&id)),
        ] {
            assert_eq!(
                check_form(&p, own, origin, id, token),
                Err(ApiError::CsrfRefused),
                "{origin:?}"
            );
        }
    }

    #[test]
    fn forms_read_as_the_json_routes_do() {
        let f = Form::parse(b"email=a%40b.c&password=x+y&channels=sms&channels=email&via=code");
        assert_eq!(f.get("via"), Some("code"));
        let body = f.as_json(&["email", "password", "missing"], &["channels"]);
        assert_eq!(body.string("email").unwrap(), "a@b.c");
        assert_eq!(body.string("password").unwrap(), "x y");
        assert!(body.string("missing").is_err());
        assert!(body.string("via").is_err());
    }
}
