//! SMS and WhatsApp through Twilio's Messages API over `fetch`.

use super::outbound::{send, Outcome};
use crate::config::Config;
use crate::error::{ApiError, ApiResult};
use crate::providers::text::{TextChannel, TextMessage, Texter};
use crate::providers::twilio::{confirms, refusal};
use serde_json::json;

pub struct TwilioTexter<'a> {
    pub cfg: &'a Config,
    /// Ties a failure's log line to the request's.
    pub request_id: &'a str,
}

impl Texter for TwilioTexter<'_> {
    fn ready(&self, channel: TextChannel) -> ApiResult<()> {
        self.cfg.twilio(channel).map(drop)
    }

    async fn send(&self, m: &TextMessage) -> ApiResult<()> {
        let channel = m.channel.channel();
        let twilio = self.cfg.twilio(m.channel)?;
        let call = twilio.request(m).map_err(ApiError::Unavailable)?;
        let (outcome, attempts) = send(&call, self.cfg.twilio_timeout_ms).await;
        // Why Twilio refused is about the recipient (21610: opted out), so
        // it goes to the log, under the request id, and never to the client.
        let (log, refused) = match outcome {
            Outcome::Answered { body } if confirms(&body) => return Ok(()),
            Outcome::Answered { .. } => (json!({"unconfirmed": "2xx without a sid"}), false),
            Outcome::Refused { status, body } => (
                json!({"provider_status": status, "reason": refusal(status, &body)}),
                true,
            ),
            Outcome::Failed(cause) => (cause, false),
        };
        worker::console_error!(
            "{}",
            json!({"event": "text_delivery_failed", "request_id": self.request_id, "provider": "twilio", "channel": channel.as_str(), "attempts": attempts, "last": log})
        );
        // Only an error answer is a refusal: without one, the message may
        // still be delivered (a WhatsApp fallback must not send it twice).
        Err(match refused {
            true => ApiError::TextRefused(channel),
            false => ApiError::TextDeliveryFailed(channel),
        })
    }
}
