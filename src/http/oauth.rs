//! The OpenID Provider's form requests (RFC 6749 §4.1.3, §6, RFC 7009):
//! the client's credentials and what it asks for. Errors are OAuth's own
//! (`ApiError::OAuth`), as the RFCs say a client library expects them.

use crate::domain::oauth::{OAuthCode, OAuthError};
use crate::domain::pkce::CodeVerifier;
use crate::error::ApiError;
use crate::service::{ClientCredentials, GrantRequest};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

fn invalid(description: &str) -> ApiError {
    ApiError::OAuth(OAuthError::new(OAuthCode::InvalidRequest, description))
}

/// A form body, each parameter at most once (RFC 6749 §3.2).
struct FormBody(Vec<(String, String)>);

impl FormBody {
    fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Self, ApiError> {
        let essence = content_type
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim();
        if !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return Err(invalid(
                "the body must be application/x-www-form-urlencoded",
            ));
        }
        let pairs: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
        for (i, (k, _)) in pairs.iter().enumerate() {
            if pairs[..i].iter().any(|(earlier, _)| earlier == k) {
                return Err(invalid(&format!("`{k}` is given more than once")));
            }
        }
        Ok(Self(pairs))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.get(name)
            .ok_or_else(|| invalid(&format!("`{name}` is required")))
    }
}

