//! Building responses: JSON bodies, problem documents, and the headers
//! every answer carries.

use crate::domain::cors;
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
    // JSON is never a page: nothing may frame it, run in it, or learn where it was read.
    let _ = h.set(
        "content-security-policy",
        "default-src 'none'; frame-ancestors 'none'",
    );
    let _ = h.set("referrer-policy", "no-referrer");
    h
}

pub fn json(status: u16, value: &impl Serialize) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    bytes(status, body, base_headers(Some("application/json")))
}

/// The scheme, host and port of a request URL: what problem types, the
/// pages' CSRF check and their redirects are relative to.
pub fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

pub fn problem(error: &ApiError, origin: &str) -> Response {
    let (body, content_type) = match error {
        // RFC 6749 §5.2: OAuth's own error document.
        ApiError::OAuth(e) => (
            serde_json::to_vec(
                &serde_json::json!({"error": e.code.as_str(), "error_description": e.description}),
            )
            .unwrap_or_default(),
            "application/json",
        ),
        _ => (
            serde_json::to_vec(&error.problem(origin)).unwrap_or_default(),
            "application/problem+json",
        ),
    };
    let headers = base_headers(Some(content_type));
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

/// A page: HTML under the pages' policy (`pages::layout::csp`).
pub fn html(status: u16, body: String, csp: &str) -> Response {
    let headers = base_headers(Some("text/html; charset=utf-8"));
    let _ = headers.set("content-security-policy", csp);
    let _ = headers.set("x-frame-options", "DENY");
    // Not `no-referrer`: with it a browser sends `Origin: null` on the
    // pages' own form posts, and the CSRF check needs their origin. Other
    // sites still learn nothing, not even which page linked to them.
    let _ = headers.set("referrer-policy", "same-origin");
    bytes(status, body.into_bytes(), headers)
}

/// A static asset of the pages, cacheable for a few minutes.
pub fn asset(body: String, content_type: &str) -> Response {
    let headers = base_headers(Some(content_type));
    let _ = headers.set("cache-control", "public, max-age=300");
    bytes(200, body.into_bytes(), headers)
}

/// 303 See Other: after a form, the browser GETs `location`.
pub fn see_other(location: &str) -> Response {
    let headers = base_headers(None);
    let _ = headers.set("location", location);
    bytes(303, Vec::new(), headers)
}

/// Adds `Set-Cookie` headers to an answer.
pub fn with_cookies(mut response: Response, cookies: &[String]) -> Response {
    let headers = response.headers_mut();
    for c in cookies {
        let _ = headers.append("set-cookie", c);
    }
    response
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
pub fn log_line(request_id: &str, route: &str, method: &str, status: u16, duration_ms: u64) {
    worker::console_log!(
        "{}",
        serde_json::json!({"event": "request", "request_id": request_id, "route": route, "method": method, "status": status, "duration_ms": duration_ms})
    );
}

/// `GET /openapi.json`: the contract, converted from openapi.yaml at build time.
pub fn openapi() -> Response {
    let spec = include_str!(concat!(env!("OUT_DIR"), "/openapi.json"));
    bytes(
        200,
        spec.as_bytes().to_vec(),
        base_headers(Some("application/json")),
    )
}

/// The answer to a CORS preflight, or to a plain `OPTIONS`.
pub fn preflight(allow_methods: &str, allow_origin: Option<String>) -> Response {
    let headers = base_headers(None);
    let _ = headers.set("allow", &format!("{allow_methods}, OPTIONS"));
    if let Some(origin) = allow_origin {
        let _ = headers.set("access-control-allow-origin", &origin);
        let _ = headers.set("access-control-allow-methods", allow_methods);
        let _ = headers.set("access-control-allow-headers", cors::ALLOW_HEADERS);
        let _ = headers.set("access-control-max-age", cors::MAX_AGE_SECS);
        let _ = headers.set("vary", "origin");
    }
    bytes(204, Vec::new(), headers)
}

/// What every answer carries last: its request id and, for an allowed
/// origin, the CORS headers a browser needs to read it.
pub fn finish(response: &mut Response, request_id: &str, allow_origin: Option<&str>) {
    let headers = response.headers_mut();
    let _ = headers.set("x-request-id", request_id);
    if let Some(origin) = allow_origin {
        let _ = headers.set("access-control-allow-origin", origin);
        let _ = headers.set("access-control-expose-headers", cors::EXPOSE_HEADERS);
        let _ = headers.set("vary", "origin");
    }
}
