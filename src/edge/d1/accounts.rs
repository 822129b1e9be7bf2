//! Accounts and their codes in D1: sign-up, sign-in, verification, reset.

use super::*;

use crate::domain::code::{CodeKey, CORE_SCOPE};
use crate::domain::email::Email;
use crate::domain::sign_in_budget::Failures;
use crate::error::{ApiError, ApiResult};
use crate::ports::limits::SendCount;
use crate::ports::store::{
    Admitted, Consumed, Effect, NewCode, NewSession, PasswordAttempt, PasswordLookup,
    PasswordStart, PendingCode, Registered, Registration, RenewedCode, Requested, User,
};
use serde::Deserialize;
use worker::wasm_bindgen::JsValue;
use worker::D1PreparedStatement;

/// Marks an unverified account contested: more than one sign-up asked for
/// the address, so a code alone no longer keeps a password (see
/// `Effect::MarkVerified`). Run by every registration, before its upsert
/// (which may create the account) and whether or not a cap or the
/// cooldown stops it: a sign-up the limits swallowed still asked.
fn contest_statement(
    d1: &D1Store,
    op: &'static str,
    email: &Email,
) -> ApiResult<D1PreparedStatement> {
    d1.stmt(
        op,
        "UPDATE users SET contested = 1 WHERE email = ?1 AND verified = 0",
        &[text(email.as_str())],
    )
}

/// A proof of the address by a code anyone could have asked for, on an
/// unverified account (`who`, SQL over `users` with `?3`): it ends
/// whatever was set before the proof, every session and then the
/// password, and marks the address verified. Guarded by `CODE_LIVE`, with
/// the guard's parameters `?1` and `?2` in `args`.
fn prove_address(
    store: &D1Store,
    who: &str,
    args: &[JsValue],
) -> ApiResult<Vec<D1PreparedStatement>> {
    const OP: &str = "consume_code";
    Ok(vec![
        store.stmt(
            OP,
            &format!(
                "DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE {who} AND verified = 0) AND {CODE_LIVE}"
            ),
            args,
        )?,
        store.stmt(
            OP,
            &format!(
                "UPDATE users SET verified = 1, password_hash = '', updated_at = ?2 WHERE {who} AND verified = 0 AND {CODE_LIVE}"
            ),
            args,
        )?,
    ])
}

/// A right first factor's two statements, one of which takes: the
/// session if the account has no confirmed second factor, else its ticket.
/// `?1` is the account's id; `guard` (over `binds`, `?1` first) must
/// hold as well. Each returns its token hash when it inserted.
fn admit_statements(
    store: &D1Store,
    op: &'static str,
    guard: &str,
    binds: &[JsValue],
    s: &NewSession,
) -> ApiResult<Vec<D1PreparedStatement>> {
    let n = binds.len();
    let mut session = binds.to_vec();
    session.extend([
        text(&s.token_hash),
        number(s.now),
        number(s.expires_at),
        text(s.issued_to.as_str()),
        text(&s.amr),
    ]);
    let second =
        "EXISTS (SELECT 1 FROM totp_factors WHERE user_id = ?1 AND confirmed_at IS NOT NULL)";
    let mut statements = vec![store.stmt(
        op,
        &format!(
            "INSERT INTO sessions (token_hash, user_id, created_at, expires_at, issued_to, amr)
             SELECT ?{a}, ?1, ?{b}, ?{c}, ?{d}, ?{e} WHERE {guard} AND NOT {second}
             RETURNING token_hash",
            a = n + 1,
            b = n + 2,
            c = n + 3,
            d = n + 4,
            e = n + 5,
        ),
        &session,
    )?];
    if let Some(t) = &s.ticket {
        let mut ticket = binds.to_vec();
        ticket.extend([
            text(&t.token_hash),
            number(s.now),
            number(t.expires_at),
            text(s.issued_to.as_str()),
            text(&s.amr),
        ]);
        statements.push(store.stmt(
            op,
            &format!(
                "INSERT INTO mfa_tickets (token_hash, user_id, created_at, expires_at, issued_to, amr)
                 SELECT ?{a}, ?1, ?{b}, ?{c}, ?{d}, ?{e} WHERE {guard} AND {second}
                 RETURNING token_hash",
                a = n + 1,
                b = n + 2,
                c = n + 3,
                d = n + 4,
                e = n + 5,
            ),
            &ticket,
        )?);
    }
    Ok(statements)
}

