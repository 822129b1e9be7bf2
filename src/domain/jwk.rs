//! The OpenID Provider's signing keys, from the secret `OIDC_SIGNING_KEYS`:
//! a JWK set (RFC 7517) of private keys, each with its `kid` and `alg`.
//! The first key of each algorithm signs; every key is published in the
//! JWKS, so an operator rotates by adding the next key first, waiting for
//! clients to see it, and removing the old one only once no token it
//! signed is still live.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Map, Value};

/// The algorithms a key may sign with. OpenID Connect Discovery requires a
/// provider to offer RS256; ES256 makes shorter tokens for those who want them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Rs256,
    Es256,
}

impl Alg {
    /// A JWS `alg` this provider signs with, by its RFC 7518 name.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "RS256" => Some(Self::Rs256),
            "ES256" => Some(Self::Es256),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
        }
    }
}

/// The shortest RSA modulus taken: 2048 bits (NIST SP 800-57).
pub const MIN_RSA_BYTES: usize = 256;
/// The longest `kid`: ids are short labels like `2026-12-rs`.
pub const MAX_KID_CHARS: usize = 64;

/// One signing key: its private JWK (what the runtime's WebCrypto imports
/// to sign) and the public JWK it publishes.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey {
    pub kid: String,
    pub alg: Alg,
    private: Map<String, Value>,
    public: Value,
}

impl SigningKey {
    /// The private JWK, for the signer alone: never logged, never answered.
    pub fn private_jwk(&self) -> &Map<String, Value> {
        &self.private
    }

    pub fn public_jwk(&self) -> &Value {
        &self.public
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SigningKey({}, {}, <private>)",
            self.kid,
            self.alg.as_str()
        )
    }
}

/// The signing keys, checked: at least one RS256 key, `kid`s unique.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeys(Vec<SigningKey>);

impl SigningKeys {
    /// Parses the secret. The error names the key and the member at fault,
    /// never a key's value.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let refuse = |why: String| format!("secret OIDC_SIGNING_KEYS: {why}");
        let set: Value = serde_json::from_str(raw)
            .map_err(|_| refuse("must be a JWK set, {\"keys\": [...]}, in JSON".into()))?;
        let keys = set
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| refuse("must be a JWK set, {\"keys\": [...]}".into()))?;
        let mut out: Vec<SigningKey> = Vec::with_capacity(keys.len());
        for (i, key) in keys.iter().enumerate() {
            let key = parse_key(key).map_err(|why| refuse(format!("key {i}: {why}")))?;
            if out.iter().any(|k| k.kid == key.kid) {
                return Err(refuse(format!("key {i}: `kid` {} is used twice", key.kid)));
            }
            out.push(key);
        }
        if !out.iter().any(|k| k.alg == Alg::Rs256) {
            return Err(refuse(
                "needs an RS256 key, which OpenID Connect requires every provider to offer".into(),
            ));
        }
        Ok(Self(out))
    }

    /// The key that signs with `alg`: the first of the set.
    pub fn signer(&self, alg: Alg) -> Option<&SigningKey> {
        self.0.iter().find(|k| k.alg == alg)
    }

    /// The published key named `kid`: a token signed by any key of the set
    /// verifies while the key is published (rotation, docs/oidc.md).
    pub fn by_kid(&self, kid: &str) -> Option<&SigningKey> {
        self.0.iter().find(|k| k.kid == kid)
    }

    /// The algorithms the set signs with, RS256 first.
    pub fn algs(&self) -> Vec<Alg> {
        [Alg::Rs256, Alg::Es256]
            .into_iter()
            .filter(|a| self.signer(*a).is_some())
            .collect()
    }

    /// `GET /.well-known/jwks.json`: every key's public half.
    pub fn jwks(&self) -> Value {
        json!({"keys": self.0.iter().map(|k| k.public.clone()).collect::<Vec<_>>()})
    }
}

