//! A secret stored encrypted: the key, derived from a secret of its own
//! (`MFA_ENCRYPTION_KEY`, never the pepper, so a leaked pepper or a D1
//! dump alone opens nothing), and the stored form.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// An AES-256-GCM key. `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct SealKey([u8; 32]);

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(<redacted>)")
    }
}

/// The shortest secret the key is derived from: 256 bits as hex, or any
/// string as long.
pub const MIN_SECRET_CHARS: usize = 32;

impl SealKey {
    /// The key for `purpose` (a fixed label), as HKDF-Expand's first block
    /// (RFC 5869) with the secret as the PRK: one HMAC-SHA256, so keys for
    /// other purposes from the same secret are independent.
    pub fn derive(secret: &str, purpose: &str) -> Result<Self, String> {
        if secret.chars().count() < MIN_SECRET_CHARS {
            return Err(format!(
                "secret MFA_ENCRYPTION_KEY must be at least {MIN_SECRET_CHARS} characters (e.g. `openssl rand -hex 32`)"
            ));
        }
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
            .expect("HMAC takes a key of any size");
        mac.update(purpose.as_bytes());
        mac.update(&[1]);
        Ok(Self(mac.finalize().into_bytes().into()))
    }

    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// The label of the authenticator secrets' key.
pub const TOTP_SECRETS: &str = "otp-edge totp secrets v1";

/// What a column holds: `v1.` and base64url of the nonce, the ciphertext
/// and the tag. The version names the scheme, so another can follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub nonce: [u8; 12],
    pub ciphertext: Vec<u8>,
}

impl Sealed {
    pub fn parse(stored: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(stored.strip_prefix("v1.")?).ok()?;
        // A nonce and at least a tag.
        if bytes.len() < 12 + 16 {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(12);
        Some(Self {
            nonce: nonce.try_into().ok()?,
            ciphertext: ciphertext.to_vec(),
        })
    }

    pub fn stored(&self) -> String {
        let mut bytes = self.nonce.to_vec();
        bytes.extend_from_slice(&self.ciphertext);
        format!("v1.{}", URL_SAFE_NO_PAD.encode(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_secret_is_refused_by_name() {
        let e = SealKey::derive("too-short", TOTP_SECRETS).unwrap_err();
        assert!(e.contains("MFA_ENCRYPTION_KEY"), "{e}");
    }

    #[test]
    fn keys_differ_by_secret_and_purpose_and_are_not_the_secret() {
        let s = "0123456789abcdef0123456789abcdef";
        let k = SealKey::derive(s, TOTP_SECRETS).unwrap();
        assert_ne!(k, SealKey::derive(s, "other").unwrap());
        assert_ne!(
            k,
            SealKey::derive(&s.replace('0', "1"), TOTP_SECRETS).unwrap()
        );
        assert_ne!(&k.bytes()[..], &s.as_bytes()[..32]);
        assert_eq!(format!("{k:?}"), "SealKey(<redacted>)");
    }

    #[test]
    fn the_stored_form_reads_back_and_nothing_else_does() {
        let s = Sealed {
            nonce: [7; 12],
            ciphertext: vec![1; 36],
        };
        assert_eq!(Sealed::parse(&s.stored()), Some(s.clone()));
        assert!(s.stored().starts_with("v1."));
        assert_eq!(Sealed::parse("v2.AAAA"), None);
        assert_eq!(Sealed::parse("v1.AAAA"), None);
        assert_eq!(Sealed::parse("plaintext"), None);
    }
}
