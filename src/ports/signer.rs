//! Signatures for the OpenID Provider's tokens, behind a trait: on Workers
//! the runtime's WebCrypto (native and constant-time) signs, so no RSA or
//! ECDSA code ships in the wasm; a native test stands in with its own.

use crate::domain::jwk::SigningKey;
use crate::error::ApiResult;
use futures_util::future::LocalBoxFuture;

pub trait Signer {
    /// The JWS signature of `input` under `key` (RS256: PKCS#1 v1.5 with
    /// SHA-256; ES256: P-256 with SHA-256, `r || s`, 64 bytes).
    fn sign<'a>(
        &'a self,
        key: &'a SigningKey,
        input: &'a [u8],
    ) -> LocalBoxFuture<'a, ApiResult<Vec<u8>>>;
    /// Whether `signature` is `key`'s over `input`.
    fn verify<'a>(
        &'a self,
        key: &'a SigningKey,
        input: &'a [u8],
        signature: &'a [u8],
    ) -> LocalBoxFuture<'a, ApiResult<bool>>;
}
