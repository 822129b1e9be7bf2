//! Turning a raw request body into named fields, with the answers the
//! contract requires for each way it can be wrong.

use crate::error::ApiError;
use serde_json::{Map, Value};

pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// `Content-Type` must be JSON; parameters such as `charset` are allowed.
pub fn require_json(content_type: Option<&str>) -> Result<(), ApiError> {
    let essence = content_type
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType)
    }
}

/// Refuses an oversized body from its declared length, before reading it.
pub fn check_declared_length(content_length: Option<&str>) -> Result<(), ApiError> {
    match content_length.and_then(|v| v.trim().parse::<u64>().ok()) {
        Some(n) if n > MAX_BODY_BYTES as u64 => Err(ApiError::PayloadTooLarge {
            limit_bytes: MAX_BODY_BYTES,
        }),
        _ => Ok(()),
    }
}

/// Collects a body as it arrives and refuses it as soon as it passes the
/// limit: a huge or endless body sent chunked, with no `Content-Length`,
/// is never read whole.
#[derive(Debug, Default)]
pub struct BodyBuffer(Vec<u8>);

impl BodyBuffer {
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), ApiError> {
        if self.0.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(ApiError::PayloadTooLarge {
                limit_bytes: MAX_BODY_BYTES,
            });
        }
        self.0.extend_from_slice(chunk);
        Ok(())
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

pub struct JsonBody(Map<String, Value>);

impl JsonBody {
    /// For routes that take no body: every field is missing.
    pub fn empty() -> Self {
        Self(Map::new())
    }

    /// Fields gathered elsewhere (a page's form), for the same parsers.
    pub fn from_map(map: Map<String, Value>) -> Self {
        Self(map)
    }

    pub fn parse(bytes: &[u8]) -> Result<Self, ApiError> {
        if bytes.len() > MAX_BODY_BYTES {
            return Err(ApiError::PayloadTooLarge {
                limit_bytes: MAX_BODY_BYTES,
            });
        }
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => Ok(Self(map)),
            Ok(_) => Err(ApiError::InvalidRequest(
                "the body must be a JSON object".into(),
            )),
            Err(e) => Err(ApiError::InvalidRequest(format!(
                "the body is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            ))),
        }
    }

    pub fn string(&self, name: &str) -> Result<&str, ApiError> {
        match self.0.get(name) {
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(ApiError::InvalidRequest(format!(
                "field `{name}` must be a string"
            ))),
            None => Err(ApiError::InvalidRequest(format!(
                "field `{name}` is required"
            ))),
        }
    }
}

impl JsonBody {
    /// An optional field: absent, or a string. Null is refused, as the
    /// contract allows it nowhere but where `optional_string_or_null` reads.
    pub fn optional_string(&self, name: &str) -> Result<Option<&str>, ApiError> {
        match self.0.get(name) {
            None => Ok(None),
            Some(_) => self.string(name).map(Some),
        }
    }

    /// An optional field the contract lets be null: null is absent.
    pub fn optional_string_or_null(&self, name: &str) -> Result<Option<&str>, ApiError> {
        match self.0.get(name) {
            Some(Value::Null) => Ok(None),
            _ => self.optional_string(name),
        }
    }

    pub fn optional_u64(&self, name: &str) -> Result<Option<u64>, ApiError> {
        match self.0.get(name) {
            None => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or_else(|| {
                ApiError::InvalidRequest(format!("field `{name}` must be a positive integer"))
            }),
        }
    }

    /// Whether the field is there and not null.
    pub fn has(&self, name: &str) -> bool {
        !matches!(self.0.get(name), None | Some(Value::Null))
    }

    /// A flag: absent, or `true` or `false` (not null, which the contract
    /// does not allow for a flag).
    pub fn optional_bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.0.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(ApiError::InvalidRequest(format!(
                "field `{name}` must be true or false"
            ))),
        }
    }

    pub fn strings(&self, name: &str) -> Result<Vec<&str>, ApiError> {
        let bad =
            || ApiError::InvalidRequest(format!("field `{name}` must be an array of strings"));
        match self.0.get(name) {
            None => Err(ApiError::InvalidRequest(format!(
                "field `{name}` is required"
            ))),
            Some(Value::Array(items)) => items.iter().map(|v| v.as_str().ok_or_else(bad)).collect(),
            Some(_) => Err(bad()),
        }
    }

    /// An array of strings, or none when the field is absent (not null,
    /// which the contract does not allow for it).
    pub fn optional_strings(&self, name: &str) -> Result<Option<Vec<&str>>, ApiError> {
        match self.0.get(name) {
            None => Ok(None),
            Some(_) => self.strings(name).map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_must_be_json() {
        assert!(require_json(Some("application/json")).is_ok());
        assert!(require_json(Some("Application/JSON; charset=utf-8")).is_ok());
        for bad in [
            None,
            Some("text/plain"),
            Some("application/jsonx"),
            Some(""),
        ] {
            assert_eq!(require_json(bad), Err(ApiError::UnsupportedMediaType));
        }
    }

    #[test]
    fn size_limit_by_header_and_by_bytes() {
        assert!(check_declared_length(Some("16384")).is_ok());
        assert!(check_declared_length(None).is_ok());
        assert!(matches!(
            check_declared_length(Some("16385")),
            Err(ApiError::PayloadTooLarge { .. })
        ));
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        assert!(matches!(
            JsonBody::parse(&big),
            Err(ApiError::PayloadTooLarge { .. })
        ));
    }

    #[test]
    fn a_streamed_body_is_refused_at_the_first_chunk_past_the_limit() {
        let mut body = BodyBuffer::default();
        let chunk = [b' '; 4096];
        for _ in 0..4 {
            body.push(&chunk).unwrap();
        }
        assert_eq!(body.bytes().len(), MAX_BODY_BYTES);
        assert!(matches!(
            body.push(b"x"),
            Err(ApiError::PayloadTooLarge { .. })
        ));
        assert_eq!(
            body.bytes().len(),
            MAX_BODY_BYTES,
            "nothing past the limit is kept"
        );
    }

    #[test]
    fn fields_are_named_in_errors() {
        let b = JsonBody::parse(br#"{"email": 5}"#).unwrap();
        assert!(
            matches!(b.string("email"), Err(ApiError::InvalidRequest(d)) if d.contains("`email`"))
        );
        assert!(
            matches!(b.string("password"), Err(ApiError::InvalidRequest(d)) if d.contains("`password`"))
        );
        let b = JsonBody::parse(br#"{"n": 5, "m": -1, "s": null, "a": ["x", "y"], "z": ["x", 1]}"#)
            .unwrap();
        assert_eq!(b.optional_u64("n").unwrap(), Some(5));
        assert!(b.optional_u64("m").is_err());
        assert!(b.optional_u64("s").is_err(), "null is no integer");
        assert!(b.optional_string("s").is_err(), "null is no string");
        assert_eq!(b.optional_string_or_null("s").unwrap(), None);
        assert_eq!(b.optional_string("nope").unwrap(), None);
        assert!(b.optional_string("n").is_err());
        assert_eq!(b.strings("a").unwrap(), vec!["x", "y"]);
        assert!(b.strings("z").is_err() && b.strings("n").is_err() && b.strings("q").is_err());
        for bad in [&b"[1]"[..], b"\"x\"", b"{", b"", b"null"] {
            assert!(matches!(
                JsonBody::parse(bad),
                Err(ApiError::InvalidRequest(_))
            ));
        }
    }
}
