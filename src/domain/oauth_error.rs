//! The OpenID Provider's protocol errors (RFC 6749 §4.1.2.1 and §5.2,
//! RFC 6750 §3.1, OpenID Connect Core §3.1.2.6), answered as the RFCs say
//! rather than as problem documents. Apart from `domain::oauth` so that
//! `error` can carry them without depending on the rest of the provider.

/// An error of the protocol, with the RFC's code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    InvalidScope,
    InvalidToken,
    /// RFC 8707: a `resource` this provider issues no tokens for.
    InvalidTarget,
    LoginRequired,
    RequestNotSupported,
    RequestUriNotSupported,
    /// OpenID Connect Core §3.1.2.6: `prompt=none` for a client the
    /// person must first agree to.
    ConsentRequired,
    /// RFC 6749 §4.1.2.1: the person said no.
    AccessDenied,
    /// RFC 7591 §3.2.2: a redirect URI we would not send a browser to.
    InvalidRedirectUri,
    /// RFC 7591 §3.2.2: any other registration metadata refused.
    InvalidClientMetadata,
}

impl OAuthCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidToken => "invalid_token",
            Self::InvalidTarget => "invalid_target",
            Self::LoginRequired => "login_required",
            Self::RequestNotSupported => "request_not_supported",
            Self::RequestUriNotSupported => "request_uri_not_supported",
            Self::ConsentRequired => "consent_required",
            Self::AccessDenied => "access_denied",
            Self::InvalidRedirectUri => "invalid_redirect_uri",
            Self::InvalidClientMetadata => "invalid_client_metadata",
        }
    }
}

/// A protocol error: its code, a sentence for the developer, and how the
/// client authenticated (a failed `client_secret_basic` is answered with
/// `WWW-Authenticate: Basic`, RFC 6749 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub code: OAuthCode,
    pub description: String,
    pub basic: bool,
}

impl OAuthError {
    pub fn new(code: OAuthCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
            basic: false,
        }
    }

    pub fn status(&self) -> u16 {
        match self.code {
            OAuthCode::InvalidClient | OAuthCode::InvalidToken => 401,
            _ => 400,
        }
    }

    /// The headers the RFCs ask of this error's answer.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        match self.code {
            OAuthCode::InvalidClient if self.basic => {
                vec![("www-authenticate", "Basic realm=\"oauth\"".into())]
            }
            OAuthCode::InvalidToken => {
                vec![("www-authenticate", "Bearer error=\"invalid_token\"".into())]
            }
            _ => vec![],
        }
    }
}