/// `Authorization: Basic`: the client id and secret, each form-encoded
/// before the base64 (RFC 6749 §2.3.1). `Some(Err)` for a malformed one.
fn basic(authorization: Option<&str>) -> Option<Result<(String, String), ApiError>> {
    let value = authorization?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let refuse = || {
        ApiError::OAuth(OAuthError {
            basic: true,
            ..OAuthError::new(OAuthCode::InvalidClient, "malformed Basic credentials")
        })
    };
    let decoded = STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    let Some((id, secret)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
        return Some(Err(refuse()));
    };
    let unescape = |s: &str| -> String {
        form_urlencoded::parse(format!("v={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Some(Ok((unescape(id), unescape(secret))))
}

/// The client's credentials: Basic, or `client_id` (and `client_secret`)
/// in the body; never both ways at once (RFC 6749 §2.3).
fn credentials(
    authorization: Option<&str>,
    form: &FormBody,
) -> Result<ClientCredentials, ApiError> {
    match basic(authorization) {
        Some(parsed) => {
            let (client_id, secret) = parsed?;
            if form.get("client_secret").is_some() {
                return Err(invalid("use one client authentication method, not two"));
            }
            if form.get("client_id").is_some_and(|id| id != client_id) {
                return Err(invalid("`client_id` differs from the Basic credentials"));
            }
            Ok(ClientCredentials {
                client_id,
                secret: Some(secret),
                basic: true,
            })
        }
        None => Ok(ClientCredentials {
            client_id: form.required("client_id")?.to_owned(),
            secret: form.get("client_secret").map(str::to_owned),
            basic: false,
        }),
    }
}

/// `POST /oauth/token`.
#[derive(Debug)]
pub struct TokenCall {
    pub creds: ClientCredentials,
    pub grant: GrantRequest,
}

impl TokenCall {
    pub fn parse(
        authorization: Option<&str>,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Self, ApiError> {
        let form = FormBody::parse(content_type, body)?;
        let creds = credentials(authorization, &form)?;
        let grant = match form.required("grant_type")? {
            "authorization_code" => GrantRequest::AuthorizationCode {
                resource: form.get("resource").map(str::to_owned),
                code: form.required("code")?.to_owned(),
                redirect_uri: form.required("redirect_uri")?.to_owned(),
                verifier: match form.get("code_verifier") {
                    Some(v) => Some(CodeVerifier::parse(v).map_err(|_| {
                        invalid("`code_verifier` must be 43 to 128 characters of A-Z, a-z, 0-9, -, ., _ and ~")
                    })?),
                    None => None,
                },
            },
            "refresh_token" => GrantRequest::RefreshToken {
                refresh_token: form.required("refresh_token")?.to_owned(),
                resource: form.get("resource").map(str::to_owned),
            },
            _ => {
                return Err(ApiError::OAuth(OAuthError::new(
                    OAuthCode::UnsupportedGrantType,
                    "grant_type must be authorization_code or refresh_token",
                )))
            }
        };
        Ok(Self { creds, grant })
    }
}

/// `POST /oauth/revoke` (RFC 7009).
#[derive(Debug)]
pub struct RevokeCall {
    pub creds: ClientCredentials,
    pub token: String,
}

impl RevokeCall {
    pub fn parse(
        authorization: Option<&str>,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Self, ApiError> {
        let form = FormBody::parse(content_type, body)?;
        Ok(Self {
            creds: credentials(authorization, &form)?,
            token: form.required("token")?.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORM: Option<&str> = Some("application/x-www-form-urlencoded");

    fn code(e: ApiError) -> &'static str {
        e.code()
    }

    #[test]
    fn basic_credentials_are_form_decoded_after_base64() {
        // RFC 6749 §2.3.1: "a:b" escaped as "a%3Ab" before base64.
        let header = format!("Basic {}", STANDARD.encode("oc_x%3Ay:s%2Bcret"));
        let call = TokenCall::parse(
            Some(&header),
            FORM,
            b"grant_type=refresh_token&refresh_token=r1",
        )
        .unwrap();
        assert_eq!(call.creds.client_id, "oc_x:y");
        assert_eq!(call.creds.secret.as_deref(), Some("s+cret"));
        assert!(call.creds.basic);
    }

    #[test]
    fn the_body_carries_a_public_clients_id_and_a_confidential_clients_secret() {
        let call = TokenCall::parse(
            None,
            Some("application/x-www-form-urlencoded; charset=utf-8"),
            b"grant_type=authorization_code&code=c&redirect_uri=https%3A%2F%2Fa%2Fcb&client_id=oc_1&code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
        )
        .unwrap();
        assert_eq!(call.creds.client_id, "oc_1");
        assert_eq!(call.creds.secret, None);
        assert!(!call.creds.basic);
        let GrantRequest::AuthorizationCode {
            redirect_uri,
            verifier,
            ..
        } = call.grant
        else {
            panic!("an authorization_code grant");
        };
        assert_eq!(redirect_uri, "https://a/cb");
        assert!(verifier.is_some());
    }

    #[test]
    fn malformed_requests_get_the_rfcs_errors() {
        let header = format!("Basic {}", STANDARD.encode("oc_1:s"));
        let parse = |auth: Option<&str>, ct: Option<&str>, body: &str| {
            TokenCall::parse(auth, ct, body.as_bytes())
                .map(|_| ())
                .map_err(code)
        };
        let base = "grant_type=refresh_token&refresh_token=r";
        assert_eq!(
            parse(None, Some("application/json"), base),
            Err("invalid_request")
        );
        assert_eq!(
            parse(None, FORM, base),
            Err("invalid_request"),
            "no client_id"
        );
        assert_eq!(
            parse(None, FORM, &format!("{base}&client_id=a&client_id=b")),
            Err("invalid_request")
        );
        assert_eq!(
            parse(Some(&header), FORM, &format!("{base}&client_secret=s")),
            Err("invalid_request")
        );
        assert_eq!(
            parse(Some(&header), FORM, &format!("{base}&client_id=oc_2")),
            Err("invalid_request")
        );
        assert_eq!(
            parse(Some(&header), FORM, "grant_type=password&username=a"),
            Err("unsupported_grant_type")
        );
        assert_eq!(
            parse(Some(&header), FORM, "grant_type=authorization_code&code=c"),
            Err("invalid_request")
        );
        assert_eq!(parse(Some("Basic !!!"), FORM, base), Err("invalid_client"));
        assert_eq!(parse(Some(&header), FORM, base), Ok(()));
    }
}
