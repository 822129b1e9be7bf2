-- Sessions that know whose they are, contested sign-ups, and a budget of
-- failed password sign-ins per address (docs/security.md):
-- * `sessions.issued_to`: `browser` for a session the hosted pages made
--   (only these are taken from the session cookie, and only these earn
--   hand-off codes), `api` for one `/v1/login` or `/v1/login/code/verify`
--   gave an app, `key:<api key id>` for one an exchange gave. Sessions of
--   earlier releases were made by both and are taken for `api`: a browser
--   signed in before the upgrade signs in again.
-- * `users.contested`: a second registration arrived while the address
--   was unverified; a code then keeps the pending password only if the
--   request also proves it.
-- * `login_failures`: failed password sign-ins per address (a keyed
--   pseudonym, as in the audit trail), known or not, counted before the
--   password is compared.

ALTER TABLE sessions ADD COLUMN issued_to TEXT NOT NULL DEFAULT 'api';

ALTER TABLE users ADD COLUMN contested INTEGER NOT NULL DEFAULT 0 CHECK (contested IN (0, 1));

CREATE TABLE IF NOT EXISTS login_failures (
  address_hash TEXT PRIMARY KEY,
  failures     INTEGER NOT NULL,
  last_at      INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS login_failures_last_at ON login_failures (last_at);