/// What `admit_statements` for `s`, starting at statement `i`, did.
fn admitted(results: &Results, i: usize, s: &NewSession) -> ApiResult<Option<Admitted>> {
    if results.returned(i)? {
        return Ok(Some(Admitted::Session));
    }
    match s.ticket.is_some() && results.returned(i + 1)? {
        true => Ok(Some(Admitted::SecondStep)),
        false => Ok(None),
    }
}

impl AccountStore for D1Store {
    async fn begin_password_login(&self, a: &PasswordAttempt<'_>) -> ApiResult<PasswordStart> {
        const OP: &str = "begin_password_login";
        #[derive(Deserialize)]
        struct Row {
            id: Option<String>,
            email: Option<String>,
            password_hash: Option<String>,
            verified: Option<f64>,
            created_at: Option<f64>,
            decoy: Option<String>,
        }
        #[derive(Deserialize)]
        struct State {
            failures: f64,
            last_at: f64,
        }
        // `domain::sign_in_budget` in SQL: ?1 the address's pseudonym, ?2
        // now, ?3 the window, ?4 the failures before a lock. The lock of a
        // stored count; the attempt is counted unless the address is locked
        // (then nothing is returned), and the count starts over after a
        // quiet window past the lock.
        let lock = lock_secs_sql("failures", "?3", "?4");
        let budget = [
            text(a.address_hash),
            number(a.now),
            number(a.budget.window_secs),
            number(a.budget.max.into()),
        ];
        let count = self.stmt(
            OP,
            &format!(
                "INSERT INTO login_failures (address_hash, failures, last_at) VALUES (?1, 1, ?2)
                 ON CONFLICT (address_hash) DO UPDATE SET
                   failures = CASE WHEN ?2 >= last_at + {lock} + ?3 THEN 1 ELSE failures + 1 END,
                   last_at = ?2
                 WHERE NOT (failures >= ?4 AND ?2 < last_at + {lock})
                 RETURNING failures"
            ),
            &budget,
        )?;
        let state = self.stmt(
            OP,
            "SELECT failures, last_at FROM login_failures WHERE address_hash = ?1",
            &[text(a.address_hash)],
        )?;
        // One row always: the account if there is one, and the decoy, the
        // first stored hash at or after a row picked by the seed.
        let lookup = self.stmt(
            OP,
            "SELECT u.id AS id, u.email AS email, u.password_hash AS password_hash, u.verified AS verified, u.created_at AS created_at,
               COALESCE(
                 (SELECT password_hash FROM users
                   WHERE rowid > ?2 % (SELECT MAX(rowid) FROM users) AND password_hash <> ''
                   ORDER BY rowid LIMIT 1),
                 (SELECT password_hash FROM users WHERE password_hash <> '' ORDER BY rowid LIMIT 1)
               ) AS decoy
             FROM (SELECT 1) LEFT JOIN users u ON u.email = ?1",
            &[text(a.email.as_str()), number(a.decoy_seed.into())],
        )?;
        let decoy = self.code_statement(
            OP,
            &a.decoy_code,
            a.attempts_window_secs,
            "1",
            vec![],
            OnLive::Keep,
        )?;
        let r = self.batch(OP, vec![count, state, lookup, decoy]).await?;
        let locked_for = match r.returned(0)? {
            true => None,
            false => {
                let s = r.rows::<State>(1)?.into_iter().next().ok_or_else(|| {
                    ApiError::storage("d1 begin_password_login", "no count after the upsert")
                })?;
                let failures = Failures {
                    count: s.failures as u32,
                    last_at: s.last_at as u64,
                };
                // Locked, or it would have been counted: at least a second.
                Some(a.budget.locked_for(failures, a.now).unwrap_or(1))
            }
        };
        let Some(row) = r.rows::<Row>(2)?.into_iter().next() else {
            return Ok(PasswordStart {
                locked_for,
                ..PasswordStart::default()
            });
        };
        let user = match (row.id, row.email, row.password_hash) {
            (Some(id), Some(email), Some(password_hash)) => Some(User::from(UserRow {
                id,
                email,
                password_hash,
                verified: row.verified.unwrap_or(0.0),
                created_at: row.created_at.unwrap_or(0.0),
            })),
            _ => None,
        };
        Ok(PasswordStart {
            locked_for,
            lookup: PasswordLookup {
                user,
                decoy: row.decoy,
            },
        })
    }

