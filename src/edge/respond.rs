//! Building responses: JSON bodies, problem documents, and the headers
//! every answer carries.

use crate::error::ApiError;
use serde::Serialize;
use worker::{Headers, Response};

fn base_headers(content_type: Option<&str>) -> Headers {
    let h = Headers::new();
    if let Some(ct) = content_type {
        let _ = h.set("content-type", ct);
    }
    // Auth answers carry tokens and personal data: never cache them.
    let _ = h.set("cache-control", "no-store");
    let _ = h.set("x-content-type-options", "nosniff");
    h
}

pub fn json(status: u16, value: &impl Serialize) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    bytes(status, body, base_headers(Some("application/json")))
}

pub fn problem(error: &ApiError) -> Response {
    let body = serde_json::to_vec(&error.problem()).unwrap_or_default();
    let headers = base_headers(Some("application/problem+json"));
    for (name, value) in error.headers() {
        let _ = headers.set(name, &value);
    }
    bytes(error.status(), body, headers)
}

pub fn empty(status: u16) -> Response {
    Response::empty()
        .map(|r| r.with_status(status).with_headers(base_headers(None)))
        .unwrap_or_else(|_| fallback())
}

fn bytes(status: u16, body: Vec<u8>, headers: Headers) -> Response {
    Response::from_bytes(body)
        .map(|r| r.with_status(status).with_headers(headers))
        .unwrap_or_else(|_| fallback())
}

fn fallback() -> Response {
    Response::empty()
        .expect("an empty response can always be built")
        .with_status(500)
}

/// One structured line per request. It never includes bodies, headers or
/// query strings, which is where codes, passwords and tokens travel.
pub fn log_line(route: &str, method: &str, status: u16, duration_ms: u64) {
    worker::console_log!(
        "{}",
        serde_json::json!({"event": "request", "route": route, "method": method, "status": status, "duration_ms": duration_ms})
    );
}
