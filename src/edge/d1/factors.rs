//! Second factors in D1: authenticator apps, recovery codes, and the
//! tickets of sign-ins waiting for their second step.

use super::*;

use crate::domain::sign_in_budget::{FailureBudget, Failures};
use crate::error::{ApiError, ApiResult};
use crate::ports::store::{
    FactorClaim, FactorProof, FactorStore, FactorSummary, NewSession, TicketClaim, TotpFactor, User,
};
use serde::Deserialize;
use worker::wasm_bindgen::JsValue;
use worker::D1PreparedStatement;

#[derive(Deserialize)]
struct FactorRow {
    secret_sealed: Option<String>,
    confirmed_at: Option<f64>,
    last_step: Option<f64>,
    failures: Option<f64>,
    failed_at: Option<f64>,
}

impl FactorRow {
    fn factor(&self) -> Option<TotpFactor> {
        Some(TotpFactor {
            sealed: self.secret_sealed.clone()?,
            confirmed: self.confirmed_at.is_some(),
            last_step: self.last_step.unwrap_or(0.0) as u64,
        })
    }

    /// The lock, if the budget's count was not taken (`counted` false).
    fn claim(&self, counted: bool, budget: FailureBudget, now: u64) -> FactorClaim {
        let factor = self.factor();
        let locked_for = match (counted, &factor) {
            (false, Some(_)) => {
                let failures = Failures {
                    count: self.failures.unwrap_or(0.0) as u32,
                    last_at: self.failed_at.unwrap_or(0.0) as u64,
                };
                // Locked, or it would have been counted: at least a second.
                Some(budget.locked_for(failures, now).unwrap_or(1))
            }
            _ => None,
        };
        FactorClaim { locked_for, factor }
    }
}

const FACTOR_COLUMNS: &str =
    "f.secret_sealed AS secret_sealed, f.confirmed_at AS confirmed_at, f.last_step AS last_step,
     f.failures AS failures, f.failed_at AS failed_at";

/// Counts a failure on the authenticator of the account `who` (an SQL
/// expression) unless it is locked, `domain::sign_in_budget`'s rules:
/// `?1` now, `?2` the window, `?3` the failures before a lock.
fn count_failure(
    store: &D1Store,
    op: &'static str,
    who: &str,
    args: &[JsValue],
) -> ApiResult<D1PreparedStatement> {
    let lock = lock_secs_sql("failures", "?2", "?3");
    store.stmt(
        op,
        &format!(
            "UPDATE totp_factors SET
               failures = CASE WHEN ?1 >= failed_at + {lock} + ?2 THEN 1 ELSE failures + 1 END,
               failed_at = ?1
             WHERE user_id = {who} AND NOT (failures >= ?3 AND ?1 < failed_at + {lock})
             RETURNING failures"
        ),
        args,
    )
}

fn budget_args(now: u64, budget: FailureBudget) -> [JsValue; 3] {
    [
        number(now),
        number(budget.window_secs),
        number(budget.max.into()),
    ]
}

/// New recovery codes for `?1` at `?2` from the JSON array `?3`, if the
/// statement before changed a row; then the older ones go, if these came.
fn replace_codes(
    store: &D1Store,
    op: &'static str,
    user_id: &str,
    digests: &[String],
    now: u64,
) -> ApiResult<Vec<D1PreparedStatement>> {
    let list =
        serde_json::to_string(digests).map_err(|e| ApiError::internal("recovery codes", e))?;
    let args = [text(user_id), number(now), text(&list)];
    Ok(vec![
        store.stmt(
            op,
            "INSERT INTO recovery_codes (user_id, digest, created_at)
             SELECT ?1, value, ?2 FROM json_each(?3) WHERE changes() = 1",
            &args,
        )?,
        store.stmt(
            op,
            "DELETE FROM recovery_codes WHERE user_id = ?1 AND changes() > 0
               AND digest NOT IN (SELECT value FROM json_each(?3))",
            &args,
        )?,
    ])
}

/// Spends `proof` for the account `who` (an SQL expression over `?1`…),
/// with `?n` and `?n+1` the proof and now: one statement that changes one
/// row if and only if the proof holds.
fn spend(
    store: &D1Store,
    op: &'static str,
    who: &str,
    mut args: Vec<JsValue>,
    proof: FactorProof<'_>,
    now: u64,
) -> ApiResult<D1PreparedStatement> {
    let (p, t) = (args.len() + 1, args.len() + 2);
    let sql = match proof {
        FactorProof::Step(step) => {
            args.push(number(step));
            format!(
                "UPDATE totp_factors SET last_step = ?{p}, failures = 0
                 WHERE user_id = {who} AND confirmed_at IS NOT NULL AND last_step < ?{p} AND ?{t} > 0"
            )
        }
        FactorProof::Recovery(digest) => {
            args.push(text(digest));
            format!(
                "UPDATE recovery_codes SET used_at = ?{t}
                 WHERE user_id = {who} AND digest = ?{p} AND used_at IS NULL
                   AND EXISTS (SELECT 1 FROM totp_factors f WHERE f.user_id = recovery_codes.user_id AND f.confirmed_at IS NOT NULL)"
            )
        }
    };
    args.push(number(now));
    store.stmt(op, &sql, &args)
}

