//! SMS and WhatsApp messages, and the trait the flows send them through.

use crate::domain::channel::Channel;
use crate::domain::phone::Phone;
use crate::error::ApiResult;

#[derive(Clone)]
pub struct TextMessage {
    pub channel: TextChannel,
    pub to: Phone,
    pub body: String,
    /// The code alone, for providers' pre-approved templates (WhatsApp).
    pub code: String,
    /// Where the provider reports the message's delivery
    /// (`PUBLIC_BASE_URL`), if anywhere.
    pub status_callback: Option<String>,
}

impl std::fmt::Debug for TextMessage {
    // The body carries a code.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "TextMessage({:?}, {:?}, <redacted>)",
            self.channel, self.to
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextChannel {
    Sms,
    Whatsapp,
}

impl TextChannel {
    pub fn channel(self) -> Channel {
        match self {
            Self::Sms => Channel::Sms,
            Self::Whatsapp => Channel::Whatsapp,
        }
    }
}

#[allow(async_fn_in_trait)]
pub trait Texter {
    /// Checked before a flow writes anything: 503 naming what is missing.
    fn ready(&self, channel: TextChannel) -> ApiResult<()>;
    /// Errors are `TextDeliveryFailed`, with the provider's reason.
    async fn send(&self, message: &TextMessage) -> ApiResult<()>;
}
