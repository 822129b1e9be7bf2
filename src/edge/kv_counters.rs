//! `Counters` over the Workers KV namespace `RATE_LIMIT`.

use crate::error::{ApiError, ApiResult};
use crate::limits::Counters;
use worker::KvStore;

pub struct KvCounters(pub KvStore);

fn kv_error(e: worker::KvError) -> ApiError {
    ApiError::Internal(format!("kv: {e}"))
}

impl Counters for KvCounters {
    async fn get(&self, key: &str) -> ApiResult<Option<String>> {
        self.0.get(key).text().await.map_err(kv_error)
    }

    async fn put(&self, key: &str, value: &str, ttl_secs: u64) -> ApiResult<()> {
        self.0
            .put(key, value)
            .map_err(kv_error)?
            .expiration_ttl(ttl_secs)
            .execute()
            .await
            .map_err(kv_error)
    }
}
