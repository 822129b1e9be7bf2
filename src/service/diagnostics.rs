//! Failures a flow absorbs so that the client gets the answer it earned:
//! a storage write that fails after a message went out, or a stored hash
//! that cannot be used. The caller logs each one with the request id.

use std::cell::RefCell;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The log line's `event`, e.g. `cooldown_write_failed`.
    pub event: &'static str,
    /// What went wrong, for the operator; never a secret or an address.
    pub detail: String,
}

/// The diagnostics of one request, collected as the flow runs.
#[derive(Debug, Default)]
pub struct Diagnostics(RefCell<Vec<Diagnostic>>);

impl Diagnostics {
    pub fn record(&self, event: &'static str, detail: impl Into<String>) {
        self.0.borrow_mut().push(Diagnostic {
            event,
            detail: detail.into(),
        });
    }

    pub fn take(&self) -> Vec<Diagnostic> {
        self.0.take()
    }
}
