//! An edge one-time-code service. Everything outside `edge` is plain Rust
//! that never touches the Workers runtime, so it runs under `cargo test`.

pub mod api_key;
pub mod audit;
pub mod body;
pub mod channel;
pub mod clock;
pub mod code;
pub mod config;
pub mod cors;
pub mod diagnostics;
pub mod email;
pub mod error;
pub mod http_call;
pub mod limits;
pub mod mail;
pub mod password;
pub mod purpose;
pub mod request_id;
pub mod routes;
pub mod service;
pub mod session;
pub mod store;
pub mod template;
pub mod text;
pub mod twilio;

#[cfg(target_arch = "wasm32")]
mod edge;
