//! Why a code was issued. A code for one purpose never verifies another.

use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    VerifyEmail,
    ResetPassword,
}

impl Purpose {
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_unknown() {
        for p in [Purpose::VerifyEmail, Purpose::ResetPassword] {
            assert_eq!(Purpose::parse(p.as_str()).unwrap(), p);
        }
        assert!(Purpose::parse("login").is_err());
        assert!(Purpose::parse("VERIFY_EMAIL").is_err());
    }
}
