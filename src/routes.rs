//! The route table: which paths exist and which methods each accepts.

use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Health,
    Register,
    VerifyEmail,
    Resend,
    Login,
    Me,
    Logout,
    PasswordReset,
    PasswordResetConfirm,
    AdminStats,
}

impl Route {
    pub fn resolve(method: &str, path: &str) -> Result<Self, ApiError> {
        use Route::*;
        let (route, allow) = match path {
            "/healthz" => (Health, "GET"),
            "/v1/register" => (Register, "POST"),
            "/v1/verify-email" => (VerifyEmail, "POST"),
            "/v1/resend" => (Resend, "POST"),
            "/v1/login" => (Login, "POST"),
            "/v1/me" => (Me, "GET"),
            "/v1/logout" => (Logout, "POST"),
            "/v1/password-reset" => (PasswordReset, "POST"),
            "/v1/password-reset/confirm" => (PasswordResetConfirm, "POST"),
            "/v1/admin/stats" => (AdminStats, "GET"),
            _ => return Err(ApiError::NotFound),
        };
        // HEAD is GET without a body, as HTTP requires.
        let head_ok = allow == "GET" && method == "HEAD";
        if method == allow || head_ok {
            Ok(route)
        } else {
            Err(ApiError::MethodNotAllowed { allow })
        }
    }

    pub fn name(self) -> &'static str {
        use Route::*;
        match self {
            Health => "healthz",
            Register => "register",
            VerifyEmail => "verify_email",
            Resend => "resend",
            Login => "login",
            Me => "me",
            Logout => "logout",
            PasswordReset => "password_reset",
            PasswordResetConfirm => "password_reset_confirm",
            AdminStats => "admin_stats",
        }
    }

    /// Routes that read a JSON body.
    pub fn takes_json(self) -> bool {
        use Route::*;
        matches!(
            self,
            Register | VerifyEmail | Resend | Login | PasswordReset | PasswordResetConfirm
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_known_routes_and_refuses_the_rest() {
        assert_eq!(Route::resolve("POST", "/v1/register"), Ok(Route::Register));
        assert_eq!(Route::resolve("HEAD", "/healthz"), Ok(Route::Health));
        assert_eq!(
            Route::resolve("GET", "/v1/register"),
            Err(ApiError::MethodNotAllowed { allow: "POST" })
        );
        assert_eq!(
            Route::resolve("POST", "/v1/me"),
            Err(ApiError::MethodNotAllowed { allow: "GET" })
        );
        assert_eq!(Route::resolve("GET", "/v1/nope"), Err(ApiError::NotFound));
        assert_eq!(
            Route::resolve("GET", "/v1/register/"),
            Err(ApiError::NotFound)
        );
    }
}
