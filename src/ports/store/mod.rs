//! What the flows need from the database, as small traits by capability:
//! accounts and their codes, sessions, apps and their keys,
//! delivery, the operator's audit trail, OpenID Connect clients and the
//! grants made to them, second factors. `Store` is all of them. D1
//! implements each in its own file under `edge::d1`; every multi-step
//! change is one atomic call here.

use crate::error::ApiResult;

mod accounts;
mod apps;
mod audit;
mod clients;
mod delivery;
mod factors;
mod grants;
mod sessions;

pub use accounts::*;
pub use apps::*;
pub use audit::*;
pub use clients::*;
pub use delivery::*;
pub use factors::*;
pub use grants::*;
pub use sessions::*;

/// Everything the flows need from the database.
pub trait Store:
    AccountStore
    + SessionStore
    + AppStore
    + DeliveryStore
    + AuditStore
    + ClientStore
    + GrantStore
    + FactorStore
{
}

impl<T> Store for T where
    T: AccountStore
        + SessionStore
        + AppStore
        + DeliveryStore
        + AuditStore
        + ClientStore
        + GrantStore
        + FactorStore
{
}

/// D1's transient errors, as its documentation lists them: a read that
/// hit one is tried once more (writes are not: a write may have landed).
pub fn is_transient(message: &str) -> bool {
    [
        "Network connection lost",
        "storage caused object to be reset",
        "reset because its code was updated",
    ]
    .iter()
    .any(|m| message.contains(m))
}

/// Runs `read`, and once more if the first try failed transiently.
pub async fn read_with_retry<T, E, Fut>(
    mut read: impl FnMut() -> Fut,
    transient: impl Fn(&E) -> bool,
) -> Result<T, E>
where
    Fut: std::future::Future<Output = Result<T, E>>,
{
    match read().await {
        Err(e) if transient(&e) => read().await,
        other => other,
    }
}

/// Statement `i`'s result of a batch of `op`: an answer with fewer results
/// than statements is a storage failure (503), never an index panic, which
/// would abort the worker.
pub fn nth<'a, T>(op: &str, results: &'a [T], i: usize) -> ApiResult<&'a T> {
    results.get(i).ok_or_else(|| {
        crate::error::ApiError::storage(
            &format!("d1 {op}"),
            format_args!(
                "the batch answered {} results, statement {} has none",
                results.len(),
                i + 1
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pollster::block_on;

    #[test]
    fn a_short_batch_answer_is_a_storage_failure_not_a_panic() {
        let results = [1, 2];
        assert_eq!(nth("stats", &results, 1), Ok(&2));
        let e = nth("stats", &results, 6).unwrap_err();
        assert!(matches!(&e, crate::error::ApiError::StorageUnavailable(d) if d.contains("stats")));
        assert_eq!(e.status(), 503);
    }
    use std::cell::Cell;

    #[test]
    fn a_transient_read_failure_is_tried_once_more_and_others_are_not() {
        for (first, tries, ok) in [
            ("D1_ERROR: Network connection lost.", 2, true),
            ("D1_ERROR: storage caused object to be reset", 2, true),
            ("D1_ERROR: no such table: users", 1, false),
        ] {
            let calls = Cell::new(0);
            let result = block_on(read_with_retry(
                || {
                    calls.set(calls.get() + 1);
                    let n = calls.get();
                    async move {
                        if n == 1 {
                            Err(first.to_string())
                        } else {
                            Ok(n)
                        }
                    }
                },
                |e: &String| is_transient(e),
            ));
            assert_eq!((calls.get(), result.is_ok()), (tries, ok), "{first}");
        }
        // Two transient failures in a row: the second one is the answer.
        let calls = Cell::new(0);
        let result: Result<(), String> = block_on(read_with_retry(
            || {
                calls.set(calls.get() + 1);
                async { Err("Network connection lost".to_string()) }
            },
            |e: &String| is_transient(e),
        ));
        assert!(result.is_err() && calls.get() == 2);
    }
}
