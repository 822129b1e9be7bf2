//! The OpenID Provider's values: an authorization request as the pages
//! carry it, scopes, prompts, lifetimes, and the protocol's own errors
//! (RFC 6749 §4.1.2.1 and §5.2, OpenID Connect Core §3.1.2.6), which are
//! answered as the RFCs say rather than as problem documents.

use crate::domain::absolute_url::AbsoluteUrl;
use crate::domain::code::Pepper;
pub use crate::domain::oauth_error::{OAuthCode, OAuthError};
use crate::domain::oidc_client::{Client, ClientKind};
use crate::domain::pkce::CodeChallenge;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

/// An authorization code travels through one redirect: a minute is plenty.
pub const CODE_TTL_SECS: u64 = 60;
/// How long a code is kept past its expiry, so that a replay still
/// revokes what its first redemption gave.
pub const REPLAY_WINDOW_SECS: u64 = 86_400;
/// How long past its expiry an ID token still names whom to sign out
/// (`id_token_hint`).
pub const HINT_GRACE_SECS: u64 = 30 * 86_400;
/// An access token is checked by apps without asking us, so it cannot be
/// recalled once out: it lives ten minutes.
pub const ACCESS_TOKEN_TTL_SECS: u64 = 600;
pub const ID_TOKEN_TTL_SECS: u64 = 600;
/// A refresh token (with `offline_access`), renewed by every rotation.
pub const REFRESH_TOKEN_TTL_SECS: u64 = 30 * 86_400;
/// How long a person may take on the pages (signing up, waiting for a
/// code's mail) between an app's request and the sign-in that answers it.
pub const REQUEST_TTL_SECS: u64 = 3_600;
/// `state`, `nonce` and `login_hint` are echoed, so they are bounded.
pub const MAX_PARAM_CHARS: usize = 512;

/// The scopes this provider grants; others are ignored, as OpenID Connect
/// Core §3.1.2.1 asks (frameworks send `profile` by default).
pub const SUPPORTED_SCOPES: [&str; 3] = ["openid", "email", "offline_access"];

/// The resource servers (RFC 8707) access tokens may be issued for
/// (`OIDC_RESOURCES`): an MCP server, an API. A token asked for one of
/// them carries it as its `aud`, so it is good there and nowhere else.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources(Vec<String>);

/// The most resources one deployment lists.
pub const MAX_RESOURCES: usize = 20;

impl Resources {
    /// Comma-separated absolute URIs, each written as it is compared:
    /// https (http on localhost and 127.0.0.1 outside production), no
    /// fragment, no userinfo.
    pub fn parse(raw: &str, production: bool) -> Result<Self, String> {
        let items: Vec<&str> = raw
            .split(',')
            .map(str::trim)
            .filter(|i| !i.is_empty())
            .collect();
        if items.len() > MAX_RESOURCES {
            return Err(format!(
                "var OIDC_RESOURCES lists at most {MAX_RESOURCES} URIs"
            ));
        }
        items
            .into_iter()
            .map(|item| {
                let url = AbsoluteUrl::parse(item).ok_or_else(|| {
                    format!("var OIDC_RESOURCES: `{item}` is not an absolute URI without a fragment")
                })?;
                let local = matches!(url.host.as_str(), "localhost" | "127.0.0.1");
                if url.scheme == "http" && (production || !local) {
                    return Err(format!(
                        "var OIDC_RESOURCES: `{item}` must use https (http only on localhost, and not in production)"
                    ));
                }
                let canonical = url.normalized();
                if canonical != item {
                    return Err(format!(
                        "var OIDC_RESOURCES: write `{item}` as it is compared: {canonical}"
                    ));
                }
                Ok(canonical)
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    pub fn allows(&self, resource: &str) -> bool {
        self.0.iter().any(|r| r == resource)
    }

    /// A `resource` parameter: `invalid_target` unless it is listed.
    pub fn check(&self, resource: Option<&str>) -> Result<Option<String>, OAuthError> {
        match resource {
            None => Ok(None),
            Some(r) if self.allows(r) => Ok(Some(r.to_owned())),
            Some(_) => Err(OAuthError::new(
                OAuthCode::InvalidTarget,
                "the resource is not one this provider issues tokens for (OIDC_RESOURCES)",
            )),
        }
    }
}

/// What the person is asked for (`prompt`): `none` never shows a page,
/// `login` always does, even to a signed-in browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Prompt {
    #[default]
    #[serde(rename = "")]
    Default,
    #[serde(rename = "none")]
    None,
    #[serde(rename = "login")]
    Login,
}

/// A validated authorization request, for one registered client and one
/// of its registered redirect URIs. It rides through the pages signed
/// (`seal`), so nothing in it can be changed on the way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    #[serde(rename = "c")]
    pub client_id: String,
    /// The client's name, for the pages to say where the person goes.
    #[serde(rename = "n")]
    pub client_name: String,
    #[serde(rename = "r")]
    pub redirect_uri: String,
    /// The granted scopes, space-separated, in `SUPPORTED_SCOPES` order.
    #[serde(rename = "s")]
    pub scope: String,
    #[serde(rename = "st", default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(rename = "no", default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(rename = "cc", default, skip_serializing_if = "Option::is_none")]
    pub challenge: Option<String>,
    #[serde(rename = "p", default)]
    pub prompt: Prompt,
    #[serde(rename = "h", default, skip_serializing_if = "Option::is_none")]
    pub login_hint: Option<String>,
    #[serde(rename = "ma", default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u64>,
    /// The resource server the access token is for (RFC 8707).
    #[serde(rename = "rs", default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// When the app asked: `prompt=login` wants a sign-in made after it.
    #[serde(rename = "t")]
    pub asked_at: u64,
    /// The client registered itself: the person is asked before a code.
    #[serde(rename = "cn", default, skip_serializing_if = "std::ops::Not::not")]
    pub consent: bool,
}

/// The raw query of `/oauth/authorize`, each parameter at most once.
#[derive(Debug, Default)]
pub struct AuthorizeQuery {
    params: Vec<(String, String)>,
}

impl AuthorizeQuery {
    pub fn parse(query: &str) -> Self {
        Self {
            params: form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
        }
    }

