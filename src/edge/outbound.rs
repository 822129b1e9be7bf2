//! Sends an `HttpCall` with `fetch`: one deadline for the whole send, and
//! one retry after a transient failure (see `http_call::retry_delay`).

use crate::providers::http_call::{retry_delay, Attempt, HttpCall};
use futures_util::future::{select, Either};
use serde_json::{json, Value};
use std::time::Duration;
use worker::wasm_bindgen::JsValue;
use worker::{AbortController, Date, Delay, Fetch, Headers, Method, Request, RequestInit};

pub enum Outcome {
    /// A 2xx answer, with its body for the caller to confirm.
    Answered { body: String },
    /// The provider answered with an error status, and this body.
    Refused { status: u16, body: String },
    /// No answer: for the log, never for the client.
    Failed(Value),
}

struct Tried {
    outcome: Outcome,
    attempt: Attempt,
}

pub async fn send(call: &HttpCall, timeout_ms: u64) -> (Outcome, u32) {
    let started = Date::now().as_millis();
    let first = attempt(call, timeout_ms).await;
    let elapsed = Date::now().as_millis().saturating_sub(started);
    let Some(pause) = retry_delay(&first.attempt, elapsed, timeout_ms) else {
        return (first.outcome, 1);
    };
    Delay::from(Duration::from_millis(pause)).await;
    let left = timeout_ms.saturating_sub(Date::now().as_millis().saturating_sub(started));
    (attempt(call, left).await.outcome, 2)
}

async fn attempt(call: &HttpCall, timeout_ms: u64) -> Tried {
    let failed = |cause: Value, attempt| Tried {
        outcome: Outcome::Failed(cause),
        attempt,
    };
    let headers = Headers::new();
    for (k, v) in &call.headers {
        if headers.set(k, v).is_err() {
            return failed(json!({"bad_header": k}), Attempt::NotSent);
        }
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(JsValue::from_str(&call.body)));
    let request = match Request::new_with_init(&call.url, &init) {
        Ok(r) => r,
        Err(e) => return failed(json!({"bad_request": e.to_string()}), Attempt::NotSent),
    };
    let controller = AbortController::default();
    let signal = controller.signal();
    let fetch = Fetch::Request(request);
    let sent = async {
        let mut response = fetch.send_with_signal(&signal).await?;
        let body = response.text().await?;
        Ok::<_, worker::Error>((response, body))
    };
    let timeout = Delay::from(Duration::from_millis(timeout_ms));
    futures_util::pin_mut!(sent, timeout);
    match select(sent, timeout).await {
        Either::Left((Ok((response, body)), _)) => {
            let status = response.status_code();
            let retry_after = response.headers().get("retry-after").ok().flatten();
            let outcome = match status {
                200..=299 => Outcome::Answered { body },
                _ => Outcome::Refused { status, body },
            };
            Tried {
                outcome,
                attempt: Attempt::Answered {
                    status,
                    retry_after,
                },
            }
        }
        Either::Left((Err(e), _)) => failed(
            json!({"fetch_error": e.to_string()}),
            Attempt::ConnectionFailed,
        ),
        Either::Right(_) => {
            controller.abort();
            failed(json!({"timeout_ms": timeout_ms}), Attempt::TimedOut)
        }
    }
}
