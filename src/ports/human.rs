//! The check that a request comes from a person: Cloudflare Turnstile's
//! siteverify, behind a trait so the flows decide when it is needed and a
//! native test can stand in for Cloudflare.

use crate::error::ApiResult;
use futures_util::future::LocalBoxFuture;

pub trait HumanCheck {
    /// Whether siteverify accepts `token` (single use): `Ok(false)` when it
    /// refuses it, `Err(Unavailable)` when it cannot answer.
    fn check<'a>(&'a self, token: &'a str) -> LocalBoxFuture<'a, ApiResult<bool>>;
}
