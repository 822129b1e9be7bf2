//! The route table: one row per operation, carrying everything its policy
//! needs. Who may call a route is the group its `Route` sits in; `edge`
//! authenticates by group before it reads a body, so a route cannot be
//! added without saying who may call it.
//!
//! Adding a route starts with a row here; CONTRIBUTING.md lists every
//! other place a new route touches, and the test that names each one
//! forgotten.

use crate::error::ApiError;
use crate::ports::limits::{RateLimit, APP_LIMIT, CLIENT_LIMIT};

/// What a path and method select.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Answered by `edge` alone: no config, no service.
    Health,
    /// The contract; not even rate limited, so clients can always read it.
    OpenApi,
    /// The OpenID Provider's public signing keys: answered by `edge` from
    /// the config alone.
    Jwks,
    /// The OpenID Provider's metadata (OpenID Connect Discovery, RFC 8414):
    /// answered by `edge` from the config alone.
    Discovery,
    /// A flow of the service, grouped by who may call it.
    Flow(Flow),
}

/// Who may call a flow: the group decides how `edge` authenticates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Anyone: the body proves what the flow needs (a password, a code).
    Public(PublicRoute),
    /// The holder of a session token (`Authorization: Bearer`).
    Session(SessionRoute),
    /// The operator, with `ADMIN_TOKEN`.
    Admin(AdminRoute),
    /// A calling app, with an API key.
    App(AppRoute),
    /// A provider's callback, proven by its signature over the raw body.
    Hook(HookRoute),
    /// The OpenID Provider's endpoints for clients: the client's
    /// credentials or an access token, checked by the flow itself, and
    /// errors answered as OAuth's RFCs say.
    OAuth(OAuthRoute),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthRoute {
    /// `/oauth/token`: codes and refresh tokens for tokens.
    Token,
    /// `/oauth/userinfo`: the account an access token speaks for.
    Userinfo,
    /// `/oauth/revoke` (RFC 7009).
    Revoke,
    /// `/oauth/register` (RFC 7591): a public client registers itself,
    /// when the operator allows it.
    Register,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookRoute {
    /// Twilio's message status callback (`X-Twilio-Signature`).
    TwilioStatus,
    /// Resend's webhook (Svix signature headers).
    Resend,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublicRoute {
    Register,
    VerifyEmail,
    Resend,
    Login,
    LoginCode,
    LoginCodeVerify,
    /// `POST /v1/login/mfa`: a sign-in's second step, with its ticket.
    LoginMfa,
    PasswordReset,
    PasswordResetConfirm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionRoute {
    Me,
    Logout,
    /// `POST /v1/me/totp`: a pending authenticator secret.
    BeginTotp,
    /// `POST /v1/me/totp/confirm`: its first code turns it on.
    ConfirmTotp,
    /// `DELETE /v1/me/totp`: off, with a fresh code.
    RemoveTotp,
    /// `POST /v1/me/totp/recovery-codes`: new recovery codes.
    ReplaceRecoveryCodes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminRoute {
    Stats,
    ListKeys,
    CreateKey,
    /// `DELETE /v1/admin/api-keys/{id}`: the id comes from the path.
    RevokeKey,
    ListOidcClients,
    CreateOidcClient,
    DeleteOidcClient,
    Events,
    /// `/v1/admin/api-keys/{id}/test-recipients`: a key's test recipients.
    ListTestRecipients,
    AddTestRecipient,
    RemoveTestRecipient,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppRoute {
    Send,
    Verify,
    /// `GET /v1/otp/{id}`: what became of a send.
    Status,
}

/// What a route reads from the request besides headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    None,
    Json,
    /// The bytes as they came, for a signature over them.
    Raw,
}

/// One operation: its method and path as `openapi.yaml` writes them, the
/// name it is logged under, what it is, and whether it reads a JSON body.
#[derive(Debug, PartialEq, Eq)]
pub struct Row {
    pub method: &'static str,
    pub path: &'static str,
    pub name: &'static str,
    pub route: Route,
    pub body: Body,
}

pub const API_KEYS_PATH: &str = "/v1/admin/api-keys";
pub const TWILIO_STATUS_PATH: &str = "/v1/hooks/twilio/status";
pub const TEST_RECIPIENTS_PATH: &str = "/v1/admin/api-keys/{id}/test-recipients";
pub const OIDC_CLIENTS_PATH: &str = "/v1/admin/oidc-clients";
pub const OIDC_CLIENT_PATH: &str = "/v1/admin/oidc-clients/{id}";
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
pub const METADATA_PATH: &str = "/.well-known/oauth-authorization-server";

const fn public(r: PublicRoute) -> Route {
    Route::Flow(Flow::Public(r))
}

const fn session(r: SessionRoute) -> Route {
    Route::Flow(Flow::Session(r))
}

const fn admin(r: AdminRoute) -> Route {
    Route::Flow(Flow::Admin(r))
}

const fn app(r: AppRoute) -> Route {
    Route::Flow(Flow::App(r))
}

const fn hook(r: HookRoute) -> Route {
    Route::Flow(Flow::Hook(r))
}

const fn oauth(r: OAuthRoute) -> Route {
    Route::Flow(Flow::OAuth(r))
}

const fn row(
    method: &'static str,
    path: &'static str,
    name: &'static str,
    route: Route,
    body: Body,
) -> Row {
    Row {
        method,
        path,
        name,
        route,
        body,
    }
}

/// Every route. A `{id}` segment matches one non-empty path segment. The
/// spec test checks this table against `openapi.yaml`.
#[rustfmt::skip]
pub const TABLE: [Row; 41] = {
    use AdminRoute::*;
    use AppRoute::*;
    use Body::{Json, None, Raw};
    use HookRoute::{Resend as ResendHook, TwilioStatus};
    use PublicRoute::*;
    use OAuthRoute::{Register as RegisterClient, Revoke, Token, Userinfo};
    use Route::{Discovery, Health, Jwks, OpenApi};
    use SessionRoute::*;
    [
        row("GET",    "/healthz",                   "healthz",                Health,                        None),
        row("GET",    "/openapi.json",              "openapi",                OpenApi,                       None),
        row("GET",    "/.well-known/jwks.json",     "oidc_jwks",              Jwks,                          None),
        row("GET",    DISCOVERY_PATH,               "oidc_discovery",         Discovery,                     None),
        row("GET",    METADATA_PATH,                "oauth_metadata",         Discovery,                     None),
        row("POST",   "/oauth/token",               "oauth_token",            oauth(Token),                  Raw),
        row("GET",    "/oauth/userinfo",            "oauth_userinfo",         oauth(Userinfo),               None),
        row("POST",   "/oauth/userinfo",            "oauth_userinfo_post",    oauth(Userinfo),               None),
        row("POST",   "/oauth/revoke",              "oauth_revoke",           oauth(Revoke),                 Raw),
        row("POST",   "/oauth/register",            "oauth_register",         oauth(RegisterClient),         Raw),
        row("POST",   "/v1/register",               "register",               public(Register),              Json),
        row("POST",   "/v1/verify-email",           "verify_email",           public(VerifyEmail),           Json),
        row("POST",   "/v1/resend",                 "resend",                 public(Resend),                Json),
        row("POST",   "/v1/login",                  "login",                  public(Login),                 Json),
        row("POST",   "/v1/login/code",             "login_code",             public(LoginCode),             Json),
        row("POST",   "/v1/login/code/verify",      "login_code_verify",      public(LoginCodeVerify),       Json),
        row("POST",   "/v1/login/mfa",              "login_mfa",              public(LoginMfa),              Json),
        row("GET",    "/v1/me",                     "me",                     session(Me),                   None),
        row("POST",   "/v1/logout",                 "logout",                 session(Logout),               None),
        row("POST",   "/v1/me/totp",                "totp_begin",             session(BeginTotp),            None),
        row("DELETE", "/v1/me/totp",                "totp_remove",            session(RemoveTotp),           Json),
        row("POST",   "/v1/me/totp/confirm",        "totp_confirm",           session(ConfirmTotp),          Json),
        row("POST",   "/v1/me/totp/recovery-codes", "totp_recovery_codes",    session(ReplaceRecoveryCodes), Json),
        row("POST",   "/v1/password-reset",         "password_reset",         public(PasswordReset),         Json),
        row("POST",   "/v1/password-reset/confirm", "password_reset_confirm", public(PasswordResetConfirm),  Json),
        row("POST",   "/v1/otp/send",               "otp_send",               app(Send),                     Json),
        row("POST",   "/v1/otp/verify",             "otp_verify",             app(Verify),                   Json),
        row("GET",    "/v1/otp/{id}",               "otp_status",             app(Status),                   None),
        row("POST",   TWILIO_STATUS_PATH,           "twilio_status",          hook(TwilioStatus),            Raw),
        row("POST",   "/v1/hooks/resend",           "resend_webhook",         hook(ResendHook),              Raw),
        row("GET",    "/v1/admin/stats",            "admin_stats",            admin(Stats),                  None),
        row("GET",    API_KEYS_PATH,                "admin_list_keys",        admin(ListKeys),               None),
        row("POST",   API_KEYS_PATH,                "admin_create_key",       admin(CreateKey),              Json),
        row("DELETE", "/v1/admin/api-keys/{id}",    "admin_revoke_key",       admin(RevokeKey),              None),
        row("GET",    "/v1/admin/events",           "admin_events",           admin(Events),                 None),
        row("GET",    OIDC_CLIENTS_PATH,            "admin_list_oidc_clients", admin(ListOidcClients),      None),
        row("POST",   OIDC_CLIENTS_PATH,            "admin_create_oidc_client", admin(CreateOidcClient),    Json),
        row("DELETE", OIDC_CLIENT_PATH,             "admin_delete_oidc_client", admin(DeleteOidcClient),    None),
        row("GET",    TEST_RECIPIENTS_PATH,         "admin_list_test_recipients",  admin(ListTestRecipients),  None),
        row("POST",   TEST_RECIPIENTS_PATH,         "admin_add_test_recipient",    admin(AddTestRecipient),    Json),
        row("DELETE", TEST_RECIPIENTS_PATH,         "admin_remove_test_recipient", admin(RemoveTestRecipient), None),
    ]
};

/// The rows of `path`: those written exactly so, if any (`/v1/otp/send` is
/// never `/v1/otp/{id}` with the id `send`), else those whose template it fits.
fn rows_of(path: &str) -> impl Iterator<Item = &'static Row> + '_ {
    let literal = TABLE.iter().any(|r| r.path == path);
    TABLE.iter().filter(move |r| match literal {
        true => r.path == path,
        false => r.path.contains("{id}") && id_in(r.path, path).is_some(),
    })
}

/// The `{id}` segment of `path`, if it has the shape of `template`: the
/// same segments, where `{id}` stands for one non-empty segment.
pub fn id_in<'p>(template: &str, path: &'p str) -> Option<&'p str> {
    let mut id = None;
    let (mut t, mut p) = (template.split('/'), path.split('/'));
    loop {
        match (t.next(), p.next()) {
            (None, None) => return id,
            (Some("{id}"), Some(segment)) if !segment.is_empty() => id = Some(segment),
            (Some(a), Some(b)) if a == b => {}
            _ => return None,
        }
    }
}

impl Row {
    /// The row for `method` and `path`, or 405 with the path's methods, or 404.
    pub fn resolve(method: &str, path: &str) -> Result<&'static Row, ApiError> {
        // HEAD is GET without a body, as HTTP requires.
        let wanted = if method == "HEAD" { "GET" } else { method };
        if let Some(row) = rows_of(path).find(|r| r.method == wanted) {
            return Ok(row);
        }
        Err(match Self::allow(path) {
            Some(allow) => ApiError::MethodNotAllowed { allow },
            None => ApiError::NotFound,
        })
    }

    /// The `Allow` list of a path, or `None` when no route has it.
    pub fn allow(path: &str) -> Option<String> {
        let methods: Vec<&str> = rows_of(path).map(|r| r.method).collect();
        (!methods.is_empty()).then(|| methods.join(", "))
    }

    pub fn takes_json(&self) -> bool {
        self.body == Body::Json
    }

    pub fn takes_raw(&self) -> bool {
        self.body == Body::Raw
    }

    /// Whether the route needs the pepper, because it digests codes or
    /// addresses: every JSON route but the operator's.
    pub fn needs_pepper(&self) -> bool {
        self.takes_json() && !matches!(self.route, Route::Flow(Flow::Admin(_)))
    }

    /// The per-client cap a request with `method` on `path` counts against
    /// before anything else, whatever its answer: its route's, else the
    /// path's routes' (a wrong method, a preflight), else the client cap
    /// (an unknown path).
    pub fn limit_of(method: &str, path: &str) -> Option<RateLimit> {
        match Self::resolve(method, path) {
            Ok(row) => row.limit(),
            Err(_) => rows_of(path).next().map_or(Some(CLIENT_LIMIT), Row::limit),
        }
    }

    /// The per-client cap the request counts against before anything else,
    /// or `None` for the contract, which anyone may always read.
    pub fn limit(&self) -> Option<RateLimit> {
        match self.route {
            Route::OpenApi => None,
            // Providers and apps' backends call from few addresses, many
            // times a second.
            // Registration is anyone's first call, not an app's backend's:
            // the per-client cap, before the store's hourly ones.
            Route::Flow(Flow::OAuth(OAuthRoute::Register)) => Some(CLIENT_LIMIT),
            Route::Flow(Flow::App(_) | Flow::Hook(_) | Flow::OAuth(_)) => Some(APP_LIMIT),
            // Not the apps' bucket: a client library refetching the keys
            // (an unknown `kid` makes some do it) never spends its sends.
            Route::Jwks | Route::Discovery => Some(CLIENT_LIMIT),
            Route::Health | Route::Flow(_) => Some(CLIENT_LIMIT),
        }
    }
}

/// The `{id}` of `/v1/admin/api-keys/{id}` and of its test recipients' path.
pub fn key_id(path: &str) -> Option<&str> {
    id_in("/v1/admin/api-keys/{id}", path).or_else(|| id_in(TEST_RECIPIENTS_PATH, path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn resolve(method: &str, path: &str) -> Result<Route, ApiError> {
        Row::resolve(method, path).map(|row| row.route)
    }

    fn row_of(method: &str, path: &str) -> &'static Row {
        Row::resolve(method, path).unwrap()
    }

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
        lists_the_table(&in_spec, "openapi.yaml");
    }

    /// `listed` (method, path) is the route table's, no more, no less.
    fn lists_the_table(listed: &BTreeSet<(String, String)>, what: &str) {
        let in_code: BTreeSet<(String, String)> = TABLE
            .iter()
            .map(|r| (r.method.to_string(), r.path.to_string()))
            .collect();
        assert_eq!(
            in_code.difference(listed).collect::<Vec<_>>(),
            Vec::<&(String, String)>::new(),
            "routes missing from {what}"
        );
        assert_eq!(
            listed.difference(&in_code).collect::<Vec<_>>(),
            Vec::<&(String, String)>::new(),
            "what {what} lists that no route serves"
        );
    }

    /// The README's API table has one row per route of the table, and no
    /// other: `| \`METHOD /path?query\` | … |` (the query is left out).
    #[test]
    fn the_readme_api_table_lists_the_route_table() {
        let readme = include_str!("../../README.md");
        let section = readme
            .split("\n## API (v1)\n")
            .nth(1)
            .expect("the README has an API (v1) section");
        let section = section.split("\n## ").next().unwrap_or(section);
        let in_readme: BTreeSet<(String, String)> = section
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split_once('`'))
            .filter_map(|(route, _)| route.split_once(' '))
            .map(|(method, path)| {
                let path = path.split('?').next().unwrap_or(path);
                (method.to_owned(), path.to_owned())
            })
            .collect();
        lists_the_table(&in_readme, "the README's API table");
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
        for row in &TABLE {
            let path = row.path.replace("{id}", "0123abcd");
            assert_eq!(
                Row::resolve(row.method, &path),
                Ok(row),
                "{} {}",
                row.method,
                row.path
            );
            assert!(names.insert(row.name), "{row:?}");
        }
    }

    #[test]
    fn resolves_known_routes_and_refuses_the_rest() {
        assert_eq!(
            resolve("POST", "/v1/register"),
            Ok(Route::Flow(Flow::Public(PublicRoute::Register)))
        );
        assert_eq!(resolve("HEAD", "/healthz"), Ok(Route::Health));
        assert_eq!(
            resolve("GET", "/v1/register"),
            Err(ApiError::MethodNotAllowed {
                allow: "POST".into()
            })
        );
        assert_eq!(
            resolve("POST", "/v1/me"),
            Err(ApiError::MethodNotAllowed {
                allow: "GET".into()
            })
        );
        assert_eq!(resolve("GET", "/v1/nope"), Err(ApiError::NotFound));
        assert_eq!(resolve("GET", "/v1/register/"), Err(ApiError::NotFound));
    }

    #[test]
    fn every_documented_path_answers_every_other_method_with_405_and_its_own_allow() {
        let methods = ["GET", "POST", "PUT", "PATCH", "DELETE"];
        for row in &TABLE {
            let path = row.path.replace("{id}", "0123456789abcdef0123456789abcdef");
            let own: Vec<&str> = TABLE
                .iter()
                .filter(|r| r.path == row.path)
                .map(|r| r.method)
                .collect();
            for method in methods {
                match Row::resolve(method, &path) {
                    Ok(found) => {
                        assert!(own.contains(&method), "{method} {path}");
                        assert_eq!(found.path, row.path, "{method} {path}");
                    }
                    Err(ApiError::MethodNotAllowed { allow }) => {
                        assert!(!own.contains(&method), "{method} {path}");
                        assert_eq!(allow, own.join(", "), "{method} {path}");
                    }
                    Err(e) => panic!("{method} {path}: {e:?}"),
                }
            }
        }
        // The literal paths next to `/v1/otp/{id}` are not ids.
        for path in ["/v1/otp/send", "/v1/otp/verify"] {
            assert_eq!(
                Row::resolve("GET", path).unwrap_err(),
                ApiError::MethodNotAllowed {
                    allow: "POST".into()
                }
            );
        }
        assert_eq!(row_of("GET", "/v1/otp/abc").name, "otp_status");
    }

    #[test]
    fn api_key_routes() {
        assert_eq!(
            resolve("GET", API_KEYS_PATH),
            Ok(Route::Flow(Flow::Admin(AdminRoute::ListKeys)))
        );
        assert_eq!(
            resolve("POST", API_KEYS_PATH),
            Ok(Route::Flow(Flow::Admin(AdminRoute::CreateKey)))
        );
        assert_eq!(
            resolve("DELETE", API_KEYS_PATH),
            Err(ApiError::MethodNotAllowed {
                allow: "GET, POST".into()
            })
        );
        let one = "/v1/admin/api-keys/0123abcd";
        assert_eq!(
            resolve("DELETE", one),
            Ok(Route::Flow(Flow::Admin(AdminRoute::RevokeKey)))
        );
        assert_eq!(
            resolve("GET", one),
            Err(ApiError::MethodNotAllowed {
                allow: "DELETE".into()
            })
        );
        assert_eq!(key_id(one), Some("0123abcd"));
        assert_eq!(
            resolve("DELETE", "/v1/admin/api-keys/a/b"),
            Err(ApiError::NotFound)
        );
        assert_eq!(
            resolve("DELETE", "/v1/admin/api-keys/"),
            Err(ApiError::NotFound)
        );
        assert!(matches!(
            resolve("POST", "/v1/otp/send"),
            Ok(Route::Flow(Flow::App(_)))
        ));
        assert!(!matches!(
            resolve("POST", "/v1/login"),
            Ok(Route::Flow(Flow::App(_)))
        ));
        assert!(
            !row_of("POST", API_KEYS_PATH).needs_pepper()
                && row_of("POST", "/v1/otp/verify").needs_pepper()
        );
    }
}