    /// The parameter, `Err` when it is given twice (RFC 6749 §3.1).
    fn get(&self, name: &str) -> Result<Option<&str>, OAuthError> {
        let mut values = self.params.iter().filter(|(k, _)| k == name);
        let first = values.next().map(|(_, v)| v.as_str());
        match values.next() {
            Some(_) => Err(OAuthError::new(
                OAuthCode::InvalidRequest,
                format!("`{name}` is given more than once"),
            )),
            None => Ok(first.filter(|v| !v.is_empty())),
        }
    }

    /// `client_id` and `redirect_uri`: until both check out against the
    /// registered client, an error may not be sent to the redirect URI.
    pub fn client_id(&self) -> Option<&str> {
        self.get("client_id").ok().flatten()
    }

    pub fn redirect_uri(&self) -> Option<&str> {
        self.get("redirect_uri").ok().flatten()
    }

    /// The request's `state`, echoed with an error where it can be.
    pub fn state(&self) -> Option<&str> {
        self.get("state")
            .ok()
            .flatten()
            .filter(|s| s.chars().count() <= MAX_PARAM_CHARS)
    }

    /// Validates the request for `client`, whose registered redirect URIs
    /// hold `redirect_uri` exactly (checked by the caller).
    pub fn validate(
        &self,
        client: &Client,
        resources: &Resources,
        now: u64,
    ) -> Result<AuthorizationRequest, OAuthError> {
        let invalid = |why: &str| OAuthError::new(OAuthCode::InvalidRequest, why);
        for name in [
            "client_id",
            "redirect_uri",
            "response_type",
            "scope",
            "state",
            "nonce",
            "code_challenge",
            "code_challenge_method",
            "prompt",
            "login_hint",
            "max_age",
            "response_mode",
            "resource",
        ] {
            self.get(name)?;
        }
        if self.get("request")?.is_some() {
            return Err(OAuthError::new(
                OAuthCode::RequestNotSupported,
                "request objects are not supported",
            ));
        }
        if self.get("request_uri")?.is_some() {
            return Err(OAuthError::new(
                OAuthCode::RequestUriNotSupported,
                "request_uri is not supported",
            ));
        }
        match self.get("response_type")? {
            Some("code") => {}
            None => return Err(invalid("`response_type` is required")),
            Some(_) => {
                return Err(OAuthError::new(
                    OAuthCode::UnsupportedResponseType,
                    "only response_type=code is supported",
                ))
            }
        }
        if !matches!(self.get("response_mode")?, None | Some("query")) {
            return Err(invalid("only response_mode=query is supported"));
        }
        let bounded = |name: &str| -> Result<Option<String>, OAuthError> {
            match self.get(name)? {
                Some(v) if v.chars().count() > MAX_PARAM_CHARS => Err(invalid(&format!(
                    "`{name}` is longer than {MAX_PARAM_CHARS} characters"
                ))),
                v => Ok(v.map(str::to_owned)),
            }
        };
        let state = bounded("state")?;
        let nonce = bounded("nonce")?;
        let login_hint = bounded("login_hint")?;
        let asked: Vec<&str> = self
            .get("scope")?
            .unwrap_or("")
            .split(' ')
            .filter(|s| !s.is_empty())
            .collect();
        let scope: Vec<&str> = SUPPORTED_SCOPES
            .into_iter()
            .filter(|s| asked.contains(s))
            .collect();
        if scope.is_empty() {
            return Err(OAuthError::new(
                OAuthCode::InvalidScope,
                "`scope` must hold openid, email or offline_access (openid for an ID token)",
            ));
        }
        let challenge = match (
            self.get("code_challenge")?,
            self.get("code_challenge_method")?,
        ) {
            (None, None) if client.kind == ClientKind::Public => return Err(invalid(
                "a public client must send code_challenge with code_challenge_method=S256 (PKCE)",
            )),
            (None, None) => None,
            (None, Some(_)) => return Err(invalid("`code_challenge` is missing")),
            (Some(c), method) => Some(
                CodeChallenge::parse(c, Some(method.unwrap_or("plain")))
                    .map_err(|e| invalid(&e))?
                    .as_str()
                    .to_owned(),
            ),
        };
        let prompt = match self.get("prompt")? {
            None => Prompt::Default,
            Some(raw) => {
                let values: Vec<&str> = raw.split(' ').filter(|v| !v.is_empty()).collect();
                if values.contains(&"none") && values.len() > 1 {
                    return Err(invalid("prompt=none cannot be combined with other values"));
                }
                for v in &values {
                    if !matches!(*v, "none" | "login" | "consent" | "select_account") {
                        return Err(invalid(&format!("prompt value `{v}` is not supported")));
                    }
                }
                match (values.contains(&"none"), values.contains(&"login")) {
                    (true, _) => Prompt::None,
                    (_, true) => Prompt::Login,
                    _ => Prompt::Default,
                }
            }
        };
        let max_age = match self.get("max_age")? {
            None => None,
            Some(raw) => Some(
                raw.parse::<u64>()
                    .ok()
                    .filter(|_| raw.bytes().all(|b| b.is_ascii_digit()) && raw.len() <= 10)
                    .ok_or_else(|| invalid("`max_age` must be a number of seconds"))?,
            ),
        };
        let resource = resources.check(self.get("resource")?)?;
        Ok(AuthorizationRequest {
            client_id: client.id.clone(),
            client_name: client.name.clone(),
            redirect_uri: self.redirect_uri().unwrap_or_default().to_owned(),
            scope: scope.join(" "),
            state,
            nonce,
            challenge,
            prompt,
            login_hint,
            max_age,
            resource,
            asked_at: now,
            consent: client.self_registered,
        })
    }
}

impl AuthorizationRequest {
    pub fn has_scope(&self, scope: &str) -> bool {
        has_scope(&self.scope, scope)
    }

