//! Sends an `HttpCall` with `fetch`, under a hard timeout.

use crate::http_call::HttpCall;
use futures_util::future::{select, Either};
use serde_json::{json, Value};
use std::time::Duration;
use worker::wasm_bindgen::JsValue;
use worker::{AbortController, Delay, Fetch, Headers, Method, Request, RequestInit};

pub enum Outcome {
    Delivered,
    /// The provider answered with an error status, and this body.
    Refused {
        status: u16,
        body: String,
    },
    /// No answer: for the log, never for the client.
    Failed(Value),
}

pub async fn send(call: &HttpCall, timeout_ms: u64) -> Outcome {
    let headers = Headers::new();
    for (k, v) in &call.headers {
        if headers.set(k, v).is_err() {
            return Outcome::Failed(json!({"bad_header": k}));
        }
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(JsValue::from_str(&call.body)));
    let request = match Request::new_with_init(&call.url, &init) {
        Ok(r) => r,
        Err(e) => return Outcome::Failed(json!({"bad_request": e.to_string()})),
    };
    let controller = AbortController::default();
    let signal = controller.signal();
    let fetch = Fetch::Request(request);
    let sent = fetch.send_with_signal(&signal);
    let timeout = Delay::from(Duration::from_millis(timeout_ms));
    futures_util::pin_mut!(sent, timeout);
    match select(sent, timeout).await {
        Either::Left((Ok(mut response), _)) => {
            let status = response.status_code();
            if (200..300).contains(&status) {
                return Outcome::Delivered;
            }
            let body = response.text().await.unwrap_or_default();
            Outcome::Refused { status, body }
        }
        Either::Left((Err(e), _)) => Outcome::Failed(json!({"fetch_error": e.to_string()})),
        Either::Right(_) => {
            controller.abort();
            Outcome::Failed(json!({"timeout_ms": timeout_ms}))
        }
    }
}
