//! Apps in D1: their API keys, their codes and their test recipients.

use super::*;

use crate::domain::api_key::{ApiKey, NewApiKey};
use crate::domain::channel::Channel;
use crate::domain::code::{app_scope, CodeKey, APP_SCOPE_PREFIX};
use crate::domain::test_recipient::TestRecipient;
use crate::error::ApiResult;
use crate::ports::limits::SendCount;
use crate::ports::store::{Filed, NewCode, PendingCode, TestRecipientPut};
use serde::Deserialize;
use worker::wasm_bindgen::JsValue;

impl AppStore for D1Store {
    async fn issue_app_code(
        &self,
        c: &NewCode<'_>,
        attempts_window_secs: u64,
        count: &SendCount,
        key_id: &str,
    ) -> ApiResult<Filed> {
        const OP: &str = "issue_app_code";
        let (guard, mut guard_args) = send_guard(count, 10);
        let key_at = 10 + guard_args.len();
        let mut condition = format!("{guard} AND {}", key_alive(key_at));
        // A test recipient's code only while the recipient still has this
        // digest (?6): a removal or a new code that lands mid-send wins.
        if c.test {
            condition.push_str(&test_recipient_current(key_at, 3, 4, 6));
        }
        guard_args.push(text(key_id));
        let code = self.code_statement(
            OP,
            c,
            attempts_window_secs,
            &condition,
            guard_args,
            OnLive::Replace,
        )?;
        let counted = self.count_statement_if(OP, count, Some(key_id), c.test.then_some(c))?;
        // Read only when nothing was filed, so unchanged by the count: why.
        let (prefix, cap) = match count.prefix.and_then(|i| count.counters.get(i)) {
            Some((name, cap)) => (name.as_str(), *cap),
            None => ("", u32::MAX),
        };
        let alive = self.stmt(
            OP,
            &format!("SELECT {} AS n", key_alive(1)),
            &[text(key_id)],
        )?;
        let prefix_full = self.stmt(
            OP,
            "SELECT COALESCE((SELECT sent FROM send_counts WHERE counter = ?1 AND hour = ?2), 0) >= ?3 AS n",
            &[text(prefix), number(count.hour), number(cap.into())],
        )?;
        let results = self
            .batch(OP, vec![code, counted, alive, prefix_full])
            .await?;
        if results.returned(1)? {
            return Ok(Filed::Filed);
        }
        Ok(match results.flag(2)? {
            true => Filed::Capped {
                prefix: results.flag(3)?,
            },
            false => Filed::KeyRevoked,
        })
    }

    async fn claim_app_attempt(
        &self,
        key_hash: &str,
        key: &CodeKey<'_>,
        max_attempts: u32,
    ) -> ApiResult<(Option<ApiKey>, Option<PendingCode>)> {
        const OP: &str = "claim_app_attempt";
        let active_key = "FROM api_keys WHERE key_hash = ?1 AND revoked_at IS NULL";
        let lookup = self.stmt(
            OP,
            &format!("SELECT {KEY_COLUMNS} {active_key}"),
            &[text(key_hash)],
        )?;
        // The scope is the key's, if the key exists, is not revoked and
        // allows the channel: otherwise no row matches and no guess counts.
        let claim = self.stmt(
            OP,
            &format!(
                "UPDATE codes SET attempts = MIN(attempts + 1, ?5 + 1)
                 WHERE scope = (SELECT '{APP_SCOPE_PREFIX}' || id {active_key}
                                  AND instr(',' || channels || ',', ',' || ?2 || ',') > 0)
                   AND channel = ?2 AND address = ?3 AND purpose = ?4
                 RETURNING id, digest, attempts, expires_at, test, NULL AS account_password, NULL AS account_id"
            ),
            &[
                text(key_hash),
                text(key.channel.as_str()),
                text(key.address),
                text(key.purpose),
                number(max_attempts.into()),
            ],
        )?;
        let results = self.batch(OP, vec![lookup, claim]).await?;
        let found = results
            .rows::<KeyRow>(0)?
            .into_iter()
            .next()
            .map(ApiKey::from);
        let pending = results
            .rows::<CodeRow>(1)?
            .into_iter()
            .next()
            .map(PendingCode::from);
        Ok((found, pending))
    }