    /// The earliest sign-in that answers this request, if it asks for a
    /// recent one: `prompt=login` wants one made after the request, and
    /// `max_age` one at most that old.
    pub fn signed_in_since(&self, now: u64) -> u64 {
        // Strictly after the request: a session made in the same second
        // (the one that was open when the app asked) is not a new sign-in.
        let login = match self.prompt {
            Prompt::Login => self.asked_at + 1,
            _ => 0,
        };
        let age = self.max_age.map_or(0, |m| now.saturating_sub(m));
        login.max(age)
    }

    /// The request, signed under the pepper, as the pages carry it in
    /// their links (`oauth=`): base64url JSON, a dot, and its HMAC.
    pub fn seal(&self, pepper: &Pepper) -> String {
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default());
        let mac = URL_SAFE_NO_PAD.encode(pepper.digest(&["oauth-request", &body]));
        format!("{body}.{mac}")
    }

    /// The request `sealed` carries, if its seal is this pepper's and it
    /// is no older than `REQUEST_TTL_SECS`.
    pub fn unseal(sealed: &str, pepper: &Pepper, now: u64) -> Option<Self> {
        let (body, mac) = sealed.split_once('.')?;
        let mac = URL_SAFE_NO_PAD.decode(mac).ok()?;
        let expected = pepper.digest(&["oauth-request", body]);
        if !bool::from(mac.as_slice().ct_eq(&expected[..])) {
            return None;
        }
        let request: Self = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).ok()?).ok()?;
        (now < request.asked_at + REQUEST_TTL_SECS && request.asked_at <= now + 60)
            .then_some(request)
    }
}

