//! Why a code was issued. A code for one purpose never verifies another.

use crate::error::ApiError;

/// The purposes of the service's own account flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    VerifyEmail,
    ResetPassword,
    /// Passwordless sign-in by email code.
    Login,
}

impl Purpose {
    /// The purposes `/v1/resend` accepts; login codes are asked for again
    /// through `/v1/login/code`.
    pub fn parse_resendable(raw: &str) -> Result<Self, ApiError> {
        match raw {
            "verify_email" => Ok(Self::VerifyEmail),
            "reset_password" => Ok(Self::ResetPassword),
            _ => Err(ApiError::InvalidRequest(
                "field `purpose` must be `verify_email` or `reset_password`".into(),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::ResetPassword => "reset_password",
            Self::Login => "login",
        }
    }
}

/// A calling app's own purpose, `[a-z0-9_]{1,32}`. It only ever names codes
/// inside that app's scope, so it may equal one of ours without clashing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AppPurpose(String);

impl AppPurpose {
    pub const MAX_LEN: usize = 32;

    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let ok = (1..=Self::MAX_LEN).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !ok {
            return Err(ApiError::InvalidRequest(
                "field `purpose` must be 1 to 32 characters of a-z, 0-9 and _".into(),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resendable_purposes_round_trip_and_others_are_refused() {
        for p in [Purpose::VerifyEmail, Purpose::ResetPassword] {
            assert_eq!(Purpose::parse_resendable(p.as_str()).unwrap(), p);
        }
        assert!(Purpose::parse_resendable("login").is_err());
        assert!(Purpose::parse_resendable("VERIFY_EMAIL").is_err());
    }

    #[test]
    fn app_purposes_are_short_snake_case() {
        for ok in ["login", "confirm_payment", "2fa", "a", &"x".repeat(32)] {
            assert!(AppPurpose::parse(ok).is_ok(), "{ok:?}");
        }
        for bad in ["", "Login", "with space", "dash-ed", "ünï", &"x".repeat(33)] {
            assert!(AppPurpose::parse(bad).is_err(), "{bad:?}");
        }
    }
}
