//! SMS and WhatsApp through Twilio's Messages API over `fetch`.

use super::outbound::{send, Outcome};
use crate::config::Config;
use crate::error::{ApiError, ApiResult};
use crate::text::{TextChannel, TextMessage, Texter};
use crate::twilio::refusal;
use serde_json::json;

pub struct TwilioTexter<'a> {
    pub cfg: &'a Config,
}

impl Texter for TwilioTexter<'_> {
    fn ready(&self, channel: TextChannel) -> ApiResult<()> {
        self.cfg.twilio(channel).map(drop)
    }

    async fn send(&self, m: &TextMessage) -> ApiResult<()> {
        let channel = m.channel.channel();
        let twilio = self.cfg.twilio(m.channel)?;
        let call = twilio.request(m).map_err(ApiError::Unavailable)?;
        let (reason, log) = match send(&call, self.cfg.twilio_timeout_ms).await {
            Outcome::Delivered => return Ok(()),
            Outcome::Refused { status, body } => {
                let reason = refusal(status, &body);
                (
                    reason.clone(),
                    json!({"provider_status": status, "reason": reason}),
                )
            }
            Outcome::Failed(cause) => ("Twilio did not answer".to_owned(), cause),
        };
        worker::console_error!(
            "{}",
            json!({"event": "text_delivery_failed", "provider": "twilio", "channel": channel.as_str(), "cause": log})
        );
        Err(ApiError::TextDeliveryFailed { channel, reason })
    }
}
