//! PKCE (RFC 7636): the S256 challenge an authorization request carries,
//! and the verifier the client later proves it with at the token endpoint.

use crate::error::ApiError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// An S256 `code_challenge`: base64url without padding of a SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeChallenge(String);

impl CodeChallenge {
    /// `method` must be `S256`: `plain` would hand the verifier to anyone
    /// who sees the sign-in link.
    pub fn parse(challenge: &str, method: Option<&str>) -> Result<Self, String> {
        if method != Some("S256") {
            return Err("code_challenge_method must be S256".into());
        }
        let decoded = URL_SAFE_NO_PAD.decode(challenge).ok();
        match decoded {
            Some(bytes) if bytes.len() == 32 && challenge.len() == 43 => {
                Ok(Self(challenge.to_owned()))
            }
            _ => Err("code_challenge must be 43 characters of base64url (a SHA-256)".into()),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A PKCE `code_verifier`: 43 to 128 characters of `A-Z a-z 0-9 - . _ ~`.
#[derive(Clone, PartialEq, Eq)]
pub struct CodeVerifier(String);

impl CodeVerifier {
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || "-._~".contains(c);
        match (43..=128).contains(&raw.len()) && raw.chars().all(allowed) {
            true => Ok(Self(raw.to_owned())),
            false => Err(ApiError::InvalidRequest(
                "field `code_verifier` must be 43 to 128 characters of A-Z, a-z, 0-9, -, ., _ and ~"
                    .into(),
            )),
        }
    }

    /// The S256 challenge this verifier answers.
    pub fn challenge(&self) -> CodeChallenge {
        CodeChallenge(URL_SAFE_NO_PAD.encode(Sha256::digest(self.0.as_bytes())))
    }
}

impl std::fmt::Debug for CodeVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeVerifier(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_7636_example_verifier_answers_its_challenge() {
        let verifier = CodeVerifier::parse("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk").unwrap();
        assert_eq!(
            verifier.challenge().as_str(),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let parsed =
            CodeChallenge::parse("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", Some("S256"));
        assert_eq!(parsed, Ok(verifier.challenge()));
    }

    #[test]
    fn only_s256_challenges_of_the_right_shape_are_taken() {
        let good = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(CodeChallenge::parse(good, Some("plain")).is_err());
        assert!(CodeChallenge::parse(good, None).is_err());
        assert!(CodeChallenge::parse(&good[1..], Some("S256")).is_err());
        assert!(CodeChallenge::parse(&format!("{good}="), Some("S256")).is_err());
        assert!(
            CodeChallenge::parse("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM", Some("S256"))
                .is_err()
        );
    }

    #[test]
    fn verifiers_are_43_to_128_unreserved_characters() {
        assert!(CodeVerifier::parse(&"a".repeat(42)).is_err());
        assert!(CodeVerifier::parse(&"a".repeat(43)).is_ok());
        assert!(CodeVerifier::parse(&"a".repeat(128)).is_ok());
        assert!(CodeVerifier::parse(&"a".repeat(129)).is_err());
        assert!(CodeVerifier::parse(&format!("{}/", "a".repeat(43))).is_err());
        assert!(CodeVerifier::parse(&format!("{}-._~", "a".repeat(43))).is_ok());
    }
}
