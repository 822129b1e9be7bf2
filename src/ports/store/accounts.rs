//! Accounts and their codes: sign-up, password and code sign-in, verification, reset.

use super::NewSession;
use crate::domain::code::CodeKey;
use crate::domain::email::Email;
use crate::domain::sign_in_budget::FailureBudget;
use crate::error::ApiResult;
use crate::ports::limits::SendCount;

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub email: String,
    /// Argon2id PHC. `None` once a code sign-in proved the address and
    /// dropped a password set before the proof: the owner sets one through
    /// a password reset.
    pub password_hash: Option<String>,
    pub verified: bool,
    pub created_at: u64,
}

/// What a password login reads: the account, and for equal timing a
/// decoy, a stored hash whose parameters the dummy hash copies (see
/// `Hasher::burn`).
#[derive(Debug, Clone, Default)]
pub struct PasswordLookup {
    pub user: Option<User>,
    pub decoy: Option<String>,
}

/// A password sign-in's first round (`Store::begin_password_login`).
#[derive(Debug, Clone)]
pub struct PasswordAttempt<'a> {
    pub email: &'a Email,
    /// The pseudonym the address's failures are counted under.
    pub address_hash: &'a str,
    /// Picks the decoy hash (`PasswordLookup::decoy`).
    pub decoy_seed: u32,
    pub budget: FailureBudget,
    pub now: u64,
    /// A verification code for the address that nobody is sent, filed
    /// only if none is live, for every sign-in alike: so a right password
    /// on an unverified account can renew its live code unseen (see
    /// `Service::password_login`).
    pub decoy_code: NewCode<'a>,
    pub attempts_window_secs: u64,
}

/// What a password sign-in's first round found and did.
#[derive(Debug, Clone, Default)]
pub struct PasswordStart {
    /// The address is locked, for this many more seconds: the attempt was
    /// not counted and the password must not be compared.
    pub locked_for: Option<u64>,
    pub lookup: PasswordLookup,
}

/// After a right password on an unverified account, once the answer is
/// out: a new code for its pending verification (`Store::renew_code`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenewedCode {
    pub email: String,
    pub id: String,
    /// Bound to `password_hash` (`Pepper::bound_code_digest`).
    pub digest: String,
    /// The account's hash the password matched.
    pub password_hash: String,
    pub now: u64,
    pub max_attempts: u32,
}

/// `register`'s one write: the account (created, or a stale unverified one
/// replaced), its verification code, and the message counted.
#[derive(Debug, Clone)]
pub struct Registration<'a> {
    pub user_id: &'a str,
    pub email: &'a Email,
    pub password_hash: &'a str,
    pub code: NewCode<'a>,
    pub attempts_window_secs: u64,
    pub count: &'a SendCount,
}

/// What `register` found and did, decided inside the transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    /// A new account, or one whose earlier registration's code had
    /// expired: the password is this request's, and so is the code.
    CodeIssued,
    /// Another registration's code is still live: nothing changed, and no
    /// code goes out that could verify this request's password.
    PendingKept,
    /// The address is verified: the account is unchanged. The code is
    /// filed as a decoy nobody is sent, bound to a hash the account does
    /// not hold, so that a guess at it answers as for any other address.
    AlreadyVerified,
    /// An hourly cap is reached: nothing was written or counted.
    Capped,
}

#[derive(Debug, Clone)]
pub struct PendingCode {
    pub id: String,
    pub digest: String,
    pub attempts: u32,
    pub expires_at: u64,
    /// For a code of the core flows: the account's password hash now, which
    /// a code bound to a password (`Pepper::bound_code_digest`) must have
    /// been issued for.
    pub account_password: Option<String>,
    /// A test recipient's code: its digest is `Pepper::test_code_digest`'s.
    pub test: bool,
    /// For a code of the core flows: the id of the address's account, if
    /// it has one, read in the same statement that claims the attempt.
    pub account_id: Option<String>,
}

/// What a request for a code of the core flows found and did, in one
/// transaction: the address's account, if any, and whether the code was
/// filed (`false` when an hourly cap is reached: nothing was written).
#[derive(Debug, Clone)]
pub struct Requested {
    pub user: Option<User>,
    pub issued: bool,
}

#[derive(Debug, Clone)]
pub struct NewCode<'a> {
    pub id: &'a str,
    pub key: CodeKey<'a>,
    pub digest: &'a str,
    pub now: u64,
    pub expires_at: u64,
    /// For a test recipient: `digest` is its fixed code's.
    pub test: bool,
}

/// What a consumed code unlocks, applied in the same transaction as the consumption.
#[derive(Debug, Clone)]
pub enum Effect<'a> {
    /// An app's code: consuming it is all there is.
    Nothing,
    /// Marks the address verified. With `keep`, the password may stay,
    /// if it is still the account's (see `KeptPassword`). Otherwise the
    /// proof ends what was set before it, as `SignIn` does: the password
    /// and every session. So it does when `keep` does not hold.
    MarkVerified {
        email: &'a Email,
        keep: Option<KeptPassword>,
    },
    /// Sets the password, marks the address verified (the code proved
    /// ownership), revokes every session of the account and forgets the
    /// address's failed sign-ins (`address_hash`).
    ResetPassword {
        email: &'a Email,
        password_hash: String,
        address_hash: String,
    },
    /// Passwordless sign-in: creates the session, or its ticket if the
    /// account has a second factor. On an unverified account
    /// it also marks the address verified (the code proved ownership),
    /// drops the password and revokes every session: whoever set that
    /// password had not proven the address (account pre-hijacking).
    SignIn {
        user_id: String,
        session: NewSession,
    },
}

