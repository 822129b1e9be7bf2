//! API keys of calling apps: 256 random bits shown once, stored only as
//! SHA-256, each allowed a set of channels.

use crate::domain::autofill::{AppHash, SmsDomain};
use crate::domain::channel::Channel;
use crate::domain::session::{token_hash, Token};
use crate::error::ApiError;

/// Makes a leaked key easy to recognise (and to find with secret scanners).
pub const PREFIX: &str = "otpk_";

/// A key as handed to the admin, once.
pub struct Secret(String);

impl Secret {
    pub fn generate() -> Result<Self, ApiError> {
        Ok(Self(format!("{PREFIX}{}", Token::generate()?.expose())))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> String {
        token_hash(&self.0)
    }

    /// The last four characters, so an admin can tell keys apart in a list.
    pub fn hint(&self) -> String {
        self.0[self.0.len() - 4..].to_owned()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A stored key, as the list shows it: never the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub app_name: Option<String>,
    pub channels: Channels,
    pub hint: String,
    pub created_at: u64,
    pub revoked_at: Option<u64>,
    pub options: KeyOptions,
}

/// What a key asks of its codes' messages and sends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyOptions {
    /// Adds the autofill line `@<domain> #<code>` to SMS and WhatsApp codes.
    pub sms_domain: Option<SmsDomain>,
    /// Adds the Android SMS Retriever hash to SMS and WhatsApp codes.
    pub android_app_hash: Option<AppHash>,
    /// `/v1/otp/send` needs a Turnstile token (`TURNSTILE_SECRET`).
    pub turnstile_required: bool,
}

impl KeyOptions {
    pub fn parse(
        sms_domain: Option<&str>,
        android_app_hash: Option<&str>,
        turnstile_required: bool,
    ) -> Result<Self, ApiError> {
        Ok(Self {
            sms_domain: sms_domain.map(SmsDomain::parse).transpose()?,
            android_app_hash: android_app_hash.map(AppHash::parse).transpose()?,
            turnstile_required,
        })
    }

    /// Reads the stored form; a corrupt value is dropped, never trusted.
    pub fn from_stored(
        sms_domain: Option<&str>,
        android_app_hash: Option<&str>,
        turnstile_required: bool,
    ) -> Self {
        Self {
            sms_domain: sms_domain.and_then(|d| SmsDomain::parse(d).ok()),
            android_app_hash: android_app_hash.and_then(|h| AppHash::parse(h).ok()),
            turnstile_required,
        }
    }
}

/// A non-empty set of channels, kept sorted and stored as `email,sms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channels(Vec<Channel>);

impl Channels {
    pub fn parse(raw: &[&str]) -> Result<Self, ApiError> {
        let mut list = raw
            .iter()
            .map(|c| Channel::from_name(c))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                ApiError::InvalidRequest(
                    "field `channels` must list `email`, `sms` and/or `whatsapp`".into(),
                )
            })?;
        list.sort();
        list.dedup();
        if list.is_empty() {
            return Err(ApiError::InvalidRequest(
                "field `channels` must list at least one channel".into(),
            ));
        }
        Ok(Self(list))
    }

    /// Reads the stored form; a corrupt row allows nothing.
    pub fn from_stored(s: &str) -> Self {
        let mut list: Vec<Channel> = s.split(',').filter_map(Channel::from_name).collect();
        list.sort();
        list.dedup();
        Self(list)
    }

    pub fn to_stored(&self) -> String {
        self.names().join(",")
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|c| c.as_str()).collect()
    }

    pub fn allows(&self, channel: Channel) -> bool {
        self.0.contains(&channel)
    }
}

/// What `POST /v1/admin/api-keys` asks for.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub name: String,
    pub app_name: Option<String>,
    pub channels: Channels,
    pub options: KeyOptions,
}

impl NewApiKey {
    pub fn parse(name: &str, app_name: Option<&str>, channels: &[&str]) -> Result<Self, ApiError> {
        Ok(Self {
            name: label(name, "name")?,
            app_name: app_name.map(|a| label(a, "app_name")).transpose()?,
            channels: Channels::parse(channels)?,
            options: KeyOptions::default(),
        })
    }
}

/// 1 to 64 characters, no control characters: it ends up in mail subjects.
fn label(raw: &str, field: &str) -> Result<String, ApiError> {
    let s = raw.trim();
    if s.is_empty() || s.chars().count() > 64 || s.chars().any(char::is_control) {
        return Err(ApiError::InvalidRequest(format!(
            "field `{field}` must be 1 to 64 characters, without control characters"
        )));
    }
    Ok(s.to_owned())
}

/// Whether `bearer` has the shape of a key: the prefix and 43 base64url
/// characters. Anything else is refused without a lookup.
pub fn is_well_formed(bearer: &str) -> bool {
    bearer.strip_prefix(PREFIX).is_some_and(|rest| {
        rest.len() == 43
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// Ids are 32 hex characters; anything else cannot name a key.
pub fn is_key_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_prefixed_random_and_only_their_hash_is_kept() {
        let a = Secret::generate().unwrap();
        let b = Secret::generate().unwrap();
        assert!(a.expose().starts_with(PREFIX));
        assert_eq!(a.expose().len(), PREFIX.len() + 43);
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.hash(), token_hash(a.expose()));
        assert!(!a.hash().contains(&a.expose()[PREFIX.len()..]));
        assert!(a.expose().ends_with(&a.hint()));
        assert!(!format!("{a:?}").contains(a.expose()));
    }

    #[test]
    fn channels_are_a_sorted_nonempty_set() {
        let c = Channels::parse(&["whatsapp", "email", "email"]).unwrap();
        assert_eq!(c.to_stored(), "email,whatsapp");
        assert!(c.allows(Channel::Email) && !c.allows(Channel::Sms));
        assert_eq!(Channels::from_stored("email,whatsapp"), c);
        assert!(Channels::parse(&[]).is_err());
        assert!(Channels::parse(&["email", "fax"]).is_err());
        assert!(!Channels::from_stored("garbage").allows(Channel::Email));
    }

    #[test]
    fn names_are_bounded_labels() {
        assert!(NewApiKey::parse(" Shop ", Some("Acme Shop"), &["sms"]).is_ok());
        assert!(NewApiKey::parse("", None, &["sms"]).is_err());
        assert!(NewApiKey::parse(&"x".repeat(65), None, &["sms"]).is_err());
        assert!(NewApiKey::parse("a\nb", None, &["sms"]).is_err());
        assert!(NewApiKey::parse("ok", Some("bad\r\nBcc: x"), &["sms"]).is_err());
    }

    #[test]
    fn only_key_shaped_bearers_are_looked_up() {
        let key = Secret::generate().unwrap();
        assert!(is_well_formed(key.expose()));
        for bad in [
            "otpk_",
            "otpk_short",
            &format!("{}x", key.expose()),
            "admin-token",
            "",
        ] {
            assert!(!is_well_formed(bad), "{bad:?}");
        }
        assert!(!is_well_formed(&key.expose().replace('_', "!")));
    }

    #[test]
    fn key_ids_are_32_lower_hex() {
        assert!(is_key_id(&"a1".repeat(16)));
        assert!(!is_key_id("A1"));
        assert!(!is_key_id(&"g".repeat(32)));
    }
}
