//! The route table: which paths exist and which methods each accepts.

use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Health,
    OpenApi,
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
    AdminEvents,
}

pub const API_KEYS_PATH: &str = "/v1/admin/api-keys";

/// Every route, as `openapi.yaml` writes it. A `{id}` segment matches one
/// non-empty path segment. The spec test checks this table against the spec.
pub const TABLE: [(&str, &str, Route); 19] = {
    use Route::*;
    [
        ("GET", "/healthz", Health),
        ("GET", "/openapi.json", OpenApi),
        ("POST", "/v1/register", Register),
        ("POST", "/v1/verify-email", VerifyEmail),
        ("POST", "/v1/resend", Resend),
        ("POST", "/v1/login", Login),
        ("POST", "/v1/login/code", LoginCode),
        ("POST", "/v1/login/code/verify", LoginCodeVerify),
        ("GET", "/v1/me", Me),
        ("POST", "/v1/logout", Logout),
        ("POST", "/v1/password-reset", PasswordReset),
        ("POST", "/v1/password-reset/confirm", PasswordResetConfirm),
        ("POST", "/v1/otp/send", OtpSend),
        ("POST", "/v1/otp/verify", OtpVerify),
        ("GET", "/v1/admin/stats", AdminStats),
        ("GET", API_KEYS_PATH, AdminListKeys),
        ("POST", API_KEYS_PATH, AdminCreateKey),
        ("DELETE", "/v1/admin/api-keys/{id}", AdminRevokeKey),
        ("GET", "/v1/admin/events", AdminEvents),
    ]
};

fn matches(template: &str, path: &str) -> bool {
    match template.strip_suffix("{id}") {
        Some(prefix) => path
            .strip_prefix(prefix)
            .is_some_and(|id| !id.is_empty() && !id.contains('/')),
        None => template == path,
    }
}

impl Route {
    pub fn resolve(method: &str, path: &str) -> Result<Self, ApiError> {
        // HEAD is GET without a body, as HTTP requires.
        let wanted = if method == "HEAD" { "GET" } else { method };
        if let Some((_, _, route)) = TABLE
            .iter()
            .find(|(m, t, _)| *m == wanted && matches(t, path))
        {
            return Ok(*route);
        }
        Err(match Self::allow(path) {
            Some(allow) => ApiError::MethodNotAllowed { allow },
            None => ApiError::NotFound,
        })
    }

    /// The `Allow` list of a path, or `None` when no route has it.
    pub fn allow(path: &str) -> Option<String> {
        let methods: Vec<&str> = TABLE
            .iter()
            .filter(|(_, t, _)| matches(t, path))
            .map(|(m, _, _)| *m)
            .collect();
        (!methods.is_empty()).then(|| methods.join(", "))
    }

    pub fn name(self) -> &'static str {
        use Route::*;
        match self {
            Health => "healthz",
            OpenApi => "openapi",
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
            AdminEvents => "admin_events",
        }
    }

    /// Routes that read a JSON body.
    pub fn takes_json(self) -> bool {
        use Route::*;
        !matches!(
            self,
            Health
                | OpenApi
                | Me
                | Logout
                | AdminStats
                | AdminListKeys
                | AdminRevokeKey
                | AdminEvents
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
            AdminStats | AdminListKeys | AdminCreateKey | AdminRevokeKey | AdminEvents
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
    use std::collections::BTreeSet;

    #[test]
    fn the_route_table_and_openapi_yaml_list_the_same_operations() {
        let spec: serde_json::Value =
            serde_norway::from_str(include_str!("../../openapi.yaml")).unwrap();
        let in_spec: BTreeSet<(String, String)> = spec["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .unwrap()
                    .keys()
                    .map(move |m| (m.to_ascii_uppercase(), path.clone()))
            })
            .collect();
        let in_code: BTreeSet<(String, String)> = TABLE
            .iter()
            .map(|(m, p, _)| (m.to_string(), p.to_string()))
            .collect();
        assert_eq!(
            in_code.difference(&in_spec).collect::<Vec<_>>(),
            Vec::<&(String, String)>::new(),
            "routes missing from openapi.yaml"
        );
        assert_eq!(
            in_spec.difference(&in_code).collect::<Vec<_>>(),
            Vec::<&(String, String)>::new(),
            "operations in openapi.yaml that no route serves"
        );
    }

    /// A comma in an unquoted YAML flow mapping silently makes a key with a
    /// null value; outside examples the spec has no nulls.
    #[test]
    fn openapi_yaml_has_no_accidental_nulls() {
        fn walk(v: &serde_json::Value, path: &str, found: &mut Vec<String>) {
            match v {
                serde_json::Value::Object(map) => map.iter().for_each(|(k, x)| {
                    if k != "example" && k != "examples" {
                        walk(x, &format!("{path}/{k}"), found)
                    }
                }),
                serde_json::Value::Array(items) => items.iter().for_each(|x| walk(x, path, found)),
                serde_json::Value::Null => found.push(path.to_owned()),
                _ => {}
            }
        }
        let spec: serde_json::Value =
            serde_norway::from_str(include_str!("../../openapi.yaml")).unwrap();
        let mut found = Vec::new();
        walk(&spec, "", &mut found);
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn every_route_resolves_to_itself_and_has_a_unique_name() {
        let mut names = BTreeSet::new();
        for (method, template, route) in TABLE {
            let path = template.replace("{id}", "0123abcd");
            assert_eq!(
                Route::resolve(method, &path),
                Ok(route),
                "{method} {template}"
            );
            assert!(names.insert(route.name()), "{route:?}");
        }
    }

    #[test]
    fn resolves_known_routes_and_refuses_the_rest() {
        assert_eq!(Route::resolve("POST", "/v1/register"), Ok(Route::Register));
        assert_eq!(Route::resolve("HEAD", "/healthz"), Ok(Route::Health));
        assert_eq!(
            Route::resolve("GET", "/v1/register"),
            Err(ApiError::MethodNotAllowed {
                allow: "POST".into()
            })
        );
        assert_eq!(
            Route::resolve("POST", "/v1/me"),
            Err(ApiError::MethodNotAllowed {
                allow: "GET".into()
            })
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
            Err(ApiError::MethodNotAllowed {
                allow: "GET, POST".into()
            })
        );
        let one = "/v1/admin/api-keys/0123abcd";
        assert_eq!(Route::resolve("DELETE", one), Ok(Route::AdminRevokeKey));
        assert_eq!(
            Route::resolve("GET", one),
            Err(ApiError::MethodNotAllowed {
                allow: "DELETE".into()
            })
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
