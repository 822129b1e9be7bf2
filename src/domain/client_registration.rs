//! Dynamic client registration (RFC 7591): the metadata an app sends to
//! `/oauth/register` to become a client without the operator, and the
//! answer it gets. Only public clients register themselves (no secret is
//! ever issued to an unknown party), for the code flow with PKCE. Errors
//! are RFC 7591 §3.2.2's: `invalid_redirect_uri` for a redirect URI we
//! would not send a browser to, `invalid_client_metadata` for the rest.
//! Members this provider does not use (`logo_uri`, `client_uri`,
//! `contacts`…) are ignored, as §2 allows: the pages show nothing a
//! stranger chose but the name, and say that it is unverified.

use crate::domain::absolute_url::AbsoluteUrl;
use crate::domain::jwk::Alg;
use crate::domain::oauth_error::{OAuthCode, OAuthError};
use crate::domain::oidc_client::{parse_id_token_alg, parse_name, parse_uris, Client};
use crate::error::ApiError;
use serde_json::{json, Map, Value};

/// How long a self-registered client lives with no grant: from its
/// registration, or from the end of its last grant (the cron deletes it).
pub const UNUSED_CLIENT_SECS: u64 = 30 * 86_400;

/// The grant types a self-registered client may use.
const GRANT_TYPES: [&str; 2] = ["authorization_code", "refresh_token"];

/// Self-registered clients one network client (an IPv4 address or an
/// IPv6 /64) may make per hour: a developer trying things out needs a
/// few; someone filling the table needs many.
pub const REGISTRATIONS_PER_CLIENT_PER_HOUR: u32 = 10;

/// How many clients may register themselves in an hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistrationCaps {
    /// In all (`OIDC_REGISTRATIONS_PER_HOUR`), whoever registers.
    pub per_hour: u32,
    /// From one network client.
    pub per_client_per_hour: u32,
}

/// A registration request, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub id_token_alg: Alg,
}

fn metadata_error(description: impl Into<String>) -> OAuthError {
    OAuthError::new(OAuthCode::InvalidClientMetadata, description)
}

/// The sentence of a domain parser's refusal, under RFC 7591's `code`.
fn as_oauth(code: OAuthCode, e: ApiError) -> OAuthError {
    let description = match e {
        ApiError::InvalidRequest(d) => d,
        other => other.to_string(),
    };
    OAuthError::new(code, description)
}

/// A member that must be an array of strings, if present.
fn strings<'a>(
    map: &'a Map<String, Value>,
    name: &str,
    code: OAuthCode,
) -> Result<Option<Vec<&'a str>>, OAuthError> {
    match map.get(name) {
        None => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str())
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| OAuthError::new(code, format!("`{name}` must be an array of strings"))),
        Some(_) => Err(OAuthError::new(
            code,
            format!("`{name}` must be an array of strings"),
        )),
    }
}

/// A member that must be a string, if present.
fn string<'a>(map: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, OAuthError> {
    match map.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(metadata_error(format!("`{name}` must be a string"))),
    }
}

impl Registration {
    /// The request's JSON body (`application/json`, RFC 7591 §3.1).
    pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Self, OAuthError> {
        let essence = content_type.unwrap_or("").split(';').next().unwrap_or("");
        if !essence.trim().eq_ignore_ascii_case("application/json") {
            return Err(OAuthError::new(
                OAuthCode::InvalidRequest,
                "the body must be application/json",
            ));
        }
        let map = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => map,
            _ => return Err(metadata_error("the body must be a JSON object")),
        };
        let redirect = OAuthCode::InvalidRedirectUri;
        let raw_uris = strings(&map, "redirect_uris", redirect)?
            .ok_or_else(|| OAuthError::new(redirect, "`redirect_uris` is required"))?;
        let redirect_uris =
            parse_uris("redirect_uris", &raw_uris, 1).map_err(|e| as_oauth(redirect, e))?;
        let logout = strings(&map, "post_logout_redirect_uris", redirect)?.unwrap_or_default();
        let post_logout_redirect_uris = parse_uris("post_logout_redirect_uris", &logout, 0)
            .map_err(|e| as_oauth(redirect, e))?;
        if let Some(method) = string(&map, "token_endpoint_auth_method")? {
            if method != "none" {
                return Err(metadata_error(
                    "only public clients register themselves: `token_endpoint_auth_method` must be `none` (the operator registers confidential ones)",
                ));
            }
        }
        if let Some(types) = strings(&map, "grant_types", OAuthCode::InvalidClientMetadata)? {
            if types.iter().any(|t| !GRANT_TYPES.contains(t))
                || !types.contains(&"authorization_code")
            {
                return Err(metadata_error(
                    "`grant_types` must hold `authorization_code`, and may hold `refresh_token`",
                ));
            }
        }
        if let Some(types) = strings(&map, "response_types", OAuthCode::InvalidClientMetadata)? {
            if types != ["code"] {
                return Err(metadata_error("`response_types` must be [\"code\"]"));
            }
        }
        let alg = string(&map, "id_token_signed_response_alg")?;
        let id_token_alg =
            parse_id_token_alg(alg).map_err(|e| as_oauth(OAuthCode::InvalidClientMetadata, e))?;
        // Without a name, the host it sends people back to is what the
        // pages can honestly show.
        let name = match string(&map, "client_name")? {
            Some(raw) => parse_name("client_name", raw)
                .map_err(|e| as_oauth(OAuthCode::InvalidClientMetadata, e))?,
            None => AbsoluteUrl::parse(&redirect_uris[0])
                .map(|u| u.host)
                .unwrap_or_default(),
        };
        Ok(Self {
            name,
            redirect_uris,
            post_logout_redirect_uris,
            id_token_alg,
        })
    }
}

