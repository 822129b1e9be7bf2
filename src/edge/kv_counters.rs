//! `Counters` over the Workers KV namespace `RATE_LIMIT`.

use crate::error::{ApiError, ApiResult};
use crate::ports::limits::Counters;
use worker::KvStore;

pub struct KvCounters(pub KvStore);

/// A KV failure is a storage failure: 503 before anything was sent. A
/// failed write after a send (a 429 past KV's one write per second per
/// key, say) is absorbed by the flow and logged.
fn kv_error(op: &'static str) -> impl Fn(worker::KvError) -> ApiError {
    move |e| ApiError::storage(&format!("kv {op}"), e)
}

impl Counters for KvCounters {
    async fn get(&self, key: &str) -> ApiResult<Option<String>> {
        self.0.get(key).text().await.map_err(kv_error("get"))
    }

    async fn put(&self, key: &str, value: &str, ttl_secs: u64) -> ApiResult<()> {
        self.0
            .put(key, value)
            .map_err(kv_error("put"))?
            .expiration_ttl(ttl_secs)
            .execute()
            .await
            .map_err(kv_error("put"))
    }
}
