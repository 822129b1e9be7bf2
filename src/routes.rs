//! The route table: which paths exist and which methods each accepts.

use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Health,
    Register,
    VerifyEmail,
    Resend,
    Login,
    LoginCode,
    LoginCodeVerify,
    Me,
    Logout,
    PasswordReset,
    PasswordResetConfirm,
    OtpSend,
    OtpVerify,
    AdminStats,
    AdminListKeys,
    AdminCreateKey,
    /// `DELETE /v1/admin/api-keys/{id}`; the handler reads the id from the path.
    AdminRevokeKey,
}

pub const API_KEYS_PATH: &str = "/v1/admin/api-keys";

impl Route {
    pub fn resolve(method: &str, path: &str) -> Result<Self, ApiError> {
        use Route::*;
        let methods: &[(&str, Route)] = match path {
            "/healthz" => &[("GET", Health)],
            "/v1/register" => &[("POST", Register)],
            "/v1/verify-email" => &[("POST", VerifyEmail)],
            "/v1/resend" => &[("POST", Resend)],
            "/v1/login" => &[("POST", Login)],
            "/v1/login/code" => &[("POST", LoginCode)],
            "/v1/login/code/verify" => &[("POST", LoginCodeVerify)],
            "/v1/me" => &[("GET", Me)],
            "/v1/logout" => &[("POST", Logout)],
            "/v1/password-reset" => &[("POST", PasswordReset)],
            "/v1/password-reset/confirm" => &[("POST", PasswordResetConfirm)],
            "/v1/otp/send" => &[("POST", OtpSend)],
            "/v1/otp/verify" => &[("POST", OtpVerify)],
            "/v1/admin/stats" => &[("GET", AdminStats)],
            API_KEYS_PATH => &[("GET", AdminListKeys), ("POST", AdminCreateKey)],
            p if key_id(p).is_some() => &[("DELETE", AdminRevokeKey)],
            _ => return Err(ApiError::NotFound),
        };
        // HEAD is GET without a body, as HTTP requires.
        let wanted = if method == "HEAD" { "GET" } else { method };
        if let Some((_, route)) = methods.iter().find(|(m, _)| *m == wanted) {
            return Ok(*route);
        }
        let allow = match methods {
            [("GET", _), ("POST", _)] => "GET, POST",
            [(m, _), ..] => m,
            [] => unreachable!("every path has a method"),
        };
        Err(ApiError::MethodNotAllowed { allow })
    }

    pub fn name(self) -> &'static str {
        use Route::*;
        match self {
            Health => "healthz",
            Register => "register",
            VerifyEmail => "verify_email",
            Resend => "resend",
            Login => "login",
            LoginCode => "login_code",
            LoginCodeVerify => "login_code_verify",
            Me => "me",
            Logout => "logout",
            PasswordReset => "password_reset",
            PasswordResetConfirm => "password_reset_confirm",
            OtpSend => "otp_send",
            OtpVerify => "otp_verify",
            AdminStats => "admin_stats",
            AdminListKeys => "admin_list_keys",
            AdminCreateKey => "admin_create_key",
            AdminRevokeKey => "admin_revoke_key",
        }
    }

    /// Routes that read a JSON body.
    pub fn takes_json(self) -> bool {
        use Route::*;
        !matches!(
            self,
            Health | Me | Logout | AdminStats | AdminListKeys | AdminRevokeKey
        )
    }

    /// Routes that need the pepper, because they digest codes or addresses.
    pub fn needs_pepper(self) -> bool {
        use Route::*;
        self.takes_json() && self != AdminCreateKey
    }

    /// Routes behind `ADMIN_TOKEN`.
    pub fn is_admin(self) -> bool {
        use Route::*;
        matches!(
            self,
            AdminStats | AdminListKeys | AdminCreateKey | AdminRevokeKey
        )
    }

    /// Routes that authenticate with an API key.
    pub fn takes_api_key(self) -> bool {
        matches!(self, Route::OtpSend | Route::OtpVerify)
    }
}

/// The `{id}` of `/v1/admin/api-keys/{id}`.
pub fn key_id(path: &str) -> Option<&str> {
    path.strip_prefix(API_KEYS_PATH)?
        .strip_prefix('/')
        .filter(|id| !id.is_empty() && !id.contains('/'))
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

    #[test]
    fn api_key_routes() {
        assert_eq!(
            Route::resolve("GET", API_KEYS_PATH),
            Ok(Route::AdminListKeys)
        );
        assert_eq!(
            Route::resolve("POST", API_KEYS_PATH),
            Ok(Route::AdminCreateKey)
        );
        assert_eq!(
            Route::resolve("DELETE", API_KEYS_PATH),
            Err(ApiError::MethodNotAllowed { allow: "GET, POST" })
        );
        let one = "/v1/admin/api-keys/0123abcd";
        assert_eq!(Route::resolve("DELETE", one), Ok(Route::AdminRevokeKey));
        assert_eq!(
            Route::resolve("GET", one),
            Err(ApiError::MethodNotAllowed { allow: "DELETE" })
        );
        assert_eq!(key_id(one), Some("0123abcd"));
        assert_eq!(
            Route::resolve("DELETE", "/v1/admin/api-keys/a/b"),
            Err(ApiError::NotFound)
        );
        assert_eq!(
            Route::resolve("DELETE", "/v1/admin/api-keys/"),
            Err(ApiError::NotFound)
        );
        assert!(Route::OtpSend.takes_api_key() && !Route::Login.takes_api_key());
        assert!(!Route::AdminCreateKey.needs_pepper() && Route::OtpVerify.needs_pepper());
    }
}
