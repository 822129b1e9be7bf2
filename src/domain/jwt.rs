//! JSON Web Tokens in compact form (RFC 7519, RFC 7515): the parts this
//! provider writes and reads back. The signature itself is made and
//! checked by a `ports::signer::Signer` (the runtime's WebCrypto).

use crate::domain::jwk::{Alg, SigningKey};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

/// The `typ` of an access token (RFC 9068 §2.1); an ID token has none, so
/// one can never be taken for the other.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// The longest token read back: ours are well under 2 KB.
const MAX_TOKEN_CHARS: usize = 4_096;

/// What a signer signs: `base64url(header).base64url(claims)`.
pub fn signing_input(key: &SigningKey, typ: Option<&str>, claims: &Value) -> String {
    let mut header = json!({"alg": key.alg.as_str(), "kid": key.kid});
    if let Some(typ) = typ {
        header["typ"] = json!(typ);
    }
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// The token: the signing input, a dot, the signature.
pub fn compact(input: &str, signature: &[u8]) -> String {
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// A token read back, its signature not yet checked.
#[derive(Debug)]
pub struct Unverified {
    pub alg: Alg,
    pub kid: String,
    pub typ: Option<String>,
    pub claims: Value,
    pub input: String,
    pub signature: Vec<u8>,
}

impl Unverified {
    /// Splits a compact JWS; `None` unless it is one of ours in shape: an
    /// algorithm we sign with (never `none`), a `kid`, JSON objects.
    pub fn parse(token: &str) -> Option<Self> {
        if token.len() > MAX_TOKEN_CHARS {
            return None;
        }
        let mut parts = token.split('.');
        let (h, c, s) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).ok()?).ok()?;
        let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(c).ok()?).ok()?;
        let alg = match header.get("alg")?.as_str()? {
            "RS256" => Alg::Rs256,
            "ES256" => Alg::Es256,
            _ => return None,
        };
        if !claims.is_object() || header.get("crit").is_some() {
            return None;
        }
        Some(Self {
            alg,
            kid: header.get("kid")?.as_str()?.to_owned(),
            typ: header.get("typ").and_then(Value::as_str).map(str::to_owned),
            claims,
            input: format!("{h}.{c}"),
            signature: URL_SAFE_NO_PAD.decode(s).ok()?,
        })
    }

    pub fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    pub fn claim_u64(&self, name: &str) -> Option<u64> {
        self.claims.get(name).and_then(Value::as_u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::jwk::{tests::sample_set, SigningKeys};

    #[test]
    fn a_token_reads_back_as_it_was_written() {
        let keys = SigningKeys::parse(&sample_set()).unwrap();
        let key = keys.signer(Alg::Es256).unwrap();
        let claims = json!({"sub": "u1", "exp": 10});
        let input = signing_input(key, Some(ACCESS_TOKEN_TYP), &claims);
        let token = compact(&input, &[1, 2, 3]);
        let read = Unverified::parse(&token).unwrap();
        assert_eq!(read.alg, Alg::Es256);
        assert_eq!(read.kid, key.kid);
        assert_eq!(read.typ.as_deref(), Some("at+jwt"));
        assert_eq!(read.claims, claims);
        assert_eq!(read.input, input);
        assert_eq!(read.signature, vec![1, 2, 3]);
        assert_eq!(read.claim_str("sub"), Some("u1"));
        assert_eq!(read.claim_u64("exp"), Some(10));
    }

    #[test]
    fn alg_none_other_algs_and_malformed_tokens_are_no_tokens() {
        let enc = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let claims = enc(json!({"sub": "u1"}));
        for header in [
            json!({"alg": "none", "kid": "k"}),
            json!({"alg": "HS256", "kid": "k"}),
            json!({"alg": "RS256"}),
            json!({"alg": "RS256", "kid": "k", "crit": ["x"]}),
        ] {
            assert!(Unverified::parse(&format!("{}.{claims}.AQID", enc(header))).is_none());
        }
        let good = enc(json!({"alg": "RS256", "kid": "k"}));
        assert!(Unverified::parse(&format!("{good}.{claims}.AQID")).is_some());
        assert!(Unverified::parse(&format!("{good}.{claims}")).is_none());
        assert!(Unverified::parse(&format!("{good}.{claims}.AQID.x")).is_none());
        assert!(Unverified::parse(&format!("{good}.{}.AQID", enc(json!([1])))).is_none());
        assert!(Unverified::parse(&format!("{good}.{claims}.!!")).is_none());
    }
}
