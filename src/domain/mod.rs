//! The values the service reasons about, each parsed once from raw input
//! and valid from then on. Nothing here does I/O.

pub mod absolute_url;
pub mod admin_session;
pub mod api_key;
pub mod audit;
pub mod autofill;
pub mod channel;
pub mod client_registration;
pub mod code;
pub mod cors;
pub mod country;
pub mod email;
pub mod jwk;
pub mod jwt;
pub mod oauth;
pub mod oauth_error;
pub mod oidc_client;
pub mod password;
pub mod phone;
pub mod pkce;
pub mod purpose;
pub mod recipient;
pub mod recovery_code;
pub mod registrant;
pub mod sealed;
pub mod session;
pub mod sign_in_budget;
pub mod test_recipient;
pub mod totp;
