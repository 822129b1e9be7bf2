//! An edge one-time-code service. Everything outside `edge` is plain Rust
//! that never touches the Workers runtime, so it runs under `cargo test`.

pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod ports;
pub mod providers;
pub mod service;

#[cfg(target_arch = "wasm32")]
mod edge;
