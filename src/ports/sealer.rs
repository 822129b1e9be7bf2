//! Authenticated encryption of the secrets the service must read back (an
//! authenticator app's shared secret), behind a trait: on Workers the
//! runtime's WebCrypto AES-GCM (native, constant-time, no AES code in the
//! wasm); a native test stands in with the RustCrypto implementation of
//! the same algorithm.

use crate::domain::sealed::SealKey;
use crate::error::ApiResult;
use futures_util::future::LocalBoxFuture;

pub trait Sealer {
    /// AES-256-GCM of `plaintext` under `key` with the 96-bit `nonce` and
    /// `aad` authenticated alongside: the ciphertext, then the 128-bit tag.
    fn seal<'a>(
        &'a self,
        key: &'a SealKey,
        nonce: &'a [u8; 12],
        plaintext: &'a [u8],
        aad: &'a [u8],
    ) -> LocalBoxFuture<'a, ApiResult<Vec<u8>>>;
    /// The plaintext, or `None` if the tag does not hold (another key,
    /// another `aad`, a changed byte).
    fn open<'a>(
        &'a self,
        key: &'a SealKey,
        nonce: &'a [u8; 12],
        sealed: &'a [u8],
        aad: &'a [u8],
    ) -> LocalBoxFuture<'a, ApiResult<Option<Vec<u8>>>>;
}
