//! What became of an app's send (`GET /v1/otp/{id}`).

use crate::domain::api_key::ApiKey;
use crate::error::ApiResult;

/// What is known of one send: its code while it is pending, and the audit
/// trail's events about it, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendRecord {
    /// The code, while it is filed.
    pub code: Option<FiledCode>,
    pub events: Vec<SendEvent>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FiledCode {
    pub attempts: u32,
    pub expires_at: u64,
    pub channel: String,
    pub purpose: String,
    pub test: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendEvent {
    pub event: String,
    pub outcome: String,
    pub detail: Option<String>,
    pub at: u64,
    pub channel: Option<String>,
    pub purpose: Option<String>,
    pub test: bool,
}

#[allow(async_fn_in_trait)]
pub trait DeliveryStore {
    /// `GET /v1/otp/{id}`'s one round: the key behind `key_hash`, if live,
    /// and what its scope holds of the send `send_id`.
    async fn send_record(
        &self,
        key_hash: &str,
        send_id: &str,
    ) -> ApiResult<(Option<ApiKey>, SendRecord)>;
}