/// The registration's answer (RFC 7591 §3.2.1): the client as registered,
/// with what the provider chose for it.
pub fn registered(client: &Client) -> Value {
    json!({
        "client_id": client.id,
        "client_id_issued_at": client.created_at,
        "client_name": client.name,
        "redirect_uris": client.redirect_uris,
        "post_logout_redirect_uris": client.post_logout_redirect_uris,
        "token_endpoint_auth_method": "none",
        "grant_types": GRANT_TYPES,
        "response_types": ["code"],
        "id_token_signed_response_alg": client.id_token_alg.as_str(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: Option<&str> = Some("application/json");

    fn parse(body: Value) -> Result<Registration, OAuthError> {
        Registration::parse(JSON, body.to_string().as_bytes())
    }

    #[test]
    fn a_public_client_registers_with_its_redirect_uris_and_a_name() {
        let r = parse(json!({
            "client_name": " Claude ",
            "redirect_uris": ["http://localhost:6274/cb", "http://localhost:6274/cb"],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "logo_uri": "https://evil.example/logo.png",
        }))
        .unwrap();
        assert_eq!(r.name, "Claude");
        assert_eq!(r.redirect_uris, vec!["http://localhost:6274/cb".to_owned()]);
        assert_eq!(r.id_token_alg, Alg::Rs256);
        let unnamed = parse(json!({"redirect_uris": ["https://app.example/cb"]})).unwrap();
        assert_eq!(unnamed.name, "app.example", "the host, for want of a name");
        let es = parse(
            json!({"redirect_uris": ["https://app.example/cb"], "id_token_signed_response_alg": "ES256"}),
        );
        assert_eq!(es.unwrap().id_token_alg, Alg::Es256);
    }

    #[test]
    fn refusals_carry_rfc_7591_codes() {
        let code = |body: Value| parse(body).unwrap_err().code;
        let cb = json!(["https://app.example/cb"]);
        for bad in [
            json!({}),
            json!({"redirect_uris": []}),
            json!({"redirect_uris": "https://app.example/cb"}),
            json!({"redirect_uris": ["http://app.example/cb"]}),
            json!({"redirect_uris": ["https://app.example/cb#x"]}),
            json!({"redirect_uris": cb, "post_logout_redirect_uris": ["javascript:x"]}),
        ] {
            assert_eq!(code(bad.clone()), OAuthCode::InvalidRedirectUri, "{bad}");
        }
        for bad in [
            json!({"redirect_uris": cb, "token_endpoint_auth_method": "client_secret_basic"}),
            json!({"redirect_uris": cb, "token_endpoint_auth_method": "private_key_jwt"}),
            json!({"redirect_uris": cb, "grant_types": ["implicit"]}),
            json!({"redirect_uris": cb, "grant_types": ["refresh_token"]}),
            json!({"redirect_uris": cb, "grant_types": ["client_credentials", "authorization_code"]}),
            json!({"redirect_uris": cb, "response_types": ["token"]}),
            json!({"redirect_uris": cb, "response_types": ["code", "id_token"]}),
            json!({"redirect_uris": cb, "id_token_signed_response_alg": "none"}),
            json!({"redirect_uris": cb, "id_token_signed_response_alg": "HS256"}),
            json!({"redirect_uris": cb, "client_name": ""}),
            json!({"redirect_uris": cb, "client_name": 7}),
            json!({"redirect_uris": cb, "client_name": "a\nb"}),
            json!({"redirect_uris": cb, "token_endpoint_auth_method": null}),
            json!({"redirect_uris": cb, "grant_types": null}),
        ] {
            assert_eq!(code(bad.clone()), OAuthCode::InvalidClientMetadata, "{bad}");
        }
        assert_eq!(
            Registration::parse(JSON, b"[1]").unwrap_err().code,
            OAuthCode::InvalidClientMetadata
        );
        assert_eq!(
            Registration::parse(Some("text/plain"), b"{}")
                .unwrap_err()
                .code,
            OAuthCode::InvalidRequest
        );
    }
}
