//! Turnstile's siteverify over `fetch`, for `ports::human::HumanCheck`.

use super::outbound::{send, Outcome};
use crate::config::Config;
use crate::error::{ApiError, ApiResult};
use crate::ports::human::HumanCheck;
use crate::providers::turnstile::{verdict, Verdict};
use futures_util::future::LocalBoxFuture;
use serde_json::json;

pub struct Siteverify<'a> {
    pub cfg: &'a Config,
    /// The visitor's address, which siteverify may compare with the widget's.
    pub remote_ip: Option<String>,
    pub request_id: &'a str,
}

impl HumanCheck for Siteverify<'_> {
    fn check<'a>(&'a self, token: &'a str) -> LocalBoxFuture<'a, ApiResult<bool>> {
        Box::pin(async move {
            let turnstile = self.cfg.turnstile()?;
            // One key per check: the retry of a transient failure is then
            // the same check, not a second use of the token.
            let key = crate::service::random_id()?;
            let call = turnstile.request(token, self.remote_ip.as_deref(), &key);
            let (outcome, attempts) = send(&call, self.cfg.turnstile_timeout_ms).await;
            let why = match outcome {
                Outcome::Answered { body } => match verdict(&body) {
                    Verdict::Passed => return Ok(true),
                    Verdict::Refused(_) => return Ok(false),
                    Verdict::Broken(codes) => json!({"error_codes": codes}),
                },
                Outcome::Refused { status, .. } => json!({"status": status}),
                Outcome::Failed(cause) => cause,
            };
            worker::console_error!(
                "{}",
                json!({"event": "turnstile_unavailable", "request_id": self.request_id, "attempts": attempts, "last": why})
            );
            Err(ApiError::Unavailable(
                "Turnstile's siteverify did not answer (TURNSTILE_VERIFY_URL); retry shortly"
                    .into(),
            ))
        })
    }
}
