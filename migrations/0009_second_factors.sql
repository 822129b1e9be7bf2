-- Second factors (docs/security.md): authenticator apps (TOTP), their
-- recovery codes, and the tickets of sign-ins waiting for a second step.
-- * `totp_factors`: one per account. `secret_sealed` is the app's shared
--   secret under AES-256-GCM with a key derived from MFA_ENCRYPTION_KEY,
--   bound to the account's id. `confirmed_at` is NULL until a first
--   right code. `last_step` is the last 30-second step accepted, so a
--   code is good once. `failures`/`failed_at` count wrong second steps
--   per account, before each is compared, as `login_failures` counts
--   passwords; a right one resets them.
-- * `recovery_codes`: HMAC-SHA256 digests under OTP_PEPPER, bound to the
--   account, each used once (`used_at`).
-- * `mfa_tickets`: a right first factor on an account with a second one
--   gives a ticket (SHA-256 of the `mfa_token`), single use, short-lived,
--   for whom the session will be (`issued_to`) and how the first factor
--   was proven (`amr`); `attempts` counts the guesses at its step.
CREATE TABLE IF NOT EXISTS totp_factors (
  user_id       TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
  secret_sealed TEXT NOT NULL,
  created_at    INTEGER NOT NULL,
  confirmed_at  INTEGER,
  last_step     INTEGER NOT NULL DEFAULT 0,
  failures      INTEGER NOT NULL DEFAULT 0,
  failed_at     INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS totp_factors_pending ON totp_factors (created_at) WHERE confirmed_at IS NULL;

CREATE TABLE IF NOT EXISTS recovery_codes (
  user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  digest     TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  used_at    INTEGER,
  PRIMARY KEY (user_id, digest)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS mfa_tickets (
  token_hash TEXT PRIMARY KEY,
  user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  issued_to  TEXT NOT NULL,
  amr        TEXT NOT NULL,
  attempts   INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS mfa_tickets_user_id ON mfa_tickets (user_id);
CREATE INDEX IF NOT EXISTS mfa_tickets_expires_at ON mfa_tickets (expires_at);