impl FactorStore for D1Store {
    async fn factor_summary(
        &self,
        user_id: &str,
    ) -> ApiResult<(Option<TotpFactor>, FactorSummary)> {
        #[derive(Deserialize)]
        struct Row {
            #[serde(flatten)]
            factor: FactorRow,
            codes_left: f64,
        }
        let row = self
            .read_first::<Row>(
                "factor_summary",
                &format!(
                    "SELECT {FACTOR_COLUMNS},
                       (SELECT COUNT(*) FROM recovery_codes WHERE user_id = ?1 AND used_at IS NULL) AS codes_left
                     FROM (SELECT 1) LEFT JOIN totp_factors f ON f.user_id = ?1"
                ),
                &[text(user_id)],
            )
            .await?;
        let Some(row) = row else {
            return Ok((None, FactorSummary::default()));
        };
        let factor = row.factor.factor();
        let summary = FactorSummary {
            totp: factor.as_ref().is_some_and(|f| f.confirmed),
            recovery_codes_left: row.codes_left as u32,
        };
        Ok((factor, summary))
    }

    async fn begin_totp(&self, user_id: &str, sealed: &str, now: u64) -> ApiResult<bool> {
        let row: Option<serde_json::Value> = self
            .write(
                "begin_totp",
                "INSERT INTO totp_factors (user_id, secret_sealed, created_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (user_id) DO UPDATE SET
                   secret_sealed = excluded.secret_sealed, created_at = excluded.created_at
                 WHERE confirmed_at IS NULL
                 RETURNING user_id",
                &[text(user_id), text(sealed), number(now)],
            )
            .await?;
        Ok(row.is_some())
    }

    async fn claim_factor_attempt(
        &self,
        user_id: &str,
        budget: FailureBudget,
        now: u64,
    ) -> ApiResult<FactorClaim> {
        const OP: &str = "claim_factor_attempt";
        let mut args = budget_args(now, budget).to_vec();
        args.push(text(user_id));
        let count = count_failure(self, OP, "?4", &args)?;
        let read = self.stmt(
            OP,
            &format!("SELECT {FACTOR_COLUMNS} FROM totp_factors f WHERE f.user_id = ?1"),
            &[text(user_id)],
        )?;
        let r = self.batch(OP, vec![count, read]).await?;
        let counted = r.returned(0)?;
        Ok(match r.rows::<FactorRow>(1)?.into_iter().next() {
            Some(row) => row.claim(counted, budget, now),
            None => FactorClaim::default(),
        })
    }

    async fn confirm_totp(
        &self,
        user_id: &str,
        sealed: &str,
        step: u64,
        digests: &[String],
        now: u64,
    ) -> ApiResult<bool> {
        const OP: &str = "confirm_totp";
        let mut statements = vec![self.stmt(
            OP,
            "UPDATE totp_factors SET confirmed_at = ?3, last_step = ?4, failures = 0
             WHERE user_id = ?1 AND secret_sealed = ?2 AND confirmed_at IS NULL
             RETURNING user_id",
            &[text(user_id), text(sealed), number(now), number(step)],
        )?];
        statements.extend(replace_codes(self, OP, user_id, digests, now)?);
        self.batch(OP, statements).await?.returned(0)
    }

    async fn replace_recovery_codes(
        &self,
        user_id: &str,
        step: u64,
        digests: &[String],
        now: u64,
    ) -> ApiResult<bool> {
        const OP: &str = "replace_recovery_codes";
        let mut statements = vec![spend(
            self,
            OP,
            "?1",
            vec![text(user_id)],
            FactorProof::Step(step),
            now,
        )?];
        statements.extend(replace_codes(self, OP, user_id, digests, now)?);
        Ok(self.batch(OP, statements).await?.changes(0)? == 1)
    }

    async fn remove_totp(
        &self,
        user_id: &str,
        proof: FactorProof<'_>,
        now: u64,
    ) -> ApiResult<bool> {
        const OP: &str = "remove_totp";
        let who = [text(user_id)];
        let statements = vec![
            spend(self, OP, "?1", who.to_vec(), proof, now)?,
            self.stmt(
                OP,
                "DELETE FROM totp_factors WHERE user_id = ?1 AND changes() = 1 RETURNING user_id",
                &who,
            )?,
            self.stmt(
                OP,
                "DELETE FROM recovery_codes WHERE user_id = ?1 AND changes() = 1",
                &who,
            )?,
        ];
        self.batch(OP, statements).await?.returned(1)
    }