/// A base64url member of `key`, decoded, of at least `min` bytes.
fn member(key: &Map<String, Value>, name: &str, min: usize) -> Result<Vec<u8>, String> {
    let raw = key
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("member `{name}` is missing"))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(raw)
        .map_err(|_| format!("member `{name}` must be base64url without padding"))?;
    if bytes.len() < min || bytes.first() == Some(&0) && name == "n" {
        return Err(format!("member `{name}` is too short"));
    }
    Ok(bytes)
}

fn parse_key(key: &Value) -> Result<SigningKey, String> {
    let key = key.as_object().ok_or("must be a JSON object")?;
    let text = |name: &str| key.get(name).and_then(Value::as_str);
    let kid = text("kid").ok_or("member `kid` is missing")?;
    if kid.is_empty()
        || kid.len() > MAX_KID_CHARS
        || !kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(format!(
            "`kid` must be 1 to {MAX_KID_CHARS} of A-Z a-z 0-9 - _ ."
        ));
    }
    if text("use").is_some_and(|u| u != "sig") {
        return Err(format!("key {kid}: `use` must be `sig`"));
    }
    let at = |why: String| format!("key {kid}: {why}");
    let (alg, public) = match (text("alg"), text("kty")) {
        (Some("RS256"), Some("RSA")) => {
            let n = member(key, "n", MIN_RSA_BYTES)
                .map_err(|e| at(format!("{e} (RSA keys of at least 2048 bits)")))?;
            if n[0] < 0x80 && n.len() == MIN_RSA_BYTES {
                return Err(at("member `n` is under 2048 bits".into()));
            }
            // 65537, what every library makes: a small or even exponent
            // would publish a key anyone could forge signatures for.
            if text("e") != Some("AQAB") {
                return Err(at("member `e` must be AQAB (65537)".into()));
            }
            for private in ["d", "p", "q", "dp", "dq", "qi"] {
                member(key, private, 1).map_err(at)?;
            }
            let public = json!({
                "kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
                "n": key["n"], "e": key["e"],
            });
            (Alg::Rs256, public)
        }
        (Some("ES256"), Some("EC")) => {
            if text("crv") != Some("P-256") {
                return Err(at("an ES256 key's `crv` must be `P-256`".into()));
            }
            for name in ["x", "y", "d"] {
                let bytes = member(key, name, 32).map_err(at)?;
                if bytes.len() != 32 {
                    return Err(at(format!("member `{name}` must be 32 bytes")));
                }
            }
            let public = json!({
                "kty": "EC", "kid": kid, "alg": "ES256", "use": "sig",
                "crv": "P-256", "x": key["x"], "y": key["y"],
            });
            (Alg::Es256, public)
        }
        _ => {
            return Err(at(
                "`alg` must be RS256 (with `kty` RSA) or ES256 (with `kty` EC)".into(),
            ))
        }
    };
    Ok(SigningKey {
        kid: kid.to_owned(),
        alg,
        private: key.clone(),
        public,
    })
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A key set of the shape `scripts/dev` makes: an RS256 and an ES256
    /// key. The numbers are random bytes of the right lengths: these tests
    /// check the parsing and the published halves, not the arithmetic.
    pub fn sample_set() -> String {
        let b = |n: usize, fill: u8| URL_SAFE_NO_PAD.encode(vec![fill; n]);
        json!({"keys": [
            {"kty": "RSA", "kid": "rs-1", "alg": "RS256", "use": "sig", "n": b(256, 0xc3), "e": "AQAB",
             "d": b(256, 1), "p": b(128, 2), "q": b(128, 3), "dp": b(128, 4), "dq": b(128, 5), "qi": b(128, 6)},
            {"kty": "EC", "kid": "es-1", "alg": "ES256", "crv": "P-256", "x": b(32, 7), "y": b(32, 8), "d": b(32, 9)},
        ]})
        .to_string()
    }

    /// `sample_set` without its ES256 key.
    pub fn rsa_only_set() -> String {
        let mut set: Value = serde_json::from_str(&sample_set()).unwrap();
        set["keys"]
            .as_array_mut()
            .unwrap()
            .retain(|k| k["alg"] == "RS256");
        set.to_string()
    }

    #[test]
    fn the_published_set_holds_every_public_half_and_no_private_member() {
        let keys = SigningKeys::parse(&sample_set()).unwrap();
        assert_eq!(keys.algs(), vec![Alg::Rs256, Alg::Es256]);
        assert_eq!(keys.signer(Alg::Es256).unwrap().kid, "es-1");
        let jwks = keys.jwks().to_string();
        for private in ["\"d\"", "\"p\"", "\"q\"", "\"dp\"", "\"dq\"", "\"qi\""] {
            assert!(!jwks.contains(private), "{private} in {jwks}");
        }
        let published = keys.jwks();
        let rs = &published["keys"][0];
        assert_eq!(
            (rs["kid"].as_str(), rs["alg"].as_str(), rs["use"].as_str()),
            (Some("rs-1"), Some("RS256"), Some("sig"))
        );
        assert!(rs["n"].is_string() && rs["e"] == "AQAB");
        let es = &published["keys"][1];
        assert_eq!(
            (es["crv"].as_str(), es["use"].as_str()),
            (Some("P-256"), Some("sig"))
        );
        assert!(!format!("{:?}", keys).contains(&URL_SAFE_NO_PAD.encode([1u8; 256])));
    }

    #[test]
    fn the_first_key_of_an_algorithm_signs_and_every_key_is_published() {
        let mut set: Value = serde_json::from_str(&sample_set()).unwrap();
        let mut next = set["keys"][0].clone();
        next["kid"] = json!("rs-2");
        set["keys"].as_array_mut().unwrap().push(next);
        let keys = SigningKeys::parse(&set.to_string()).unwrap();
        assert_eq!(keys.signer(Alg::Rs256).unwrap().kid, "rs-1");
        assert_eq!(keys.jwks()["keys"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn weak_or_malformed_sets_are_refused_naming_what_is_wrong() {
        let set: Value = serde_json::from_str(&sample_set()).unwrap();
        let with = |i: usize, name: &str, value: Value| {
            let mut s = set.clone();
            s["keys"][i][name] = value;
            SigningKeys::parse(&s.to_string()).unwrap_err()
        };
        let short = URL_SAFE_NO_PAD.encode([0xc3u8; 128]);
        assert!(with(0, "n", json!(short)).contains("2048"));
        assert!(with(0, "d", Value::Null).contains("`d`"));
        assert!(with(0, "e", json!("AQ")).contains("65537"));
        assert!(with(0, "e", json!("Aw")).contains("65537"));
        let under = URL_SAFE_NO_PAD.encode([0x01u8; 256]);
        assert!(with(0, "n", json!(under)).contains("2048"));
        assert!(with(0, "alg", json!("HS256")).contains("RS256"));
        assert!(with(0, "alg", json!("none")).contains("RS256"));
        assert!(with(0, "use", json!("enc")).contains("sig"));
        assert!(with(1, "crv", json!("P-384")).contains("P-256"));
        assert!(with(1, "x", json!("not base64!")).contains("base64url"));
        assert!(with(1, "kid", json!("rs-1")).contains("twice"));
        assert!(with(1, "kid", json!("a b")).contains("kid"));
        let only_ec = json!({"keys": [set["keys"][1]]}).to_string();
        assert!(SigningKeys::parse(&only_ec).unwrap_err().contains("RS256"));
        assert!(SigningKeys::parse("[]").is_err());
        assert!(SigningKeys::parse("not json").is_err());
        // The refusals name members, never a value.
        let err = with(0, "n", json!(short));
        assert!(!err.contains(&short));
    }
}
