//! Sessions: the pages' browser sessions and the apps' bearer tokens.

use super::{NewTicket, User};
use crate::domain::session::{Audience, Presented};
use crate::error::ApiResult;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    pub token_hash: String,
    pub now: u64,
    pub expires_at: u64,
    pub issued_to: Audience,
    /// How the sign-in was made, as an ID token's `amr` says it (RFC 8176):
    /// `pwd` for a password, `otp` for an emailed code; space-separated
    /// when a second factor was proven too (`pwd otp mfa`).
    pub amr: String,
    /// For a first factor: the ticket filed instead of the session if the
    /// account has a second factor, decided in the transaction that would
    /// create the session (`None` for a sign-in already complete).
    pub ticket: Option<NewTicket>,
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
    /// The account of the live session `token_hash`, presented as
    /// `presented` allows, when its sign-in was made at `since` or later
    /// (`prompt=login`, `max_age`, a fresh sign-in before a change of the
    /// second factor).
    async fn session_since(
        &self,
        token_hash: &str,
        now: u64,
        since: u64,
        presented: Presented,
    ) -> ApiResult<Option<User>>;
    /// Ends the session, if it may be `presented` that way; returns its
    /// account's address, `None` if there was no such session.
    async fn delete_session(
        &self,
        token_hash: &str,
        presented: Presented,
    ) -> ApiResult<Option<String>>;
}