/// The password a verification may keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptPassword {
    pub password_hash: String,
    /// The request proved the password itself. Without, the code was
    /// bound to it, which keeps it only while the registration is
    /// uncontested (`users.contested`): checked in the transaction.
    pub proven: bool,
    /// A browser session to create in the same transaction, if and only
    /// if the password is kept: the sign-up's own browser, which proved
    /// the password with its registrant token, is signed in.
    pub session: Option<NewSession>,
}

/// What a right first factor was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admitted {
    /// The session.
    Session,
    /// The account has a second factor: the session's ticket for it.
    SecondStep,
}

/// What consuming a code did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consumed {
    /// A concurrent request consumed, replaced or burned the code first,
    /// or it expired: nothing was applied.
    Lost,
    /// The code is spent and its effect applied; for `MarkVerified`,
    /// whether the account kept its password; for `SignIn`, what the
    /// sign-in was given.
    Applied {
        password_kept: bool,
        admitted: Option<Admitted>,
    },
}

#[allow(async_fn_in_trait)]
pub trait AccountStore {
    /// A password sign-in's first round, one transaction, the same for
    /// every address: counts the attempt against the address's budget
    /// (`domain::sign_in_budget`) unless it is locked, reads the account
    /// and a decoy hash picked by `decoy_seed` from the stored ones (the
    /// same seed, the same decoy), and files `decoy_code` if the address
    /// has no live verification code.
    async fn begin_password_login(&self, attempt: &PasswordAttempt<'_>)
        -> ApiResult<PasswordStart>;
    /// One transaction: creates the account, or replaces the password of an
    /// unverified one whose verification code is no longer live, issues
    /// the code, and counts the message; or, if an hourly cap is reached,
    /// files nothing else. A live code of an earlier registration keeps that
    /// registration's password (see `Registered`). A registration that
    /// finds an unverified account marks it contested, capped or not. A live code keeps
    /// its expiry and attempts when this registration's code replaces it:
    /// a registration never moves an address's clock.
    async fn register(&self, registration: &Registration<'_>) -> ApiResult<Registered>;
    /// Marks the address's unverified account, if any, contested: a
    /// registration that the cooldown stopped before `register` still
    /// asked for the address, so a code alone no longer keeps a password.
    async fn contest_sign_up(&self, email: &Email) -> ApiResult<()>;
    /// After a right password on a verified account, in one transaction:
    /// replaces the hash with `rehash`, creates `session` and forgets the
    /// address's failed sign-ins (`address_hash`), only if the account's
    /// hash is still `verified_hash`, the one the password was checked
    /// against. `None`, changing nothing, if a reset (or anything else)
    /// changed it since. An account with a second factor gets
    /// `session.ticket` filed instead of the session.
    async fn after_password_login(
        &self,
        user_id: &str,
        verified_hash: &str,
        rehash: Option<&str>,
        session: &NewSession,
        address_hash: &str,
    ) -> ApiResult<Option<Admitted>>;
    /// Replaces the digest (and id) of the address's pending verification
    /// code with `renewed`'s, keeping its expiry and attempts, only while
    /// the code is live and not spent and the account still unverified
    /// with `renewed.password_hash`; `false`, changing nothing, otherwise.
    async fn renew_code(&self, renewed: &RenewedCode) -> ApiResult<bool>;
    /// Files a code for `email`'s address as `issue_app_code` does (but
    /// for the core flows: `false` when capped), with its account read in
    /// the same transaction: whether or not there is an account, the same
    /// one round trip (see `Service::request_code`).
    async fn request_code(
        &self,
        email: &Email,
        code: &NewCode<'_>,
        attempts_window_secs: u64,
        count: &SendCount,
    ) -> ApiResult<Requested>;
    /// Undoes a registration whose message could not be delivered, in one
    /// transaction: deletes its code, so that it does not hold a
    /// registration nobody received a code for, and the account if it is
    /// unverified and holds this registration's `password_hash` (salted:
    /// no other's), so that the retry is a first sign-up again, not a
    /// contested one.
    async fn withdraw_registration(
        &self,
        code_id: &str,
        email: &Email,
        password_hash: &str,
    ) -> ApiResult<()>;
    /// Counts one guess against the pending code for `key` and returns the
    /// code with the count that includes this guess, in one atomic write:
    /// a guess is counted before it is compared, so concurrent guesses can
    /// never get more comparisons than the budget. The count stops at
    /// `max_attempts + 1`; a code returned above `max_attempts` is spent
    /// and must not be compared.
    async fn claim_attempt(
        &self,
        key: &CodeKey<'_>,
        max_attempts: u32,
    ) -> ApiResult<Option<PendingCode>>;
    /// Deletes the code and applies `effect` in one transaction, only if the
    /// code still exists, unexpired and unreplaced. Exactly one concurrent
    /// caller gets `Applied`. The caller's guess was within the budget when it
    /// was claimed; guesses claimed after it, even past the budget, do not
    /// take that back, or a burst of right guesses would all fail.
    async fn consume_code(
        &self,
        code_id: &str,
        effect: Effect<'_>,
        now: u64,
    ) -> ApiResult<Consumed>;
}
