//! Time as the domain sees it: whole unix seconds from an injected clock,
//! because the wasm target has no `SystemTime::now`.

use std::time::{Duration, UNIX_EPOCH};

pub trait Clock {
    fn now(&self) -> u64;
}

/// RFC 3339 in UTC, e.g. `2026-11-24T21:08:00Z`.
pub fn rfc3339(unix_secs: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(unix_secs)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_seconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_000_000), "2026-11-18T11:06:40Z");
    }
}
