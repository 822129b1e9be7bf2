//! What became of an app's send, read from D1.

use super::*;

use crate::domain::api_key::ApiKey;
use crate::domain::code::APP_SCOPE_PREFIX;
use crate::error::ApiResult;
use crate::ports::store::{FiledCode, SendEvent, SendRecord};
use serde::Deserialize;

impl DeliveryStore for D1Store {
    async fn send_record(
        &self,
        key_hash: &str,
        send_id: &str,
    ) -> ApiResult<(Option<ApiKey>, SendRecord)> {
        const OP: &str = "send_record";
        #[derive(Deserialize)]
        struct CodeRow {
            attempts: f64,
            expires_at: f64,
            channel: String,
            purpose: String,
            test: f64,
        }
        #[derive(Deserialize)]
        struct EventRow {
            event: String,
            outcome: String,
            detail: Option<String>,
            at: f64,
            channel: Option<String>,
            purpose: Option<String>,
            test: f64,
        }
        let active = "FROM api_keys WHERE key_hash = ?1 AND revoked_at IS NULL";
        let scope = format!("(SELECT '{APP_SCOPE_PREFIX}' || id {active})");
        let args = [text(key_hash), text(send_id)];
        let results = self
            .batch(
                OP,
                vec![
                    self.stmt(OP, &format!("SELECT {KEY_COLUMNS} {active}"), &args[..1])?,
                    self.stmt(
                        OP,
                        &format!("SELECT attempts, expires_at, channel, purpose, test FROM codes WHERE id = ?2 AND scope = {scope}"),
                        &args,
                    )?,
                    // A provider's report names only the send; the service
                    // shows it only beside this scope's own `code_sent`.
                    self.stmt(
                        OP,
                        &format!(
                            "SELECT event, outcome, detail, at, channel, purpose, test FROM auth_events
                             WHERE send_id = ?2 AND (scope = {scope} OR event = 'code_delivery') ORDER BY id"
                        ),
                        &args,
                    )?,
                ],
            )
            .await?;
        let key = results
            .rows::<KeyRow>(0)?
            .into_iter()
            .next()
            .map(ApiKey::from);
        let code = results
            .rows::<CodeRow>(1)?
            .into_iter()
            .next()
            .map(|c| FiledCode {
                attempts: c.attempts as u32,
                expires_at: c.expires_at as u64,
                channel: c.channel,
                purpose: c.purpose,
                test: c.test != 0.0,
            });
        let events = results
            .rows::<EventRow>(2)?
            .into_iter()
            .map(|e| SendEvent {
                event: e.event,
                outcome: e.outcome,
                detail: e.detail,
                at: e.at as u64,
                channel: e.channel,
                purpose: e.purpose,
                test: e.test != 0.0,
            })
            .collect();
        Ok((key, SendRecord { code, events }))
    }
}
