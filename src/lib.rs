//! An edge one-time-code service. Everything outside `edge` is plain Rust
//! that never touches the Workers runtime, so it runs under `cargo test`.
//!
//! A request travels down this map and back:
//!
//! - `edge`: the Workers entry points. Reads bytes and headers, picks the
//!   row of `http::routes::TABLE`, runs its policy, calls the flow, writes
//!   the answer. Implements the ports on D1, KV and `fetch`.
//! - `http`: the route table, one parser per request body, CORS, ids.
//! - `pages`: the HTML for people (hosted sign-in, the console, problem
//!   pages), CSRF and cookies.
//! - `service`: the flows (`account`, `apps`, `admin`): decisions only.
//! - `domain`: values parsed once and valid after (email, code, password...).
//! - `ports`: the traits state lives behind (`Store`, `Counters`, `Clock`).
//! - `providers`: mail APIs, Twilio and message templates, as `HttpCall`s.
//! - `config`: every var and secret, checked at load; `error`: the one
//!   error enum and its problem codes.

pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod pages;
pub mod ports;
pub mod providers;
pub mod service;

#[cfg(target_arch = "wasm32")]
mod edge;
