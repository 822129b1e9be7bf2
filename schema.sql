-- otp-edge D1 schema: the whole current schema, for reading. Databases are
-- built and upgraded by migrations/ (`wrangler d1 migrations apply DB`); a
-- test checks that applying every migration gives exactly this schema.
-- Times are unix seconds. Secrets are never stored: passwords as Argon2id
-- PHC strings, codes as HMAC-SHA256 under OTP_PEPPER, session tokens as SHA-256.

-- `password_hash` is '' when a code sign-in proved the address and dropped
-- a password set before the proof (account pre-hijacking); the owner sets
-- one with a password reset. The cron deletes accounts left unverified
-- UNVERIFIED_USER_TTL_SECONDS after `created_at`, which re-registering
-- does not move. `contested` (migration 0005): a second registration came
-- while the address was unverified, so a code keeps the pending password
-- only if the request also proves it.
CREATE TABLE IF NOT EXISTS users (
  id            TEXT PRIMARY KEY,
  email         TEXT NOT NULL UNIQUE,
  password_hash TEXT NOT NULL,
  verified      INTEGER NOT NULL DEFAULT 0 CHECK (verified IN (0, 1)),
  created_at    INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL,
  contested     INTEGER NOT NULL DEFAULT 0 CHECK (contested IN (0, 1))
);
CREATE INDEX IF NOT EXISTS users_unverified_created ON users (verified, created_at);

-- One pending code per (scope, channel, address, purpose); a new code replaces it.
-- `scope` is `core` for the account flows and `key:<api key id>` for an app's codes.
-- `attempts` counts guesses, each one before it is compared, and stops at the
-- budget + 1 (spent). It carries over to a replacement code until
-- `window_ends_at`, so a resend never refills the guess budget.
CREATE TABLE IF NOT EXISTS codes (
  id             TEXT PRIMARY KEY,
  scope          TEXT NOT NULL,
  channel        TEXT NOT NULL,
  address        TEXT NOT NULL,
  purpose        TEXT NOT NULL,
  digest         TEXT NOT NULL,
  attempts       INTEGER NOT NULL DEFAULT 0,
  window_ends_at INTEGER NOT NULL,
  created_at     INTEGER NOT NULL,
  expires_at     INTEGER NOT NULL,
  -- A code for a test recipient (migration 0004): its digest is the
  -- recipient's fixed code's (`Pepper::test_code_digest`), nothing was sent.
  test           INTEGER NOT NULL DEFAULT 0 CHECK (test IN (0, 1)),
  UNIQUE (scope, channel, address, purpose)
);
CREATE INDEX IF NOT EXISTS codes_expires_at ON codes (expires_at);

-- `issued_to` (migration 0005): `browser` (made by the hosted pages: the
-- only sessions the session cookie takes), `api` (`/v1/login`,
-- `/v1/login/code/verify`), or `key:<api key id>` (made by the hand-off
-- exchange of earlier releases, which the OpenID Provider replaced).
-- `amr` (migration 0007): how a browser's sign-in was made, `pwd` or `otp`.
CREATE TABLE IF NOT EXISTS sessions (
  token_hash TEXT PRIMARY KEY,
  user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  issued_to  TEXT NOT NULL DEFAULT 'api',
  amr        TEXT
);
CREATE INDEX IF NOT EXISTS sessions_user_id ON sessions (user_id);
CREATE INDEX IF NOT EXISTS sessions_expires_at ON sessions (expires_at);