/// The provider's metadata: OpenID Connect Discovery 1.0, and RFC 8414's
/// document, which is the same one. Only what is built is announced.
/// What the provider's configuration turns on, for its metadata.
pub struct Offered {
    /// The algorithms ID tokens may be signed with (RS256 always).
    pub id_token_algs: Vec<crate::domain::jwk::Alg>,
    /// Dynamic client registration (`OIDC_DYNAMIC_REGISTRATION`).
    pub registration: bool,
}

pub fn metadata(issuer: &str, offered: &Offered) -> Value {
    let auth_methods = ["client_secret_basic", "client_secret_post", "none"];
    let algs: Vec<&str> = offered.id_token_algs.iter().map(|a| a.as_str()).collect();
    let mut doc = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/oauth/authorize"),
        "token_endpoint": format!("{issuer}/oauth/token"),
        "userinfo_endpoint": format!("{issuer}/oauth/userinfo"),
        "revocation_endpoint": format!("{issuer}/oauth/revoke"),
        "end_session_endpoint": format!("{issuer}/oauth/logout"),
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "scopes_supported": SUPPORTED_SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algs,
        "token_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "code_challenge_methods_supported": ["S256"],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "amr", "azp", "email", "email_verified"],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
    });
    // Announced only when it answers: a client that sees it registers.
    if offered.registration {
        doc["registration_endpoint"] = json!(format!("{issuer}/oauth/register"));
    }
    doc
}

pub fn has_scope(scopes: &str, scope: &str) -> bool {
    scopes.split(' ').any(|s| s == scope)
}

