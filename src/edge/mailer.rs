//! Mail delivery from the Worker: the `log` mailer for development and the
//! Resend HTTP API over `fetch`, with a hard timeout.

use crate::config::{Config, MailProvider};
use crate::error::{ApiError, ApiResult};
use crate::mail::{resend_payload, Mailer, Message};
use futures_util::future::{select, Either};
use serde_json::json;
use std::time::Duration;
use worker::wasm_bindgen::JsValue;
use worker::{AbortController, Delay, Fetch, Headers, Method, Request, RequestInit};

#[derive(Clone)]
pub struct EdgeMailer {
    provider: MailProvider,
    from: String,
    api_key: Option<String>,
    timeout_ms: u64,
}

impl EdgeMailer {
    pub fn new(cfg: &Config) -> Self {
        Self {
            provider: cfg.mail_provider.clone(),
            from: cfg.mail_from.clone(),
            api_key: cfg.mail_api_key().ok().map(str::to_owned),
            timeout_ms: cfg.mail_timeout_ms,
        }
    }

    /// Checked before a flow writes anything, so a missing key fails closed
    /// with 503 instead of half-way through.
    pub fn ready(&self) -> ApiResult<()> {
        match (&self.provider, &self.api_key) {
            (MailProvider::Resend { .. }, None) => Err(ApiError::Unavailable(
                "secret MAIL_API_KEY is not set (wrangler secret put MAIL_API_KEY)".into(),
            )),
            _ => Ok(()),
        }
    }

    async fn send_resend(&self, api_url: &str, message: &Message) -> ApiResult<()> {
        self.ready()?;
        let key = self.api_key.as_deref().unwrap_or_default();
        let headers = Headers::new();
        let set = |k: &str, v: &str| headers.set(k, v).map_err(|_| ApiError::MailDeliveryFailed);
        set("content-type", "application/json")?;
        set("authorization", &format!("Bearer {key}"))?;
        set("idempotency-key", &message.idempotency_key)?;
        let body = resend_payload(&self.from, message).to_string();
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_headers(headers)
            .with_body(Some(JsValue::from_str(&body)));
        let request = Request::new_with_init(&format!("{api_url}/emails"), &init)
            .map_err(|_| ApiError::MailDeliveryFailed)?;

        let controller = AbortController::default();
        let signal = controller.signal();
        let fetch = Fetch::Request(request);
        let send = fetch.send_with_signal(&signal);
        let timeout = Delay::from(Duration::from_millis(self.timeout_ms));
        futures_util::pin_mut!(send, timeout);
        let failure = match select(send, timeout).await {
            Either::Left((Ok(response), _)) if (200..300).contains(&response.status_code()) => {
                return Ok(())
            }
            Either::Left((Ok(response), _)) => json!({"provider_status": response.status_code()}),
            Either::Left((Err(e), _)) => json!({"fetch_error": e.to_string()}),
            Either::Right(_) => {
                controller.abort();
                json!({"timeout_ms": self.timeout_ms})
            }
        };
        worker::console_error!(
            "{}",
            json!({"event": "mail_delivery_failed", "provider": "resend", "cause": failure})
        );
        Err(ApiError::MailDeliveryFailed)
    }
}

impl Mailer for EdgeMailer {
    async fn send(&self, message: &Message) -> ApiResult<()> {
        match &self.provider {
            MailProvider::Log => {
                // Development only: Config refuses this provider in production.
                worker::console_log!(
                    "\n----- mail (MAIL_PROVIDER=log) -----\nTo: {}\nSubject: {}\n\n{}------------------------------------",
                    message.to,
                    message.subject,
                    message.text
                );
                Ok(())
            }
            MailProvider::Resend { api_url } => self.send_resend(api_url, message).await,
        }
    }
}