-- Failed password sign-ins per address (migration 0005), unknown ones
-- alike: `address_hash` is the audit trail's keyed pseudonym. Each sign-in
-- is counted before its password is compared and a success resets the
-- row; past LOGIN_MAX_FAILURES the address is locked out of password
-- sign-in for a time that doubles with each further failure. The cron
-- deletes rows whose lock and window have passed.
CREATE TABLE IF NOT EXISTS login_failures (
  address_hash TEXT PRIMARY KEY,
  failures     INTEGER NOT NULL,
  last_at      INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS login_failures_last_at ON login_failures (last_at);

-- Messages sent per hour (`hour` = unix seconds / 3600), per counter:
-- `<scope>|<tag>` for one scope's sends to an address, `*|<tag>` for all
-- scopes' sends to it, `<scope>|*` for an API key's quota. `<tag>` is a
-- keyed pseudonym of the mailbox or phone, never the address. Checked and
-- counted in the transaction that files the code, so exact under bursts.
CREATE TABLE IF NOT EXISTS send_counts (
  counter TEXT NOT NULL,
  hour    INTEGER NOT NULL,
  sent    INTEGER NOT NULL,
  PRIMARY KEY (counter, hour)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS send_counts_hour ON send_counts (hour);

-- Keys of calling apps. Only the SHA-256 of a key is stored; `hint` is its
-- last four characters, for telling keys apart. Revoked keys stay listed.
-- `sms_domain` adds the autofill line `@<domain> #<code>` to its SMS and
-- WhatsApp codes, `android_app_hash` the SMS Retriever hash;
-- `turnstile_required` makes /v1/otp/send ask for a Turnstile token.
CREATE TABLE IF NOT EXISTS api_keys (
  id         TEXT PRIMARY KEY,
  key_hash   TEXT NOT NULL UNIQUE,
  hint       TEXT NOT NULL,
  name       TEXT NOT NULL,
  app_name   TEXT,
  channels   TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  revoked_at INTEGER,
  sms_domain         TEXT,
  android_app_hash   TEXT,
  turnstile_required INTEGER NOT NULL DEFAULT 0 CHECK (turnstile_required IN (0, 1))
);

-- Test recipients of a key (app-store review, the apps' own CI): a send to
-- one files a code whose digest is this fixed code's, and sends nothing.
-- The code itself is never stored: `digest` is its HMAC under OTP_PEPPER.
CREATE TABLE IF NOT EXISTS test_recipients (
  key_id     TEXT NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
  channel    TEXT NOT NULL,
  address    TEXT NOT NULL,
  digest     TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (key_id, channel, address)
) WITHOUT ROWID;

-- The security audit trail: one row per security event. The address is
-- only a keyed hash (HMAC under the pepper), never the address itself.
-- The cron deletes rows older than AUDIT_RETENTION_DAYS.
CREATE TABLE IF NOT EXISTS auth_events (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  at           INTEGER NOT NULL,
  event        TEXT NOT NULL,
  outcome      TEXT NOT NULL,
  scope        TEXT,
  purpose      TEXT,
  channel      TEXT,
  address_hash TEXT,
  ip           TEXT,
  -- The send an event is about (a code's id), a detail (a provider's
  -- error code), and whether it was a test recipient's (migration 0004).
  send_id      TEXT,
  detail       TEXT,
  test         INTEGER NOT NULL DEFAULT 0 CHECK (test IN (0, 1))
);
CREATE INDEX IF NOT EXISTS auth_events_at ON auth_events (at);
CREATE INDEX IF NOT EXISTS auth_events_address ON auth_events (address_hash, id);
CREATE INDEX IF NOT EXISTS auth_events_event ON auth_events (event, id);
CREATE INDEX IF NOT EXISTS auth_events_send ON auth_events (send_id, id) WHERE send_id IS NOT NULL;

-- The OpenID Connect clients the operator registers (docs/oidc.md): an
-- app that signs its users in through the hosted pages with the OIDC
-- client its framework already has.
-- * `id` is the public `client_id`; `secret_hash` the SHA-256 of a
--   confidential client's secret (NULL for a public client, which uses
--   PKCE instead). The secret itself is shown once and never stored.
-- * `redirect_uris` and `post_logout_redirect_uris` are JSON arrays of
--   URIs, each compared exactly with the one a request names.
-- * `api_key_id` names the API key of the app the client is, if any.
-- * `self_registered` (migration 0008): a public client that registered
--   itself (RFC 7591), from `registered_from` (a keyed pseudonym of the
--   network client); the pages ask for consent on each authorization.
-- * `id_token_alg`: what its ID tokens are signed with.
CREATE TABLE IF NOT EXISTS oidc_clients (
  id                         TEXT PRIMARY KEY,
  name                       TEXT NOT NULL,
  kind                       TEXT NOT NULL CHECK (kind IN ('confidential', 'public')),
  secret_hash                TEXT UNIQUE,
  redirect_uris              TEXT NOT NULL,
  post_logout_redirect_uris  TEXT NOT NULL DEFAULT '[]',
  api_key_id                 TEXT REFERENCES api_keys (id),
  created_at                 INTEGER NOT NULL,
  self_registered            INTEGER NOT NULL DEFAULT 0 CHECK (self_registered IN (0, 1)),
  registered_from            TEXT,
  id_token_alg               TEXT NOT NULL DEFAULT 'RS256' CHECK (id_token_alg IN ('RS256', 'ES256')),
  CHECK ((kind = 'confidential') = (secret_hash IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS oidc_clients_self_registered ON oidc_clients (created_at) WHERE self_registered = 1;

-- The OpenID Provider's authorization codes, grants and refresh tokens
-- (migration 0007; docs/oidc.md): codes kept 60 s after a redemption for
-- replay detection, a grant per redeemed code, rotated refresh tokens.
CREATE TABLE IF NOT EXISTS oauth_codes (
  code_hash     TEXT PRIMARY KEY,
  client_id     TEXT NOT NULL REFERENCES oidc_clients (id) ON DELETE CASCADE,
  session_hash  TEXT NOT NULL,
  user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  redirect_uri  TEXT NOT NULL,
  challenge     TEXT,
  nonce         TEXT,
  scope         TEXT NOT NULL,
  resource      TEXT,
  auth_time     INTEGER NOT NULL,
  amr           TEXT NOT NULL,
  created_at    INTEGER NOT NULL,
  expires_at    INTEGER NOT NULL,
  used_at       INTEGER,
  grant_id      TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS oauth_codes_expires_at ON oauth_codes (expires_at);

CREATE TABLE IF NOT EXISTS oauth_grants (
  id          TEXT PRIMARY KEY,
  client_id   TEXT NOT NULL REFERENCES oidc_clients (id) ON DELETE CASCADE,
  user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  scope       TEXT NOT NULL,
  resource    TEXT,
  nonce       TEXT,
  auth_time   INTEGER NOT NULL,
  amr         TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  expires_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS oauth_grants_user_id ON oauth_grants (user_id);
CREATE INDEX IF NOT EXISTS oauth_grants_client_id ON oauth_grants (client_id);
CREATE INDEX IF NOT EXISTS oauth_grants_expires_at ON oauth_grants (expires_at);

CREATE TABLE IF NOT EXISTS oauth_refresh_tokens (
  token_hash  TEXT PRIMARY KEY,
  grant_id    TEXT NOT NULL REFERENCES oauth_grants (id) ON DELETE CASCADE,
  created_at  INTEGER NOT NULL,
  expires_at  INTEGER NOT NULL,
  used_at     INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS oauth_refresh_tokens_grant ON oauth_refresh_tokens (grant_id);

-- Second factors (migration 0009; docs/security.md).
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