/// `redirect_uri` with `params` added to its query.
pub fn with_params(uri: &str, params: &[(&str, &str)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        query.append_pair(k, v);
    }
    let joiner = match uri.contains('?') {
        true if uri.ends_with('?') || uri.ends_with('&') => "",
        true => "&",
        false => "?",
    };
    format!("{uri}{joiner}{}", query.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(kind: ClientKind) -> Client {
        Client {
            id: "oc_0123456789abcdefghijkl".into(),
            name: "Notes".into(),
            kind,
            redirect_uris: vec!["https://app.example/cb".into()],
            post_logout_redirect_uris: vec![],
            api_key_id: None,
            created_at: 0,
            self_registered: false,
            id_token_alg: crate::domain::jwk::Alg::Rs256,
        }
    }

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn query(extra: &str) -> AuthorizeQuery {
        AuthorizeQuery::parse(&format!(
            "client_id=oc_0123456789abcdefghijkl&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&response_type=code&scope=openid+email+profile&state=s1&nonce=n1{extra}"
        ))
    }

    fn code(r: Result<AuthorizationRequest, OAuthError>) -> &'static str {
        r.unwrap_err().code.as_str()
    }

    #[test]
    fn a_confidential_clients_request_is_taken_and_unknown_scopes_ignored() {
        let r = query("")
            .validate(
                &client(ClientKind::Confidential),
                &Resources::default(),
                100,
            )
            .unwrap();
        assert_eq!(r.scope, "openid email");
        assert_eq!(r.state.as_deref(), Some("s1"));
        assert_eq!(r.nonce.as_deref(), Some("n1"));
        assert_eq!(r.challenge, None);
        assert_eq!(r.redirect_uri, "https://app.example/cb");
    }

    #[test]
    fn a_public_client_must_use_pkce_s256() {
        let public = client(ClientKind::Public);
        assert_eq!(
            code(query("").validate(&public, &Resources::default(), 0)),
            "invalid_request"
        );
        let plain = format!("&code_challenge={CHALLENGE}&code_challenge_method=plain");
        assert_eq!(
            code(query(&plain).validate(&public, &Resources::default(), 0)),
            "invalid_request"
        );
        let bare = format!("&code_challenge={CHALLENGE}");
        assert_eq!(
            code(query(&bare).validate(&public, &Resources::default(), 0)),
            "invalid_request"
        );
        let s256 = format!("&code_challenge={CHALLENGE}&code_challenge_method=S256");
        let r = query(&s256)
            .validate(&public, &Resources::default(), 0)
            .unwrap();
        assert_eq!(r.challenge.as_deref(), Some(CHALLENGE));
    }

    #[test]
    fn protocol_errors_have_the_rfcs_codes() {
        let c = client(ClientKind::Confidential);
        let v = |extra: &str| code(query(extra).validate(&c, &Resources::default(), 0));
        assert_eq!(v("&state=again"), "invalid_request");
        assert_eq!(v("&response_type=token"), "invalid_request");
        let no_type = AuthorizeQuery::parse(
            "client_id=oc_0123456789abcdefghijkl&redirect_uri=x&scope=openid&response_type=token",
        );
        assert_eq!(
            code(no_type.validate(&c, &Resources::default(), 0)),
            "unsupported_response_type"
        );
        assert_eq!(v("&request=eyJ"), "request_not_supported");
        assert_eq!(
            v("&request_uri=https%3A%2F%2Fx"),
            "request_uri_not_supported"
        );
        assert_eq!(v("&prompt=none+login"), "invalid_request");
        assert_eq!(v("&max_age=-1"), "invalid_request");
        assert_eq!(v("&response_mode=fragment"), "invalid_request");
        let long = format!("&login_hint={}", "a".repeat(MAX_PARAM_CHARS + 1));
        assert_eq!(v(&long), "invalid_request");
        let only_profile = AuthorizeQuery::parse(
            "client_id=oc_0123456789abcdefghijkl&redirect_uri=x&response_type=code&scope=profile",
        );
        assert_eq!(
            code(only_profile.validate(&c, &Resources::default(), 0)),
            "invalid_scope"
        );
    }

    #[test]
    fn prompt_login_and_max_age_ask_for_a_recent_sign_in() {
        let c = client(ClientKind::Confidential);
        let r = query("&prompt=login")
            .validate(&c, &Resources::default(), 1_000)
            .unwrap();
        assert_eq!(r.signed_in_since(1_010), 1_001);
        let r = query("&max_age=60")
            .validate(&c, &Resources::default(), 1_000)
            .unwrap();
        assert_eq!(r.signed_in_since(1_010), 950);
        let r = query("")
            .validate(&c, &Resources::default(), 1_000)
            .unwrap();
        assert_eq!(r.signed_in_since(1_010), 0);
        let r = query("&prompt=none")
            .validate(&c, &Resources::default(), 1_000)
            .unwrap();
        assert_eq!(r.prompt, Prompt::None);
    }

    #[test]
    fn a_sealed_request_opens_only_unchanged_with_the_same_pepper_and_in_time() {
        let pepper = Pepper::new("an-example-pepper-of-at-least-32-bytes!").unwrap();
        let other = Pepper::new("another-pepper-of-at-least-32-bytes!!!").unwrap();
        let r = query("")
            .validate(
                &client(ClientKind::Confidential),
                &Resources::default(),
                1_000,
            )
            .unwrap();
        let sealed = r.seal(&pepper);
        assert_eq!(
            AuthorizationRequest::unseal(&sealed, &pepper, 1_001),
            Some(r.clone())
        );
        assert_eq!(AuthorizationRequest::unseal(&sealed, &other, 1_001), None);
        assert_eq!(
            AuthorizationRequest::unseal(&sealed, &pepper, 1_000 + REQUEST_TTL_SECS),
            None
        );
        // Another redirect URI under the old seal.
        let (body, mac) = sealed.split_once('.').unwrap();
        let mut json: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).unwrap()).unwrap();
        json["r"] = "https://evil.example/cb".into();
        let forged = format!(
            "{}.{mac}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&json).unwrap())
        );
        assert_eq!(AuthorizationRequest::unseal(&forged, &pepper, 1_001), None);
    }

    #[test]
    fn a_resource_must_be_listed_and_written_as_compared() {
        let listed =
            Resources::parse("https://mcp.example.com/mcp, http://localhost:8788/", false).unwrap();
        let c = client(ClientKind::Confidential);
        let r = query("&resource=https%3A%2F%2Fmcp.example.com%2Fmcp")
            .validate(&c, &listed, 0)
            .unwrap();
        assert_eq!(r.resource.as_deref(), Some("https://mcp.example.com/mcp"));
        for other in [
            "https%3A%2F%2Fmcp.example.com%2Fmcp%2F",
            "https%3A%2F%2Fevil.example",
        ] {
            let e = query(&format!("&resource={other}")).validate(&c, &listed, 0);
            assert_eq!(code(e), "invalid_target");
        }
        assert!(Resources::parse("https://a.example/x#frag", false).is_err());
        assert!(Resources::parse("http://api.example/", false).is_err());
        assert!(Resources::parse("http://localhost:8788/", true).is_err());
        assert!(Resources::parse("HTTPS://A.example/", false).is_err());
        assert_eq!(Resources::parse("", true), Ok(Resources::default()));
    }

    #[test]
    fn params_are_appended_to_the_redirect_uris_query() {
        assert_eq!(
            with_params("https://a.example/cb", &[("code", "x y"), ("state", "s")]),
            "https://a.example/cb?code=x+y&state=s"
        );
        assert_eq!(
            with_params("https://a.example/cb?v=1", &[("code", "c")]),
            "https://a.example/cb?v=1&code=c"
        );
    }
}
