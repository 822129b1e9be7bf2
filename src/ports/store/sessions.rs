//! Sessions and the pages' hand-offs to apps.

use super::User;
use crate::domain::session::{Audience, Presented};
use crate::error::ApiResult;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    pub token_hash: String,
    pub now: u64,
    pub expires_at: u64,
    pub issued_to: Audience,
    /// How the sign-in was made, as an ID token's `amr` says it (RFC 8176):
    /// `pwd` for a password, `otp` for an emailed code.
    pub amr: &'static str,
}

/// A hand-off code to file for the browser session `session_hash`.
#[derive(Debug)]
pub struct NewHandoff<'a> {
    pub code_hash: &'a str,
    pub session_hash: &'a str,
    /// The app's `return_to`, normalized (`ReturnTo::url`).
    pub return_to: &'a str,
    pub challenge: Option<&'a str>,
    pub now: u64,
    pub expires_at: u64,
}

/// An app's exchange of a hand-off code: all of it one transaction.
#[derive(Debug)]
pub struct Exchange<'a> {
    pub key_hash: &'a str,
    pub code_hash: &'a str,
    /// The `return_to` the app names, normalized (`ReturnTo::normalize`).
    pub return_to: &'a str,
    /// The challenge the app's verifier answers, `None` without a verifier.
    pub challenge: Option<&'a str>,
    pub session: &'a NewSession,
}

/// A hand-off as it was filed, returned by the exchange that deleted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpentHandoff {
    pub expires_at: u64,
    pub return_to: String,
    pub challenge: Option<String>,
}

/// What an exchange found and did.
#[derive(Debug, Clone)]
pub struct Exchanged {
    /// The key exists and is not revoked. Without it nothing was touched.
    pub key_ok: bool,
    /// The hand-off the exchange deleted, if the code named one.
    pub spent: Option<SpentHandoff>,
    /// The account of the session it created: only when the code was
    /// live, for this origin and challenge, and its browser session too.
    pub user: Option<User>,
}

#[allow(async_fn_in_trait)]
pub trait SessionStore {
    /// The account of the live session `token_hash`, if it is one that
    /// may be `presented` that way (`Presented::accepts`).
    async fn session_user(
        &self,
        token_hash: &str,
        now: u64,
        presented: Presented,
    ) -> ApiResult<Option<User>>;
    /// Ends the session, if it may be `presented` that way; returns its
    /// account's address, `None` if there was no such session.
    async fn delete_session(
        &self,
        token_hash: &str,
        presented: Presented,
    ) -> ApiResult<Option<String>>;
    /// Files a hand-off code, only while the session it hands off is live
    /// and a browser's (`Audience::Browser`); `false`, writing nothing,
    /// otherwise.
    async fn file_handoff(&self, handoff: &NewHandoff<'_>) -> ApiResult<bool>;
    /// In one transaction: checks the key; if it is good, deletes the
    /// hand-off (a code is tried once, right or wrong) and, when the code
    /// was live, issued for this `return_to` and challenge, and its browser
    /// session still is, creates `exchange.session` for its account. A
    /// sign-out or a reset that ends the browser session first leaves the
    /// code worth nothing.
    async fn exchange_handoff(&self, exchange: &Exchange<'_>) -> ApiResult<Exchanged>;
}