    async fn register(&self, r: &Registration<'_>) -> ApiResult<Registered> {
        const OP: &str = "register";
        #[derive(Deserialize)]
        struct Outcome {
            verified: f64,
            ours: f64,
        }
        let email = r.email.as_str();
        let (guard, guard_args) = send_guard(r.count, 5);
        let mut upsert_args = vec![
            text(r.user_id),
            text(email),
            text(r.password_hash),
            number(r.code.now),
        ];
        upsert_args.extend(guard_args);
        // A registration replaces an unverified account's password only
        // when that account's verification code is no longer live; the
        // account keeps its creation time, which the cleanup counts from.
        let stale = format!(
            "NOT EXISTS (SELECT 1 FROM codes WHERE scope = '{CORE_SCOPE}' AND channel = 'email' AND purpose = 'verify_email'
               AND address = excluded.email AND expires_at > excluded.updated_at)"
        );
        let upsert = self.stmt(
            OP,
            &format!(
                "INSERT INTO users (id, email, password_hash, verified, created_at, updated_at)
                 SELECT ?1, ?2, ?3, 0, ?4, ?4 WHERE {guard}
                 ON CONFLICT (email) DO UPDATE SET
                   password_hash = CASE WHEN {stale} THEN excluded.password_hash ELSE users.password_hash END,
                   updated_at = excluded.updated_at
                 WHERE users.verified = 0"
            ),
            &upsert_args,
        )?;
        // The code only if the account now holds this request's hash (its
        // salt makes it unique): a code never verifies someone else's password.
        // A verified account gets it too, never mailed and bound to a hash
        // the account does not hold, so it can never match: every address
        // then has a pending code to guess at, and a wrong guess answers
        // alike (attempts left included) whether or not it has an account.
        // Capped, nothing is filed, whatever the account: the guard again.
        let (code_guard, mut code_args) = send_guard(r.count, 11);
        code_args.insert(0, text(r.password_hash));
        let code = self.code_statement(
            OP,
            &r.code,
            r.attempts_window_secs,
            &format!("EXISTS (SELECT 1 FROM users WHERE email = ?4 AND (verified = 1 OR password_hash = ?10)) AND {code_guard}"),
            code_args,
            OnLive::KeepClock,
        )?;
        let outcome = self.stmt(
            OP,
            "SELECT verified, password_hash = ?2 AS ours FROM users WHERE email = ?1",
            &[text(email), text(r.password_hash)],
        )?;
        let count = self.count_statement(OP, r.count)?;
        let results = self
            .batch(
                OP,
                vec![
                    contest_statement(self, OP, r.email)?,
                    upsert,
                    code,
                    outcome,
                    count,
                ],
            )
            .await?;
        if !results.returned(4)? {
            return Ok(Registered::Capped);
        }
        let found = results
            .rows::<Outcome>(3)?
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::storage("d1 register", "no account after the upsert"))?;
        Ok(match (found.verified != 0.0, found.ours != 0.0) {
            (true, _) => Registered::AlreadyVerified,
            (false, true) => Registered::CodeIssued,
            (false, false) => Registered::PendingKept,
        })
    }

    async fn contest_sign_up(&self, email: &Email) -> ApiResult<()> {
        const OP: &str = "contest_sign_up";
        let statement = contest_statement(self, OP, email)?;
        self.batch(OP, vec![statement]).await?;
        Ok(())
    }

    async fn after_password_login(
        &self,
        user_id: &str,
        verified_hash: &str,
        rehash: Option<&str>,
        session: &NewSession,
        address_hash: &str,
    ) -> ApiResult<Option<Admitted>> {
        const OP: &str = "after_password_login";
        let mut statements = Vec::new();
        if let Some(fresh) = rehash {
            statements.push(self.stmt(
                OP,
                "UPDATE users SET password_hash = ?3 WHERE id = ?1 AND password_hash = ?2",
                &[text(user_id), text(verified_hash), text(fresh)],
            )?);
        }
        // The hash the session depends on: the fresh one, when this batch
        // just wrote it.
        let current = rehash.unwrap_or(verified_hash);
        let created = statements.len();
        let admit = admit_statements(
            self,
            OP,
            "EXISTS (SELECT 1 FROM users WHERE id = ?1 AND password_hash = ?2)",
            &[text(user_id), text(current)],
            session,
        )?;
        statements.extend(admit);
        // A success forgets the failures before it: the password was right,
        // whether the session or its second step comes next.
        let tickets = session
            .ticket
            .as_ref()
            .map(|t| t.token_hash.as_str())
            .unwrap_or("");
        statements.push(self.stmt(
            OP,
            "DELETE FROM login_failures WHERE address_hash = ?1
               AND (EXISTS (SELECT 1 FROM sessions WHERE token_hash = ?2)
                    OR EXISTS (SELECT 1 FROM mfa_tickets WHERE token_hash = ?3))",
            &[text(address_hash), text(&session.token_hash), text(tickets)],
        )?);
        let results = self.batch(OP, statements).await?;
        admitted(&results, created, session)
    }

    async fn renew_code(&self, c: &RenewedCode) -> ApiResult<bool> {
        #[derive(Deserialize)]
        struct Renewed {
            #[allow(dead_code)]
            id: String,
        }
        let row: Option<Renewed> = self
            .write(
                "renew_code",
                &format!(
                    "UPDATE codes SET id = ?5, digest = ?6
                     WHERE scope = '{CORE_SCOPE}' AND channel = 'email' AND purpose = 'verify_email' AND address = ?1
                       AND expires_at > ?2 AND attempts <= ?3
                       AND EXISTS (SELECT 1 FROM users WHERE email = ?1 AND verified = 0 AND password_hash = ?4)
                     RETURNING id"
                ),
                &[
                    text(&c.email),
                    number(c.now),
                    number(c.max_attempts.into()),
                    text(&c.password_hash),
                    text(&c.id),
                    text(&c.digest),
                ],
            )
            .await?;
        Ok(row.is_some())
    }

    async fn request_code(
        &self,
        email: &Email,
        c: &NewCode<'_>,
        attempts_window_secs: u64,
        count: &SendCount,
    ) -> ApiResult<Requested> {
        const OP: &str = "request_code";
        let user = self.stmt(
            OP,
            &format!("SELECT {USER_COLUMNS} FROM users WHERE email = ?1"),
            &[text(email.as_str())],
        )?;
        let (guard, guard_args) = send_guard(count, 10);
        let code = self.code_statement(
            OP,
            c,
            attempts_window_secs,
            &guard,
            guard_args,
            OnLive::Replace,
        )?;
        let count = self.count_statement(OP, count)?;
        let results = self.batch(OP, vec![user, code, count]).await?;
        Ok(Requested {
            user: results
                .rows::<UserRow>(0)?
                .into_iter()
                .next()
                .map(User::from),
            issued: results.returned(2)?,
        })
    }

    async fn withdraw_registration(
        &self,
        code_id: &str,
        email: &Email,
        password_hash: &str,
    ) -> ApiResult<()> {
        const OP: &str = "withdraw_registration";
        let statements = vec![
            self.stmt(OP, "DELETE FROM codes WHERE id = ?1", &[text(code_id)])?,
            self.stmt(
                OP,
                "DELETE FROM users WHERE email = ?1 AND password_hash = ?2 AND verified = 0",
                &[text(email.as_str()), text(password_hash)],
            )?,
        ];
        self.batch(OP, statements).await.map(drop)
    }

    async fn claim_attempt(
        &self,
        key: &CodeKey<'_>,
        max_attempts: u32,
    ) -> ApiResult<Option<PendingCode>> {
        let row: Option<CodeRow> = self
            .write(
                "claim_attempt",
                &format!(
                    "UPDATE codes SET attempts = MIN(attempts + 1, ?5 + 1)
                     WHERE scope = ?1 AND channel = ?2 AND address = ?3 AND purpose = ?4
                     RETURNING id, digest, attempts, expires_at, test,
                       (SELECT password_hash FROM users WHERE users.email = codes.address
                          AND codes.scope = '{CORE_SCOPE}' AND codes.channel = 'email') AS account_password,
                       (SELECT id FROM users WHERE users.email = codes.address
                          AND codes.scope = '{CORE_SCOPE}' AND codes.channel = 'email') AS account_id"
                ),
                &[
                    text(key.scope),
                    text(key.channel.as_str()),
                    text(key.address),
                    text(key.purpose),
                    number(max_attempts.into()),
                ],
            )
            .await?;
        Ok(row.map(PendingCode::from))
    }

    async fn consume_code(
        &self,
        code_id: &str,
        effect: Effect<'_>,
        now: u64,
    ) -> ApiResult<Consumed> {
        const OP: &str = "consume_code";
        let guard = [text(code_id), number(now)];
        let with = |extra: &[JsValue]| -> Vec<JsValue> {
            guard.iter().cloned().chain(extra.iter().cloned()).collect()
        };
        // Whether the first statement tells if the password was kept.
        let mut kept_at = None;
        // Where a sign-in's session and ticket statements start.
        let mut admit_at = None;
        // One batch is one transaction: the effect lands if and only if the
        // final DELETE finds the code, which exactly one caller can do.
        let mut statements = match &effect {
            Effect::Nothing => vec![],
            Effect::SignIn { user_id, session } => {
                let mut statements = prove_address(self, "id = ?3", &with(&[text(user_id)]))?;
                // `admit_statements` binds ?1 and ?2 as the user and the
                // guard: here the user id, and the code's id to be live.
                admit_at = Some(statements.len());
                statements.extend(admit_statements(
                    self,
                    OP,
                    "EXISTS (SELECT 1 FROM codes WHERE id = ?2 AND expires_at > ?3)",
                    &[text(user_id), text(code_id), number(now)],
                    session,
                )?);
                statements
            }
            Effect::MarkVerified { email, keep } => {
                let mut statements = Vec::new();
                // The password stays while it is still the account's and,
                // unless the request proved it, the sign-up uncontested;
                // otherwise the proof of the address ends it, as below.
                if let Some(k) = keep {
                    kept_at = Some(0);
                    statements.push(self.stmt(
                        OP,
                        &format!(
                            "UPDATE users SET verified = 1, updated_at = ?2
                             WHERE email = ?3 AND password_hash = ?4 AND verified = 0 AND (contested = 0 OR ?5 = 1)
                               AND {CODE_LIVE}
                             RETURNING id"
                        ),
                        &with(&[text(email.as_str()), text(&k.password_hash), number(u64::from(k.proven))]),
                    )?);
                    // The sign-up's browser is signed in only where the
                    // statement just above kept the password: `changes()`
                    // is that UPDATE's count (one batch runs its statements
                    // in order, on one connection), so an account that was
                    // verified before never gets a session here.
                    if let Some(s) = &k.session {
                        statements.push(self.stmt(
                            OP,
                            &format!(
                                "INSERT INTO sessions (token_hash, user_id, created_at, expires_at, issued_to, amr)
                                 SELECT ?5, id, ?2, ?6, ?7, ?8 FROM users
                                 WHERE changes() = 1 AND email = ?3 AND password_hash = ?4 AND verified = 1 AND {CODE_LIVE}
                                   AND NOT EXISTS (SELECT 1 FROM totp_factors f WHERE f.user_id = users.id AND f.confirmed_at IS NOT NULL)"
                            ),
                            &with(&[
                                text(email.as_str()),
                                text(&k.password_hash),
                                text(&s.token_hash),
                                number(s.expires_at),
                                text(s.issued_to.as_str()),
                                text(&s.amr),
                            ]),
                        )?);
                    }
                }
                statements.extend(prove_address(self, "email = ?3", &with(&[text(email.as_str())]))?);
                statements
            }
            Effect::ResetPassword { email, password_hash, address_hash } => vec![
                self.stmt(
                    OP,
                    &format!(
                        "DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE email = ?3) AND {CODE_LIVE}"
                    ),
                    &with(&[text(email.as_str())]),
                )?,
                // A sign-in waiting for its second step started from the
                // old password or an old code: it ends with the sessions.
                self.stmt(
                    OP,
                    &format!(
                        "DELETE FROM mfa_tickets WHERE user_id = (SELECT id FROM users WHERE email = ?3) AND {CODE_LIVE}"
                    ),
                    &with(&[text(email.as_str())]),
                )?,
                // The apps' grants too: their refresh tokens stop, and so
                // does userinfo for their access tokens.
                self.stmt(
                    OP,
                    &format!(
                        "DELETE FROM oauth_grants WHERE user_id = (SELECT id FROM users WHERE email = ?3) AND {CODE_LIVE}"
                    ),
                    &with(&[text(email.as_str())]),
                )?,
                self.stmt(
                    OP,
                    &format!(
                        "UPDATE users SET password_hash = ?4, verified = 1, updated_at = ?2 WHERE email = ?3 AND {CODE_LIVE}"
                    ),
                    &with(&[text(email.as_str()), text(password_hash)]),
                )?,
                self.stmt(
                    OP,
                    &format!("DELETE FROM login_failures WHERE address_hash = ?3 AND {CODE_LIVE}"),
                    &with(&[text(address_hash)]),
                )?,
            ],
        };
        statements.push(self.stmt(
            OP,
            "DELETE FROM codes WHERE id = ?1 AND expires_at > ?2 RETURNING id",
            &guard,
        )?);
        let last = statements.len() - 1;
        let results = self.batch(OP, statements).await?;
        if !results.returned(last)? {
            return Ok(Consumed::Lost);
        }
        let password_kept = match kept_at {
            Some(i) => results.returned(i)?,
            None => false,
        };
        let admitted = match (admit_at, &effect) {
            (Some(i), Effect::SignIn { session, .. }) => admitted(&results, i, session)?,
            _ => None,
        };
        Ok(Consumed::Applied {
            password_kept,
            admitted,
        })
    }
}
