//! What proves that whoever verifies an address also holds the password of
//! its pending sign-up. A code alone keeps that password only while one
//! sign-up asked for the address; once a second one came (a contested
//! sign-up, `users.contested`), the code in the inbox may be the other
//! sign-up's, so the request must prove the password itself, or the
//! address is verified with no password (account pre-hijacking).

use crate::domain::code::{digests_match, hex, Pepper};
use crate::domain::email::Email;
use crate::domain::password::Password;

/// What a verification brings besides the code.
#[derive(Debug)]
pub enum PasswordProof {
    None,
    /// The password itself (`/v1/verify-email`'s `password`).
    Password(Password),
    /// The registrant tokens of the browser's latest sign-ups (the pages'
    /// `__Host-otp_signup` cookie), from `registrant_token`.
    Registrant(Vec<String>),
}

/// How many sign-ups' tokens a browser keeps: a person who signs up again
/// (the mail was slow) still proves the first one.
pub const KEPT_TOKENS: usize = 4;

/// The token a sign-up hands the browser that made it: a keyed hash of
/// the address and the password hash this sign-up made (salted, so each
/// sign-up's is its own). It proves that password only while the account
/// holds that very hash, and it is made for every sign-up alike, stored or
/// not, so it tells nothing about the address.
pub fn registrant_token(pepper: &Pepper, email: &Email, password_hash: &str) -> String {
    hex(&pepper.digest(&["registrant", email.as_str(), password_hash]))
}

/// Whether one of `tokens` is the registrant token of the account's
/// current hash. Each is compared in constant time.
pub fn is_registrant(
    pepper: &Pepper,
    email: &Email,
    password_hash: &str,
    tokens: &[String],
) -> bool {
    let expected = registrant_token(pepper, email, password_hash);
    let found = tokens
        .iter()
        .fold(false, |found, t| found | digests_match(&expected, t));
    !password_hash.is_empty() && found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_proves_its_own_sign_ups_hash_and_no_other() {
        let pepper = Pepper::new("0123456789abcdef0123456789abcdef").unwrap();
        let ann = Email::parse("ann@example.com").unwrap();
        let bob = Email::parse("bob@example.com").unwrap();
        let token = vec![registrant_token(&pepper, &ann, "$argon2id$hash-1")];
        assert!(is_registrant(&pepper, &ann, "$argon2id$hash-1", &token));
        assert!(!is_registrant(&pepper, &ann, "$argon2id$hash-2", &token));
        assert!(!is_registrant(&pepper, &bob, "$argon2id$hash-1", &token));
        let empty = vec![registrant_token(&pepper, &ann, "")];
        assert!(!is_registrant(&pepper, &ann, "", &empty));
        let other = Pepper::new("another-pepper-0123456789abcdef0123").unwrap();
        assert!(!is_registrant(&other, &ann, "$argon2id$hash-1", &token));
        // Any of a browser's tokens will do.
        let several = vec!["00".repeat(32), token[0].clone()];
        assert!(is_registrant(&pepper, &ann, "$argon2id$hash-1", &several));
    }
}
