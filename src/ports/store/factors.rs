//! Second factors: authenticator apps (TOTP), their recovery codes, and
//! the tickets of sign-ins that wait for a second step.

use super::{NewSession, User};
use crate::domain::sign_in_budget::FailureBudget;
use crate::error::ApiResult;

/// An account's authenticator app as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpFactor {
    /// The sealed secret (`domain::sealed::Sealed`'s stored form).
    pub sealed: String,
    /// A first right code confirmed it; until then it guards nothing.
    pub confirmed: bool,
    /// The last step a code was accepted for (0: none).
    pub last_step: u64,
}

/// A guess at an account's second factor, counted against the account's
/// budget before it is compared (`domain::sign_in_budget`'s rules).
#[derive(Debug, Clone, Default)]
pub struct FactorClaim {
    /// The account's second factor is locked for this many more seconds:
    /// nothing was counted, and no guess may be compared.
    pub locked_for: Option<u64>,
    pub factor: Option<TotpFactor>,
}

/// A ticket's second step, claimed: the guess counted on the ticket and
/// on the account.
#[derive(Debug, Clone)]
pub struct TicketClaim {
    pub user: User,
    /// How the first factor was proven (`amr`).
    pub amr: String,
    /// The ticket's guesses, this one included; past the budget the
    /// ticket is spent and nothing may be compared.
    pub attempts: u32,
    pub claim: FactorClaim,
}

/// A sign-in's ticket for its second step, filed instead of the session
/// when the account has a second factor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTicket {
    pub token_hash: String,
    pub expires_at: u64,
}

/// What proves a second step, as the store checks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactorProof<'a> {
    /// The authenticator's code was right for this step, which must be
    /// after the last one used.
    Step(u64),
    /// A recovery code's digest, which must be unused.
    Recovery(&'a str),
}

/// An account's second factors, for its account page and `/v1/me`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FactorSummary {
    pub totp: bool,
    pub recovery_codes_left: u32,
}

#[allow(async_fn_in_trait)]
pub trait FactorStore {
    /// The account's authenticator and its second factors' state.
    async fn factor_summary(&self, user_id: &str)
        -> ApiResult<(Option<TotpFactor>, FactorSummary)>;
    /// Files a pending authenticator secret, replacing a pending one;
    /// `false`, changing nothing, if a confirmed one exists.
    async fn begin_totp(&self, user_id: &str, sealed: &str, now: u64) -> ApiResult<bool>;
    /// Counts a guess at the account's second factor unless it is
    /// locked, and reads the authenticator, in one transaction.
    async fn claim_factor_attempt(
        &self,
        user_id: &str,
        budget: FailureBudget,
        now: u64,
    ) -> ApiResult<FactorClaim>;
    /// Confirms the pending authenticator `sealed` (still the pending one)
    /// at `step`, and replaces the recovery codes with `digests`, in one
    /// transaction; `false`, changing nothing, otherwise.
    async fn confirm_totp(
        &self,
        user_id: &str,
        sealed: &str,
        step: u64,
        digests: &[String],
        now: u64,
    ) -> ApiResult<bool>;
    /// Replaces the recovery codes with `digests`, if `step` is after the
    /// last one used (which it becomes) of a confirmed authenticator.
    async fn replace_recovery_codes(
        &self,
        user_id: &str,
        step: u64,
        digests: &[String],
        now: u64,
    ) -> ApiResult<bool>;
    /// Removes the authenticator and the recovery codes, if `proof` holds.
    async fn remove_totp(&self, user_id: &str, proof: FactorProof<'_>, now: u64)
        -> ApiResult<bool>;
    /// Claims a guess at the ticket `ticket_hash`'s second step, if it is
    /// live and was issued `to` whom the caller is: counted on the ticket
    /// (up to `max_attempts + 1`) and, while within that, on the account.
    async fn claim_ticket_attempt(
        &self,
        ticket_hash: &str,
        issued_to: &str,
        max_attempts: u32,
        budget: FailureBudget,
        now: u64,
    ) -> ApiResult<Option<TicketClaim>>;
    /// In one transaction, if the ticket is live and `proof` holds: spends
    /// the proof, creates `session` (for whom the ticket was issued),
    /// resets the account's failures and deletes the ticket. The recovery
    /// codes left, `None` if nothing was done.
    async fn complete_ticket(
        &self,
        ticket_hash: &str,
        proof: FactorProof<'_>,
        session: &NewSession,
        now: u64,
    ) -> ApiResult<Option<u32>>;
}