    async fn create_api_key(
        &self,
        id: &str,
        key_hash: &str,
        hint: &str,
        new: &NewApiKey,
        now: u64,
    ) -> ApiResult<()> {
        let opt = |v: Option<&str>| v.map_or(JsValue::NULL, text);
        let o = &new.options;
        self.write::<serde_json::Value>(
            "create_api_key",
            "INSERT INTO api_keys (id, key_hash, hint, name, app_name, channels, created_at, sms_domain, android_app_hash, turnstile_required)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            &[
                text(id), text(key_hash), text(hint), text(&new.name), opt(new.app_name.as_deref()),
                text(&new.channels.to_stored()), number(now),
                opt(o.sms_domain.as_ref().map(|d| d.as_str())),
                opt(o.android_app_hash.as_ref().map(|h| h.as_str())),
                number(o.turnstile_required.into()),
            ],
        )
        .await
        .map(drop)
    }

    async fn api_keys(&self) -> ApiResult<Vec<ApiKey>> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at DESC, id");
        Ok(self
            .read_all::<KeyRow>("api_keys", &sql, &[])
            .await?
            .into_iter()
            .map(ApiKey::from)
            .collect())
    }

    async fn api_key_by_hash(&self, key_hash: &str) -> ApiResult<Option<ApiKey>> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = ?1 AND revoked_at IS NULL"
        );
        Ok(self
            .read_first::<KeyRow>("api_key_by_hash", &sql, &[text(key_hash)])
            .await?
            .map(ApiKey::from))
    }

    async fn sending_key(
        &self,
        key_hash: &str,
        channel: Channel,
        address: &str,
    ) -> ApiResult<Option<(ApiKey, Option<String>)>> {
        let sql = format!(
            "SELECT {KEY_COLUMNS},
               (SELECT digest FROM test_recipients
                  WHERE key_id = api_keys.id AND channel = ?2 AND address = ?3) AS test_digest
             FROM api_keys WHERE key_hash = ?1 AND revoked_at IS NULL"
        );
        let args = [text(key_hash), text(channel.as_str()), text(address)];
        Ok(self
            .read_first::<KeyRow>("sending_key", &sql, &args)
            .await?
            .map(|mut r| {
                let digest = r.test_digest.take();
                (ApiKey::from(r), digest)
            }))
    }

    async fn put_test_recipient(
        &self,
        key_id: &str,
        t: &TestRecipient,
        digest: &str,
        max: u32,
    ) -> ApiResult<TestRecipientPut> {
        const OP: &str = "put_test_recipient";
        // Filed while the key is live and has room, or when the recipient
        // is already there (its code is replaced).
        let put = self.stmt(
            OP,
            &format!(
                "INSERT INTO test_recipients (key_id, channel, address, digest, created_at)
                 SELECT ?1, ?2, ?3, ?4, ?5 WHERE {} AND (
                   (SELECT COUNT(*) FROM test_recipients WHERE key_id = ?1) < ?6
                   OR EXISTS (SELECT 1 FROM test_recipients WHERE key_id = ?1 AND channel = ?2 AND address = ?3))
                 ON CONFLICT (key_id, channel, address) DO UPDATE SET digest = excluded.digest
                 RETURNING key_id",
                key_alive(1)
            ),
            &[
                text(key_id),
                text(t.channel.as_str()),
                text(&t.address),
                text(digest),
                number(t.created_at),
                number(max.into()),
            ],
        )?;
        let alive = self.stmt(
            OP,
            &format!("SELECT {} AS n", key_alive(1)),
            &[text(key_id)],
        )?;
        // Pending codes of a replaced fixed code stop working now. It runs
        // first in the batch, reading the digest before the put changes it;
        // it matches nothing unless the recipient exists, when the put
        // always lands.
        let withdrawn = self.stmt(
            OP,
            &format!(
                "DELETE FROM codes WHERE scope = '{APP_SCOPE_PREFIX}' || ?1 AND channel = ?2 AND address = ?3 AND test = 1
                 AND EXISTS (SELECT 1 FROM test_recipients WHERE key_id = ?1 AND channel = ?2 AND address = ?3 AND digest <> ?4)"
            ),
            &[text(key_id), text(t.channel.as_str()), text(&t.address), text(digest)],
        )?;
        let results = self.batch(OP, vec![withdrawn, put, alive]).await?;
        if results.returned(1)? {
            return Ok(TestRecipientPut::Put);
        }
        Ok(if results.flag(2)? {
            TestRecipientPut::Full
        } else {
            TestRecipientPut::NoKey
        })
    }

    async fn test_recipients(&self, key_id: &str) -> ApiResult<Option<Vec<TestRecipient>>> {
        const OP: &str = "test_recipients";
        #[derive(Deserialize)]
        struct Row {
            channel: String,
            address: String,
            created_at: f64,
        }
        let results = self
            .batch(
                OP,
                vec![
                    self.stmt(
                        OP,
                        "SELECT 1 AS n FROM api_keys WHERE id = ?1 AND revoked_at IS NULL",
                        &[text(key_id)],
                    )?,
                    self.stmt(
                        OP,
                        "SELECT channel, address, created_at FROM test_recipients WHERE key_id = ?1 ORDER BY created_at, channel, address",
                        &[text(key_id)],
                    )?,
                ],
            )
            .await?;
        if !results.returned(0)? {
            return Ok(None);
        }
        Ok(Some(
            results
                .rows::<Row>(1)?
                .into_iter()
                .filter_map(|r| {
                    Some(TestRecipient {
                        channel: Channel::from_name(&r.channel)?,
                        address: r.address,
                        created_at: r.created_at as u64,
                    })
                })
                .collect(),
        ))
    }

    async fn delete_test_recipient(
        &self,
        key_id: &str,
        channel: Channel,
        address: &str,
    ) -> ApiResult<bool> {
        const OP: &str = "delete_test_recipient";
        let args = [text(key_id), text(channel.as_str()), text(address)];
        // Its pending code goes with it: the fixed code stops working now.
        let results = self
            .batch(
                OP,
                vec![
                    self.stmt(
                        OP,
                        "DELETE FROM test_recipients WHERE key_id = ?1 AND channel = ?2 AND address = ?3 RETURNING key_id",
                        &args,
                    )?,
                    self.stmt(
                        OP,
                        &format!(
                            "DELETE FROM codes WHERE scope = '{APP_SCOPE_PREFIX}' || ?1 AND channel = ?2 AND address = ?3 AND test = 1"
                        ),
                        &args,
                    )?,
                ],
            )
            .await?;
        results.returned(0)
    }

    async fn revoke_api_key(&self, id: &str, now: u64) -> ApiResult<bool> {
        const OP: &str = "revoke_api_key";
        self.batch(
            OP,
            vec![
                self.stmt(OP, "DELETE FROM codes WHERE scope = ?1", &[text(&app_scope(id))])?,
                self.stmt(
                    OP,
                    "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1 RETURNING id",
                    &[text(id), number(now)],
                )?,
            ],
        )
        .await?
        .returned(1)
    }
}