    async fn claim_ticket_attempt(
        &self,
        ticket_hash: &str,
        issued_to: &str,
        max_attempts: u32,
        budget: FailureBudget,
        now: u64,
    ) -> ApiResult<Option<TicketClaim>> {
        const OP: &str = "claim_ticket_attempt";
        #[derive(Deserialize)]
        struct Row {
            id: String,
            email: String,
            password_hash: String,
            verified: f64,
            created_at: f64,
            amr: String,
            attempts: f64,
            #[serde(flatten)]
            factor: FactorRow,
        }
        let ticket = [
            text(ticket_hash),
            number(now),
            text(issued_to),
            number(max_attempts.into()),
        ];
        let claim = self.stmt(
            OP,
            "UPDATE mfa_tickets SET attempts = MIN(attempts + 1, ?4 + 1)
             WHERE token_hash = ?1 AND expires_at > ?2 AND issued_to = ?3",
            &ticket,
        )?;
        // The account's count, while the ticket's guess was within its own.
        let mut args = budget_args(now, budget).to_vec();
        args.extend([
            text(ticket_hash),
            number(max_attempts.into()),
            text(issued_to),
        ]);
        // Only a ticket of this caller's kind counts: another's counts
        // nothing, on the ticket or on the account.
        let count = count_failure(
            self,
            OP,
            "(SELECT user_id FROM mfa_tickets WHERE token_hash = ?4 AND expires_at > ?1 AND attempts <= ?5 AND issued_to = ?6)",
            &args,
        )?;
        let read = self.stmt(
            OP,
            &format!(
                "SELECT u.id AS id, u.email AS email, u.password_hash AS password_hash, u.verified AS verified,
                   u.created_at AS created_at, t.amr AS amr, t.attempts AS attempts, {FACTOR_COLUMNS}
                 FROM mfa_tickets t JOIN users u ON u.id = t.user_id
                   LEFT JOIN totp_factors f ON f.user_id = t.user_id
                 WHERE t.token_hash = ?1 AND t.expires_at > ?2 AND t.issued_to = ?3"
            ),
            &ticket[..3],
        )?;
        let r = self.batch(OP, vec![claim, count, read]).await?;
        let counted = r.returned(1)?;
        let Some(row) = r.rows::<Row>(2)?.into_iter().next() else {
            return Ok(None);
        };
        let attempts = row.attempts as u32;
        Ok(Some(TicketClaim {
            user: User::from(UserRow {
                id: row.id,
                email: row.email,
                password_hash: row.password_hash,
                verified: row.verified,
                created_at: row.created_at,
            }),
            amr: row.amr,
            attempts,
            // A spent ticket counts nothing on the account: no lock to tell.
            claim: match attempts <= max_attempts {
                true => row.factor.claim(counted, budget, now),
                false => FactorClaim {
                    locked_for: None,
                    factor: row.factor.factor(),
                },
            },
        }))
    }

    async fn complete_ticket(
        &self,
        ticket_hash: &str,
        proof: FactorProof<'_>,
        session: &NewSession,
        now: u64,
    ) -> ApiResult<Option<u32>> {
        const OP: &str = "complete_ticket";
        let live = [text(ticket_hash), number(now)];
        let owner = "(SELECT user_id FROM mfa_tickets WHERE token_hash = ?1 AND expires_at > ?2)";
        let created = [text(ticket_hash), number(now), text(&session.token_hash)];
        let statements = vec![
            spend(self, OP, owner, live.to_vec(), proof, now)?,
            // For whom the ticket was issued, and only if the proof was spent
            // by the statement just before (`changes()` is its count).
            self.stmt(
                OP,
                "INSERT INTO sessions (token_hash, user_id, created_at, expires_at, issued_to, amr)
                 SELECT ?3, user_id, ?2, ?4, issued_to, ?5 FROM mfa_tickets
                 WHERE token_hash = ?1 AND expires_at > ?2 AND changes() = 1
                 RETURNING token_hash",
                &[
                    text(ticket_hash),
                    number(now),
                    text(&session.token_hash),
                    number(session.expires_at),
                    text(&session.amr),
                ],
            )?,
            self.stmt(
                OP,
                &format!(
                    "UPDATE totp_factors SET failures = 0 WHERE user_id = {owner}
                       AND EXISTS (SELECT 1 FROM sessions WHERE token_hash = ?3)"
                ),
                &created,
            )?,
            self.stmt(
                OP,
                "SELECT COUNT(*) AS n FROM recovery_codes WHERE used_at IS NULL
                   AND user_id = (SELECT user_id FROM sessions WHERE token_hash = ?1)",
                &[text(&session.token_hash)],
            )?,
            self.stmt(
                OP,
                "DELETE FROM mfa_tickets WHERE token_hash = ?1 AND ?2 > 0
                   AND EXISTS (SELECT 1 FROM sessions WHERE token_hash = ?3)",
                &created,
            )?,
        ];
        let r = self.batch(OP, statements).await?;
        if !r.returned(1)? {
            return Ok(None);
        }
        #[derive(Deserialize)]
        struct Left {
            n: f64,
        }
        let left = r.rows::<Left>(3)?.first().map_or(0, |l| l.n as u32);
        Ok(Some(left))
    }
}
