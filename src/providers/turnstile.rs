//! Cloudflare Turnstile's siteverify API: the request that checks a
//! widget's token, and the reading of its answer. A token is single use
//! and lives 300 seconds; `idempotency_key` makes the one retry of a
//! transient failure safe (a second check of the same token would
//! otherwise answer `timeout-or-duplicate`).

use crate::providers::http_call::HttpCall;

pub const DEFAULT_VERIFY_URL: &str = "https://challenges.cloudflare.com/turnstile/v0/siteverify";
/// Turnstile's tokens are at most 2048 characters.
pub const MAX_TOKEN_LEN: usize = 2048;

#[derive(Clone, PartialEq, Eq)]
pub struct Turnstile {
    pub verify_url: String,
    pub secret: String,
}

impl std::fmt::Debug for Turnstile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Turnstile({}, <secret>)", self.verify_url)
    }
}

/// A token as a request carries it: 1 to 2048 printable ASCII characters.
/// Anything else is not worth a call to siteverify.
pub fn token_shape(token: &str) -> bool {
    (1..=MAX_TOKEN_LEN).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_graphic())
}

impl Turnstile {
    pub fn request(&self, token: &str, remote_ip: Option<&str>, idempotency_key: &str) -> HttpCall {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("secret", &self.secret)
            .append_pair("response", token)
            .append_pair("idempotency_key", idempotency_key);
        if let Some(ip) = remote_ip {
            form.append_pair("remoteip", ip);
        }
        HttpCall {
            url: self.verify_url.clone(),
            headers: vec![
                ("content-type", "application/x-www-form-urlencoded".into()),
                ("accept", "application/json".into()),
            ],
            body: form.finish(),
        }
    }
}

/// What siteverify's 2xx answer says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A human passed the widget, and this token was not used before.
    Passed,
    /// The token is missing, invalid, expired or spent.
    Refused(Vec<String>),
    /// Siteverify failed on its side (`internal-error`), or the secret is
    /// wrong: not the visitor's fault.
    Broken(Vec<String>),
}

/// Read as a `Value`, whose parser the worker already carries: a typed
/// struct would add a parser of its own to the wasm.
pub fn verdict(body: &str) -> Verdict {
    let Ok(answer) = serde_json::from_str::<serde_json::Value>(body) else {
        return Verdict::Broken(vec!["unreadable answer".into()]);
    };
    let codes: Vec<String> = answer["error-codes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let ours = codes.iter().any(|c| {
        matches!(
            c.as_str(),
            "missing-input-secret" | "invalid-input-secret" | "internal-error"
        )
    });
    match (answer["success"].as_bool(), ours) {
        (Some(true), _) => Verdict::Passed,
        (Some(false), false) => Verdict::Refused(codes),
        _ => Verdict::Broken(codes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_is_a_form_with_secret_token_and_idempotency_key() {
        let t = Turnstile {
            verify_url: DEFAULT_VERIFY_URL.into(),
            secret: "0x4AAA-secret".into(),
        };
        let call = t.request("tok&en", Some("203.0.113.7"), "k-1");
        assert_eq!(call.url, DEFAULT_VERIFY_URL);
        let form: Vec<(String, String)> = form_urlencoded::parse(call.body.as_bytes())
            .into_owned()
            .collect();
        assert_eq!(
            form,
            [
                ("secret".into(), "0x4AAA-secret".into()),
                ("response".into(), "tok&en".into()),
                ("idempotency_key".into(), "k-1".into()),
                ("remoteip".into(), "203.0.113.7".into()),
            ]
        );
        assert!(!format!("{t:?}").contains("secret\""));
        assert!(!format!("{t:?}").contains("0x4AAA"));
    }

    #[test]
    fn verdicts() {
        assert_eq!(
            verdict(r#"{"success": true, "error-codes": []}"#),
            Verdict::Passed
        );
        assert!(matches!(
            verdict(r#"{"success": false, "error-codes": ["timeout-or-duplicate"]}"#),
            Verdict::Refused(_)
        ));
        assert!(matches!(
            verdict(r#"{"success": false, "error-codes": ["invalid-input-secret"]}"#),
            Verdict::Broken(_)
        ));
        assert!(matches!(verdict("<html>"), Verdict::Broken(_)));
        assert!(token_shape("XXXX.DUMMY.TOKEN.XXXX"));
        assert!(!token_shape("") && !token_shape(&"a".repeat(2049)) && !token_shape("a b"));
    }
}
