//! An OpenID Connect client as the operator registers it: who it is, where
//! a sign-in may send the browser back to, and how it proves itself at the
//! token endpoint. A confidential client (a server) holds a secret, shown
//! once and stored only as SHA-256; a public one (a single-page or native
//! app) holds none and must use PKCE.

use crate::domain::absolute_url::AbsoluteUrl;
use crate::domain::jwk::Alg;
use crate::domain::session::{token_hash, Token};
use crate::error::ApiError;

/// Makes a leaked client secret easy to recognise (and to find with secret scanners).
pub const SECRET_PREFIX: &str = "ocs_";
/// What every client id starts with: an id is public, but recognisable.
pub const ID_PREFIX: &str = "oc_";
/// Redirect URIs a client may register, of each kind.
pub const MAX_URIS: usize = 10;
/// The longest redirect URI: real ones are a few dozen characters.
pub const MAX_URI_CHARS: usize = 512;
/// The longest client name, as the pages show it.
pub const MAX_NAME_CHARS: usize = 100;

/// How a client proves itself at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    /// A server: `client_secret_basic` or `client_secret_post`.
    Confidential,
    /// A browser or native app: no secret (`none`), PKCE required.
    Public,
}

impl ClientKind {
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        match raw {
            "confidential" => Ok(Self::Confidential),
            "public" => Ok(Self::Public),
            _ => Err(ApiError::InvalidRequest(
                "field `type` must be `confidential` or `public`".into(),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confidential => "confidential",
            Self::Public => "public",
        }
    }
}

/// A client's secret, as the operator gets it, once.
pub struct ClientSecret(String);

impl ClientSecret {
    pub fn generate() -> Result<Self, ApiError> {
        Ok(Self(format!(
            "{SECRET_PREFIX}{}",
            Token::generate()?.expose()
        )))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What D1 keeps: SHA-256 of 256 random bits needs no slow hash.
    pub fn hash(&self) -> String {
        Self::hash_of(&self.0)
    }

    /// The stored form of a secret a client presents.
    pub fn hash_of(presented: &str) -> String {
        token_hash(presented)
    }
}

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientSecret(<redacted>)")
    }
}

/// A new client id: the prefix and 128 random bits, base64url.
pub fn new_client_id() -> Result<String, ApiError> {
    let token = Token::generate()?;
    Ok(format!("{ID_PREFIX}{}", &token.expose()[..22]))
}

