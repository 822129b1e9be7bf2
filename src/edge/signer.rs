//! The OpenID Provider's signatures and the sealed authenticator secrets through the runtime's WebCrypto
//! (`crypto.subtle`): native, constant-time, and no RSA or ECDSA code in
//! the wasm. Called through `js_sys::Reflect`, so no web-sys features are
//! needed. An imported key is kept for the isolate's life, by key id and
//! a digest of the JWK (a rotated key under an old id is a new entry).

use crate::domain::jwk::{Alg, SigningKey};
use crate::domain::sealed::SealKey;
use crate::domain::session::token_hash;
use crate::error::{ApiError, ApiResult};
use crate::ports::sealer::Sealer;
use crate::ports::signer::Signer;
use futures_util::future::LocalBoxFuture;
use std::cell::RefCell;
use std::collections::HashMap;
use worker::js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array, JSON};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;

pub struct WebCrypto;

thread_local! {
    static KEYS: RefCell<HashMap<String, JsValue>> = RefCell::new(HashMap::new());
}

fn failed(op: &str) -> impl Fn(JsValue) -> ApiError + '_ {
    move |e| ApiError::internal(&format!("webcrypto {op}"), format!("{e:?}"))
}

fn subtle() -> ApiResult<JsValue> {
    let crypto =
        Reflect::get(&worker::js_sys::global(), &"crypto".into()).map_err(failed("crypto"))?;
    Reflect::get(&crypto, &"subtle".into()).map_err(failed("crypto.subtle"))
}

/// `subtle[name](...args)`, awaited.
async fn call(subtle: &JsValue, name: &str, args: &[JsValue]) -> ApiResult<JsValue> {
    let f: Function = Reflect::get(subtle, &name.into())
        .map_err(failed(name))?
        .dyn_into()
        .map_err(failed(name))?;
    let args: Array = args.iter().collect();
    let promise: Promise = f
        .apply(subtle, &args)
        .map_err(failed(name))?
        .dyn_into()
        .map_err(failed(name))?;
    JsFuture::from(promise).await.map_err(failed(name))
}

fn object(pairs: &[(&str, &str)]) -> ApiResult<JsValue> {
    let o = Object::new();
    for (k, v) in pairs {
        Reflect::set(&o, &(*k).into(), &(*v).into()).map_err(failed("algorithm"))?;
    }
    Ok(o.into())
}

/// The algorithm as `importKey` and as `sign`/`verify` take it.
fn algorithms(alg: Alg) -> ApiResult<(JsValue, JsValue)> {
    Ok(match alg {
        Alg::Rs256 => (
            object(&[("name", "RSASSA-PKCS1-v1_5"), ("hash", "SHA-256")])?,
            object(&[("name", "RSASSA-PKCS1-v1_5")])?,
        ),
        Alg::Es256 => (
            object(&[("name", "ECDSA"), ("namedCurve", "P-256")])?,
            object(&[("name", "ECDSA"), ("hash", "SHA-256")])?,
        ),
    })
}

/// The key imported for `usage` (`sign` takes the private half).
async fn crypto_key(subtle: &JsValue, key: &SigningKey, usage: &str) -> ApiResult<JsValue> {
    let jwk = match usage {
        "sign" => serde_json::to_string(key.private_jwk()),
        _ => serde_json::to_string(key.public_jwk()),
    }
    .map_err(|e| ApiError::internal("webcrypto jwk", e))?;
    let id = format!("{usage}:{}:{}", key.kid, &token_hash(&jwk)[..16]);
    if let Some(k) = KEYS.with(|keys| keys.borrow().get(&id).cloned()) {
        return Ok(k);
    }
    let (import, _) = algorithms(key.alg)?;
    let usages: Array = [JsValue::from_str(usage)].iter().collect();
    let parsed = JSON::parse(&jwk).map_err(failed("jwk"))?;
    let imported = call(
        subtle,
        "importKey",
        &["jwk".into(), parsed, import, JsValue::FALSE, usages.into()],
    )
    .await?;
    KEYS.with(|keys| keys.borrow_mut().insert(id, imported.clone()));
    Ok(imported)
}

