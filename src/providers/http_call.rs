//! An outgoing HTTP request to a third-party API, built by pure code and
//! sent by the Worker, and the policy for retrying it. Headers carry
//! credentials, so Debug hides them.

pub struct HttpCall {
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl HttpCall {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl std::fmt::Debug for HttpCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(k, _)| *k).collect();
        write!(f, "HttpCall(POST {}, headers {names:?}, <body>)", self.url)
    }
}

/// Whether a success body is a JSON object with a non-empty string `field`:
/// a 2xx without one is not proof that the provider took the message.
pub fn names_a(body: &str, field: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get(field)?.as_str().map(|s| !s.is_empty()))
        .unwrap_or(false)
}

/// How one attempt ended, as the retry policy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Answered {
        status: u16,
        retry_after: Option<String>,
    },
    /// Refused or reset before any answer.
    ConnectionFailed,
    TimedOut,
    /// The request could not even be built: retrying cannot help.
    NotSent,
}

pub const BACKOFF_MS: u64 = 250;
/// A provider asking for a longer pause than this gets no retry: the
/// client is waiting, and it can retry later itself.
pub const MAX_RETRY_AFTER_MS: u64 = 2_000;
/// The least time a retry must have left before the deadline to be worth it.
pub const MIN_RETRY_BUDGET_MS: u64 = 250;

/// The pause before the single retry a transient failure gets, or `None`.
/// 5xx, 429 and a dropped connection are transient. A timeout is not: the
/// provider may still deliver, and the time budget is spent anyway. Every
/// attempt shares one deadline, `budget_ms` after the first began.
pub fn retry_delay(attempt: &Attempt, elapsed_ms: u64, budget_ms: u64) -> Option<u64> {
    let delay = match attempt {
        Attempt::Answered {
            status: 429,
            retry_after,
        } => match retry_after.as_deref().and_then(delay_seconds) {
            Some(secs) if secs.saturating_mul(1_000) > MAX_RETRY_AFTER_MS => return None,
            Some(secs) => (secs * 1_000).max(BACKOFF_MS),
            // Absent, or an HTTP date: the usual short pause.
            None => BACKOFF_MS,
        },
        Attempt::Answered { status, .. } if *status >= 500 => BACKOFF_MS,
        Attempt::ConnectionFailed => BACKOFF_MS,
        Attempt::Answered { .. } | Attempt::TimedOut | Attempt::NotSent => return None,
    };
    (elapsed_ms + delay + MIN_RETRY_BUDGET_MS <= budget_ms).then_some(delay)
}

/// `Retry-After` as delay-seconds; too many digits to count is as good as forever.
fn delay_seconds(value: &str) -> Option<u64> {
    let v = value.trim();
    (!v.is_empty() && v.bytes().all(|b| b.is_ascii_digit())).then(|| v.parse().unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(status: u16, retry_after: Option<&str>) -> Attempt {
        Attempt::Answered {
            status,
            retry_after: retry_after.map(str::to_owned),
        }
    }

    #[test]
    fn a_success_body_must_name_the_message() {
        assert!(names_a(r#"{"id": "4ef9a417"}"#, "id"));
        for garbage in [
            r#"{"id": ""}"#,
            r#"{"id": 5}"#,
            "{not json",
            "",
            "[]",
            r#"{"ok": true}"#,
        ] {
            assert!(!names_a(garbage, "id"), "{garbage}");
        }
    }

    #[test]
    fn transient_failures_get_one_short_pause() {
        assert_eq!(
            retry_delay(&answered(500, None), 10, 5_000),
            Some(BACKOFF_MS)
        );
        assert_eq!(
            retry_delay(&answered(503, None), 10, 5_000),
            Some(BACKOFF_MS)
        );
        assert_eq!(
            retry_delay(&Attempt::ConnectionFailed, 10, 5_000),
            Some(BACKOFF_MS)
        );
        assert_eq!(
            retry_delay(&answered(429, None), 10, 5_000),
            Some(BACKOFF_MS)
        );
        assert_eq!(
            retry_delay(&answered(429, Some("1")), 10, 5_000),
            Some(1_000)
        );
        assert_eq!(
            retry_delay(&answered(429, Some("0")), 10, 5_000),
            Some(BACKOFF_MS)
        );
        assert_eq!(
            retry_delay(
                &answered(429, Some("Wed, 21 Oct 2015 07:28:00 GMT")),
                10,
                5_000
            ),
            Some(BACKOFF_MS)
        );
    }

    #[test]
    fn refusals_timeouts_and_long_pauses_are_final() {
        for final_ in [
            answered(400, None),
            answered(401, None),
            answered(422, None),
            answered(429, Some("3")),
            answered(429, Some("99999999999999999999")),
            Attempt::TimedOut,
            Attempt::NotSent,
        ] {
            assert_eq!(retry_delay(&final_, 10, 5_000), None, "{final_:?}");
        }
    }

    #[test]
    fn a_retry_must_fit_before_the_deadline() {
        let e = answered(500, None);
        assert_eq!(retry_delay(&e, 4_000, 5_000), Some(BACKOFF_MS));
        assert_eq!(retry_delay(&e, 4_600, 5_000), None);
        assert_eq!(retry_delay(&answered(429, Some("2")), 100, 2_000), None);
    }
}