/// Whether `id` has the shape of a client id (anything else is no client).
pub fn is_client_id(id: &str) -> bool {
    id.len() == ID_PREFIX.len() + 22
        && id.starts_with(ID_PREFIX)
        && id[ID_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A redirect URI a client may register. The authorization endpoint
/// compares the one a request names with the registered ones as strings,
/// exactly (OAuth 2.1), so only a URI already in its one canonical form is
/// taken: scheme and host lowercase, no default port, a path. `https`, or
/// `http` on the loopback host only (`localhost`, `127.0.0.1`: native apps,
/// RFC 8252), no fragment, no userinfo, and no `code`, `state` or `iss` in
/// its query, which a client reading the first of two values would take
/// from the registration instead of from us.
pub fn parse_redirect_uri(field: &str, raw: &str) -> Result<String, ApiError> {
    let refuse = |why: &str| ApiError::InvalidRequest(format!("field `{field}`: {why}"));
    if raw.len() > MAX_URI_CHARS {
        return Err(refuse(&format!(
            "a URI is at most {MAX_URI_CHARS} characters"
        )));
    }
    let url = AbsoluteUrl::parse(raw)
        .ok_or_else(|| refuse("must be an absolute https URL, without a fragment"))?;
    if url.scheme == "http" && !matches!(url.host.as_str(), "localhost" | "127.0.0.1") {
        return Err(refuse("http is allowed only on localhost and 127.0.0.1"));
    }
    // A host a browser reads as an IP address written another way
    // (`127.1`, `2130706433`, `0x7f.1`) is another host than it says.
    let last = url.host.rsplit('.').next().unwrap_or("");
    let numeric = last.bytes().all(|b| b.is_ascii_digit()) || last.starts_with("0x");
    if numeric && url.host != "127.0.0.1" {
        return Err(refuse("the host must be a name (or 127.0.0.1)"));
    }
    // Dot segments: the browser would load another path than the one
    // compared.
    let path = url.rest.split(['?']).next().unwrap_or("");
    let dots = path.split('/').any(|segment| {
        let s = segment.to_ascii_lowercase().replace("%2e", ".");
        s == "." || s == ".."
    });
    if dots {
        return Err(refuse("no `.` or `..` path segments"));
    }
    let canonical = url.normalized();
    if canonical != raw {
        return Err(refuse(&format!(
            "write it as it is compared, exactly: {canonical}"
        )));
    }
    let query = url.rest.split_once('?').map_or("", |(_, q)| q);
    if form_urlencoded::parse(query.as_bytes())
        .any(|(k, _)| matches!(&*k, "code" | "state" | "iss"))
    {
        return Err(refuse("its query may not carry `code`, `state` or `iss`"));
    }
    Ok(canonical)
}

/// A client to register, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewClient {
    pub name: String,
    pub kind: ClientKind,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// The API key whose app this client is, if any.
    pub api_key_id: Option<String>,
    /// What its ID tokens are signed with (`id_token_signed_response_alg`).
    pub id_token_alg: Alg,
}

/// A client's name as the pages show it: 1 to `MAX_NAME_CHARS`
/// characters on one line, trimmed.
pub fn parse_name(field: &str, raw: &str) -> Result<String, ApiError> {
    let name = raw.trim();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(|c| c.is_control() || is_format(c))
    {
        return Err(ApiError::InvalidRequest(format!(
            "field `{field}` must be 1 to {MAX_NAME_CHARS} characters, on one line, without invisible characters"
        )));
    }
    Ok(name.to_owned())
}

/// Invisible characters that reorder or hide text (Unicode's format
/// characters that matter in a name: bidi controls, zero-width ones, the
/// soft hyphen, the BOM): a name shown on the consent page is what it says.
fn is_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

/// A list of redirect URIs, each in its one form, duplicates dropped:
/// `min` to `MAX_URIS` of them.
pub fn parse_uris(field: &str, raw: &[&str], min: usize) -> Result<Vec<String>, ApiError> {
    if raw.len() < min || raw.len() > MAX_URIS {
        return Err(ApiError::InvalidRequest(format!(
            "field `{field}` must hold {min} to {MAX_URIS} URIs"
        )));
    }
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for r in raw {
        let uri = parse_redirect_uri(field, r)?;
        if !out.contains(&uri) {
            out.push(uri);
        }
    }
    Ok(out)
}

/// `id_token_signed_response_alg`: RS256 (the default) or ES256.
pub fn parse_id_token_alg(raw: Option<&str>) -> Result<Alg, ApiError> {
    match raw {
        None => Ok(Alg::Rs256),
        Some(raw) => Alg::parse(raw).ok_or_else(|| {
            ApiError::InvalidRequest(
                "field `id_token_signed_response_alg` must be `RS256` or `ES256`".into(),
            )
        }),
    }
}

impl NewClient {
    pub fn parse(
        name: &str,
        kind: &str,
        redirect_uris: &[&str],
        post_logout_redirect_uris: &[&str],
        api_key_id: Option<&str>,
    ) -> Result<Self, ApiError> {
        let name = parse_name("name", name)?;
        let uris = parse_uris;
        let api_key_id = match api_key_id {
            None => None,
            Some(id) if crate::domain::api_key::is_key_id(id) => Some(id.to_owned()),
            Some(_) => {
                return Err(ApiError::InvalidRequest(
                    "field `api_key_id` must be the id of an API key".into(),
                ))
            }
        };
        Ok(Self {
            name,
            kind: ClientKind::parse(kind)?,
            redirect_uris: uris("redirect_uris", redirect_uris, 1)?,
            post_logout_redirect_uris: uris(
                "post_logout_redirect_uris",
                post_logout_redirect_uris,
                0,
            )?,
            api_key_id,
            id_token_alg: Alg::Rs256,
        })
    }

    /// With `id_token_signed_response_alg`, if the request named one.
    pub fn with_id_token_alg(mut self, raw: Option<&str>) -> Result<Self, ApiError> {
        self.id_token_alg = parse_id_token_alg(raw)?;
        Ok(self)
    }
}

/// A registered client, as the admin API lists it: never its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub id: String,
    pub name: String,
    pub kind: ClientKind,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub api_key_id: Option<String>,
    pub created_at: u64,
    /// Registered by itself (RFC 7591), not by the operator: its name is
    /// anyone's claim, so the pages ask the person before every code.
    pub self_registered: bool,
    pub id_token_alg: Alg,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_are_https_or_loopback_in_their_one_form() {
        for ok in [
            "https://app.example.com/callback",
            "https://app.example.com:8443/cb?tenant=1",
            "http://localhost:3000/callback",
            "http://127.0.0.1:8080/",
        ] {
            assert_eq!(parse_redirect_uri("redirect_uris", ok).as_deref(), Ok(ok));
        }
        for bad in [
            "http://app.example.com/callback",
            "https://app.example.com/callback#frag",
            "https://user@app.example.com/callback",
            "https://APP.example.com/callback",
            "https://app.example.com:443/callback",
            "https://app.example.com",
            "https://app.example.com/cb?code=1",
            "https://app.example.com/cb?state=1",
            "https://app.example.com/cb?iss=x",
            "//app.example.com/cb",
            "javascript:alert(1)",
            "com.example.app:/callback",
            "https://app.example.com/c b",
            "https://app.example.com/cb/../x",
            "https://app.example.com/%2e%2e/x",
            "https://app.example.com/./cb",
            "https://2130706433/cb",
            "https://127.1/cb",
            "https://0x7f.1/cb",
            "http://127.1/cb",
        ] {
            assert!(parse_redirect_uri("redirect_uris", bad).is_err(), "{bad}");
        }
        let long = format!("https://app.example.com/{}", "a".repeat(MAX_URI_CHARS));
        assert!(parse_redirect_uri("redirect_uris", &long).is_err());
    }

    #[test]
    fn a_client_needs_a_name_a_kind_and_one_to_ten_redirect_uris() {
        let cb = "https://app.example.com/cb";
        let c = NewClient::parse(" Shop ", "public", &[cb, cb], &[], None).unwrap();
        assert_eq!(c.name, "Shop");
        assert_eq!(c.kind, ClientKind::Public);
        assert_eq!(c.redirect_uris, vec![cb.to_owned()], "duplicates are one");
        assert!(NewClient::parse("", "public", &[cb], &[], None).is_err());
        assert!(NewClient::parse("Shop", "implicit", &[cb], &[], None).is_err());
        assert!(NewClient::parse("Shop", "public", &[], &[], None).is_err());
        assert!(NewClient::parse("Shop", "public", &[cb; 11], &[], None).is_err());
        assert!(
            NewClient::parse("Shop", "public", &[cb], &["http://evil.example/"], None).is_err()
        );
        assert!(NewClient::parse("Shop", "public", &[cb], &[], Some("nope")).is_err());
        assert!(NewClient::parse("Sh\nop", "public", &[cb], &[], None).is_err());
        for hidden in [
            "Sh\u{202E}pohS",
            "Sh\u{200B}op",
            "\u{FEFF}Shop",
            "Sh\u{2066}op",
        ] {
            assert!(
                NewClient::parse(hidden, "public", &[cb], &[], None).is_err(),
                "{hidden:?}"
            );
        }
    }

    #[test]
    fn ids_and_secrets_are_random_and_recognisable() {
        let (a, b) = (new_client_id().unwrap(), new_client_id().unwrap());
        assert!(is_client_id(&a) && is_client_id(&b) && a != b);
        assert!(!is_client_id("oc_short") && !is_client_id(&a.replace("oc_", "ok_")));
        let s = ClientSecret::generate().unwrap();
        assert!(s.expose().starts_with(SECRET_PREFIX) && s.expose().len() == 47);
        assert_eq!(s.hash().len(), 64);
        assert_ne!(s.hash(), s.expose());
        assert_eq!(format!("{s:?}"), "ClientSecret(<redacted>)");
    }
}