impl Signer for WebCrypto {
    fn sign<'a>(
        &'a self,
        key: &'a SigningKey,
        input: &'a [u8],
    ) -> LocalBoxFuture<'a, ApiResult<Vec<u8>>> {
        Box::pin(async move {
            let subtle = subtle()?;
            let crypto_key = crypto_key(&subtle, key, "sign").await?;
            let (_, alg) = algorithms(key.alg)?;
            let data: JsValue = Uint8Array::from(input).into();
            let signature = call(&subtle, "sign", &[alg, crypto_key, data]).await?;
            Ok(Uint8Array::new(&signature).to_vec())
        })
    }

    fn verify<'a>(
        &'a self,
        key: &'a SigningKey,
        input: &'a [u8],
        signature: &'a [u8],
    ) -> LocalBoxFuture<'a, ApiResult<bool>> {
        Box::pin(async move {
            let subtle = subtle()?;
            let crypto_key = crypto_key(&subtle, key, "verify").await?;
            let (_, alg) = algorithms(key.alg)?;
            let data: JsValue = Uint8Array::from(input).into();
            let sig: JsValue = Uint8Array::from(signature).into();
            let valid = call(&subtle, "verify", &[alg, crypto_key, sig, data]).await?;
            Ok(valid.as_bool() == Some(true))
        })
    }
}

/// The AES-GCM key, imported once per isolate (a changed secret derives
/// another key, under another entry).
async fn aes_key(subtle: &JsValue, key: &SealKey) -> ApiResult<JsValue> {
    let id = format!("aes:{}", &token_hash(&hex::encode(key.bytes()))[..16]);
    if let Some(k) = KEYS.with(|keys| keys.borrow().get(&id).cloned()) {
        return Ok(k);
    }
    let usages: Array = ["encrypt", "decrypt"]
        .iter()
        .map(|u| JsValue::from_str(u))
        .collect();
    let raw: JsValue = Uint8Array::from(&key.bytes()[..]).into();
    let imported = call(
        subtle,
        "importKey",
        &[
            "raw".into(),
            raw,
            object(&[("name", "AES-GCM")])?,
            JsValue::FALSE,
            usages.into(),
        ],
    )
    .await?;
    KEYS.with(|keys| keys.borrow_mut().insert(id, imported.clone()));
    Ok(imported)
}

fn aes_gcm(nonce: &[u8; 12], aad: &[u8]) -> ApiResult<JsValue> {
    let alg = object(&[("name", "AES-GCM")])?;
    let iv: JsValue = Uint8Array::from(&nonce[..]).into();
    let aad: JsValue = Uint8Array::from(aad).into();
    Reflect::set(&alg, &"iv".into(), &iv).map_err(failed("algorithm"))?;
    Reflect::set(&alg, &"additionalData".into(), &aad).map_err(failed("algorithm"))?;
    Ok(alg)
}

impl Sealer for WebCrypto {
    fn seal<'a>(
        &'a self,
        key: &'a SealKey,
        nonce: &'a [u8; 12],
        plaintext: &'a [u8],
        aad: &'a [u8],
    ) -> LocalBoxFuture<'a, ApiResult<Vec<u8>>> {
        Box::pin(async move {
            let subtle = subtle()?;
            let crypto_key = aes_key(&subtle, key).await?;
            let data: JsValue = Uint8Array::from(plaintext).into();
            let sealed = call(
                &subtle,
                "encrypt",
                &[aes_gcm(nonce, aad)?, crypto_key, data],
            )
            .await?;
            Ok(Uint8Array::new(&sealed).to_vec())
        })
    }

    fn open<'a>(
        &'a self,
        key: &'a SealKey,
        nonce: &'a [u8; 12],
        sealed: &'a [u8],
        aad: &'a [u8],
    ) -> LocalBoxFuture<'a, ApiResult<Option<Vec<u8>>>> {
        Box::pin(async move {
            let subtle = subtle()?;
            let crypto_key = aes_key(&subtle, key).await?;
            let data: JsValue = Uint8Array::from(sealed).into();
            // A tag that does not hold rejects the promise with an
            // OperationError: no plaintext. Anything else is a failure.
            let f: Function = Reflect::get(&subtle, &"decrypt".into())
                .map_err(failed("decrypt"))?
                .dyn_into()
                .map_err(failed("decrypt"))?;
            let args: Array = [aes_gcm(nonce, aad)?, crypto_key, data].iter().collect();
            let promise: Promise = f
                .apply(&subtle, &args)
                .map_err(failed("decrypt"))?
                .dyn_into()
                .map_err(failed("decrypt"))?;
            match JsFuture::from(promise).await {
                Ok(plain) => Ok(Some(Uint8Array::new(&plain).to_vec())),
                Err(e) => {
                    let name = Reflect::get(&e, &"name".into())
                        .ok()
                        .and_then(|n| n.as_string());
                    match name.as_deref() {
                        Some("OperationError") => Ok(None),
                        _ => Err(failed("decrypt")(e)),
                    }
                }
            }
        })
    }
}
