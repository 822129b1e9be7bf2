//! Test recipients: an exact email address or phone number per API key
//! with a fixed code, for app-store review and the apps' own CI. A send to
//! one files a code whose digest is the fixed code's and sends nothing; the
//! guess budget and the expiry hold as for any code. The fixed code is kept
//! only as its HMAC under the pepper (`Pepper::test_code_digest`).

use crate::domain::channel::Channel;
use crate::domain::code::Code;
use crate::domain::recipient::Recipient;
use crate::error::ApiError;

/// How many test recipients one key may have: they are for review and CI,
/// not a second address book.
pub const MAX_PER_KEY: u32 = 50;

/// What `POST /v1/admin/api-keys/{id}/test-recipients` asks for.
#[derive(Debug, Clone)]
pub struct NewTestRecipient {
    pub to: Recipient,
    pub code: Code,
}

impl NewTestRecipient {
    /// The code has the shape of any code the generic API issues (4 to 10
    /// letters or digits, case-insensitive).
    pub fn parse(channel: Channel, to: &str, code: &str) -> Result<Self, ApiError> {
        Ok(Self {
            to: Recipient::parse(channel, to)?,
            code: Code::parse_any(code)?,
        })
    }
}

/// A test recipient as the list shows it: never its code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRecipient {
    pub channel: Channel,
    pub address: String,
    pub created_at: u64,
}
