-- The OpenID Provider's codes, grants and refresh tokens (docs/oidc.md).
-- * `sessions.amr`: how a browser's sign-in was made (`pwd` or `otp`),
--   for the ID token's `amr`; NULL for sessions made before it existed.
-- * `oauth_codes`: an authorization code, kept as its SHA-256 for 60 s,
--   bound to its client, `redirect_uri`, PKCE challenge, nonce, and the
--   browser session that signed in (ending it first voids the code).
--   A redemption keeps the row (`used_at`, `grant_id`): a second one is a
--   replay, and revokes the grant the first one made.
-- * `oauth_grants`: what a redeemed code gives a client: the account, the
--   scopes, the resource, when and how the person signed in. Access tokens
--   name it (`sid`), userinfo checks it is still there; deleting it
--   revokes every token issued from it.
-- * `oauth_refresh_tokens`: each one's SHA-256; a refresh marks it used
--   and files the next. A used one presented again revokes its grant.
ALTER TABLE sessions ADD COLUMN amr TEXT;

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
CREATE INDEX IF NOT EXISTS oauth_grants_expires_at ON oauth_grants (expires_at);

CREATE TABLE IF NOT EXISTS oauth_refresh_tokens (
  token_hash  TEXT PRIMARY KEY,
  grant_id    TEXT NOT NULL REFERENCES oauth_grants (id) ON DELETE CASCADE,
  created_at  INTEGER NOT NULL,
  expires_at  INTEGER NOT NULL,
  used_at     INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS oauth_refresh_tokens_grant ON oauth_refresh_tokens (grant_id);
