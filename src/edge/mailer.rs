//! Mail delivery from the Worker: the `log` mailer for development, the
//! HTTP mail APIs over `fetch`, and the Workers `send_email` binding.

use super::outbound::{send, Outcome};
use crate::config::{Config, MailProvider};
use crate::error::{ApiError, ApiResult};
use crate::providers::mail::{Mailer, Message, Sender};
use serde_json::json;
use worker::{EmailAddress, Env, SendEmail, SendEmailBuilder};

#[derive(Clone)]
pub struct EdgeMailer {
    provider: MailProvider,
    from: Sender,
    /// The config's own answer, so a missing key fails with its detail.
    api_key: ApiResult<String>,
    binding: Option<SendEmail>,
    timeout_ms: u64,
    /// Ties a failure's log line to the request's.
    request_id: String,
}

impl EdgeMailer {
    pub fn new(cfg: &Config, env: &Env, request_id: &str) -> Self {
        let binding = match &cfg.mail_provider {
            MailProvider::Cloudflare { binding } => env.send_email(binding).ok(),
            _ => None,
        };
        Self {
            provider: cfg.mail_provider.clone(),
            from: cfg.mail_from.clone(),
            api_key: cfg.mail_api_key().map(str::to_owned),
            binding,
            timeout_ms: cfg.mail_timeout_ms,
            request_id: request_id.to_owned(),
        }
    }

    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    fn failed(&self, cause: serde_json::Value) -> ApiError {
        worker::console_error!(
            "{}",
            json!({"event": "mail_delivery_failed", "request_id": self.request_id, "provider": self.provider.name(), "cause": cause})
        );
        ApiError::MailDeliveryFailed
    }

    async fn send_with_binding(&self, binding: &SendEmail, m: &Message) -> ApiResult<()> {
        let builder = match &self.from.name {
            Some(name) => SendEmailBuilder::new_with_email_address_and_str(
                &EmailAddress::new(name, &self.from.email),
                &m.to,
                &m.subject,
            ),
            None => SendEmailBuilder::new(&self.from.email, &m.to, &m.subject),
        };
        builder.set_text(&m.text);
        builder.set_html(&m.html);
        match binding.send_with_builder(&builder).await {
            Ok(_) => Ok(()),
            Err(e) => Err(self.failed(json!({"binding_error": format!("{e:?}")}))),
        }
    }
}

impl Mailer for EdgeMailer {
    fn ready(&self) -> ApiResult<()> {
        match (&self.provider, &self.binding) {
            (MailProvider::Api { .. }, _) => self.api_key.as_ref().map(drop).map_err(Clone::clone),
            (MailProvider::Cloudflare { binding }, None) => Err(ApiError::Unavailable(format!(
                "MAIL_PROVIDER=cloudflare needs a send_email binding named `{binding}` (see docs/providers.md)"
            ))),
            _ => Ok(()),
        }
    }

    async fn send(&self, message: &Message) -> ApiResult<()> {
        match (&self.provider, &self.binding) {
            (MailProvider::Log, _) => {
                // Development only: Config refuses this provider in production.
                worker::console_log!(
                    "\n----- mail (MAIL_PROVIDER=log) -----\nTo: {}\nSubject: {}\n\n{}------------------------------------",
                    message.to,
                    message.subject,
                    message.text
                );
                Ok(())
            }
            (MailProvider::Api { api, api_url }, _) => {
                let key = self.api_key.as_deref().map_err(Clone::clone)?;
                let call = api.request(api_url, key, &self.from, message);
                let (outcome, attempts) = send(&call, self.timeout_ms).await;
                let cause = match outcome {
                    Outcome::Answered { body } if api.confirms(&body) => return Ok(()),
                    Outcome::Answered { .. } => json!({"unconfirmed": "2xx without a message id"}),
                    Outcome::Refused { status, .. } => json!({"provider_status": status}),
                    Outcome::Failed(cause) => cause,
                };
                Err(self.failed(json!({"attempts": attempts, "last": cause})))
            }
            (MailProvider::Cloudflare { .. }, Some(binding)) => {
                self.send_with_binding(binding, message).await
            }
            (MailProvider::Cloudflare { .. }, None) => self.ready(),
        }
    }
}
